"""Transactions written by Kafka's own record builders read committed (issue 11 §4).

kafka-python's DefaultRecordBatchBuilder writes transactional batches and, with the control
bit set by hand as a broker's coordinator would, COMMIT and ABORT markers; no `.txnindex` is
written, and a producer id is reused across transactions, as a Kafka producer does. mq's
readers must deliver exactly the committed records, in offset order, and with
--read-uncommitted everything but the markers.
"""

import struct

import crc32c
from kafka.record.default_records import DefaultRecordBatchBuilder

from mqtest import dec

SEG0 = "00000000000000000000"
CONTROL = 0x20


def batch(base_offset, records, pid=-1, epoch=-1, seq=-1, transactional=False, codec=0, ts=1700000000000):
    b = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=transactional,
                                  producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                                  batch_size=1 << 20)
    for i, (key, value) in enumerate(records):
        assert b.append(i, timestamp=ts + base_offset + i, key=key, value=value, headers=[]) is not None
    buf = b.build()
    struct.pack_into(">q", buf, 0, base_offset)
    return bytes(buf)


def marker(offset, pid, epoch, commit):
    """A control batch as Kafka's coordinator writes it: key (version 0, type), value (version 0, epoch)."""
    raw = bytearray(batch(offset, [(struct.pack(">hh", 0, 1 if commit else 0), struct.pack(">hi", 0, 0))],
                          pid=pid, epoch=epoch, transactional=True))
    attributes = struct.unpack_from(">h", raw, 21)[0] | CONTROL
    struct.pack_into(">h", raw, 21, attributes)
    struct.pack_into(">I", raw, 17, crc32c.crc32c(bytes(raw[21:])))
    return bytes(raw)


def recs(tag, n):
    return [(f"{tag}-k{i}".encode(), f"{tag}-{i}".encode()) for i in range(n)]


def build_log():
    """Two segments. Returns ({segment base: bytes}, committed values in order, all data values)."""
    p1, p2 = 4000, 5000
    seg0, seg1 = bytearray(), bytearray()
    committed, everything = [], []

    def put(seg, offset, records, **kw):
        seg += batch(offset, records, **kw)
        everything.extend(v for _, v in records)
        return offset + len(records)

    o = 0
    # p1, first transaction: committed, its marker after a plain batch.
    o = put(seg0, o, recs("t1a", 3), pid=p1, epoch=0, seq=0, transactional=True, codec=1)
    committed += [v for _, v in recs("t1a", 3)]
    o = put(seg0, o, recs("plain1", 2))
    committed += [v for _, v in recs("plain1", 2)]
    seg0 += marker(o, p1, 0, commit=True); o += 1
    # p1 again (same producer id, same epoch: Kafka keeps them across transactions): aborted.
    o = put(seg0, o, recs("t2", 4), pid=p1, epoch=0, seq=3, transactional=True, codec=4)
    # p2 interleaved: committed, its marker in the next segment.
    o = put(seg0, o, recs("u1", 2), pid=p2, epoch=3, seq=0, transactional=True, codec=3)
    committed += [v for _, v in recs("u1", 2)]
    seg0 += marker(o, p1, 0, commit=False); o += 1
    base1 = o
    o = put(seg1, o, recs("u1b", 2), pid=p2, epoch=3, seq=2, transactional=True, codec=2)
    committed += [v for _, v in recs("u1b", 2)]
    seg1 += marker(o, p2, 3, commit=True); o += 1
    # p1, third transaction: aborted, then p1's fourth: committed.
    o = put(seg1, o, recs("t3", 2), pid=p1, epoch=0, seq=7, transactional=True)
    seg1 += marker(o, p1, 0, commit=False); o += 1
    o = put(seg1, o, recs("plain2", 1))
    committed += [v for _, v in recs("plain2", 1)]
    o = put(seg1, o, recs("t4", 3), pid=p1, epoch=0, seq=9, transactional=True, codec=1)
    committed += [v for _, v in recs("t4", 3)]
    seg1 += marker(o, p1, 0, commit=True); o += 1
    return {0: bytes(seg0), base1: bytes(seg1)}, committed, everything


def install(mq, topic, segments):
    tdir = mq.topic_dir(topic)
    pdir = tdir / "0"
    pdir.mkdir(parents=True)
    (tdir / "topic.properties").write_text("partitions=1\n")
    for base, data in segments.items():
        (pdir / f"{base:020d}.log").write_bytes(data)
    return pdir


def values(res):
    return [line.encode() for line in res.out.splitlines()]


def test_kafka_written_transactions_read_committed(mq):
    segments, committed, everything = build_log()
    pdir = install(mq, "ktx", segments)
    assert not list(pdir.glob("*.txnindex"))

    assert values(mq.tail("-n", "+0", "ktx")) == committed
    assert [dec(e["value"]) for e in mq.tail_json("ktx", "--from", "beginning")] == committed
    assert values(mq.tail("-n", "+0", "--read-uncommitted", "ktx")) == everything

    res = mq.run("mq-consume", "-g", "g1", "-e", "ktx", check=0)
    assert values(res) == committed
    res = mq.run("mq-replay", "ktx", "--from", "beginning", "--to", "end", check=0)
    assert values(res) == committed


def test_kafka_written_transactions_after_mq_appends(mq):
    """An mq writer recovering the foreign directory and appending keeps the fates."""
    segments, committed, _ = build_log()
    install(mq, "ktx2", segments)
    mq.produce("ktx2", b"after-1\nafter-2\n")
    assert values(mq.tail("-n", "+0", "ktx2")) == committed + [b"after-1", b"after-2"]
    # Kafka's copies come without mq's sparse indexes of the older segment: --repair adds them.
    mq.run("mq-compact", "--repair", "ktx2", check=0)
    mq.run("mq-compact", "--check", "ktx2", check=0)
    assert values(mq.tail("-n", "+0", "ktx2")) == committed + [b"after-1", b"after-2"]


def test_transaction_without_marker_is_not_delivered(mq):
    """A foreign log cut short after a transaction's batches: nothing of it is committed."""
    seg = batch(0, recs("plain", 2)) + batch(2, recs("open", 3), pid=77, epoch=0, seq=0, transactional=True)
    seg += batch(5, recs("later", 1))
    install(mq, "cut", {0: seg})
    assert values(mq.tail("-n", "+0", "cut")) == [b"plain-0", b"plain-1", b"later-0"]


def test_mq_written_fates_without_txnindex(mq):
    """mq's own transactions read the same through the markers when .txnindex is gone."""
    mq.produce("own", b"c1\nc2\n", "--atomic")
    res = mq.run("mq-produce", "--atomic", "own", "--", "sh", "-c", "echo a1; echo a2; exit 3", check=None)
    assert res.status != 0
    mq.produce("own", b"c3\n", "--atomic")
    assert values(mq.tail("-n", "+0", "own")) == [b"c1", b"c2", b"c3"]
    pdir = mq.partition_dir("own", 0)
    removed = list(pdir.glob("*.txnindex"))
    assert removed, "the aborted transaction should have a .txnindex entry"
    for f in removed:
        f.unlink()
    assert values(mq.tail("-n", "+0", "own")) == [b"c1", b"c2", b"c3"]
    assert values(mq.tail("-n", "+0", "--read-uncommitted", "own")) == [b"c1", b"c2", b"a1", b"a2", b"c3"]
