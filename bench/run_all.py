#!/usr/bin/env python3
"""Run every benchmark of bench/ one after the other (`make bench`).

Each benchmark measures its own anchor in the same run (nbdkit's C file or curl
plugin, nginx) and records its figures in bench/RESULTS.md.  --quick passes the
smaller settings for a smoke run of a minute or two.
"""

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

FULL = {
    "bench_hexz.py": [],
    "bench_server.py": [],
    "bench_multihttp.py": [],
    "bench_s3.py": [],
    "bench_remote.py": [],
    "perf_hexz.py": [],
}
QUICK = {
    "bench_hexz.py": ["--quick", "--no-results"],
    "bench_server.py": ["--size-mib", "64", "--runs", "3", "--no-record"],
    "bench_multihttp.py": ["--size", "64M", "--repeat", "1", "--seconds", "1", "--no-results"],
    "bench_s3.py": ["--size-mib", "32", "--runs", "2", "--ranges", "32", "--no-record"],
    "bench_remote.py": ["--size", "64M", "--small-size", "32M", "--runs", "2", "--no-results"],
}
# perf_hexz.py needs the full-size images and perf; it has no quick form.


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small settings, RESULTS.md untouched")
    ap.add_argument("only", nargs="*", help="benchmark scripts to run (default: all)")
    args = ap.parse_args()
    plan = QUICK if args.quick else FULL
    failed = []
    for script, extra in plan.items():
        if args.only and script not in args.only:
            continue
        print(f"\n### {script} {' '.join(extra)}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script), *extra]).returncode != 0:
            failed.append(script)
    if not args.quick:
        # The picture of RESULTS.md's ratios, redrawn from what was just recorded.
        subprocess.run([sys.executable, str(HERE / "plot.py")], check=False)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
