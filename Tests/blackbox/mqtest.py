"""Helpers for the black-box tests of the mq tools (imported by conftest.py and the tests).

The tools are run as subprocesses only; the log they write is checked with the independent
`Tests/interop/kafka_validate.py` (kafka-python), never with mq code.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import NamedTuple, Optional

REPO = Path(__file__).resolve().parents[2]
INTEROP = REPO / "Tests" / "interop"
FIXTURES = REPO / "Tests" / "MQLogTests" / "Fixtures"
if str(INTEROP) not in sys.path:
    sys.path.insert(0, str(INTEROP))

import kafka_validate as kv  # noqa: E402

TOOLS = ("mq-produce", "mq-tail", "mq-topic", "mq-consume", "mq-stat", "mq-bench", "mq-replay", "mq-dlq", "mq-compact", "mq-group",
         "mq-mirror")
DEFAULT_TIMEOUT = 120

# sysexits
EX_OK, EX_USAGE, EX_DATAERR, EX_NOINPUT = 0, 64, 65, 66
EX_CANTCREAT, EX_IOERR, EX_TEMPFAIL, EX_NOPERM, EX_CONFIG = 73, 74, 75, 77, 78


def find_bin_dir() -> Optional[Path]:
    env = os.environ.get("MQ_BIN")
    candidates = [Path(env)] if env else [REPO / ".build" / "release", REPO / ".build" / "debug"]
    for c in candidates:
        if all((c / t).is_file() and os.access(c / t, os.X_OK) for t in TOOLS):
            return c.resolve()
    return None


class Result(NamedTuple):
    status: int
    stdout: bytes
    stderr: str

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    def lines(self) -> list:
        return self.stdout.decode().splitlines()


def describe(res: Result, args) -> str:
    out = res.stdout[:2000]
    return (f"\n$ {' '.join(map(str, args))}\nexit {res.status}\n"
            f"stdout: {out!r}\nstderr: {res.stderr[:4000]}")


# ---------------------------------------------------------------------------------------------
# JSON envelopes: null | string (UTF-8) | {"base64": ...}


def enc(data) -> object:
    """bytes -> JSON value the way the tools exchange it."""
    if data is None:
        return None
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def b64(data: bytes) -> dict:
    return {"base64": base64.b64encode(data).decode("ascii")}


def dec(value) -> Optional[bytes]:
    """JSON value (null | string | {"base64"}) -> bytes."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and set(value) == {"base64"}:
        return base64.b64decode(value["base64"], validate=True)
    raise AssertionError(f"not a null / string / {{\"base64\"}} value: {value!r}")


def jline(value=None, key=None, headers=None, partition=None, timestamp=None, **extra) -> bytes:
    """One input line for `mq-produce --json`. bytes are encoded like the tools do."""
    obj = {"key": enc(key), "value": enc(value)}
    if headers is not None:
        obj["headers"] = [[n, enc(v)] for n, v in headers]
    if partition is not None:
        obj["partition"] = partition
    if timestamp is not None:
        obj["timestamp"] = timestamp
    obj.update(extra)
    return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


def envelope_message(e: dict) -> tuple:
    """A tail --json envelope -> (partition, offset, timestamp, key, value, headers) in bytes."""
    return (e["partition"], e["offset"], e["timestamp"], dec(e["key"]), dec(e["value"]),
            [(h[0], dec(h[1])) for h in e["headers"]])


def record_message(r, partition=None) -> tuple:
    """A kafka_validate Record -> the same tuple shape as envelope_message."""
    p = int(Path(r.partition_dir).name) if partition is None else partition
    return (p, r.offset, r.timestamp, r.key, r.value, [(n, v) for n, v in r.headers])


def read_properties(path) -> dict:
    """A small Java .properties reader (comments, `=`/`:`/space separators, escapes)."""
    props = {}
    text = Path(path).read_text(encoding="latin-1")
    logical, pending = [], ""
    for raw in text.splitlines():
        line = pending + raw.lstrip() if pending else raw.strip()
        if not pending and (not line or line[0] in "#!"):
            continue
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            pending = line[:-1]
            continue
        pending = ""
        logical.append(line)
    for line in logical:
        m = re.match(r"((?:\\.|[^=:\s\\])*)\s*[=:\s]?\s*(.*)$", line)
        key, value = m.group(1), m.group(2)
        unesc = lambda s: re.sub(r"\\(.)", lambda x: {"n": "\n", "t": "\t"}.get(x.group(1),
                                                                         x.group(1)), s)
        props[unesc(key)] = unesc(value)
    return props


