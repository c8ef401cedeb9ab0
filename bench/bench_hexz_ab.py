#!/usr/bin/python3
"""A/B benchmark of the hexz plugin: two configurations, runs alternated A B A B.

    .venv/bin/python bench/bench_hexz_ab.py --b-params verify=hash         # cost of hashing
    .venv/bin/python bench/bench_hexz_ab.py --a-plugin OLD/plugins/hexz.py  # before/after

Both configurations serve the same images (bench_hexz.py's large-block and small-block LZ4
archives, generated into --workdir when missing); each run is one sequential ``nbdcopy URI
null:``.  Alternating the runs spreads the machine's drift over both sides.  Reported per
image and side: the median wall time and its spread (min-max over the runs), throughput, and
the nbdkit process's CPU-seconds per GiB (user+system from /proc), which is far less noisy
than wall time on a shared machine.  Prints a Markdown table; writes nothing else.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import bench_hexz  # noqa: E402
import hexz_measure as hm  # noqa: E402

from nbdsuite.sizes import parse_size  # noqa: E402

GiB = 1 << 30


def measure(work: Path, archive: Path, sides: dict[str, tuple[list[str], list[str]]],
            runs: int) -> dict[str, tuple[list[float], list[float]]]:
    """(wall seconds, CPU seconds) per run for each side (plugin argv, nbdkit options),
    runs alternated."""
    servers = {name: hm.NbdkitServer(work, f"ab-{name}", argv, opts)
               for name, (argv, opts) in sides.items()}
    out: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in sides}
    try:
        for srv in servers.values():       # one warm-up run each (page cache, imports)
            hm.nbdcopy_seconds(srv.uri)
        for r in range(runs):
            for name, srv in servers.items():
                c0 = srv.cpu_seconds()
                out[name][0].append(hm.nbdcopy_seconds(srv.uri))
                out[name][1].append(srv.cpu_seconds() - c0)
            bench_hexz.log(f"  {archive.name} run {r + 1}/{runs}: " + ", ".join(
                f"{n}={v[0][-1]:.2f}s" for n, v in out.items()))
    finally:
        for srv in servers.values():
            srv.stop()
    return out


def table(rows: list[tuple[str, str, int, list[float], list[float]]]) -> str:
    lines = ["| image | side | median s | spread s | MB/s | nbdkit CPU s/GiB (median) |",
             "|---|---|---|---|---|---|"]
    for image, side, size, walls, cpus in rows:
        m = statistics.median(walls)
        lines.append(f"| {image} | {side} | {m:.3f} | {min(walls):.3f}-{max(walls):.3f} | "
                     f"{size / m / 1e6:.0f} | {statistics.median(cpus) * GiB / size:.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", default=str(REPO / "bench" / "work"))
    ap.add_argument("--size", default="1G", help="large-block image size (default 1G)")
    ap.add_argument("--small-size", default="256M", help="small-block image size")
    ap.add_argument("--runs", type=int, default=5, help="runs per side and image (>= 5)")
    ap.add_argument("--a-plugin", default=hm.PLUGIN)
    ap.add_argument("--b-plugin", default=hm.PLUGIN)
    ap.add_argument("--a-params", nargs="*", default=[], help="plugin parameters of side A")
    ap.add_argument("--b-params", nargs="*", default=[], help="plugin parameters of side B")
    ap.add_argument("--a-nbdkit", nargs="*", default=[], help="nbdkit options of side A, "
                    "given as --a-nbdkit=--filter=readahead")
    ap.add_argument("--b-nbdkit", nargs="*", default=[], help="nbdkit options of side B")
    args = ap.parse_args()
    work = Path(args.workdir).resolve()
    paths = bench_hexz.prepare(work, parse_size(args.size, "--size"),
                               parse_size(args.small_size, "--small-size"),
                               parse_size(bench_hexz.DEFAULT_SIZES["sparse_size"], "sparse"))
    # a plugin is named by its checkout's folder, so two trees tell apart
    label = {"A": " ".join([*args.a_nbdkit, Path(args.a_plugin).resolve().parents[1].name,
                            *args.a_params]),
             "B": " ".join([*args.b_nbdkit, Path(args.b_plugin).resolve().parents[1].name,
                            *args.b_params])}
    rows = []
    for image in ("large", "small"):
        archive = paths[f"{image}.lz4.hxz"]
        sides = {"A": (["python", args.a_plugin, f"file={archive}", *args.a_params],
                       args.a_nbdkit),
                 "B": (["python", args.b_plugin, f"file={archive}", *args.b_params],
                       args.b_nbdkit)}
        got = measure(work, archive, sides, args.runs)
        size = paths[f"{image}.img"].stat().st_size
        rows += [(f"{image} LZ4", f"{s}: {label[s]}", size, *got[s]) for s in ("A", "B")]
    print(table(rows))


if __name__ == "__main__":
    main()
