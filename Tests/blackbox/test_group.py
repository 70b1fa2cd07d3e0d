"""mq-group: list, describe, delete and reset consumer groups; mq-stat -g."""

import json
import os
import pty
import subprocess
import time

import mqtest
from mqtest import assert_error

EX_USAGE, EX_NOINPUT, EX_TEMPFAIL = 64, 66, 75


def fill(mq):
    """Topic orders (2 partitions, 100 messages), consumed 30 by billing, all by audit;
    jobs (1 partition, 3 messages) worked by the queue group w."""
    mq.create("orders", 2)
    mq.produce("orders", b"".join(b"k%d:%d\n" % (i, i) for i in range(100)), "-K", ":")
    mq.run("mq-consume", "-g", "billing", "-e", "-c", "30", "orders", "--format", "", check=0)
    mq.run("mq-consume", "-g", "audit", "-e", "orders", "--format", "", check=0)
    mq.produce("jobs", b"1\n2\n3\n")
    mq.run("mq-consume", "--queue", "-g", "w", "-e", "jobs", "--", "true", check=0)


def group_json(mq, *args):
    return json.loads(mq.run("mq-group", *args, "--json", check=0).stdout)


def describe(mq, group, *args):
    return json.loads(mq.run("mq-group", "describe", group, "--json", *args, check=0).stdout)


def test_list_shows_members_topics_lag_and_last_commit(mq):
    before = int(time.time() * 1000)
    fill(mq)
    out = group_json(mq, "list")
    groups = {g["group"]: g for g in out["groups"]}
    assert sorted(groups) == ["audit", "billing", "w"]
    assert groups["billing"]["topics"] == ["orders"] and groups["billing"]["lag_messages"] == 70
    assert groups["audit"]["lag_messages"] == 0 and not groups["audit"]["queue"]
    assert groups["w"]["queue"] and groups["w"]["topics"] == ["jobs"] and groups["w"]["lag_messages"] == 0
    for g in groups.values():
        assert g["members"] == []
        assert before <= g["last_commit_ms"] <= out["time_ms"], g
    text = mq.run("mq-group", "list", check=0).stdout.decode().splitlines()
    assert text[0].split() == ["GROUP", "MEMBERS", "TOPICS", "LAG", "LAST-COMMIT"]
    billing = next(line.split() for line in text if line.startswith("billing"))
    assert billing[1:4] == ["0", "orders", "70"] and billing[-1] == "ago"
    assert mq.run("mq-group", "list", "-q", check=0).stdout.split() == [b"audit", b"billing", b"w"]


def test_list_of_a_log_without_groups_is_empty(mq):
    mq.produce("t", b"x\n")
    assert group_json(mq, "list")["groups"] == []
    assert mq.run("mq-group", "list", "-q", check=0).stdout == b""


def test_describe_per_partition_and_by_topic(mq):
    fill(mq)
    d = describe(mq, "billing")
    assert d["group"] == "billing" and d["members"] == []
    rows = {p["partition"]: p for p in d["partitions"]}
    ends = {p: mqtest.committed_offset(mq.dir, "audit", "orders", p) for p in (0, 1)}
    assert sum(ends.values()) == 100
    for p, row in rows.items():
        assert row["topic"] == "orders" and row["mode"] == "group"
        assert row["end_offset"] == ends[p]
        assert row["committed"] == mqtest.committed_offset(mq.dir, "billing", "orders", p)
        assert row["lag_messages"] == row["end_offset"] - row["committed"]
        assert row["owner_pids"] == [] and row["last_commit_ms"] > 0
    assert sum(r["lag_messages"] for r in rows.values()) == 70
    w = describe(mq, "w")["partitions"]
    assert [(r["topic"], r["mode"], r["committed"], r["end_offset"], r["in_flight"]) for r in w] == [("jobs", "queue", 3, 3, 0)]
    # Two groups, one JSON object each; a topic filter; the text table.
    res = mq.run("mq-group", "describe", "billing", "audit", "--json", "-t", "jobs", check=0)
    assert [json.loads(line)["partitions"] for line in res.stdout.splitlines()] == [[], []]
    text = mq.run("mq-group", "describe", "billing", check=0).stdout.decode().splitlines()
    assert text[0] == "GROUP billing: 0 live members"
    assert text[1].split()[:6] == ["TOPIC", "PART", "MODE", "COMMITTED", "END", "LAG"]


