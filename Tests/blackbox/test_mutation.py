"""Seeded black-box mutation test: damaged logs must never crash a tool.

A set of realistic topics is written once with the real tools (every codec, keys, headers,
null values, several segments, a transaction with an abort, a consumer group with committed
offsets, a work queue with a dead-letter topic). Each *case* copies that whole log directory,
damages one thing in the copy with a seeded `random.Random`, and runs every tool that reads or
writes it. A batch field covered by the CRC is changed with the CRC recomputed (most of the
time), so that the damage reaches the decoders; records inside compressed batches are
decompressed, damaged, recompressed.

Allowed: exit 0, or a clean error (64-78 but 70). Failures, by kind:
  crash      death by a signal (or 128+N), "Fatal error" / "precondition" / ... on stderr
  exit-70    an internal error
  exit-N     any other status
  timeout    no exit within MQ_MUTATION_TIMEOUT seconds (default 10)
  unnamed-65 exit 65 (corrupt data) without naming where: a partition directory
             (topics/NAME/P), a segment or index file, or a group/transaction file

Environment:
  MQ_MUTATION_SEED     the seed (default 1); "random" picks one and prints it
  MQ_MUTATION_CASES    total number of cases (default 300), split over the categories
  MQ_MUTATION_ONLY     run just these cases: comma-separated case ids (e.g. header/17)
  MQ_MUTATION_KEEP     a directory: the case directory of each failure's first example is
                       written there, as the mutation left it (before any tool ran)
  MQ_MUTATION_REPORT   a file to write the full report to
  MQ_MUTATION_TIMEOUT  seconds per tool run (default 10)
  MQ_MUTATION_JOBS     parallel cases (default: the number of CPUs)

To rebuild one case by hand: scripts/mutate-repro.py --seed S --case header/17 OUTDIR
"""

from __future__ import annotations

import collections
import concurrent.futures
import gzip
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
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mqtest  # noqa: E402

import crc32c as _crc32c  # noqa: E402
import lz4.frame  # noqa: E402
import snappy  # noqa: E402
import zstandard  # noqa: E402

I64_MAX = 2**63 - 1
I64_MIN = -2**63
I32_MAX = 2**31 - 1
I32_MIN = -2**31
TS0 = 1_750_000_000_000  # timestamps of the source records (fixed: the bytes are reproducible)
HEADER = 61
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
SEGMENT_RE = re.compile(r"^\d{20}\.log$")
TIMEOUT = float(os.environ.get("MQ_MUTATION_TIMEOUT", "10"))

# Share of the cases per category (they add up to 1).
CATEGORIES = {"header": 0.25, "records": 0.25, "compressed": 0.19, "files": 0.12,
              "indexes": 0.09, "state": 0.10}


def crc32c(data, value=0) -> int:
    return _crc32c.crc32c(bytes(data), value) & 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------
# Source topics, written once with the real tools


def _tool(bin_dir, tool, args, root, input=b"", check=True, timeout=120):
    args = [str(a) for a in args]
    at = 1 if tool in ("mq-topic", "mq-dlq") else 0
    argv = [str(bin_dir / tool)] + args[:at] + ["--dir", str(root)] + args[at:]
    env = dict(os.environ, LC_ALL="C.UTF-8", SWIFT_BACKTRACE="enable=no")
    env.pop("MQ_DIR", None)
    p = subprocess.run(argv, input=input, capture_output=True, timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"building the source topics: {' '.join(argv)} exited {p.returncode}:"
                             f" {p.stderr.decode(errors='replace')}")
    return p


def _messages(rng, n, first, tombstones=True):
    """n --json lines with keys (some null), headers (some null values, repeated names), null
    values (tombstones) and binary values, with fixed timestamps."""
    lines = []
    for i in range(n):
        t = TS0 + (first + i) * 1000
        key = None if rng.random() < 0.15 else f"k{rng.randrange(8)}"
        r = rng.random()
        if tombstones and key is not None and r < 0.12:
            value = None
        elif r < 0.25:
            value = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        else:
            value = f"message {first + i} " + "lorem ipsum dolor sit amet " * rng.randrange(1, 4)
        headers = None
        if rng.random() < 0.6:
            headers = [(rng.choice(["trace", "src", "dup", "ключ"]),
                        None if rng.random() < 0.2 else f"h{rng.randrange(100)}")
                       for _ in range(rng.randrange(1, 4))]
        lines.append(mqtest.jline(value=value, key=key, headers=headers, timestamp=t))
    return b"".join(lines)


def build_sources(bin_dir: Path, root: Path) -> None:
    """The source log directory. Deterministic except for times the tools take from the clock
    (head createdMs, group commit times, the LogAppendTime topic, the queue's lease times)."""
    rng = random.Random(20240611)
    root.mkdir(parents=True, exist_ok=True)
    # Small segments (several per partition) and an index entry every ~100 bytes.
    seg = ["--config", "segment.bytes=1024", "--config", "index.interval.bytes=100"]
    # One topic per codec; compacted ones exercise mq-compact's rewriter.
    for codec, parts, policy in (("none", 2, "compact"), ("gzip", 1, "compact"),
                                 ("snappy", 1, "delete"), ("lz4", 1, "compact"),
                                 ("zstd", 1, "compact")):
        t = f"z-{codec}"
        _tool(bin_dir, "mq-topic", ["create", t, "--partitions", parts, *seg,
                                    "--config", f"cleanup.policy={policy}",
                                    "--config", "retention.ms=-1"], root)
        for run in range(3):
            _tool(bin_dir, "mq-produce", [t, "--json", "-z", codec, "--batch-messages", "6"], root,
                  input=_messages(rng, 30, run * 30))
    # Keys with -K, LogAppendTime (attribute bit 3), a group with committed offsets.
    _tool(bin_dir, "mq-topic", ["create", "keyed", *seg, "--config",
                                "message.timestamp.type=LogAppendTime"], root)
    _tool(bin_dir, "mq-produce", ["keyed", "-K", ":", "--batch-messages", "5"], root,
          input=b"".join(b"user%d:clicked %d\n" % (i % 5, i) for i in range(40)))
    _tool(bin_dir, "mq-consume", ["-g", "G", "-e", "keyed"], root)
    _tool(bin_dir, "mq-consume", ["-g", "G", "-e", "-c", "25", "z-zstd"], root)
    _tool(bin_dir, "mq-produce", ["keyed", "-K", ":", "-z", "snappy", "--batch-messages", "5"], root,
          input=b"".join(b"user%d:later %d\n" % (i % 5, i) for i in range(20)))
    # Transactions over two partitions: committed, aborted (a .txnindex), committed.
    _tool(bin_dir, "mq-topic", ["create", "txn", "--partitions", "2", *seg], root)

    def txn_input(first):
        return b"".join(mqtest.jline(value=f"txn {first + i} " + "x" * 40, key=f"t{i % 3}",
                                     partition=i % 2, timestamp=TS0 + (first + i) * 1000)
                        for i in range(24))
    _tool(bin_dir, "mq-produce", ["txn", "--atomic", "--json", "-z", "gzip", "--batch-messages", "4"],
          root, input=txn_input(0))
    feed = root.parent / "txn-abort.jsonl"
    feed.write_bytes(txn_input(100))
    _tool(bin_dir, "mq-produce", ["txn", "--atomic", "--json", "--batch-messages", "4", "--",
                                  "sh", "-c", f"cat '{feed}'; exit 3"], root, check=False)
    feed.unlink()
    _tool(bin_dir, "mq-produce", ["txn", "--atomic", "--json", "-z", "lz4", "--batch-messages", "4"],
          root, input=txn_input(200))
    # A work queue; failing jobs go to jobs.dlq.
    _tool(bin_dir, "mq-topic", ["create", "jobs", *seg], root)
    _tool(bin_dir, "mq-produce", ["jobs", "--batch-messages", "3"], root,
          input=b"".join(b"job %d%s\n" % (i, b" fail" if i % 4 == 1 else b"") for i in range(16)))
    _tool(bin_dir, "mq-consume", ["--queue", "-g", "W", "-e", "--max-attempts", "1", "--backoff", "1ms",
                                  "jobs", "--", "sh", "-c",
                                  'v=$(cat); case "$v" in *fail*) echo "no: $v" >&2; exit 1;; esac'],
          root, timeout=120)
    _tool(bin_dir, "mq-produce", ["jobs", "--batch-messages", "3"], root,
          input=b"".join(b"job %d\n" % i for i in range(16, 22)))


# ---------------------------------------------------------------------------------------------
# Reading the source: batches of every segment


class Batch:
    __slots__ = ("topic", "part", "seg", "pos", "size", "attrs", "count", "base")

    def __init__(self, topic, part, seg, pos, size, attrs, count, base):
        self.topic, self.part, self.seg, self.pos, self.size = topic, part, seg, pos, size
        self.attrs, self.count, self.base = attrs, count, base

    @property
    def codec(self):
        return self.attrs & 7

    @property
    def control(self):
        return bool(self.attrs & 0x20)

    def where(self):
        return f"{self.topic}/{self.part}/{self.seg}@{self.pos}"


