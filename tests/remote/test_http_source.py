"""HttpSource against real servers: nginx, http-disk-server, a misbehaving server.

Every byte read is compared with the file the server serves.  What crossed the wire is
counted from nginx's access log.
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from hxz.errors import BlockError, FormatError
from hxz.sources.http import HttpSource, NotFound
from multihttp.params import Params, apply
from nbdsuite.launch import DiskServerProcess, NginxProcess
from tests.remote.support import REPO, nginx_bytes, replace_file, served_copy
from tests.support.archives import catalog
from tests.support.fakeserver import FakeServer


def params(**kw) -> Params:
    p = Params()
    for k, v in kw.items():
        apply(p, k.replace("_", "-"), str(v))
    return p


def read_sequential(src, piece_sizes=(4096, 65536, 300_000, 1 << 20)) -> bytes:
    rng = random.Random(src.size)
    out, pos = [], 0
    while pos < src.size:
        n = min(rng.choice(piece_sizes), src.size - pos)
        out.append(src.pread(n, pos))
        pos += n
    return b"".join(out)


class Logs(list):
    def __call__(self, msg: str) -> None:
        self.append(msg)


def disk_server(path: Path, tmp_path: Path, *extra: str, name: str = "srv") -> DiskServerProcess:
    return DiskServerProcess(["--disk", str(path), "--read-only", *extra],
                             tmp_path / f"{name}.log", cwd=REPO)


def fake_copy(tmp_path: Path, src: Path) -> tuple[FakeServer, Path, bytes]:
    """A FakeServer on a copy of a catalogue archive (it opens its file for writing too,
    and the catalogue is shared): the server, the copy's path and its bytes."""
    path = tmp_path / "a.hxz"
    path.write_bytes(src.read_bytes())
    return FakeServer(str(path)).start(), path, path.read_bytes()


@pytest.mark.parametrize("name", catalog.ALL)
def test_catalogue_bytes_over_nginx(cat, cat_nginx, name):
    path = cat[name].path
    data = path.read_bytes()
    src = HttpSource([cat_nginx.url + path.name])
    try:
        assert src.size == len(data)
        assert src.name == cat_nginx.url + path.name
        assert read_sequential(src) == data
        rng = random.Random(7)
        ranges = [(o, min(n, len(data) - o)) for o, n in
                  ((rng.randrange(len(data)), rng.randrange(1, 70_000)) for _ in range(20))]
        # adjacent ranges too, so some are merged into one request
        ranges += [(0, 100), (100, 4000), (4100, 1)] if len(data) > 4101 else []
        got = src.preadv(ranges)
        assert got == [data[o:o + n] for o, n in ranges]
    finally:
        src.close()


def test_sequential_copy_fetches_each_byte_once(cat, nginx, tmp_path):
    """A sequential reader interleaving reads near the end (as index pages are read)
    makes nginx send at most 1.05x the file, in requests of bounded size."""
    path = served_copy(cat["multipage"].path, tmp_path / "www")
    data = path.read_bytes()
    ng = nginx(tmp_path / "www")
    src = HttpSource([ng.url + path.name], params(connections=4))
    try:
        out, pos, rng = [], 0, random.Random(3)
        while pos < src.size:
            n = min(rng.randrange(1000, 200_000), src.size - pos)
            out.append(src.pread(n, pos))
            pos += n
            if rng.random() < 0.05:     # an index page near the end of the file
                at = len(data) - rng.randrange(1, 60_000)
                assert src.pread(min(2000, len(data) - at), at) == data[at:at + 2000]
        assert b"".join(out) == data
    finally:
        src.close()
    reqs, sent = nginx_bytes(ng, path.name)
    assert sent <= 1.05 * len(data), (sent, len(data))
    biggest = max(r[3] for r in ng.requests())
    assert biggest <= 8 << 20


