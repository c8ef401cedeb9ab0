"""Archives the format allows but hexz's Python API cannot write (zstd dictionary, zero
records, tiny index pages, payloads out of order, zstd frames with content size/checksum,
a parent with a dictionary). Made by re-writing catalogue archives (rewrite); they must
read back as the original inputs, in process and through nbdkit."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import nbd
import pytest

import hxz
from tests.support import load
from tests.support.archives import checks, corrupt, rewrite, spec
from tests.support.archives import inputs as gen
from tests.support.nbd import run_tool


@dataclass
class Variant:
    path: Path
    primary: bytes
    secondary: bytes = b""
    members: dict[str, bytes] | None = None


@pytest.fixture(scope="module")
def variants(cat, tmp_path_factory) -> dict[str, Variant]:
    root = tmp_path_factory.mktemp("variants")
    samples = [gen.text(4096, 1000 + i) for i in range(100)]
    tdict = rewrite.train_dictionary(samples)
    v: dict[str, Variant] = {}

    def make(name: str, src: str, **kw) -> None:
        dst = root / f"{name}.hxz"
        rewrite.rewrite(cat[src].path, dst, **kw)
        v[name] = Variant(dst, cat[src].primary, cat[src].secondary, cat[src].members)

    make("dict_text", "text", compression=1, dictionary=tdict)
    make("dict_dir", "dir", compression=1, dictionary=tdict)
    make("dict_small_blocks", "multipage_zstd", dictionary=tdict, records_per_page=1000)
    make("zero_records", "mixed", zero_records=True)
    make("zero_records_zstd", "zeros_zstd", zero_records=True)
    make("pages_of_7", "multipage_zstd", records_per_page=7)
    make("pages_of_1", "random", records_per_page=1)
    make("reversed", "text", reverse_payloads=True)
    make("frame_extras", "random_zstd", zstd_frame_extras=True)
    make("lz4_to_zstd_dir", "dir_zstd", compression=0, records_per_page=3)
    make("thin_small_pages", "thin_shifted", records_per_page=2, zero_records=True)
    # a thin child whose parent uses a dictionary and explicit zero records
    make("base_dict", "thin_base", compression=1, dictionary=tdict, zero_records=True,
         reverse_payloads=True)
    child = root / "child_of_dict.hxz"
    corrupt.patch_header(cat["thin_shifted"].path, child,
                              parent_paths=[str(v["base_dict"].path)])
    v["child_of_dict"] = Variant(child, cat["thin_shifted"].primary)
    make("thin_dir_pages", "thin_dir", records_per_page=5)
    # parent refs resolved to zero records (and to small stored blocks) of the parent
    make("mixed_zero_records", "mixed", zero_records=True, records_per_page=100)
    child = root / "child_of_zero_records.hxz"
    corrupt.patch_header(cat["thin_of_mixed"].path, child,
                              parent_paths=[str(v["mixed_zero_records"].path)])
    v["child_of_zero_records"] = Variant(child, cat["thin_of_mixed"].primary)
    # every block of the child's secondary stream lives only in the parent's secondary
    # stream (spec §19.4: index both streams of a parent)
    make("refs_to_secondary", "dir", refs_to_parent=(str(cat["dir"].path), 1))
    # a child made only of references (no stored block at all), zstd over an lz4 parent
    make("all_refs", "text_100000", compression=0,
         refs_to_parent=(str(cat["text_100000"].path), 0))
    return v


NAMES = ["dict_text", "dict_dir", "dict_small_blocks", "zero_records", "zero_records_zstd",
         "pages_of_7", "pages_of_1", "reversed", "frame_extras", "lz4_to_zstd_dir",
         "thin_small_pages", "base_dict", "child_of_dict", "thin_dir_pages",
         "child_of_zero_records", "refs_to_secondary", "all_refs"]


def test_variants_have_the_intended_shape(variants):
    """Guards the other tests: the rewrites really contain what they are named after."""
    def lay(n: str) -> spec.Layout:
        return spec.parse(variants[n].path)

    assert lay("dict_text").header.dictionary[0] == 4096
    zero = [r for r in lay("zero_records").records(0) if not r.is_parent_ref and r.length == 0]
    assert len(zero) > 100
    assert len(lay("pages_of_7").pages[0]) > 500
    assert len(lay("lz4_to_zstd_dir").pages[1]) >= 2
    recs = [r for r in lay("reversed").records(0) if r.is_stored]
    assert recs[0].offset > recs[-1].offset
    refs = [r for r in lay("refs_to_secondary").records(1) if r.is_parent_ref]
    assert len(refs) == len(lay("refs_to_secondary").records(1))
    assert all(r.is_parent_ref for r in lay("all_refs").records(0))
    first = variants["frame_extras"].path.read_bytes()[4096:4101]
    assert first[:4] == b"\x28\xb5\x2f\xfd" and first[4] & 0x04  # checksum flag


@pytest.mark.parametrize("name", NAMES)
def test_variant_reads_in_process(variants, name):
    v = variants[name]
    with hxz.open_archive(str(v.path)) as a:
        s = a.stream("disk")
        assert s.size == len(v.primary)
        got = s.read(0, s.size)
        assert got == v.primary, f"first difference at {checks.first_diff(got, v.primary)}"
        if v.secondary:
            assert a.stream("memory").read(0, len(v.secondary)) == v.secondary
        layout = spec.parse(v.path)
        for off, ln in checks.edge_reads(layout, s.size, seed=zlib.crc32(name.encode()),
                                              max_edges=40, n_random=20):
            assert s.read(off, ln) == v.primary[off:off + ln], (off, ln)


@pytest.mark.parametrize("name", NAMES)
def test_variant_through_nbdkit(variants, pool, tmp_path, name):
    v = variants[name]
    srv = pool.get(v.path)
    out = tmp_path / "copy.img"
    r = run_tool(["nbdcopy", srv.uri, str(out)], timeout=120)
    assert r.returncode == 0, r.stderr
    got = out.read_bytes()
    assert got == v.primary, f"first difference at {checks.first_diff(got, v.primary)}"
    layout = spec.parse(v.path)
    with srv.client() as c:
        for off, ln in checks.edge_reads(layout, len(v.primary),
                                              seed=zlib.crc32(name.encode()) + 1,
                                              max_edges=40, n_random=20):
            assert c.pread(ln, off) == v.primary[off:off + ln], (off, ln)
        must = checks.zero_records(layout, v.primary)
        ext = [(s, n, bool(f & nbd.STATE_ZERO)) for s, n, f in c.block_status(c.size, 0)] \
            if c.size else []
        checks.check_extents(ext, v.primary, 0, len(v.primary), must)
    for path, data in (v.members or {}).items():
        with srv.client(export=path) as c:
            assert c.size == len(data), path
            if data:
                assert c.pread(len(data), 0) == data, path


def test_zero_records_reported_as_holes(variants, pool):
    """Zero records (length 0) need no decompression and are reported as zero extents."""
    v = variants["zero_records"]
    layout = spec.parse(v.path)
    zero = [(r.start, r.logical_len) for r in layout.records(0)
            if not r.is_parent_ref and r.length == 0 and r.logical_len]
    with pool.get(v.path).client() as c:
        ext = [(s, n, bool(f & nbd.STATE_ZERO)) for s, n, f in c.block_status(c.size, 0)]
        checks.check_extents(ext, v.primary, 0, len(v.primary), zero)


@pytest.mark.parametrize("params", [("threads=parallel",), ("threads=parallel", "cache=1M"),
                                    ()])
@pytest.mark.parametrize("name", ["dict_small_blocks", "dict_text", "frame_extras"])
def test_decoders_shared_by_many_connections(variants, pool, name, params):
    """Zstd contexts, read buffers and the block cache are shared by nbdkit's threads:
    eight connections reading random ranges at once (parallel requests when asked) must
    each get exactly the input's bytes."""
    v = variants[name]
    srv = pool.get(v.path, *params)
    errors = load.random_reads(srv.client, v.primary, clients=8, reads=50,
                               sizes=(1, 4096, 60000, 300000, 2 << 20))
    assert not errors, errors[:5]
