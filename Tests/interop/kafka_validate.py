#!/usr/bin/env python3
"""Validate Kafka log segments with kafka-python's own record-batch parser.

This is an independent checker for mq's on-disk format: it never uses mq code.
Every `*.log` segment is parsed with `kafka.record.default_records.DefaultRecordBatch`,
and the `.index` / `.timeindex` files beside it are checked when present.

Usage:
    kafka_validate.py [--allow-gaps] [--index-slack] [--dump] [--quiet] PATH...

PATH is a log dir, a topic dir, a partition dir or `.log` files; directories are searched
recursively for `*.log`. Segments are grouped by the directory that holds them (one
partition each) and checked in name order.

Checks, per partition:
  * the segment name is 20 decimal digits, and the first batch's baseOffset >= that name;
  * every batch: complete (not truncated), length sane, magic 2, known codec, CRC-32C valid;
  * base offsets contiguous and strictly increasing (next baseOffset == previous
    lastOffset + 1); with --allow-gaps (compacted logs) only strictly increasing;
  * records: count matches lastOffsetDelta + 1, offset deltas 0..n-1 in order (with
    --allow-gaps: strictly increasing and <= lastOffsetDelta), every record decodes and
    decompresses, header names are UTF-8, maxTimestamp matches the records;
  * `.index`: 8-byte entries (relative offset, position; both big-endian uint32), offsets
    strictly increasing and inside the segment, positions non-decreasing and each at a batch
    start whose baseOffset <= the entry's offset;
  * `.timeindex`: 12-byte entries (timestamp int64, relative offset uint32), timestamps and
    offsets non-decreasing, offsets inside the segment, and no timestamp newer than the
    records up to that offset;
  * no `.index` / `.timeindex` without its `.log`;
  * transactions: a transactional data batch has producerId >= 0, epoch >= 0 and
    baseSequence >= 0, its sequences continuing the producer's previous batch in the
    partition; a control batch is transactional, has a producer id and exactly one
    record whose key is int16 version 0 + int16 type (0 ABORT, 1 COMMIT) and whose value
    is int16 version 0 + int32 coordinator epoch; a marker ends a transaction of its
    producer that has data before it (unless the log no longer starts at offset 0:
    retention may have removed the data); no data of a producer follows its marker;
  * `.txnindex` (aborted transactions): 34-byte entries (int16 version 0, producerId,
    firstOffset, lastOffset, lastStableOffset, big-endian) each naming an ABORT marker of
    that producer at lastOffset, with firstOffset its transaction's first offset; every
    ABORT marker has an entry; no `.txnindex` without its `.log`.

With --index-slack, trailing all-zero index entries (Kafka pre-allocates the active
segment's index files) are ignored instead of reported.

Exit status: 0 valid, 1 invalid (one line on stderr: `FILE: byte N: what`), 2 usage.
--dump prints one JSON object per record on stdout:
    {"file", "offset", "timestamp", "key_b64", "value_b64", "headers": [[name, b64|null]...],
     "codec"}

As a module: `validate(paths)` returns the list of `Partition` results (raises
`ValidationError`), `read_records(paths)` the flat list of `Record`s (control records
included), `committed_records(paths)` what a read_committed Kafka consumer gets: no control
records, no records of aborted transactions or of transactions without a marker.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import itertools
import json
import os
import re
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from kafka.record.default_records import DefaultRecordBatch
from kafka.record.util import calc_crc32c

CODEC_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
SEGMENT_NAME = re.compile(r"^(\d{20})\.(log|index|timeindex|txnindex)$")
TXN_ENTRY = struct.Struct(">hqqqq")  # version, producerId, firstOffset, lastOffset, LSO
HEADER_SIZE = DefaultRecordBatch.HEADER_STRUCT.size  # 61
LOG_OVERHEAD = 12  # baseOffset (8) + length (4)
MIN_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD  # 49: the length field counts from here
MAGIC_OFFSET = 16


class ValidationError(Exception):
    """A precise complaint about one file, at one byte position when it has one."""

    def __init__(self, file, position: Optional[int], message: str):
        self.file = str(file)
        self.position = position
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.position is None:
            return f"{self.file}: {self.message}"
        return f"{self.file}: byte {self.position}: {self.message}"


@dataclass
class Record:
    file: str
    offset: int
    timestamp: int
    key: Optional[bytes]
    value: Optional[bytes]
    headers: list  # [(name: str, value: bytes | None)]
    codec: str
    batch_base_offset: int
    batch_position: int
    timestamp_type: int = 0
    partition_dir: str = ""
    control: bool = False
    producer_id: int = -1
    transactional: bool = False

    def to_dump(self) -> dict:
        return {
            "file": self.file,
            "offset": self.offset,
            "timestamp": self.timestamp,
            "key_b64": b64(self.key),
            "value_b64": b64(self.value),
            "headers": [[name, b64(value)] for name, value in self.headers],
            "codec": self.codec,
        }


@dataclass
class Batch:
    file: str
    position: int
    size: int  # whole batch on disk, including the 12-byte log overhead
    base_offset: int
    last_offset: int
    records_count: int
    codec: str
    first_timestamp: int
    max_timestamp: int
    timestamp_type: int
    is_control: bool
    is_transactional: bool
    producer_id: int = -1
    producer_epoch: int = -1
    base_sequence: int = -1
    control_type: int = -1  # 0 ABORT, 1 COMMIT for a control batch


@dataclass
class Segment:
    path: Path
    base_offset: int  # from the file name
    size: int
    batches: list = field(default_factory=list)
    records: list = field(default_factory=list)
    has_index: bool = False
    has_timeindex: bool = False
    index_entries: list = field(default_factory=list)  # [(absolute offset, position)]
    timeindex_entries: list = field(default_factory=list)  # [(timestamp, absolute offset)]

    @property
    def last_offset(self) -> Optional[int]:
        return self.batches[-1].last_offset if self.batches else None


@dataclass
class Partition:
    directory: Path
    segments: list = field(default_factory=list)
    # producer id -> list of (first offset, marker offset or None, "commit"/"abort"/"open")
    transactions: dict = field(default_factory=dict)
    aborted_index: list = field(default_factory=list)  # (producerId, first, last, lso)

    @property
    def records(self) -> list:
        return [r for s in self.segments for r in s.records]

    @property
    def batches(self) -> list:
        return [b for s in self.segments for b in s.batches]


def b64(data: Optional[bytes]) -> Optional[str]:
    return None if data is None else base64.b64encode(data).decode("ascii")


# ---------------------------------------------------------------------------------------------
# Finding segments


def find_segments(paths: Iterable) -> dict:
    """Map each partition directory to its sorted list of `.log` paths."""
    groups: dict = {}
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*.log") if q.is_file())
            for q in found:
                groups.setdefault(q.parent, set()).add(q)
            # A partition dir holding only index files still gets its orphan check.
            for q in p.rglob("*"):
                if q.is_file() and q.suffix in (".index", ".timeindex"):
                    groups.setdefault(q.parent, set())
        elif p.is_file():
            groups.setdefault(p.parent, set()).add(p)
        else:
            raise ValidationError(p, None, "no such file or directory")
    return {d: sorted(files, key=lambda q: q.name) for d, files in sorted(groups.items())}


# ---------------------------------------------------------------------------------------------
# Segments


def _segment_base(path: Path) -> int:
    m = SEGMENT_NAME.match(path.name)
    if not m or m.group(2) != "log":
        raise ValidationError(path, None, "segment file name is not 20 decimal digits + '.log'")
    return int(m.group(1))


def read_segment(path, allow_gaps: bool = False, expected_next: Optional[int] = None,
                 partition_dir: str = "") -> Segment:
    """Parse and check one `.log` file. `expected_next` is the offset the previous segment
    ends before (its last offset + 1), or None for the first segment."""
    path = Path(path)
    base = _segment_base(path)
    data = path.read_bytes()
    seg = Segment(path=path, base_offset=base, size=len(data))
    fname = str(path)

    if expected_next is not None and base < expected_next:
        raise ValidationError(path, None,
                              f"segment base offset {base} overlaps the previous segment, which "
                              f"ends at offset {expected_next - 1}")

    pos = 0
    prev_last: Optional[int] = None
    while pos < len(data):
        remaining = len(data) - pos
        if remaining < LOG_OVERHEAD:
            raise ValidationError(path, pos, f"truncated batch: only {remaining} bytes left, "
                                  f"a batch header needs {HEADER_SIZE}")
        base_offset, length = struct.unpack_from(">qi", data, pos)
        if remaining > MAGIC_OFFSET:
            magic = data[pos + MAGIC_OFFSET]
            if magic != 2:
                raise ValidationError(path, pos, f"magic {magic} (old v0/v1 message format); "
                                      "only record batches with magic 2 are supported")
        if length < MIN_BATCH_LENGTH:
            raise ValidationError(path, pos, f"batch length {length} is smaller than the "
                                  f"minimum {MIN_BATCH_LENGTH}")
        total = LOG_OVERHEAD + length
        if total > remaining:
            raise ValidationError(path, pos, f"truncated batch: length field says {total} bytes "
                                  f"(with the 12-byte prefix), only {remaining} remain in the file")
        raw = data[pos:pos + total]
        batch = _check_batch(path, pos, raw, base, prev_last, expected_next, allow_gaps)
        seg.batches.append(batch)
        seg.records.extend(_read_records(path, pos, raw, batch, allow_gaps, partition_dir))
        prev_last = batch.last_offset
        pos += total
    return seg


def _check_batch(path, pos, raw, seg_base, prev_last, expected_next, allow_gaps) -> Batch:
    try:
        b = DefaultRecordBatch(raw)
    except Exception as e:  # struct errors on impossible headers
        raise ValidationError(path, pos, f"cannot parse batch header: {e}")
    if b.magic != 2:
        raise ValidationError(path, pos, f"magic {b.magic}; only 2 is supported")
    if not b.validate_crc():
        computed = calc_crc32c(memoryview(raw)[DefaultRecordBatch.ATTRIBUTES_OFFSET:])
        raise ValidationError(path, pos, f"CRC mismatch in batch at base offset {b.base_offset}: "
                              f"stored 0x{b.crc:08x}, computed 0x{computed:08x}")
    codec = b.compression_type
    if codec not in CODEC_NAMES:
        raise ValidationError(path, pos, f"unknown compression codec {codec} in attributes "
                              f"0x{b.attributes:04x}")
    if b.last_offset_delta < 0:
        raise ValidationError(path, pos, f"negative lastOffsetDelta {b.last_offset_delta}")
    if b.records_count < 0:
        raise ValidationError(path, pos, f"negative record count {b.records_count}")
    if not allow_gaps and b.records_count != b.last_offset_delta + 1:
        raise ValidationError(path, pos, f"batch at base offset {b.base_offset} has "
                              f"{b.records_count} records but lastOffsetDelta "
                              f"{b.last_offset_delta} (expected count-1)")
    if b.base_offset < 0:
        raise ValidationError(path, pos, f"negative base offset {b.base_offset}")
    if prev_last is None:
        if b.base_offset < seg_base:
            raise ValidationError(path, pos, f"first batch base offset {b.base_offset} is below "
                                  f"the segment's name offset {seg_base}")
        if expected_next is not None and not allow_gaps and b.base_offset != expected_next:
            raise ValidationError(path, pos, f"base offset {b.base_offset} does not continue the "
                                  f"previous segment (expected {expected_next})")
        if expected_next is not None and allow_gaps and b.base_offset < expected_next:
            raise ValidationError(path, pos, f"base offset {b.base_offset} repeats offsets of the "
                                  f"previous segment (expected >= {expected_next})")
    else:
        if allow_gaps:
            if b.base_offset <= prev_last:
                raise ValidationError(path, pos, f"base offset {b.base_offset} is not above the "
                                      f"previous batch's last offset {prev_last}")
        elif b.base_offset != prev_last + 1:
            raise ValidationError(path, pos, f"base offset {b.base_offset} is not contiguous: "
                                  f"previous batch ended at offset {prev_last}, expected "
                                  f"{prev_last + 1}")
    return Batch(file=str(path), position=pos, size=len(raw), base_offset=b.base_offset,
                 last_offset=b.last_offset, records_count=b.records_count,
                 codec=CODEC_NAMES[codec], first_timestamp=b.first_timestamp,
                 max_timestamp=b.max_timestamp, timestamp_type=b.timestamp_type,
                 is_control=b.is_control_batch, is_transactional=b.is_transactional,
                 producer_id=b.producer_id, producer_epoch=b.producer_epoch,
                 base_sequence=b.base_sequence)


def _read_records(path, pos, raw, batch: Batch, allow_gaps, partition_dir) -> list:
    b = DefaultRecordBatch(raw)
    where = f"batch at base offset {batch.base_offset}"
    try:
        it = iter(b)
    except Exception as e:
        raise ValidationError(path, pos, f"{where}: cannot decompress {batch.codec} data: "
                              f"{type(e).__name__}: {e}")
    out = []
    index = 0
    prev_offset = None
    max_ts = None
    while True:
        try:
            r = next(it)
        except StopIteration:
            break
        except Exception as e:
            raise ValidationError(path, pos, f"{where}: record {index}: {type(e).__name__}: {e}")
        delta = r.offset - batch.base_offset
        if allow_gaps:
            if prev_offset is not None and r.offset <= prev_offset:
                raise ValidationError(path, pos, f"{where}: record {index} has offset delta "
                                      f"{delta}, not above the previous record's")
            if delta < 0 or delta > batch.last_offset - batch.base_offset:
                raise ValidationError(path, pos, f"{where}: record {index} has offset delta "
                                      f"{delta} outside 0..lastOffsetDelta")
        elif delta != index:
            raise ValidationError(path, pos, f"{where}: record {index} has offset delta {delta}, "
                                  f"expected {index}")
        max_ts = r.timestamp if max_ts is None else max(max_ts, r.timestamp)
        if batch.is_control:
            _check_control_record(path, pos, where, batch, r)
        out.append(Record(file=str(path), offset=r.offset, timestamp=r.timestamp, key=r.key,
                          value=r.value, headers=list(r.headers), codec=batch.codec,
                          batch_base_offset=batch.base_offset, batch_position=pos,
                          timestamp_type=batch.timestamp_type, partition_dir=partition_dir,
                          control=batch.is_control, producer_id=batch.producer_id,
                          transactional=batch.is_transactional))
        prev_offset = r.offset
        index += 1
    if index != batch.records_count:
        raise ValidationError(path, pos, f"{where}: header says {batch.records_count} records, "
                              f"found {index}")
    if max_ts is not None and batch.timestamp_type == 0 and max_ts != batch.max_timestamp:
        raise ValidationError(path, pos, f"{where}: maxTimestamp {batch.max_timestamp} but the "
                              f"newest record has timestamp {max_ts}")
    return out


# ---------------------------------------------------------------------------------------------
# Index files


def _entries(path: Path, data: bytes, size: int, slack: bool) -> int:
    """Number of meaningful entries in an index file of `size`-byte entries."""
    if len(data) % size:
        raise ValidationError(path, len(data) - len(data) % size,
                              f"file size {len(data)} is not a multiple of the {size}-byte entry")
    n = len(data) // size
    if slack:
        # Kafka pre-allocates the active segment's index; entries past the last non-zero one
        # (but never the first entry, which may legitimately be all zeros) are slack.
        while n > 1 and not any(data[(n - 1) * size:n * size]):
            n -= 1
    return n


def check_index(path, seg: Segment, slack: bool = False) -> list:
    path = Path(path)
    data = path.read_bytes()
    n = _entries(path, data, 8, slack)
    starts = {b.position: b for b in seg.batches}
    last = seg.last_offset
    entries = []
    prev_rel = prev_pos = None
    for i in range(n):
        at = i * 8
        rel, position = struct.unpack_from(">II", data, at)
        absolute = seg.base_offset + rel
        if prev_rel is not None and rel <= prev_rel:
            raise ValidationError(path, at, f"entry {i}: relative offset {rel} is not above the "
                                  f"previous entry's {prev_rel}")
        if prev_pos is not None and position < prev_pos:
            raise ValidationError(path, at, f"entry {i}: position {position} goes back from the "
                                  f"previous entry's {prev_pos}")
        if position >= seg.size:
            raise ValidationError(path, at, f"entry {i}: position {position} is past the end of "
                                  f"{seg.path.name} ({seg.size} bytes)")
        batch = starts.get(position)
        if batch is None:
            raise ValidationError(path, at, f"entry {i}: position {position} is not the start of "
                                  f"a batch in {seg.path.name}")
        if last is None or absolute > last:
            raise ValidationError(path, at, f"entry {i}: offset {absolute} is past the segment's "
                                  f"last offset {last}")
        if absolute < batch.base_offset:
            raise ValidationError(path, at, f"entry {i}: offset {absolute} is below base offset "
                                  f"{batch.base_offset} of the batch at position {position}")
        entries.append((absolute, position))
        prev_rel, prev_pos = rel, position
    return entries


def check_timeindex(path, seg: Segment, slack: bool = False) -> list:
    path = Path(path)
    data = path.read_bytes()
    n = _entries(path, data, 12, slack)
    last = seg.last_offset
    bases = [b.base_offset for b in seg.batches]
    running_max = list(itertools.accumulate((b.max_timestamp for b in seg.batches), max))
    entries = []
    prev_ts = prev_off = None
    for i in range(n):
        at = i * 12
        ts, rel = struct.unpack_from(">qI", data, at)
        absolute = seg.base_offset + rel
        if prev_ts is not None and ts < prev_ts:
            raise ValidationError(path, at, f"entry {i}: timestamp {ts} is below the previous "
                                  f"entry's {prev_ts}")
        if prev_off is not None and absolute < prev_off:
            raise ValidationError(path, at, f"entry {i}: offset {absolute} is below the previous "
                                  f"entry's {prev_off}")
        if last is None or absolute > last or absolute < seg.base_offset:
            raise ValidationError(path, at, f"entry {i}: offset {absolute} is outside the "
                                  f"segment's offsets {seg.base_offset}..{last}")
        k = bisect.bisect_right(bases, absolute)
        newest = running_max[k - 1] if k else None
        if newest is None or ts > newest:
            raise ValidationError(path, at, f"entry {i}: timestamp {ts} is newer than every record "
                                  f"up to offset {absolute} (newest {newest})")
        entries.append((ts, absolute))
        prev_ts, prev_off = ts, absolute
    return entries


# ---------------------------------------------------------------------------------------------
# Partitions


def _check_control_record(path, pos, where, batch: Batch, r) -> None:
    """Kafka's control record layout, read from the raw key and value."""
    key, value = r.key, r.value
    if key is None or len(key) != 4:
        raise ValidationError(path, pos, f"{where}: control record key is "
                              f"{None if key is None else len(key)} bytes, expected 4 "
                              "(int16 version, int16 type)")
    version, ctype = struct.unpack(">hh", key)
    if version != 0 or ctype not in (0, 1):
        raise ValidationError(path, pos, f"{where}: control record key version {version} type "
                              f"{ctype}, expected version 0 and type 0 (ABORT) or 1 (COMMIT)")
    if value is None or len(value) != 6 or struct.unpack(">h", value[:2])[0] != 0:
        raise ValidationError(path, pos, f"{where}: control record value must be int16 version 0 "
                              "+ int32 coordinator epoch (6 bytes)")
    if batch.control_type != -1:
        raise ValidationError(path, pos, f"{where}: a control batch holds more than one record")
    batch.control_type = ctype


