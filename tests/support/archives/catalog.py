"""The archives the hexz tests serve, packed at test time with `hexz.pack` from generated inputs.

Every fixture kind of hxz-format.md §16/§20 is here. Each archive carries the bytes it must
read back as (`primary`, `secondary`, `members`), taken from the *inputs*, never from hexz's
own reader (which is wrong for single-file and thin archives, spec §17).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import hexz

from tests.support.archives import inputs as gen
from tests.support.archives import spec

# name -> (generator, compression); single-file archives
SINGLE: dict[str, tuple] = {
    "empty": (lambda: b"", "lz4"),
    "one_byte": (lambda: b"\x5a", "lz4"),
    "one_byte_zstd": (lambda: b"\x00", "zstd"),
    "edge_65535": (lambda: gen.random_bytes(65535, 11), "lz4"),
    "edge_65536": (lambda: gen.random_bytes(65536, 12), "lz4"),
    "edge_65537": (lambda: gen.random_bytes(65537, 13), "zstd"),
    "edge_1m_minus": (lambda: gen.random_bytes((1 << 20) - 1, 14), "lz4"),
    "edge_1m": (lambda: gen.random_bytes(1 << 20, 15), "zstd"),
    "edge_1m_plus": (lambda: gen.random_bytes((1 << 20) + 1, 16), "lz4"),
    "random": (lambda: gen.random_bytes(3 * (1 << 20) + 12345, 17), "lz4"),
    "random_zstd": (lambda: gen.random_bytes(3 * (1 << 20) + 999, 18), "zstd"),
    "zeros": (lambda: bytes(3 << 20), "lz4"),
    "zeros_zstd": (lambda: bytes((3 << 20) + 7), "zstd"),
    "text": (lambda: gen.text(2_500_003, 19), "lz4"),
    "text_100000": (lambda: gen.text(100_000, 20), "zstd"),
    "mixed": (lambda: gen.mixed_with_zero_runs(21), "lz4"),
    "mixed_zstd": (lambda: gen.mixed_with_zero_runs(22), "zstd"),
    # > 4096 records of 1-8 KiB blocks: several index pages
    "multipage": (lambda: gen.redundant(16 << 20, 23), "lz4"),
    "multipage_zstd": (lambda: gen.redundant(9 << 20, 24), "zstd"),
}

# Directory tree: path -> generator. A root-level "memory" goes to the secondary stream,
# "sub/memory" stays in the primary one (spec §8).
DIR_TREE: dict[str, object] = {
    "a.txt": lambda: gen.text(70_000, 31),
    "empty.bin": lambda: b"",
    ".hidden": lambda: gen.text(1234, 32),
    "zeros.img": lambda: bytes(500_000),
    "sub/b.bin": lambda: gen.random_bytes(70_000, 33),
    "sub/memory": lambda: gen.random_bytes(5000, 34),
    "sub/empty2": lambda: b"",
    "sub/deeper/c.dat": lambda: gen.redundant(300_000, 35),
    "sub/deeper/one": lambda: b"1",
    "sub/spaced name \u00fc.txt": lambda: gen.text(9000, 37),
    "memory": lambda: gen.random_bytes(200_001, 36),
}

THIN = ["thin", "thin_shifted", "thin_of_thin", "thin_zstd_of_lz4", "thin_lz4_of_zstd",
        "thin_of_mixed", "thin_of_multipage", "thin_dir"]
DIRS = ["dir", "dir_zstd", "thin_dir"]
BASES = ["thin_base", "thin_base_zstd"]
ALL = list(dict.fromkeys([*SINGLE, *DIRS, *BASES, *THIN]))
# ones with some substance, for the heavier tests (random reads across edges, concurrency)
SUBSTANTIAL = ["random", "random_zstd", "text", "mixed", "multipage", "multipage_zstd",
               "dir", "dir_zstd", "thin", "thin_shifted", "thin_of_thin",
               "thin_zstd_of_lz4", "thin_lz4_of_zstd", "thin_of_mixed",
               "thin_of_multipage", "thin_dir"]


@dataclass
class Fx:
    name: str
    path: Path
    raw: Path  # a plain file holding `primary`, for nbdcopy / qemu-img compare
    primary: bytes
    compression: str
    secondary: bytes = b""
    members: dict[str, bytes] | None = None
    parent: Path | None = None
    input_path: Path | None = None

    def layout(self) -> spec.Layout:
        return spec.parse(self.path)


@dataclass
class Catalog:
    root: Path
    fx: dict[str, Fx] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Fx:
        return self.fx[name]


def _pack(src: Path, dst: Path, compression: str, base: Path | None = None) -> None:
    if base is None:
        hexz.pack(str(src), str(dst), compression=compression)
    else:
        hexz.pack(str(src), str(dst), base=str(base), compression=compression)


def _single(cat: Catalog, name: str, data: bytes, compression: str,
            base: Path | None = None) -> Fx:
    src = cat.root / "in" / f"{name}.img"
    src.write_bytes(data)
    dst = cat.root / "hxz" / f"{name}.hxz"
    _pack(src, dst, compression, base)
    fx = Fx(name, dst, src, data, compression, parent=base, input_path=src)
    cat.fx[name] = fx
    return fx


def write_tree(root: Path, changes: dict[str, bytes] | None = None) -> dict[str, bytes]:
    files = {rel: make() for rel, make in DIR_TREE.items()}  # type: ignore[operator]
    files.update(changes or {})
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return files


def _directory(cat: Catalog, name: str, compression: str, base: Path | None = None,
               changes: dict[str, bytes] | None = None) -> Fx:
    src = cat.root / "in" / name
    files = write_tree(src, changes)
    dst = cat.root / "hxz" / f"{name}.hxz"
    _pack(src, dst, compression, base)
    manifest = spec.parse(dst).manifest()
    assert manifest is not None and {e["path"] for e in manifest} == set(files), manifest
    # The primary stream is the non-"memory" files in manifest order (spec §9).
    primary = b"".join(files[e["path"]] for e in manifest if e["path"] != "memory")
    raw = cat.root / "in" / f"{name}.primary"
    raw.write_bytes(primary)
    fx = Fx(name, dst, raw, primary, compression, secondary=files["memory"], members=files,
            parent=base, input_path=src)
    cat.fx[name] = fx
    return fx


def build(root: Path) -> Catalog:
    cat = Catalog(root)
    (root / "in").mkdir(parents=True)
    (root / "hxz").mkdir()
    for name, (make, comp) in SINGLE.items():
        _single(cat, name, make(), comp)
    for name, comp in (("dir", "lz4"), ("dir_zstd", "zstd")):
        _directory(cat, name, comp)

    base = _single(cat, "thin_base", gen.random_bytes(2_000_000, 41), "lz4")
    base_z = _single(cat, "thin_base_zstd",
                     gen.random_bytes(1_500_000, 42) + gen.text(600_000, 43), "zstd")
    # same size, a few spans rewritten in place: blocks stay where they were
    _single(cat, "thin", gen.overwritten(base.primary, 51, [(300_000, 4000), (1_700_000, 100)]),
            "lz4", base.path)
    # content inserted before parent blocks, so they move (spec §15's worked example)
    shifted = _single(cat, "thin_shifted",
                      gen.shifted(base.primary, 52, [(0, 777), (1_000_000, 5000)]),
                      "lz4", base.path)
    _single(cat, "thin_of_thin",
            gen.shifted(shifted.primary, 53, [(10, 100), (1_400_000, 20_000)]),
            "lz4", shifted.path)
    _single(cat, "thin_zstd_of_lz4", gen.shifted(base.primary, 54, [(123_456, 999)]),
            "zstd", base.path)
    _single(cat, "thin_lz4_of_zstd",
            gen.shifted(base_z.primary, 55, [(1, 3), (1_600_000, 70_000)]), "lz4", base_z.path)
    # small blocks and zero runs referenced from the parent, content moved
    _single(cat, "thin_of_mixed",
            gen.shifted(cat["mixed"].primary, 56, [(5000, 1234), (3_000_000, 4321)]),
            "zstd", cat["mixed"].path)
    _single(cat, "thin_of_multipage",
            gen.shifted(cat["multipage_zstd"].primary, 57, [(4000, 10), (6_000_000, 5555)]),
            "lz4", cat["multipage_zstd"].path)
    # a directory archive that is thin: files changed, added and moved around
    tree = {rel: make() for rel, make in DIR_TREE.items()}  # type: ignore[operator]
    _directory(cat, "thin_dir", "zstd", cat["dir"].path, {
        "a.txt": tree["a.txt"] + b"appended line\n" * 10,
        "new.bin": gen.random_bytes(30_000, 58),
        "sub/deeper/c.dat": gen.random_bytes(777, 59) + tree["sub/deeper/c.dat"],
    })
    return cat
