#!/usr/bin/env python3
"""`make torture`: random kill -9 trials over a concurrent mix of every mq tool.

Each trial gets a fresh log directory (trials are independent, so a violation is
reproduced with its trial seed alone) and runs at once, on shared topics:

* producers, each with a unique tag in its messages so every message is accounted for:
  `--sync batch --print-offsets`, `--sync exit`, `--sync none` (keyed with -K and unkeyed,
  codecs, batch sizes) into `t`; `--atomic` into `tx`; `--json --id-header id` with ids
  drawn from a shared pool (so ids repeat across and within producers) into `d`;
  keyed `--json --print-offsets` into the compacted `c` (cleanup.policy=compact, small
  segment.bytes); plain producers into the work topic `q`;
* consumers: `mq-consume -g G t` and `-g GX tx` (1 or 2 members, each run writing its
  own output file), `mq-consume --queue -g W q -- sh -c ...` and `mq-consume -g H -P 2 q
  -- sh -c ...` whose handlers record what they processed and fail some messages
  (always: dead-lettered with --dlq-on 3; on a first attempt at random: retried),
  `mq-tail -f t`;
* maintenance: a loop of `mq-compact` (`--all`, `c --force`, `t`), `mq-replay t --into r
  --from beginning --to end`.

At one or two random moments a random subset (or all) of the processes is killed with
SIGKILL (process group), and some are started again (producers as new producers). Then
producers finish their input, followers are stopped with SIGTERM, and the final phase runs
uninterrupted: the replay again, one appended message per partition of every topic (a
writer recovers each partition), the groups with -e, `mq-compact --check --all`, and an
independent validation of every partition directory with Tests/interop/kafka_validate.py
(kafka-python; --allow-gaps for the compacted topic). Checked:

* every offset a producer printed holds its message (in `c`: or a later record of the same
  key); every message of a producer that exited 0 is in the log;
* `--atomic`: read-committed (kafka-python's view and mq-tail's), a producer's messages are
  all visible or none; all when it exited 0;
* `d`: every id at most once; every id of a producer that exited 0 present;
* groups G, GX: the union of everything a group wrote over all its runs covers every
  (committed) message in the log; queue W and handler group H: every message of `q` was
  processed by a handler (exit 0) or is in q.dlq with that group;
* the replay: every committed record of `t` in the range its state records is in `r`
  exactly once (provenance headers mq.replay.*), with its value, and `r` holds nothing else
  from `t`;
* no exit status 70, no death by a signal we did not send, no "Fatal error" or other
  runtime trap on stderr, no unexpected exit status, no process outliving its time bound.

Trial i % 50 == 10 (or the trial at a third of a shorter run) puts the log on a 2 MiB
tmpfs: producers must fail with 74 ("full"/"no space") keeping what they acknowledged; the
tmpfs is then enlarged and the final phase runs as usual. Trial i % 50 == 30 (or at two
thirds) makes partition 0 of `t` mode 0555 in the middle of the mix and runs mq-produce and
mq-consume -g as uid 65534 (root ignores modes): they must exit 73 or 77 with a message.

    python3 Tests/torture/torture.py --trials 1000 [--seed S] [--bin DIR] [-v]
    python3 Tests/torture/torture.py --seed S --only 17 -v --keep     # replay trial 17

Prints `torture: N trials, M messages, V violations`; exit status 1 when V > 0.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "Tests" / "interop"))
import kafka_validate as kv  # noqa: E402

TOOLS = ("mq-produce", "mq-tail", "mq-topic", "mq-consume", "mq-replay", "mq-dlq", "mq-compact")
TRAPS = re.compile(r"Fatal error|Illegal instruction|Segmentation fault|Swift runtime failure|"
                   r"Bus error|Trace/breakpoint trap|Assertion failed|Precondition failed|core dumped")
PROC_LIMIT = 60.0       # no process of the mix may live longer
MOUNTS: list = []       # tmpfs mounts to undo at exit


def cleanup_mounts():
    while MOUNTS:
        m = MOUNTS.pop()
        subprocess.run(["umount", "-l", str(m)], capture_output=True)


atexit.register(cleanup_mounts)


# ---------------------------------------------------------------------------------------------
# Processes


class P:
    """One process of the mix: stdout and stderr go to files, stdin is a pipe fed by a thread
    (producers) or /dev/null."""

    def __init__(self, trial, name, kind, argv, allowed=(0,), feed=None, env=None, limit=PROC_LIMIT):
        self.trial, self.name, self.kind, self.argv = trial, name, kind, [str(a) for a in argv]
        self.allowed = set(allowed)
        self.out_path = trial.files / f"{name}.out"
        self.err_path = trial.files / f"{name}.err"
        self.killed = False      # SIGKILL sent by us while it ran
        self.termed = False      # SIGTERM sent by us while it ran
        self.lines = feed        # the producer's input, in order
        self.meta = {}
        self.started = time.monotonic()
        self.deadline = self.started + limit
        self.evaluated = False
        full_env = dict(os.environ, LC_ALL="C.UTF-8", SWIFT_BACKTRACE="enable=no")
        full_env.pop("MQ_DIR", None)
        if env:
            full_env.update(env)
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.p = subprocess.Popen(self.argv, stdin=subprocess.PIPE if feed is not None else subprocess.DEVNULL,
                                      stdout=out, stderr=err, env=full_env, start_new_session=True)
        self.feeder = None
        if feed is not None:
            # Spread the input over 0 to 2.5 s, so that kills find producers at work.
            duration = trial.rng.choice([0, trial.rng.uniform(0.2, 2.5)])
            self.feeder = threading.Thread(target=self._feed, args=(trial.rng.randrange(1 << 30),
                                                                    duration / max(1, len(feed))),
                                           daemon=True)
            self.feeder.start()

    def _feed(self, seed, pace):
        r = random.Random(seed)
        i = 0
        try:
            while i < len(self.lines):
                k = r.randint(1, 60)
                self.p.stdin.write(b"".join(self.lines[i:i + k]))
                self.p.stdin.flush()
                i += k
                if pace:
                    time.sleep(r.uniform(0, 2 * pace * k))
            self.p.stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass

    def running(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.p.poll() is None:
            if sig == signal.SIGKILL:
                self.killed = True
            else:
                self.termed = True
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout):
        end = min(time.monotonic() + timeout, self.deadline)
        while self.p.poll() is None and time.monotonic() < end:
            time.sleep(0.01)
        return self.p.poll()

    @property
    def status(self):
        return self.p.returncode

    def out(self):
        return self.out_path.read_bytes()

    def err(self):
        return self.err_path.read_text("utf-8", "replace")


def run(argv, input=b"", timeout=60, env=None):
    full_env = dict(os.environ, LC_ALL="C.UTF-8", SWIFT_BACKTRACE="enable=no")
    full_env.pop("MQ_DIR", None)
    if env:
        full_env.update(env)
    try:
        p = subprocess.run([str(a) for a in argv], input=input, capture_output=True, timeout=timeout,
                           env=full_env, start_new_session=True)
        return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        return None, e.stdout or b"", f"timed out after {timeout} s; " + (e.stderr or b"").decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------
# Small readers


def read_copy_state(path: Path) -> dict:
    """The metadata of an exactly-once copy's state file (docs/FORMAT.md §16)."""
    b = path.read_bytes()
    if b[:8] != b"MQCOPY01":
        raise ValueError(f"{path}: bad magic")
    length, _crc = struct.unpack_from("<II", b, 8)
    body = b[16:16 + length]
    pos = 0

    def u32():
        nonlocal pos
        v = struct.unpack_from("<I", body, pos)[0]
        pos += 4
        return v

    def string():
        nonlocal pos
        n = u32()
        s = body[pos:pos + n].decode()
        pos += n
        return s

    meta = {}
    for _ in range(u32()):
        k = string()
        meta[k] = string()
    return meta


