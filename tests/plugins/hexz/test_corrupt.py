"""Damaged archives: refused at start with one clear line, or EIO on exactly the requests that
touch the damage, never zeros, never wrong bytes, never a crash or a hang.

Damage is made by patching copies of good archives at offsets computed from the spec
(header fields, master index page entries, block records, payloads).
"""

from __future__ import annotations

import errno
import shutil

import nbd
import pytest

import hxz
from tests.support.archives import corrupt, spec
from tests.support.nbd import Server, assert_one_clear_line, try_start


def _expect_eio(c, ln: int, off: int) -> None:
    with pytest.raises(nbd.Error) as ei:
        c.pread(ln, off)
    assert ei.value.errnum == errno.EIO, f"pread({ln}, {off}): {ei.value} (errno {ei.value.errnum})"


def _serve_and_check_damage(tmp_path, archive, data: bytes, bad: list[tuple[int, int]]) -> None:
    """Serve ``archive`` with nbdkit, check it with _check_damage_served, and require a clean
    exit of the server afterwards."""
    srv = Server(tmp_path / "srv", archive)
    try:
        _check_damage_served(srv, data, bad)
    finally:
        assert srv.stop() == 0


def _check_damage_served(srv: Server, data: bytes, bad: list[tuple[int, int]]) -> None:
    """Reads overlapping a bad range fail with EIO (twice: nothing bad gets cached); reads of
    every other block return the input bytes."""
    def is_bad(off: int, ln: int) -> bool:
        return any(off < s + n and s < off + ln for s, n in bad)

    with srv.client() as c:
        for s, n in bad[:5]:
            for _ in range(2):
                _expect_eio(c, 1, s + n // 2)
            _expect_eio(c, n, s)
            if s > 10:
                _expect_eio(c, 20, s - 10)  # straddles into the bad block
        good = 0
        step = max(4096, len(data) // 200)
        for off in range(0, len(data), step):
            ln = min(4096, len(data) - off)
            if not is_bad(off, ln):
                try:
                    got = c.pread(ln, off)
                except nbd.Error as e:
                    raise AssertionError(f"pread({ln}, {off}) outside the damage: {e}") from e
                assert got == data[off:off + ln], f"pread({ln}, {off})"
                good += 1
        assert good > 0 or sum(n for _, n in bad) >= len(data)
        # a long read spanning good blocks and the bad one fails as a whole; the server keeps
        # serving afterwards
        s, n = bad[0]
        lo = max(0, s - (1 << 20))
        _expect_eio(c, min(len(data), s + n + (1 << 20)) - lo, lo)
        if not is_bad(0, 1):
            assert c.pread(1, 0) == data[:1]


# -- payload damage found while serving -> EIO ---------------------------------------------

@pytest.mark.parametrize("name,record", [("random", 3), ("random_zstd", 0), ("text", 8),
                                         ("multipage", 5000), ("zeros", 0), ("thin_base", 10)])
def test_flipped_payload_byte_gives_eio(cat, tmp_path, name, record):
    fx = cat[name]
    bad_file = tmp_path / f"{name}-flipped.hxz"
    payload_off, _, bad = corrupt.flip_payload(fx.path, bad_file, record)
    assert bad, "test setup: the damaged payload covers no bytes"
    srv = Server(tmp_path / "srv", bad_file)
    try:
        _check_damage_served(srv, fx.primary, bad)
        log = srv.log_text()
        assert str(payload_off) in log or hex(payload_off) in log, \
            f"the server log does not name payload offset {payload_off}:\n{log[-2000:]}"
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("params", [(), ("threads=parallel",), ("threads=parallel",
                                                                  "cache=128k")])
def test_corrupt_block_under_concurrency(cat, tmp_path, params):
    """Many connections hit a corrupt block and its neighbours at once, and sequential reads
    run through it (the readahead worker meets the damage first): every request ends, bad
    ones with EIO, good ones with the right bytes; no request waits forever on a failed
    decode."""
    import random
    import threading

    fx = cat["multipage_zstd"]
    bad_file = tmp_path / "c.hxz"
    _, _, bad = corrupt.flip_payload(fx.path, bad_file, 2500)
    (bs, bn), = bad[:1]
    data = fx.primary
    srv = Server(tmp_path / "srv", bad_file, *params)
    problems: list[str] = []

    def is_bad(off: int, ln: int) -> bool:
        return any(off < s + n and s < off + ln for s, n in bad)

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            with srv.client(timeout=60) as c:
                if seed % 2:  # sequential 64 KiB reads across the damage
                    start = max(0, bs - (2 << 20))
                    for off in range(start, min(len(data), bs + (2 << 20)), 65536):
                        ln = min(65536, len(data) - off)
                        _one(c, off, ln)
                else:
                    for _ in range(40):
                        off = max(0, bs + rnd.randint(-200_000, 200_000))
                        _one(c, off, min(rnd.choice([1, 4096, 30_000]), len(data) - off))
        except Exception as e:  # noqa: BLE001 - collected and reported below
            problems.append(repr(e))

    def _one(c, off: int, ln: int) -> None:
        try:
            got = c.pread(ln, off)
        except nbd.Error as e:
            if not is_bad(off, ln) or e.errnum != errno.EIO:
                problems.append(f"pread({ln}, {off}): {e}")
            return
        if is_bad(off, ln):
            problems.append(f"pread({ln}, {off}) touching the damage succeeded")
        elif got != data[off:off + ln]:
            problems.append(f"pread({ln}, {off}) returned wrong bytes")

    try:
        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
            assert not t.is_alive(), "a client hung on the corrupt archive"
    finally:
        assert srv.stop() == 0
    assert not problems, problems[:5]


def test_flipped_payload_unit(cat, tmp_path):
    fx = cat["random"]
    bad_file = tmp_path / "r.hxz"
    payload_off, _, bad = corrupt.flip_payload(fx.path, bad_file, 2)
    (s, n), = bad
    with hxz.open_archive(str(bad_file)) as a:
        st = a.stream("disk")
        with pytest.raises(hxz.BlockError) as ei:
            st.read(s, 1)
        msg = str(ei.value)
        assert "\n" not in msg and "r.hxz" in msg, msg
        assert str(payload_off) in msg or hex(payload_off) in msg, msg
        assert str(s) in msg or hex(s) in msg, f"logical offset {s} not named: {msg}"
        assert st.read(0, s) == fx.primary[:s]
        assert st.read(s + n, 1000) == fx.primary[s + n:s + n + 1000]


def test_changed_crc_field_gives_eio(cat, tmp_path):
    fx = cat["text"]
    rec = [r for r in fx.layout().records(0) if r.is_stored][4]
    bad_file = tmp_path / "crc.hxz"
    corrupt.set_record_field(fx.path, bad_file, 4, "checksum", rec.checksum ^ 1)
    _serve_and_check_damage(tmp_path, bad_file, fx.primary, [(rec.start, rec.logical_len)])


def _page_range(layout, page: int, size: int) -> tuple[int, int]:
    pages = layout.pages[0]
    end = pages[page + 1].start_logical if page + 1 < len(pages) else size
    return pages[page].start_logical, end - pages[page].start_logical


def test_payload_offset_outside_data_region(cat, tmp_path):
    """A record pointing past the data region: refused at start, or EIO on that block (or on
    its whole index page, if the reader validates records when a page loads); the other
    pages still read."""
    fx = cat["multipage"]
    layout = fx.layout()
    idx = next(i for i, r in enumerate(layout.records(0)) if r.page == 1) + 100
    bad_file = tmp_path / "off.hxz"
    corrupt.set_record_field(fx.path, bad_file, idx, "offset", fx.path.stat().st_size + 4096)
    _refused_or_eio(tmp_path, bad_file, fx.primary, [_page_range(layout, 1, len(fx.primary))])


def test_wrong_logical_len_in_record(cat, tmp_path):
    """A record whose logical_len no longer matches its payload (and breaks the page's
    contiguity with the next one): refused, or EIO on that page; other pages still read."""
    fx = cat["multipage_zstd"]
    layout = fx.layout()
    idx = next(i for i, r in enumerate(layout.records(0)) if r.page == 0) + 77
    bad_file = tmp_path / "llen.hxz"
    rec = layout.records(0)[idx]
    corrupt.set_record_field(fx.path, bad_file, idx, "logical_len", rec.logical_len + 1)
    _refused_or_eio(tmp_path, bad_file, fx.primary, [_page_range(layout, 0, len(fx.primary))])


def _refused_or_eio(tmp_path, bad_file, data, bad):
    """Either outcome the spec allows; both must be clean."""
    r = try_start(tmp_path, bad_file)
    if r.returncode != 0:
        assert_one_clear_line(r, bad_file.name)
        return
    _serve_and_check_damage(tmp_path, bad_file, data, bad)


# -- damage of the metadata -> refuse at start ---------------------------------------------

def _refuses(tmp_path, bad_file, *words: str) -> str:
    r = try_start(tmp_path, bad_file)
    err = assert_one_clear_line(r, bad_file.name)
    low = err.lower()
    for w in words:
        assert w.lower() in low, f"{w!r} not in refusal: {err!r}"
    with pytest.raises(hxz.FormatError) as ei:
        hxz.open_archive(str(bad_file))
    assert "\n" not in str(ei.value) and bad_file.name in str(ei.value), str(ei.value)
    return err


@pytest.mark.parametrize("where", ["in_header", "in_data", "at_index", "in_index",
                                   "last_byte"])
def test_truncated_file_refused(cat, tmp_path, where):
    # Files end with the master index (and manifest), so any truncation cuts the metadata:
    # the spec implies refusing at start, not EIO later.
    fx = cat["multipage"]
    h = fx.layout().header
    size = fx.path.stat().st_size
    cut = {"in_header": 100, "in_data": h.index_offset // 2, "at_index": h.index_offset,
           "in_index": h.index_offset + 40, "last_byte": size - 1}[where]
    bad_file = tmp_path / f"trunc-{where}.hxz"
    corrupt.truncate(fx.path, bad_file, cut)
    _refuses(tmp_path, bad_file)


def test_truncated_manifest_refused(cat, tmp_path):
    fx = cat["dir"]
    bad_file = tmp_path / "dir-trunc.hxz"
    corrupt.truncate(fx.path, bad_file, fx.path.stat().st_size - 3)
    _refuses(tmp_path, bad_file)


def _manifest_variant(files: list[dict], how: str) -> bytes:
    import json

    if how == "garbage":
        return b'{"files":[{"pa' + b"x" * 50
    if how == "not_utf8":
        return b'{"files":[{"path":"\xff","offset":0,"size":1,"mode":1,"mtime":1}]}'
    if how == "no_files_list":
        return b"[1,2,3]"
    f = [dict(e) for e in files]
    if how == "past_stream_end":
        f[0]["size"] += 10**7
    elif how == "negative_offset":
        f[0]["offset"] = -5
    elif how == "missing_path":
        del f[0]["path"]
    elif how == "size_is_string":
        f[0]["size"] = str(f[0]["size"])
    elif how == "shifted_offset":
        # Still inside the stream, so only the layout check can tell it is wrong.
        moved = next(e for e in f if e["path"] != "memory" and e["size"] > 1)
        moved["offset"] += 1
        moved["size"] -= 1
    elif how == "file_left_out":
        f = [e for e in f if e["path"] != "memory" and e["size"] > 0][1:]
    return json.dumps({"files": f}, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize("how", ["garbage", "not_utf8", "no_files_list", "past_stream_end",
                                 "negative_offset", "missing_path", "size_is_string",
                                 "shifted_offset", "file_left_out"])
def test_bad_manifest_refused(cat, tmp_path, how):
    fx = cat["dir"]
    bad_file = tmp_path / f"manifest-{how}.hxz"
    corrupt.replace_manifest(fx.path, bad_file, _manifest_variant(fx.layout().manifest(), how))
    _refuses(tmp_path, bad_file, "manifest")


def test_zero_length_file_refused(tmp_path):
    bad_file = tmp_path / "zero.hxz"
    bad_file.write_bytes(b"")
    _refuses(tmp_path, bad_file)


def test_bad_magic(cat, tmp_path):
    bad_file = tmp_path / "magic.hxz"
    corrupt.patch_header(cat["random"].path, bad_file, magic=b"HEXX")
    _refuses(tmp_path, bad_file, "magic")


@pytest.mark.parametrize("version", [0, 2, 0x01000000])
def test_bad_version(cat, tmp_path, version):
    bad_file = tmp_path / "version.hxz"
    corrupt.patch_header(cat["text"].path, bad_file, version=version)
    _refuses(tmp_path, bad_file, "version")


def test_unknown_compression(cat, tmp_path):
    bad_file = tmp_path / "comp.hxz"
    corrupt.patch_header(cat["text"].path, bad_file, compression=2)
    _refuses(tmp_path, bad_file, "compression")


def test_encrypted_archive_refused_as_unsupported(cat, tmp_path):
    bad_file = tmp_path / "enc.hxz"
    corrupt.patch_header(cat["random"].path, bad_file, encryption=(b"S" * 16, 600_000))
    _refuses(tmp_path, bad_file, "encrypt")
    with pytest.raises(hxz.UnsupportedError):
        hxz.open_archive(str(bad_file))


@pytest.mark.parametrize("value", ["past_eof", "inside_header"])
def test_bad_index_offset(cat, tmp_path, value):
    fx = cat["random"]
    off = {"past_eof": fx.path.stat().st_size + 10, "inside_header": 100}[value]
    bad_file = tmp_path / "idx.hxz"
    corrupt.patch_header(fx.path, bad_file, index_offset=off)
    _refuses(tmp_path, bad_file)


def test_bad_option_tag(cat, tmp_path):
    fx = cat["random"]
    h = fx.layout().header
    bad_file = tmp_path / "tag.hxz"
    corrupt.copy(fx.path, bad_file)
    with open(bad_file, "r+b") as f:  # dictionary_offset's Option tag: only 0 or 1 are valid
        f.seek(h.pos["dictionary"])
        f.write(b"\x07")
    _refuses(tmp_path, bad_file)


@pytest.mark.parametrize("how", ["plus_one_record", "not_8_plus_52n", "huge"])
def test_bad_page_length(cat, tmp_path, how):
    """PageEntry.length edited in the master index: refused at start or EIO when the page
    loads (pages are lazy); either way no wrong bytes and a clean message."""
    fx = cat["multipage"]
    pages = fx.layout().pages[0]
    pe = pages[1]
    value = {"plus_one_record": pe.length + 52, "not_8_plus_52n": pe.length - 20,
             "huge": 0xFFFF_FFF0}[how]
    bad_file = tmp_path / f"page-{how}.hxz"
    corrupt.set_page_entry(fx.path, bad_file, 1, "length", value)
    end = pages[2].start_logical
    _refused_or_eio(tmp_path, bad_file, fx.primary, [(pe.start_logical, end - pe.start_logical)])


def test_bad_page_start_logical(cat, tmp_path):
    """Pages that are not contiguous (spec §4): refused at start or EIO, never wrong bytes."""
    fx = cat["multipage"]
    pages = fx.layout().pages[0]
    bad_file = tmp_path / "page-start.hxz"
    corrupt.set_page_entry(fx.path, bad_file, 1, "start_logical", pages[1].start_logical + 4096)
    _refused_or_eio(tmp_path, bad_file, fx.primary,
                    [(pages[0].start_logical, len(fx.primary))])


def test_old_20_byte_record_layout_refused(cat, tmp_path):
    """An older version-1 file with 20-byte records (spec §18) has page lengths 8 + 20n."""
    fx = cat["random"]
    pe = fx.layout().pages[0][0]
    n = (pe.length - 8) // 52
    bad_file = tmp_path / "old.hxz"
    corrupt.set_page_entry(fx.path, bad_file, 0, "length", 8 + 20 * n)
    r = try_start(tmp_path, bad_file)
    if r.returncode != 0:
        assert_one_clear_line(r, bad_file.name)
    else:
        _refused_or_eio(tmp_path, bad_file, fx.primary, [(0, len(fx.primary))])


# -- parents -------------------------------------------------------------------------------

def test_missing_parent_refused(cat, tmp_path):
    missing = tmp_path / "gone" / "base.hxz"
    bad_file = tmp_path / "orphan.hxz"
    corrupt.patch_header(cat["thin_shifted"].path, bad_file, parent_paths=[str(missing)])
    err = _refuses(tmp_path, bad_file, "base.hxz")
    assert str(missing) in err or "gone/base.hxz" in err, err


def test_missing_grandparent_refused(cat, tmp_path):
    """thin_of_thin -> thin_shifted -> (missing) base: refused at start naming the base."""
    mid = tmp_path / "mid.hxz"
    top = tmp_path / "top.hxz"
    gone = tmp_path / "vanished-base.hxz"
    corrupt.patch_header(cat["thin_shifted"].path, mid, parent_paths=[str(gone)])
    corrupt.patch_header(cat["thin_of_thin"].path, top, parent_paths=[str(mid)])
    r = try_start(tmp_path, top)
    assert_one_clear_line(r, "vanished-base.hxz")


def test_several_parent_paths_searched_in_order(cat, tmp_path):
    """parent_paths is a list (spec §7.3/§19): a hash missing from the first parent is found
    in the next one."""
    child = tmp_path / "child.hxz"
    corrupt.patch_header(cat["thin_shifted"].path, child,
                         parent_paths=[str(cat["random"].path), str(cat["thin_base"].path)])
    srv = Server(tmp_path / "srv", child)
    try:
        with srv.client() as c:
            data = cat["thin_shifted"].primary
            assert c.pread(len(data), 0) == data
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("what", ["directory", "not_hxz", "encrypted", "fifo"])
def test_unusable_parent_refused(cat, tmp_path, what):
    parent = tmp_path / f"parent-{what}.hxz"
    if what == "directory":
        parent.mkdir()
    elif what == "fifo":
        import os

        os.mkfifo(parent)
    elif what == "not_hxz":
        parent.write_bytes(b"\x00" * 10_000)
    else:
        corrupt.patch_header(cat["thin_base"].path, parent, encryption=(b"S" * 16, 1000))
    child = tmp_path / "child.hxz"
    corrupt.patch_header(cat["thin"].path, child, parent_paths=[str(parent)])
    r = try_start(tmp_path, child, timeout=15)
    assert_one_clear_line(r, parent.name)


@pytest.mark.parametrize("depth", [12, 200])
def test_long_parent_chain(cat, tmp_path, depth):
    """A chain of `depth` thin archives (each the parent of the previous one): a moderate
    chain is served correctly, an absurd one is refused with a clear line (bounded depth,
    no RecursionError)."""
    links = [tmp_path / f"c{i}.hxz" for i in range(depth)]
    for i, link in enumerate(links):
        parent = links[i + 1] if i + 1 < depth else cat["thin_base"].path
        corrupt.patch_header(cat["thin"].path, link, parent_paths=[str(parent)])
    r = try_start(tmp_path, links[0])
    if depth <= 12:
        assert r.returncode == 0, r.stderr
        srv = Server(tmp_path / "srv", links[0])
        try:
            with srv.client() as c:
                assert c.pread(c.size, 0) == cat["thin"].primary
        finally:
            assert srv.stop() == 0
    else:
        err = assert_one_clear_line(r)
        assert "chain" in err.lower() or "deep" in err.lower(), err


def test_parent_record_length_mismatch_gives_eio(cat, tmp_path):
    """The parent has the referenced hash on a record of another length (spec §7.3 step 4,
    §14): EIO, never bytes of the wrong block."""
    child = cat["thin_shifted"]
    base_copy = tmp_path / "base.hxz"
    shutil.copyfile(cat["thin_base"].path, base_copy)
    child_copy = tmp_path / "child.hxz"
    corrupt.patch_header(child.path, child_copy, parent_paths=[str(base_copy)])
    refs = [r for r in spec.parse(child_copy).records(0) if r.is_parent_ref]
    victim = refs[0]
    base_recs = spec.parse(base_copy).records(0)
    holder = next(r for r in base_recs if r.hash == victim.hash)
    other = next(r for r in base_recs if r.logical_len != victim.logical_len and r.is_stored
                 and r.hash not in {x.hash for x in refs})
    # swap the two hashes: the victim's hash now sits on a record of another length
    with open(base_copy, "r+b") as f:
        f.seek(holder.pos + 20)
        f.write(other.hash)
        f.seek(other.pos + 20)
        f.write(victim.hash)
    bad = [(r.start, r.logical_len) for r in refs if r.hash == victim.hash]
    _serve_and_check_damage(tmp_path, child_copy, child.primary, bad)


def test_parent_cycle_refused(cat, tmp_path):
    a = tmp_path / "a.hxz"
    b = tmp_path / "b.hxz"
    corrupt.patch_header(cat["thin_shifted"].path, a, parent_paths=[str(b)])
    corrupt.patch_header(cat["thin_base"].path, b, parent_paths=[str(a)])
    _refuses(tmp_path, a)
    selfish = tmp_path / "self.hxz"
    corrupt.patch_header(cat["thin"].path, selfish, parent_paths=[str(selfish)])
    _refuses(tmp_path, selfish)


def test_parent_hash_altered_gives_eio(cat, tmp_path):
    """The child's parent ref can no longer be found by hash: EIO for that block (hexz itself
    would return zeros), other blocks (stored and resolvable refs) still read."""
    child = cat["thin_shifted"]
    base_copy = tmp_path / "base.hxz"
    shutil.copyfile(cat["thin_base"].path, base_copy)
    child_copy = tmp_path / "child.hxz"
    corrupt.patch_header(child.path, child_copy, parent_paths=[str(base_copy)])
    refs = [r for r in spec.parse(child_copy).records(0) if r.is_parent_ref]
    victim = refs[len(refs) // 2]
    assert corrupt.alter_hashes(base_copy, victim.hash) >= 1
    bad = [(r.start, r.logical_len) for r in refs if r.hash == victim.hash]
    _serve_and_check_damage(tmp_path, child_copy, child.primary, bad)
    with hxz.open_archive(str(child_copy)) as a:
        with pytest.raises(hxz.BlockError):
            a.stream("disk").read(victim.start, 1)


def test_wrong_parent_archive_gives_eio(cat, tmp_path):
    """The parent path names a valid archive with other content: parent refs fail."""
    child = cat["thin"]
    child_copy = tmp_path / "child.hxz"
    corrupt.patch_header(child.path, child_copy, parent_paths=[str(cat["random"].path)])
    refs = [(r.start, r.logical_len) for r in spec.parse(child_copy).records(0)
            if r.is_parent_ref]
    _refused_or_eio(tmp_path, child_copy, child.primary, refs)


def test_damaged_parent_payload_gives_eio(cat, tmp_path):
    """CRC damage inside the parent surfaces as EIO on the child's reads of that content."""
    child = cat["thin_shifted"]
    base_copy = tmp_path / "base.hxz"
    payload_off, _, _ = corrupt.flip_payload(cat["thin_base"].path, base_copy, 4)
    base_recs = spec.parse(base_copy).records(0)
    hashes = {r.hash for r in base_recs if r.offset == payload_off}
    child_copy = tmp_path / "child.hxz"
    corrupt.patch_header(child.path, child_copy, parent_paths=[str(base_copy)])
    bad = [(r.start, r.logical_len) for r in spec.parse(child_copy).records(0)
           if r.is_parent_ref and r.hash in hashes]
    assert bad, "test setup: the child does not reference the damaged parent block"
    _serve_and_check_damage(tmp_path, child_copy, child.primary, bad)


def test_header_overflow_refused(cat, tmp_path):
    """hexz writes a header longer than its 4096-byte region when base= is very long (spec
    §3); such a file must be refused, not decoded from the data region."""
    import os

    import hexz

    shutil.copyfile(cat["thin_base"].path, tmp_path / "base.hxz")
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        hexz.pack(str(cat["thin_shifted"].input_path), "long.hxz",
                  base="./" * 2025 + "base.hxz", compression="lz4")
    finally:
        os.chdir(old)
    _refuses(tmp_path, tmp_path / "long.hxz", "header")


# -- index records edited by hand: a lost length must never read as zeros ------------------

FIELD_COMBOS = [("length",), ("offset",), ("checksum",), ("length", "offset"),
                ("length", "checksum"), ("offset", "checksum"),
                ("length", "offset", "checksum")]


def _lone_stored_record(layout, page: int) -> int:
    """Index of a stored, non-empty record of `page` whose payload no other record shares."""
    recs = layout.records(0)
    uses: dict[int, int] = {}
    for r in recs:
        uses[r.offset] = uses.get(r.offset, 0) + 1
    return next(i for i, r in enumerate(recs) if r.page == page and r.is_stored
                and r.logical_len and uses[r.offset] == 1 and i > 0
                and recs[i - 1].page == page)


@pytest.mark.parametrize("fields", FIELD_COMBOS, ids="+".join)
def test_record_fields_zeroed_give_eio_not_zeros(cat, tmp_path, fields):
    """Length, offset and checksum of a stored record set to 0, alone and together (all
    three make it look like a zero record; only its hash tells): the reads it covers fail
    with EIO, block status never calls it a hole, the log names file, stream, page, record and
    logical offset, and every other page reads right."""
    fx = cat["multipage"]
    layout = fx.layout()
    idx = _lone_stored_record(layout, 1)
    bad_file = tmp_path / "rec.hxz"
    rec = corrupt.set_record_fields(fx.path, bad_file, idx, **{f: 0 for f in fields})
    whole_page = "length" in fields or "offset" in fields
    bad = [_page_range(layout, 1, len(fx.primary)) if whole_page
           else (rec.start, rec.logical_len)]
    srv = Server(tmp_path / "srv", bad_file)
    try:
        _check_damage_served(srv, fx.primary, bad)
        with srv.client() as c:
            for start, length, flags in c.block_status(rec.logical_len, rec.start):
                assert not flags & (nbd.STATE_HOLE | nbd.STATE_ZERO), \
                    f"damaged record reported as hole/zero at {start}+{length}: {flags}"
        log = srv.log_text()
        assert bad_file.name in log and str(rec.start) in log, log[-2000:]
        if whole_page:
            assert "page 1" in log and "record" in log, log[-2000:]
    finally:
        assert srv.stop() == 0
    with hxz.open_archive(str(bad_file)) as a, pytest.raises(hxz.BlockError) as ei:
        a.stream("disk").read(rec.start, 1)
    msg = str(ei.value)
    assert "\n" not in msg and bad_file.name in msg and str(rec.start) in msg, msg


def test_parent_reference_with_checksum_gives_eio(cat, tmp_path):
    """A parent reference carries checksum 0; one with a checksum is damaged."""
    fx = cat["thin_shifted"]
    child = tmp_path / "child.hxz"
    corrupt.patch_header(fx.path, child, parent_paths=[str(cat["thin_base"].path)])
    recs = spec.parse(child).records(0)
    idx = next(i for i, r in enumerate(recs) if r.is_parent_ref)
    bad_file = tmp_path / "ref.hxz"
    corrupt.set_record_fields(child, bad_file, idx, checksum=0x1234)
    # Its page is the archive's last: refused at open (or EIO, were it another page).
    with pytest.raises(hxz.HxzError) as ei, hxz.open_archive(str(bad_file)) as a:
        a.stream("disk").read(recs[idx].start, 1)
    assert "parent reference" in str(ei.value) and "ref.hxz" in str(ei.value), str(ei.value)


# -- stream sizes that the index does not back: refused at start ---------------------------

@pytest.mark.parametrize("name,stream,how", [
    ("random", 0, "2^63"), ("random", 0, "2^64-1"), ("random", 0, "+4096"),
    ("multipage", 0, "-1"), ("dir", 1, "+1"), ("dir", 1, "2^63"), ("empty", 0, "+4096")])
def test_wrong_stream_size_refused(cat, tmp_path, name, stream, how):
    fx = cat[name]
    size = fx.layout().sizes[stream]
    value = {"2^63": 1 << 63, "2^64-1": (1 << 64) - 1, "+4096": size + 4096, "-1": size - 1,
             "+1": size + 1}[how]
    bad_file = tmp_path / f"size-{how.replace('^', '')}.hxz"
    corrupt.set_stream_size(fx.path, bad_file, stream, value)
    err = _refuses(tmp_path, bad_file)
    assert str(value) in err, err
