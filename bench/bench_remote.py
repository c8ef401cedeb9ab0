#!/usr/bin/python3
"""Benchmark: a Hexz snapshot served from nginx through ``hexz.py url=``.

    .venv/bin/python bench/bench_remote.py [--workdir bench/work-remote] [--size 1G]
           [--small-size 256M] [--runs 5] [--no-results]

Two images, generated at run time and packed with the ``hexz`` package (LZ4): ``large``
(random + text in 1-4 MiB segments, blocks of 64 KiB-1 MiB) and ``small`` (zero runs and
repetitive text, blocks of 1-8 KiB).  nginx on 127.0.0.1 serves the archives and the raw
images.  For each image, in alternating runs (A B C A B C ...), the wall time of
``nbdcopy URI null:`` through:

  hexz.py file=     the local plugin on the same archive (the anchor of the goal >= 0.7x)
  hexz.py url=      the same archive from nginx
  nbdkit curl       the raw image from the same nginx: what a user would do without it
  HTTP client only  the raw image through url='s own HTTP client and read-ahead, with no
                    archive work (bench/http_only_plugin.py): what the transport alone
                    costs this Python process, beside the same bytes through curl's C

and, from nginx's access log, the requests and body bytes each one made per GiB of image.
Per run, the CPU-seconds per GiB of image of the three processes a copy runs through
(nbdkit, nginx's master and workers, nbdcopy; bench/cpumeter.py), and from their sum the
2-core bound: the shortest wall time two cores could reach if nothing else ran, and the
ratio to ``hexz.py file=`` that bound would allow.
Writes the section "remote snapshots (url=)" of bench/RESULTS.md unless --no-results.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import cpumeter  # noqa: E402
import hexz_data  # noqa: E402
import hexz_measure as hm  # noqa: E402
import results  # noqa: E402
from slowlink import SlowLink  # noqa: E402

from nbdsuite.launch import NginxProcess  # noqa: E402
from nbdsuite.sizes import parse_size  # noqa: E402

SECTION = "## remote snapshots (url=)"
NOTE = ("On loopback the wire is not the limit: the copy is CPU-bound on this machine's 2 "
        "cores, shared by nbdkit, nginx and nbdcopy, and each configuration reaches about the "
        "same share of its 2-core bound, so x local follows CPU x local. `url=` costs what its "
        "two parts cost apart (the list above): the transport, which in this Python process "
        "costs about what the same bytes cost through `nbdkit curl`'s C, plus the archive "
        "work that `file=` does too; nginx's sending adds to that. On the nearly "
        "incompressible large image, where `url=` moves as many bytes as the raw image, CPU x "
        "local is therefore the ratio these 2 cores allow however well the parts overlap: "
        "a higher one would need `url=` to cost less than its parts. "
        "Bytes on the wire are the archive's size and no more: compare MiB sent/GiB "
        "with the archive's size; on the small-block image a third of the raw image `nbdkit "
        "curl` moves, so on a link slower than about 3x the decompression speed the "
        "compressible image arrives faster through `url=`. Block status is answered from the "
        "index alone (a small payload whose record carries the BLAKE3 of zeros), so no "
        "payload is fetched for it.")
GiB = 1 << 30
HTTP_ONLY = "HTTP client only (raw image)"
HTTP_ONLY_PLUGIN = REPO / "bench" / "http_only_plugin.py"
C_FILE = "nbdkit file (raw image)"
LOCAL = ("hexz.py file=", C_FILE)
CORES = 2
PARTS = ("nbdkit", "nginx", "nbdcopy")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def prepare(www: Path, size: int, small: int) -> dict[str, int]:
    """Generate and pack the images unless the same ones are already there."""
    import hexz
    www.mkdir(parents=True, exist_ok=True)
    stamp = www / "images.json"
    want = {"large": size, "small": small, "v": 1}
    names = ("large.img", "large.hxz", "small.img", "small.hxz")
    if stamp.exists() and json.loads(stamp.read_text()) == want and \
            all((www / n).exists() for n in names):
        log(f"reusing images in {www}")
    else:
        log("generating images")
        hexz_data.make_large(str(www / "large.img"), size)
        hexz_data.make_small(str(www / "small.img"), small)
        for n in ("large", "small"):
            log(f"packing {n}")
            hexz.pack(str(www / f"{n}.img"), str(www / f"{n}.hxz"), compression="lz4")
        stamp.write_text(json.dumps(want))
    return {n: (www / n).stat().st_size for n in names}


def copy_meter(srv: hm.NbdkitServer, nginx_pid: int, cpu: dict[str, list[float]]
               ) -> Callable[[], float]:
    """One measured copy: returns its wall seconds, appends each part's CPU-seconds to
    ``cpu[part]``."""
    def run() -> float:
        k0, g0 = srv.cpu_seconds(), cpumeter.tree_cpu(nginx_pid)
        wall, copy_cpu = cpumeter.run_child(["nbdcopy", srv.uri, "null:"], timeout=600)
        cpu["nbdkit"].append(srv.cpu_seconds() - k0)
        cpu["nginx"].append(cpumeter.tree_cpu(nginx_pid) - g0)
        cpu["nbdcopy"].append(copy_cpu)
        return wall
    return run


def cpu_cells(cpu: dict[str, list[float]], local: dict[str, list[float]], image: int
              ) -> str:
    """The CPU columns of one row: each part's s/GiB, the 2-core bound (s/GiB) and the
    CPU ratio to file= (file='s CPU-seconds, all parts, over this row's, run by run)."""
    per = {p: [x * GiB / image for x in cpu[p]] for p in PARTS}
    bound = [cpumeter.core_bound(xs, CORES) for xs in zip(*per.values(), strict=True)]
    totals = [sum(xs) for xs in zip(*(cpu[p] for p in PARTS), strict=True)]
    local_totals = [sum(xs) for xs in zip(*(local[p] for p in PARTS), strict=True)]
    return " | ".join([*(results.spread(per[p], "{:.2f}") for p in PARTS),
                       results.spread(bound, "{:.2f}"),
                       results.spread(results.ratios(local_totals, totals), "{:.2f}")])


def decomposition(img: str, cpu: dict[str, dict[str, list[float]]], image: int,
                  archive: int) -> str:
    """url='s nbdkit CPU beside the sum of its two parts measured apart: the transport
    (the HTTP client alone, moving the raw image) and the archive work (file= less nbdkit's
    C file plugin on the raw image, which reads as many bytes and sends the same
    replies)."""
    def med(name: str) -> float:
        return median(cpu[name]["nbdkit"]) * GiB / image
    transport, work = med(HTTP_ONLY), med("hexz.py file=") - med(C_FILE)
    return (f"{img}: `url=` nbdkit CPU {med('hexz.py url='):.2f} s/GiB; its parts measured "
            f"apart: transport {transport:.2f} (HTTP client only, moving the raw image: "
            f"{image / archive:.1f}x the archive's bytes) + archive work {work:.2f} "
            f"(`file=` {med('hexz.py file='):.2f} - C file {med(C_FILE):.2f}) = "
            f"{transport + work:.2f}.")


def traffic(ng: NginxProcess, start: int, path: str) -> tuple[int, int]:
    rows = [r for r in ng.requests()[start:] if r[1] == path]
    return len(rows), sum(r[3] for r in rows)


def slow_link(work: Path, www: Path, sizes: dict[str, int], rate: str, runs: int
              ) -> list[str]:
    """The compressible image over a rate-limited nginx: what a user on a slow link sees,
    where the bytes on the wire, not the CPU, set the speed."""
    ng = NginxProcess(www, work / "nginx-slow", log_requests=False)
    link = SlowLink(ng.port, parse_size(rate, "--link-rate"))
    url = f"http://127.0.0.1:{link.port}/"
    try:
        plugin = ["python", hm.PLUGIN]
        servers = {
            "hexz.py url=": hm.NbdkitServer(
                work / "srv", "slow-url", plugin + [f"url={url}small.hxz"]),
            "nbdkit curl (raw image)": hm.NbdkitServer(
                work / "srv", "slow-curl", ["curl", f"{url}small.img"]),
        }
        try:
            log(f"slow link ({rate}/s per connection): {runs} alternating runs")
            secs = results.alternate(
                {n: (lambda s=s: hm.nbdcopy_seconds(s.uri)) for n, s in servers.items()}, runs)
        finally:
            for srv in servers.values():
                srv.stop()
    finally:
        link.stop()
        ng.stop()
    image = sizes["small.img"]
    curl = secs["nbdkit curl (raw image)"]
    return [f"| {name} | {results.spread([image / x / 1e6 for x in xs], '{:.0f}')} | "
            f"{results.spread(results.ratios(curl, xs), '{:.2f}')} |"
            for name, xs in secs.items()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=str(REPO / "bench" / "work-remote"))
    ap.add_argument("--size", default="1G", help="large image size (default 1G)")
    ap.add_argument("--small-size", default="256M", help="small-block image size")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--link-rate", default="50M",
                    help="bytes per second of the slow link shared by all connections "
                         "(default 50M)")
    ap.add_argument("--link-runs", type=int, default=3, help="0: no slow-link rows")
    ap.add_argument("--images", default="large,small",
                    help="which images to measure (default large,small)")
    ap.add_argument("--no-results", action="store_true", help="leave RESULTS.md alone")
    args = ap.parse_args()
    work = Path(args.workdir)
    www = work / "www"
    sizes = prepare(www, parse_size(args.size, "size"), parse_size(args.small_size, "size"))
    ng = NginxProcess(www, work / "nginx")
    rows = []
    parts: list[str] = []
    try:
        for img in args.images.split(","):
            archive = www / f"{img}.hxz"
            plugin = ["python", hm.PLUGIN]
            servers = {
                "hexz.py file=": hm.NbdkitServer(work / "srv", f"{img}-file",
                                                 plugin + [f"file={archive}"]),
                "hexz.py url=": hm.NbdkitServer(work / "srv", f"{img}-url",
                                                plugin + [f"url={ng.url}{img}.hxz"]),
                "nbdkit curl (raw image)": hm.NbdkitServer(
                    work / "srv", f"{img}-curl", ["curl", f"{ng.url}{img}.img"]),
                C_FILE: hm.NbdkitServer(
                    work / "srv", f"{img}-cfile", ["file", str(www / f"{img}.img")]),
                HTTP_ONLY: hm.NbdkitServer(
                    work / "srv", f"{img}-http", ["python", str(HTTP_ONLY_PLUGIN),
                                                  f"url={ng.url}{img}.img"]),
            }
            try:
                wire: dict[str, tuple[int, int]] = {}
                for name, srv in servers.items():    # one counted warm-up run each
                    start = len(ng.requests())
                    hm.nbdcopy_seconds(srv.uri)
                    path = f"/{img}.img" if "raw image" in name else f"/{img}.hxz"
                    wire[name] = (0, 0) if name in LOCAL else traffic(ng, start, path)
                log(f"{img}: measuring {args.runs} alternating runs")
                cpu = {n: {p: [] for p in PARTS} for n in servers}
                secs = results.alternate(
                    {n: copy_meter(s, ng.proc.pid, cpu[n]) for n, s in servers.items()},
                    args.runs)
            finally:
                for srv in servers.values():
                    srv.stop()
            image = sizes[f"{img}.img"]
            local = secs["hexz.py file="]
            for name, xs in secs.items():
                mbs = [image / x / 1e6 for x in xs]
                ratio = results.ratios(local, xs)
                reqs, sent = wire[name]
                rows.append(f"| {img} | {name} | {results.spread(mbs, '{:.0f}')} | "
                            f"{results.spread(ratio, '{:.2f}')} | "
                            + (f"{reqs * GiB / image:.0f} | {sent * GiB / image / 2**20:.0f} | "
                               if reqs else "- | - | ")
                            + cpu_cells(cpu[name], cpu["hexz.py file="], image) + " |")
                log(rows[-1])
            parts.append(decomposition(img, cpu, image, sizes[f"{img}.hxz"]))
    finally:
        ng.stop()
    link = slow_link(work, www, sizes, args.link_rate, args.link_runs) if args.link_runs \
        else []
    body = "\n".join([
        f"Command: `.venv/bin/python bench/bench_remote.py --size {args.size} --small-size "
        f"{args.small_size} --runs {args.runs}` ({results.stamp()}); nginx on 127.0.0.1.",
        "",
        f"Archives: large {sizes['large.hxz'] / 2**20:.0f} MiB for a "
        f"{sizes['large.img'] / 2**20:.0f} MiB image; small "
        f"{sizes['small.hxz'] / 2**20:.0f} MiB for {sizes['small.img'] / 2**20:.0f} MiB. "
        "Throughput = image bytes / wall time of `nbdcopy URI null:`, median (min-max) of "
        "alternating runs; x local = per-run ratio to `hexz.py file=`; requests and MiB on "
        "the wire per GiB of image from nginx's access log (one run). CPU: user+system "
        "CPU-seconds per GiB of image of each process, median (min-max) over the runs "
        "(nginx: master and workers; nbdcopy: its own usage at exit). 2-core bound = the "
        f"three added up / {CORES}: the shortest wall time per GiB that {CORES} cores could "
        "reach with perfect overlap; CPU x local = file='s CPU-seconds (all three parts) "
        "over the row's, run by run: the ratio to file= expected when both overlap their "
        "parts equally well.",
        "",
        "| image | server | MB/s | x local | requests/GiB | MiB sent/GiB | nbdkit CPU s/GiB "
        "| nginx CPU s/GiB | nbdcopy CPU s/GiB | 2-core bound s/GiB | CPU x local |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "The nbdkit CPU of `url=` beside its two parts, each measured on its own in the "
        "same runs:",
        "",
        *(f"- {line}" for line in parts),
        "",
        NOTE,
        *([
            "",
            f"Over a slow link ({args.link_rate}B/s shared by all connections: "
            f"bench/slowlink.py relays nginx through one token bucket; small-block image, "
            f"{args.link_runs} alternating runs):",
            "",
            "| server | MB/s of image | x nbdkit curl |",
            "|---|---|---|",
            *link,
        ] if link else []),
    ])
    print(body)
    if not args.no_results:
        results.record(SECTION, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