def test_requests_run_in_parallel(tmp_path):
    """connections=4: a sequential reader gets several ranged GETs in flight."""
    path = tmp_path / "disk.bin"
    data = random.Random(1).randbytes(24 << 20)
    path.write_bytes(data)
    srv = FakeServer(str(path)).start()
    try:
        src = HttpSource([srv.url], params(connections=4), log=Logs())
        assert read_sequential(src, (1 << 20,)) == data
        src.close()
        assert srv.max_conns >= 2, srv.max_conns
        assert srv.max_conns <= 4 + 1       # connections= bounds them (+ the probe's)
    finally:
        srv.stop()


def test_failover_when_a_mirror_is_killed(cat, tmp_path):
    path = cat["random"].path
    data = path.read_bytes()
    a = disk_server(path, tmp_path, name="a")
    b = disk_server(path, tmp_path, name="b")
    logs = Logs()
    try:
        src = HttpSource([a.url, b.url], params(retries=1, retry_delay=0.05), log=logs)
        half = len(data) // 2
        first = read_sequential(src)[:half]
        a.send_signal(signal.SIGKILL)
        a.proc.wait(10)
        rest = src.pread(len(data) - half, half)
        again = src.pread(1000, 12345)
        src.close()
        assert first + rest == data and again == data[12345:13345]
        assert any("failed over to " + b.url.rstrip("/") in m or "failed over to" in m
                   for m in logs), logs
    finally:
        b.stop()
        a.kill()


def test_failover_mid_copy_in_threads(cat, tmp_path):
    """SIGKILL the active mirror while reads are in flight in several threads."""
    path = cat["multipage"].path
    data = path.read_bytes()
    a = disk_server(path, tmp_path, name="a")
    b = disk_server(path, tmp_path, name="b")
    try:
        src = HttpSource([a.url, b.url], params(retries=1, retry_delay=0.05), log=Logs())
        n = len(data)
        parts = [(o, min(256 << 10, n - o)) for o in range(0, n, 256 << 10)]
        results: dict[int, bytes] = {}
        errors = []
        killed = threading.Event()

        def worker(k: int) -> None:
            try:
                for i, (o, ln) in enumerate(parts[k::4]):
                    results[o] = src.pread(ln, o)
                    if k == 0 and i == 3 and not killed.is_set():
                        a.send_signal(signal.SIGKILL)
                        killed.set()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        src.close()
        assert not errors, errors
        assert killed.is_set()
        assert b"".join(results[o] for o, _ in parts) == data
    finally:
        b.stop()
        a.kill()


# (A mirror whose replies name another size mid-read is a replaced object: EIO, below.)
@pytest.mark.parametrize("mode", ["200", "200-range", "bad-range", "unknown-size", "short",
                                  "drop", "stall", "gzip"])
def test_misbehaving_mirror_fails_over_never_wrong_bytes(tmp_path, cat, mode):
    bad, path, data = fake_copy(tmp_path, cat["random"].path)
    good = disk_server(path, tmp_path, name="good")
    logs = Logs()
    try:
        src = HttpSource([bad.url, good.url],
                         params(retries=1, retry_delay=0.01, timeout=1), log=logs)
        bad.mode, bad.stall = mode, 3.0
        assert src.pread(100_000, 1_000_000) == data[1_000_000:1_100_000]
        assert read_sequential(src) == data
        src.close()
        assert any("failed over to" in m for m in logs), logs
    finally:
        bad.mode = "ok"
        bad.stop()
        good.stop()


@pytest.mark.parametrize("mode", ["200", "200-range", "bad-range", "other-size",
                                  "unknown-size", "short", "stall", "gzip"])
def test_misbehaving_only_mirror_is_eio_never_wrong_bytes(tmp_path, cat, mode):
    bad, _, _ = fake_copy(tmp_path, cat["random"].path)
    try:
        src = HttpSource([bad.url], params(retries=1, retry_delay=0.01, timeout=1),
                         log=Logs())
        bad.mode, bad.stall = mode, 3.0
        with pytest.raises(BlockError) as ei:
            src.pread(100_000, 1_000_000)
        msg = str(ei.value)
        assert "\n" not in msg and "bytes 1000000-1099999" in msg, msg
        assert src.name in msg
        src.close()
    finally:
        bad.mode = "ok"
        bad.stop()


