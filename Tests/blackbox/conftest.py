"""Fixtures for the black-box tests of mq-produce, mq-tail and mq-topic.

Binaries come from $MQ_BIN (a directory), else <repo>/.build/release, else .build/debug.
Each test gets `mq`: a fresh log directory (passed to every tool as `--dir` and as $MQ_DIR)
with `mq.run(tool, *args, input=bytes, check=None) -> (status, stdout bytes, stderr text)`
and helpers that read the result back with kafka-python (Tests/interop/kafka_validate.py).
"""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mqtest  # noqa: E402


@pytest.fixture(scope="session")
def mq_bin() -> Path:
    found = mqtest.find_bin_dir()
    if found is None:
        where = os.environ.get("MQ_BIN") or f"{mqtest.REPO}/.build/release or .build/debug"
        pytest.fail(f"mq binaries {', '.join(mqtest.TOOLS)} not found in {where}: build them "
                    "(swift build -c release) or point MQ_BIN at their directory")
    return found


@pytest.fixture
def mq(mq_bin, tmp_path):
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    m = mqtest.MQ(mq_bin, log_dir)
    yield m
    m.cleanup()


@pytest.fixture
def run(mq):
    """`run(tool, *args, input=b"", check=None) -> (status, stdout, stderr)` in mq's dir."""
    return mq.run


@pytest.fixture
def validate(mq):
    """`validate(topic) -> [Partition]` with kafka-python; fails the test if invalid."""
    return mq.validate