def scan_log(data: bytes):
    pos = 0
    while pos + HEADER <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        size = length + 12
        if length < 49 or pos + size > len(data):
            break
        attrs = struct.unpack_from(">h", data, pos + 21)[0]
        count = struct.unpack_from(">i", data, pos + 57)[0]
        yield pos, size, attrs, count, base
        pos += size


class Source:
    """What the source directory holds, for choosing what to damage."""

    def __init__(self, root: Path):
        self.root = root
        self.topics = sorted(p.name for p in (root / "topics").iterdir() if p.is_dir())
        self.batches = collections.defaultdict(list)   # topic -> [Batch]
        self.segments = collections.defaultdict(list)  # topic -> [(part, name)]
        for t in self.topics:
            for pdir in sorted((root / "topics" / t).iterdir()):
                if not pdir.name.isdigit():
                    continue
                for f in sorted(pdir.iterdir()):
                    if SEGMENT_RE.match(f.name):
                        self.segments[t].append((pdir.name, f.name))
                        for pos, size, attrs, count, base in scan_log(f.read_bytes()):
                            self.batches[t].append(Batch(t, pdir.name, f.name, pos, size, attrs,
                                                         count, base))

    def files(self, pattern):
        return sorted(str(p.relative_to(self.root)) for p in self.root.glob(pattern) if p.is_file())


# ---------------------------------------------------------------------------------------------
# Encodings


