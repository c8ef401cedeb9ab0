"""The one writer of bench/RESULTS.md, and the figures every benchmark reports.

Each benchmark owns one ``## Section`` of RESULTS.md and replaces only that
section, so benchmarks can run in any order or alone.  Figures on a shared
2-core machine swing from run to run: report the median with the spread, from
runs that alternate the candidates (A B A B ...), never one number.
"""

from __future__ import annotations

import datetime
import re
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
TITLE = "# Benchmark results\n"


def record(section: str, body: str, path: Path = RESULTS) -> None:
    """Replace (or append) the section headed ``section`` ("## ...") with ``body``."""
    if not section.startswith("## "):
        raise ValueError(f"section {section!r} must be a '## ' heading")
    text = path.read_text() if path.exists() else TITLE
    block = f"{section}\n\n{body.strip()}\n\n"
    pattern = re.compile(rf"^{re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        new = pattern.sub(lambda m: block, text)
    else:
        new = text.rstrip("\n") + "\n\n" + block
    path.write_text(new.rstrip("\n") + "\n")


def stamp() -> str:
    """The time a figure was taken, for the 'Command:' line of a section."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def alternate(candidates: dict[str, Callable[[], float]], runs: int) -> dict[str, list[float]]:
    """Run every candidate ``runs`` times, interleaved (A B A B ...); returns each one's
    measurements in run order."""
    out: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(runs):
        for name, fn in candidates.items():
            out[name].append(fn())
    return out


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def spread(xs: Sequence[float], fmt: str = "{:.3g}") -> str:
    """``median (min-max)`` of a series, for tables."""
    return f"{fmt.format(median(xs))} ({fmt.format(min(xs))}-{fmt.format(max(xs))})"


def ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Pair-by-pair ratios a[i]/b[i] of two alternating series (each pair ran back to back,
    so the machine's drift cancels better than in a ratio of medians)."""
    return [x / y for x, y in zip(a, b, strict=True) if y]
