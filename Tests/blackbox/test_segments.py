"""Segment rolling (segment.bytes) and reading across segment boundaries."""

import re

import pytest

SEGMENT_FILE = re.compile(r"^\d{20}\.(log|index|timeindex)$")


@pytest.fixture
def rolled(mq):
    mq.create("roll", 1, "segment.bytes=10000")
    lines = [b"line %05d " % i + b"." * (i % 40) for i in range(2000)]
    # Several runs with small batches, so segments roll both inside a run and between runs.
    for start in range(0, 2000, 500):
        mq.produce("roll", b"\n".join(lines[start:start + 500]) + b"\n", "--batch-messages", "10")
    return lines


def test_segments_roll(mq, rolled):
    [part] = mq.validate("roll")
    segs = part.segments
    assert len(segs) >= 5, [s.path.name for s in segs]
    for f in mq.partition_dir("roll", 0).iterdir():
        if f.suffix in (".log", ".index", ".timeindex"):
            assert SEGMENT_FILE.match(f.name), f"badly named segment file {f.name}"
    next_offset = 0
    for s in segs:
        if s.batches:
            # Without compaction a segment is named after its first offset.
            assert s.base_offset == s.batches[0].base_offset == next_offset, s.path.name
            next_offset = s.last_offset + 1
        assert s.size <= 10000 or len(s.batches) == 1, f"{s.path.name} is {s.size} bytes"
    assert [r.value for r in part.records] == rolled
    assert [r.offset for r in part.records] == list(range(2000))
    res = mq.validate_cli(mq.topic_dir("roll"))
    assert res.status == 0, res.stderr


def test_tail_across_segment_boundaries(mq, rolled):
    [part] = mq.validate("roll")
    boundaries = [s.base_offset for s in part.segments[1:] if s.batches]
    assert boundaries
    for b in boundaries[:4] + boundaries[-1:]:
        for start in (b - 1, b, b + 1):
            res = mq.tail("roll", "-n", f"+{start + 1}", "-c", "3")  # the (start+1)th message: offset start
            assert res.stdout.split(b"\n")[:-1] == rolled[start:start + 3], start
            envs = mq.tail_json("roll", "--from", str(start), "-c", "2")
            assert [e["offset"] for e in envs] == [start, start + 1]
    assert mq.tail("roll", "-n", "+0").stdout == b"\n".join(rolled) + b"\n"
    assert mq.tail("roll", "-n", "15").stdout == b"\n".join(rolled[-15:]) + b"\n"


def test_tail_last_n_spanning_segments(mq, rolled):
    [part] = mq.validate("roll")
    last = part.segments[-1] if part.segments[-1].batches else part.segments[-2]
    n = (2000 - last.base_offset) + 5  # reaches back into the previous segment
    assert mq.tail("roll", "-n", str(n)).stdout == b"\n".join(rolled[-n:]) + b"\n"