@pytest.mark.parametrize("mode", ["200", "200-range", "bad-range", "unknown-size", "short"])
def test_mirror_misbehaving_at_open_is_not_used(tmp_path, cat, mode):
    # The probe at open goes through the same strict check as every later GET.
    bad, path, data = fake_copy(tmp_path, cat["random"].path)
    bad.mode = mode
    good = disk_server(path, tmp_path, name="good")
    logs = Logs()
    try:
        src = HttpSource([bad.url, good.url], params(retries=1, retry_delay=0.01, timeout=1),
                         log=logs)
        assert src.size == len(data)
        assert src.pread(100_000, 1_000_000) == data[1_000_000:1_100_000]
        src.close()
        # Only the probe (1 + retries attempts) reached the bad mirror: the data came
        # from the good one.
        assert [m for m, *_ in bad.requests] == ["GET", "GET"]
    finally:
        bad.mode = "ok"
        bad.stop()
        good.stop()

    # Alone, it is refused at open with one line naming it.
    bad = FakeServer(str(path)).start()
    bad.mode = mode
    try:
        with pytest.raises(FormatError) as ei:
            HttpSource([bad.url], params(retries=1, retry_delay=0.01, timeout=1), log=Logs())
        assert "\n" not in str(ei.value) and "no usable mirror" in str(ei.value)
    finally:
        bad.mode = "ok"
        bad.stop()


def test_a_cdn_edge_answering_200_until_it_has_the_object_is_retried_at_open(tmp_path, cat):
    # The only mirror answers its first GETs with the whole object, as a CDN edge does
    # for an object it has not cached yet: the probe at open is retried like any request.
    cdn, path, data = fake_copy(tmp_path, cat["random"].path)
    cdn.whole_first = 2
    logs = Logs()
    try:
        src = HttpSource([cdn.url], params(retries=2, retry_delay=0.01), log=logs)
        assert read_sequential(src) == data
        src.close()
        opening = [m for m in logs if "(opening, attempt" in m]
        assert len(opening) == 2 and all("answered 200" in m for m in opening), logs
    finally:
        cdn.stop()

    # Past the retry budget it is refused at open, in one line naming the mirror.
    cdn = FakeServer(str(path)).start()
    cdn.whole_first = 2
    try:
        with pytest.raises(FormatError) as ei:
            HttpSource([cdn.url], params(retries=1, retry_delay=0.01), log=Logs())
        msg = str(ei.value)
        assert "\n" not in msg and "answered 200" in msg and cdn.url.rstrip("/") in msg
        assert cdn.gets == 2
    finally:
        cdn.stop()


def test_a_missing_object_is_not_retried_at_open(tmp_path):
    ng = NginxProcess(tmp_path, tmp_path / "nginx")
    try:
        t0 = time.monotonic()
        with pytest.raises(NotFound):
            HttpSource([f"{ng.url}nothing.hxz"], params(retries=5, retry_delay=1), log=Logs())
        assert time.monotonic() - t0 < 1        # no backoff sleep
        # nginx logs a request once its reply is sent: wait for the line, then for any other.
        while not ng.requests() and time.monotonic() - t0 < 5:
            time.sleep(0.02)
        time.sleep(0.2)
        assert [(m, p, st) for m, p, st, _ in ng.requests()] == [("GET", "/nothing.hxz", 404)]
    finally:
        ng.stop()


def test_a_cdn_answering_some_ranges_with_200_gives_exact_bytes(tmp_path, cat):
    cdn, _, data = fake_copy(tmp_path, cat["multipage"].path)
    cdn.whole_new_ranges = True     # every range is answered 200 once, then 206
    logs = Logs()
    try:
        src = HttpSource([cdn.url], params(retries=1, retry_delay=0.01), log=logs)
        assert read_sequential(src) == data
        assert src.pread(len(data) - 1000, 500) == data[500:len(data) - 500]
        src.close()
        refused = [m for m in logs if "answered 200" in m]
        assert len(refused) >= 3, logs
    finally:
        cdn.stop()