def complete_lines(data: bytes) -> list:
    end = data.rfind(b"\n")
    return [] if end < 0 else data[:end].split(b"\n")


# ---------------------------------------------------------------------------------------------
# A trial


class Trial:
    def __init__(self, args, index, seed, kind):
        self.args, self.index, self.kind = args, index, kind
        self.seed = f"{seed}:{index}"
        self.rng = random.Random(self.seed)
        self.bin = Path(args.bin)
        self.base = Path(tempfile.mkdtemp(prefix=f"trial{index}-", dir=args.workdir))
        self.base.chmod(0o755)
        self.log = self.base / "log"
        self.log.mkdir()
        self.files = self.base / "files"
        self.files.mkdir()
        self.procs: list = []
        self.violations: list = []
        self.notes: list = []
        self.workload: list = []
        self.counter = Counter()
        self.messages = 0
        self.stats = Counter()
        self.mounted = False
        self.stop_file = self.files / "STOP"

    # -- helpers -------------------------------------------------------------------------------

    def tool(self, name):
        return str(self.bin / name)

    def violate(self, what, evidence=""):
        self.violations.append((what, evidence))

    def new_name(self, prefix):
        self.counter[prefix] += 1
        return f"{prefix}{self.counter[prefix]}"

    def mq(self, tool, *args, **kw):
        args = [str(a) for a in args]
        at = 1 if tool in ("mq-topic", "mq-dlq") else 0
        argv = [self.tool(tool)] + args[:at] + ["--dir", str(self.log)] + args[at:]
        return run(argv, **kw)

    def check_run(self, label, res, allowed=(0,)):
        status, out, err = res
        if status is None:
            self.violate(f"{label}: did not finish", err[-2000:])
        elif status not in allowed:
            self.violate(f"{label}: exit {status}", err[-2000:])
        if TRAPS.search(err or ""):
            self.violate(f"{label}: runtime trap on stderr", err[-2000:])
        return status

    def start(self, name, kind, args, tool, allowed=(0,), feed=None, env=None, **meta):
        at = 1 if tool in ("mq-topic", "mq-dlq") else 0
        args = [str(a) for a in args]
        argv = [self.tool(tool)] + args[:at] + ["--dir", str(self.log)] + args[at:]
        p = P(self, name, kind, argv, allowed=allowed, feed=feed, env=env)
        p.meta.update(meta)
        self.procs.append(p)
        self.workload.append(f"{name}: {' '.join(argv[1:])}")
        return p

    # -- the mix -------------------------------------------------------------------------------

    def setup(self):
        r = self.rng
        if self.kind == "disk":
            res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(self.log)],
                                 capture_output=True, text=True)
            if res.returncode != 0:
                self.notes.append(f"cannot mount a tmpfs ({res.stderr.strip()}): ran as a normal trial")
                self.kind = "normal"
            else:
                MOUNTS.append(self.log)
                self.mounted = True
                self.log.chmod(0o755)
        self.parts = {"t": r.choice([1, 2, 3]), "tx": r.choice([1, 2]), "d": 2, "c": r.choice([1, 2]),
                      "q": r.choice([1, 2]), "r": r.choice([1, 2])}
        seg_t = r.choice([None, 4096, 65536])
        for topic, n in self.parts.items():
            cfg = []
            if topic == "c":
                cfg = ["--config", "cleanup.policy=compact", "--config", "segment.bytes=2048",
                       "--config", f"min.cleanable.dirty.ratio={r.choice(['0.01', '0.5'])}"]
            elif topic == "t" and seg_t:
                cfg = ["--config", f"segment.bytes={seg_t}"]
            self.check_run(f"mq-topic create {topic}", self.mq("mq-topic", "create", topic, "--partitions", n, *cfg))
        self.workload.append(f"partitions {self.parts}, t segment.bytes {seg_t}")

    def values(self, tag, n, pad_max):
        r = self.rng
        return [f"{tag}-{i} {'.' * r.randint(0, pad_max)}".encode() for i in range(n)]

    def start_producer(self, kind):
        r = self.rng
        disk = self.kind == "disk"
        n = r.randint(2000, 6000) if disk and kind in ("batch", "exit", "none") else r.randint(20, 400)
        pad = 300 if disk else r.choice([0, 10, 100])
        tag = self.new_name({"batch": "b", "exit": "e", "none": "n", "atomic": "a", "dedup": "i",
                             "keyed": "k", "qprod": "w"}[kind])
        allowed = (0, 74) if disk else (0,)
        common = ["--batch-messages", r.choice(["1", "7", "50", "1000"])]
        if r.random() < 0.3:
            common += ["-z", r.choice(["gzip", "lz4", "zstd", "snappy"])]
        vals = self.values(tag, n, pad)
        if kind in ("batch", "exit", "none"):
            keyed = r.random() < 0.5
            lines = [(b"key%d\t" % r.randrange(30) if keyed else b"") + v + b"\n" for v in vals]
            args = ["t", "--sync", kind] + common + (["-K", "\\t"] if keyed else [])
            if kind == "batch" or r.random() < 0.3:
                args.append("--print-offsets")
            return self.start(tag, kind, args, "mq-produce", allowed, feed=lines, values=vals,
                              printing="--print-offsets" in args)
        if kind == "atomic":
            keyed = r.random() < 0.5
            lines = [(b"key%d\t" % r.randrange(30) if keyed else b"") + v + b"\n" for v in vals]
            args = ["tx", "--atomic"] + common + (["-K", "\\t"] if keyed else [])
            return self.start(tag, kind, args, "mq-produce", allowed, feed=lines, values=vals)
        if kind == "dedup":
            pool = 300
            ids = [f"id-{r.randrange(pool)}" for _ in vals]
            lines = [json.dumps({"value": v.decode(), "headers": {"id": i}}).encode() + b"\n"
                     for v, i in zip(vals, ids)]
            args = ["d", "--json", "--id-header", "id"] + common
            return self.start(tag, kind, args, "mq-produce", allowed, feed=lines, values=vals, ids=ids)
        if kind == "keyed":
            keys = [f"ck{r.randrange(16)}" for _ in vals]
            lines = [json.dumps({"key": k, "value": v.decode()}).encode() + b"\n" for v, k in zip(vals, keys)]
            args = ["c", "--json", "--print-offsets", "--sync", r.choice(["batch", "exit"])] + common
            return self.start(tag, kind, args, "mq-produce", allowed, feed=lines, values=vals, keys=keys,
                              printing=True)
        if kind == "qprod":
            vals = vals[:r.randint(10, 120)]
            lines = [v + b"\n" for v in vals]
            return self.start(tag, kind, ["q"] + common, "mq-produce", allowed, feed=lines, values=vals)
        raise ValueError(kind)

    def handler_env(self, group):
        return {"OUT": str(self.files / f"handled-{group}.txt")}

    HANDLER = ('v=$(cat); case "$v" in *7\\ *) exit 3;; esac; '
               'if [ "$MQ_ATTEMPT" = 1 ] && [ $(($$ % 5)) = 0 ]; then exit 1; fi; '
               'printf "%s\\n" "$v" >> "$OUT"')

    def start_consumer(self, kind):
        r = self.rng
        disk = self.kind == "disk"
        allowed = (0, 143, 74) if disk else (0, 143)
        if kind == "group":
            topic, group = r.choice([("t", "G"), ("tx", "GX")])
            name = self.new_name(f"g{group}-")
            args = ["-g", group, topic, "--commit-interval", r.choice(["10ms", "100ms", "1s"])]
            return self.start(name, kind, args, "mq-consume", allowed, group=group, topic=topic)
        if kind == "queue":
            name = self.new_name("qW-")
            args = ["--queue", "-g", "W", "q", "--max-attempts", "3", "--backoff", "10ms", "--backoff-max",
                    "50ms", "--dlq-on", "3", "-P", r.choice(["1", "2"]), "--", "sh", "-c", self.HANDLER]
            return self.start(name, kind, args, "mq-consume", allowed, env=self.handler_env("W"), group="W")
        if kind == "handler":
            name = self.new_name("hH-")
            args = ["-g", "H", "q", "-P", "2", "--max-attempts", "3", "--backoff", "10ms", "--backoff-max",
                    "50ms", "--dlq-on", "3", "--", "sh", "-c", self.HANDLER]
            return self.start(name, kind, args, "mq-consume", allowed, env=self.handler_env("H"), group="H")
        if kind == "tail":
            return self.start(self.new_name("f"), kind, ["-f", "t"], "mq-tail", (0, 143, -15))
        if kind == "replay":
            return self.start(self.new_name("rp"), kind, ["t", "--into", "r", "--from", "beginning", "--to", "end"],
                              "mq-replay", (0, 74) if disk else (0,))
        if kind == "compact":
            name = self.new_name("cmp")
            st = self.files / f"{name}.statuses"
            script = ('i=0; while [ ! -e "$STOP" ]; do i=$((i+1)); case $((i % 3)) in '
                      '0) set -- --all;; 1) set -- c --force;; *) set -- t;; esac; '
                      '"$BIN/mq-compact" --dir "$LOG" "$@"; echo "$? $*" >> "$ST"; sleep 0.05; done')
            p = P(self, name, kind, ["sh", "-c", script], allowed=(0,),
                  env={"STOP": str(self.stop_file), "BIN": str(self.bin), "LOG": str(self.log), "ST": str(st)})
            p.meta["statuses"] = st
            self.procs.append(p)
            self.workload.append(f"{name}: loop of mq-compact --all | c --force | t")
            return p
        raise ValueError(kind)

    def start_mix(self):
        r = self.rng
        producers = ["batch", "exit", "none", "atomic", "dedup", "dedup", "keyed", "qprod"]
        for k in producers:
            if r.random() < 0.8:
                self.start_producer(k)
        for k in ("batch", "exit"):
            if r.random() < 0.5:
                self.start_producer(k)
        cons = ["group", "group", "group", "queue", "queue", "handler", "tail", "replay", "compact"]
        for k in cons:
            if r.random() < 0.75:
                self.start_consumer(k)

    def kill_round(self):
        r = self.rng
        live = [p for p in self.procs if p.running()]
        frac = r.choice([0.3, 0.6, 1.0])
        victims = [p for p in live if r.random() < frac]
        for p in victims:
            p.signal(signal.SIGKILL)
        for p in victims:
            p.wait(10)
        self.workload.append(f"kill -9 at {time.monotonic() - self.t0:.2f}s: {[p.name for p in victims]}")
        restarted = []
        for p in victims:
            if r.random() < 0.6:
                if p.lines is not None:
                    q = self.start_producer(p.kind)
                else:
                    q = self.start_consumer(p.kind)
                restarted.append(q.name)
        if restarted:
            self.workload.append(f"restarted as {restarted}")

    def perm_check(self):
        """An unwritable partition directory and groups dir, used by another uid."""
        pdir = self.log / "topics" / "t" / "0"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "HOME": "/nonexistent"}
        nob = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
        try:
            pdir.chmod(0o555)
            (self.log / "groups").mkdir(exist_ok=True)
            (self.log / "groups").chmod(0o555)
            for label, argv, inp in (
                    ("mq-produce as nobody into a 0555 partition",
                     [self.tool("mq-produce"), "--dir", self.log, "t", "-p", "0"], b"nobody\n"),
                    ("mq-consume -g as nobody under a 0555 groups dir",
                     [self.tool("mq-consume"), "--dir", self.log, "-g", "nobody", "-e", "t"], b"")):
                status, out, err = run(nob + argv, input=inp, timeout=30, env=env)
                tool = Path(argv[0]).name
                self.workload.append(f"{label}: exit {status}: {err.strip()[:200]}")
                if status not in (73, 77) or not err.startswith(f"{tool}: ") or TRAPS.search(err):
                    self.violate(f"{label}: expected exit 73/77 with a message", f"exit {status}\nstderr: {err[-1500:]}")
        finally:
            pdir.chmod(0o755)
            (self.log / "groups").chmod(0o755)
        if (self.log / "groups" / "nobody").exists():
            self.violate("a nobody consumer created groups/nobody in an unwritable dir")

    def run_mix(self):
        r = self.rng
        self.t0 = time.monotonic()
        self.start_mix()
        perm_at = r.uniform(0.05, 0.5) if self.kind == "perm" else None
        rounds = 1 if r.random() < 0.5 else 2
        for _ in range(rounds):
            delay = r.uniform(0.05, 1.5 if self.kind != "disk" else 3.0)
            if perm_at is not None and perm_at < delay:
                time.sleep(perm_at)
                self.perm_check()
                delay -= perm_at
                perm_at = None
            time.sleep(delay)
            if self.kind == "disk" and r.random() < 0.5:
                continue  # let the disk fill up
            self.kill_round()
        if perm_at is not None:
            self.perm_check()
        # Producers finish their input.
        for p in self.procs:
            if p.lines is not None:
                p.wait(40)
        time.sleep(r.uniform(0.1, 0.5))
        # Followers stop, the compaction loop ends.
        self.stop_file.touch()
        for p in self.procs:
            if p.running() and p.kind in ("group", "queue", "handler", "tail"):
                p.signal(signal.SIGTERM)
        for p in self.procs:
            p.wait(30)
        for p in self.procs:
            if p.running():
                p.signal(signal.SIGKILL)
                p.killed = False
                p.wait(10)
                self.violate(f"{p.name} did not end within its time bound", " ".join(p.argv))
        if self.kind == "disk":
            full = [p for p in self.procs if p.lines is not None and p.status == 74]
            self.workload.append(f"disk full: {len(full)} producers exited 74")
            for p in full:
                if not re.search(r"(?i)\bfull\b|no space", p.err()):
                    self.violate(f"{p.name}: exit 74 without saying the disk is full", p.err()[-1000:])
            if not full:
                self.notes.append("the disk did not fill up")
            subprocess.run(["mount", "-o", "remount,size=512m", str(self.log)], check=True)

    # -- the end -------------------------------------------------------------------------------

    def evaluate_procs(self):
        for p in self.procs:
            st = p.status
            err = p.err()
            if TRAPS.search(err):
                self.violate(f"{p.name}: runtime trap on stderr", err[-2000:])
            if st == 70:
                self.violate(f"{p.name}: exit 70 (internal error)", err[-2000:])
            elif st is not None and st < 0:
                if not ((st == -9 and p.killed) or (st == -15 and p.termed)):
                    self.violate(f"{p.name}: died by signal {-st} we did not send", err[-2000:])
            elif p.killed and st != -9:
                if st not in p.allowed and st != 137:
                    self.violate(f"{p.name}: exit {st}", err[-2000:])
            elif st not in p.allowed:
                self.violate(f"{p.name}: exit {st}", f"{' '.join(p.argv)}\nstderr: {err[-2000:]}")
            if p.kind == "compact" and p.meta["statuses"].exists():
                for line in p.meta["statuses"].read_text().splitlines():
                    s = int(line.split()[0])
                    if s != 0 and not (s == 74 and self.kind == "disk") and not (p.killed and s in (137, 143)):
                        self.violate(f"{p.name}: mq-compact {line.split(' ', 1)[1]} exited {s}",
                                     (self.files / f"{p.name}.err").read_text()[-2000:])

    def final_phase(self):
        disk = self.kind == "disk"
        # The replay again, uninterrupted.
        self.check_run("final mq-replay t --into r",
                       self.mq("mq-replay", "t", "--into", "r", "--from", "beginning", "--to", "end", timeout=120))
        # A writer recovers every partition of every topic.
        for topic, n in self.parts.items():
            data = b"".join(json.dumps({"key": "fin", "value": f"fin-{topic}-{p}", "partition": p}).encode() + b"\n"
                            for p in range(n))
            self.check_run(f"final append to {topic}", self.mq("mq-produce", topic, "--json", input=data))
        # The groups to the end.
        for group, topic in (("G", "t"), ("GX", "tx")):
            res = self.mq("mq-consume", "-g", group, "-e", topic, timeout=120)
            self.check_run(f"final mq-consume -g {group} -e {topic}", res)
            (self.files / f"g{group}-final.out").write_bytes(res[1])
        for group, extra in (("W", ["--queue"]), ("H", [])):
            res = self.mq("mq-consume", *extra, "-g", group, "-e", "q", "--max-attempts", "3", "--backoff", "10ms",
                          "--backoff-max", "50ms", "--dlq-on", "3", "--", "sh", "-c", self.HANDLER,
                          env=self.handler_env(group), timeout=120)
            self.check_run(f"final mq-consume {' '.join(extra)} -g {group} -e q -- handler", res)
        self.check_run("mq-compact --check --all", self.mq("mq-compact", "--check", "--all", timeout=120))
        self.tail_tx = self.mq("mq-tail", "-n", "+0", "tx", timeout=60)
        self.check_run("mq-tail -n +0 tx", self.tail_tx)

    def validate(self):
        self.recs = {}
        for topic_dir in sorted((self.log / "topics").iterdir()):
            if not (topic_dir / "topic.properties").exists():
                continue
            topic = topic_dir.name
            try:
                parts = kv.validate(topic_dir, allow_gaps=(topic == "c"))
            except kv.ValidationError as e:
                self.violate(f"kafka_validate rejects topic {topic}", str(e))
                continue
            except Exception as e:  # noqa: BLE001 - a crash of the validator is evidence too
                self.violate(f"kafka_validate fails on topic {topic}", repr(e))
                continue
            self.recs[topic] = parts
        return all(t in self.recs for t in self.parts)

    def records(self, topic, committed=False):
        if committed:
            return kv.committed_records(self.log / "topics" / topic, allow_gaps=(topic == "c"))
        return [r for p in self.recs[topic] for r in p.records if not r.control]

    def check(self):
        recs = {t: self.records(t) for t in ("t", "d", "c", "q", "r")}
        tx_committed = self.records("tx", committed=True)
        pnum = lambda rec: int(Path(rec.partition_dir).name)  # noqa: E731
        by_offset = {t: {(pnum(x), x.offset): x for x in recs[t]} for t in recs}
        values = {t: Counter(x.value for x in recs[t]) for t in recs}
        self.messages = sum(1 for t in ("t", "d", "c", "q") for x in recs[t] if not x.value.startswith(b"fin-")) + \
            sum(1 for x in tx_committed if not x.value.startswith(b"fin-"))
        for t in ("t", "q"):
            dup = [v for v, c in values[t].items() if c > 1]
            if dup:
                self.violate(f"{t}: messages written twice", repr(dup[:5]))
        latest_of_key = defaultdict(int)  # c: (partition, key) -> highest offset present
        for x in recs["c"]:
            k = (pnum(x), x.key)
            latest_of_key[k] = max(latest_of_key[k], x.offset)
        tx_values = Counter(x.value for x in tx_committed)
        for p in self.procs:
            if p.lines is None:
                continue
            ok = p.status == 0
            vals = p.meta["values"]
            printed = [line for line in complete_lines(p.out())] if p.meta.get("printing") else []
            if len(printed) > len(vals):
                self.violate(f"{p.name}: printed {len(printed)} offsets for {len(vals)} messages")
            if ok and p.meta.get("printing") and len(printed) != len(vals):
                self.violate(f"{p.name}: exited 0 but printed {len(printed)} offsets for {len(vals)} messages")
            self.stats["printed offsets"] += len(printed)
            self.stats["producers exited 0"] += ok
            self.stats["producers killed"] += p.killed
            if p.kind in ("batch", "exit", "none"):
                for i, line in enumerate(printed[:len(vals)]):
                    part, off = map(int, line.split())
                    got = by_offset["t"].get((part, off))
                    if got is None or got.value != vals[i]:
                        self.violate(f"{p.name}: printed offset {part} {off} for {vals[i][:40]!r}",
                                     f"log has {got.value[:40] if got else '<missing>'!r}")
                        break
                if ok:
                    missing = [v for v in vals if values["t"][v] == 0]
                    if missing:
                        self.violate(f"{p.name} (--sync {p.kind}) exited 0 but {len(missing)} of its "
                                     f"{len(vals)} messages are missing", repr(missing[:5]))
            elif p.kind == "atomic":
                seen = sum(1 for v in vals if tx_values[v])
                if seen not in (0, len(vals)) or (ok and seen != len(vals)):
                    self.violate(f"{p.name} (--atomic, exit {p.status}): {seen} of {len(vals)} messages visible "
                                 "read-committed (kafka-python)")
            elif p.kind == "dedup":
                if ok:
                    present = Counter(dict(x.headers).get("id") for x in recs["d"])
                    missing = sorted({i for i in p.meta["ids"] if not present[i.encode()]})
                    if missing:
                        self.violate(f"{p.name} (--id-header) exited 0 but ids are missing", repr(missing[:5]))
            elif p.kind == "keyed":
                for i, line in enumerate(printed[:len(vals)]):
                    part, off = map(int, line.split())
                    got = by_offset["c"].get((part, off))
                    key = p.meta["keys"][i].encode()
                    if got is not None and got.value == vals[i]:
                        continue
                    if latest_of_key.get((part, key), -1) > off:
                        continue  # superseded by a later record of the key
                    self.violate(f"{p.name}: compacted topic lost the latest value of key {key!r}",
                                 f"printed {part} {off} for {vals[i]!r}; log has "
                                 f"{got.value if got else '<nothing>'!r} there, latest offset of the key "
                                 f"{latest_of_key.get((part, key))}")
                    break
            elif p.kind == "qprod" and ok:
                missing = [v for v in vals if values["q"][v] == 0]
                if missing:
                    self.violate(f"{p.name} exited 0 but messages are missing from q", repr(missing[:5]))
        # Dedup: every id at most once.
        ids = Counter(dict(x.headers).get("id") for x in recs["d"] if not x.value.startswith(b"fin-"))
        twice = [i for i, c in ids.items() if c > 1]
        if twice:
            self.violate("d: ids written more than once", repr(twice[:5]))
        # Atomic: mq's read-committed view agrees with kafka-python's.
        mq_tx = Counter(self.tail_tx[1].split(b"\n")[:-1]) if self.tail_tx[0] == 0 else None
        if mq_tx is not None and mq_tx != tx_values:
            self.violate("tx: mq-tail (read committed) and kafka-python's committed view differ",
                         f"only mq-tail: {list((mq_tx - tx_values))[:5]}, only kafka: {list((tx_values - mq_tx))[:5]}")
        # Groups cover the log.
        for group, topic, want in (("G", "t", values["t"]), ("GX", "tx", tx_values)):
            delivered = set()
            for f in self.files.glob(f"g{group}-*.out"):
                delivered.update(complete_lines(f.read_bytes()))
            skipped = [v for v in want if v not in delivered]
            self.stats[f"{group} delivered"] = len(delivered)
            if skipped:
                self.violate(f"group {group} skipped {len(skipped)} messages of {topic}", repr(skipped[:5]))
        # mq-tail -f printed only messages of t.
        for p in self.procs:
            if p.kind == "tail":
                alien = [v for v in complete_lines(p.out()) if values["t"][v] == 0]
                if alien:
                    self.violate(f"{p.name}: mq-tail -f printed what t does not hold", repr(alien[:5]))
        # Queues and handlers: processed or dead-lettered.
        dlq = defaultdict(set)
        if (self.log / "topics" / "q.dlq").exists():
            for x in self.records("q.dlq") if "q.dlq" in self.recs else []:
                h = dict(x.headers)
                dlq[(h.get("mq.group") or b"").decode()].add(x.value)
        for group in ("W", "H"):
            f = self.files / f"handled-{group}.txt"
            done = set(complete_lines(f.read_bytes())) if f.exists() else set()
            lost = [v for v in values["q"] if v not in done and v not in dlq[group]]
            self.stats[f"{group} handled"] = len(done)
            self.stats[f"{group} dead"] = len(dlq[group])
            if lost:
                self.violate(f"group {group} (handlers) neither processed nor dead-lettered {len(lost)} messages "
                             "of q", repr(lost[:5]))
            wrong = [v for v in dlq[group] if not re.search(rb"7 \.*$", v)]
            if wrong and self.notes is not None:
                pass  # a timeout or retries exhausted can dead-letter others too; not a violation
        # Replay: exactly once, by provenance.
        states = list((self.log / "copies").glob("replay.*/state")) if (self.log / "copies").exists() else []
        if len(states) != 1:
            self.violate(f"replay: {len(states)} copy states", repr(states))
        else:
            meta = read_copy_state(states[0])
            if "complete" not in meta:
                self.violate("replay: the final run did not complete it", repr(meta))
            ranges = {}
            for part in filter(None, meta.get("ranges", "").split(",")):
                pn, span = part.split(":")
                a, b = span.split("-")
                ranges[int(pn)] = (int(a), int(b))
            expected = {(pnum(x), x.offset): x.value for x in recs["t"]
                        if pnum(x) in ranges and ranges[pnum(x)][0] <= x.offset < ranges[pnum(x)][1]}
            copies = Counter()
            wrong = []
            for x in recs["r"]:
                h = dict(x.headers)
                if b"" == h.get("mq.replay.topic", b"") and x.value.startswith(b"fin-"):
                    continue
                if h.get("mq.replay.topic") != b"t":
                    wrong.append(("no provenance", x.value))
                    continue
                src = (int(h["mq.replay.partition"]), int(h["mq.replay.offset"]))
                copies[src] += 1
                if expected.get(src) != x.value:
                    wrong.append((src, x.value, expected.get(src)))
            twice = [s for s, c in copies.items() if c > 1]
            self.stats["replayed"] = len(copies)
            missing = [s for s in expected if copies[s] == 0]
            if twice or missing or wrong:
                self.violate("replay t --into r is not exactly once",
                             f"ranges {meta.get('ranges')}; copied twice {twice[:5]}; missing {missing[:5]}; "
                             f"wrong {wrong[:5]}")

    def run(self):
        try:
            self.setup()
            self.run_mix()
            self.evaluate_procs()
            self.final_phase()
            if self.validate():
                self.check()
        except Exception as e:  # noqa: BLE001
            import traceback
            self.violate("harness error", traceback.format_exc())
        finally:
            for p in self.procs:
                if p.running():
                    p.signal(signal.SIGKILL)
                    p.wait(10)
            if self.mounted and self.violations and self.args.keep:
                # keep a copy of the evidence before the tmpfs goes
                shutil.copytree(self.log, self.base / "log-copy", symlinks=True, dirs_exist_ok=True)
            if self.mounted:
                subprocess.run(["umount", "-l", str(self.log)], capture_output=True)
                if self.log in MOUNTS:
                    MOUNTS.remove(self.log)
            if not self.args.keep and not self.violations:
                shutil.rmtree(self.base, ignore_errors=True)
        return self