def _check_transactions(part: "Partition") -> None:
    """Transactional bits, producer fields, sequences, markers and .txnindex entries."""
    open_txn: dict = {}  # pid -> [first offset, next sequence]
    for b in part.batches:
        where = f"batch at base offset {b.base_offset}"
        if b.is_control:
            if not b.is_transactional:
                raise ValidationError(b.file, b.position, f"{where}: control batch without the "
                                      "transactional bit")
            if b.producer_id < 0 or b.producer_epoch < 0:
                raise ValidationError(b.file, b.position, f"{where}: control batch without a "
                                      "producer id and epoch")
            if b.records_count != 1 or b.control_type == -1:
                raise ValidationError(b.file, b.position, f"{where}: control batch with "
                                      f"{b.records_count} records, expected 1")
            if b.producer_id not in open_txn:
                # Retention may have deleted the transaction's data, never a
                # log that still starts at offset 0.
                if not part.segments or part.segments[0].base_offset == 0:
                    raise ValidationError(b.file, b.position, f"{where}: marker of producer "
                                          f"{b.producer_id} ends no transaction with data here")
                open_txn[b.producer_id] = [None, 0]
            first, _ = open_txn.pop(b.producer_id)
            part.transactions.setdefault(b.producer_id, []).append(
                (first, b.base_offset, "commit" if b.control_type == 1 else "abort"))
        elif b.is_transactional:
            if b.producer_id < 0 or b.producer_epoch < 0 or b.base_sequence < 0:
                raise ValidationError(b.file, b.position, f"{where}: transactional batch with "
                                      f"producerId {b.producer_id}, epoch {b.producer_epoch}, "
                                      f"baseSequence {b.base_sequence}")
            if any(t[2] != "open" for t in part.transactions.get(b.producer_id, [])):
                raise ValidationError(b.file, b.position, f"{where}: data of producer "
                                      f"{b.producer_id} after its transaction's marker")
            state = open_txn.setdefault(b.producer_id, [b.base_offset, b.base_sequence])
            if b.base_sequence != state[1]:
                raise ValidationError(b.file, b.position, f"{where}: baseSequence "
                                      f"{b.base_sequence}, expected {state[1]}")
            state[1] = b.base_sequence + b.records_count
    for pid, (first, _) in open_txn.items():
        part.transactions.setdefault(pid, []).append((first, None, "open"))
    aborts = {(pid, marker): first for pid, ts in part.transactions.items()
              for first, marker, how in ts if how == "abort"}
    indexed = set()
    for seg in part.segments:
        tx = seg.path.with_name(seg.path.name[:-len(".log")] + ".txnindex")
        if not tx.exists():
            continue
        data = tx.read_bytes()
        if len(data) % TXN_ENTRY.size:
            raise ValidationError(tx, None, f"{len(data)} bytes is not a whole number of "
                                  f"{TXN_ENTRY.size}-byte entries")
        for at in range(0, len(data), TXN_ENTRY.size):
            version, pid, first, last, lso = TXN_ENTRY.unpack_from(data, at)
            if version != 0:
                raise ValidationError(tx, at, f"entry version {version}, expected 0")
            if (pid, last) not in aborts:
                raise ValidationError(tx, at, f"entry for producer {pid} names offset {last}, "
                                      "which is not an ABORT marker of that producer")
            if aborts[(pid, last)] is not None and aborts[(pid, last)] != first:
                raise ValidationError(tx, at, f"entry for producer {pid} starts at {first}, its "
                                      f"transaction's first offset is {aborts[(pid, last)]}")
            indexed.add((pid, last))
            part.aborted_index.append((pid, first, last, lso))
    for key in aborts:
        if key not in indexed:
            raise ValidationError(part.directory, None, f"ABORT marker of producer {key[0]} at "
                                  f"offset {key[1]} has no .txnindex entry")


