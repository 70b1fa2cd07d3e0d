"""mq-mirror: local topics forwarded to a real NATS JetStream server, exactly once.

A `nats-server -js` (Debian package, installed by scripts/setup.sh) is started on 127.0.0.1 for
each test, with its store in the test's temporary directory, and stopped at the end. What the
stream holds is read back with nats-py, a client independent of mq.
"""

import asyncio
import base64
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time

import pytest

import mqtest
from mqtest import assert_error, jline

pytestmark = pytest.mark.skipif(shutil.which("nats-server") is None,
                                reason="nats-server is not installed (scripts/setup.sh installs it)")

nats = pytest.importorskip("nats", reason="nats-py is not installed (scripts/setup.sh installs it)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServer:
    def __init__(self, tmp_path):
        self.port = free_port()
        self.store = tmp_path / "jetstream"
        self.store.mkdir()
        self.log = open(tmp_path / "nats-server.log", "wb")
        self.start()
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    def start(self):
        """(Again) on the same port and store."""
        self.proc = subprocess.Popen(["nats-server", "-js", "-a", "127.0.0.1", "-p", str(self.port),
                                      "-sd", str(self.store)], stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def url(self):
        return f"nats://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class NatsCluster:
    """Three JetStream servers on 127.0.0.1, routed to each other, each with its own store."""

    def __init__(self, tmp_path, size=3):
        self.ports = [free_port() for _ in range(size)]
        self.cluster_ports = [free_port() for _ in range(size)]
        self.dirs = []
        self.procs = [None] * size
        self.logs = []
        for i in range(size):
            d = tmp_path / f"n{i}"
            d.mkdir()
            self.dirs.append(d)
            self.logs.append(open(tmp_path / f"n{i}.log", "ab"))
        for i in range(size):
            self.start(i)
        self.wait_ready()

    def argv(self, i):
        routes = ",".join(f"nats://127.0.0.1:{p}" for j, p in enumerate(self.cluster_ports) if j != i)
        return ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(self.ports[i]), "-sd", str(self.dirs[i]),
                "--server_name", f"n{i}", "--cluster_name", "mqtest",
                "--cluster", f"nats://127.0.0.1:{self.cluster_ports[i]}", "--routes", routes]

    def start(self, i):
        self.procs[i] = subprocess.Popen(self.argv(i), stdout=self.logs[i], stderr=subprocess.STDOUT)

    def kill(self, i):
        self.procs[i].kill()
        self.procs[i].wait(10)

    @property
    def url(self):
        return "nats://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def wait_ready(self, timeout=60):
        """Until JetStream answers with a meta leader (an R3 stream can then be made)."""
        async def probe():
            nc = await nats.connect(f"nats://127.0.0.1:{self.ports[0]}", connect_timeout=1, max_reconnect_attempts=0)
            try:
                await nc.jetstream().account_info()
            finally:
                await nc.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                asyncio.run(probe())
                return
            except Exception:
                time.sleep(0.3)
        raise RuntimeError("the NATS cluster did not become ready")

    def stream_leader(self, stream):
        async def leader():
            nc = await nats.connect(servers=servers_of(self.url))
            try:
                return (await nc.jetstream().stream_info(stream)).cluster.leader
            finally:
                await nc.close()
        return asyncio.run(leader())

    def stop(self):
        for p in self.procs:
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        for log in self.logs:
            log.close()


@pytest.fixture
def server(tmp_path):
    s = NatsServer(tmp_path)
    yield s
    s.stop()


def servers_of(url):
    """mq-mirror's nats://H1:P1,H2:P2 as the list nats-py takes."""
    return [f"nats://{h}" for h in url[len("nats://"):].split(",")]


async def _read(url, stream):
    nc = await nats.connect(servers=servers_of(url))
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            m = await js.get_msg(stream, seq)
            out.append((m.subject, m.data or b"", dict(m.headers or {})))
        return out
    finally:
        await nc.close()


def read_stream(server, stream):
    return asyncio.run(_read(server.url, stream))


def stream_messages(server, stream):
    """How many messages the stream holds (its state, without reading them)."""
    async def count():
        nc = await nats.connect(servers_of(server.url))
        try:
            return (await nc.jetstream().stream_info(stream)).state.messages
        finally:
            await nc.close()
    return asyncio.run(count())


def decode_headers(encoded):
    """Kafka's record header encoding (varint count, then varint-length name and value)."""
    data, pos = base64.b64decode(encoded), 0

    def varint():
        nonlocal pos
        shift = result = 0
        while True:
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return (result >> 1) ^ -(result & 1)
            shift += 7

    def chunk():
        nonlocal pos
        n = varint()
        if n < 0:
            return None
        s = data[pos:pos + n]
        pos += n
        return s

    headers = []
    for _ in range(varint()):
        headers.append((chunk().decode(), chunk()))
    return headers


def expected_records(mq, topic):
    """(partition, offset) -> envelope, as mq-tail reads the local topic."""
    return {(e["partition"], e["offset"]): e for e in mq.tail_json("-n", "+0", topic)}


def check_stream_matches(mq, server, stream, topic, prefix="mq", others=0):
    """The stream holds each record of `topic` once, in partition order, intact; and
    `others` messages of other publishers (on subjects outside PREFIX.TOPIC.)."""
    local = expected_records(mq, topic)
    got = read_stream(server, stream)
    foreign = [m for m in got if not m[0].startswith(f"{prefix}.{topic}.")]
    assert len(foreign) == others, foreign[:5]
    got = [m for m in got if m[0].startswith(f"{prefix}.{topic}.")]
    seen = {}
    last_offset = {}
    for subject, data, headers in got:
        p, o = int(headers["Mq-Partition"]), int(headers["Mq-Offset"])
        assert subject == f"{prefix}.{topic}.{p}"
        assert headers["Mq-Topic"] == topic
        assert headers["Nats-Msg-Id"] == f"{subject}:{o}"
        assert (p, o) not in seen, f"partition {p} offset {o} is in the stream twice"
        assert o > last_offset.get(p, -1), f"partition {p}: offset {o} after {last_offset.get(p)}"
        last_offset[p] = o
        seen[(p, o)] = (data, headers)
    assert set(seen) == set(local), (
        f"missing {sorted(set(local) - set(seen))[:10]}, unexpected {sorted(set(seen) - set(local))[:10]}")
    for k, e in local.items():
        data, headers = seen[k]
        assert int(headers["Mq-Timestamp"]) == e["timestamp"]
        value = e["value"]
        if value is None:
            assert headers.get("Mq-Null-Value") == "true" and data == b""
        else:
            assert data == (base64.b64decode(value["base64"]) if isinstance(value, dict) else value.encode())
        key = e.get("key")
        if key is None:
            assert "Mq-Key" not in headers
        else:
            want = base64.b64decode(key["base64"]) if isinstance(key, dict) else key.encode()
            assert base64.b64decode(headers["Mq-Key"]) == want
        want_headers = [(n, None if v is None else (base64.b64decode(v["base64"]) if isinstance(v, dict) else v.encode()))
                        for n, v in e.get("headers", [])]
        if want_headers:
            assert decode_headers(headers["Mq-Headers"]) == want_headers
        else:
            assert "Mq-Headers" not in headers
    return len(seen)


def mixed_input(n, seed):
    return mqtest.mirror_input(n, seed)


def test_push_forwards_every_message_once_with_keys_headers_and_timestamps(mq, server):
    mq.create("orders", 4)
    mq.produce("orders", mixed_input(3000, 1), "--json")
    res = mq.run("mq-mirror", "-e", "-v", "--create", "orders", f"{server.url}/ORDERS", check=0)
    assert "3000 messages forwarded from 4 partitions" in res.stderr
    assert check_stream_matches(mq, server, "ORDERS", "orders") == 3000
    # Again: nothing new to forward, nothing sent twice.
    res = mq.run("mq-mirror", "-e", "-v", "orders", f"{server.url}/ORDERS", check=0)
    assert "0 messages forwarded" in res.stderr
    mq.produce("orders", mixed_input(500, 2), "--json")
    mq.run("mq-mirror", "-e", "orders", f"{server.url}/ORDERS", check=0)
    assert check_stream_matches(mq, server, "ORDERS", "orders") == 3500
    # Its group shows the mirror's position like any group's.
    stat = mq.run("mq-stat", "--json", check=0)
    groups = {g["group"] for g in json.loads(stat.stdout)["groups"]}
    assert any(g.startswith("mirror.orders.ORDERS.") for g in groups), groups


def test_a_mirror_killed_at_any_moment_forwards_each_message_exactly_once(mq, server, tmp_path):
    """kill -9 while the mirror follows, then more appended and a new mirror; the stream's
    duplicate window is 100 ms (its least) and each restart comes later, so only the resume
    from the stream's last message per subject prevents duplicates."""
    asyncio.run(_add_stream_with_window(server.url, "LOGS", ["mq.>"]))
    mq.create("logs", 3)
    producer_input = mixed_input(20000, 3)
    rng = random.Random(7)
    kills = 0
    lines = producer_input.splitlines(keepends=True)
    step = len(lines) // 10
    for i in range(10):
        mq.produce("logs", b"".join(lines[i * step:(i + 1) * step]), "--json")
        m = mq.start("mq-mirror", "logs", f"{server.url}/LOGS", "--name", "m")
        time.sleep(rng.uniform(0.01, 0.3))
        m.kill()
        kills += 1
        time.sleep(0.15)  # past the duplicate window
    mq.run("mq-mirror", "-e", "logs", f"{server.url}/LOGS", "--name", "m", check=0)
    assert check_stream_matches(mq, server, "LOGS", "logs") == 10 * step


async def _add_stream_with_window(url, name, subjects):
    from nats.js.api import StreamConfig
    nc = await nats.connect(url)
    try:
        await nc.jetstream().add_stream(StreamConfig(name=name, subjects=subjects, duplicate_window=0.1))
    finally:
        await nc.close()


def test_sigterm_stops_with_143_and_the_next_run_goes_on(mq, server):
    mq.create("t", 2)
    mq.produce("t", mixed_input(2000, 4), "--json")
    m = mq.start("mq-mirror", "--create", "t", f"{server.url}/T")
    time.sleep(1.0)
    m.p.send_signal(signal.SIGTERM)
    assert m.p.wait(20) == 143
    mq.run("mq-mirror", "-e", "t", f"{server.url}/T", check=0)
    assert check_stream_matches(mq, server, "T", "t") == 2000


def test_bad_destinations_and_missing_streams(mq, server):
    mq.create("t", 1)
    mq.produce("t", b"a\n")
    res = mq.run("mq-mirror", "-e", "t", f"{server.url}/NOPE")
    assert res.status == 66 and "stream 'NOPE' does not exist" in res.stderr
    for bad in ("nats://127.0.0.1", "nats:///S", "http://x/S", "nats://h/bad.name"):
        res = mq.run("mq-mirror", "-e", "t", bad)
        assert res.status == 64, (bad, res)
    res = mq.run("mq-mirror", "-e", "nosuchtopic", f"{server.url}/S", "--create")
    assert res.status == 66 and "nosuchtopic" in res.stderr


def test_no_server_gives_up_after_the_timeout_with_69(mq):
    mq.create("t", 1)
    mq.produce("t", b"a\n")
    start = time.time()
    res = mq.run("mq-mirror", "-e", "--timeout", "2s", "t", f"nats://127.0.0.1:{free_port()}/S")
    assert res.status == 69, res
    assert time.time() - start < 30


def test_two_mirrors_of_one_name_do_not_run_at_once(mq, server):
    mq.create("t", 1)
    mq.produce("t", b"a\n")
    first = mq.start("mq-mirror", "--create", "t", f"{server.url}/T", "--name", "same")
    time.sleep(1.0)
    res = mq.run("mq-mirror", "-e", "t", f"{server.url}/T", "--name", "same")
    assert res.status == 75 and "already running" in res.stderr
    first.kill()


def test_only_mq_mirror_links_the_nats_and_kafka_clients(mq_bin):
    """The core tools link neither libnats nor librdkafka: a machine without them runs them."""
    for tool in mqtest.TOOLS:
        libs = subprocess.run(["ldd", str(mq_bin / tool)], capture_output=True, text=True).stdout
        assert ("libnats" in libs) == (tool == "mq-mirror"), f"{tool}: {libs}"
        assert ("librdkafka" in libs) == (tool == "mq-mirror"), f"{tool}: {libs}"


def test_store_and_forward_while_the_server_is_down(mq, tmp_path):
    """The server stops while a mirror follows; producers go on appending; the server comes
    back (same store, same port) and the running mirror catches up, nothing lost or doubled.
    The outage lasts MQ_MIRROR_OUTAGE_S seconds (default 1.5; issue 13's full run: 30)."""
    outage = float(os.environ.get("MQ_MIRROR_OUTAGE_S", "1.5"))
    s = NatsServer(tmp_path)
    try:
        mq.create("sf", 2)
        mq.produce("sf", mixed_input(1000, 5), "--json")
        m = mq.start("mq-mirror", "--create", "sf", f"{s.url}/SF")
        def stored():
            try:
                return len(read_stream(s, "SF"))
            except Exception:  # not created yet, or the server is restarting
                return 0

        deadline = time.time() + 30
        while time.time() < deadline and stored() < 1000:
            time.sleep(0.1)
        s.proc.terminate()
        s.proc.wait(10)
        for seed in range(6, 9):  # appended while the server is down
            mq.produce("sf", mixed_input(500, seed), "--json")
            time.sleep(outage / 3)
        assert m.running, "the mirror ended while the server was down"
        s.start()
        deadline = time.time() + 60
        count = 0
        while time.time() < deadline:
            count = stored()
            if count >= 2500:
                break
            time.sleep(0.3)
        assert count == 2500, f"{count} messages in the stream after the server came back"
        m.p.send_signal(signal.SIGTERM)
        assert m.p.wait(20) == 143
        assert check_stream_matches(mq, s, "SF", "sf") == 2500
    finally:
        s.stop()


def test_push_to_a_three_node_cluster_through_mirror_kills_and_a_leader_loss(mq, tmp_path):
    """An R3 stream on three servers. The mirror follows while producers append; it is killed
    with -9 ten times at random moments, and once the stream's leader server is killed and
    restarted. Every message is in the stream once, in partition order, intact. The full-size
    run of issue 13: MQ_MIRROR_MESSAGES=500000 MQ_MIRROR_KILLS=20 (docs/MIRROR.md)."""
    cluster = NatsCluster(tmp_path)
    try:
        mq.create("c", 4)
        n = int(os.environ.get("MQ_MIRROR_MESSAGES", "20000"))
        data = mixed_input(n, 11).splitlines(keepends=True)
        rng = random.Random(12)
        rounds = int(os.environ.get("MQ_MIRROR_KILLS", "10"))
        step = n // rounds
        m = None
        for i in range(rounds):
            mq.produce("c", b"".join(data[i * step:(i + 1) * step]), "--json")
            args = ["c", f"{cluster.url}/C", "--name", "c3", "--timeout", "120s"]
            if i == 0:
                args = ["--create", "--replicas", "3"] + args
            m = mq.start("mq-mirror", *args)
            time.sleep(rng.uniform(0.05, 0.5))
            if i == rounds // 2:
                leader = cluster.stream_leader("C")
                victim = int(leader[1:])
                cluster.kill(victim)
                time.sleep(rng.uniform(0.5, 2.0))
                cluster.start(victim)
            m.kill()
        cluster.wait_ready()
        res = mq.run("mq-mirror", "-e", "c", f"{cluster.url}/C", "--name", "c3", "--timeout", "120s", timeout=180)
        assert res.status == 0, res.stderr
        got = check_stream_matches(mq, cluster, "C", "c")
        assert got == rounds * step
    finally:
        cluster.stop()


async def _stream_config(url, name, **changes):
    """Adds the stream (subjects mq.>) or changes its settings."""
    from nats.js.api import StreamConfig
    from nats.js.errors import NotFoundError
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        try:
            config = (await js.stream_info(name)).config
            for k, v in changes.items():
                setattr(config, k, v)
            await js.update_stream(config)
        except NotFoundError:
            await js.add_stream(StreamConfig(name=name, subjects=["mq.>"], **changes))
    finally:
        await nc.close()


def stream_offsets(server, stream):
    """The Mq-Offset of each message, in stream order."""
    return [int(h["Mq-Offset"]) for _, _, h in read_stream(server, stream)]


@pytest.mark.parametrize("shared", [False, True], ids=["chained", "shared-stream"])
def test_a_message_refused_inside_a_chunk_is_stored_before_the_later_ones(mq, server, shared):
    """A deterministic failure inside one chunk: the stream refuses one message (larger than
    its max_msg_size) and takes the others as they come. Chained (the default), nothing
    after the refused message is stored, and once the stream takes it (the limit raised)
    the rest follows in order. With --shared-stream (unchained) the later messages are
    stored first and the resend puts the refused one after them: the gap the chain closes."""
    asyncio.run(_stream_config(server.url, "BIG", max_msg_size=2048))
    mq.create("big", 1)
    lines = [f"v{i}" for i in range(300)]
    lines[100] = "x" * 4000
    mq.produce("big", ("\n".join(lines) + "\n").encode())
    m = mq.start("mq-mirror", "big", f"{server.url}/BIG", "--name", "b", *(["--shared-stream"] if shared else []))
    assert m.err.wait_for(lambda e: b"retrying" in e, 30), m.err.snapshot()
    assert stream_messages(server, "BIG") == (299 if shared else 100)
    asyncio.run(_stream_config(server.url, "BIG", max_msg_size=-1))
    deadline = time.time() + 30
    while time.time() < deadline and stream_messages(server, "BIG") < 300:
        time.sleep(0.1)
    m.p.send_signal(signal.SIGTERM)
    assert m.p.wait(20) == 143
    offsets = stream_offsets(server, "BIG")
    if shared:
        assert offsets == list(range(100)) + list(range(101, 300)) + [100]
    else:
        assert offsets == list(range(300))
        assert check_stream_matches(mq, server, "BIG", "big") == 300


def test_the_chain_goes_on_after_the_server_forgot_its_last_message_id(mq, server):
    """A server restarted after its duplicate window (here 100 ms) no longer knows the id
    of its last message and refuses a publish that names it; the mirror reads the stream
    again, anchors on its last sequence and goes on, in order and once."""
    asyncio.run(_add_stream_with_window(server.url, "FORGET", ["mq.>"]))
    mq.create("f", 2)
    mq.produce("f", mixed_input(500, 21), "--json")
    m = mq.start("mq-mirror", "f", f"{server.url}/FORGET", "--name", "f")
    deadline = time.time() + 30
    while time.time() < deadline and stream_messages(server, "FORGET") < 500:
        time.sleep(0.1)
    server.proc.terminate()
    server.proc.wait(10)
    server.start()
    time.sleep(0.5)
    mq.produce("f", mixed_input(500, 22), "--json")
    assert m.err.wait_for(lambda e: b"wrong last msg ID" in e, 30), m.err.snapshot()
    deadline = time.time() + 30
    while time.time() < deadline and stream_messages(server, "FORGET") < 1000:
        time.sleep(0.1)
    m.p.send_signal(signal.SIGTERM)
    assert m.p.wait(20) == 143
    assert check_stream_matches(mq, server, "FORGET", "f") == 1000


def test_another_publisher_between_two_chunks_breaks_the_chain_and_the_mirror_follows_it(mq, server):
    """A message of another publisher lands between two of the mirror's chunks: the next
    chunk's first message names the mirror's own last one and is refused; the mirror
    anchors after the other message and goes on, each of its messages once and in order."""
    mq.create("o", 2)
    mq.produce("o", mixed_input(500, 23), "--json")
    m = mq.start("mq-mirror", "--create", "o", f"{server.url}/O", "--name", "o")
    deadline = time.time() + 30
    while time.time() < deadline and _count_or_zero(server, "O") < 500:
        time.sleep(0.1)

    async def publish():
        nc = await nats.connect(server.url)
        try:
            await nc.jetstream().publish("mq.elsewhere", b"not the mirror's")
        finally:
            await nc.close()
    asyncio.run(publish())
    mq.produce("o", mixed_input(500, 24), "--json")
    deadline = time.time() + 30
    while time.time() < deadline and stream_messages(server, "O") < 1001:
        time.sleep(0.1)
    m.p.send_signal(signal.SIGTERM)
    assert m.p.wait(20) == 143
    assert b"wrong last msg ID" in m.err.snapshot()
    assert check_stream_matches(mq, server, "O", "o", others=1) == 1000


def _count_or_zero(server, stream):
    try:
        return stream_messages(server, stream)
    except Exception:  # not created yet
        return 0


def test_retention_keeps_what_the_mirror_has_not_forwarded(mq, server):
    """Old messages past retention.ms that the mirror has not forwarded stay until it has."""
    mq.create("r", 1, "segment.bytes=1024", "retention.ms=3600000")
    old = int(time.time() * 1000) - 86_400_000
    first = b"".join(jline(f"a{i}", timestamp=old) for i in range(100))
    mq.produce("r", first, "--json", "--batch-messages", "5")
    mq.run("mq-mirror", "-e", "--create", "r", f"{server.url}/R", check=0)
    mq.produce("r", b"".join(jline(f"b{i}", timestamp=old) for i in range(200)), "--json", "--batch-messages", "5")
    mq.produce("r", b"".join(jline(f"c{i}") for i in range(10)), "--json")
    mq.run("mq-compact", "r", check=0)
    kept = [e["offset"] for e in mq.tail_json("-n", "+0", "r")]
    assert kept[0] <= 100, f"retention deleted offsets up to {kept[0]}, which the mirror had not forwarded"
    mq.run("mq-mirror", "-e", "r", f"{server.url}/R", check=0)
    stream = read_stream(server, "R")
    assert [int(h["Mq-Offset"]) for _, _, h in stream] == list(range(310))
    # Forwarded: now retention may take them.
    mq.run("mq-compact", "r", check=0)
    assert mq.tail_json("-n", "+0", "r")[0]["offset"] > 100


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_unit_verifies(mq_bin, tmp_path):
    """contrib/systemd/mq-mirror@.service as shipped, with ExecStart pointing at the binary
    under test: systemd-analyze finds nothing wrong (but the man page not being installed)."""
    unit = (mqtest.REPO / "contrib" / "systemd" / "mq-mirror@.service").read_text()
    assert "ExecStart=/usr/local/bin/mq-mirror --name %i $MQ_MIRROR_ARGS" in unit
    path = tmp_path / "mq-mirror@t.service"
    path.write_text(unit.replace("/usr/local/bin/mq-mirror", str(mq_bin / "mq-mirror")))
    p = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (p.stdout + p.stderr).splitlines() if line.strip() and "man mq-mirror" not in line]
    assert not problems, problems
    # The statuses it treats as clean or as not worth a restart are mq-mirror's.
    import re
    documented = {int(n) for n in re.findall(r"^\.It (\d+)\s*$", (mqtest.REPO / "man" / "mq-mirror.1").read_text(), re.M)}
    for key in ("SuccessExitStatus", "RestartPreventExitStatus"):
        codes = {int(c) for c in re.search(rf"^{key}=(.*)$", unit, re.M).group(1).split()}
        assert codes <= documented, (key, codes - documented)


