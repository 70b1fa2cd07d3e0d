#!/usr/bin/env python3
"""Power-loss trials of the mq tools on crashfs (Tests/powerloss/crashfs.c).

`kill -9` keeps the page cache, so it cannot show what survives a power cut.
crashfs keeps written data and directory entries in memory, separately from
what was fsynced, and drops the unsynced part on a simulated crash. A trial:

1. mount crashfs on a temporary directory, write a new boot id to the file
   that MQ_BOOT_ID_FILE names (the tools read it instead of
   /proc/sys/kernel/random/boot_id), create a topic and make that durable;
2. run a workload (producers with --sync batch --print-offsets, producers with
   the default --sync exit, a consumer group) with MQ_DIR on the mount;
3. at a random moment (seeded) SIGKILL every process of the workload, crash
   the file system (everything unsynced is dropped), write a new boot id;
4. check the invariants (`check_after_crash`), then run another cycle or
   unmount.

Library: `CrashFS`, `Machine`, `run_trial`, `unavailable()`. CLI:

    python3 Tests/powerloss/powerloss.py [--trials N] [--seed S] [--torn] [--keep]
        [--kind producers|compact|replay|dlq|txn|dedup|delay|topic|all] [--sweep]

prints the seed and every violation; exit status 1 when there was one. --kind picks the
workload (scenarios.py has the tools other than plain producers and groups; all: every kind
in turn); --sweep runs, instead of randomized trials, each kind's crash after every
durability call (scenarios.sweep).
MQ_BIN names the directory of the mq binaries (default .build/release).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SOURCE = HERE / "crashfs.c"
BUILD_DIR = REPO / ".build" / "powerloss"
TOOLS = ("mq-produce", "mq-tail", "mq-topic", "mq-consume", "mq-stat", "mq-compact")


class Unavailable(Exception):
    """crashfs cannot be built or mounted here; the message says why."""


# ---------------------------------------------------------------------------------------------
# Building and mounting crashfs


def _compiler() -> Optional[str]:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    return None


def build_crashfs() -> Path:
    """Compiles crashfs.c into .build/powerloss/crashfs when it is missing or older."""
    out = BUILD_DIR / "crashfs"
    if out.is_file() and out.stat().st_mtime >= SOURCE.stat().st_mtime:
        return out
    if not shutil.which("pkg-config"):
        raise Unavailable("pkg-config is missing (scripts/setup.sh installs it)")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "fuse3"], capture_output=True, text=True)
    if flags.returncode != 0:
        raise Unavailable("libfuse3-dev is not installed (pkg-config fuse3 fails; scripts/setup.sh installs it)")
    cc = _compiler()
    if cc is None:
        raise Unavailable("no C compiler ($CC, cc, gcc or clang)")
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"crashfs.{os.getpid()}")
    res = subprocess.run([cc, "-O2", "-Wall", "-o", str(tmp), str(SOURCE), *flags.stdout.split()],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise Unavailable(f"cannot compile crashfs.c with {cc}: {res.stderr[-2000:]}")
    os.replace(tmp, out)
    return out


def unavailable() -> Optional[str]:
    """Why power-loss tests cannot run here, or None when they can."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse does not exist (no FUSE in this kernel or container)"
    if not shutil.which("fusermount3"):
        return "fusermount3 is missing (Debian package fuse3; scripts/setup.sh installs it)"
    try:
        build_crashfs()
    except Unavailable as e:
        return str(e)
    return None