def zigzag(n: int) -> int:
    return ((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF


def uvarint(u: int) -> bytes:
    out = bytearray()
    while True:
        b = u & 0x7F
        u >>= 7
        if u:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(n: int) -> bytes:
    return uvarint(zigzag(n))


def read_varint(data, p):
    shift = u = 0
    while True:
        if p >= len(data) or shift > 63:
            raise ValueError("bad varint")
        b = data[p]
        p += 1
        u |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return (u >> 1) ^ -(u & 1), p


def decompress(codec: int, data: bytes) -> bytes:
    if codec == 0:
        return data
    if codec == 1:
        return gzip.decompress(data)
    if codec == 2:
        if data[:8] != b"\x82SNAPPY\x00":
            return snappy.uncompress(data)
        out, p = bytearray(), 16
        while p < len(data):
            n = int.from_bytes(data[p:p + 4], "big")
            out += snappy.uncompress(data[p + 4:p + 4 + n])
            p += 4 + n
        return bytes(out)
    if codec == 3:
        return lz4.frame.decompress(data)
    if codec == 4:
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    raise ValueError(codec)


def compress(codec: int, data: bytes) -> bytes:
    if codec == 0:
        return data
    if codec == 1:
        return gzip.compress(data, 6, mtime=0)
    if codec == 2:
        out = bytearray(b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1))
        for i in range(0, len(data), 32768):
            block = snappy.compress(data[i:i + 32768])
            out += struct.pack(">i", len(block)) + block
        return bytes(out)
    if codec == 3:
        return lz4.frame.compress(data, block_size=lz4.frame.BLOCKSIZE_MAX64KB,
                                  content_checksum=False)
    if codec == 4:
        return zstandard.ZstdCompressor(level=3).compress(data)
    raise ValueError(codec)


# A record as tokens (name, value); numbers are zig-zag varints when encoded. `raw` tokens are
# written as they are (a mutation's replacement bytes).
def parse_records(data: bytes) -> list:
    recs, p = [], 0
    while p < len(data):
        length, p = read_varint(data, p)
        body, p = data[p:p + length], p + length
        if length < 0 or len(body) < length:
            raise ValueError("record overruns its section")
        toks, q = [("attr", body[0:1])], 1
        for name in ("ts", "off"):
            v, q = read_varint(body, q)
            toks.append((name, v))
        for name in ("key", "val"):
            n, q = read_varint(body, q)
            toks.append((name + "len", n))
            if n >= 0:
                toks.append((name, body[q:q + n]))
                q += n
        hc, q = read_varint(body, q)
        toks.append(("hcount", hc))
        for _ in range(hc):
            n, q = read_varint(body, q)
            toks.append(("hnamelen", n))
            toks.append(("hname", body[q:q + n]))
            q += n
            n, q = read_varint(body, q)
            toks.append(("hvallen", n))
            if n >= 0:
                toks.append(("hval", body[q:q + n]))
                q += n
        recs.append(toks)
    return recs


def encode_record(toks, length=None) -> bytes:
    body = bytearray()
    for name, v in toks:
        if isinstance(v, (bytes, bytearray)):
            body += v
        else:
            body += varint(v)
    head = varint(len(body)) if length is None else (length if isinstance(length, bytes)
                                                      else varint(length))
    return head + bytes(body)


# ---------------------------------------------------------------------------------------------
# The case: one damaged copy of the source directory


class NotApplicable(Exception):
    pass


class Case:
    def __init__(self, seed, case_id, source: Source, root: Path):
        self.seed, self.id, self.src, self.root = seed, case_id, source, root
        self.rng = random.Random(f"{seed}:{case_id}")
        self.kind = None
        self.topic = None
        self.notes = []
        self.housekeeping = False  # run mq-compact -a (group / queue state)

    def note(self, text):
        self.notes.append(text)

    def path(self, *parts) -> Path:
        return self.root.joinpath(*parts)

    def seg_path(self, b: Batch) -> Path:
        return self.path("topics", b.topic, b.part, b.seg)

    def pick_topic(self, topics=None):
        topics = topics or self.src.topics
        self.topic = self.rng.choice(sorted(topics))
        return self.topic

    def pick_batch(self, want=None, topics=None) -> Batch:
        """A batch of a topic; want: None, 'data', 'compressed', 'control'."""
        ok = {
            None: lambda b: True,
            "data": lambda b: not b.control and b.count > 0,
            "compressed": lambda b: b.codec != 0,
            "control": lambda b: b.control,
        }[want]
        cand = {t: [b for b in self.src.batches[t] if ok(b)] for t in (topics or self.src.topics)}
        cand = {t: bs for t, bs in cand.items() if bs}
        if not cand:
            raise NotApplicable(want)
        if want == "compressed":
            # Every codec equally often, whatever the topics hold.
            codec = self.rng.choice(sorted({b.codec for bs in cand.values() for b in bs}))
            cand = {t: [b for b in bs if b.codec == codec] for t, bs in cand.items()}
            cand = {t: bs for t, bs in cand.items() if bs}
        t = self.rng.choice(sorted(cand))
        b = self.rng.choice(cand[t])
        self.topic = t
        return b

    # -- batch editing --------------------------------------------------------------------

    def edit_batch(self, b: Batch, fn, fix_crc=True):
        """fn(bytearray of the batch) -> new batch bytes (or None: edited in place)."""
        path = self.seg_path(b)
        data = bytearray(path.read_bytes())
        batch = bytearray(data[b.pos:b.pos + b.size])
        new = fn(batch)
        new = batch if new is None else bytearray(new)
        if fix_crc and len(new) >= HEADER:
            struct.pack_into(">I", new, 17, crc32c(new[21:]))
        data[b.pos:b.pos + b.size] = new
        path.write_bytes(bytes(data))

    def crc_choice(self, share_fixed=0.85) -> bool:
        fixed = self.rng.random() < share_fixed
        self.note("crc=" + ("recomputed" if fixed else "stale"))
        return fixed


def extreme64(rng):
    return rng.choice([I64_MAX, I64_MAX - rng.randrange(1, 1000), I64_MIN, I64_MIN + 1, -1,
                       -rng.randrange(1, 2**62), 2**31, 2**32 + rng.randrange(1000),
                       rng.randrange(2**62), 0])


def extreme32(rng):
    return rng.choice([I32_MAX, I32_MAX - rng.randrange(1, 100), I32_MIN, -1, -rng.randrange(2, 2**30),
                       rng.randrange(2**31), 0])


# -- batch header mutations ------------------------------------------------------------------

def set_field(case, b, at, fmt, value, crc_covered):
    fix = case.crc_choice() if crc_covered else False
    case.note(f"{b.where()} +{at} = {value}")
    case.edit_batch(b, lambda buf: struct.pack_into(fmt, buf, at, value), fix_crc=fix)


def m_base_offset_near_max(case):
    b = case.pick_batch()
    v = I64_MAX - case.rng.choice([0, 1, 2, b.count, case.rng.randrange(1000)])
    set_field(case, b, 0, ">q", max(v, 0), False)


def m_base_offset_negative(case):
    b = case.pick_batch()
    set_field(case, b, 0, ">q", case.rng.choice([-1, I64_MIN, -case.rng.randrange(2, 2**62)]), False)


def m_base_offset_random(case):
    b = case.pick_batch()
    r = case.rng
    v = r.choice([b.base + r.randrange(-3, 4), r.randrange(2**40), r.randrange(2**62),
                  b.base + 2**31, b.base + 2**32, 0])
    set_field(case, b, 0, ">q", v, False)


def m_batch_length(case):
    b = case.pick_batch()
    r = case.rng
    length = b.size - 12
    v = r.choice([length + 1, length - 1, length + r.randrange(2, 200), length - r.randrange(2, 40),
                  I32_MAX, I32_MIN, -1, 0, 48, 49, 2**30])
    set_field(case, b, 8, ">i", v, False)


def m_leader_epoch(case):
    b = case.pick_batch()
    set_field(case, b, 12, ">i", extreme32(case.rng), False)


def m_magic(case):
    b = case.pick_batch()
    set_field(case, b, 16, ">b", case.rng.choice([0, 1, 3, -1, 127]), False)


def m_attributes_codec(case):
    b = case.pick_batch()
    codec = case.rng.choice([c for c in range(8) if c != b.codec])
    set_field(case, b, 21, ">h", (b.attrs & ~7) | codec, True)


def m_attributes_bits(case):
    b = case.pick_batch()
    r = case.rng
    v = r.choice([b.attrs ^ 0x08, b.attrs ^ 0x10, b.attrs ^ 0x20, b.attrs ^ 0x30, b.attrs ^ 0x40,
                  b.attrs | 0x80, r.randrange(-2**15, 2**15)])
    set_field(case, b, 21, ">h", v, True)


def m_last_offset_delta(case):
    b = case.pick_batch()
    r = case.rng
    v = r.choice([I32_MAX, I32_MAX - 1, -1, I32_MIN, b.count, b.count - 2, b.count + r.randrange(1, 50),
                  r.randrange(2**31)])
    set_field(case, b, 23, ">i", v, True)


def m_records_count(case):
    b = case.pick_batch()
    r = case.rng
    v = r.choice([I32_MAX, 2**30, 0, -1, I32_MIN, b.count - 1, b.count + 1, max(b.count // 2, 1)])
    set_field(case, b, 57, ">i", v, True)


def m_timestamps(case):
    b = case.pick_batch()
    at = case.rng.choice([27, 35])
    set_field(case, b, at, ">q", extreme64(case.rng), True)


def m_producer_fields(case):
    b = case.pick_batch()
    r = case.rng
    fix = case.crc_choice()

    def edit(buf):
        which = r.randrange(4)
        if which == 0:
            struct.pack_into(">q", buf, 43, extreme64(r))
        elif which == 1:
            struct.pack_into(">h", buf, 51, r.choice([-2, 32767, -32768, 0, 1]))
        elif which == 2:
            struct.pack_into(">i", buf, 53, extreme32(r))
        else:  # transactional, of a producer nobody knows
            struct.pack_into(">h", buf, 21, struct.unpack_from(">h", buf, 21)[0] | 0x10)
            struct.pack_into(">qhi", buf, 43, r.choice([r.randrange(2**63), 0, -1, I64_MAX]), 0, 0)
        case.note(f"{b.where()} producer field {which}")
    case.edit_batch(b, edit, fix_crc=fix)


def m_crc_stale(case):
    b = case.pick_batch()
    r = case.rng

    def edit(buf):
        at = r.randrange(21, len(buf))
        buf[at] ^= 1 << r.randrange(8)
        case.note(f"{b.where()} bit flipped at +{at}, crc left")
    case.edit_batch(b, edit, fix_crc=False)


# -- record mutations (through decompression) ------------------------------------------------

def edit_records(case, want="data", topics=None, fn=None):
    """Decode the records of a batch, let fn(records, raw) return new section bytes, recompress
    with the batch's codec, fix batchLength and the CRC."""
    b = case.pick_batch(want, topics)
    fix = case.crc_choice(0.9)

    def edit(buf):
        raw = decompress(b.codec, bytes(buf[HEADER:]))
        recs = parse_records(raw)
        section = fn(recs, raw)
        body = compress(b.codec, section) if b.codec in CODECS and b.codec else section
        out = buf[:HEADER] + body
        struct.pack_into(">i", out, 8, len(out) - 12)
        return out
    case.note(f"{b.where()} codec={CODECS.get(b.codec, b.codec)}")
    case.edit_batch(b, edit, fix_crc=fix)


def _replace(case, recs, name, values, nth=None):
    """Set token `name` of a random record (that has it) to one of values; returns section."""
    r = case.rng
    with_tok = [i for i, t in enumerate(recs) if any(n == name for n, _ in t)]
    if not with_tok:
        raise NotApplicable(name)
    i = r.choice(with_tok)
    idx = [j for j, (n, _) in enumerate(recs[i]) if n == name]
    j = r.choice(idx) if nth is None else idx[min(nth, len(idx) - 1)]
    v = r.choice(values)
    recs[i][j] = (name, v)
    case.note(f"record {i} {name} = {v if not isinstance(v, bytes) else v.hex()}")
    return b"".join(encode_record(t) for t in recs)


def overlong(rng):
    """A varint of 11-16 bytes: every byte has the continuation bit but the last."""
    n = rng.randrange(11, 17)
    return bytes([0xFF] * (n - 1) + [0x01])


def m_record_length(case):
    def fn(recs, raw):
        r = case.rng
        i = r.randrange(len(recs))
        body_len = len(encode_record(recs[i], b""))
        v = r.choice([body_len + 1, body_len - 1, body_len + r.randrange(2, 100), max(body_len - 5, 0),
                      -1, -2, I32_MAX, I32_MIN, 2**40, I64_MAX, 0])
        case.note(f"record {i} length {body_len} -> {v}")
        return b"".join(encode_record(t, v if k == i else None) for k, t in enumerate(recs))
    edit_records(case, fn=fn)


def m_record_offset_delta(case):
    r = case.rng
    edit_records(case, fn=lambda recs, raw: _replace(
        case, recs, "off", [2**31, I32_MAX, 2**32 + 7, 2**40, I64_MAX, I64_MAX - 1, -1, I32_MIN - 1,
                            I64_MIN, r.randrange(2**31, 2**62)]))


def m_record_offset_order(case):
    def fn(recs, raw):
        r = case.rng
        how = r.choice(["reverse", "duplicate", "all-zero", "gap"])
        offs = [dict(t)["off"] for t in recs]
        if how == "reverse":
            offs = offs[::-1]
        elif how == "duplicate":
            offs = [offs[0]] * len(offs)
        elif how == "all-zero":
            offs = [0] * len(offs)
        else:
            offs = [o * 1000 for o in offs]
        case.note(f"offset deltas {how}")
        for t, o in zip(recs, offs):
            t[[n for n, _ in t].index("off")] = ("off", o)
        return b"".join(encode_record(t) for t in recs)
    edit_records(case, fn=fn)


def m_record_timestamp_delta(case):
    r = case.rng
    edit_records(case, fn=lambda recs, raw: _replace(
        case, recs, "ts", [I64_MAX, I64_MIN, -TS0 - 1, -TS0, I64_MAX - TS0, r.randrange(-2**62, 2**62)]))


def m_record_key_length(case):
    edit_records(case, fn=lambda recs, raw: _replace(
        case, recs, "keylen", [-2, -100, I32_MAX, I32_MIN, 2**40, I64_MAX, 10_000, 300]))


def m_record_value_length(case):
    edit_records(case, fn=lambda recs, raw: _replace(
        case, recs, "vallen", [-2, -100, I32_MAX, I32_MIN, 2**40, I64_MAX, 10_000, 300]))


def m_record_header_count(case):
    edit_records(case, fn=lambda recs, raw: _replace(
        case, recs, "hcount", [I32_MAX, 2**30, -1, -2, I32_MIN, 2**40, I64_MAX, 1, 5, 1000]))


def m_record_header_name(case):
    def fn(recs, raw):
        r = case.rng
        if r.random() < 0.35:
            return _replace(case, recs, "hname", [b"\xff\xfe", b"\xc3", b"a\x00b", b"\xed\xa0\x80"])
        return _replace(case, recs, "hnamelen", [-1, -2, I32_MAX, 2**40, I64_MAX, 500, 0])
    edit_records(case, fn=fn)


def m_record_header_value(case):
    edit_records(case, fn=lambda recs, raw: _replace(
        case, recs, "hvallen", [-2, -3, I32_MAX, I32_MIN, 2**40, 500]))


def m_record_attributes(case):
    r = case.rng
    edit_records(case, fn=lambda recs, raw: _replace(
        case, recs, "attr", [bytes([r.randrange(1, 256)]), b"\x80", b"\xff"]))


def m_record_varint_overlong(case):
    r = case.rng

    def fn(recs, raw):
        name = r.choice(["ts", "off", "keylen", "vallen", "hcount", "length"])
        if name == "length":
            i = r.randrange(len(recs))
            case.note(f"record {i} length overlong")
            return b"".join(encode_record(t, overlong(r) if k == i else None)
                            for k, t in enumerate(recs))
        return _replace(case, recs, name, [overlong(r)])
    edit_records(case, fn=fn)


def m_record_section(case):
    """Whole-section damage: a record missing, an extra one, trailing bytes, cut short."""
    def fn(recs, raw):
        r = case.rng
        how = r.choice(["drop", "extra", "trailing", "truncate", "empty", "random"])
        case.note(f"section {how}")
        enc = [encode_record(t) for t in recs]
        if how == "drop" and len(enc) > 1:
            del enc[r.randrange(len(enc))]
        elif how == "extra":
            enc.append(enc[r.randrange(len(enc))])
        elif how == "trailing":
            enc.append(bytes(r.randrange(256) for _ in range(r.randrange(1, 12))))
        elif how == "truncate":
            s = b"".join(enc)
            return s[:r.randrange(max(len(s) - 1, 1))]
        elif how == "empty":
            return b""
        elif how == "random":
            return bytes(r.randrange(256) for _ in range(len(raw)))
        return b"".join(enc)
    edit_records(case, fn=fn)


def m_control_record(case):
    """A transaction marker's record: another type, a short key, a short value."""
    def fn(recs, raw):
        r = case.rng
        how = r.choice(["type", "short-key", "null-key", "short-value", "version"])
        t = recs[0]
        names = [n for n, _ in t]
        key = bytearray(dict(t).get("key") or b"\0\0\0\0")
        if how == "type":
            struct.pack_into(">h", key, 2, r.choice([2, -1, 32767]))
        elif how == "version":
            struct.pack_into(">h", key, 0, r.choice([1, -1, 32767]))
        elif how == "short-key":
            key = key[:r.randrange(4)]
        if how == "null-key":
            i = names.index("keylen")
            del t[i + 1]
            t[i] = ("keylen", -1)
        elif how == "short-value":
            i = names.index("vallen")
            t[i] = ("vallen", 2)
            t[i + 1] = ("val", dict(t)["val"][:2])
        else:
            i = names.index("keylen")
            t[i] = ("keylen", len(key))
            t[i + 1] = ("key", bytes(key))
        case.note(f"marker {how}")
        return b"".join(encode_record(x) for x in recs)
    edit_records(case, want="control", fn=fn)


# -- compressed payloads -----------------------------------------------------------------------

def edit_payload(case, fn):
    b = case.pick_batch("compressed")
    fix = case.crc_choice(0.9)
    case.note(f"{b.where()} codec={CODECS.get(b.codec, b.codec)}")

    def edit(buf):
        body = fn(bytearray(buf[HEADER:]), b)
        out = buf[:HEADER] + body
        struct.pack_into(">i", out, 8, len(out) - 12)
        return out
    case.edit_batch(b, edit, fix_crc=fix)


def m_payload_flip(case):
    def fn(body, b):
        for _ in range(case.rng.randrange(1, 9)):
            at = case.rng.randrange(len(body))
            body[at] ^= case.rng.randrange(1, 256)
        return body
    edit_payload(case, fn)


def m_payload_truncate(case):
    edit_payload(case, lambda body, b: body[:case.rng.randrange(len(body))])


def m_payload_zero(case):
    def fn(body, b):
        a = case.rng.randrange(len(body))
        n = case.rng.randrange(1, len(body) - a + 1)
        body[a:a + n] = bytes(n)
        case.note(f"zeroed {n} bytes at {a}")
        return body
    edit_payload(case, fn)


def m_payload_garbage(case):
    r = case.rng

    def fn(body, b):
        keep = r.choice([0, 4, 8, 16])  # keep the magic / stream header or not
        return body[:keep] + bytes(r.randrange(256) for _ in range(r.randrange(1, 400)))
    edit_payload(case, fn)


def m_payload_trailing(case):
    r = case.rng

    def fn(body, b):
        extra = r.choice([bytes(r.randrange(256) for _ in range(r.randrange(1, 64))), bytes(body[:12]),
                          bytes(body)])
        return body + extra
    edit_payload(case, fn)


def m_payload_other_codec(case):
    """Records recompressed with another codec than the attributes say (or stored raw)."""
    def fn(body, b):
        raw = decompress(b.codec, bytes(body))
        other = case.rng.choice([c for c in range(5) if c != b.codec])
        case.note(f"recompressed as {CODECS[other]}")
        return compress(other, raw)
    edit_payload(case, fn)


def m_payload_framing(case):
    """A framing field of the codec lies: zstd's declared content size, gzip's ISIZE, flags or
    trailer CRC, a snappy stream's block length or a block's uncompressed-length preamble, an LZ4
    block size."""
    r = case.rng

    def fn(body, b):
        if b.codec == 4:
            fhd = body[4]
            single = (fhd >> 5) & 1
            at = 5 + (0 if single else 1) + (0, 1, 2, 4)[fhd & 3]
            size = {0: 1 if single else 0, 1: 2, 2: 4, 3: 8}[fhd >> 6]
            if size == 0:
                raise NotApplicable("no content size")
            real = len(decompress(4, bytes(body)))
            v = r.choice([0, 1, real // 2, real - 1, real + 1, real * 4, 2**(8 * size) - 1])
            stored = v - 256 if size == 2 else v
            stored = min(max(stored, 0), 2**(8 * size) - 1)
            body[at:at + size] = stored.to_bytes(size, "little")
            case.note(f"zstd content size {real} -> {stored + (256 if size == 2 else 0)}")
        elif b.codec == 1:
            how = r.choice(["isize", "crc", "fextra", "fname"])
            if how == "isize":
                body[-4:] = struct.pack("<I", r.choice([0, 1, 0xFFFFFFFF, r.randrange(2**32)]))
            elif how == "crc":
                body[-8] ^= 0xFF
            elif how == "fextra":
                body[3] |= 4
                body[10:10] = struct.pack("<H", r.choice([0xFFFF, 2, 100]))
            else:
                body[3] |= 8  # a file name, never terminated
            case.note(f"gzip {how}")
        elif b.codec == 2:
            how = r.choice(["block-length", "preamble"])
            if how == "block-length":
                struct.pack_into(">i", body, 16, r.choice([I32_MAX, -1, 0, I32_MIN,
                                                           struct.unpack_from(">i", body, 16)[0] + 1]))
            else:
                end = 20
                while body[end] & 0x80:
                    end += 1
                body[20:end + 1] = uvarint(r.choice([0, 1, 2**32 - 1, 2**31, 300 * 1024 * 1024]))
            case.note(f"snappy {how}")
        elif b.codec == 3:
            struct.pack_into("<I", body, 7, r.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x80000000 | 0x7FFFFF,
                                                      0x80000000, 0, 65537]))
            case.note("lz4 block size")
        return body
    edit_payload(case, fn)


_BOMBS = {}


def bomb(codec):
    """More than 256 MiB of zeros, compressed."""
    if codec not in _BOMBS:
        size = 257 * 1024 * 1024 + 5
        if codec == 1:
            c = zlib_gzip(size)
        elif codec == 4:
            c = zstandard.ZstdCompressor(level=1).compress(bytes(size))
        else:
            c = lz4.frame.compress(bytes(size), block_size=lz4.frame.BLOCKSIZE_MAX64KB)
        _BOMBS[codec] = c
    return _BOMBS[codec]


def zlib_gzip(size):
    import zlib
    co = zlib.compressobj(1, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    out = [co.compress(chunk) for _ in range(size >> 20)]
    out.append(co.compress(bytes(size & ((1 << 20) - 1))))
    out.append(co.flush())
    return b"".join(out)


def m_payload_bomb(case):
    b = case.pick_batch("compressed", [t for t in case.src.topics
                                      if any(x.codec in (1, 3, 4) for x in case.src.batches[t])])
    if b.codec not in (1, 3, 4):
        raise NotApplicable("bomb codec")
    case.note(f"{b.where()} {CODECS[b.codec]} payload of 257 MiB of zeros")

    def edit(buf):
        out = buf[:HEADER] + bomb(b.codec)
        struct.pack_into(">i", out, 8, len(out) - 12)
        return out
    case.edit_batch(b, edit, fix_crc=True)


# -- segment files ---------------------------------------------------------------------------

def pick_segment(case, topics=None):
    t = case.pick_topic([t for t in (topics or case.src.topics) if case.src.segments[t]])
    part, name = case.rng.choice(case.src.segments[t])
    return case.path("topics", t, part, name)


def m_log_truncate(case):
    p = pick_segment(case)
    size = p.stat().st_size
    at = case.rng.randrange(size) if size else 0
    os.truncate(p, at)
    case.note(f"{p.relative_to(case.root)} cut from {size} to {at}")


def m_log_zero_range(case):
    p = pick_segment(case)
    data = bytearray(p.read_bytes())
    if not data:
        raise NotApplicable("empty")
    a = case.rng.randrange(len(data))
    n = case.rng.randrange(1, min(len(data) - a, 200) + 1)
    data[a:a + n] = bytes(n)
    p.write_bytes(bytes(data))
    case.note(f"{p.relative_to(case.root)} zeroed {n} bytes at {a}")


def m_log_append(case):
    p = pick_segment(case)
    data = p.read_bytes()
    r = case.rng
    how = r.choice(["random", "header-only", "first-batch-again", "zeros"])
    if how == "random":
        extra = bytes(r.randrange(256) for _ in range(r.randrange(1, 300)))
    elif how == "header-only":
        extra = data[:HEADER] if len(data) >= HEADER else b"\0" * HEADER
    elif how == "first-batch-again":
        extra = next((data[pos:pos + size] for pos, size, *_ in scan_log(data)), b"x")
    else:
        extra = bytes(r.randrange(1, 5000))
    p.write_bytes(data + extra)
    case.note(f"{p.relative_to(case.root)} + {len(extra)} bytes ({how})")


def m_log_batch_order(case):
    p = pick_segment(case)
    data = p.read_bytes()
    spans = [(pos, size) for pos, size, *_ in scan_log(data)]
    r = case.rng
    if len(spans) < 2:
        # Duplicate the only batch instead.
        p.write_bytes(data + data)
        case.note(f"{p.relative_to(case.root)} doubled")
        return
    parts = [data[a:a + n] for a, n in spans]
    how = r.choice(["swap", "duplicate", "drop"])
    i = r.randrange(len(parts) - 1)
    if how == "swap":
        parts[i], parts[i + 1] = parts[i + 1], parts[i]
    elif how == "duplicate":
        parts.insert(i, parts[i])
    else:
        del parts[i]
    p.write_bytes(b"".join(parts) + data[sum(n for _, n in spans):])
    case.note(f"{p.relative_to(case.root)} batch {i} {how}")


def m_segment_set(case):
    """Segments missing, empty, renamed, or named past Int64.max."""
    t = case.pick_topic([t for t in case.src.topics if len(case.src.segments[t]) > 1])
    part, name = case.rng.choice(case.src.segments[t])
    d = case.path("topics", t, part)
    p = d / name
    base = int(name[:20])
    r = case.rng
    how = r.choice(["delete", "empty", "rename+1", "rename-1", "rename-huge", "rename-max",
                    "copy-ahead"])
    if how == "delete":
        p.unlink()
    elif how == "empty":
        os.truncate(p, 0)
    else:
        new = {"rename+1": f"{base + 1:020d}", "rename-1": f"{max(base - 1, 0):020d}",
               "rename-huge": "99999999999999999999", "rename-max": f"{I64_MAX:020d}",
               "copy-ahead": f"{base + 10**6:020d}"}[how]
        target = d / (new + ".log")
        if target.exists():
            raise NotApplicable("target exists")
        if how == "copy-ahead":
            shutil.copyfile(p, target)
        else:
            p.rename(target)
            for suffix in (".index", ".timeindex", ".txnindex"):
                if (d / (name[:20] + suffix)).exists():
                    (d / (name[:20] + suffix)).rename(d / (new + suffix))
    case.note(f"topics/{t}/{part}/{name} {how}")


def m_properties(case):
    t = case.pick_topic()
    p = case.path("topics", t, "topic.properties")
    r = case.rng
    how = r.choice(["garbage", "partitions=0", "partitions=huge", "partitions=fewer", "no-partitions",
                    "segment.bytes=1", "bad-utf8"])
    text = p.read_text()
    if how == "garbage":
        p.write_bytes(bytes(r.randrange(256) for _ in range(r.randrange(1, 200))))
    elif how == "bad-utf8":
        p.write_bytes(text.encode() + b"\xff\xfe=\x80\n")
    elif how == "no-partitions":
        p.write_text("\n".join(line for line in text.splitlines() if not line.startswith("partitions")))
    else:
        value = {"partitions=0": "partitions=0", "partitions=huge": "partitions=99999999999999999999",
                 "partitions=fewer": "partitions=1", "segment.bytes=1": "segment.bytes=1"}[how]
        p.write_text(text + value + "\n")
    case.note(f"topics/{t}/topic.properties {how}")


# -- indexes ---------------------------------------------------------------------------------

def pick_file(case, suffix, topics=None):
    files = [f for f in case.src.files(f"topics/*/*/*{suffix}")
             if (topics is None or f.split("/")[1] in topics) and (case.src.root / f).stat().st_size]
    if not files:
        raise NotApplicable(suffix)
    f = case.rng.choice(files)
    case.topic = f.split("/")[1]
    return case.path(f)


def m_index_entries(case):
    suffix, size = case.rng.choice([(".index", 8), (".timeindex", 12)])
    p = pick_file(case, suffix)
    data = bytearray(p.read_bytes())
    r = case.rng
    n = len(data) // size
    i = r.randrange(n)
    how = r.choice(["random", "max", "past-eof", "zero", "decreasing"])
    if suffix == ".index":
        entry = {"random": struct.pack(">II", r.randrange(2**32), r.randrange(2**32)),
                 "max": struct.pack(">II", 0xFFFFFFFF, 0xFFFFFFFF),
                 "past-eof": struct.pack(">II", 1, 10**6),
                 "zero": bytes(8),
                 "decreasing": struct.pack(">II", 0x7FFFFFFF, 0)}[how]
    else:
        entry = {"random": struct.pack(">qI", r.randrange(-2**63, 2**63), r.randrange(2**32)),
                 "max": struct.pack(">qI", I64_MAX, 0xFFFFFFFF),
                 "past-eof": struct.pack(">qI", I64_MIN, 0x7FFFFFFF),
                 "zero": bytes(12),
                 "decreasing": struct.pack(">qI", -1, 0)}[how]
    data[i * size:(i + 1) * size] = entry
    p.write_bytes(bytes(data))
    case.note(f"{p.relative_to(case.root)} entry {i}/{n} {how}")


def m_index_truncate(case):
    suffix, size = case.rng.choice([(".index", 8), (".timeindex", 12), (".txnindex", 34)])
    p = pick_file(case, suffix)
    n = p.stat().st_size
    at = case.rng.choice([x for x in range(n) if x % size] or [0])
    os.truncate(p, at)
    case.note(f"{p.relative_to(case.root)} cut from {n} to {at}")


def m_index_garbage(case):
    """Random bytes appended to, or replacing, an index; or a huge run of zero entries."""
    suffix = case.rng.choice([".index", ".timeindex", ".txnindex"])
    try:
        p = pick_file(case, suffix)
    except NotApplicable:
        p = pick_segment(case).with_suffix(suffix)
    r = case.rng
    how = r.choice(["append", "replace", "zeros"])
    old = p.read_bytes() if p.exists() else b""
    junk = bytes(r.randrange(256) for _ in range(r.randrange(1, 400)))
    p.write_bytes({"append": old + junk, "replace": junk, "zeros": old + bytes(1 << 20)}[how])
    case.note(f"{p.relative_to(case.root)} {how}")


def m_txnindex_entries(case):
    """Aborted-transaction entries with impossible fields, in txn or any topic."""
    r = case.rng
    if r.random() < 0.7:
        p = pick_file(case, ".txnindex", ["txn"])
    else:
        p = pick_segment(case).with_suffix(".txnindex")
    data = bytearray(p.read_bytes() if p.exists() else b"")
    entry = struct.pack(">hqqqq", r.choice([0, 1, -1]),
                        r.choice([extreme64(r), 0, -1]),  # producerId
                        r.choice([extreme64(r), 0, 5]),  # firstOffset
                        r.choice([extreme64(r), 0, 3]),  # lastOffset
                        r.choice([extreme64(r), 0]))
    if data and r.random() < 0.5:
        i = r.randrange(len(data) // 34)
        data[i * 34:(i + 1) * 34] = entry
    else:
        data += entry
    p.write_bytes(bytes(data))
    case.note(f"{p.relative_to(case.root)} entry {entry.hex()}")


# -- head, group, queue, transaction and compaction state ------------------------------------

HEAD_FIELDS = ["bootID", "activeBase", "endPosition", "nextOffset", "flushedPosition",
               "flushedNextOffset", "bytesSinceIndex", "indexBytes", "timeIndexBytes", "maxTimestamp",
               "offsetOfMaxTimestamp", "lastTimeIndexTimestamp", "createdMs"]


def pick_head(case):
    heads = [f for f in case.src.files("topics/*/*/head")]
    f = case.rng.choice(heads)
    case.topic = f.split("/")[1]
    return case.path(f)


def m_head_random(case):
    p = pick_head(case)
    r = case.rng
    data = bytearray(p.read_bytes())
    how = r.choice(["bytes", "truncate", "all-random", "extend"])
    if how == "bytes":
        for _ in range(r.randrange(1, 6)):
            data[r.randrange(len(data))] = r.randrange(256)
    elif how == "truncate":
        data = data[:r.randrange(len(data))]
    elif how == "all-random":
        data = bytearray(r.randrange(256) for _ in range(128))
    else:
        data += bytes(r.randrange(256) for _ in range(r.randrange(1, 100)))
    p.write_bytes(bytes(data))
    case.note(f"{p.relative_to(case.root)} {how}, crc left")


def m_head_fields(case):
    """One to three fields of a valid head set to extremes, with the CRC recomputed."""
    p = pick_head(case)
    r = case.rng
    data = bytearray(p.read_bytes())
    if len(data) < 128:
        raise NotApplicable("short head")
    fields = dict(zip(HEAD_FIELDS[1:], struct.unpack_from("<12q", data, 24)))
    changed = []
    for _ in range(r.randrange(1, 4)):
        name = r.choice(HEAD_FIELDS)
        if name == "bootID":
            data[8:24] = bytes(16) if r.random() < 0.5 else bytes(r.randrange(256) for _ in range(16))
            changed.append("bootID")
            continue
        v = r.choice([extreme64(r), fields[name] + r.choice([-1, 1, 7, 4096, -4096]),
                      fields["nextOffset"] + r.randrange(1, 100), 0])
        v = max(min(v, I64_MAX), I64_MIN)
        struct.pack_into("<q", data, 24 + 8 * (HEAD_FIELDS.index(name) - 1), v)
        changed.append(f"{name}={v}")
    struct.pack_into("<I", data, 120, crc32c(data[:120]))
    p.write_bytes(bytes(data))
    case.note(f"{p.relative_to(case.root)} {', '.join(changed)}, crc recomputed")


def m_group_offsets(case):
    """A group's committed-offset file of a topic (128 bytes per partition, two slots first)."""
    files = case.src.files("groups/*/committed/*")
    f = case.rng.choice(files)
    case.topic = f.split("/")[3]
    p = case.path(f)
    r = case.rng
    raw = p.read_bytes()
    base = 128 * r.randrange(max(1, (len(raw) + 127) // 128))
    data = bytearray(raw.ljust(base + 128, b"\0"))
    how = r.choice(["random", "truncate", "offset", "offset", "generation", "both-slots"])
    if how == "random":
        data = bytearray(r.randrange(256) for _ in range(r.choice([128, r.randrange(1, 400)])))
    elif how == "truncate":
        data = data[:base + r.randrange(64)]
    else:
        for slot in ([base, base + 32] if how == "both-slots" else [base + r.choice([0, 32])]):
            gen, off, ms = struct.unpack_from("<QqQ", data, slot)
            if how == "generation":
                gen = r.choice([2**64 - 1, 2**63, 0, gen + 1000])
            else:
                off = r.choice([I64_MAX, I64_MAX - 1, 2**40, off + 10**6, I64_MIN, 0])
                gen = max(gen, 1) + (how == "both-slots" and slot == base)
            struct.pack_into("<QqQ", data, slot, gen, off, ms)
            struct.pack_into("<I", data, slot + 24, crc32c(data[slot:slot + 24]))
    p.write_bytes(bytes(data))
    case.housekeeping = r.random() < 0.5
    case.note(f"{f} partition {base // 128} {how}")


def queue_crc(data):
    n = struct.unpack_from("<I", data, 32)[0]
    return crc32c(data[:36], crc32c(data[40:40 + 48 * n]))


def m_queue_state(case):
    files = case.src.files("groups/*/queue/*/*/[ab]")
    if not files:
        raise NotApplicable("no queue")
    f = case.rng.choice(files)
    case.topic = f.split("/")[3]
    p = case.path(f)
    r = case.rng
    data = bytearray(p.read_bytes())
    how = r.choice(["random", "truncate", "low-next", "count", "entries"])
    if how == "random" or len(data) < 40:
        data = bytearray(r.randrange(256) for _ in range(r.randrange(1, 300)))
    elif how == "truncate":
        data = data[:r.randrange(len(data))]
    else:
        gen = struct.unpack_from("<Q", data, 8)[0]
        struct.pack_into("<Q", data, 8, gen + 2)  # the current copy
        if how == "low-next":
            struct.pack_into("<qq", data, 16, extreme64(r), extreme64(r))
        elif how == "count":
            struct.pack_into("<I", data, 32, r.choice([0xFFFFFFFF, 2**31, 1000]))
        else:
            entry = struct.pack("<qqqii16s", extreme64(r), extreme64(r), extreme64(r),
                                extreme32(r), r.randrange(-2**31, 2**31), b"nobody")
            lo, nx = struct.unpack_from("<qq", data, 16)
            data = data[:40] + entry * r.randrange(1, 4) + data[40:]
            n = struct.unpack_from("<I", data, 32)[0]
            struct.pack_into("<I", data, 32, (len(data) - 40) // 48)
        if how != "count" or r.random() < 0.5:
            struct.pack_into("<I", data, 36, queue_crc(data) if len(data) >= 40 else 0)
    p.write_bytes(bytes(data))
    case.housekeeping = r.random() < 0.5
    case.note(f"{f} {how}")


def m_open_transactions(case):
    """A partition's list of open transactions: garbage, or valid with impossible entries."""
    t = case.pick_topic()
    part = case.rng.choice(sorted({p for p, _ in case.src.segments[t]} or {"0"}))
    p = case.path("topics", t, part, "transactions")
    r = case.rng
    how = r.choice(["garbage", "entries", "entries", "orphan-record", "count"])
    if how == "garbage":
        p.write_bytes(b"MQTXNS01" + bytes(r.randrange(256) for _ in range(r.randrange(0, 60))))
    else:
        n = r.randrange(1, 4)
        pid = r.randrange(1, 2**63)
        entries = [(pid if i == 0 else r.choice([extreme64(r), r.randrange(2**63)]),
                    r.choice([0, -1, 32767]), r.choice([extreme64(r), 0, 3, 10**6]))
                   for i in range(n)]
        body = b"MQTXNS01" + struct.pack(">i", n if how != "count" else r.choice([I32_MAX, -1, n + 5]))
        body += b"".join(struct.pack(">qhq", *e) for e in entries)
        p.write_bytes(body + struct.pack(">I", crc32c(body)))
        if how == "orphan-record":
            tx = case.path("transactions")
            tx.mkdir(exist_ok=True)
            name = f"{pid:016x}"
            (tx / f"{name}.lock").write_bytes(b"")
            rec = r.choice([b"garbage\n", f"mq-transaction 1\nproducer {name}\nepoch 0\nstarted 0\n"
                            f"timeout {I64_MAX}\npartition {part} {t}\ncrc 12345\n".encode()])
            (tx / name).write_bytes(rec)
            if r.random() < 0.5:
                (tx / f"{name}.decision").write_bytes(r.choice([b"commit\n", b"maybe\n", b""]))
    case.note(f"topics/{t}/{part}/transactions {how}")


def m_cleaner_offset(case):
    t = case.pick_topic([t for t in case.src.topics if t.startswith("z-")])
    part = case.rng.choice(sorted({p for p, _ in case.src.segments[t]}))
    p = case.path("topics", t, part, "cleaner-offset")
    r = case.rng
    v = extreme64(r)
    data = struct.pack("<q", v)
    data += struct.pack("<I", crc32c(data) if r.random() < 0.8 else 7) + bytes(4)
    if r.random() < 0.2:
        data = data[:r.randrange(16)]
    p.write_bytes(data)
    case.note(f"topics/{t}/{part}/cleaner-offset = {v}")


MUTATIONS = {
    "header": [m_base_offset_near_max, m_base_offset_negative, m_base_offset_random, m_batch_length,
               m_leader_epoch, m_magic, m_attributes_codec, m_attributes_bits, m_last_offset_delta,
               m_records_count, m_timestamps, m_producer_fields, m_crc_stale],
    "records": [m_record_length, m_record_offset_delta, m_record_offset_order, m_record_timestamp_delta,
                m_record_key_length, m_record_value_length, m_record_header_count,
                m_record_header_name, m_record_header_value, m_record_attributes,
                m_record_varint_overlong, m_record_section, m_control_record],
    "compressed": [m_payload_flip, m_payload_truncate, m_payload_zero, m_payload_garbage,
                   m_payload_trailing, m_payload_other_codec, m_payload_framing, m_payload_bomb],
    "files": [m_log_truncate, m_log_zero_range, m_log_append, m_log_batch_order, m_segment_set,
              m_properties],
    "indexes": [m_index_entries, m_index_truncate, m_index_garbage, m_txnindex_entries],
    "state": [m_head_random, m_head_fields, m_group_offsets, m_queue_state, m_open_transactions,
              m_cleaner_offset],
}


# Kinds chosen less often than the others of their category (slow to run).
WEIGHTS = {m_payload_bomb: 0.3, m_payload_framing: 2.0}


def kind_name(fn):
    return fn.__name__[2:].replace("_", "-")


def make_case(seed, case_id, source: Source, root: Path) -> Case:
    """Copy the source to root and damage it as case_id says (category/index)."""
    category = case_id.split("/")[0]
    for attempt in range(20):
        if root.exists():
            shutil.rmtree(root)
        # cp -a is several times faster here than shutil.copytree.
        subprocess.run(["cp", "-a", "--", str(source.root), str(root)], check=True)
        case = Case(seed, f"{case_id}" if attempt == 0 else f"{case_id}#{attempt}", source, root)
        fns = MUTATIONS[category]
        fn = case.rng.choices(fns, [WEIGHTS.get(f, 1.0) for f in fns])[0]
        case.kind = kind_name(fn)
        try:
            fn(case)
            case.id = case_id
            return case
        except NotApplicable:
            continue
    raise AssertionError(f"case {case_id}: no applicable mutation after 20 tries")


# ---------------------------------------------------------------------------------------------
# Running the tools


class Run:
    __slots__ = ("tool", "argv", "status", "stdout", "stderr", "timed_out", "secs")


def run_tool(bin_dir, name, argv, root, input=None, devnull=False, backtrace=False) -> Run:
    env = dict(os.environ, LC_ALL="C.UTF-8", MQ_DIR=str(root))
    # Unsymbolicated backtraces cost nothing and tell crash sites apart (crash_site); one
    # example of each site is run again with symbols for the report (crash_frames).
    env["SWIFT_BACKTRACE"] = ("enable=yes,interactive=no,color=no,threads=crashed,registers=none,"
                              "sanitize=no," + ("images=none,symbolicate=full" if backtrace else
                                                "images=mentioned,symbolicate=off,limit=8"))
    full = [str(bin_dir / argv[0])] + argv[1:]
    r = Run()
    r.tool, r.argv, r.timed_out = name, full, False
    t0 = time.monotonic()
    p = subprocess.Popen(full, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL if devnull else subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, start_new_session=True, cwd=root)
    try:
        out, err = p.communicate(input, timeout=TIMEOUT * (6 if backtrace else 1))
    except subprocess.TimeoutExpired:
        r.timed_out = True
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
    r.secs = time.monotonic() - t0
    r.status = p.returncode
    r.stdout = out or b""
    r.stderr = (err or b"").decode("utf-8", "replace")
    return r


def tool_plan(case: Case):
    """(name, argv, input, devnull) for every tool run of a case, in order: readers first, then
    the writers (mq-produce, mq-compact), then a reader again."""
    t, d, r = case.topic, str(case.root), case.rng
    pos = r.choice(["beginning", str(r.randrange(0, 60)), "end", f"@{TS0 + r.randrange(0, 90_000)}",
                    "-1h"])
    plan = [
        ("tail", ["mq-tail", "--dir", d, "-n", "+0", t], None, False),
        ("tail-json", ["mq-tail", "--dir", d, "-n", "+0", "--json", t], None, False),
        ("tail-from", ["mq-tail", "--dir", d, "--from", pos, t], None, False),
        ("tail-last", ["mq-tail", "--dir", d, "-n", "3", t], None, False),
        ("consume", ["mq-consume", "--dir", d, "-g", "G", "-e", t], None, True),
        ("replay", ["mq-replay", "--dir", d, t, "--from", "beginning", "--to", "end"], None, False),
        ("stat", ["mq-stat", "--dir", d, t], None, False),
        ("stat-json", ["mq-stat", "--dir", d, "--json", t], None, False),
        ("compact-check", ["mq-compact", "--dir", d, "--check", t], None, False),
    ]
    if t in ("jobs", "jobs.dlq"):
        plan.append(("dlq-list", ["mq-dlq", "list", "--dir", d], None, False))
        plan.append(("dlq-show", ["mq-dlq", "show", "--dir", d, "--all", "jobs.dlq"], None, False))
    if t == "jobs":
        plan.append(("consume-queue", ["mq-consume", "--dir", d, "--queue", "-g", "W", "-e", "jobs",
                                       "--", "true"], None, False))
    if t == "txn":
        plan.append(("produce-atomic", ["mq-produce", "--dir", d, "--atomic", t], b"after\n", False))
    else:
        plan.append(("produce", ["mq-produce", "--dir", d, t], b"after the damage\n", False))
    if case.housekeeping:
        plan.append(("compact-all", ["mq-compact", "--dir", d, "-a", "--force"], None, False))
    else:
        plan.append(("compact", ["mq-compact", "--dir", d, "--force", t], None, False))
    plan += [
        ("compact-repair", ["mq-compact", "--dir", d, "--repair", t], None, False),
        ("tail-after", ["mq-tail", "--dir", d, "-n", "+0", "--json", t], None, False),
    ]
    return plan


TRAP_MARKERS = ("Fatal error", "Illegal instruction", "precondition", "Swift runtime failure",
                "Segmentation fault", "Crash at", "💣")
WHERE_RE = re.compile(r"topics/[^/\s'\"]+/\d+|\d{20}\.(log|index|timeindex|txnindex)|/groups/|"
                      r"/transactions/|topic\.properties|/copies/")
SIGNALS = {s.value: s.name for s in signal.Signals}


def classify(run: Run):
    """None if acceptable; else (kind, outcome). kind is 'crash', 'exit-70', 'exit-N', 'timeout'
    or 'unnamed-65'."""
    st = run.status
    if run.timed_out:
        return "timeout", f"no exit within {TIMEOUT:g} s"
    if st < 0 or st > 128 and st - 128 in SIGNALS:
        sig = -st if st < 0 else st - 128
        return "crash", f"killed by {SIGNALS.get(sig, sig)}"
    if any(m in run.stderr for m in TRAP_MARKERS):
        return "crash", f"runtime error, exit {st}"
    if st == 70:
        return "exit-70", "internal error (70)"
    if st != 0 and not 64 <= st <= 78:
        return f"exit-{st}", f"exit {st}"
    if st == 65:
        text = run.stderr + (run.stdout.decode("utf-8", "replace")
                             if run.tool.startswith("compact-") else "")
        if not WHERE_RE.search(text):
            return "unnamed-65", "exit 65 without naming the file or partition"
    return None


def first_line(text):
    """The message of a run: its first line, or for a crash the runtime's own words."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    for l in lines:
        if l.startswith("Fatal error") or "runtime failure" in l.lower() or "precondition" in l:
            return l.strip(" *")[:300]
    for l in lines:
        if l.startswith("*** Program crashed"):
            return re.sub(r" at 0x[0-9a-f]+", "", l.strip(" *"))[:300]
    return lines[0][:300] if lines else ""


CRASH_FRAME_RE = re.compile(r"^\s*(\d+)\s+(?:\[[a-z]+\]\s+)*0x([0-9a-f]+)\s*$")
IMAGE_RE = re.compile(r"^0x([0-9a-f]+)[\u2013-]0x[0-9a-f]+ \S+ (mq-[a-z]+) ")


def crash_site(text):
    """From an unsymbolicated backtrace: 'mq-tool+0xOFFSET' of the crashing instruction."""
    frames = [m.group(2) for m in map(CRASH_FRAME_RE.match, text.splitlines()) if m]
    image = next((m for m in map(IMAGE_RE.match, text.splitlines()) if m), None)
    if not frames or not image:
        return ""
    return f"{image.group(2)}+{int(frames[0], 16) - int(image.group(1), 16):#x}"


def shape(text):
    """A stderr line without its paths and numbers: what makes two failures the same."""
    text = re.sub(r"'[^']*'|/[^\s:,)]+", "<path>", text)
    return re.sub(r"-?\d+", "N", text)[:160]


class Failure:
    __slots__ = ("category", "kind", "tool", "fail", "outcome", "case", "seed", "notes", "stderr",
                 "argv", "frames", "site")


def run_case(bin_dir, source, seed, case_id, work: Path, keep: Path = None):
    root = work / case_id.replace("/", "-")
    case = make_case(seed, case_id, source, root)
    kept = None
    if keep is not None:
        kept = keep / f"seed{seed}-{case_id.replace('/', '-')}"
    failures = []
    for name, argv, input, devnull in tool_plan(case):
        run = run_tool(bin_dir, name, argv, root, input, devnull)
        c = classify(run)
        if c:
            f = Failure()
            f.category, f.kind, f.tool = case_id.split("/")[0], case.kind, name
            f.fail, f.outcome = c
            f.case, f.seed, f.notes = case_id, seed, "; ".join(case.notes)
            f.stderr = first_line(run.stderr) or "(empty stderr)"
            f.argv, f.frames = " ".join(argv).replace(str(root), "DIR"), ""
            f.site = crash_site(run.stderr) if f.fail == "crash" else ""
            failures.append(f)
    shutil.rmtree(root, ignore_errors=True)
    if failures and kept is not None and not kept.exists():
        make_case(seed, case_id, source, kept)
    return case, failures


# ---------------------------------------------------------------------------------------------
# Backtraces for the report: re-run one example of each crash with Swift's backtracer


FRAME_RE = re.compile(r"^\s*\d+\s+((?:\[[a-z]+\]\s+)*)0x[0-9a-f]+ (.+?)(?: \+ \d+)? in \S+ at (\S+)$")


def crash_frames(bin_dir, source, f: Failure, work: Path) -> str:
    """Where the tool crashed: the runtime's message and the first frames of mq's code."""
    root = work / ("bt-" + f.case.replace("/", "-"))
    case = make_case(f.seed, f.case, source, root)
    try:
        for name, argv, input, devnull in tool_plan(case):
            bt = name == f.tool
            run = run_tool(bin_dir, name, argv, root, input, devnull, backtrace=bt)
            if not bt:
                continue
            lines = run.stderr.splitlines()
            banners = [l.strip(" *") for l in lines if l.startswith("*** ") and "Backtracing" not in l]
            what = next((l for l in banners if "runtime failure" in l.lower()), "")
            what = what or next((l.strip() for l in lines if "Fatal error" in l), "")
            frames = []
            for line in lines:
                m = FRAME_RE.match(line)
                if not m:
                    continue
                if m.group(2).startswith("Swift runtime failure"):
                    what = what or m.group(2)
                    continue
                if "[system]" in m.group(1) or "compiler-generated" in m.group(3):
                    continue
                fn = re.sub(r"\(.*", "", m.group(2))
                frames.append(f"{fn} ({Path(m.group(3)).name})")
                if len(frames) == 3:
                    break
            return "; ".join(x for x in [what] + frames if x) or first_line(run.stderr)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return ""


# ---------------------------------------------------------------------------------------------
# The report


def signature(f: Failure):
    """What makes two failures the same bug. A crash: its site (from the backtrace), else the
    kind and the stderr's shape. An exit 65 that does not say where: the error's source (the
    first words of the message, such as "corrupt data: malformed records" or "zstd"), whatever
    the mutation."""
    if f.fail == "unnamed-65":
        parts = re.sub(r"^mq-[a-z]+: ", "", f.stderr).split(":")
        return (f.fail, shape(parts[0] if len(parts[0].split()) == 1 else ":".join(parts[:2])))
    if f.frames:
        return (f.fail, "; ".join(f.frames.split("; ")[:2]))
    return (f.fail, f.kind, shape(f.stderr))


def report(failures, seed, cases_run) -> str:
    """A table (kind x failure x outcome, with the tools and their run counts), then one
    reproducible example per distinct failure: same kind, failure and crash site (or, without a
    backtrace, the same stderr once paths and numbers are blanked)."""
    if not failures:
        return f"seed {seed}: {cases_run} cases, no failures"
    rows = collections.defaultdict(collections.Counter)
    for f in failures:
        rows[(f.kind, f.fail, f.outcome)][f.tool] += 1
    lines = [f"seed {seed}: {len(failures)} failing tool runs in {cases_run} cases", "",
             f"{'mutation kind':26} {'failure':10} {'outcome':34} tools (failing runs)", "-" * 110]
    for (kind, fail, outcome), tools in sorted(rows.items()):
        lines.append(f"{kind:26} {fail:10} {outcome:34} "
                     + " ".join(f"{t}x{n}" for t, n in sorted(tools.items())))
    lines += ["", "One example per distinct failure:"]
    distinct = {}
    for f in failures:
        entry = distinct.setdefault(signature(f), [f, set(), set(), set()])
        entry[1].add(f.tool)
        entry[2].add(f.kind)
        entry[3].add(" < ".join(f.frames.split("; ")[2:]))
    for _, (f, tools, kinds, callers) in sorted(distinct.items(), key=lambda kv: kv[0]):
        lines.append(f"- {', '.join(sorted(kinds))} / {f.outcome} / {', '.join(sorted(tools))}: "
                     f"MQ_MUTATION_SEED={f.seed} MQ_MUTATION_ONLY={f.case}")
        lines.append(f"    mutation: {f.notes}")
        lines.append(f"    $ {f.argv}")
        lines.append(f"    stderr: {f.stderr}")
        if f.frames:
            lines.append(f"    crash: {'; '.join(f.frames.split('; ')[:2])}")
            lines.append(f"    called from: {' | '.join(sorted(c for c in callers if c))}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The tests


def _seed():
    s = os.environ.get("MQ_MUTATION_SEED", "1")
    if s == "random":
        s = str(random.SystemRandom().randrange(1, 2**31))
    return int(s)


SEED = _seed()
TOTAL = int(os.environ.get("MQ_MUTATION_CASES", "300"))
ONLY = [c for c in os.environ.get("MQ_MUTATION_ONLY", "").split(",") if c]


def case_ids(category):
    if ONLY:
        return [c for c in ONLY if c.split("/")[0] == category]
    n = max(1, round(TOTAL * CATEGORIES[category]))
    return [f"{category}/{i}" for i in range(n)]


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory):
    """Where the source and the case copies live: /dev/shm when there is one (a tmpfs makes the
    copies and the tools' fsyncs several times faster), else pytest's tmp dir."""
    base = os.environ.get("MQ_MUTATION_TMP") or ("/dev/shm" if os.access("/dev/shm", os.W_OK) else "")
    if not base:
        yield tmp_path_factory.mktemp("mutation")
        return
    d = Path(tempfile.mkdtemp(prefix="mq-mutation-", dir=base))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def source(mq_bin, work_dir):
    root = work_dir / "source" / "log"
    build_sources(mq_bin, root)
    return Source(root)


class Results:
    """The cases of each category, run once (by whichever test asks first)."""

    def __init__(self, bin_dir, source, work):
        self.bin, self.source, self.work = bin_dir, source, work
        self.done = {}

    def get(self, category):
        if category not in self.done:
            self.done[category] = self._run(category)
        return self.done[category]

    def _run(self, category):
        ids = case_ids(category)
        if not ids:
            pytest.skip("no case of this category in MQ_MUTATION_ONLY")
        keep = Path(os.environ["MQ_MUTATION_KEEP"]) if os.environ.get("MQ_MUTATION_KEEP") else None
        if keep:
            keep.mkdir(parents=True, exist_ok=True)
        jobs = int(os.environ.get("MQ_MUTATION_JOBS", "0")) or os.cpu_count() or 2
        work = self.work / category
        work.mkdir()
        failures, kinds = [], collections.Counter()
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            for case, fails in pool.map(
                    lambda c: run_case(self.bin, self.source, SEED, c, work, keep), ids):
                kinds[case.kind] += 1
                failures += fails
        # A symbolicated backtrace of one example of each crash site, for the report.
        frames = {}
        for f in failures:
            if f.site and f.site not in frames and len(frames) < 40:
                frames[f.site] = crash_frames(self.bin, self.source, f, work)
            f.frames = frames.get(f.site, f.site)
        header = (f"mutation test: seed {SEED}, {len(ids)} {category} cases in "
                  f"{time.monotonic() - t0:.0f} s (MQ_MUTATION_SEED={SEED} MQ_MUTATION_CASES={TOTAL})"
                  f"\nkinds: {dict(sorted(kinds.items()))}")
        if os.environ.get("MQ_MUTATION_REPORT"):
            with open(os.environ["MQ_MUTATION_REPORT"], "a") as out:
                out.write(f"== {category}\n{header}\n{report(failures, SEED, len(ids))}\n\n")
        return header, len(ids), failures


@pytest.fixture(scope="module")
def results(mq_bin, source, work_dir):
    return Results(mq_bin, source, work_dir)


@pytest.mark.parametrize("category", list(CATEGORIES))
def test_damage_never_crashes(category, results):
    """No tool dies by a signal or a runtime trap, exits 70 or another odd status, or hangs."""
    header, n, failures = results.get(category)
    print(header)
    bad = [f for f in failures if f.fail != "unnamed-65"]
    assert not bad, f"{category}: {len(bad)} tool runs crashed, hung or exited badly\n" \
        f"{header}\n{report(bad, SEED, n)}"


@pytest.mark.parametrize("category", list(CATEGORIES))
def test_corrupt_data_errors_say_where(category, results):
    """A tool that exits 65 on damaged data names the partition directory or the file."""
    header, n, failures = results.get(category)
    bad = [f for f in failures if f.fail == "unnamed-65"]
    assert not bad, f"{category}: {len(bad)} exits 65 that do not name the file or partition\n" \
        f"{header}\n{report(bad, SEED, n)}"
