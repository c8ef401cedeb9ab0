"""Thin archives and where their parents are found: relative base paths, the server's CWD,
and parent-dir=. Expected bytes are always the packed input (hexz's reader zero-fills
parent references, spec §17)."""

from __future__ import annotations

import os
import shutil

import hexz
import pytest

from tests.support.archives import catalog, spec
from tests.support.nbd import Server, assert_one_clear_line, try_start


def _pack_in(cwd, src, dst, base, compression="lz4") -> None:
    old = os.getcwd()
    os.chdir(cwd)
    try:
        hexz.pack(str(src), str(dst), base=str(base), compression=compression)
    finally:
        os.chdir(old)


def _serve_and_compare(tmp_path, archive, data, *params, cwd=None) -> None:
    srv = Server(tmp_path / "srv", archive, *params, cwd=cwd)
    try:
        with srv.client() as c:
            assert c.size == len(data)
            assert c.pread(len(data), 0) == data
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("name", catalog.THIN)
def test_thin_fixture_really_is_thin(cat, name):
    """Guards the other tests: the child must reference its parent, and the references must
    include moved content for the shifted kinds."""
    layout = cat[name].layout()
    assert layout.header.parent_paths == [str(cat[name].parent)]
    refs = [r for r in layout.records(0) if r.is_parent_ref]
    assert len(refs) >= 3
    parent_recs = {r.hash: r for r in spec.parse(cat[name].parent).records(0)}
    moved = [r for r in refs if parent_recs[r.hash].start != r.start]
    if name != "thin":
        assert moved, "no parent reference points at a different offset"


def test_relative_parent_same_directory(cat, tmp_path):
    """base= given relative to the packer's CWD, child next to the base; served from another CWD."""
    work = tmp_path / "images"
    work.mkdir()
    shutil.copyfile(cat["thin_base"].path, work / "base.hxz")
    _pack_in(work, cat["thin_shifted"].input_path, "child.hxz", "base.hxz")
    assert spec.parse(work / "child.hxz").header.parent_paths == ["base.hxz"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _serve_and_compare(tmp_path, work / "child.hxz", cat["thin_shifted"].primary,
                       cwd=elsewhere)
    # and with a relative file= path from the parent directory of the images
    _serve_and_compare(tmp_path, "images/child.hxz", cat["thin_shifted"].primary, cwd=tmp_path)


def test_relative_parent_chain_moved_together(cat, tmp_path):
    """A relative thin-of-thin chain keeps working after the whole folder is moved."""
    work = tmp_path / "a"
    work.mkdir()
    shutil.copyfile(cat["thin_base"].path, work / "base.hxz")
    _pack_in(work, cat["thin_shifted"].input_path, "mid.hxz", "base.hxz", "zstd")
    _pack_in(work, cat["thin_of_thin"].input_path, "top.hxz", "mid.hxz")
    moved = tmp_path / "moved"
    work.rename(moved)
    _serve_and_compare(tmp_path, moved / "top.hxz", cat["thin_of_thin"].primary, cwd="/")


def test_relative_parent_elsewhere_needs_cwd_or_parent_dir(cat, tmp_path):
    """The child lives in another folder than the base, and base= was relative to the
    packer's CWD: found from that CWD, or with parent-dir=; otherwise refused by name."""
    work = tmp_path / "work"
    kids = tmp_path / "kids"
    work.mkdir()
    kids.mkdir()
    shutil.copyfile(cat["thin_base"].path, work / "base.hxz")
    _pack_in(work, cat["thin_zstd_of_lz4"].input_path, kids / "child.hxz", "base.hxz", "zstd")
    child = kids / "child.hxz"
    data = cat["thin_zstd_of_lz4"].primary

    r = try_start(tmp_path, child, cwd=str(kids))
    assert_one_clear_line(r, "base.hxz")
    _serve_and_compare(tmp_path, child, data, cwd=work)
    _serve_and_compare(tmp_path, child, data, f"parent-dir={work}", cwd=str(kids))
    # several parent-dir= values are searched in order
    _serve_and_compare(tmp_path, child, data, f"parent-dir={kids}", f"parent-dir={work}",
                       cwd="/")


def test_moved_absolute_parent_found_with_parent_dir(cat, tmp_path):
    """An absolute parent path that no longer exists is looked up by name in parent-dir=."""
    old_home = tmp_path / "old"
    new_home = tmp_path / "new"
    old_home.mkdir()
    new_home.mkdir()
    shutil.copyfile(cat["thin_base"].path, old_home / "base.hxz")
    hexz.pack(str(cat["thin"].input_path), str(tmp_path / "child.hxz"),
              base=str(old_home / "base.hxz"), compression="lz4")
    (old_home / "base.hxz").rename(new_home / "base.hxz")
    r = try_start(tmp_path, tmp_path / "child.hxz")
    assert_one_clear_line(r, str(old_home / "base.hxz"))
    _serve_and_compare(tmp_path, tmp_path / "child.hxz", cat["thin"].primary,
                       f"parent-dir={new_home}")


def test_child_directory_wins_over_cwd(cat, tmp_path):
    """A relative parent path is looked up next to the child first, then in the CWD (spec
    §7.3): a same-named but different archive in the CWD must not be used."""
    images = tmp_path / "images"
    images.mkdir()
    shutil.copyfile(cat["thin_base"].path, images / "base.hxz")
    _pack_in(images, cat["thin_shifted"].input_path, "child.hxz", "base.hxz")
    decoy_dir = tmp_path / "cwd"
    decoy_dir.mkdir()
    shutil.copyfile(cat["random"].path, decoy_dir / "base.hxz")
    _serve_and_compare(tmp_path, images / "child.hxz", cat["thin_shifted"].primary,
                       cwd=decoy_dir)
