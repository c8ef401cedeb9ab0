"""bench/plot.py: every ratio recorded in RESULTS.md becomes one bar of results.svg."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import plot  # noqa: E402

SAMPLE = """# Benchmark results

## hexz plugin

Command: `bench_hexz.py`

Regime (a) large blocks: 1 GiB image.

| source | seq MB/s | seq vs file | 4K QD1 IOPS | IOPS vs file |
|---|---|---|---|---|
| C file plugin | 3000 | 1.00 | 20000 | 1.00 |
| hexz plugin, LZ4 | 1200 | 0.40 | 3000 | 0.15 |

## http-disk-server

| measure | median | spread |
|---|---|---|
| 1 MiB GET MB/s | 1.77 GB/s | runs 1.9, 1.7 |
| ratio http-disk-server / nginx | 1.02 |  |
"""


def test_ratios_are_read_from_the_tables():
    got = plot.ratios(SAMPLE)
    assert got == [
        ("hexz plugin", "Regime (a) large blocks: C file plugin (seq vs file)", 1.0),
        ("hexz plugin", "Regime (a) large blocks: C file plugin (IOPS vs file)", 1.0),
        ("hexz plugin", "Regime (a) large blocks: hexz plugin, LZ4 (seq vs file)", 0.40),
        ("hexz plugin", "Regime (a) large blocks: hexz plugin, LZ4 (IOPS vs file)", 0.15),
        ("http-disk-server", "ratio http-disk-server / nginx", 1.02),
    ]


def test_svg_is_written_with_every_bar(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text(SAMPLE)
    out = tmp_path / "results.svg"
    r = subprocess.run([sys.executable, str(BENCH / "plot.py"), "--results", str(results),
                        "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    svg = out.read_text()
    assert svg.startswith("<?xml") and "<svg" in svg
    assert "5 ratios" in r.stdout
    # Each bar is one matplotlib patch, besides the figure's and the axes' backgrounds.
    assert svg.count('id="patch_') >= 5 + 2
