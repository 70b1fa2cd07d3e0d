"""Tests of the independent Kafka-format helpers kafka_validate.py and kafka_write.py.

These need no mq binary: they prove that the checker used by the black-box tests accepts
what real Kafka writes and rejects damaged segments with a precise message.
"""

import base64
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import kafka_validate as kv  # noqa: E402
import kafka_write as kw  # noqa: E402

FIXTURES = HERE.parent / "MQLogTests" / "Fixtures"
KAFKA_GO = FIXTURES / "kafka-go"
V2_V2 = KAFKA_GO / "v2-v2" / "test-lucid-0"
V2C_V2C = KAFKA_GO / "v2c-v2c" / "test-oneiric-0"
V2C_V2_V2C = KAFKA_GO / "v2c-v2-v2c" / "test-natty-0"
V1_MIX = KAFKA_GO / "v1-v1c-v2-v2c-v2b-v2b-v2b-v2bc-v1b-v1bc" / "test-88-0"
NOT_KAFKA = FIXTURES / "not-kafka-written" / "__cluster_metadata-0"
SEG = "00000000000000000000"

NAMES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]


def run_validate(*args):
    p = subprocess.run([sys.executable, str(HERE / "kafka_validate.py"), *map(str, args)],
                       capture_output=True, timeout=120)
    return p.returncode, p.stdout, p.stderr.decode()