def validate_partition(directory, logs: list, allow_gaps: bool = False,
                       index_slack: bool = False) -> Partition:
    directory = Path(directory)
    part = Partition(directory=directory)
    log_names = {p.name for p in logs}
    # Orphan index files (only judged when the whole directory is being validated, i.e. when
    # every .log in it is in `logs`).
    all_logs = {q.name for q in directory.glob("*.log")}
    if all_logs <= log_names:
        for q in sorted(directory.iterdir()):
            m = SEGMENT_NAME.match(q.name)
            if m and m.group(2) != "log" and f"{m.group(1)}.log" not in all_logs:
                raise ValidationError(q, None, f"{m.group(2)} file without its segment "
                                      f"{m.group(1)}.log")
    expected_next = None
    for log in logs:
        seg = read_segment(log, allow_gaps, expected_next, partition_dir=str(directory))
        stem = log.name[:-len(".log")]
        idx = log.with_name(stem + ".index")
        tidx = log.with_name(stem + ".timeindex")
        if idx.exists():
            seg.has_index = True
            seg.index_entries = check_index(idx, seg, index_slack)
        if tidx.exists():
            seg.has_timeindex = True
            seg.timeindex_entries = check_timeindex(tidx, seg, index_slack)
        if seg.last_offset is not None:
            expected_next = seg.last_offset + 1
        elif expected_next is None or seg.base_offset > expected_next:
            # An empty segment: the next data starts at (or after, with gaps) its name.
            if expected_next is not None and not allow_gaps:
                raise ValidationError(log, None, f"empty segment named {seg.base_offset} leaves a "
                                      f"gap after offset {expected_next - 1}")
            expected_next = seg.base_offset
        part.segments.append(seg)
    _check_transactions(part)
    return part


