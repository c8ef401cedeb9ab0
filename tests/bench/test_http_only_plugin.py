"""bench/http_only_plugin.py: the raw image served through url='s own HTTP client, the
transport row of bench_remote.py.  It must serve the image's bytes, through nginx, or its
figures would not be those of a copy."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from nbdsuite.launch import NbdkitProcess, NginxProcess

PLUGIN = Path(__file__).resolve().parents[2] / "bench" / "http_only_plugin.py"


def test_the_transport_row_serves_the_raw_image_through_nginx(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    # Not a multiple of the fetcher's chunk, so the last request is a short one.
    data = os.urandom((5 << 20) + 12345)
    (www / "raw.img").write_bytes(data)
    ng = NginxProcess(www, tmp_path / "nginx")
    try:
        srv = NbdkitProcess(tmp_path / "srv", ["python", str(PLUGIN), f"url={ng.url}raw.img"])
        try:
            out = tmp_path / "copy.img"
            subprocess.run(["nbdcopy", srv.uri, str(out)], check=True, timeout=60)
            assert out.read_bytes() == data
        finally:
            srv.stop()
        # It fetched through the ranged GETs of the HTTP client, never the whole file.
        ranged = [r for r in ng.requests() if r[1] == "/raw.img"]
        assert ranged and all(r[2] == 206 for r in ranged)
    finally:
        ng.stop()