# ---------------------------------------------------------------------------------------------
# Streaming subprocesses


class Stream:
    """Collects a pipe's bytes on a background thread."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.data = bytearray()
        self.closed = False
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        fd = self.pipe.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self.cond:
                if not chunk:
                    self.closed = True
                    self.cond.notify_all()
                    return
                self.data += chunk
                self.cond.notify_all()

    def snapshot(self) -> bytes:
        with self.cond:
            return bytes(self.data)

    def complete_lines(self) -> list:
        data = self.snapshot()
        end = data.rfind(b"\n")
        return [] if end < 0 else data[:end].split(b"\n")

    def wait_for(self, predicate, timeout: float) -> bool:
        """Wait until predicate(bytes so far) holds; False on timeout or EOF without it."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if predicate(bytes(self.data)):
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return predicate(bytes(self.data))
                self.cond.wait(left)

    def wait_closed(self, timeout: float) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()


class Proc:
    """A running tool with its stdout/stderr collected in the background."""

    def __init__(self, args, env, stdin=subprocess.PIPE, cwd=None):
        self.args = args
        self.p = subprocess.Popen(args, env=env, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, cwd=cwd, start_new_session=True)
        self.out = Stream(self.p.stdout)
        self.err = Stream(self.p.stderr)

    @property
    def pid(self):
        return self.p.pid

    def write(self, data: bytes):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def close_stdin(self):
        try:
            self.p.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    def signal(self, sig):
        if self.p.poll() is None:
            os.kill(self.p.pid, sig)

    def wait(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{' '.join(map(str, self.args))} did not exit within "
                                 f"{timeout} s; stderr: {self.err.snapshot()[-2000:]!r}")

    def finish(self, timeout: float = DEFAULT_TIMEOUT) -> Result:
        status = self.wait(timeout)
        self.out.wait_closed(10)
        self.err.wait_closed(10)
        return Result(status, self.out.snapshot(), self.err.snapshot().decode("utf-8", "replace"))

    def running(self) -> bool:
        return self.p.poll() is None

    def kill(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.p.wait(10)


# ---------------------------------------------------------------------------------------------
# The per-test log directory


class MQ:
    """A fresh log directory and ways to run the tools against it."""

    def __init__(self, bin_dir: Path, log_dir: Path):
        self.bin = bin_dir
        self.dir = log_dir
        self.procs = []

    # -- running tools -----------------------------------------------------------------------

    def env(self, use_env: bool = True, extra=None) -> dict:
        env = dict(os.environ)
        env.pop("MQ_DIR", None)
        if use_env:
            env["MQ_DIR"] = str(self.dir)
        env.setdefault("LC_ALL", "C.UTF-8")
        if extra:
            env.update(extra)
        return env

    def argv(self, tool: str, args, dir_flag: bool = True) -> list:
        args = [str(a) for a in args]
        if dir_flag:
            # mq-topic, mq-dlq and mq-group take the option after their subcommand (`mq-topic create --dir D NAME`).
            at = 1 if tool in ("mq-topic", "mq-dlq", "mq-group") and args else 0
            args = args[:at] + ["--dir", str(self.dir)] + args[at:]
        return [str(self.bin / tool)] + args

    def run(self, tool: str, *args, input: Optional[bytes] = None, check=None,
            timeout: float = DEFAULT_TIMEOUT, dir_flag: bool = True, use_env: bool = True,
            env_extra=None) -> Result:
        """Run a tool to completion. check: None (any status), True/0 (must succeed) or the
        expected exit status."""
        argv = self.argv(tool, args, dir_flag)
        try:
            p = subprocess.run(argv, input=input if input is not None else b"",
                               capture_output=True, timeout=timeout,
                               env=self.env(use_env, env_extra))
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"{' '.join(argv)} did not finish within {timeout} s; "
                                 f"stderr: {(e.stderr or b'')[-2000:]!r}")
        res = Result(p.returncode, p.stdout, p.stderr.decode("utf-8", "replace"))
        if check is not None:
            want = 0 if check is True else check
            assert res.status == want, f"expected exit {want}" + describe(res, argv)
        return res

    def start(self, tool: str, *args, dir_flag: bool = True, use_env: bool = True,
              stdin=subprocess.PIPE, env_extra=None) -> Proc:
        proc = Proc(self.argv(tool, args, dir_flag), self.env(use_env, env_extra), stdin=stdin)
        self.procs.append(proc)
        return proc

    def cleanup(self):
        for p in self.procs:
            p.kill()

    # -- conveniences ------------------------------------------------------------------------

    def create(self, topic: str, partitions: int = 1, *configs: str) -> Result:
        args = ["create", topic, "--partitions", str(partitions)]
        for c in configs:
            args += ["--config", c]
        return self.run("mq-topic", *args, check=0)

    def produce(self, topic: str, data: bytes, *args, check=0, timeout=DEFAULT_TIMEOUT) -> Result:
        return self.run("mq-produce", topic, *args, input=data, check=check, timeout=timeout)

    def tail(self, *args, check=0, timeout=DEFAULT_TIMEOUT) -> Result:
        return self.run("mq-tail", *args, check=check, timeout=timeout)

    def tail_json(self, *args, check=0) -> list:
        res = self.tail(*args, "--json", check=check)
        return [json.loads(line) for line in res.stdout.decode("utf-8").splitlines()]

    def topic_dir(self, topic: str) -> Path:
        return self.dir / "topics" / topic

    def partition_dir(self, topic: str, partition: int) -> Path:
        return self.topic_dir(topic) / str(partition)

    def properties(self, topic: str) -> dict:
        return read_properties(self.topic_dir(topic) / "topic.properties")

    # -- independent reading with kafka-python -----------------------------------------------

    def validate(self, topic: str, allow_gaps: bool = False, index_slack: bool = False) -> list:
        """kafka_validate the topic's partitions; return their `Partition`s sorted by number."""
        root = self.topic_dir(topic)
        assert root.is_dir(), f"no topic directory {root}"
        try:
            parts = kv.validate(root, allow_gaps=allow_gaps, index_slack=index_slack)
        except kv.ValidationError as e:
            raise AssertionError(f"kafka_validate rejects topic {topic}: {e}") from None
        for p in parts:
            assert p.directory.parent == root and p.directory.name.isdigit(), \
                f"segments outside a partition directory: {p.directory}"
        return sorted(parts, key=lambda p: int(p.directory.name))

    def records(self, topic: str, partition: Optional[int] = None) -> list:
        """All records of a topic (or one partition) as read by kafka-python."""
        recs = []
        for p in self.validate(topic):
            if partition is None or int(p.directory.name) == partition:
                recs.extend(p.records)
        return recs

    def values(self, topic: str, partition: Optional[int] = None) -> list:
        return [r.value for r in self.records(topic, partition)]

    def validate_cli(self, *paths) -> Result:
        """Run kafka_validate.py as a program (exit status + message)."""
        p = subprocess.run([sys.executable, str(INTEROP / "kafka_validate.py"), *map(str, paths)],
                           capture_output=True, timeout=600)
        return Result(p.returncode, p.stdout, p.stderr.decode())


