#!/usr/bin/env python3
"""Write a Kafka partition directory with kafka-python's DefaultRecordBatchBuilder.

Usage:
    kafka_write.py [--index] [--timestamp MS] OUTDIR

Writes OUTDIR/00000000000000000000.log holding record batches in every codec (none, gzip,
snappy, lz4, zstd) with contiguous base offsets from 0, and OUTDIR/expected.jsonl with one
JSON line per record in the format of `kafka_validate.py --dump` (file given relative to
OUTDIR). The records cover headers (duplicate names, null and empty header values, a
non-ASCII name), null keys, empty keys, null values, empty values, binary data (all 256 byte
values) and UTF-8 text.

No index files are written unless --index is given; then `.index` and `.timeindex` get one
Kafka-style entry per batch (the batch's last offset -> its position; its max timestamp ->
its last offset).

As a module: `build_batches(base_timestamp)` returns [(codec, [record tuples])], and
`write_partition(outdir, with_index=False, base_timestamp=...)` writes and returns the
expected dump dicts.
"""

from __future__ import annotations

import argparse
import base64
import json
import struct
import sys
from pathlib import Path

from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
SEGMENT = "00000000000000000000"
DEFAULT_TIMESTAMP = 1700000000000

ALL_BYTES = bytes(range(256))
UTF8_TEXT = "héllo wörld ✓ 日本語 🎉 ελληνικά"


def special_records(tag: str) -> list:
    """(key, value, headers) cases that every batch carries; `tag` makes them distinct."""
    t = tag.encode()
    return [
        (b"key-" + t, b"plain text value " + t, []),
        (None, b"value with a null key " + t, []),
        (b"null-value-" + t, None, []),
        (b"empty-value-" + t, b"", []),
        (b"", b"empty key " + t, []),
        (None, None, [("only-headers", t)]),
        (ALL_BYTES[::-1], ALL_BYTES, [("bin", ALL_BYTES)]),
        (UTF8_TEXT.encode(), (UTF8_TEXT + " " + tag).encode(), [("ключ", "значение".encode())]),
        (b"headers-" + t, b"with headers " + t,
         [("dup", b"1"), ("dup", b"2"), ("dup", None), ("empty", b""), ("z", b"last")]),
        (b"nl-" + t, b"line one\nline two\r\n\ttabbed\x00nul", [("h", b"a=b,c")]),
    ]


def filler_records(tag: str, n: int) -> list:
    """Repetitive text so that every codec really compresses the batch."""
    return [(f"fill-{tag}-{i % 3}".encode(),
             (f"{tag} filler record {i:04d} " + "lorem ipsum dolor sit amet " * 4).encode(),
             [("seq", str(i).encode())])
            for i in range(n)]


def build_batches(base_timestamp: int = DEFAULT_TIMESTAMP) -> list:
    """[(codec name, [(key, value, headers)])] in file order."""
    plan = [("none", special_records("none"))]
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        plan.append((codec, special_records(codec) + filler_records(codec, 20)))
    plan.append(("none", [(b"single", b"a batch of one record", [])]))
    plan.append(("gzip", [(b"after-single", b"x" * 300, [("k", b"v")]), (None, b"y" * 300, [])]))
    return plan


def encode_batch(codec: str, base_offset: int, timestamps: list, records: list) -> bytes:
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=CODECS[codec],
                                        is_transactional=False, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1,
                                        batch_size=1 << 30)
    for delta, ((key, value, headers), ts) in enumerate(zip(records, timestamps)):
        if builder.append(delta, timestamp=ts, key=key, value=value, headers=headers) is None:
            raise RuntimeError("record did not fit into the batch")
    buf = builder.build()
    # The builder leaves baseOffset at 0 (a broker assigns it); it is outside the CRC.
    struct.pack_into(">q", buf, 0, base_offset)
    check = DefaultRecordBatch(bytes(buf))
    if check.compression_type != CODECS[codec]:
        raise RuntimeError(f"kafka-python did not keep the {codec} batch compressed")
    if not check.validate_crc():
        raise RuntimeError("built batch has a bad CRC")
    return bytes(buf)


def write_partition(outdir, with_index: bool = False,
                    base_timestamp: int = DEFAULT_TIMESTAMP) -> list:
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    log = bytearray()
    index = bytearray()
    timeindex = bytearray()
    expected = []
    offset = 0
    for codec, records in build_batches(base_timestamp):
        timestamps = [base_timestamp + (offset + i) * 1000 for i in range(len(records))]
        position = len(log)
        log += encode_batch(codec, offset, timestamps, records)
        last = offset + len(records) - 1
        index += struct.pack(">II", last, position)
        timeindex += struct.pack(">qI", max(timestamps), last)
        for i, (key, value, headers) in enumerate(records):
            expected.append({
                "file": f"{SEGMENT}.log",
                "offset": offset + i,
                "timestamp": timestamps[i],
                "key_b64": _b64(key),
                "value_b64": _b64(value),
                "headers": [[name, _b64(v)] for name, v in headers],
                "codec": codec,
            })
        offset = last + 1
    (outdir / f"{SEGMENT}.log").write_bytes(bytes(log))
    if with_index:
        (outdir / f"{SEGMENT}.index").write_bytes(bytes(index))
        (outdir / f"{SEGMENT}.timeindex").write_bytes(bytes(timeindex))
    with open(outdir / "expected.jsonl", "w", encoding="utf-8") as f:
        for e in expected:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    return expected


def _b64(data):
    return None if data is None else base64.b64encode(data).decode("ascii")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="kafka_write",
                                 description="Write a Kafka partition dir with kafka-python.")
    ap.add_argument("outdir")
    ap.add_argument("--index", action="store_true", help="also write .index and .timeindex")
    ap.add_argument("--timestamp", type=int, default=DEFAULT_TIMESTAMP,
                    help="timestamp (ms) of offset 0; each next offset is 1 s later")
    args = ap.parse_args(argv)
    expected = write_partition(args.outdir, args.index, args.timestamp)
    print(f"wrote {len(expected)} records to {Path(args.outdir) / (SEGMENT + '.log')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
