"""--snapshot: a Hexz archive made by the hexz package, served read-only and decompressed;
--verify crc|hash."""

from __future__ import annotations

import os

import hexz
import pytest
import requests

from tests.support.archives import corrupt
from tests.support.diskserver import launch, start_server


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    root = tmp_path_factory.mktemp("snap")
    disk = os.urandom(200_000) + bytes(1 << 20) + os.urandom(123_457)
    memory = os.urandom(70_001)
    d = root / "dir"
    d.mkdir()
    (d / "disk.img").write_bytes(disk)
    (d / "memory").write_bytes(memory)   # a root-level "memory" file is the secondary stream
    hexz.pack(str(d), str(root / "vm.hxz"), compression="lz4")
    # a thin child over a single-file base
    base_data = os.urandom(600_000)
    child_data = base_data[:300_000] + os.urandom(4096) + base_data[304_096:]
    (root / "base.img").write_bytes(base_data)
    (root / "child.img").write_bytes(child_data)
    hexz.pack(str(root / "base.img"), str(root / "base.hxz"), compression="zstd")
    hexz.pack(str(root / "child.img"), str(root / "child.hxz"), base=str(root / "base.hxz"),
              compression="zstd")
    return root, disk, memory, child_data


@pytest.fixture(scope="module")
def snap_server(archives, tmp_path_factory):
    root = archives[0]
    s = start_server(["--snapshot", str(root / "vm.hxz")], tmp_path_factory.mktemp("srv"))
    yield s
    assert s.stop() == 0, s.log_text()


def test_routes_serve_both_streams(snap_server, archives):
    _, disk, memory, _ = archives
    url = snap_server.url
    for path, data in [("", disk), ("disk", disk), ("memory", memory)]:
        h = requests.head(url + path, timeout=5)
        assert h.status_code == 200 and h.headers["Content-Length"] == str(len(data))
        assert requests.get(url + path, timeout=10).content == data
        for spec, lo, hi in [("0-0", 0, 1), ("65530-65545", 65530, 65546),
                             (f"{len(data) - 5}-{len(data) + 100}", len(data) - 5, len(data)),
                             ("-4097", len(data) - 4097, len(data)), ("60000-", 60000, None)]:
            r = requests.get(url + path, headers={"Range": f"bytes={spec}"}, timeout=10)
            hi = len(data) if hi is None else hi
            assert r.status_code == 206
            assert r.headers["Content-Range"] == f"bytes {lo}-{hi - 1}/{len(data)}"
            assert r.content == data[lo:hi]
        r = requests.get(url + path, headers={"Range": f"bytes={len(data)}-"}, timeout=5)
        assert r.status_code == 416


def test_snapshot_is_read_only(snap_server, archives):
    url = snap_server.url
    r = requests.put(url + "disk", data=b"x", headers={"Content-Range": "bytes 0-0/*"},
                     timeout=5)
    assert r.status_code == 403
    assert requests.patch(url, json={"op": "flush"}, timeout=5).status_code == 403
    assert requests.options(url + "memory", timeout=5).json()["features"] == ["extents"]
    assert requests.get(url + "nothing", timeout=5).status_code == 404


def test_info_and_extents(snap_server, archives):
    _, disk, memory, _ = archives
    info = requests.get(snap_server.url + "info", timeout=5).json()
    assert info["snapshot"]["disk_size"] == len(disk)
    assert info["snapshot"]["memory_size"] == len(memory)
    assert info["snapshot"]["compression"] == "lz4"
    assert info["snapshot"]["disk_blocks"] > 0 and "parent_chain" in info["snapshot"]
    assert info["routes"]["/memory"]["size"] == len(memory)
    ext = requests.get(snap_server.url + "disk/extents", timeout=5).json()
    pos = 0
    for e in ext:
        assert e["start"] == pos
        if e["zero"]:
            assert disk[pos:pos + e["length"]].count(0) == e["length"]
        pos += e["length"]
    assert pos == len(disk)
    # most of the 1 MiB zero run is reported as zero
    assert sum(e["length"] for e in ext if e["zero"]) >= 900_000
    assert requests.get(snap_server.url + "extents", timeout=5).json() == ext


