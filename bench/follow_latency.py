#!/usr/bin/env python3
"""Append-to-delivery latency of `mq-tail -f`.

A long-running `mq-produce --linger 0` reads lines from a pipe; each line
carries the CLOCK_MONOTONIC time (ns) at which this script wrote it. A
`mq-tail -f` on the same topic prints each value; the script reads it back
and records now - then. The figure therefore includes two pipe hops and
Python's own overhead: an upper bound on the log's append-to-delivery time.

usage: follow_latency.py BIN_DIR LOG_DIR [SAMPLES] [INTERVAL_US]
"""
import os, subprocess, sys, time, select

def measure(prod, tail, samples, interval, label):
    lat = []
    pending = b""
    fd = tail.stdout.fileno()
    for i in range(samples):
        prod.stdin.write(b"%d\n" % time.monotonic_ns())
        deadline = time.monotonic() + 2
        got = False
        while not got:
            r, _, _ = select.select([fd], [], [], max(0, deadline - time.monotonic()))
            if not r:
                sys.exit("no delivery within 2 s: follow is broken")
            pending += os.read(fd, 65536)
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                lat.append(time.monotonic_ns() - int(line))
                got = True
        time.sleep(interval)
    prod.stdin.close(); prod.wait()
    if tail is not prod: tail.terminate()
    tail.wait()
    lat.sort()
    def pct(p): return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] / 1000
    print(f"{label} over {len(lat)} messages (us): p50 {pct(50):.0f}  p90 {pct(90):.0f}  p99 {pct(99):.0f}  p99.9 {pct(99.9):.0f}  max {lat[-1]/1000:.0f}")


def main():
    bindir, logdir = sys.argv[1], sys.argv[2]
    samples = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    interval = (int(sys.argv[4]) if len(sys.argv) > 4 else 500) / 1e6
    env = dict(os.environ, MQ_DIR=logdir)
    topic = "latency"
    # The harness alone: the same two pipe hops through cat, no log.
    cat = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    measure(cat, cat, samples, interval, "harness only (pipe -> cat -> pipe)")
    subprocess.run([f"{bindir}/mq-topic", "create", topic, "--if-not-exists"], env=env, check=True)
    tail = subprocess.Popen([f"{bindir}/mq-tail", "-f", "-n", "0", topic], env=env, stdout=subprocess.PIPE, bufsize=0)
    prod = subprocess.Popen([f"{bindir}/mq-produce", "--linger", "0", "--sync", "none", topic], env=env, stdin=subprocess.PIPE, bufsize=0)
    time.sleep(0.5)
    measure(prod, tail, samples, interval, "mq-produce -> log -> mq-tail -f")

main()
