"""docs/FORMAT.md's partitioning section, as the document states it.

The test vectors are read from the table in FORMAT.md, so the document is what
is tested: kafka-python's murmur2 must give every column of each row, and
`mq-produce -K` must put each key in the partition the row gives, for 3 and
for 12 partitions. The keyless rules the section states are checked too.
"""

import re
from typing import NamedTuple

import pytest

from mqtest import REPO, murmur2_partition

FORMAT = REPO / "docs" / "FORMAT.md"


class Vector(NamedTuple):
    shown: str
    key: bytes
    murmur2: int
    masked: int
    of_3: int
    of_12: int


def partitioning_section():
    match = re.search(r"^## \d+\. Partitioning\n(.*?)(?=^## |\Z)", FORMAT.read_text(), re.M | re.S)
    assert match, "docs/FORMAT.md has no '## N. Partitioning' section"
    return match.group(1)


def vectors():
    """The rows of the section's test-vector table."""
    rows = []
    for line in partitioning_section().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 6 or not re.fullmatch(r"-?\d+", cells[2]):
            continue
        key = b"" if cells[1] == "—" else bytes.fromhex(cells[1])
        rows.append(Vector(cells[0], key, *(int(cell) for cell in cells[2:])))
    assert rows, "no test vectors found in docs/FORMAT.md's partitioning table"
    return rows


def signed(h):
    """kafka-python's murmur2 returns the 32 bits unsigned; the table shows them as Java's int."""
    return h - (1 << 32) if h >= 1 << 31 else h


def test_table_covers_the_keys_implementations_get_wrong():
    rows = vectors()
    for row in rows:
        text = "(empty)" if not row.key else f"`{row.key.decode()}`"
        assert row.shown == text, f"the key column says {row.shown}, its bytes are {text}"
    assert b"" in [row.key for row in rows], "no empty key"
    assert any(len(row.key) == 1 for row in rows), "no 1-byte key"
    assert any(max(row.key, default=0) >= 0x80 for row in rows), "no key with non-ASCII bytes"
    assert {len(row.key) % 4 for row in rows} == {0, 1, 2, 3}, "not every length of leftover bytes"
    negative = [row for row in rows if row.murmur2 < 0]
    assert negative, "no key whose murmur2 is negative"
    assert any(abs(row.murmur2) % n != (row.masked % n) for row in negative for n in (3, 12)), (
        "no key where the absolute value would pick another partition than the mask")


@pytest.mark.parametrize("row", vectors(), ids=lambda row: row.shown)
def test_vector_agrees_with_kafka_python(row):
    from kafka.partitioner.default import murmur2
    assert signed(murmur2(row.key)) == row.murmur2
    assert row.masked == row.murmur2 & 0x7FFFFFFF
    assert (row.of_3, row.of_12) == (murmur2_partition(row.key, 3), murmur2_partition(row.key, 12))


@pytest.mark.parametrize("partitions", [3, 12])
def test_mq_produce_puts_each_key_where_the_table_says(mq, partitions):
    rows = vectors()
    mq.create("keyed", partitions)
    data = b"".join(row.key + b"\t" + b"value-%d\n" % i for i, row in enumerate(rows))
    printed = mq.produce("keyed", data, "-K", r"\t", "--print-offsets").stdout.decode().splitlines()
    want = [row.of_3 if partitions == 3 else row.of_12 for row in rows]
    assert [int(line.split()[0]) for line in printed] == want
    for p in range(partitions):
        # Read back independently of mq: each record's key is in the partition the table gives.
        assert [r.key for r in mq.records("keyed", p)] == [row.key for row, w in zip(rows, want) if w == p]


def test_keyless_batches_move_to_the_next_partition(mq):
    """The sticky partition: a run of keyless messages per batch, each run in the partition after the last."""
    mq.create("sticky", 3)
    data = b"".join(b"m%d\n" % i for i in range(60))
    printed = mq.produce("sticky", data, "--batch-messages", "10", "--print-offsets").stdout.decode().splitlines()
    runs = [int(line.split()[0]) for i, line in enumerate(printed) if i == 0 or line.split()[0] != printed[i - 1].split()[0]]
    assert len(runs) >= 5, runs
    assert all(b == (a + 1) % 3 for a, b in zip(runs, runs[1:])), runs


def test_named_producer_puts_keyless_records_by_their_number(mq):
    """--producer: input record n goes to partition (n div 1000) mod N, whatever the run."""
    mq.create("named", 3)
    lines = [b"r%d" % n for n in range(2500)]
    mq.produce("named", b"\n".join(lines) + b"\n", "--producer", "p")
    for p in range(3):
        assert mq.values("named", p) == [line for n, line in enumerate(lines) if (n // 1000) % 3 == p]