def validate(paths, allow_gaps: bool = False, index_slack: bool = False) -> list:
    """Validate everything under `paths`; return one `Partition` per directory of segments.
    Raises `ValidationError` at the first problem."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    return [validate_partition(d, logs, allow_gaps, index_slack)
            for d, logs in find_segments(paths).items()]


def read_records(paths, allow_gaps: bool = False, index_slack: bool = False) -> list:
    """All records under `paths` (validated), partition by partition in offset order."""
    return [r for p in validate(paths, allow_gaps, index_slack) for r in p.records]


def committed_records(paths, allow_gaps: bool = False, index_slack: bool = False) -> list:
    """The records a read_committed consumer gets, partition by partition in offset order."""
    out = []
    for p in validate(paths, allow_gaps, index_slack):
        fate = {}
        for pid, ts in p.transactions.items():
            for first, marker, how in ts:
                fate[(pid, first)] = how
        first_of: dict = {}
        for r in p.records:
            if r.control:
                first_of.pop(r.producer_id, None)
                continue
            if r.transactional:
                first = first_of.setdefault(r.producer_id, r.offset)
                if fate.get((r.producer_id, first)) != "commit":
                    continue
            out.append(r)
    return out


def dump_lines(records) -> Iterable[str]:
    for r in records:
        yield json.dumps(r.to_dump(), ensure_ascii=False)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="kafka_validate",
                                 description="Validate Kafka log segments with kafka-python.")
    ap.add_argument("paths", nargs="+", metavar="PATH")
    ap.add_argument("--allow-gaps", action="store_true",
                    help="allow offset gaps between and inside batches (compacted logs)")
    ap.add_argument("--index-slack", action="store_true",
                    help="ignore trailing all-zero (pre-allocated) index entries")
    ap.add_argument("--dump", action="store_true", help="print one JSON line per record")
    ap.add_argument("-q", "--quiet", action="store_true", help="print nothing when valid")
    args = ap.parse_args(argv)
    try:
        parts = validate(args.paths, args.allow_gaps, args.index_slack)
    except ValidationError as e:
        print(f"kafka_validate: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"kafka_validate: {e}", file=sys.stderr)
        return 1
    if not parts:
        print("kafka_validate: no .log segments found under " + " ".join(args.paths),
              file=sys.stderr)
        return 1
    if args.dump:
        out = sys.stdout
        for p in parts:
            for line in dump_lines(p.records):
                out.write(line + "\n")
        out.flush()
    elif not args.quiet:
        nseg = sum(len(p.segments) for p in parts)
        nbatch = sum(len(p.batches) for p in parts)
        nrec = sum(len(p.records) for p in parts)
        print(f"ok: {len(parts)} partition(s), {nseg} segment(s), {nbatch} batch(es), "
              f"{nrec} record(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
