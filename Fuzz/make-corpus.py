#!/usr/bin/env python3
"""Writes the fuzz target's seed corpus (docs/TESTING.md).

    Fuzz/make-corpus.py BIN_DIR OUT_DIR [FIXTURE_DIR ...]

Runs the release tools in BIN_DIR (mq-produce, mq-topic, mq-consume,
mq-replay, mq-compact) on a scratch log directory: topics of every codec,
keys, null keys and values, headers, several segments with index entries,
a transaction, a compacted topic, consumer-group offsets, a work queue, a
dedup store and a copy journal. Then cuts what they wrote into seeds for
the targets of Fuzz/Sources/mq-fuzz/Entry.swift, and adds every Kafka
segment (*.log) and codec sample (compression/*.bin) found under the
FIXTURE_DIRs. Each seed is the target's byte, the flags byte, the payload.

OUT_DIR is emptied first. Prints the number of seeds per target.
"""
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

# Target numbers: the `Target` enum of Fuzz/Sources/mq-fuzz/Entry.swift.
BATCHES, REWRITE, GZIP, SNAPPY, LZ4, ZSTD, NONE, HEAD, OFFSETS, QUEUE, SWAP, COPY, PARTITION, DEDUP = range(14)
CODEC_TARGET = {1: GZIP, 2: SNAPPY, 3: LZ4, 4: ZSTD}
FIX = 1          # flags bit 0: the harness recomputes checksums
MAX_SEED = 16000  # the -max_len that `make fuzz` passes is 16384
HEADER = 61       # record batch v2 header size


def run(args, env, stdin=b""):
    subprocess.run(args, env=env, input=stdin, check=True, stdout=subprocess.DEVNULL, timeout=120)


