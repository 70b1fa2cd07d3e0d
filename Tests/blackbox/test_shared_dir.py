"""A log directory shared by several users (docs/FORMAT.md §1, Permissions): every file is
created 0666 and every directory 0777 less the umask (or less $MQ_UMASK), a setgid
directory's group is kept, so the members of one group produce, consume and commit in one
log while a user outside it gets exit 77 naming the path."""

import grp
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

import mqtest
from mqtest import EX_NOPERM, EX_USAGE, MQ, assert_error, jline, script


def exercise(m: MQ, tmp_path, env) -> None:
    """Runs what creates every kind of file in a log: a topic (compacted, small segments),
    plain, deduplicated, transactional, delayed and named-producer appends, a group
    consumer with deduplication, a work-queue consumer that dead-letters, and mq-compact."""
    def run(tool, *args, input=b""):
        return m.run(tool, *args, input=input, check=0, env_extra=env)
    run("mq-topic", "create", "t", "--partitions", "2", "--config", "cleanup.policy=compact",
        "--config", "segment.bytes=1024")
    keyed = [jline(f"v{i}", key=f"k{i % 5}", headers=[("id", f"m{i}")]) for i in range(200)]
    run("mq-produce", "t", "--json", "--batch-messages", "5", input=b"".join(keyed))
    run("mq-produce", "t", "--json", "--id-header", "id", input=b"".join(keyed[:50]))
    run("mq-produce", "t", "--atomic", input=b"x1\nx2\n")
    run("mq-produce", "t", "--producer", "importer", input=b"p1\np2\n")
    run("mq-produce", "t", "--delay", "1ms", input=b"d1\n")
    run("mq-consume", "-g", "g", "-e", "--dedup", "--id-header", "id", "t")
    fail_one = script(tmp_path, "fail-one.sh", 'v=$(cat); [ "$v" != v7 ]\n')
    run("mq-consume", "--queue", "-g", "q", "-e", "--max-attempts", "1", "t", "--", fail_one)
    run("mq-compact", "t", "t.dlq")


def created_modes(root: Path) -> dict:
    """Path (relative to root) -> its permission bits, setgid included."""
    return {str(p.relative_to(root)): stat.S_IMODE(p.lstat().st_mode) for p in root.rglob("*")}


@pytest.mark.parametrize("umask, mq_umask, want", [
    (0o022, None, 0o022),
    (0o002, None, 0o002),
    (0o027, None, 0o027),
    (0o022, "002", 0o002),   # MQ_UMASK replaces the caller's umask
    (0o002, "0077", 0o077),
], ids=["umask022", "umask002", "umask027", "MQ_UMASK=002", "MQ_UMASK=0077"])
def test_files_and_directories_are_created_with_the_umask_deciding(mq, tmp_path, umask, mq_umask, want):
    env = {"MQ_UMASK": mq_umask} if mq_umask is not None else {}
    old = os.umask(umask)
    try:
        exercise(mq, tmp_path, env)
    finally:
        os.umask(old)
    modes = created_modes(mq.dir)
    names = {Path(p).name for p in modes} | {Path(p).suffix for p in modes}
    kinds = {"topics", "topic.properties", "lock", "head", ".log", ".index", ".timeindex", "t.delay", "t.dlq",
             "groups", "members", "committed", "dedup", "queue", "copies", "transactions", "compact.lock",
             "cleaner-offset", "mover.lock", "mover.offset", "mover.journal"}
    assert kinds <= names, f"the exercise did not create {sorted(kinds - names)}"
    wrong = {p: oct(mode) for p, mode in modes.items()
             if mode != ((0o777 if (mq.dir / p).is_dir() else 0o666) & ~want)}
    assert not wrong, (f"under umask {umask:03o}, MQ_UMASK {mq_umask}: want files {0o666 & ~want:04o}, "
                       f"directories {0o777 & ~want:04o}; these differ: {wrong}")


@pytest.mark.parametrize("tool, args", [
    ("mq-produce", ["t"]), ("mq-tail", ["t"]), ("mq-topic", ["list"]), ("mq-consume", ["-g", "g", "-e", "t"]),
    ("mq-stat", []), ("mq-bench", ["-n", "10"]), ("mq-replay", ["t"]), ("mq-dlq", ["list"]),
    ("mq-compact", ["--all"]), ("mq-group", ["list"]), ("mq-mirror", ["-e", "--timeout", "1s", "t", "nats://127.0.0.1:9/S"]),
])
def test_every_tool_rejects_a_bad_mq_umask_before_creating_anything(mq, tool, args):
    for bad in ("8", "1000", "u=rwx", "0x12", " 002"):
        res = mq.run(tool, *args, env_extra={"MQ_UMASK": bad})
        assert_error(res, EX_USAGE, tool, f"invalid MQ_UMASK '{bad}'", "octal umask")
    assert os.listdir(mq.dir) == []
    res = mq.run("mq-topic", "list", env_extra={"MQ_UMASK": ""})  # empty: the caller's umask
    assert res.status == 0, res


# ---------------------------------------------------------------------------------------------
# Three users: two in a group that owns a setgid log directory, one outside it.


def _system(*argv):
    subprocess.run(argv, check=True, capture_output=True)