def test_a_following_mirror_picks_up_topics_that_match_later(mq, server):
    """Patterns: topics created while the mirror follows are forwarded from their beginning."""
    mq.create("app.a", 2)
    mq.produce("app.a", b"a1\na2\n")
    m = mq.start("mq-mirror", "--create", "app\\..*", f"{server.url}/APP")

    def forwarded(n):
        deadline = time.time() + 30
        topics = []
        while time.time() < deadline:
            try:
                topics = sorted(h["Mq-Topic"] for _, _, h in read_stream(server, "APP"))
            except Exception:  # the stream is not made yet
                topics = []
            if len(topics) >= n:
                break
            time.sleep(0.2)
        return topics

    assert forwarded(2) == ["app.a"] * 2  # the mirror runs: what follows is new to it
    mq.create("app.b", 1)
    mq.produce("app.b", b"b1\nb2\nb3\n")
    mq.create("other", 1)
    mq.produce("other", b"x\n")
    topics = forwarded(5)
    m.p.send_signal(signal.SIGTERM)
    assert m.p.wait(20) == 143
    assert topics == ["app.a"] * 2 + ["app.b"] * 3
    # With -e and nothing matching, it is an error, not a wait.
    res = mq.run("mq-mirror", "-e", "nothing\\..*", f"{server.url}/APP")
    assert res.status == 66