def assert_error(res: Result, status: int, tool: str, *needles: str, argv=None):
    """The tool failed with `status`, and stderr starts with `tool: ` and mentions needles."""
    ctx = describe(res, argv or [tool])
    assert res.status == status, f"expected exit {status}" + ctx
    assert res.stderr.startswith(f"{tool}: "), f"stderr must start with '{tool}: '" + ctx
    low = res.stderr.lower()
    for n in needles:
        assert n.lower() in low, f"stderr should mention {n!r}" + ctx


def signalled(status: int, sig: int, code: int) -> bool:
    """True if a process ended by `sig` as a shell reports it (exit `code`, or killed by it)."""
    return status in (code, -sig)


# ---------------------------------------------------------------------------------------------
# A group's committed offsets, read as docs/FORMAT.md §13 says (no mq code)

COMMIT_SLOT = 32      # one slot: generation, offset, committedMs, CRC-32C, zero
COMMIT_RECORD = 128   # one partition in groups/G/committed/TOPIC: two slots, the holder, zeros


def commits_file(root, group: str, topic: str) -> Path:
    """groups/GROUP/committed/TOPIC: every partition's committed offset."""
    return Path(root) / "groups" / group / "committed" / topic


def decode_slots(pair: bytes) -> list:
    """[(generation, offset) or None] for the two slots in `pair` (zero-padded to 64 bytes)."""
    import struct
    from crc32c import crc32c
    pair = pair.ljust(2 * COMMIT_SLOT, b"\0")
    out = []
    for i in (0, 1):
        raw = pair[i * COMMIT_SLOT:(i + 1) * COMMIT_SLOT]
        generation, offset, _ms, crc = struct.unpack("<QqqI", raw[:28])
        valid = crc == crc32c(raw[:24]) and generation >= 1 and offset >= 0
        out.append((generation, offset) if valid else None)
    return out