@pytest.fixture
def accounts(mq_bin):
    """A fresh group and three users: two in it (its supplementary members), one not.
    Removed at the end."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the test adds users and a group and runs the tools as them")
    for tool in ("useradd", "groupadd", "userdel", "groupdel", "setpriv"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (passwd, util-linux) to run the tools as other users")
    tag = uuid.uuid4().hex[:8]
    group = f"mqs{tag}"
    users = {"a": f"mqa{tag}", "b": f"mqb{tag}", "c": f"mqc{tag}"}
    made = []
    try:
        _system("groupadd", group)
        made.append(("groupdel", group))
        for role, name in users.items():
            extra = ["-G", group] if role in "ab" else []
            _system("useradd", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", "-U", *extra, name)
            made.insert(0, ("userdel", name))
        gid = grp.getgrnam(group).gr_gid
        yield {role: pwd.getpwnam(name) for role, name in users.items()}, gid
    finally:
        for argv in made:
            subprocess.run(argv, capture_output=True)


def as_user(mq_bin, user, tool, log_dir, *args, input=b"", umask="002"):
    """Runs `tool --dir log_dir args` as `user` (its own group, plus its supplementary ones),
    under `umask`, as a login shell with that umask would."""
    argv = [str(mq_bin / tool)]
    argv += [args[0], "--dir", str(log_dir), *args[1:]] if tool in ("mq-topic", "mq-dlq") else ["--dir", str(log_dir), *args]
    cmd = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--",
           "sh", "-c", f'umask {umask} && exec "$@"', "sh", *argv]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "HOME": "/nonexistent"}
    p = subprocess.run(cmd, input=input, capture_output=True, timeout=60, env=env)
    return mqtest.Result(p.returncode, p.stdout, p.stderr.decode("utf-8", "replace"))


def lines(prefix, start, stop):
    return [f"{prefix}{i}" for i in range(start, stop)]


def test_two_users_of_a_group_share_a_setgid_log_and_a_third_is_refused(mq_bin, accounts):
    users, gid = accounts
    a, b, c = users["a"], users["b"], users["c"]
    base = Path(tempfile.mkdtemp(prefix="mq-shared-", dir="/tmp"))
    try:
        # The recipe: a directory of the group, setgid, group-writable, closed to others.
        base.chmod(0o755)
        root = base / "log"
        root.mkdir()
        os.chown(root, 0, gid)
        root.chmod(0o2770)
        out = base / "handled"
        out.touch()
        os.chown(out, 0, gid)
        out.chmod(0o660)

        def ok(user, tool, *args, input=b""):
            res = as_user(mq_bin, user, tool, root, *args, input=input)
            assert res.status == 0, f"{tool} {' '.join(args)} as {user.pw_name}: exit {res.status}: {res.stderr}"
            return res

        def feed(values):
            return "".join(v + "\n" for v in values).encode()

        ok(a, "mq-topic", "create", "orders", "--partitions", "2")
        ok(a, "mq-produce", "orders", input=feed(lines("a", 0, 100)))
        got = ok(b, "mq-consume", "-g", "workers", "-e", "orders").out.splitlines()
        assert sorted(got) == sorted(lines("a", 0, 100))
        ok(b, "mq-produce", "orders", input=feed(lines("b", 0, 50)))    # into a's segments
        ok(a, "mq-produce", "orders", input=feed(lines("a", 100, 150)))
        got = ok(a, "mq-consume", "-g", "workers", "-e", "orders").out.splitlines()  # b's commits
        assert sorted(got) == sorted(lines("b", 0, 50) + lines("a", 100, 150))
        handler = f'cat >> {out} && echo >> {out}'
        ok(b, "mq-consume", "--queue", "-g", "jobs", "-e", "orders", "--", "sh", "-c", handler)
        ok(a, "mq-consume", "--queue", "-g", "jobs", "-e", "orders", "--", "sh", "-c", handler)
        ok(a, "mq-compact", "--all")
        ok(b, "mq-produce", "orders", input=feed(lines("b", 50, 60)))
        ok(a, "mq-consume", "--queue", "-g", "jobs", "-e", "orders", "--", "sh", "-c", handler)
        everything = lines("a", 0, 150) + lines("b", 0, 60)
        assert sorted(out.read_text().splitlines()) == sorted(everything), "the queue lost or repeated a job"
        assert sorted(ok(b, "mq-tail", "-n", "+0", "orders").out.splitlines()) == sorted(everything)

        for p in [root, *root.rglob("*")]:
            st = p.lstat()
            assert st.st_gid == gid, f"{p} has group {st.st_gid}, not the directory's {gid}"
            if p.is_dir():
                assert st.st_mode & stat.S_ISGID, f"{p} lost the setgid bit"
                assert stat.S_IMODE(st.st_mode) & 0o070 == 0o070, f"{p} is {oct(st.st_mode)}"
            else:
                assert stat.S_IMODE(st.st_mode) & 0o060 == 0o060, f"{p} is {oct(st.st_mode)}"

        before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
        for args in (["mq-produce", "orders"], ["mq-consume", "-g", "workers", "-e", "orders"],
                     ["mq-topic", "create", "other"], ["mq-tail", "orders"], ["mq-topic", "list"], ["mq-stat"],
                     ["mq-replay", "orders"], ["mq-dlq", "list"]):
            res = as_user(mq_bin, c, *args[:1], root, *args[1:], input=b"intruder\n")
            assert_error(res, EX_NOPERM, args[0], str(root), "permission denied")
        assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    finally:
        shutil.rmtree(base, ignore_errors=True)