def test_describe_shows_live_members_and_lease_owners(mq):
    mq.produce("t", b"a\nb\n")
    owner = mq.start("mq-consume", "-g", "live", "t", "--format", "")
    deadline = time.time() + 20
    d = None
    while time.time() < deadline:
        res = mq.run("mq-group", "describe", "live", "--json")  # 66 until the consumer made the group
        d = json.loads(res.stdout) if res.status == 0 else None
        # The lease's holder is written when the lease is taken, the commit once the two
        # messages are written out: wait for both.
        if (d and d["partitions"] and d["partitions"][0]["owner_pids"] == [owner.pid] and d["members"]
                and d["partitions"][0]["committed"] == 2):
            break
        time.sleep(0.1)
    assert [m["pid"] for m in d["members"]] == [owner.pid], d
    assert d["partitions"][0]["owner_pids"] == [owner.pid] and d["partitions"][0]["committed"] == 2, d
    assert group_json(mq, "list")["groups"][0]["members"][0]["pid"] == owner.pid


def test_unknown_group_and_bad_name(mq):
    mq.produce("t", b"a\n")
    assert_error(mq.run("mq-group", "describe", "nope"), EX_NOINPUT, "mq-group", "nope")
    assert_error(mq.run("mq-group", "delete", "nope"), EX_NOINPUT, "mq-group", "nope")
    assert_error(mq.run("mq-group", "describe", "a/b"), EX_USAGE, "mq-group", "invalid group name")


def test_delete_is_refused_while_a_member_lives_unless_forced(mq):
    fill(mq)
    owner = mq.start("mq-consume", "-g", "billing", "orders", "--format", "")
    deadline = time.time() + 20
    while time.time() < deadline and not describe(mq, "billing")["members"]:
        time.sleep(0.1)
    res = mq.run("mq-group", "delete", "billing")
    assert_error(res, EX_TEMPFAIL, "mq-group", "in use", str(owner.pid), "--force")
    assert (mq.dir / "groups" / "billing").is_dir()
    # A dry run says what would go and changes nothing, even with --force.
    res = mq.run("mq-group", "delete", "billing", "--force", "-n", check=0)
    assert "would delete group 'billing'" in res.stderr and (mq.dir / "groups" / "billing").is_dir()
    res = mq.run("mq-group", "delete", "billing", "--force", check=0)
    assert "deleted group 'billing'" in res.stderr and "in use" in res.stderr
    assert not (mq.dir / "groups" / "billing").exists()
    assert [g["group"] for g in group_json(mq, "list")["groups"]] == ["audit", "w"]
    owner.kill()


def test_delete_of_an_idle_group_forgets_its_offsets(mq):
    fill(mq)
    dry = [json.loads(line) for line in mq.run("mq-group", "delete", "audit", "-n", "--json", check=0).stdout.splitlines()]
    assert [(d["group"], d["deleted"], d["in_use"]) for d in dry] == [("audit", False, [])] and dry[0]["bytes"] > 0
    mq.run("mq-group", "delete", "audit", "w", "-q", check=0)
    assert sorted(os.listdir(mq.dir / "groups")) == ["billing"]
    # A group of the same name starts over from the beginning.
    res = mq.run("mq-consume", "-g", "audit", "-e", "orders", "--format", "%o\\n", check=0)
    assert len(res.stdout.splitlines()) == 100


def reset_plan(res):
    lines = res.stdout.decode().splitlines()
    assert lines[0].split() == ["TOPIC", "PARTITION", "CURRENT", "NEW", "LAG"], res
    return {int(p): (int(new), int(lag)) for _t, p, _c, new, lag in (line.split() for line in lines[1:])}


