#!/usr/bin/env python3
"""Checks that another implementation reads what mq compresses.

Usage: check_decode.py DIR

For every DIR/<name>.payload and codec in gzip, snappy, lz4, zstd, decodes
DIR/<name>.<codec> (when present) with kafka-python's codec module (kafka.codec)
and compares it with the payload. Prints one line per check; exits 0 when all
match, 1 on any mismatch or decoding error, 2 when there was nothing to check.
"""
import os
import sys

import kafka.codec as codec

DECODERS = {
    "gzip": codec.gzip_decode,
    "snappy": codec.snappy_decode,
    "lz4": codec.lz4_decode,
    "zstd": codec.zstd_decode,
}


def main():
    if len(sys.argv) != 2:
        print("usage: check_decode.py DIR", file=sys.stderr)
        return 2
    directory = sys.argv[1]
    checked = failed = 0
    for entry in sorted(os.listdir(directory)):
        if not entry.endswith(".payload"):
            continue
        name = entry[: -len(".payload")]
        with open(os.path.join(directory, entry), "rb") as f:
            payload = f.read()
        for codec_name, decode in DECODERS.items():
            path = os.path.join(directory, "{}.{}".format(name, codec_name))
            if not os.path.exists(path):
                continue
            with open(path, "rb") as f:
                compressed = f.read()
            checked += 1
            try:
                decoded = decode(compressed)
            except Exception as error:  # any decoder failure is a failed check
                failed += 1
                print("FAIL {}.{}: {}: {}".format(name, codec_name, type(error).__name__, error))
                continue
            if decoded != payload:
                failed += 1
                print("FAIL {}.{}: decoded {} bytes, expected {} ({})".format(
                    name, codec_name, len(decoded), len(payload),
                    "different content" if len(decoded) == len(payload) else "different size"))
            else:
                print("ok   {}.{} ({} -> {} bytes)".format(name, codec_name, len(compressed), len(payload)))
    if checked == 0:
        print("nothing to check in {}".format(directory), file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
