#!/usr/bin/env python3
"""Writes the compression fixtures in this directory.

payload.bin is a fixed, deterministic payload (70 KiB: log-like text lines and a
stretch of pseudo-random bytes), large enough to span several snappy (32 KiB) and
lz4 (64 KiB) blocks. Each <codec>.bin is payload.bin compressed by kafka-python's
codec module (kafka.codec), an implementation independent of mq's:

    gzip.bin     kafka.codec.gzip_encode
    snappy.bin   kafka.codec.snappy_encode (xerial framing, 32 KiB blocks)
    lz4.bin      kafka.codec.lz4_encode (LZ4 frame with content size)
    zstd.bin     kafka.codec.zstd_encode

The other files are shapes a decoder must also take, made with the libraries
kafka-python builds on (gzip, python-snappy, lz4, zstandard):

    gzip-multimember.bin     two gzip members back to back
    snappy-raw.bin           one bare snappy block, no xerial framing
    snappy-concatenated.bin  two xerial streams back to back
    lz4-checksums.bin        linked 256 KiB blocks, block and content checksums, no content size
    zstd-streamed.bin        two streamed frames without content size, the second with a checksum

Run from anywhere: python3 make_fixtures.py
"""
import gzip
import io
import os

import kafka.codec as codec
import lz4.frame
import snappy
import zstandard

HERE = os.path.dirname(os.path.abspath(__file__))


def make_payload():
    state = 0x2545F491

    def rand():
        nonlocal state
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        return state >> 33

    levels = ["INFO", "INFO", "INFO", "WARN", "DEBUG", "ERROR"]
    paths = ["/api/v1/items", "/api/v1/users", "/healthz", "/api/v2/orders", "/static/app.js"]
    out = io.BytesIO()
    line = 0
    while out.tell() < 66 * 1024:
        r = rand()
        out.write(
            "2024-05-01T12:{:02d}:{:02d}Z host-{} {} req={} path={}/{} status={}\n".format(
                (line // 60) % 60, line % 60, r % 4, levels[r % len(levels)], 100000 + line,
                paths[rand() % len(paths)], rand() % 100, [200, 200, 200, 404, 500][rand() % 5],
            ).encode()
        )
        line += 1
    out.write(bytes(rand() & 0xFF for _ in range(4 * 1024)))
    return out.getvalue()


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def main():
    payload = make_payload()
    half = len(payload) // 2
    write("payload.bin", payload)

    write("gzip.bin", codec.gzip_encode(payload))
    write("snappy.bin", codec.snappy_encode(payload, xerial_compatible=True, xerial_blocksize=32 * 1024))
    write("lz4.bin", codec.lz4_encode(payload))
    write("zstd.bin", codec.zstd_encode(payload))

    write("gzip-multimember.bin", gzip.compress(payload[:half], mtime=0) + gzip.compress(payload[half:], mtime=0))
    write("snappy-raw.bin", snappy.compress(payload))
    write("snappy-concatenated.bin", codec.snappy_encode(payload[:half]) + codec.snappy_encode(payload[half:]))
    write("lz4-checksums.bin", lz4.frame.compress(
        payload, block_size=lz4.frame.BLOCKSIZE_MAX256KB, block_linked=True,
        content_checksum=True, block_checksum=True, store_size=False))

    def streamed(data, checksum):
        sink = io.BytesIO()
        compressor = zstandard.ZstdCompressor(level=3, write_checksum=checksum, write_content_size=False)
        with compressor.stream_writer(sink, closefd=False) as writer:
            for i in range(0, len(data), 16 * 1024):
                writer.write(data[i:i + 16 * 1024])
        return sink.getvalue()

    write("zstd-streamed.bin", streamed(payload[:half], False) + streamed(payload[half:], True))


if __name__ == "__main__":
    main()
