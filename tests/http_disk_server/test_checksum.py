"""GET /checksum (ovirt-imageio's algorithm) and nbd-checksum agree with each other and with
a direct computation, for a disk, an nbdcopy of it and a snapshot of it; one byte changed
changes the checksum."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import hexz
import pytest
import requests

from nbdsuite import blkhash
from tests.support.diskserver import start_server
from tests.support.nbd import Server, run_tool

MiB = 1 << 20
BLOCK = 1 * MiB


def reference(data: bytes, block_size: int, algorithm: str = "blake2b") -> str:
    """The definition, computed directly: H(H(block 1) + ... + H(block N))."""
    def new(b: bytes = b"") -> hashlib._Hash:
        if algorithm.startswith("blake2"):
            return hashlib.new(algorithm, b, digest_size=32)
        return hashlib.new(algorithm, b)
    outer = new()
    for i in range(0, len(data), block_size):
        outer.update(new(data[i:i + block_size]).digest())
    return outer.hexdigest()


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """9 MiB + 12345 bytes: data, a zero run written as data, a hole, data again."""
    root = tmp_path_factory.mktemp("checksum")
    path = root / "disk.img"
    with open(path, "wb") as f:
        f.write(os.urandom(2 * MiB + 100))
        f.write(bytes(3 * MiB))                      # zeros that are allocated
        f.seek(3 * MiB, os.SEEK_CUR)                 # a hole
        f.write(os.urandom(MiB + 12245))
    data = path.read_bytes()
    snap = root / "disk.hxz"
    hexz.pack(str(path), str(snap), compression="lz4")
    return path, data, snap


def _nbd_checksum(uri: str, *args: str) -> dict:
    r = subprocess.run([sys.executable, "-m", "nbdsuite.nbd_checksum", uri, *args],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("algorithm", ["blake2b", "sha256"])
def test_disk_copy_and_snapshot_agree(image, tmp_path, algorithm):
    path, data, snap = image
    want = reference(data, BLOCK, algorithm)
    query = {"algorithm": algorithm, "block_size": BLOCK}
    disk = start_server(["--disk", str(path)], tmp_path, "disk")
    snapshot = start_server(["--snapshot", str(snap)], tmp_path, "snap")
    try:
        got = requests.get(disk.url + "checksum", params=query, timeout=60).json()
        assert got == {"algorithm": algorithm, "block_size": BLOCK, "checksum": want}
        got = requests.get(snapshot.url + "checksum", params=query, timeout=60).json()
        assert got["checksum"] == want
        # The nbdcopy of the snapshot, read back over NBD by nbd-checksum.
        hx = Server(tmp_path / "hx", snap)
        try:
            copy = tmp_path / "copy.img"
            r = run_tool(["nbdcopy", hx.uri, str(copy)])
            assert r.returncode == 0, r.stderr
            assert _nbd_checksum(hx.uri, "--algorithm", algorithm, "--block-size",
                                 str(BLOCK))["checksum"] == want
        finally:
            assert hx.stop() == 0
        assert reference(copy.read_bytes(), BLOCK, algorithm) == want
    finally:
        disk.stop()
        snapshot.stop()


def test_one_byte_changed_changes_the_checksum(image, tmp_path):
    path, data, _ = image
    changed = tmp_path / "changed.img"
    changed.write_bytes(data)
    with open(changed, "r+b") as f:
        f.seek(7 * MiB + 5)                          # inside the hole of the original
        f.write(b"\x01")
    a = start_server(["--disk", str(path)], tmp_path, "a")
    b = start_server(["--disk", str(changed)], tmp_path, "b")
    try:
        ca = requests.get(a.url + "checksum", timeout=60).json()
        cb = requests.get(b.url + "checksum", timeout=60).json()
        assert ca["block_size"] == blkhash.DEFAULT_BLOCK_SIZE == cb["block_size"]
        assert ca["checksum"] != cb["checksum"]
        assert cb["checksum"] == reference(changed.read_bytes(), blkhash.DEFAULT_BLOCK_SIZE)
    finally:
        a.stop()
        b.stop()


def test_algorithms_and_bad_queries(image, tmp_path):
    path, _, _ = image
    s = start_server(["--disk", str(path)], tmp_path)
    try:
        algos = requests.get(s.url + "checksum/algorithms", timeout=10).json()["algorithms"]
        assert "blake2b" in algos and "sha256" in algos and algos == sorted(algos)
        for params, needle in (({"algorithm": "md42"}, "unknown algorithm"),
                               ({"block_size": "4k"}, "invalid block_size"),
                               ({"block_size": str(64 << 20)}, "outside"),
                               ({"block_size": str(MiB + 512)}, "multiple of 4096")):
            r = requests.get(s.url + "checksum", params=params, timeout=10)
            assert r.status_code == 400 and needle in r.text, (params, r.text)
    finally:
        s.stop()


def test_blocks_merge_small_extents_and_keep_zero_blocks():
    """Extents smaller than a block merge into a data block; long zero runs stay zero."""
    ext = [(0, 100, False), (100, 4000, True), (4100, 20000, True), (24100, 10, False)]
    got = [(b.start, b.length, b.zero) for b in blkhash.blocks(ext, 8192)]
    assert got == [(0, 8192, False), (8192, 8192, True), (16384, 7726, False)]