def test_memory_stays_flat_whatever_the_backlog(mq, server):
    """Issue 13: the mirror's resident memory is bounded by its chunk (10,000 records or
    8 MiB of values) and its client's buffers, not by the backlog: forwarding 150 MB holds
    about what forwarding 30 MB does, and under 64 MiB. The peak is the process's own
    VmHWM, read while it runs (a child's ru_maxrss would count this test's memory from
    before the exec)."""
    value = b"v" * 1000
    peaks = {}
    for n in (30_000, 150_000):
        topic = f"rss{n}"
        mq.create(topic, 4)
        mq.produce(topic, b"".join(b"k%d %s\n" % (i, value) for i in range(n)), "-K", " ")
        argv = mq.argv("mq-mirror", ["-e", "--create", "--subject-prefix", f"p{n}", "--name", topic, topic,
                                     f"{server.url}/S{n}"])
        p = subprocess.Popen(argv, env=mq.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        peak = 0
        while p.poll() is None:
            try:
                status = open(f"/proc/{p.pid}/status").read()
            except OSError:
                break
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))  # KiB
            time.sleep(0.02)
        assert p.wait(60) == 0, p.stderr.read()
        assert stream_messages(server, f"S{n}") == n
        peaks[n] = peak
    small, large = peaks[30_000], peaks[150_000]
    assert 0 < small and large <= 64 * 1024, f"peak resident memory forwarding 30 and 150 MB: {peaks} KiB"
    assert large <= small * 1.25 + 4096, f"peak resident memory grew with the backlog: {peaks} KiB"


