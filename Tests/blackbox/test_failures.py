"""Environment failures: permissions (run as an unprivileged user; root ignores file modes)
and a full disk (a 2 MB tmpfs)."""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from mqtest import (EX_CANTCREAT, EX_IOERR, EX_NOPERM, MQ, assert_error, run_as_nobody)

NOBODY = 65534


@pytest.fixture
def shared_dir():
    """A root-owned 0755 directory outside pytest's private tmp dir, so uid 65534 can read and
    traverse it but not write it."""
    d = Path(tempfile.mkdtemp(prefix="mq-perm-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def as_nobody(mq_bin):
    if os.geteuid() != 0:
        pytest.fail("permission tests need root (to drop to uid 65534 with setpriv)")
    if shutil.which("setpriv") is None:
        pytest.fail("permission tests need setpriv (util-linux)")
    for tool in ("mq-produce", "mq-topic", "mq-tail"):
        res = run_as_nobody(["test", "-x", mq_bin / tool])
        assert res.status == 0, f"{mq_bin / tool} is not executable by uid {NOBODY}"

    def run(tool, log_dir, *args, input=b""):
        argv = [mq_bin / tool]
        if tool == "mq-topic":
            argv += [args[0], "--dir", log_dir, *args[1:]]
        else:
            argv += ["--dir", log_dir, *args]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MQ_DIR": str(log_dir),
               "LC_ALL": "C.UTF-8", "HOME": "/nonexistent"}
        return run_as_nobody(argv, input=input, env=env)
    return run


def test_produce_into_unwritable_dir(as_nobody, shared_dir):
    res = as_nobody("mq-produce", shared_dir, "t", input=b"x\n")
    assert res.status in (EX_CANTCREAT, EX_NOPERM), res
    assert res.stderr.startswith("mq-produce: "), res.stderr
    assert os.listdir(shared_dir) == []


def test_create_topic_in_unwritable_dir(as_nobody, shared_dir):
    res = as_nobody("mq-topic", shared_dir, "create", "t")
    assert res.status in (EX_CANTCREAT, EX_NOPERM), res
    assert res.stderr.startswith("mq-topic: "), res.stderr
    assert os.listdir(shared_dir) == []


def test_produce_into_topic_owned_by_another_user(mq_bin, as_nobody, shared_dir):
    m = MQ(mq_bin, shared_dir)
    m.produce("owned", b"root wrote this\n")
    for p in shared_dir.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    before = {p: p.read_bytes() for p in shared_dir.rglob("*") if p.is_file()}
    res = as_nobody("mq-produce", shared_dir, "owned", input=b"intruder\n")
    assert res.status in (EX_CANTCREAT, EX_NOPERM), res
    assert res.stderr.startswith("mq-produce: "), res.stderr
    after = {p: p.read_bytes() for p in shared_dir.rglob("*") if p.is_file()}
    assert after == before
    # Reading is allowed.
    res = as_nobody("mq-tail", shared_dir, "owned")
    assert res.status == 0 and res.stdout == b"root wrote this\n", res


def test_tail_unreadable_topic(mq_bin, as_nobody, shared_dir):
    m = MQ(mq_bin, shared_dir)
    m.produce("secret", b"hidden\n")
    for p in shared_dir.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    m.partition_dir("secret", 0).chmod(0o700)
    res = as_nobody("mq-tail", shared_dir, "secret")
    assert_error(res, EX_NOPERM, "mq-tail")
    assert b"hidden" not in res.stdout


def mount_tmpfs(path: Path, size: str):
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"cannot mount a {size} tmpfs at {path} in this sandbox "
                    f"(mount exit {r.returncode}: {r.stderr.strip()}); the disk-full test needs "
                    "root with CAP_SYS_ADMIN")


def test_disk_full(mq_bin, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    mount_tmpfs(small, "2m")
    m = MQ(mq_bin, small)
    try:
        m.create("full")
        lines = [b"%06d " % i + b"z" * 90 for i in range(40_000)]  # ~4 MB: twice the disk
        res = m.run("mq-produce", "full", "--print-offsets", "--batch-messages", "100",
                    input=b"\n".join(lines) + b"\n")
        assert_error(res, EX_IOERR, "mq-produce")
        assert re.search(r"(?i)\bfull\b|no space", res.stderr), \
            f"the message should say the disk is full: {res.stderr!r}"
        printed = [tuple(map(int, l.split())) for l in res.stdout.decode().splitlines()]
        assert len(printed) > 1000, "hardly anything was written before the disk filled up"
        assert printed == [(0, i) for i in range(len(printed))]

        recs = m.records("full")  # strict kafka_validate right after the failure
        assert len(recs) >= len(printed)
        for (p, o), line in zip(printed, lines):
            assert recs[o].value == line
        assert [r.value for r in recs] == lines[:len(recs)]
        assert m.tail("full", "-n", "1").stdout == recs[-1].value + b"\n"

        # Still full: a second attempt fails the same way and leaves the log valid.
        res = m.run("mq-produce", "full", input=b"\n".join(lines[:20000]) + b"\n")
        assert_error(res, EX_IOERR, "mq-produce")
        recs2 = m.records("full")
        assert [r.value for r in recs2[:len(recs)]] == [r.value for r in recs]
        assert [r.value for r in recs2[len(recs):]] == lines[:len(recs2) - len(recs)]
    finally:
        m.cleanup()
        subprocess.run(["umount", "-l", str(small)], capture_output=True)