def commit_slots(root, group: str, topic: str, partition: int) -> list:
    """The two slots of a partition in the group's file of the topic (None, None when absent)."""
    path = commits_file(root, group, topic)
    data = path.read_bytes() if path.exists() else b""
    return decode_slots(data[partition * COMMIT_RECORD:partition * COMMIT_RECORD + 2 * COMMIT_SLOT])


def committed_offset(root, group: str, topic: str, partition: int = 0) -> Optional[int]:
    """The committed offset (the valid slot with the larger generation), or None; a partition
    with no commit in committed/TOPIC falls back to the earlier layout's offsets/TOPIC/P."""
    valid = [s for s in commit_slots(root, group, topic, partition) if s is not None]
    if not valid:
        legacy = Path(root) / "groups" / group / "offsets" / topic / str(partition)
        if legacy.exists():
            valid = [s for s in decode_slots(legacy.read_bytes()[:2 * COMMIT_SLOT]) if s is not None]
    return max(valid)[1] if valid else None


def lease_held(root, group: str, topic: str, partition: int) -> bool:
    """True when some process holds the partition's lease: an open-file-description lock on its
    128 bytes of committed/TOPIC (fcntl F_OFD_GETLK)."""
    import fcntl
    import struct
    path = commits_file(root, group, topic)
    if not path.exists():
        return False
    F_OFD_GETLK = 36
    with open(path, "rb") as f:
        arg = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, partition * COMMIT_RECORD, COMMIT_RECORD, 0)
        got = fcntl.fcntl(f, F_OFD_GETLK, arg)
    return struct.unpack("hhqqi", got[:struct.calcsize("hhqqi")])[0] != fcntl.F_UNLCK


def mirror_input(n: int, seed: int, all_kinds: bool = False) -> bytes:
    """n JSON envelopes for mq-produce --json, as the mirror tests send them: text and binary
    values, null values, headers with duplicate names and null values, keys k0..k49; with
    `all_kinds`, also empty values, null keys and binary keys."""
    import random
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        value = None if i % 97 == 0 else (bytes(rng.randrange(256) for _ in range(12)) if i % 13 == 0 else f"v{i}")
        if all_kinds and i % 89 == 0:
            value = b""
        headers = [("trace", f"t{i}"), ("dup", "1"), ("dup", "2")] if i % 5 == 0 else []
        if i % 31 == 0:
            headers.append(("nullh", None))
        key = f"k{i % 50}"
        if all_kinds:
            key = None if i % 41 == 0 else (bytes([0, 255, i % 256]) if i % 43 == 0 else key)
        lines.append(jline(value, key=key, headers=headers))
    return b"".join(lines)


def run_with_terminal_stderr(argv, env, timeout: float = 60):
    """Runs `argv` with standard error on a pseudo-terminal; returns (exit status, standard
    output, every byte written to the terminal)."""
    import pty
    master, slave = pty.openpty()
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=slave, env=env, timeout=timeout)
        os.close(slave)
        slave = None
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
    return p.returncode, p.stdout, seen


def murmur2_partition(key: bytes, partitions: int) -> int:
    from kafka.partitioner.default import murmur2
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def run_as_nobody(argv, input: bytes = b"", env=None, timeout: float = 60) -> Result:
    """Run a command as uid/gid 65534 with no supplementary groups (root ignores modes)."""
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"] + \
        [str(a) for a in argv]
    p = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, env=env)
    return Result(p.returncode, p.stdout, p.stderr.decode("utf-8", "replace"))


def script(tmp_path, name, body) -> str:
    """An executable shell script `name` in tmp_path with `body` after the #! line; its path."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | 0o111)
    return str(path)
