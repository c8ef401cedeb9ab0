"""plugins/hexz.py with url=: everything the local plugin does, over HTTP(S) and S3.

Real processes only: nbdkit with the plugin, nginx / http-disk-server / moto serving the
archives, libnbd and nbdcopy as clients.  Expected bytes are the packed inputs.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import time

import nbd
import pytest

from nbdsuite.launch import DiskServerProcess
from tests.remote.support import (
    BUCKET,
    REPO,
    nginx_bytes,
    replace_file,
    served_copy,
    start_gateway,
)
from tests.support.archives import catalog, checks, corrupt, spec
from tests.support.archives import inputs as gen
from tests.support.fakeserver import FakeServer
from tests.support.nbd import Server, assert_one_clear_line, list_exports, run_tool, try_start


def serve(tmp_path, name: str, *params: str) -> Server:
    return Server(tmp_path / name, None, *params)


def nbdcopy_bytes(uri: str, tmp_path, name: str = "copy.img") -> bytes:
    out = tmp_path / name
    r = run_tool(["nbdcopy", uri, str(out)], timeout=120)
    assert r.returncode == 0, r.stderr
    return out.read_bytes()


@pytest.mark.parametrize("name", catalog.ALL)
def test_catalogue_over_nginx(cat, cat_nginx, tmp_path, name):
    """Every fixture kind (thin chains found next to the child's URL, directory members,
    both streams, Zstd with and without a dictionary) read back byte-exact."""
    fx = cat[name]
    srv = serve(tmp_path, "srv", f"url={cat_nginx.url}{fx.path.name}")
    try:
        with srv.client() as c:
            assert c.size == len(fx.primary)
        got = nbdcopy_bytes(srv.uri, tmp_path)
        assert got == fx.primary
        if fx.secondary:
            mem = serve(tmp_path, "mem", f"url={cat_nginx.url}{fx.path.name}", "stream=memory")
            try:
                with mem.client() as c:
                    assert c.size == len(fx.secondary)
                    assert c.pread(len(fx.secondary), 0) == fx.secondary
            finally:
                mem.stop()
        if fx.members:
            names = list_exports(srv.socket)
            for path, data in fx.members.items():
                assert path in names
                with srv.client(export=path) as c:
                    assert c.size == len(data)
                    if data:
                        assert c.pread(len(data), 0) == data
    finally:
        assert srv.stop() == 0, srv.log_text()


def _index_ranges(path) -> list[tuple[int, int]]:
    """Byte ranges of the header, the index pages and the master index onwards."""
    lay = spec.parse(path)
    out = [(0, 4096), (lay.header.index_offset, path.stat().st_size)]
    for pages in lay.pages:
        out += [(pe.offset, pe.offset + pe.length) for pe in pages]
    return out


def _requested(ng, start: int, name: str) -> list[tuple[int, int]]:
    out = []
    for line in ng.access_log.read_text().splitlines()[start:]:
        if line.split(" ")[1] != f"/{name}":
            continue
        a, b = line.rsplit('"bytes=', 1)[1].rstrip('"').split("-")
        out.append((int(a), int(b) + 1))
    return out


def _payload_bytes(requested: list[tuple[int, int]], path) -> int:
    """How many bytes of stored payloads the requested ranges cover."""
    spans = sorted({(r.offset, r.offset + r.length) for s in (0, 1)
                    for r in spec.parse(path).records(s) if r.is_stored})
    return sum(max(0, min(b, hi) - max(a, lo)) for a, b in requested for lo, hi in spans)


@pytest.mark.parametrize("name", ["text", "mixed", "multipage", "dir", "thin_of_mixed"])
def test_extents_fetch_no_payload(cat, nginx, tmp_path, name):
    """Block status reads the header and the index only: zero blocks are told by their
    record (a small payload whose hash is that of zeros), never by fetching the payload."""
    fx = cat[name]
    www = tmp_path / "www"
    path = served_copy(fx.path, www)
    chain = [path]
    if fx.parent is not None:
        chain.append(served_copy(fx.parent, www))
    ng = nginx(www)
    srv = serve(tmp_path, "srv", f"url={ng.url}{path.name}")
    try:
        with srv.client() as c:
            ext = c.block_status(c.size, 0)
        assert sum(n for _, n, _ in ext) == len(fx.primary)
        if name in ("mixed", "thin_of_mixed"):
            assert any(f & nbd.STATE_ZERO for _, _, f in ext)
    finally:
        assert srv.stop() == 0
    for p in chain:
        allowed = _index_ranges(p)
        for a, b in _requested(ng, 0, p.name):
            assert any(lo <= a and b <= hi for lo, hi in allowed), (p.name, a, b)


def _zero_heavy_image(size: int, seed: int) -> bytes:
    """Zero runs (64 KiB-1 MiB) between runs of log-like text: many small zero blocks."""
    rnd = random.Random(seed)
    out, n = [], 0
    while n < size:
        if rnd.random() < 0.4:
            part = bytes(rnd.randint(64, 1024) << 10)
        else:
            part = gen.text(rnd.randint(64, 512) << 10, rnd.randrange(1 << 30))
        out.append(part)
        n += len(part)
    return b"".join(out)[:size]


def test_zero_heavy_block_status_walk_fetches_no_payload(tmp_path, nginx):
    """A full block-status walk over url= of a zero-heavy archive sends no payload byte
    (nginx's access log) and gives the extents a decoding reader (verify=hash) gives, which
    are sound and complete against the input.  Under verify=hash the same walk does fetch
    the small payloads it decodes: the log would see a regression."""
    import hexz

    www = tmp_path / "www"
    www.mkdir()
    data = _zero_heavy_image(24 << 20, 91)
    (tmp_path / "in.img").write_bytes(data)
    hexz.pack(str(tmp_path / "in.img"), str(www / "z.hxz"), compression="lz4")
    lay = spec.parse(www / "z.hxz")
    must = checks.zero_records(lay, data)
    assert len(must) > 50, len(must)
    ng = nginx(www)

    def walk(*params: str) -> tuple[list, int, int]:
        start = len(ng.access_log.read_text().splitlines()) if ng.access_log.exists() else 0
        srv = serve(tmp_path, f"srv{start}", *params)
        try:
            with srv.client() as c:
                ext = [(s, n, bool(f & nbd.STATE_ZERO)) for s, n, f in
                       c.block_status(c.size, 0)]
        finally:
            assert srv.stop() == 0, srv.log_text()
        got = _requested(ng, start, "z.hxz") if params[0].startswith("url=") else []
        return ext, len(got), _payload_bytes(got, www / "z.hxz")

    remote, reqs, payload = walk(f"url={ng.url}z.hxz")
    assert payload == 0 and reqs > 0, (reqs, payload)
    checks.check_extents(remote, data, 0, len(data), must)
    decoded, _, _ = walk(f"file={www / 'z.hxz'}", "verify=hash")
    assert remote == decoded
    strict, _, strict_payload = walk(f"url={ng.url}z.hxz", "verify=hash")
    assert strict == decoded and strict_payload > 0


def test_sequential_copy_fetches_at_most_1_05x_the_archive(tmp_path, nginx):
    """A full nbdcopy of an archive without dedup: nginx sends at most 1.05x its size."""
    import hexz

    www = tmp_path / "www"
    www.mkdir()
    src = tmp_path / "in.img"
    data = gen.random_bytes(12 << 20, 81) + gen.text(12 << 20, 82)
    src.write_bytes(data)
    hexz.pack(str(src), str(www / "img.hxz"), compression="lz4")
    size = (www / "img.hxz").stat().st_size
    ng = nginx(www)
    srv = serve(tmp_path, "srv", f"url={ng.url}img.hxz")
    try:
        assert nbdcopy_bytes(srv.uri, tmp_path) == data
    finally:
        assert srv.stop() == 0
    reqs, sent = nginx_bytes(ng, "img.hxz")
    assert sent <= 1.05 * size, (sent, size)
    assert sent < len(data)          # compressed bytes on the wire, not the image
    assert max(r[3] for r in ng.requests()) <= 8 << 20


def test_http_disk_server_as_a_second_independent_server(cat, tmp_path):
    fx = cat["multipage_zstd"]
    hds = DiskServerProcess(["--disk", str(fx.path), "--read-only"], tmp_path / "hds.log",
                            cwd=REPO)
    srv = serve(tmp_path, "srv", f"url={hds.url}")
    try:
        assert nbdcopy_bytes(srv.uri, tmp_path) == fx.primary
    finally:
        assert srv.stop() == 0
        hds.stop()


def test_a_cdn_style_mirror_answering_ranges_with_200_serves_exact_bytes(cat, tmp_path):
    # Its first answer, and the first answer for each range, is the whole object (200),
    # as from a CDN edge that has not cached it yet: the start and every read go through.
    fx = cat["multipage_zstd"]
    copy = tmp_path / "vm.hxz"      # FakeServer opens its file for writing too
    copy.write_bytes(fx.path.read_bytes())
    cdn = FakeServer(str(copy)).start()
    cdn.whole_first, cdn.whole_new_ranges = 1, True
    try:
        srv = serve(tmp_path, "srv", f"url={cdn.url}", "retries=2", "retry-delay=0.01")
        try:
            assert nbdcopy_bytes(srv.uri, tmp_path) == fx.primary
        finally:
            assert srv.stop() == 0
        assert cdn.gets > len(cdn.ranges_seen) > 1
    finally:
        cdn.stop()


def test_a_mirror_that_redirects_serves_exact_bytes(cat, tmp_path):
    # A download host redirecting to where the archive is (here http-disk-server).
    fx = cat["multipage_zstd"]
    hds = DiskServerProcess(["--disk", str(fx.path), "--read-only"], tmp_path / "hds.log",
                            cwd=REPO)
    copy = tmp_path / "vm.hxz"      # FakeServer opens its file for writing too
    copy.write_bytes(fx.path.read_bytes())
    host = FakeServer(str(copy)).start()
    host.redirects = {"/vm.hxz": hds.url}
    try:
        srv = serve(tmp_path, "srv", f"url={host.url}vm.hxz")
        try:
            assert nbdcopy_bytes(srv.uri, tmp_path) == fx.primary
        finally:
            assert srv.stop() == 0
        assert "redirected to" in srv.log_text()
    finally:
        host.stop()
        hds.stop()


def test_failover_sigkill_one_mirror_mid_copy(cat, tmp_path):
    fx = cat["multipage"]
    a = DiskServerProcess(["--disk", str(fx.path), "--read-only"], tmp_path / "a.log", cwd=REPO)
    b = DiskServerProcess(["--disk", str(fx.path), "--read-only"], tmp_path / "b.log", cwd=REPO)
    srv = serve(tmp_path, "srv", f"url={a.url},{b.url}", "retries=1", "retry-delay=0.05",
                "cache=4M")
    try:
        n = len(fx.primary)
        with srv.client() as c:
            first = c.pread(n // 3, 0)
            a.send_signal(signal.SIGKILL)
            a.proc.wait(10)
            rest = b"".join(c.pread(min(1 << 20, n - o), o) for o in range(n // 3, n, 1 << 20))
        assert first + rest == fx.primary
        assert "failed over to" in srv.log_text()
    finally:
        assert srv.stop() == 0
        b.stop()
        a.kill()


def _kill_nginx(ng) -> None:
    """SIGKILL an nginx: the master first (or it would respawn its worker), then the worker,
    which stops answering mid-reply."""
    master = ng.proc.pid
    workers = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == master:
                workers.append(int(d))
    assert workers, "nginx has no worker"
    os.kill(master, signal.SIGKILL)
    for w in workers:
        os.kill(w, signal.SIGKILL)
    ng.proc.wait(10)


def test_nbdcopy_survives_sigkill_of_the_active_mirror(tmp_path, nginx):
    """Two nginx mirrors of one archive; nbdcopy through url=A,B; A is SIGKILLed once the
    copy has fetched payloads from it (its access log says so) and while nbdcopy runs.
    The copy completes byte-exact, the rest fetched from B.  The delay filter only slows
    the copy so that the kill lands in its middle."""
    import hexz

    data = gen.random_bytes(12 << 20, 71) + gen.text(20 << 20, 72)
    (tmp_path / "in.img").write_bytes(data)
    www = tmp_path / "www"
    www.mkdir()
    hexz.pack(str(tmp_path / "in.img"), str(www / "img.hxz"), compression="lz4")
    header_end = 4096
    a, b = nginx(www, "a"), nginx(www, "b")
    srv = Server(tmp_path / "srv", None, f"url={a.url}img.hxz,{b.url}img.hxz", "retries=1",
                 "retry-delay=0.05", "timeout=5", "delay-read=30ms", extra=["--filter=delay"])
    out = tmp_path / "copy.img"
    copy = subprocess.Popen(["nbdcopy", "--connections=1", "--requests=4", srv.uri, str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not any(lo >= header_end for lo, _ in _requested(a, 0, "img.hxz")):
            assert copy.poll() is None, "nbdcopy ended before A served a payload"
            assert time.monotonic() < deadline, "no payload fetched from A within 30 s"
            time.sleep(0.01)
        assert copy.poll() is None, "nbdcopy ended before A could be killed"
        _kill_nginx(a)
        assert copy.poll() is None, "nbdcopy ended before A was killed: too fast a copy"
        _, err = copy.communicate(timeout=120)
        assert copy.returncode == 0, err
        assert out.read_bytes() == data
        assert any(lo >= header_end for lo, _ in _requested(b, 0, "img.hxz"))
        assert "failed over to" in srv.log_text()
    finally:
        if copy.poll() is None:
            copy.kill()
            copy.wait(10)
        assert srv.stop() == 0, srv.log_text()


def test_replaced_file_gives_eio_never_mixed_bytes(cat, nginx, tmp_path):
    fx = cat["random"]
    path = served_copy(fx.path, tmp_path / "www", "img.hxz")
    ng = nginx(tmp_path / "www")
    srv = serve(tmp_path, "srv", f"url={ng.url}img.hxz", "cache=1M", "readahead=off")
    try:
        with srv.client() as c:
            assert c.pread(100_000, 0) == fx.primary[:100_000]
            replace_file(path, path.read_bytes()[::-1])     # same size, other bytes
            for off in (len(fx.primary) - 200_000, 1_500_000):
                with pytest.raises(nbd.Error) as ei:
                    c.pread(4096, off)
                assert ei.value.errnum == errno.EIO
        assert "changed since it was opened" in srv.log_text()
    finally:
        assert srv.stop() == 0


def test_corrupt_block_is_eio_naming_the_block(cat, nginx, tmp_path):
    fx = cat["random"]
    www = tmp_path / "www"
    www.mkdir()
    poff, _plen, hit = corrupt.flip_payload(fx.path, www / "bad.hxz", 2)
    ng = nginx(www)
    srv = serve(tmp_path, "srv", f"url={ng.url}bad.hxz")
    try:
        s, n = hit[0]
        with srv.client() as c:
            with pytest.raises(nbd.Error) as ei:
                c.pread(1, s + n // 2)
            assert ei.value.errnum == errno.EIO
            assert c.pread(4096, 0) == fx.primary[:4096] or s == 0
        log = srv.log_text()
        assert f"payload offset {poff}" in log and "CRC" in log and ng.url in log
    finally:
        assert srv.stop() == 0


def test_thin_child_remote_parent_local(cat, nginx, tmp_path):
    fx = cat["thin_shifted"]
    www = tmp_path / "www"
    served_copy(fx.path, www)                        # the parent is not on the server
    local = tmp_path / "local"
    served_copy(cat["thin_base"].path, local)
    ng = nginx(www)
    srv = serve(tmp_path, "srv", f"url={ng.url}{fx.path.name}", f"parent-dir={local}")
    try:
        assert nbdcopy_bytes(srv.uri, tmp_path) == fx.primary
    finally:
        assert srv.stop() == 0


def test_thin_child_local_parent_remote(cat, nginx, tmp_path):
    fx = cat["thin_of_thin"]
    local = tmp_path / "local"
    child = served_copy(fx.path, local)              # parents are not next to it
    www = tmp_path / "www"
    served_copy(cat["thin_shifted"].path, www)
    served_copy(cat["thin_base"].path, www)
    ng = nginx(www)
    srv = Server(tmp_path / "srv", child, f"parent-url=thin_shifted.hxz={ng.url}thin_shifted.hxz")
    try:
        assert nbdcopy_bytes(srv.uri, tmp_path) == fx.primary
    finally:
        assert srv.stop() == 0


def test_s3_with_credentials_and_thin_siblings(cat, moto, tmp_path):
    key = tmp_path / "secret"
    key.write_text(moto.secret_key + "\n")
    for name in ("thin_of_thin", "dir_zstd"):
        fx = cat[name]
        srv = serve(tmp_path, f"srv-{name}", f"url=s3://{BUCKET}/cat/{fx.path.name}",
                    f"endpoint-url={moto.endpoint}", f"access-key={moto.access_key}",
                    f"secret-key=+{key}", "region=us-east-1")
        try:
            assert nbdcopy_bytes(srv.uri, tmp_path, f"{name}.img") == fx.primary
            assert moto.secret_key not in srv.log_text()
        finally:
            assert srv.stop() == 0


def test_s3_wrong_credentials_one_line_at_start(moto, tmp_path):
    r = try_start(tmp_path, None, f"url=s3://{BUCKET}/cat/text.hxz",
                  f"endpoint-url={moto.endpoint}", f"access-key={moto.access_key}",
                  "secret-key=wrong-secret")
    err = assert_one_clear_line(r, "refused the credentials", f"s3://{BUCKET}/cat/text.hxz")
    assert "wrong-secret" not in err


def test_presigned_url_checked_by_a_strict_server(cat, tmp_path):
    """A presigned URL of the suite's S3 gateway, which checks the SigV4 signature of every
    request's query string and refuses unsigned requests.  The key has a space and a "+",
    so a client that re-encodes the path or the query breaks the signature.  The archive is
    named ``*.hexz``: the gateway then serves its bytes as one object (``*.hxz`` files are
    served decompressed)."""
    fx = cat["dir"]
    root = tmp_path / "bucket"
    key = "published/dir snapshot+1.hexz"
    served_copy(fx.path, root / "published", key.split("/")[1])
    gw = start_gateway(root, tmp_path / "gw")
    try:
        url = gw.presign(key)
        assert "X-Amz-Signature=" in url and "%2B1.hexz" in url
        srv = serve(tmp_path, "srv", f"url={url}")
        try:
            assert nbdcopy_bytes(srv.uri, tmp_path) == fx.primary
            path, data = next(iter(fx.members.items()))
            with srv.client(export=path) as c:
                assert c.pread(len(data), 0) == data
            assert "X-Amz-Signature" not in srv.log_text()
        finally:
            assert srv.stop() == 0, srv.log_text()
        sig = url.rsplit("X-Amz-Signature=", 1)[1][:64]
        bad = {
            "unsigned": url.split("?", 1)[0],
            "tampered signature": url.replace(sig, sig[:-1] + ("0" if sig[-1] != "0" else "1")),
            "altered query": url.replace("X-Amz-Expires=600", "X-Amz-Expires=601"),
            "another key": url.replace("%2B1.hexz", "%2B2.hexz"),
        }
        for what, u in bad.items():
            assert u != url, what
            r = try_start(tmp_path, None, f"url={u}")
            why = "AccessDenied" if what == "unsigned" else "SignatureDoesNotMatch"
            err = assert_one_clear_line(r, "403", why, "dir%20snapshot")
            assert sig not in err and gw.secret_key not in err, what
    finally:
        gw.server.stop()
    # Every request was checked: all good ones carried the signature, and each bad URL was
    # refused by the verifier for the reason expected.
    log = gw.server.log.read_text()
    served = [ln for ln in log.splitlines() if '" 206 ' in ln]
    assert served and all("X-Amz-Signature=***" in ln for ln in served)
    assert log.count("does not match the signature you provided") == 3


def test_refusals_at_start_are_one_line(cat, cat_nginx, tmp_path):
    url = f"{cat_nginx.url}text.hxz"
    r = try_start(tmp_path, cat["text"].path, f"url={url}")
    assert_one_clear_line(r, "exclusive")
    r = try_start(tmp_path, None, f"url={cat_nginx.url}missing.hxz")
    assert_one_clear_line(r, "missing.hxz", "404")
    r = try_start(tmp_path, None, "url=ftp://example.test/x.hxz")
    assert_one_clear_line(r, "scheme")
    r = try_start(tmp_path, None, f"url={url}", "connections=99")
    assert_one_clear_line(r, "connections")
    r = try_start(tmp_path, None, f"url={url}", "user=bob", "password=s3cr3t-v")
    assert r.returncode == 0, r.stderr          # nginx ignores credentials it does not ask
    assert "s3cr3t-v" not in r.stderr


def test_cache_filter_for_repeated_use(cat, nginx, tmp_path):
    """--filter=cache keeps decompressed blocks on disk: a second copy fetches nothing."""
    fx = cat["random"]
    path = served_copy(fx.path, tmp_path / "www")
    ng = nginx(tmp_path / "www")
    srv = Server(tmp_path / "srv", None, f"url={ng.url}{path.name}", "cache-on-read=true",
                 extra=["--filter=cache"])
    try:
        assert nbdcopy_bytes(srv.uri, tmp_path, "a.img") == fx.primary
        after_first = len(ng.requests())
        assert nbdcopy_bytes(srv.uri, tmp_path, "b.img") == fx.primary
        assert len(ng.requests()) == after_first
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("name", ["multipage_zstd", "thin_shifted", "dir"])
def test_verify_hash_over_url(cat, cat_nginx, tmp_path, name):
    fx = cat[name]
    srv = serve(tmp_path, "srv", f"url={cat_nginx.url}{fx.path.name}", "verify=hash")
    try:
        assert nbdcopy_bytes(srv.uri, tmp_path) == fx.primary
    finally:
        assert srv.stop() == 0


def test_remote_parameters_need_a_remote_archive(cat, tmp_path):
    r = try_start(tmp_path, cat["text"].path, "user=bob")
    assert_one_clear_line(r, "user=")
    r = try_start(tmp_path, None, "url=http://127.0.0.1:1/a.hxz", "timeout=1", "timeout=2")
    assert_one_clear_line(r, "timeout= given twice")
