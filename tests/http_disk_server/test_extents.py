"""GET /extents: the allocation map of a sparse file (SEEK_DATA/SEEK_HOLE)."""

from __future__ import annotations

import requests

from tests.support.diskserver import start_server


def test_extents_on_sparse_file(tmp_path):
    p = tmp_path / "sparse.img"
    size = 16 << 20
    with open(p, "wb") as f:
        f.truncate(size)
        f.seek(1 << 20)
        f.write(b"d" * (1 << 20))
        f.seek(10 << 20)
        f.write(b"e" * 4096)
    s = start_server(["--disk", str(p), "--read-only"], tmp_path)
    try:
        ext = requests.get(s.url + "extents", timeout=5).json()
    finally:
        assert s.stop() == 0
    # contiguous cover of the file
    pos = 0
    for e in ext:
        assert e["start"] == pos and e["length"] > 0
        pos += e["length"]
    assert pos == size
    data = p.read_bytes()
    for e in ext:
        chunk = data[e["start"]:e["start"] + e["length"]]
        if e["zero"]:
            assert e["hole"] and chunk.count(0) == len(chunk)
    data_ranges = [(e["start"], e["length"]) for e in ext if not e["zero"]]
    covered = set()
    for start, length in data_ranges:
        covered.update(range(start // 4096, (start + length) // 4096))
    assert (1 << 20) // 4096 in covered and (10 << 20) // 4096 in covered
    assert 0 not in covered and (5 << 20) // 4096 not in covered

