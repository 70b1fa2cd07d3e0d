#!/usr/bin/env python3
"""Rebuild one case of Tests/blackbox/test_mutation.py, to rerun its tools by hand.

    scripts/mutate-repro.py --seed 1 --case header/16 OUT     # writes OUT/log, prints the commands
    scripts/mutate-repro.py --seed 1 --case header/16 --run OUT   # ... and runs them

The source topics are written again with the tools of --bin (default: $MQ_BIN, else
.build/release), then damaged as the test damages them for that seed and case id; OUT/log is
the damaged log directory before any tool ran. The commands are those the test runs, in its
order (the later ones, mq-produce and mq-compact, change the directory).
"""

import argparse
import shlex
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "blackbox"))

import mqtest  # noqa: E402
import test_mutation as tm  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, required=True, help="MQ_MUTATION_SEED of the failing run")
    ap.add_argument("--case", required=True, help="the case id, such as header/16")
    ap.add_argument("--bin", help="directory of the mq binaries")
    ap.add_argument("--run", action="store_true", help="run the tools and show their outcome")
    ap.add_argument("out", help="a directory to create (must not exist)")
    args = ap.parse_args()
    if args.bin:
        import os
        os.environ["MQ_BIN"] = args.bin
    bin_dir = mqtest.find_bin_dir()
    if bin_dir is None:
        print("mutate-repro: no mq binaries (build them, or give --bin)", file=sys.stderr)
        return 69
    out = Path(args.out).resolve()
    if out.exists():
        print(f"mutate-repro: {out} exists", file=sys.stderr)
        return 73
    tm.build_sources(bin_dir, out / "source" / "log")
    source = tm.Source(out / "source" / "log")
    case = tm.make_case(args.seed, args.case, source, out / "log")
    shutil.rmtree(out / "source")
    print(f"seed {args.seed}, case {args.case}: {case.kind} on topic {case.topic}")
    print(f"mutation: {'; '.join(case.notes)}")
    print(f"log directory: {out / 'log'}\n")
    for name, argv, input, devnull in tm.tool_plan(case):
        cmd = " ".join(shlex.quote(a) for a in [str(bin_dir / argv[0])] + argv[1:])
        if input is not None:
            cmd = f"printf %s {shlex.quote(input.decode())} | {cmd}"
        if devnull:
            cmd += " >/dev/null"
        print(f"# {name}\n{cmd}")
        if args.run:
            run = tm.run_tool(bin_dir, name, argv, out / "log", input, devnull)
            verdict = tm.classify(run)
            print(f"  -> exit {run.status}{' (timeout)' if run.timed_out else ''}"
                  f"{': ' + verdict[0] if verdict else ''}; {tm.first_line(run.stderr)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
