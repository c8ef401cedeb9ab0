#!/usr/bin/env python3
"""Draw bench/RESULTS.md's ratios against the anchors as bench/results.svg (`make bench`).

Every figure comes from RESULTS.md itself, as the benchmarks recorded it: a table column
whose heading says "vs" (e.g. "seq vs file"), or a row whose name says "ratio".  Each bar
is one such ratio, grouped and coloured by component; the line at 1.0 is the anchor
(nbdkit's C file or curl plugin, nginx).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)\s*$")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def ratios(markdown: str) -> list[tuple[str, str, float]]:
    """(component, label, ratio) for every ratio recorded in ``markdown``."""
    out: list[tuple[str, str, float]] = []
    section = context = ""
    header: list[str] | None = None
    for line in markdown.splitlines():
        if line.startswith("## "):
            section, context, header = line[3:].strip(), "", None
            continue
        if not line.startswith("|"):
            header = None
            # A table's own caption ("Regime (b) small blocks: ...") names its rows.
            caption = line.split(":", 1)[0].strip()
            if caption and len(caption) <= 40 and not caption.startswith("Command"):
                context = caption
            continue
        cells = _cells(line)
        if header is None:
            header = cells
            continue
        if set("".join(cells)) <= set("-: "):
            continue                                   # the |---|---| line
        for col, name in enumerate(header[1:], start=1):
            if col < len(cells) and re.search(r"\bvs\b", name):
                m = _NUMBER.match(cells[col])
                if m:
                    where = f"{context}: " if context else ""
                    out.append((section, f"{where}{cells[0]} ({name})", float(m.group(1))))
        if "ratio" in cells[0] and len(cells) > 1:
            m = _NUMBER.match(cells[1])
            if m:
                out.append((section, cells[0], float(m.group(1))))
    return out


def plot(rows: list[tuple[str, str, float]], out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")                              # no display: write the file only
    import matplotlib.pyplot as plt

    sections = list(dict.fromkeys(s for s, _, _ in rows))
    colours = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(rows) + 1.5))
    labels = [label for _, label, _ in rows]
    y = range(len(rows))
    ax.barh(list(y), [v for _, _, v in rows],
            color=[colours(sections.index(s) % 10) for s, _, _ in rows])
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(list(y), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("ratio against the anchor in the same run (1.0 = as fast)")
    ax.set_title("bench/RESULTS.md")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours(i % 10)) for i in range(len(sections))]
    ax.legend(handles, sections, loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(out, format="svg", metadata={"Date": None})
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default=str(HERE / "RESULTS.md"))
    ap.add_argument("--out", default=str(HERE / "results.svg"))
    a = ap.parse_args()
    rows = ratios(Path(a.results).read_text())
    if not rows:
        print(f"no ratios found in {a.results}")
        return 1
    plot(rows, Path(a.out))
    print(f"{a.out}: {len(rows)} ratios")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