def test_redirects_are_followed_anew_on_every_request(tmp_path, cat, nginx):
    # A download host pointing at where the bytes are (here nginx): every ranged GET
    # is redirected and followed, none remembered (a signed target may expire).
    www = tmp_path / "www"
    www.mkdir()
    data = cat["multipage"].path.read_bytes()
    (www / "target.hxz").write_bytes(data)
    ng = nginx(www)
    host, _, _ = fake_copy(tmp_path, cat["multipage"].path)
    host.redirects = {"/a.hxz": f"{ng.url}target.hxz"}
    logs = Logs()
    try:
        src = HttpSource([f"{host.url}a.hxz"], params(retries=0), log=logs)
        assert read_sequential(src) == data
        fetched = src.requests
        src.close()
        gets = [r for r in host.requests if r[0] == "GET"]
        assert len(gets) == 1 + fetched             # the probe, then each fetch
        # nginx logs a request once its reply is sent: wait (bounded) for the last lines.
        deadline = time.monotonic() + 5
        while True:
            served = [r for r in ng.requests() if r[1] == "/target.hxz"]
            if len(served) >= 1 + fetched or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert len(served) == 1 + fetched and all(r[2] == 206 for r in served)
        assert sum("redirected to" in m for m in logs) == 1, logs
    finally:
        host.stop()


def test_redirect_rules(tmp_path, cat):
    host, path, data = fake_copy(tmp_path, cat["random"].path)
    other = FakeServer(str(path)).start()
    host.auth = other.auth = "u:pw"
    try:
        # Same origin (relative Location): user=/password= still go with it.
        host.redirects = {"/a.hxz": "/b.hxz"}
        src = HttpSource([f"{host.url}a.hxz"], params(user="u", password="pw"), log=Logs())
        assert src.pread(5000, 100_000) == data[100_000:105_000]
        src.close()
        assert {r[1] for r in host.requests} == {"/a.hxz", "/b.hxz"}
        # Another origin: never (the other host then asks for them, and the open fails).
        host.redirects = {"/a.hxz": f"{other.url}b.hxz"}
        with pytest.raises(FormatError) as ei:
            HttpSource([f"{host.url}a.hxz"], params(user="u", password="pw", retries=0),
                       log=Logs())
        assert "HTTP 401" in str(ei.value) and other.url.rstrip("/") in str(ei.value)
        assert other.requests and all("Authorization" not in h for _, _, h in other.requests)
        # A loop, a Location with credentials, another scheme: refused in one line, and
        # not asked again (the retries are for failures that may pass).
        for location, needle in [("/a.hxz", "more than 5 redirects"),
                                 (f"http://x:y@127.0.0.1:{other.port}/b", "credentials"),
                                 ("ftp://127.0.0.1/b", "unusable URL")]:
            host.redirects = {"/a.hxz": location}
            before = len(host.requests)
            with pytest.raises(FormatError) as ei:
                HttpSource([f"{host.url}a.hxz"], params(user="u", password="pw", retries=2),
                           log=Logs())
            msg = str(ei.value)
            assert needle in msg and "\n" not in msg and "x:y" not in msg, msg
            assert len(host.requests) - before == (6 if location == "/a.hxz" else 1)
    finally:
        host.stop()
        other.stop()


def test_a_redirected_request_stays_within_its_timeout(tmp_path, cat):
    host, path, data = fake_copy(tmp_path, cat["random"].path)
    target = FakeServer(str(path)).start()
    host.redirects = {"/a.hxz": f"{target.url}b.hxz"}
    host.mode = target.mode = "stall"
    host.stall = target.stall = 0.6
    try:
        # Each hop alone answers within 1 s; the two together do not (the probe at open
        # has connect-timeout= for its budget).
        t0 = time.monotonic()
        with pytest.raises(FormatError) as ei:
            HttpSource([f"{host.url}a.hxz"], params(connect_timeout=1, retries=0), log=Logs())
        assert "timed out" in str(ei.value) and time.monotonic() - t0 < 3, str(ei.value)
        src = HttpSource([f"{host.url}a.hxz"], params(connect_timeout=3, timeout=3,
                                                      retries=0), log=Logs())
        assert src.pread(1000, 5000) == data[5000:6000]
        src.close()
    finally:
        host.mode = target.mode = "ok"
        host.stop()
        target.stop()