def test_reset_asks_at_a_terminal_and_needs_yes_elsewhere(mq):
    fill(mq)
    before = {p: mqtest.committed_offset(mq.dir, "billing", "orders", p) for p in (0, 1)}
    # Not a terminal, no --yes: the plan, status 64, nothing changed.
    res = mq.run("mq-group", "reset", "billing", "orders", "--to", "beginning")
    assert_error(res, EX_USAGE, "mq-group", "--yes")
    ends = {r["partition"]: r["end_offset"] for r in describe(mq, "billing")["partitions"]}
    assert reset_plan(res) == {p: (0, ends[p]) for p in (0, 1)}
    assert {p: mqtest.committed_offset(mq.dir, "billing", "orders", p) for p in (0, 1)} == before
    # -n prints the plan alone.
    res = mq.run("mq-group", "reset", "billing", "orders", "--to", "end", "-n", check=0)
    assert all(lag == 0 for _new, lag in reset_plan(res).values())
    assert {p: mqtest.committed_offset(mq.dir, "billing", "orders", p) for p in (0, 1)} == before
    # At a terminal: "n" changes nothing, "y" resets.
    for answer, expected in ((b"n\n", before), (b"y\n", {0: 0, 1: 0})):
        status, err = answer_at_terminal(mq, ["reset", "billing", "orders", "--to", "beginning"], answer)
        assert status == 0, err
        assert b"as shown? [y/N]" in err
        assert {p: mqtest.committed_offset(mq.dir, "billing", "orders", p) for p in (0, 1)} == expected
    # --yes, JSON: what was done; a shift of one partition.
    out = json.loads(mq.run("mq-group", "reset", "billing", "orders", "--to", "+5", "-p", "1", "--yes", "--json", check=0).stdout)
    assert out["applied"] and [(r["partition"], r["current"], r["new"]) for r in out["partitions"]] == [(1, 0, 5)]
    assert mqtest.committed_offset(mq.dir, "billing", "orders", 1) == 5


def answer_at_terminal(mq, args, answer: bytes):
    """Runs mq-group with standard input and standard error on a pseudo-terminal, typing
    `answer`; returns (status, what the terminal showed)."""
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(mq.argv("mq-group", args), stdin=slave, stdout=subprocess.PIPE, stderr=slave, env=mq.env())
        os.close(slave)
        slave = None
        os.write(master, answer)
        out, _ = p.communicate(timeout=60)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    return p.returncode, seen


def test_reset_is_refused_while_a_member_holds_the_topic(mq):
    mq.produce("t", b"a\nb\n")
    owner = mq.start("mq-consume", "-g", "live", "t", "--format", "")
    deadline = time.time() + 20
    while time.time() < deadline and not mqtest.lease_held(mq.dir, "live", "t", 0):
        time.sleep(0.1)
    res = mq.run("mq-group", "reset", "live", "t", "--to", "beginning", "--yes")
    assert_error(res, EX_TEMPFAIL, "mq-group", "lease")
    owner.kill()


def test_stat_shows_only_the_group_asked_for(mq):
    fill(mq)
    mq.produce("other", b"x\n")
    s = json.loads(mq.run("mq-stat", "-g", "billing", "--json", check=0).stdout)
    assert {g["group"] for g in s["groups"]} == {"billing"}
    assert [t["topic"] for t in s["topics"]] == ["orders"]
    assert all(g["end_offset"] >= g["committed"] for g in s["groups"])
    s = json.loads(mq.run("mq-stat", "-g", "w", "-g", "audit", "--json", check=0).stdout)
    assert {g["group"] for g in s["groups"]} == {"w", "audit"}
    assert sorted(t["topic"] for t in s["topics"]) == ["jobs", "orders"]
    assert_error(mq.run("mq-stat", "-g", "nope"), EX_NOINPUT, "mq-stat", "nope")