def test_rate_spaces_the_messages_and_progress_shows_only_at_a_terminal(mq, server):
    """--rate as in mq-replay (a lower bound on the time, not a speed target); the progress
    line is drawn only when standard error is a terminal, and erased at the end."""
    mq.create("rt", 2)
    mq.produce("rt", b"".join(b"k%d m%d\n" % (i, i) for i in range(200)), "-K", " ")
    started = time.monotonic()
    res = mq.run("mq-mirror", "-e", "--create", "--rate", "100/s", "rt", f"{server.url}/RT", check=0)
    took = time.monotonic() - started
    assert res.status == 0 and res.stderr == "", res
    assert stream_messages(server, "RT") == 200
    assert took >= 1.5, f"200 messages at 100/s took {took:.2f} s"
    assert_error(mq.run("mq-mirror", "-e", "--rate", "fast", "rt", f"{server.url}/RT"), 64, "mq-mirror", "--rate")
    # A terminal on standard error: a progress line.
    mq.produce("rt", b"".join(b"k%d n%d\n" % (i, i) for i in range(200)), "-K", " ")
    status, _, seen = mqtest.run_with_terminal_stderr(mq.argv("mq-mirror", ["-e", "--rate", "400/s", "rt", f"{server.url}/RT"]),
                                                     mq.env())
    assert status == 0, seen
    assert b"mq-mirror: " in seen and b" forwarded" in seen and seen.endswith(b"\r\x1b[K"), seen
    assert stream_messages(server, "RT") == 400
