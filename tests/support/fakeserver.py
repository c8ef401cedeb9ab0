"""A programmable HTTP disk server for tests: correct by default, misbehaving on demand.

``FakeServer(path).start()`` serves a file on 127.0.0.1 in a thread.  Set
``server.mode`` to make GETs misbehave:

    ok         correct 206 replies
    200        ignore Range, answer 200 with the whole file
    200-range  answer 200 with a Content-Range and Content-Length matching the request,
               but bytes from offset 0 (only the status says this is not the range)
    bad-range  206 with a Content-Range shifted by one block
    other-size 206 with the range asked for, but a complete length one byte larger
    unknown-size  206 with the range asked for and an unknown complete length (``/*``)
    gzip       206 with the right Content-Range and Content-Length, but the body gzipped
               (Content-Encoding: gzip) and cut or padded to that length: wrong bytes
               that only the Content-Encoding header tells apart
    short      206 whose body is shorter than its Content-Length (then close)
    drop       send half the body, then close the connection
    stall      sleep ``stall`` seconds before answering
    trickle    send the body in 1 KiB pieces, 0.1 s apart
    5xx        503 for every request
    no-head    405 for HEAD

Like a CDN edge, whatever the mode: ``whole_first = N`` answers the first N GETs with 200
and the whole file (an object not cached yet); ``whole_new_ranges = True`` so answers the
first GET of each range (a range not cached yet), and the next GETs of it correctly.

``redirects = {path: location}`` answers a GET of ``path`` with 302 and that Location
(after the auth check), like a download host pointing at where the bytes are.

``old = True`` behaves like the server this project replaces: no OPTIONS
(501), and every reply closes the connection.

``features`` controls the OPTIONS reply (empty = a server without the
extensions, answering 405).  ``requests`` records (method, path, headers), and
``arrived`` the wall-clock time each of them arrived.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from nbdsuite.httprange import format_content_range


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, fmt, *args):  # keep test output quiet
        pass

    def setup(self):
        super().setup()
        o = self.server.owner
        with self.server.lock:
            o.open_conns += 1
            o.max_conns = max(o.max_conns, o.open_conns)

    def finish(self):
        try:
            super().finish()
        finally:
            with self.server.lock:
                self.server.owner.open_conns -= 1

    def _record(self):
        with self.server.lock:
            self.server.log.append((self.command, self.path, dict(self.headers.items())))
            self.server.arrived.append(time.time())

    def _auth_ok(self) -> bool:
        want = self.server.owner.auth
        if want is None:
            return True
        token = "Basic " + base64.b64encode(want.encode()).decode()
        if self.headers.get("Authorization") == token:
            return True
        self._reply(401, extra={"WWW-Authenticate": 'Basic realm="disk"'})
        return False

    def end_headers(self):
        if self.server.owner.old:
            self.send_header("Connection", "close")
            self.close_connection = True
        super().end_headers()

    def _reply(self, code: int, body: bytes = b"", extra: dict | None = None):
        self.send_response(code)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _common(self) -> bool:
        self._record()
        o = self.server.owner
        if o.mode == "5xx":
            self._drain()
            self._reply(503)
            return False
        if o.mode == "stall" and self.command in ("GET", "PUT"):
            time.sleep(o.stall)
        return self._auth_ok()

    def _drain(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)

    def do_HEAD(self):
        if self.server.owner.mode == "no-head":
            self._record()
            self._reply(405)
            return
        if not self._common():
            return
        self.send_response(200)
        self.send_header("Content-Length", str(self.server.owner.size()))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()

    def do_OPTIONS(self):
        if not self._common():
            return
        feats = self.server.owner.features
        if self.server.owner.old:
            self._reply(501)
            return
        if not feats:
            self._reply(405)
            return
        body = json.dumps({"features": sorted(feats), "max_readers": 8,
                           "max_writers": 8}).encode()
        self._reply(200, body, {"Content-Type": "application/json"})

    def do_GET(self):
        if not self._common():
            return
        o = self.server.owner
        if self.path in o.redirects:
            self._reply(302, b"<html>moved</html>\n", {"Location": o.redirects[self.path]})
            return
        size = o.size()
        rng = self.headers.get("Range", "")
        a, _, b = rng.removeprefix("bytes=").partition("-")
        first, last = int(a), min(int(b), size - 1)
        n = last - first + 1
        data = os.pread(o.fd, n, first)
        with self.server.lock:
            o.gets += 1
            cdn_whole = o.gets <= o.whole_first or \
                (o.whole_new_ranges and rng not in o.ranges_seen)
            o.ranges_seen.add(rng)
        if o.mode == "200" or cdn_whole:
            whole = os.pread(o.fd, size, 0)
            self._reply(200, whole)
            return
        cr = format_content_range(first, last, size)
        if o.mode == "200-range":
            self._reply(200, os.pread(o.fd, n, 0), {"Content-Range": cr})
            return
        if o.mode == "bad-range":
            cr = format_content_range(first + 512, last + 512, size)
        elif o.mode == "other-size":
            cr = format_content_range(first, last, size + 1)
        elif o.mode == "unknown-size":
            cr = format_content_range(first, last, None)
        if o.mode == "gzip":
            data = (gzip.compress(data) + bytes(n))[:n]
        self.send_response(206)
        self.send_header("Content-Range", cr)
        self.send_header("Content-Length", str(n))
        if o.mode == "gzip":
            self.send_header("Content-Encoding", "gzip")
        if o.mode in ("short", "drop"):
            self.send_header("Connection", "close")
        self.end_headers()
        if o.mode == "short":
            self.wfile.write(data[: n // 2])
            self.close_connection = True
        elif o.mode == "trickle":
            for i in range(0, n, 1024):
                self.wfile.write(data[i:i + 1024])
                time.sleep(0.1)
        elif o.mode == "drop":
            self.wfile.write(data[: n // 2])
            self.wfile.flush()
            self.close_connection = True
        else:
            self.wfile.write(data)

    def do_PUT(self):
        if not self._common():
            return
        o = self.server.owner
        n = int(self.headers["Content-Length"])
        first = int(self.headers["Content-Range"].split()[1].split("-")[0])
        data = self.rfile.read(n)
        if o.read_only:
            self._reply(403)
            return
        if o.put_status:
            self._reply(o.put_status)
            return
        os.pwrite(o.fd, data, first)
        if "flush=n" not in self.path:
            os.fdatasync(o.fd)
        self._reply(200)

    def do_PATCH(self):
        if not self._common():
            return
        o = self.server.owner
        doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if doc["op"] == "flush":
            os.fdatasync(o.fd)
            o.flushes += 1
        elif doc["op"] == "zero":
            os.pwrite(o.fd, bytes(doc["size"]), doc["offset"])
            if doc.get("flush"):
                os.fdatasync(o.fd)
        self._reply(200)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        # A client that refuses a reply (a 200 where it asked for a range, say) closes
        # the connection mid-body: expected in these tests, not worth a traceback.
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class FakeServer:
    def __init__(self, path: str, features=("zero", "flush", "extents")) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR)
        self.mode = "ok"
        self.redirects: dict[str, str] = {}
        self.whole_first = 0
        self.whole_new_ranges = False
        self.ranges_seen: set[str] = set()
        self.gets = 0
        self.stall = 0.0
        self.features = set(features)
        self.auth: str | None = None    # "user:password" to require Basic auth
        self.read_only = False
        self.old = False
        self.put_status = 0
        self.flushes = 0
        self.open_conns = 0
        self.max_conns = 0
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.owner = self
        self.httpd.lock = threading.Lock()
        self.httpd.log = []
        self.httpd.arrived = []         # wall-clock arrival time of each logged request
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    @property
    def requests(self) -> list:
        return self.httpd.log

    @property
    def arrived(self) -> list[float]:
        return self.httpd.arrived

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        os.close(self.fd)


if __name__ == "__main__":
    # Stand-alone mode for process-level tests: fakeserver.py FILE
    import sys
    s = FakeServer(sys.argv[1])
    if len(sys.argv) > 2:  # rebind on the requested port
        s.httpd.server_close()
        s.httpd = _Server(("127.0.0.1", int(sys.argv[2])), _Handler)
        s.httpd.owner, s.httpd.lock, s.httpd.log = s, threading.Lock(), []
    print(f"port {s.port}", flush=True)
    print("Server ready!", flush=True)
    s.httpd.serve_forever()