def test_https_never_redirects_to_plain_http():
    from hxz.sources.redirects import Redirects
    from multihttp.errors import ServerFault
    from multihttp.params import parse_url
    here = parse_url("https://mirror.example:8443/a.hxz")
    with pytest.raises(ServerFault) as ei:
        Redirects(Params(), Logs())._target(here, "http://cdn.example/a.hxz", "m")
    assert "refused (plain http)" in str(ei.value)
    there = Redirects(Params(), Logs())._target(here, "//cdn.example/b?sig=1", "m")
    assert (there.scheme, there.host, there.port, there.path) == \
        ("https", "cdn.example", 443, "/b?sig=1")


def test_replaced_file_is_an_error_never_mixed_bytes(cat, nginx, tmp_path):
    www = tmp_path / "www"
    path = served_copy(cat["random"].path, www, "img.hxz")
    old = path.read_bytes()
    ng = nginx(www)
    src = HttpSource([ng.url + "img.hxz"], log=Logs())
    try:
        assert src.pread(50_000, 0) == old[:50_000]
        new = bytes(b ^ 0xFF for b in old[:4096]) + old[4096:]
        replace_file(path, new)                 # same size, different bytes
        for off in (2_000_000, 0, 4000):
            with pytest.raises(BlockError) as ei:
                src.pread(10_000, off)
            assert "changed since it was opened" in str(ei.value)
        # nginx answered If-Match with 412: nothing of the new file was taken as data
        assert any(r[2] == 412 for r in ng.requests()), ng.requests()
    finally:
        src.close()


def test_replaced_file_detected_through_failover_reprobe(cat, nginx, tmp_path):
    """A mirror that comes back after a failure is checked against its pin again."""
    www = tmp_path / "www"
    path = served_copy(cat["random"].path, www, "img.hxz")
    old = path.read_bytes()
    ng = nginx(www)
    src = HttpSource([ng.url + "img.hxz"], params(retries=0), log=Logs())
    try:
        assert src.pread(1000, 0) == old[:1000]
        replace_file(path, old[:-1] + bytes([old[-1] ^ 1]))
        with pytest.raises(BlockError, match="changed since it was opened"):
            src.pread(1000, 3_000_000)
    finally:
        src.close()


def test_mirror_with_other_etag_used_when_size_and_header_match(cat, nginx, tmp_path):
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    pa = served_copy(cat["random"].path, a_dir, "img.hxz")
    pb = served_copy(cat["random"].path, b_dir, "img.hxz")
    replace_file(pb, pb.read_bytes())           # same bytes, another mtime: another ETag
    data = pa.read_bytes()
    na, nb = nginx(a_dir, "ng-a"), nginx(b_dir, "ng-b")
    logs = Logs()
    src = HttpSource([na.url + "img.hxz", nb.url + "img.hxz"], params(retries=0), log=logs)
    try:
        assert src.pread(1000, 0) == data[:1000]
        pa.unlink()                             # mirror a answers 404 from now on
        assert read_sequential(src) == data
        assert src.pread(5000, 70_000) == data[70_000:75_000]
        notes = [m for m in logs if "differs from" in m and "using it" in m]
        assert len(notes) == 1, logs
    finally:
        src.close()