class CrashFS:
    """One mounted crashfs. Always call `stop` (or use it as a context manager)."""

    def __init__(self, mountpoint: Path, size: Optional[int] = None, torn: bool = False,
                 log: Optional[Path] = None):
        self.mountpoint = Path(mountpoint)
        self.size = size
        self.torn = torn
        self.log = log
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "CrashFS":
        binary = build_crashfs()
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        opts = ["default_permissions"]
        if os.getuid() == 0:
            opts.append("allow_other")
        if self.size:
            opts.append(f"size={self.size}")
        if self.torn:
            opts.append("torn")
        err = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen([str(binary), "-f", "-s", "-o", ",".join(opts), str(self.mountpoint)],
                                     stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        if self.log:
            err.close()
        line = self._readline(10.0)
        if line.strip() != b"ready":
            self.stop()
            raise Unavailable(f"crashfs did not mount on {self.mountpoint} (said {line!r}; "
                              f"see {self.log or 'its standard error'})")
        return self

    def _readline(self, timeout: float) -> bytes:
        box: List[bytes] = []
        t = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        return box[0] if box else b""

    def control(self, command: str) -> None:
        with open(self.mountpoint / ".crashfs", "w") as f:
            f.write(command)

    def crash(self, seed: int = 1) -> None:
        """Drops everything unsynced (with torn: keeps a seeded random prefix of it)."""
        self.control(f"crash {seed}")

    def sync(self) -> None:
        """Makes everything durable, as if the machine had been up long enough."""
        self.control("sync")

    def stats(self) -> Dict[str, int]:
        text = (self.mountpoint / ".crashfs").read_text()
        return {k: int(v) for k, v in (line.split() for line in text.splitlines() if line)}

    def stop(self) -> None:
        """Unmounts and makes sure the file-system process is gone."""
        if self.proc is None:
            return
        for args in (["fusermount3", "-u", str(self.mountpoint)], ["fusermount3", "-uz", str(self.mountpoint)]):
            if self.proc.poll() is not None:
                break
            subprocess.run(args, capture_output=True)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        # a killed file system leaves "transport endpoint is not connected" behind
        if os.path.ismount(self.mountpoint):
            subprocess.run(["fusermount3", "-uz", str(self.mountpoint)], capture_output=True)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------------------------------------
# A simulated machine: crashfs, a boot id, and the processes of the workload


def find_bin_dir() -> Path:
    env = os.environ.get("MQ_BIN")
    for c in ([Path(env)] if env else [REPO / ".build" / "release", REPO / ".build" / "debug"]):
        if all(os.access(c / t, os.X_OK) for t in TOOLS):
            return c.resolve()
    raise Unavailable(f"mq binaries not found in {env or '.build/release or .build/debug'}")


@dataclass
class Result:
    status: int
    stdout: bytes
    stderr: str

    def lines(self) -> List[str]:
        return self.stdout.decode("utf-8", "replace").splitlines()


class Machine:
    """crashfs mounted at WORK/mnt, the log in WORK/mnt/mq, boot id in WORK/boot_id."""

    def __init__(self, work: Path, bin_dir: Path, torn: bool = False, size: Optional[int] = None):
        self.work = Path(work)
        self.bin = bin_dir
        self.fs = CrashFS(self.work / "mnt", size=size, torn=torn, log=self.work / "crashfs.log")
        self.root = self.work / "mnt" / "mq"
        self.boot_file = self.work / "boot_id"
        self.boots = 0
        self.procs: List[subprocess.Popen] = []
        self.lock = threading.Lock()
        self.down = False

    def start(self) -> "Machine":
        self.fs.start()
        self.boot()
        return self

    def stop(self) -> None:
        self.kill_all()
        self.fs.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def boot(self) -> None:
        self.boot_file.write_text(str(uuid.uuid4()) + "\n")
        with self.lock:
            self.boots += 1
            self.down = False

    def env(self) -> Dict[str, str]:
        env = dict(os.environ)
        env["MQ_DIR"] = str(self.root)
        env["MQ_BOOT_ID_FILE"] = str(self.boot_file)
        env.pop("MQ_POLL", None)
        return env

    def spawn(self, tool: str, *args: str, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
              boot: Optional[int] = None) -> subprocess.Popen:
        """Starts a tool of the workload; raises MachineDown once the power is cut, and when
        `boot` is given and is not the current boot (a workload never outlives its boot)."""
        with self.lock:
            if self.down or (boot is not None and boot != self.boots):
                raise MachineDown()
            p = subprocess.Popen([str(self.bin / tool), *args], stdin=stdin, stdout=stdout,
                                 stderr=subprocess.PIPE, env=self.env(), cwd=str(self.work),
                                 start_new_session=True)
            self.procs.append(p)
            return p

    def run(self, tool: str, *args: str, input: bytes = b"", timeout: float = 60) -> Result:
        p = subprocess.run([str(self.bin / tool), *args], input=input, capture_output=True,
                           env=self.env(), cwd=str(self.work), timeout=timeout)
        return Result(p.returncode, p.stdout, p.stderr.decode("utf-8", "replace"))

    def kill_all(self) -> None:
        with self.lock:
            self.down = True
            procs, self.procs = self.procs, []
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in procs:
            p.wait()

    def power_loss(self, seed: int = 1) -> None:
        """SIGKILL every workload process, drop what is unsynced, boot again."""
        self.kill_all()
        self.fs.crash(seed)
        self.boot()


class MachineDown(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Workload pieces


class LineReader:
    """Reads a process's standard output into lines, in a thread."""

    def __init__(self, stream):
        self.lines: List[str] = []
        self.t = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.t.start()

    def _run(self, stream):
        for raw in stream:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
        stream.close()

    def join(self):
        self.t.join(10)


class BatchProducer:
    """mq-produce --sync batch --print-offsets, fed unique lines at a random pace; with
    sync="exit", a default producer that is still running at the crash (nothing it wrote
    is promised, but a consumer group may have read it)."""

    def __init__(self, m: Machine, topic: str, name: str, rng: random.Random, sync: str = "batch"):
        self.name = name
        self.sent: List[str] = []
        args = ["--sync", "batch", "--print-offsets"] if sync == "batch" else []
        self.p = m.spawn("mq-produce", *args, topic, stdin=subprocess.PIPE)
        self.out = LineReader(self.p.stdout)
        self.rng = random.Random(rng.random())
        self.t = threading.Thread(target=self._feed, daemon=True)
        self.t.start()

    def _feed(self):
        i = 0
        try:
            while True:
                chunk = [f"{self.name}-{i + k}" for k in range(self.rng.randint(1, 40))]
                i += len(chunk)
                self.sent.extend(chunk)
                self.p.stdin.write(("\n".join(chunk) + "\n").encode())
                self.p.stdin.flush()
                time.sleep(self.rng.random() * 0.02)
        except (BrokenPipeError, ValueError, OSError):
            pass

    def finish(self):
        self.t.join(10)
        self.out.join()
        try:
            self.p.stdin.close()
        except OSError:
            pass

    def printed(self) -> List[Tuple[str, int, int]]:
        """(message, partition, offset) for every offset printed."""
        res = []
        for msg, line in zip(self.sent, self.out.lines):
            p, o = line.split()
            res.append((msg, int(p), int(o)))
        return res


class ExitProducers:
    """Runs default (--sync exit) producers one after another; remembers those that exited 0."""

    def __init__(self, m: Machine, topic: str, name: str, rng: random.Random):
        self.m, self.topic, self.name = m, topic, name
        self.boot = m.boots
        self.rng = random.Random(rng.random())
        self.succeeded: List[List[str]] = []
        self.failures: List[str] = []
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        run = 0
        while True:
            msgs = [f"{self.name}.{run}-{k}" for k in range(self.rng.randint(1, 300))]
            run += 1
            try:
                p = self.m.spawn("mq-produce", self.topic, stdin=subprocess.PIPE, boot=self.boot)
            except MachineDown:
                return
            try:
                _, err = p.communicate(("\n".join(msgs) + "\n").encode(), timeout=60)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                return
            if p.returncode == 0:
                self.succeeded.append(msgs)
            elif p.returncode != -signal.SIGKILL:
                self.failures.append(f"mq-produce exited {p.returncode}: {err.decode(errors='replace')[-500:]}")
            time.sleep(self.rng.random() * 0.05)

    def finish(self):
        self.t.join(10)


class Consumer:
    """mq-consume -g GROUP TOPIC, following; records every message it delivers."""

    def __init__(self, m: Machine, topic: str, group: str):
        self.p = m.spawn("mq-consume", "-g", group, topic)
        self.out = LineReader(self.p.stdout)

    def finish(self) -> List[str]:
        self.out.join()
        return self.out.lines


# ---------------------------------------------------------------------------------------------
# Invariants


def read_log(m: Machine, topic: str, violations: List[str], when: str) -> Optional[Dict[Tuple[int, int], str]]:
    res = m.run("mq-tail", "-n", "+0", "--format", "%p %o %s\\n", topic)
    if res.status != 0:
        violations.append(f"{when}: mq-tail -n +0 {topic} exited {res.status}: {res.stderr[-800:]}")
        return None
    log: Dict[Tuple[int, int], str] = {}
    last: Dict[int, int] = {}
    for line in res.lines():
        p, o, v = line.split(" ", 2)
        p, o = int(p), int(o)
        if o <= last.get(p, -1):
            violations.append(f"{when}: partition {p}: offset {o} after {last[p]} in mq-tail's output")
        last[p] = o
        log[(p, o)] = v
    return log


def committed_offsets(m: Machine, group: str, topic: str) -> Dict[int, Optional[int]]:
    """The committed offset of each partition that has one, read from the group's file of the
    topic (FORMAT.md §13: 128 bytes per partition, two 32-byte slots first)."""
    import struct
    try:
        import crc32c as _crc  # type: ignore
        crc = _crc.crc32c
    except Exception:  # noqa: BLE001
        crc = None
    path = m.root / "groups" / group / "committed" / topic
    out: Dict[int, Optional[int]] = {}
    if not path.is_file():
        return out
    data = path.read_bytes()
    for p in range((len(data) + 127) // 128):
        record = data[p * 128:p * 128 + 64].ljust(64, b"\0")
        best = None
        for slot in (record[0:32], record[32:64]):
            gen, off, _ms, c = struct.unpack("<QqqI", slot[:28])
            if gen < 1 or off < 0 or (crc is not None and crc(slot[:24]) != c):
                continue
            if best is None or gen > best[0]:
                best = (gen, off)
        if best is not None:
            out[p] = best[1]
    return out


@dataclass
class CycleReport:
    violations: List[str] = field(default_factory=list)
    group_skips: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    skipped: set = field(default_factory=set)


def check_after_crash(m: Machine, topic: str, partitions: int, cycle: int, batch: List[BatchProducer],
                      exits: List[ExitProducers], delivered_before: set, group: str,
                      report: CycleReport) -> set:
    """The invariants after a reboot; returns what the group delivered afterwards."""
    v = report.violations
    when = f"cycle {cycle}"
    for e in exits:
        v.extend(f"{when}: before the crash: {f}" for f in e.failures)
    # readers before any writer has recovered (FORMAT.md §9 allows a reader to report
    # corruption then, so these are notes)
    res = m.run("mq-compact", "--check", "--all")
    if res.status != 0:
        report.notes.append(f"{when}: before a writer: mq-compact --check --all exited {res.status}: "
                            f"{res.stdout.decode(errors='replace')[-400:]!r}")
    res = m.run("mq-tail", "-n", "+0", topic)
    if res.status != 0:
        report.notes.append(f"{when}: before a writer: mq-tail -n +0 exited {res.status}: {res.stderr[-400:]}")
    # a new producer appends to every partition: the writer recovers the tail
    post = []
    for p in range(partitions):
        msgs = [f"post{cycle}.{p}-{i}" for i in range(20)]
        post += msgs
        res = m.run("mq-produce", "-p", str(p), topic, input=("\n".join(msgs) + "\n").encode())
        if res.status != 0:
            v.append(f"{when}: mq-produce -p {p} after the reboot exited {res.status}: {res.stderr[-800:]}")
    res = m.run("mq-compact", "--check", "--all")
    if res.status != 0:
        v.append(f"{when}: mq-compact --check --all exited {res.status}: {res.stdout[-800:]!r} {res.stderr[-800:]}")
    log = read_log(m, topic, v, when)
    if log is None:
        return set()
    values = set(log.values())
    missing_post = [x for x in post if x not in values]
    if res.status == 0 and missing_post:
        v.append(f"{when}: {len(missing_post)} messages of the producer run after the reboot are missing")
    # --sync batch: every printed offset is there with its message
    for b in batch:
        for msg, p, o in b.printed():
            got = log.get((p, o))
            if got != msg:
                v.append(f"{when}: --sync batch producer {b.name}: printed {p} {o} for {msg!r}, "
                         f"after the crash that offset holds {got!r}")
                break
    # --sync exit: every producer that exited 0 has all its input there
    for e in exits:
        for msgs in e.succeeded:
            lost = [x for x in msgs if x not in values]
            if lost:
                v.append(f"{when}: --sync exit producer run {msgs[0].split('-')[0]} exited 0 with "
                         f"{len(msgs)} messages; {len(lost)} lost after the crash (first {lost[0]!r})")
    # every reader reads
    res = m.run("mq-consume", "-g", f"fresh{cycle}", "-e", topic)
    if res.status != 0:
        v.append(f"{when}: mq-consume -g fresh{cycle} -e exited {res.status}: {res.stderr[-800:]}")
    elif set(res.lines()) != values:
        v.append(f"{when}: a new group reads {len(set(res.lines()))} distinct messages, mq-tail {len(values)}")
    res = m.run("mq-stat", "--json")
    if res.status != 0:
        v.append(f"{when}: mq-stat exited {res.status}: {res.stderr[-800:]}")
    committed = committed_offsets(m, group, topic)
    # the group: no message durable after the reboot is skipped
    res = m.run("mq-consume", "-g", group, "-e", topic)
    if res.status != 0:
        v.append(f"{when}: mq-consume -g {group} -e exited {res.status}: {res.stderr[-800:]}")
        return set()
    after = set(res.lines())
    skipped = sorted(((p, o), val) for (p, o), val in log.items()
                     if val not in delivered_before and val not in after and val not in report.skipped)
    report.skipped.update(val for _, val in skipped)
    if skipped:
        parts = sorted({p for (p, _), _ in skipped})
        report.group_skips.append(
            f"{when}: group {group!r} skipped {len(skipped)} messages that are in the log after the reboot "
            f"(partitions {parts}; first: partition {skipped[0][0][0]} offset {skipped[0][0][1]} "
            f"{skipped[0][1]!r}); its committed offsets after the reboot: {committed}; "
            f"log end offsets: { {p: max(o for (q, o) in log if q == p) + 1 for p in parts} }")
    return after


# ---------------------------------------------------------------------------------------------
# A trial


@dataclass
class TrialResult:
    seed: int
    torn: bool
    cycles: int
    violations: List[str]
    group_skips: List[str]
    notes: List[str]
    seconds: float

    def describe(self) -> str:
        lines = [f"trial seed {self.seed} ({'torn writes' if self.torn else 'drop unsynced'}, "
                 f"{self.cycles} power cycles, {self.seconds:.1f}s)"]
        lines += [f"  violation: {x}" for x in self.violations]
        lines += [f"  group skip: {x}" for x in self.group_skips]
        lines += [f"  note: {x}" for x in self.notes]
        return "\n".join(lines)


def run_trial(seed: int, bin_dir: Path, work: Path, torn: Optional[bool] = None, cycles: int = 2,
              keep: bool = False) -> TrialResult:
    rng = random.Random(seed)
    if torn is None:
        torn = rng.random() < 0.5
    started = time.monotonic()
    report = CycleReport()
    work.mkdir(parents=True, exist_ok=True)
    topic, group = "t", "g"
    m = Machine(work, bin_dir, torn=torn)
    try:
        m.start()
        partitions = rng.choice([1, 2, 3])
        seg = rng.choice([16384, 65536, 1048576])
        res = m.run("mq-topic", "create", topic, "--partitions", str(partitions),
                    "--config", f"segment.bytes={seg}")
        if res.status != 0:
            raise RuntimeError(f"mq-topic create: {res.status} {res.stderr}")
        group_durable = rng.random() < 0.7
        if group_durable:
            # the group's files exist before the machine has flushed everything
            m.run("mq-consume", "-g", group, "-e", topic)
        # the machine has been up long enough for the kernel to write everything back
        m.fs.sync()
        if not group_durable:
            m.run("mq-consume", "-g", group, "-e", topic)
        report.notes.append(f"{partitions} partitions, segment.bytes={seg}, group files "
                            f"{'synced' if group_durable else 'never synced'} before the first crash")
        delivered: set = set()
        for cycle in range(1, cycles + 1):
            batch = [BatchProducer(m, topic, f"b{cycle}{chr(97 + i)}", rng) for i in range(rng.randint(0, 2))]
            streams = [BatchProducer(m, topic, f"s{cycle}{chr(97 + i)}", rng, sync="exit")
                       for i in range(rng.randint(0, 1))]
            exits = [ExitProducers(m, topic, f"e{cycle}{chr(97 + i)}", rng) for i in range(rng.randint(1, 2))]
            consumer = Consumer(m, topic, group) if rng.random() < 0.85 else None
            time.sleep(0.1 + rng.random() * 0.9)
            had_offsets = bool(committed_offsets(m, group, topic))
            m.power_loss(rng.getrandbits(32))
            for b in batch + streams:
                b.finish()
            for e in exits:
                e.finish()
            if consumer:
                delivered |= set(consumer.finish())
            if had_offsets and not committed_offsets(m, group, topic):
                report.notes.append(f"cycle {cycle}: the group's offset files vanished at the crash")
            delivered |= check_after_crash(m, topic, partitions, cycle, batch, exits, delivered, group, report)
        report.notes.append(f"crashfs: {m.fs.stats()}")
    finally:
        m.stop()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    return TrialResult(seed, torn, cycles, report.violations, report.group_skips, report.notes,
                       time.monotonic() - started)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=int(os.environ.get("MQ_POWERLOSS_TRIALS", "10")))
    ap.add_argument("--seed", type=int, default=None, help="seed of the first trial (default: random)")
    ap.add_argument("--torn", choices=["yes", "no", "mixed"], default="mixed")
    ap.add_argument("--cycles", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the work directories")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--kind", default="producers",
                    help="producers (default), compact, replay, dlq, txn, dedup, delay, topic or all")
    ap.add_argument("--sweep", action="store_true",
                    help="crash after every durability call of the kind's sequential workload")
    args = ap.parse_args()
    why = unavailable()
    if why:
        print(f"powerloss: cannot run: {why}", file=sys.stderr)
        return 77
    bin_dir = find_bin_dir()
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    print(f"powerloss: seed {seed}, {args.trials} trials, binaries {bin_dir}", flush=True)
    torn = {"yes": True, "no": False, "mixed": None}[args.torn]
    bad = 0
    base = Path(tempfile.mkdtemp(prefix="mq-powerloss-"))
    import scenarios  # noqa: E402  (imports this module)
    kinds = (["producers", *scenarios.KINDS] if args.kind == "all" else [args.kind])
    if args.sweep:
        for kind in kinds:
            if kind == "producers":
                continue
            r = scenarios.sweep(kind, bin_dir, base / f"sweep-{kind}", seed=seed,
                                max_points=scenarios.SWEEP_POINTS[kind])
            bad += bool(r.violations)
            print(r.describe(), flush=True)
        shutil.rmtree(base, ignore_errors=True)
        print(f"powerloss: {bad} of {len(kinds)} sweeps with violations (seed {seed})")
        return 1 if bad else 0
    for i in range(args.trials):
        kind = kinds[i % len(kinds)]
        if kind == "producers":
            r = run_trial(seed + i, bin_dir, base / str(seed + i), torn=torn, cycles=args.cycles, keep=args.keep)
        else:
            r = scenarios.run_kind_trial(kind, seed + i, bin_dir, base / str(seed + i), torn=torn,
                                         cycles=args.cycles, keep=args.keep)
        if r.violations or r.group_skips:
            bad += 1
        if r.violations or r.group_skips or args.verbose:
            print(f"[{kind}] {r.describe()}", flush=True)
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    print(f"powerloss: {bad} of {args.trials} trials with violations (seed {seed})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