def test_thin_child_archive(archives, tmp_path):
    root, _, _, child_data = archives
    s = start_server(["--snapshot", str(root / "child.hxz")], tmp_path)
    try:
        assert requests.get(s.url, timeout=10).content == child_data
        assert requests.get(s.url + "memory", timeout=5).status_code == 404
        r = requests.get(s.url + "disk", headers={"Range": "bytes=299990-304105"}, timeout=5)
        assert r.content == child_data[299990:304106]
        assert requests.get(s.url + "info", timeout=5).json()["snapshot"]["parent_chain"]
    finally:
        assert s.stop() == 0


def test_disk_mode_serves_the_archive_bytes_raw(archives, tmp_path):
    root = archives[0]
    raw = (root / "vm.hxz").read_bytes()
    s = start_server(["--disk", str(root / "vm.hxz"), "--read-only"], tmp_path)
    try:
        assert requests.get(s.url, timeout=10).content == raw
    finally:
        assert s.stop() == 0


def test_not_an_archive_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.hxz"
    bad.write_bytes(b"not a hexz archive" * 100)
    p = launch(["--snapshot", str(bad), "--port", "0"], tmp_path, "bad")
    assert p.wait(10) == 1
    err = (tmp_path / "bad.stderr").read_text().strip()
    assert len(err.splitlines()) == 1 and "bad.hxz" in err, err


# ---- --verify ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def swapped(tmp_path_factory):
    """A damage a CRC cannot see: a record pointing at another valid payload of the same
    logical length (offset, length and checksum all taken from that other record).
    Returns (archive, original data, (start, length) of the damaged record, the bytes the
    other payload holds)."""
    root = tmp_path_factory.mktemp("swapped")
    # Repeated content makes hexz cut small blocks (1-4 KiB), among which some have the
    # same length.
    block = os.urandom(100_000)
    data = block * 3 + os.urandom(200_000)
    (root / "disk.img").write_bytes(data)
    good = root / "good.hxz"
    hexz.pack(str(root / "disk.img"), str(good), compression="lz4")
    src = root / "bad.hxz"
    victim, other = corrupt.point_at_other_payload(good, src)
    wrong = data[other.start:other.start + other.logical_len]
    assert wrong != data[victim.start:victim.start + victim.logical_len]
    return src, data, (victim.start, victim.logical_len), wrong


def _get(server, start: int, length: int) -> requests.Response:
    return requests.get(server.url, headers={"Range": f"bytes={start}-{start + length - 1}"},
                        timeout=10)


def test_verify_crc_is_accepted_and_reported(archives, tmp_path):
    root, disk = archives[0], archives[1]
    s = start_server(["--snapshot", str(root / "vm.hxz"), "--verify", "crc"], tmp_path)
    try:
        assert requests.get(s.url, timeout=10).content == disk
        assert requests.get(s.url + "info", timeout=5).json()["snapshot"]["verify"] == "crc"
    finally:
        assert s.stop() == 0, s.log_text()


def test_swapped_record_passes_the_crc_check(swapped, tmp_path):
    """Why --verify hash exists: with CRCs only, the damaged record reads as another
    block's bytes (the CRC of the stored bytes matches)."""
    path, _, (start, length), wrong = swapped
    s = start_server(["--snapshot", str(path)], tmp_path)
    try:
        r = _get(s, start, length)
        assert r.status_code == 206 and r.content == wrong
    finally:
        assert s.stop() == 0, s.log_text()


def test_verify_hash_serves_a_good_archive(archives, tmp_path):
    root, disk, memory = archives[0], archives[1], archives[2]
    s = start_server(["--snapshot", str(root / "vm.hxz"), "--verify", "hash"], tmp_path)
    try:
        assert requests.get(s.url, timeout=10).content == disk
        assert requests.get(s.url + "memory", timeout=10).content == memory
        assert requests.get(s.url + "info", timeout=5).json()["snapshot"]["verify"] == "hash"
    finally:
        assert s.stop() == 0, s.log_text()


def test_verify_hash_refuses_a_record_pointing_at_another_payload(swapped, tmp_path):
    path, data, (start, length), _ = swapped
    s = start_server(["--snapshot", str(path), "--verify", "hash"], tmp_path)
    try:
        r = _get(s, start, length)
        assert r.status_code == 500 and r.text.count("\n") == 1   # EIO, never wrong bytes
        # The rest of the stream still reads.
        if start:
            assert _get(s, 0, start).content == data[:start]
        assert _get(s, start + length, len(data) - start - length).content == \
            data[start + length:]
    finally:
        assert s.stop() == 0, s.log_text()
    assert path.name in s.log_text()          # the log names the damaged file