def special_kind(i, n):
    if n >= 50:
        return {10: "disk", 30: "perm"}.get(i % 50, "normal")
    if n >= 3:
        return {n // 3: "disk", (2 * n) // 3: "perm"}.get(i, "normal")
    return "normal"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--only", type=int, default=None, help="run only this trial index (with --seed)")
    ap.add_argument("--kind", choices=["normal", "disk", "perm"], default=None, help="force the trial kind")
    ap.add_argument("--bin", default=os.environ.get("MQ_BIN") or str(REPO / ".build" / "release"))
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep", action="store_true", help="keep every trial's directory")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop starting trials after this long")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    missing = [t for t in TOOLS if not os.access(Path(args.bin) / t, os.X_OK)]
    if missing:
        print(f"torture: {', '.join(missing)} not found in {args.bin} (--bin DIR or MQ_BIN)", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    own_workdir = args.workdir is None
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="mq-torture-")
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    Path(args.workdir).chmod(0o755)
    print(f"torture: seed {seed}, {args.trials} trials, binaries {args.bin}, workdir {args.workdir}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    indices = [args.only] if args.only is not None else range(args.trials)
    total_msgs = total_viol = done = 0
    started = time.monotonic()
    try:
        for i in indices:
            if args.max_minutes and time.monotonic() - started > args.max_minutes * 60:
                print(f"torture: stopping after {args.max_minutes} minutes", flush=True)
                break
            kind = args.kind or special_kind(i, args.trials)
            t0 = time.monotonic()
            tr = Trial(args, i, seed, kind).run()
            done += 1
            total_msgs += tr.messages
            total_viol += len(tr.violations)
            if args.verbose or tr.violations:
                print(f"trial {i} ({kind}, seed {tr.seed}): {len(tr.procs)} processes, {tr.messages} messages, "
                      f"{len(tr.violations)} violations, {time.monotonic() - t0:.1f}s"
                      + (f"; notes: {tr.notes}" if tr.notes else ""), flush=True)
                if args.verbose:
                    print("  " + ", ".join(f"{k} {v}" for k, v in sorted(tr.stats.items())), flush=True)
            if tr.violations:
                print(f"  rerun: {sys.argv[0]} --bin {args.bin} --seed {seed} --only {i} --trials {args.trials} -v --keep")
                print("  workload:\n    " + "\n    ".join(tr.workload))
                for what, evidence in tr.violations:
                    print(f"  VIOLATION: {what}")
                    if evidence:
                        print("    " + str(evidence).replace("\n", "\n    "))
                print(f"  files kept in {tr.base}", flush=True)
    finally:
        cleanup_mounts()
        if own_workdir and not args.keep and total_viol == 0:
            shutil.rmtree(args.workdir, ignore_errors=True)
    wall = time.monotonic() - started
    print(f"torture: seed {seed}, {wall:.0f} s wall, {done / wall if wall else 0:.2f} trials/s")
    print(f"torture: {done} trials, {total_msgs} messages, {total_viol} violations")
    return 1 if total_viol else 0


if __name__ == "__main__":
    sys.exit(main())
