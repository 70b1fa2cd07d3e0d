"""Power-loss scenarios for the tools beyond plain producers and groups (docs/TESTING.md).

Each scenario is one tool's promise of docs/FORMAT.md, checked across a simulated power
loss (crashfs, powerloss.py):

  compact   mq-compact of a cleanup.policy=compact topic (§17): after the reboot and the next
            run, every key's latest durable value is there, offsets only grow, --check and
            kafka_validate (gaps allowed) pass
  replay    mq-replay SRC --into DST (§16): after the reboot and a rerun to completion, DST
            holds every SRC record exactly once (mq.replay.* headers)
  dlq       mq-dlq redrive (§16): likewise, each letter exactly once (mq.redrive.from)
  txn       mq-produce --atomic (§18): read-committed readers see each transaction all or
            nothing; a producer that exited 0 has all of its transaction visible
  dedup     mq-produce --id-header (§19): each id at most once, every id of a run that
            exited 0 present; after reruns of the input every id exactly once
  delay     mq-produce --delay and the mover (§15): an accepted delayed message is delivered
            (at least once) after the reboot, at most 1,000 duplicates per crash
  topic     mq-topic create/alter/delete (§10, §11): a create or alter that returned 0 is
            there with its config, a delete that returned 0 stays deleted

Two ways to crash:

* `run_kind_trial`: a randomized trial, a concurrent workload and a seeded random crash moment,
  two power cycles (half of the seeds with torn writes);
* `sweep`: deterministic: the scenario's sequential workload runs to its end with crashfs told
  to `freeze` after K durability calls (fsync, fsyncdir), then the power is cut: a crash right
  after the K-th call. K runs over every call the workload makes (or an even sample of them),
  so each window between two fsyncs is hit once.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import powerloss as pl
from powerloss import MachineDown, Result

sys.path.insert(0, str(pl.REPO / "Tests" / "interop"))
import kafka_validate as kv  # noqa: E402

KINDS = ("compact", "replay", "dlq", "txn", "dedup", "delay", "topic")


# ---------------------------------------------------------------------------------------------
# Helpers


def durability_calls(m: pl.Machine) -> int:
    s = m.fs.stats()
    return s["fsync"] + s["fsyncdir"]


@dataclass
class Step:
    """One tool run of a workload: its result and the durability calls made when it exited."""
    args: Tuple[str, ...]
    status: int
    out: bytes
    err: str
    calls_at_exit: int
    data: object = None

    def lines(self) -> List[str]:
        return self.out.decode("utf-8", "replace").splitlines()


class Ctx:
    """What a workload needs: the machine, its boot, and where the freeze (if any) is."""

    def __init__(self, m: pl.Machine, rng: random.Random, freeze_at: Optional[int] = None):
        self.m = m
        self.rng = rng
        self.boot = m.boots
        self.freeze_at = freeze_at   # durability-call count after which nothing is durable

    def call(self, tool: str, *args: str, input: bytes = b"", timeout: float = 60, data=None) -> Step:
        """Runs a tool to its end; MachineDown when the power is cut before or during it."""
        p = self.m.spawn(tool, *args, stdin=subprocess.PIPE, boot=self.boot)
        try:
            out, err = p.communicate(input, timeout=timeout)
        except (BrokenPipeError, OSError):
            p.wait()
            out, err = b"", b""
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            return Step((tool, *args), -999, out, "timeout " + err.decode(errors="replace"), 0, data)
        if p.returncode < 0:
            raise MachineDown()
        return Step((tool, *args), p.returncode, out, err.decode("utf-8", "replace"),
                    durability_calls(self.m), data)

    def promised(self, step: Step) -> bool:
        """Exited 0 and every fsync it made took effect (for a sweep: before the freeze)."""
        if step.status != 0:
            return False
        return self.freeze_at is None or step.calls_at_exit <= self.freeze_at


def tail(m: pl.Machine, topic: str, *args: str) -> Optional[List[dict]]:
    res = m.run("mq-tail", "-J", "-n", "+0", *args, topic)
    if res.status != 0:
        return None
    return [json.loads(x) for x in res.lines()]


def headers(env: dict) -> Dict[str, str]:
    return {k: v for k, v in env.get("headers") or []}


def offsets_grow(envs: List[dict], v: List[str], when: str, tool: str) -> None:
    last: Dict[int, int] = {}
    for e in envs:
        p, o = e["partition"], e["offset"]
        if o <= last.get(p, -1):
            v.append(f"{when}: {tool}: partition {p}: offset {o} after {last[p]} in mq-tail's output")
            return
        last[p] = o


def validate(m: pl.Machine, topic: str, v: List[str], when: str, allow_gaps: bool = False,
             notes: Optional[List[str]] = None) -> None:
    res = m.run("mq-compact", "--check", "--all")
    if res.status != 0:
        v.append(f"{when}: mq-compact --check --all exited {res.status}: "
                 f"{res.stdout.decode(errors='replace')[-600:]} {res.stderr[-300:]}")
    d = m.root / "topics" / topic
    if d.is_dir() and any(d.glob("*/*.log")):
        try:
            kv.validate([str(d)], allow_gaps=allow_gaps, index_slack=False)
        except kv.ValidationError as e:
            msg = f"{when}: kafka_validate{' --allow-gaps' if allow_gaps else ''} {topic}: {e}"
            if notes is not None and "ends no transaction with data here" in str(e):
                # recovery's ABORT marker for a transaction whose only batches were lost with
                # the power: Kafka writes such markers too (a partition added to a transaction
                # that sent it nothing); kafka_validate is stricter. mq's readers are unaffected.
                notes.append(msg)
            else:
                v.append(msg)


@dataclass
class Report:
    violations: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    known: List[str] = field(default_factory=list)   # breaches of a known bug (strict xfail tests)


# ---------------------------------------------------------------------------------------------
# Scenarios. Each has: setup (before the first crash; made durable by a sync), work (the
# workload; sequential in a sweep, with `background` extras in a randomized trial), check
# (after the reboot), and `window` (the random crash moment's range, seconds).


class Scenario:
    kind = ""
    window = (0.1, 1.0)
    work_in_trials = True     # a trial runs `work` besides `background`

    def setup(self, c: Ctx) -> None:
        pass

    def work(self, c: Ctx, cycle: int) -> None:
        """The sequential workload of a sweep (and the main thread of a trial's workload)."""

    def background(self, c: Ctx, cycle: int) -> List[Callable[[], None]]:
        """Extra concurrent workloads of a randomized trial."""
        return []

    def check(self, m: pl.Machine, c: Ctx, cycle: int, r: Report) -> None:
        raise NotImplementedError


# --- 1. mq-compact (§17) ---------------------------------------------------------------------


class Compact(Scenario):
    kind = "compact"
    window = (0.05, 0.8)
    topic = "c"

    def __init__(self):
        self.runs: List[Step] = []        # keyed producer runs: data = [(key, version)]
        self.version = 0
        self.compactions: List[Step] = []
        self.lock = threading.Lock()

    def produce(self, c: Ctx, nkeys: int, count: int) -> None:
        with self.lock:
            msgs = []
            for _ in range(count):
                self.version += 1
                msgs.append((f"k{c.rng.randrange(nkeys)}", self.version))
        text = "".join(f"{k}:{k}=v{ver}\n" for k, ver in msgs)
        step = c.call("mq-produce", "-K", ":", "--batch-messages", str(c.rng.choice([3, 8, 20])),
                      self.topic, input=text.encode(), data=msgs)
        self.runs.append(step)

    def setup(self, c: Ctx) -> None:
        self.partitions = c.rng.choice([1, 2])
        res = c.m.run("mq-topic", "create", self.topic, "--partitions", str(self.partitions),
                      "--config", "cleanup.policy=compact", "--config", "segment.bytes=1024",
                      "--config", "min.cleanable.dirty.ratio=0.01", "--config", "min.compaction.lag.ms=0")
        assert res.status == 0, res.stderr
        for _ in range(c.rng.randint(6, 10)):
            self.produce(c, 30, c.rng.randint(20, 60))

    def work(self, c: Ctx, cycle: int) -> None:
        self.compactions.append(c.call("mq-compact", "--force", self.topic))

    def background(self, c: Ctx, cycle: int):
        def writers():
            while True:
                self.produce(c, 30, c.rng.randint(5, 40))
                time.sleep(c.rng.random() * 0.05)

        def compactor():
            while True:
                self.compactions.append(c.call("mq-compact", *(["--force"] if c.rng.random() < 0.7 else []),
                                               self.topic))
                time.sleep(c.rng.random() * 0.05)
        return [writers, compactor]

    def check(self, m, c, cycle, r):
        v, when = r.violations, f"cycle {cycle}"
        for s in self.compactions:
            if s.status not in (0, 75) and s.status >= 0:
                v.append(f"{when}: before the crash: mq-compact exited {s.status}: {s.err[-400:]}")
        self.compactions = []
        # the next run rolls a committed swap forward or removes debris
        res = m.run("mq-compact", self.topic)
        if res.status != 0:
            v.append(f"{when}: the first mq-compact after the reboot exited {res.status}: {res.stderr[-600:]}")
        envs = tail(m, self.topic)
        if envs is None:
            v.append(f"{when}: mq-tail -n +0 {self.topic} failed after the reboot")
            return
        offsets_grow(envs, v, when, "mq-compact")
        seen: Dict[str, List[int]] = defaultdict(list)
        for e in envs:
            k, val = e["key"], e["value"]
            ver = int(val.split("=v")[1])
            if seen[k] and ver <= seen[k][-1]:
                v.append(f"{when}: key {k}: version {ver} at offset {e['partition']}/{e['offset']} "
                         f"after version {seen[k][-1]}")
            seen[k].append(ver)
        latest: Dict[str, int] = {}
        for s in self.runs:
            if c.promised(s):
                for k, ver in s.data:
                    latest[k] = max(latest.get(k, 0), ver)
        lost = [(k, ver) for k, ver in sorted(latest.items())
                if ver not in seen.get(k, []) and not any(x > ver for x in seen.get(k, []))]
        if lost:
            v.append(f"{when}: {len(lost)} keys lost their latest durable value after a compaction "
                     f"(first: key {lost[0][0]} version {lost[0][1]}, the log has {seen.get(lost[0][0])})")
        dups = [val for val, n in Counter(e["value"] for e in envs).items() if n > 1]
        if dups:
            v.append(f"{when}: {len(dups)} records twice in mq-tail's output (first {dups[0]!r})")
        validate(m, self.topic, v, when, allow_gaps=True)


# --- 2. mq-replay --into (§16) -----------------------------------------------------------------


class Replay(Scenario):
    kind = "replay"
    window = (0.02, 0.6)

    def __init__(self):
        self.names: List[str] = []

    def setup(self, c: Ctx) -> None:
        self.partitions = c.rng.choice([1, 2, 3])
        assert c.m.run("mq-topic", "create", "s", "--partitions", str(self.partitions)).status == 0
        n = c.rng.randint(1500, 3500)
        res = c.m.run("mq-produce", "--batch-messages", "50", "s",
                      input="".join(f"src-{i}\n" for i in range(n)).encode())
        assert res.status == 0, res.stderr
        if c.rng.random() < 0.5:
            assert c.m.run("mq-topic", "create", "d", "--partitions", str(c.rng.choice([1, 2]))).status == 0

    def work(self, c: Ctx, cycle: int) -> None:
        name = f"r{cycle}"
        self.names.append(name)
        c.call("mq-replay", "s", "--into", "d", "--name", name)

    def check(self, m, c, cycle, r):
        v, when = r.violations, f"cycle {cycle}"
        for name in self.names:
            res = m.run("mq-replay", "s", "--into", "d", "--name", name)
            if res.status != 0:
                v.append(f"{when}: rerun of mq-replay s --into d --name {name} exited {res.status}: "
                         f"{res.stderr[-500:]}")
        src = tail(m, "s")
        dst = tail(m, "d")
        if src is None or dst is None:
            v.append(f"{when}: mq-tail of s or d failed after the reboot")
            return
        want = {(e["partition"], e["offset"]): e["value"] for e in src}
        for name in self.names:
            copies = Counter()
            wrong = []
            for e in dst:
                h = headers(e)
                if h.get("mq.replay.id") != f"replay.{name}":
                    continue
                key = (int(h["mq.replay.partition"]), int(h["mq.replay.offset"]))
                copies[key] += 1
                if want.get(key) != e["value"]:
                    wrong.append((key, e["value"]))
            twice = sorted(k for k, n in copies.items() if n > 1)
            missing = sorted(set(want) - set(copies))
            if twice:
                v.append(f"{when}: replay {name}: {len(twice)} source records twice in d "
                         f"(first: s/{twice[0][0]}/{twice[0][1]})")
            if missing:
                v.append(f"{when}: replay {name}: {len(missing)} of {len(want)} source records missing "
                         f"from d after the rerun (first: s/{missing[0][0]}/{missing[0][1]})")
            if wrong:
                v.append(f"{when}: replay {name}: {len(wrong)} copies differ from their source (first {wrong[0]})")
        offsets_grow(dst, v, when, "mq-replay")
        validate(m, "d", v, when)


# --- 3. mq-dlq redrive (§16) -------------------------------------------------------------------


FAIL = ["sh", "-c", "cat >/dev/null; exit 1"]


class Redrive(Scenario):
    kind = "dlq"
    window = (0.02, 0.5)

    def setup(self, c: Ctx) -> None:
        n = c.rng.randint(1200, 2500)
        res = c.m.run("mq-produce", "--partitions", str(c.rng.choice([1, 2])), "--batch-messages", "100", "o",
                      input="".join(f"job-{i}\n" for i in range(n)).encode())
        assert res.status == 0, res.stderr
        res = c.m.run("mq-consume", "-g", "w", "-e", "--max-attempts", "1", "--backoff", "1ms",
                      "--batch", "1000", "o", "--", *FAIL)
        assert res.status == 0, res.stderr

    def work(self, c: Ctx, cycle: int) -> None:
        c.call("mq-dlq", "redrive", "o.dlq")

    def background(self, c: Ctx, cycle: int):
        def more():
            # more failures while redrives run: a failing group dead-letters new jobs (and the
            # redriven ones again)
            i = 0
            while True:
                c.call("mq-produce", "o", input="".join(f"more{cycle}-{i + k}\n" for k in range(50)).encode())
                i += 50
                c.call("mq-consume", "-g", "w", "-e", "--max-attempts", "1", "--backoff", "1ms",
                       "--batch", "100", "o", "--", *FAIL)
                c.call("mq-dlq", "redrive", "o.dlq")
        return [more]

    def check(self, m, c, cycle, r):
        v, when = r.violations, f"cycle {cycle}"
        res = m.run("mq-dlq", "redrive", "o.dlq")
        if res.status != 0:
            v.append(f"{when}: mq-dlq redrive o.dlq after the reboot exited {res.status}: {res.stderr[-500:]}")
        letters = tail(m, "o.dlq")
        back = tail(m, "o")
        if letters is None or back is None:
            v.append(f"{when}: mq-tail of o or o.dlq failed after the reboot")
            return
        want = {f"o.dlq/{e['partition']}/{e['offset']}": e["value"] for e in letters}
        copies = Counter(headers(e).get("mq.redrive.from") for e in back)
        copies.pop(None, None)
        twice = sorted(k for k, n in copies.items() if n > 1)
        missing = sorted(set(want) - set(copies))
        if twice:
            v.append(f"{when}: {len(twice)} letters redriven twice (first {twice[0]}, {copies[twice[0]]} copies)")
        if missing:
            v.append(f"{when}: {len(missing)} of {len(want)} letters not in o after a complete redrive "
                     f"(first {missing[0]})")
        extra = sorted(set(copies) - set(want))
        if extra:
            v.append(f"{when}: {len(extra)} redriven records name letters o.dlq does not hold (first {extra[0]})")
        validate(m, "o", v, when)


# --- 4. mq-produce --atomic (§18) ----------------------------------------------------------------


class Txn(Scenario):
    kind = "txn"
    window = (0.05, 0.8)

    def __init__(self):
        self.runs: List[Step] = []
        self.n = 0
        self.open: List[Tuple[str, int]] = []

    def setup(self, c: Ctx) -> None:
        self.partitions = c.rng.choice([1, 2, 3])
        assert c.m.run("mq-topic", "create", "x", "--partitions", str(self.partitions),
                       "--config", f"segment.bytes={c.rng.choice([2048, 1 << 20])}").status == 0

    def one(self, c: Ctx, count: int) -> None:
        self.n += 1
        name = f"t{self.n}"
        msgs = [f"{name}-{i}" for i in range(count)]
        # keys spread a transaction over the partitions
        text = "".join(f"k{i % 7}:{x}\n" for i, x in enumerate(msgs))
        self.runs.append(c.call("mq-produce", "--atomic", "-K", ":", "--batch-messages",
                                str(c.rng.choice([5, 50, 1000])), "x", input=text.encode(), data=msgs))

    def work(self, c: Ctx, cycle: int) -> None:
        for _ in range(2):
            self.one(c, c.rng.randint(20, 300))

    def background(self, c: Ctx, cycle: int):
        def more():
            while True:
                self.one(c, c.rng.randint(1, 400))

        def slow():
            # a transaction open at the crash, fed slowly
            name = f"open{cycle}"
            p = c.m.spawn("mq-produce", "--atomic", "-K", ":", "--batch-messages", "10", "x",
                          stdin=subprocess.PIPE, boot=c.boot)
            self.open.append((name, 0))
            i = 0
            try:
                while True:
                    p.stdin.write("".join(f"k{(i + k) % 7}:{name}-{i + k}\n" for k in range(10)).encode())
                    p.stdin.flush()
                    i += 10
                    self.open[-1] = (name, i)
                    time.sleep(0.02)
            except (BrokenPipeError, OSError, ValueError):
                pass
        return [more, slow]

    def check(self, m, c, cycle, r):
        v, when = r.violations, f"cycle {cycle}"
        envs = tail(m, "x")
        if envs is None:
            v.append(f"{when}: mq-tail -n +0 x (read committed) failed after the reboot")
            return
        self.verify(envs, c, v, when + ", first reader after the reboot")
        # a new transaction after the reboot commits and is visible; the log checks
        before = len(self.runs)
        self.one(Ctx(m, c.rng), 50)
        if self.runs[before].status != 0:
            v.append(f"{when}: mq-produce --atomic after the reboot exited {self.runs[before].status}: "
                     f"{self.runs[before].err[-500:]}")
        envs = tail(m, "x")
        if envs is None:
            v.append(f"{when}: mq-tail -n +0 x failed after a new transaction")
            return
        self.verify(envs, c, v, when + ", after a new transaction")
        offsets_grow(envs, v, when, "mq-produce --atomic")
        validate(m, "x", v, when, notes=r.notes)

    def verify(self, envs, c, v, when):
        count = Counter(e["value"].rsplit("-", 1)[0] for e in envs)
        dups = [x for x, n in Counter(e["value"] for e in envs).items() if n > 1]
        if dups:
            v.append(f"{when}: {len(dups)} records of transactions twice (first {dups[0]!r})")
        for s in self.runs:
            name, n = s.data[0].rsplit("-", 1)[0], len(s.data)
            got = count.get(name, 0)
            if got not in (0, n):
                v.append(f"{when}: transaction {name} ({n} records, mq-produce exited {s.status}) is "
                         f"partly visible: {got} records")
            elif got == 0 and c.promised(s):
                v.append(f"{when}: transaction {name} ({n} records) exited 0 before the crash and "
                         f"is not visible")
        for name, sent in self.open:
            got = count.get(name, 0)
            if got:
                v.append(f"{when}: transaction {name} was open at the crash (input not ended, "
                         f"{sent} records sent) and {got} of its records are visible")


# --- 5. mq-produce --id-header (§19) ------------------------------------------------------------


class Dedup(Scenario):
    kind = "dedup"
    window = (0.05, 0.8)
    ids = 400

    def __init__(self):
        self.runs: List[Step] = []
        self.run_no = 0

    def setup(self, c: Ctx) -> None:
        self.partitions = c.rng.choice([1, 2, 3])
        assert c.m.run("mq-topic", "create", "u", "--partitions", str(self.partitions)).status == 0

    def one(self, c: Ctx, ids: List[int]) -> None:
        self.run_no += 1
        text = "".join(f"id{i}:run{self.run_no}\n" for i in ids)
        self.runs.append(c.call("mq-produce", "-K", ":", "--id-header", "id", "--batch-messages",
                                str(c.rng.choice([7, 60, 1000])), "u", input=text.encode(),
                                data=[f"id{i}" for i in ids]))

    def subset(self, c: Ctx) -> List[int]:
        ids = c.rng.sample(range(self.ids), c.rng.randint(20, self.ids))
        return ids

    def work(self, c: Ctx, cycle: int) -> None:
        for _ in range(3):
            self.one(c, self.subset(c))

    def background(self, c: Ctx, cycle: int):
        def more():
            while True:
                self.one(c, self.subset(c))
        return [more]

    def check(self, m, c, cycle, r):
        v, when = r.violations, f"cycle {cycle}"
        envs = tail(m, "u")
        if envs is None:
            v.append(f"{when}: mq-tail -n +0 u failed after the reboot")
            return
        self.verify(envs, c, v, when + ", before a rerun")
        # reruns of the same input (the whole of it, once more after that) complete it
        again = Ctx(m, c.rng)
        for s in [s for s in self.runs if not c.promised(s)] + [None]:
            ids = [int(x[2:]) for x in s.data] if s else list(range(self.ids))
            self.one(again, ids)
            if self.runs[-1].status != 0:
                v.append(f"{when}: rerun of mq-produce --id-header exited {self.runs[-1].status}: "
                         f"{self.runs[-1].err[-500:]}")
        envs = tail(m, "u")
        if envs is None:
            v.append(f"{when}: mq-tail -n +0 u failed after the reruns")
            return
        self.verify(envs, again, v, when + ", after the reruns")
        ids = Counter(headers(e).get("id") for e in envs)
        missing = [f"id{i}" for i in range(self.ids) if f"id{i}" not in ids]
        if missing:
            v.append(f"{when}: after a complete rerun {len(missing)} ids are missing (first {missing[0]})")
        validate(m, "u", v, when)

    def verify(self, envs, c, v, when):
        ids = Counter(headers(e).get("id") for e in envs)
        twice = sorted(k for k, n in ids.items() if n > 1)
        if twice:
            where = [(e["partition"], e["offset"], e["value"]) for e in envs if headers(e).get("id") == twice[0]]
            v.append(f"{when}: {len(twice)} ids twice in the topic (first {twice[0]} at {where})")
        for s in self.runs:
            if c.promised(s):
                lost = [x for x in s.data if x not in ids]
                if lost:
                    v.append(f"{when}: mq-produce --id-header exited 0 with {len(s.data)} ids; {len(lost)} "
                             f"are not in the topic (first {lost[0]})")


# --- 6. mq-produce --delay and the mover (§15) ---------------------------------------------------


class Delay(Scenario):
    kind = "delay"
    window = (0.2, 1.2)

    def __init__(self):
        self.runs: List[Step] = []
        self.n = 0
        self.crashes = 0
        self.due = 0.0

    def setup(self, c: Ctx) -> None:
        self.partitions = c.rng.choice([1, 2])
        assert c.m.run("mq-topic", "create", "t", "--partitions", str(self.partitions)).status == 0

    def one(self, c: Ctx, count: int, delay_ms: int) -> None:
        self.n += 1
        msgs = [f"d{self.n}-{i}" for i in range(count)]
        self.due = max(self.due, time.time() + delay_ms / 1000)
        self.runs.append(c.call("mq-produce", "--delay", f"{delay_ms}ms", "t",
                                input="".join(x + "\n" for x in msgs).encode(), data=msgs))

    def setup_sweep(self, c: Ctx) -> None:
        # a sweep moves messages already due: one batch of 2,500 (three moves)
        self.one(c, 2500, 1)
        time.sleep(0.05)

    def work(self, c: Ctx, cycle: int) -> None:
        c.call("mq-consume", "-g", "g", "-e", "--format", "", "t")

    def background(self, c: Ctx, cycle: int):
        def producers():
            while True:
                self.one(c, c.rng.randint(1, 1500), c.rng.choice([1, 50, 200]))
                time.sleep(c.rng.random() * 0.05)

        def mover():
            p = c.m.spawn("mq-consume", "-g", "g", "--format", "", "t", boot=c.boot)
            p.wait()
        return [producers, mover]

    def check(self, m, c, cycle, r):
        v, when = r.violations, f"cycle {cycle}"
        self.crashes += 1
        wait = self.due - time.time() + 0.05
        if wait > 0:
            time.sleep(wait)
        for g in ("after1", "after2"):
            res = m.run("mq-consume", "-g", f"{g}.{cycle}", "-e", "--format", "", "t")
            if res.status != 0:
                v.append(f"{when}: mq-consume -e t (the mover) after the reboot exited {res.status}: "
                         f"{res.stderr[-500:]}")
        envs = tail(m, "t")
        if envs is None:
            v.append(f"{when}: mq-tail -n +0 t failed after the reboot")
            return
        got = Counter(e["value"] for e in envs)
        for s in self.runs:
            if c.promised(s):
                lost = [x for x in s.data if x not in got]
                if lost:
                    v.append(f"{when}: mq-produce --delay exited 0 with {len(s.data)} messages; {len(lost)} "
                             f"never delivered to t after the reboot (first {lost[0]!r})")
        dups = sum(n - 1 for n in got.values())
        if dups > 1000 * self.crashes:
            # known: topics/T.delay is not fsynced after mover.offset and mover.journal are
            # created, so both vanish at a power loss and the mover starts over
            r.known.append(f"{when}: {dups} duplicates in t after {self.crashes} crashes (at most 1,000 per crash)")
        elif dups:
            r.notes.append(f"{when}: {dups} duplicates in t (allowed: 1,000 per crash)")
        validate(m, "t", v, when)


# --- 7. mq-topic create / alter / delete (§10, §11) ----------------------------------------------


class Topics(Scenario):
    kind = "topic"
    window = (0.02, 0.5)
    work_in_trials = False    # one sequence of ops: "the last op that returned 0" is well defined
    names = ("a", "b", "c", "d")

    def __init__(self):
        self.ops: List[Step] = []         # data = (op, name, retention or None)
        self.stamp = 1000
        self.inflight: Optional[Tuple[str, str, Optional[int]]] = None

    def op(self, c: Ctx, what: str, name: str) -> None:
        self.stamp += 1
        ret = self.stamp
        if what == "create":
            args = ("create", name, "--partitions", str(c.rng.choice([1, 2])), "--config", f"retention.ms={ret}")
        elif what == "alter":
            args = ("alter", name, "--config", f"retention.ms={ret}")
        else:
            args, ret = ("delete", name), None
        self.inflight = (what, name, ret)
        step = c.call("mq-topic", *args, data=(what, name, ret))
        self.ops.append(step)
        self.inflight = None

    def work(self, c: Ctx, cycle: int) -> None:
        # every kind of step on fresh and existing names, in one sequence
        for what, name in (("create", "a"), ("alter", "a"), ("create", "b"), ("delete", "a"),
                           ("alter", "b"), ("create", "a"), ("delete", "b"), ("alter", "a")):
            self.op(c, what, f"{name}{cycle}")

    def background(self, c: Ctx, cycle: int):
        def random_ops():
            while True:
                self.op(c, c.rng.choice(["create", "create", "alter", "delete"]),
                        c.rng.choice(self.names) + str(cycle))
        return [random_ops]

    def check(self, m, c, cycle, r):
        v, when = r.violations, f"cycle {cycle}"
        # what each name must look like: the last op that returned 0 (and whose fsyncs took
        # effect) and, when some later op of that name may have happened (in flight or after the
        # freeze), that op's outcome too
        expect: Dict[str, List[Optional[int]]] = {}
        for s in self.ops:
            what, name, ret = s.data
            outcome = None if what == "delete" else ret
            if s.status != 0:
                continue                 # refused (exists, missing): changed nothing
            if c.promised(s):
                expect[name] = [outcome]
            else:                        # returned 0 after the freeze: either state
                expect[name] = expect.get(name, [None]) + [outcome]
        if self.inflight:
            what, name, ret = self.inflight
            expect.setdefault(name, [None]).append(None if what == "delete" else ret)
        res = m.run("mq-topic", "describe", "--json")
        if res.status != 0:
            v.append(f"{when}: mq-topic describe --json after the reboot exited {res.status}: {res.stderr[-500:]}")
            return
        have = {}
        for line in res.lines():
            d = json.loads(line)
            have[d["topic"]] = int(d["config"]["retention.ms"])
        listed = m.run("mq-topic", "list").lines()
        if sorted(listed) != sorted(have):
            v.append(f"{when}: mq-topic list {sorted(listed)} differs from describe {sorted(have)}")
        for name, allowed in sorted(expect.items()):
            got = have.get(name)
            if got not in allowed:
                last = [s for s in self.ops if s.data[1] == name and s.status == 0]
                v.append(f"{when}: topic {name}: after the reboot "
                         f"{'missing' if got is None else f'retention.ms={got}'}; allowed "
                         f"{['missing' if a is None else f'retention.ms={a}' for a in allowed]}; its last "
                         f"op that returned 0: {last[-1].args[1:] if last else None}")
        for name in have:
            if name not in expect:
                v.append(f"{when}: topic {name} exists after the reboot, no create of it returned 0 or ran")
        # every listed topic takes a producer and a reader; names are usable again
        for name in have:
            if m.run("mq-produce", name, input=b"after\n").status != 0:
                v.append(f"{when}: mq-produce into {name} after the reboot failed")
        for name in have:
            dl = m.run("mq-topic", "delete", name)
            if dl.status != 0:
                v.append(f"{when}: mq-topic delete {name} after the reboot exited {dl.status}: {dl.stderr[-300:]}")
        self.ops, self.inflight = [], None


SCENARIOS = {"compact": Compact, "replay": Replay, "dlq": Redrive, "txn": Txn, "dedup": Dedup,
             "delay": Delay, "topic": Topics}


# ---------------------------------------------------------------------------------------------
# Randomized trials


def run_kind_trial(kind: str, seed: int, bin_dir: Path, work: Path, torn: Optional[bool] = None,
                   cycles: int = 2, keep: bool = False) -> pl.TrialResult:
    rng = random.Random(f"{kind}:{seed}")
    if torn is None:
        torn = rng.random() < 0.5
    started = time.monotonic()
    r = Report()
    work.mkdir(parents=True, exist_ok=True)
    m = pl.Machine(work, bin_dir, torn=torn)
    sc = SCENARIOS[kind]()
    try:
        m.start()
        c = Ctx(m, rng)
        sc.setup(c)
        m.fs.sync()
        for cycle in range(1, cycles + 1):
            c = Ctx(m, random.Random(rng.random()))
            threads = []
            work = [lambda: sc.work(c, cycle)] if sc.work_in_trials else []
            for fn in work + sc.background(c, cycle):
                def guarded(fn=fn):
                    try:
                        fn()
                    except MachineDown:
                        pass
                t = threading.Thread(target=guarded, daemon=True)
                t.start()
                threads.append(t)
            lo, hi = sc.window
            time.sleep(lo + rng.random() * (hi - lo))
            m.power_loss(rng.getrandbits(32))
            for t in threads:
                t.join(15)
            sc.check(m, c, cycle, r)
        r.notes.append(f"crashfs: {m.fs.stats()}")
    except AssertionError as e:
        r.violations.append(f"setup failed: {e}")
    finally:
        m.stop()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    res = pl.TrialResult(seed, torn, cycles, r.violations, [], r.notes + [f"known bug: {x}" for x in r.known],
                         time.monotonic() - started)
    res.kind = kind
    res.known = r.known
    return res


# ---------------------------------------------------------------------------------------------
# Sweeps: a crash right after each durability call of a sequential workload


@dataclass
class SweepResult:
    kind: str
    calls: int
    points: List[int]
    violations: List[str]
    seconds: float
    known: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def describe(self) -> str:
        return "\n".join([f"sweep {self.kind}: {self.calls} durability calls, crashed after "
                          f"{len(self.points)} of them ({self.seconds:.1f}s)"] +
                         [f"  violation: {x}" for x in self.violations] +
                         [f"  known bug: {x}" for x in self.known] +
                         [f"  note: {x}" for x in self.notes])


def sweep(kind: str, bin_dir: Path, work: Path, seed: int = 1, max_points: int = 12,
          points: Optional[List[int]] = None, inspect: Optional[Callable] = None) -> SweepResult:
    """Runs `kind`'s sequential workload once to count its durability calls N, then, for K in
    `points` (default: N evenly spaced choices of at most `max_points`, always K = 1 and N - 1),
    from the same durable starting state, runs it again with crashfs frozen after K calls, cuts
    the power, and checks. The starting state is built once and copied."""
    started = time.monotonic()
    work.mkdir(parents=True, exist_ok=True)
    m = pl.Machine(work, bin_dir)
    violations: List[str] = []
    known: List[str] = []
    notes: List[str] = []
    base = m.root.with_name("base")
    try:
        m.start()
        m.root = base
        base.mkdir()
        sc0 = SCENARIOS[kind]()
        c = Ctx(m, random.Random(seed))
        sc0.setup(c)
        if hasattr(sc0, "setup_sweep"):
            sc0.setup_sweep(c)
        m.root = base.with_name("mq")
        m.fs.sync()

        def fresh() -> Tuple[Scenario, Ctx]:
            if m.root.exists():
                shutil.rmtree(m.root)
            subprocess.run(["cp", "-a", str(base), str(m.root)], check=True)
            m.fs.sync()
            m.boot()
            sc = SCENARIOS[kind]()
            # the scenario's bookkeeping of setup is the same for every copy
            sc.__dict__.update({k: v for k, v in sc0.__dict__.items() if k not in ("lock",)})
            sc.__dict__ = {**sc.__dict__, **{k: (list(v) if isinstance(v, list) else v)
                                             for k, v in sc.__dict__.items()}}
            return sc, Ctx(m, random.Random(seed + 1))

        sc, c = fresh()
        before = durability_calls(m)
        sc.work(c, 1)
        calls = durability_calls(m) - before
        if points is None:
            if calls <= max_points:
                points = list(range(0, calls))
            else:
                step = calls / (max_points - 1)
                points = sorted({0, calls - 1} | {int(i * step) for i in range(max_points - 1)})
        for k in points:
            sc, c = fresh()
            before = durability_calls(m)
            m.fs.control(f"freeze {k}" if k > 0 else "freeze 0")
            c.freeze_at = before + k
            try:
                sc.work(c, 1)
            except MachineDown:
                pass
            m.power_loss(k + 1)
            r = Report()
            if inspect:
                inspect(m, k)
            sc.check(m, c, 1, r)
            at = f"crash after durability call {k} of {calls}: "
            violations += [at + x for x in r.violations]
            known += [at + x for x in r.known]
            notes += [at + x for x in r.notes]
    finally:
        m.stop()
        shutil.rmtree(work, ignore_errors=True)
    return SweepResult(kind, calls, points or [], violations, time.monotonic() - started, known, notes)


SWEEP_POINTS = {"compact": 14, "txn": 10, "topic": 8, "replay": 7, "dlq": 7, "dedup": 7, "delay": 6}
