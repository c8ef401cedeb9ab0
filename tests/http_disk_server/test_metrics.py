"""GET /metrics: Prometheus text, parsed with prometheus_client's own parser; every figure
moves with the requests actually made."""

from __future__ import annotations

import os
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.archives import corrupt
from tests.support.diskserver import start_server

SIZE = 1 << 20
P = "http_disk_server_"


def scrape(url: str, **kw) -> dict[tuple[str, tuple], float]:
    """Every sample of ``url`` + "metrics" as {(name, sorted labels): value}."""
    r = requests.get(url + "metrics", timeout=10, **kw)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def disk(tmp_path):
    path = tmp_path / "disk.img"
    path.write_bytes(os.urandom(SIZE))
    return path


def test_counters_follow_the_requests(disk, tmp_path):
    s = start_server(["--disk", str(disk)], tmp_path)
    try:
        for i in range(3):
            r = requests.get(s.url, headers={"Range": f"bytes={i * 4096}-{i * 4096 + 999}"},
                             timeout=10)
            assert r.status_code == 206
        assert requests.get(s.url + "nowhere", timeout=10).status_code == 404
        for n in (512, 4096):
            r = requests.put(s.url, data=b"w" * n, headers={"Content-Range": f"bytes 0-{n - 1}/*"},
                             timeout=10)
            assert r.status_code == 200
        r = requests.put(s.url + "?flush=n", data=b"n" * 100,
                         headers={"Content-Range": "bytes 0-99/*"}, timeout=10)
        assert r.status_code == 200
        m = scrape(s.url)
        assert m[(P + "requests_total", (("method", "GET"), ("status", "206")))] == 3
        assert m[(P + "requests_total", (("method", "GET"), ("status", "404")))] == 1
        assert m[(P + "requests_total", (("method", "PUT"), ("status", "200")))] == 3
        assert m[(P + "read_bytes_total", ())] == 3 * 1000
        assert m[(P + "written_bytes_total", ())] == 512 + 4096 + 100
        assert m[(P + "fsync_seconds_count", ())] == 2         # the ?flush=n PUT: none
        assert m[(P + "request_seconds_count", (("method", "GET"),))] == 4
        assert m[(P + "request_seconds_count", (("method", "PUT"),))] == 3
        assert m[(P + "requests_in_flight", ())] == 1          # the scrape itself
        assert m[(P + "drbd_waiting", ())] == 0
        # The first scrape is counted once its reply is sent, which may be just after the
        # client has read it: look again for a bounded moment.
        key = (P + "requests_total", (("method", "GET"), ("status", "200")))
        deadline = time.monotonic() + 5
        while key not in (again := scrape(s.url)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert again[key] >= 1
    finally:
        assert s.stop() == 0


def test_behind_the_same_auth_and_can_be_turned_off(disk, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("Sekr1t\n")
    s = start_server(["--disk", str(disk), "--user", "u", "--password-file", str(pw)],
                     tmp_path, "auth")
    off = start_server(["--disk", str(disk), "--no-metrics"], tmp_path, "off")
    try:
        assert requests.get(s.url + "metrics", timeout=10).status_code == 401
        assert (P + "requests_total", (("method", "GET"), ("status", "401"))) in \
            scrape(s.url, auth=("u", "Sekr1t"))
        assert requests.get(off.url + "metrics", timeout=10).status_code == 404
    finally:
        assert s.stop() == 0
        assert off.stop() == 0


def test_snapshot_block_errors_are_counted(cat, tmp_path):
    fx = cat["text"]
    rec = [r for r in fx.layout().records(0) if r.is_stored][4]
    bad = tmp_path / "bad.hxz"
    corrupt.set_record_field(fx.path, bad, 4, "checksum", rec.checksum ^ 1)
    s = start_server(["--snapshot", str(bad)], tmp_path)
    try:
        assert scrape(s.url)[(P + "snapshot_block_errors_total", ())] == 0
        for _ in range(2):
            r = requests.get(s.url, headers={"Range": f"bytes={rec.start}-{rec.start + 9}"},
                             timeout=10)
            assert r.status_code == 500
        assert scrape(s.url)[(P + "snapshot_block_errors_total", ())] == 2
    finally:
        assert s.stop() == 0