def copy_partition(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    for f in dst.rglob("*"):
        f.chmod(0o644 if f.is_file() else 0o755)
    dst.chmod(0o755)
    return dst


def batch_starts(data: bytes):
    pos, starts = 0, []
    while pos < len(data):
        starts.append(pos)
        pos += 12 + struct.unpack_from(">i", data, pos + 8)[0]
    return starts


# --- real-broker fixtures -------------------------------------------------------------------


@pytest.mark.parametrize("part,count,codecs", [
    (V2_V2, 4, {"none"}),
    (V2C_V2C, 4, {"gzip"}),
    (V2C_V2_V2C, 6, {"gzip", "none"}),
])
def test_accepts_real_broker_fixtures(part, count, codecs):
    status, out, err = run_validate(part)
    assert status == 0, err
    assert b"ok:" in out
    records = kv.read_records(part)
    assert [r.offset for r in records] == list(range(count))
    assert [r.key.decode() for r in records] == NAMES[:count]
    for r in records:
        letter = "abcdefghij"[NAMES.index(r.key.decode())]
        assert json.loads(r.value) == {"count": 0, "filler": letter * 10}
        assert r.headers == []
    assert {r.codec for r in records} == codecs


def test_accepts_not_kafka_written_fixture():
    status, out, err = run_validate(NOT_KAFKA)
    assert status == 0, err
    records = kv.read_records(NOT_KAFKA)
    assert [r.offset for r in records] == [0, 1, 2, 3]
    assert all(r.key is None for r in records)
    assert b"metadata.version" in records[0].value


def test_accepts_whole_fixture_tree_except_v1(tmp_path):
    tree = tmp_path / "tree"
    for p in (V2_V2, V2C_V2C, V2C_V2_V2C, NOT_KAFKA):
        copy_partition(p, tree / p.parent.name / p.name)
    status, out, err = run_validate(tree)
    assert status == 0, err
    assert b"4 partition(s)" in out
    assert len(kv.validate(tree)) == 4


def test_rejects_v1_mix_with_magic_message():
    status, out, err = run_validate(V1_MIX)
    assert status == 1
    assert "magic 1" in err and "byte 0" in err
    assert str(V1_MIX / f"{SEG}.log") in err
    with pytest.raises(kv.ValidationError) as e:
        kv.read_records(V1_MIX)
    assert e.value.position == 0 and "magic" in e.value.message


def test_dump_format():
    status, out, err = run_validate("--dump", V2C_V2_V2C)
    assert status == 0, err
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert len(lines) == 6
    for i, d in enumerate(lines):
        assert set(d) == {"file", "offset", "timestamp", "key_b64", "value_b64", "headers",
                          "codec"}
        assert d["offset"] == i
        assert d["file"].endswith(f"{SEG}.log")
        assert base64.b64decode(d["key_b64"]).decode() == NAMES[i]
        assert isinstance(d["timestamp"], int) and d["timestamp"] > 1_600_000_000_000
        assert d["headers"] == []
    assert [d["codec"] for d in lines] == ["gzip", "gzip", "none", "none", "gzip", "gzip"]


# --- damage ---------------------------------------------------------------------------------


@pytest.mark.parametrize("src", [V2_V2, V2C_V2C, V2C_V2_V2C], ids=["v2-v2", "v2c-v2c", "v2c-v2-v2c"])
def test_rejects_every_single_flipped_byte(tmp_path, src):
    """Any one damaged byte is caught, except the partition leader epoch, which Kafka leaves
    outside the CRC and which has no constraint a reader could check."""
    data = (src / f"{SEG}.log").read_bytes()
    starts = batch_starts(data)
    epoch = {s + i for s in starts for i in range(12, 16)}
    part = tmp_path / "p"
    part.mkdir()
    log = part / f"{SEG}.log"
    missed = []
    for pos in range(len(data)):
        if pos in epoch:
            continue
        for mask in (0x01, 0xFF):
            damaged = bytearray(data)
            damaged[pos] ^= mask
            log.write_bytes(bytes(damaged))
            try:
                kv.validate(part)
                missed.append((pos, mask))
            except kv.ValidationError as e:
                assert e.file == str(log)
                assert e.position is not None and e.position in starts
    assert missed == []


def test_flipped_byte_cli_message(tmp_path):
    part = copy_partition(V2_V2, tmp_path / "p")
    log = part / f"{SEG}.log"
    data = bytearray(log.read_bytes())
    data[200] ^= 0x20  # inside the second batch's records (batch starts at byte 150)
    log.write_bytes(bytes(data))
    status, out, err = run_validate(part)
    assert status == 1
    assert f"{log}: byte 150: CRC mismatch" in err
    assert err.count("\n") == 1


def test_rejects_every_truncation(tmp_path):
    data = (V2C_V2_V2C / f"{SEG}.log").read_bytes()
    starts = set(batch_starts(data))
    part = tmp_path / "p"
    part.mkdir()
    log = part / f"{SEG}.log"
    for cut in range(1, len(data)):
        log.write_bytes(data[:cut])
        if cut in starts:
            assert len(kv.read_records(part)) > 0  # a cut at a batch boundary is a valid log
            continue
        with pytest.raises(kv.ValidationError) as e:
            kv.validate(part)
        assert "truncated" in e.value.message, (cut, str(e.value))
        assert e.value.position == max(s for s in starts if s < cut)
    log.write_bytes(data[:300])
    status, _, err = run_validate(part)
    assert status == 1 and "byte 285: truncated batch" in err


def test_rejects_gap_unless_allowed(tmp_path):
    part = tmp_path / "p"
    part.mkdir()
    ts = [kw.DEFAULT_TIMESTAMP]
    a = kw.encode_batch("none", 0, ts * 2, [(b"a", b"1", []), (b"b", b"2", [])])
    b = kw.encode_batch("gzip", 5, ts, [(b"c", b"3" * 100, [])])
    (part / f"{SEG}.log").write_bytes(a + b)
    status, _, err = run_validate(part)
    assert status == 1 and f"byte {len(a)}:" in err and "not contiguous" in err
    status, _, err = run_validate("--allow-gaps", part)
    assert status == 0, err
    # Offsets going backwards are never allowed.
    c = kw.encode_batch("none", 1, ts, [(b"x", b"y", [])])
    (part / f"{SEG}.log").write_bytes(a + c)
    status, _, err = run_validate("--allow-gaps", part)
    assert status == 1 and "not above" in err


def test_first_batch_below_segment_name(tmp_path):
    part = copy_partition(V2_V2, tmp_path / "p")
    (part / f"{SEG}.log").rename(part / "00000000000000000001.log")
    status, _, err = run_validate(part)
    assert status == 1 and "byte 0" in err and "below the segment's name offset 1" in err


def test_segments_must_continue_each_other(tmp_path):
    part = tmp_path / "p"
    part.mkdir()
    ts = [kw.DEFAULT_TIMESTAMP] * 3
    recs = [(b"k", b"v", [])] * 3
    (part / f"{SEG}.log").write_bytes(kw.encode_batch("none", 0, ts, recs))
    (part / "00000000000000000003.log").write_bytes(kw.encode_batch("none", 3, ts, recs))
    assert [r.offset for r in kv.read_records(part)] == list(range(6))
    (part / "00000000000000000003.log").rename(part / "00000000000000000002.log")
    status, _, err = run_validate(part)
    assert status == 1 and "00000000000000000002.log" in err and "overlaps" in err
    (part / "00000000000000000002.log").unlink()
    (part / "00000000000000000004.log").write_bytes(kw.encode_batch("none", 4, ts, recs))
    status, _, err = run_validate(part)
    assert status == 1 and "does not continue" in err


def test_bad_segment_name(tmp_path):
    part = copy_partition(V2_V2, tmp_path / "p")
    (part / f"{SEG}.log").rename(part / "0.log")
    status, _, err = run_validate(part)
    assert status == 1 and "20 decimal digits" in err


# --- kafka_write round trip -----------------------------------------------------------------


def _load_jsonl(data: bytes):
    return [json.loads(line) for line in data.decode().splitlines()]


@pytest.mark.parametrize("with_index", [False, True])
def test_kafka_write_round_trip(tmp_path, with_index):
    out = tmp_path / "part"
    args = [sys.executable, str(HERE / "kafka_write.py"), str(out)]
    if with_index:
        args.insert(2, "--index")
    subprocess.run(args, check=True, capture_output=True, timeout=120)
    names = sorted(p.name for p in out.iterdir())
    expect_files = [f"{SEG}.log", "expected.jsonl"]
    if with_index:
        expect_files += [f"{SEG}.index", f"{SEG}.timeindex"]
    assert names == sorted(expect_files)

    status, dump, err = run_validate("--dump", out)
    assert status == 0, err
    got = _load_jsonl(dump)
    expected = _load_jsonl((out / "expected.jsonl").read_bytes())
    for d in got:
        d["file"] = Path(d["file"]).name
    assert got == expected

    # Everything the brief asks the writer to cover is really there.
    assert [d["offset"] for d in got] == list(range(len(got)))
    assert {d["codec"] for d in got} == {"none", "gzip", "snappy", "lz4", "zstd"}
    for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
        recs = [d for d in got if d["codec"] == codec]
        assert any(d["key_b64"] is None for d in recs)
        assert any(d["value_b64"] is None for d in recs)
        assert any(d["value_b64"] == "" for d in recs)
        assert any(base64.b64decode(d["value_b64"] or "") == bytes(range(256)) for d in recs)
        assert any("✓".encode() in base64.b64decode(d["value_b64"] or "") for d in recs)
        dup = [d for d in recs if [h[0] for h in d["headers"]].count("dup") == 3]
        assert dup and [None] == [h[1] for h in dup[0]["headers"] if h[1] is None]
    partition = kv.validate(out)[0]
    assert len({b.base_offset for b in partition.batches}) == len(partition.batches) >= 7
    if with_index:
        seg = partition.segments[0]
        assert seg.has_index and seg.has_timeindex
        assert len(seg.index_entries) == len(partition.batches)


# --- index files ----------------------------------------------------------------------------


@pytest.fixture
def indexed(tmp_path):
    out = tmp_path / "part"
    kw.write_partition(out, with_index=True)
    (out / "expected.jsonl").unlink()
    part = kv.validate(out)[0]
    return out, part


def test_index_accepted(indexed):
    out, part = indexed
    seg = part.segments[0]
    assert seg.index_entries == [(b.last_offset, b.position) for b in part.batches]
    assert seg.timeindex_entries == [(b.max_timestamp, b.last_offset) for b in part.batches]


def _rewrite(path: Path, fmt: str, entries):
    path.write_bytes(b"".join(struct.pack(fmt, *e) for e in entries))


def test_index_damage_rejected(indexed):
    out, part = indexed
    idx = out / f"{SEG}.index"
    good = [(b.last_offset, b.position) for b in part.batches]

    _rewrite(idx, ">II", [good[0], good[2], good[1]])
    status, _, err = run_validate(out)
    assert status == 1 and f"{idx}: byte 16: entry 2" in err

    _rewrite(idx, ">II", [good[0], (good[1][0], good[1][1] + 1)])
    status, _, err = run_validate(out)
    assert status == 1 and "byte 8" in err and "not the start of a batch" in err

    _rewrite(idx, ">II", [(good[1][0], good[0][1]), good[2]])
    status, _, err = run_validate(out)  # an offset of batch 1 at batch 0's position: lookups work
    assert status == 0, err
    _rewrite(idx, ">II", [(good[0][0], good[1][1])])
    status, _, err = run_validate(out)  # offset of batch 0, position of batch 1: lookups break
    assert status == 1 and "below base offset" in err

    _rewrite(idx, ">II", [(part.batches[-1].last_offset + 1, good[-1][1])])
    status, _, err = run_validate(out)
    assert status == 1 and "past the segment's last offset" in err

    idx.write_bytes(struct.pack(">II", *good[0]) + b"\x00\x00\x00")
    status, _, err = run_validate(out)
    assert status == 1 and "byte 8" in err and "not a multiple of the 8-byte entry" in err

    idx.write_bytes(b"")
    status, _, err = run_validate(out)
    assert status == 0, err


def test_index_slack(indexed):
    out, part = indexed
    idx = out / f"{SEG}.index"
    tidx = out / f"{SEG}.timeindex"
    idx.write_bytes(idx.read_bytes() + b"\x00" * 8 * 100)
    tidx.write_bytes(tidx.read_bytes() + b"\x00" * 12 * 100)
    status, _, err = run_validate(out)
    assert status == 1 and str(idx) in err
    status, _, err = run_validate("--index-slack", out)
    assert status == 0, err


def test_timeindex_damage_rejected(indexed):
    out, part = indexed
    tidx = out / f"{SEG}.timeindex"
    good = [(b.max_timestamp, b.last_offset) for b in part.batches]

    _rewrite(tidx, ">qI", [good[1], good[0]])
    status, _, err = run_validate(out)
    assert status == 1 and f"{tidx}: byte 12: entry 1" in err and "timestamp" in err

    _rewrite(tidx, ">qI", [good[0], (good[0][0], good[0][1] - 1)])
    status, _, err = run_validate(out)
    assert status == 1 and "byte 12" in err and "offset" in err

    _rewrite(tidx, ">qI", [(good[0][0], good[0][0] and part.batches[-1].last_offset + 1)])
    status, _, err = run_validate(out)
    assert status == 1 and "outside the segment" in err

    _rewrite(tidx, ">qI", [(good[-1][0], good[0][1])])
    status, _, err = run_validate(out)
    assert status == 1 and "newer than every record" in err

    tidx.write_bytes(b"\x01" * 13)
    status, _, err = run_validate(out)
    assert status == 1 and "12-byte entry" in err


def test_orphan_index_rejected(indexed):
    out, _ = indexed
    shutil.copy(out / f"{SEG}.index", out / "00000000000000000500.index")
    status, _, err = run_validate(out)
    assert status == 1 and "00000000000000000500.index" in err and "without its segment" in err


def test_empty_segment_and_no_segments(tmp_path):
    part = tmp_path / "p"
    part.mkdir()
    (part / f"{SEG}.log").write_bytes(b"")
    status, out, err = run_validate(part)
    assert status == 0 and b"0 record(s)" in out
    (part / f"{SEG}.log").unlink()
    status, out, err = run_validate(part)
    assert status == 1 and "no .log segments" in err
