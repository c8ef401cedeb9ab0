#!/usr/bin/python3
"""Where the hexz plugin's CPU goes: ``perf`` samples of nbdkit during sequential copies.

    .venv/bin/python bench/perf_hexz.py [--workdir bench/work] [--runs 4]

For each archive (bench_hexz.py's large-block LZ4 and Zstd and small-block LZ4 images, and
the C file plugin on the raw large image as the anchor) one nbdkit process serves ``--runs``
``nbdcopy URI null:`` copies while ``perf record`` samples it.  The samples are grouped by
what the CPU was doing, and each group's share is turned into milliseconds per GiB served
with the process's own CPU time (user+system from /proc), so the figures add up to the
CPU-seconds per GiB of bench_hexz.py.  Needs ``perf`` (Debian: linux-perf) and root or
perf_event_paranoid <= 1.  Writes the section "hexz plugin: where the CPU goes" of
bench/RESULTS.md unless --no-results.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import bench_hexz  # noqa: E402
import hexz_measure as hm  # noqa: E402
import nbd  # noqa: E402
import results  # noqa: E402

SECTION = "## hexz plugin: where the CPU goes"
GiB = 1 << 30

# (group, test on "dso symbol"), first match wins.  Kernel copies are split by direction:
# copy_to_iter is pread from the page cache, copy_from_iter the send to the socket.
GROUPS: list[tuple[str, re.Pattern[str]]] = [
    ("LZ4 decode (liblz4)", re.compile(r"liblz4")),
    ("Zstd decode (libzstd)", re.compile(r"libzstd")),
    ("CRC-32 (libdeflate, zlib)", re.compile(r"libdeflate|libz\.so|crc32")),
    ("user-space copies (memmove: cache to request buffer)", re.compile(r"libc.*mem(move|cpy)")),
    ("pread: page cache to user (kernel)", re.compile(r"kernel.*(copy_to_iter|filemap_)")),
    ("socket send: user to socket (kernel)",
     re.compile(r"kernel.*(copy_from_iter|unix_|sock_|skb)")),
    ("page faults, mmap/munmap, TLB (kernel)", re.compile(
        r"kernel.*(page_fault|clear_page|_pages|handle_mm|unmap|tlb|smp_call|mas_|vma|folio"
        r"|anonymous|memcg|lru)")),
    ("thread switches, futex, wake-ups (kernel)", re.compile(
        r"kernel.*(switch|futex|wake|schedule|spin_unlock|irq|ipi|msr)")),
    ("other kernel", re.compile(r"kernel")),
    ("Python interpreter and ctypes", re.compile(r"libpython|_ctypes|libffi|cpython")),
    ("malloc/free (libc)", re.compile(r"libc.*(malloc|free|_int_|unlink_chunk|tcache)")),
    ("other user space (libc, nbdkit)", re.compile(r".")),
]


def profile(work: Path, name: str, argv: list[str], runs: int) -> tuple[dict[str, float], float]:
    """Share of samples per group, and the nbdkit process's CPU-seconds per GiB."""
    srv = hm.NbdkitServer(work, f"perf-{name}", argv)
    try:
        hm.nbdcopy_seconds(srv.uri)                 # warm: page cache, imports, caches
        with tempfile.NamedTemporaryFile(suffix=".perf", dir=work) as data:
            rec = subprocess.Popen(["perf", "record", "-q", "-F", "1999", "-p", str(srv.pid),
                                    "-o", data.name], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            try:
                c0 = srv.cpu_seconds()
                for _ in range(runs):
                    hm.nbdcopy_seconds(srv.uri)
                cpu = srv.cpu_seconds() - c0
            finally:
                rec.send_signal(subprocess.signal.SIGINT)
                rec.wait(timeout=60)
            rep = subprocess.run(["perf", "report", "-i", data.name, "--stdio", "-q",
                                  "--no-children", "--sort", "dso,sym"],
                                 capture_output=True, text=True, timeout=300).stdout
        h = nbd.NBD()
        h.connect_uri(srv.uri)
        size = h.get_size()
        h.shutdown()
    finally:
        srv.stop()
    shares: dict[str, float] = {g: 0.0 for g, _ in GROUPS}
    for line in rep.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)", line)
        if not m:
            continue
        key = f"{m[2]} {m[3]}"
        if "[kernel" in m[2]:
            key = "kernel " + m[3]
        for g, pat in GROUPS:
            if pat.search(key):
                shares[g] += float(m[1]) / 100
                break
    return shares, cpu * GiB / (size * runs)


def run(args: argparse.Namespace) -> str:
    work = Path(args.workdir).resolve()
    paths = bench_hexz.prepare_default(work)
    cases = [("C file plugin, raw large image", ["file", f"file={paths['large.img']}"]),
             ("hexz LZ4, large blocks", bench_hexz.hexz_args(paths["large.lz4.hxz"])),
             ("hexz Zstd, large blocks", bench_hexz.hexz_args(paths["large.zstd.hxz"])),
             ("hexz LZ4, small blocks", bench_hexz.hexz_args(paths["small.lz4.hxz"]))]
    got = {}
    for name, argv in cases:
        bench_hexz.log(f"profiling {name}")
        got[name] = profile(work, name.split(",")[0].replace(" ", "-"), argv, args.runs)
    names = [n for n, _ in cases]
    lines = ["| where (ms of nbdkit CPU per GiB served) | " + " | ".join(names) + " |",
             "|---|" + "---|" * len(names)]
    for g, _ in GROUPS:
        cells = [f"{got[n][0][g] * got[n][1] * 1000:.0f}" for n in names]
        if any(c != "0" for c in cells):
            lines.append(f"| {g} | " + " | ".join(cells) + " |")
    lines.append("| **total: nbdkit CPU ms per GiB** | " +
                 " | ".join(f"**{got[n][1] * 1000:.0f}**" for n in names) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", default=str(REPO / "bench" / "work"))
    ap.add_argument("--runs", type=int, default=4, help="nbdcopy runs sampled per case")
    ap.add_argument("--no-results", action="store_true")
    args = ap.parse_args()
    body = run(args)
    print(body)
    if not args.no_results:
        results.record(SECTION, f"Command: `.venv/bin/python bench/perf_hexz.py --runs "
                                f"{args.runs}` ({results.stamp()}).\n\n{body}\n\n"
                                f"{EXPLANATION}")


EXPLANATION = """\
Groups are made from `perf report --sort dso,sym` of the nbdkit process (user and kernel,
all threads); each group's share of the samples is multiplied by the process's CPU time.
nbdcopy's own CPU is not included. See "hexz plugin" above for what the figures mean
for throughput."""


if __name__ == "__main__":
    main()
