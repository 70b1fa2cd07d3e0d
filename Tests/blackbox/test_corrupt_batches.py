"""A batch whose records or compressed payload are damaged, with its CRC recomputed (what a
buggy foreign writer or a checksum-less copy leaves): every tool reports corrupt data with exit
65, naming the segment file, the byte and the batch's offsets; mq-compact leaves the segment as
it was, --check lists it and --repair says it cannot fix it (issue 11 §1)."""

import hashlib
import struct

import crc32c
import pytest

from mqtest import EX_DATAERR

SEG = "00000000000000000000.log"


def batch_starts(data: bytes):
    pos, starts = 0, []
    while pos + 12 <= len(data):
        starts.append(pos)
        pos += 12 + struct.unpack_from(">i", data, pos + 8)[0]
    return starts


def damage_middle_batch(path, flip_from=4, flip_to=24):
    """Flips bytes early in the records section of the middle batch and recomputes its CRC.
    Returns (byte position, base offset, last offset) of that batch."""
    data = bytearray(path.read_bytes())
    starts = batch_starts(bytes(data))
    assert len(starts) >= 3, "the test needs several batches"
    b = starts[len(starts) // 2]
    length = 12 + struct.unpack_from(">i", data, b + 8)[0]
    for i in range(b + 61 + flip_from, min(b + length, b + 61 + flip_to)):
        data[i] ^= 0x5A
    struct.pack_into(">I", data, b + 17, crc32c.crc32c(bytes(data[b + 21:b + length])))
    path.write_bytes(bytes(data))
    base = struct.unpack_from(">q", data, b)[0]
    return b, base, base + struct.unpack_from(">i", data, b + 23)[0]


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_damaged_batch_is_a_located_data_error_everywhere(mq, codec):
    def run_data(run):
        return b"".join(b"k%d:value %d %d padding padding padding\n" % (i % 7, run, i) for i in range(50))
    # Segments of about four batches, so that the damaged batch is in one that
    # compaction works on (never the active one).
    mq.produce("probe", run_data(0), "-z", codec, "-K", ":")
    size = (mq.partition_dir("probe", 0) / SEG).stat().st_size
    mq.create("t", 1, "cleanup.policy=compact", f"segment.bytes={4 * size}")
    for run in range(20):  # one producer run per batch
        mq.produce("t", run_data(run), "-z", codec, "-K", ":")
    seg = mq.partition_dir("t", 0) / SEG
    at, first, last = damage_middle_batch(seg)
    where = [str(seg), f"byte {at}"]

    for argv in (["mq-tail", "-n", "+0", "t"], ["mq-tail", "-n", "+0", "--json", "t"],
                 ["mq-consume", "-g", "g", "-e", "t"], ["mq-replay", "t", "--from", "beginning", "--to", "end"]):
        res = mq.run(*argv)
        assert res.status == EX_DATAERR, f"{argv}: exit {res.status} {res.stderr}"
        for w in where + [f"offsets {first}-{last}"]:
            assert w in res.stderr, f"{argv}: {w!r} not in {res.stderr!r}"

    before = hashlib.sha256(seg.read_bytes()).hexdigest()
    res = mq.run("mq-compact", "--force", "t")
    assert res.status == EX_DATAERR and all(w in res.stderr for w in where), res.stderr
    assert "left as it was" in res.stderr
    res = mq.run("mq-compact", "--check", "t")
    assert res.status == EX_DATAERR and all(w in res.out for w in where), res.out
    res = mq.run("mq-compact", "--repair", "t")
    assert res.status == EX_DATAERR and "cannot fix without losing data" in res.stderr, res.stderr
    assert hashlib.sha256(seg.read_bytes()).hexdigest() == before, "the damaged segment was changed"
    # mq-stat reads only batch headers and first records: it still reports the partition.
    assert mq.run("mq-stat", "t").status == 0
    assert not list(mq.partition_dir("t", 0).glob("*.cleaned")), "compaction left its temporaries"