def envelopes(n, seed, always_id=False):
    """JSON envelopes with keys (some null), values of many sizes (some null or empty), headers."""
    lines = []
    for i in range(n):
        e = {"value": ("v%d-%d " % (seed, i)) * (i % 17) if i % 11 else None}
        if i % 5:
            e["key"] = "key-%d" % (i % 7)
        if i % 3 == 0:
            e["headers"] = {"trace": "t%d" % i, "id": "id-%d-%d" % (seed, i)}
        elif i % 3 == 1:
            e["headers"] = {"id": "id-%d-%d" % (seed, i)}
        elif always_id:
            e["headers"] = {"id": "id-%d-%d" % (seed, i // 2)}
        if i % 4 == 0:
            e["timestamp"] = 1_700_000_000_000 + i * 1000
        lines.append(json.dumps(e))
    return ("\n".join(lines) + "\n").encode()


def make_log(bin_dir, root):
    env = dict(os.environ, MQ_DIR=root)
    b = lambda tool: os.path.join(bin_dir, tool)
    small = ["--config", "segment.bytes=6000", "--config", "index.interval.bytes=300"]
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
        run([b("mq-topic"), "create", "c-" + codec] + small, env)
        for k, size in enumerate([1, 4, 25]):
            run([b("mq-produce"), "-J", "-z", codec, "--batch-messages", str(size), "c-" + codec], env, envelopes(60, k))
    # Transactions (transactional batches, control batches).
    run([b("mq-produce"), "--atomic", "-z", "lz4", "txn"], env, b"one\ntwo\nthree\n")
    run([b("mq-produce"), "--atomic", "txn"], env, b"four\nfive\n")
    # A compacted topic: rewritten batches, a merged segment.
    run([b("mq-topic"), "create", "compacted", "--config", "cleanup.policy=compact", "--config", "segment.bytes=2000",
         "--config", "min.cleanable.dirty.ratio=0.01"], env)
    for codec in ["none", "zstd", "gzip"]:
        run([b("mq-produce"), "-J", "-z", codec, "--batch-messages", "6", "compacted"], env, envelopes(50, 7))
    run([b("mq-compact"), "--force", "compacted"], env)
    # Group offsets, a work queue, a dedup store (producer's and group's), a copy journal.
    run([b("mq-consume"), "-g", "group", "-c", "17", "c-zstd"], env)
    run([b("mq-consume"), "-g", "queue", "--queue", "-c", "5", "c-none", "--", "true"], env)
    run([b("mq-produce"), "-J", "--id-header", "id", "dedup"], env, envelopes(40, 9, always_id=True))
    run([b("mq-consume"), "-g", "dd", "--dedup", "--id-header", "id", "-c", "9", "dedup"], env)
    run([b("mq-replay"), "c-snappy", "--into", "copy"], env)


class Corpus:
    def __init__(self, out):
        self.out = out
        self.counts = {}

    def add(self, target, payload, flags=FIX):
        data = bytes([target, flags]) + payload
        if len(data) > MAX_SEED:
            return
        name = hashlib.sha1(data).hexdigest()
        path = os.path.join(self.out, name)
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)
            self.counts[target] = self.counts.get(target, 0) + 1


def batches(data):
    """(start, bytes) of each batch or message set entry: the length field sits at byte 8 in every magic."""
    at = 0
    while at + 12 <= len(data):
        length = struct.unpack(">i", data[at + 8:at + 12])[0]
        if length < 0 or at + 12 + length > len(data):
            return
        yield at, data[at:at + 12 + length]
        at += 12 + length


def prefix_at_batch(data, limit):
    """The longest run of whole batches from the start that fits in `limit` bytes."""
    end = 0
    for start, b in batches(data):
        if start + len(b) > limit:
            break
        end = start + len(b)
    return data[:end] if end else data[:limit]


def add_log(corpus, data):
    for _, b in batches(data):
        corpus.add(BATCHES, b)
        corpus.add(REWRITE, b, FIX | (0x55 << 1))
        corpus.add(REWRITE, b, FIX | (0x2A << 1))
        magic = b[16] if len(b) > 16 else 0
        if magic == 2 and len(b) >= HEADER:
            codec = struct.unpack(">h", b[21:23])[0] & 7
            if codec in CODEC_TARGET:
                corpus.add(CODEC_TARGET[codec], b[HEADER:])
            elif codec == 0:
                corpus.add(NONE, b[HEADER:])
    corpus.add(BATCHES, prefix_at_batch(data, 8192))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def part(b):
    b = b[:0xFFFF]
    return struct.pack("<H", len(b)) + b


def add_partition(corpus, directory, files, with_head):
    """One seed per segment: options, head, .index, .timeindex, then the .log (cut at a batch boundary)."""
    logs = sorted(f for f in files if f.endswith(".log"))
    head = read(os.path.join(directory, "head")) if with_head and "head" in files else b""
    for i, log in enumerate(logs):
        stem = log[:-4]
        index = read(os.path.join(directory, stem + ".index")) if stem + ".index" in files else b""
        time_index = read(os.path.join(directory, stem + ".timeindex")) if stem + ".timeindex" in files else b""
        active = i == len(logs) - 1
        options = (1 if head else 0) | 2 | (8 if active else 0)
        payload = bytes([options]) + part(head if active else b"") + part(index) + part(time_index)
        corpus.add(PARTITION, payload + prefix_at_batch(read(os.path.join(directory, log)), 8192))


def swap_journal(new_base, old_bases):
    """compact.swap as SwapJournal.encode writes it, checksum left for the harness to fill in."""
    return b"MQSWAP01" + struct.pack("<qI", new_base, len(old_bases)) + b"".join(struct.pack("<q", o) for o in old_bases) + b"\0" * 4


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    bin_dir, out = sys.argv[1], sys.argv[2]
    fixture_dirs = sys.argv[3:]
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    corpus = Corpus(out)
    with tempfile.TemporaryDirectory(prefix="mq-corpus.") as root:
        make_log(bin_dir, root)
        for directory, _, files in os.walk(root):
            files = set(files)
            for f in sorted(files):
                path = os.path.join(directory, f)
                if f.endswith(".log"):
                    add_log(corpus, read(path))
                elif f == "head":
                    corpus.add(HEAD, read(path))
                elif "/offsets/" in path:
                    corpus.add(OFFSETS, read(path))
                elif "/queue/" in path and f in ("a", "b"):
                    corpus.add(QUEUE, read(path))
                elif "/copies/" in path and f == "state":
                    corpus.add(COPY, read(path))
                elif f == "ids":
                    corpus.add(DEDUP, read(path))
            if any(f.endswith(".log") for f in files):
                add_partition(corpus, directory, files, with_head=True)
    for n in (1, 2, 5):
        corpus.add(SWAP, swap_journal(100 * n, [10 * i for i in range(n)]))
    for fixtures in fixture_dirs:
        for directory, _, files in os.walk(fixtures):
            files = set(files)
            for f in sorted(files):
                path = os.path.join(directory, f)
                if f.endswith(".log"):
                    add_log(corpus, read(path))
                elif f.endswith(".bin") and os.path.basename(directory) == "compression":
                    target = {"gzip": GZIP, "snappy": SNAPPY, "lz4": LZ4, "zstd": ZSTD}.get(f.split("-")[0].split(".")[0], NONE)
                    corpus.add(target, read(path))
            if any(f.endswith(".log") for f in files):
                add_partition(corpus, directory, files, with_head=False)
    names = ["batches", "rewrite", "gzip", "snappy", "lz4", "zstd", "uncompressed", "head", "committedOffsets",
             "queueState", "swapJournal", "copyState", "partition", "dedupStore"]
    print("corpus %s: %s" % (out, ", ".join("%s %d" % (names[t], corpus.counts.get(t, 0)) for t in range(len(names)))))
    missing = [names[t] for t in range(len(names)) if not corpus.counts.get(t)]
    if missing:
        sys.exit("make-corpus: no seeds for " + ", ".join(missing))


if __name__ == "__main__":
    main()