def test_mirror_with_other_content_is_not_used(cat, nginx, tmp_path):
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    served_copy(cat["random"].path, a_dir, "img.hxz")
    data = (a_dir / "img.hxz").read_bytes()
    (b_dir).mkdir()
    (b_dir / "img.hxz").write_bytes(bytes(len(data)))  # same size, other header
    na, nb = nginx(a_dir, "ng-a"), nginx(b_dir, "ng-b")
    logs = Logs()
    src = HttpSource([na.url + "img.hxz", nb.url + "img.hxz"], params(retries=0), log=logs)
    try:
        assert src.pread(1000, 0) == data[:1000]
        (a_dir / "img.hxz").unlink()            # mirror a answers 404 from now on
        with pytest.raises(BlockError) as ei:
            src.pread(1000, 1_000_000)
        assert "a different object" in str(ei.value)
        # nothing but the probe was read from it
        assert all(r[3] <= 4096 for r in nb.requests())
    finally:
        src.close()


def test_basic_auth_every_password_form(cat, tmp_path):
    path = cat["text"].path
    data = path.read_bytes()
    pw = tmp_path / "pw"
    pw.write_text("s3cret-Pa55\n")
    srv = disk_server(path, tmp_path, "--user", "alice", "--password-file", str(pw))
    try:
        for form in ("s3cret-Pa55", f"+{pw}"):
            src = HttpSource([srv.url], params(user="alice", password=form), log=Logs())
            assert read_sequential(src) == data
            src.close()
        with pytest.raises(FormatError) as ei:
            HttpSource([srv.url], params(user="alice", password="wrong-guess"), log=Logs())
        msg = str(ei.value)
        assert "\n" not in msg and "401" in msg and "wrong-guess" not in msg, msg
        with pytest.raises(FormatError, match="401"):
            HttpSource([srv.url], log=Logs())
    finally:
        srv.stop()


@pytest.fixture
def cert(tmp_path):
    crt, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True,
                   timeout=60)
    return crt, key


def test_tls_cafile_insecure_and_refused(cat, tmp_path, cert):
    crt, key = cert
    path = cat["mixed"].path
    data = path.read_bytes()
    srv = disk_server(path, tmp_path, "--tls-cert", str(crt), "--tls-key", str(key))
    url = srv.url.replace("http://", "https://")
    try:
        for p in (params(cafile=crt), params(insecure="true")):
            src = HttpSource([url], p, log=Logs())
            assert read_sequential(src) == data
            src.close()
        with pytest.raises(FormatError) as ei:
            HttpSource([url], params(retries=0), log=Logs())
        assert "\n" not in str(ei.value) and "certificate" in str(ei.value).lower()
    finally:
        srv.stop()


def test_names_carry_no_secrets(cat, cat_nginx):
    path = cat["text"].path
    url = cat_nginx.url + path.name + "?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA"
    src = HttpSource([url], log=Logs())
    try:
        assert src.name == cat_nginx.url + path.name
        assert src.pread(10, 0) == path.read_bytes()[:10]
    finally:
        src.close()
    with pytest.raises(FormatError) as ei:
        HttpSource(["http://bob:hunter2@127.0.0.1:1/x.hxz"], log=Logs())
    assert "hunter2" not in str(ei.value)


def test_open_errors_are_one_line(cat_nginx):
    with pytest.raises(NotFound) as ei:
        HttpSource([cat_nginx.url + "missing.hxz"], log=Logs())
    assert "404" in str(ei.value) and "\n" not in str(ei.value)
    with pytest.raises(FormatError) as ei:
        HttpSource(["http://127.0.0.1:1/x.hxz"], params(retries=0), log=Logs())
    assert "connection refused" in str(ei.value)


def test_connections_kept_for_redirect_targets_are_bounded(monkeypatch):
    from hxz.sources import redirects
    from multihttp.params import parse_url
    monkeypatch.setattr(redirects, "MAX_TARGETS", 3)
    r = redirects.Redirects(Params(), Logs())
    pools = [r._pool(parse_url(f"http://127.0.0.{i}:80{i}/x")) for i in range(1, 6)]
    assert len(r._pools) == 3
    assert list(r._pools.values()) == pools[2:]
    assert r._pool(parse_url("http://127.0.0.5:805/y")) is pools[4]     # same origin
