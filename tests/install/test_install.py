"""make install / make uninstall: the installed plugins, programs, man pages and units work
on their own, outside the checkout, and uninstall removes every file it installed."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.support.diskserver import start_server

REPO = Path(__file__).resolve().parents[2]
PAGES = {"man1": ["hxz-info.1", "nbdkit-hexz-plugin.1", "nbdkit-multihttp-plugin.1"],
         "man8": ["http-disk-server.8", "nbd-http-server.8"]}
UNITS = ["http-disk-server@.service", "nbd-http-server@.service", "nbdkit-hexz@.service",
         "nbdkit-hexz@.socket"]


def _make(target: str, **variables: str) -> subprocess.CompletedProcess:
    args = ["make", "-C", str(REPO), target, *(f"{k}={v}" for k, v in variables.items())]
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    # Installing elsewhere must leave the running venv's own installation alone (pip
    # would uninstall it first if it could see it, e.g. through PYTHONPATH).
    script = Path(sys.executable).parent / "http-disk-server"
    assert script.exists(), f"make {target} removed {script}"
    return r


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """An installation into a private prefix (real paths, no DESTDIR), as a user would
    have it, but without touching the system."""
    pfx = tmp_path_factory.mktemp("prefix")
    dirs = {"PREFIX": str(pfx), "PLUGINDIR": str(pfx / "plugins"), "MANDIR": str(pfx / "man"),
            "UNITDIR": str(pfx / "units"), "PIP_DEPS": "no"}
    _make("install", **dirs)
    site = next(pfx.glob("**/dist-packages/hxz")).parent
    bindir = next(pfx.glob("**/bin/http-disk-server")).parent
    # Outside the checkout: only the installed packages, plus the venv for blake3.
    env = dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{sysconfig.get_path('purelib')}")
    return pfx, site, bindir, env, dirs


def _version() -> str:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    return cfg["metadata"]["version"]


def test_installed_hexz_plugin_serves_from_any_folder(installed, cat, tmp_path):
    pfx, site, _, env, _ = installed
    plugin = pfx / "plugins" / "nbdkit-hexz-plugin"
    assert os.access(plugin, os.X_OK)
    dump = subprocess.run([str(plugin), "--dump-plugin"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60)
    assert dump.returncode == 0, dump.stderr
    assert f"hexz_version={_version()}" in dump.stdout
    assert f"hexz_package={site / 'hxz'}" in dump.stdout        # not the checkout's
    out = tmp_path / "copy.raw"
    r = subprocess.run([str(plugin), "-U", "-", f"file={cat['text'].path}", "--run",
                        f"nbdcopy $uri {out}"], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == cat["text"].primary


def test_installed_multihttp_plugin_and_programs(installed, tmp_path):
    pfx, _, bindir, env, _ = installed
    disk = tmp_path / "disk.img"
    data = os.urandom(1 << 20)
    disk.write_bytes(data)
    for prog in ("http-disk-server", "nbd-http-server", "hxz-info", "nbd-checksum"):
        r = subprocess.run([str(bindir / prog), "--version"], capture_output=True, text=True,
                           env=env, cwd=tmp_path, timeout=60)
        assert r.returncode == 0 and r.stdout.strip() == f"{prog} {_version()}", r.stderr
        r = subprocess.run([str(bindir / prog), "--help"], capture_output=True, text=True,
                           env=env, cwd=tmp_path, timeout=60)
        assert r.returncode == 0 and "usage:" in r.stdout
    server = start_server(["--disk", str(disk)], tmp_path)
    try:
        plugin = pfx / "plugins" / "nbdkit-multihttp-plugin"
        dump = subprocess.run([str(plugin), "--dump-plugin"], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=60)
        assert "multihttp_parameters=urls," in dump.stdout, dump.stderr
        out = tmp_path / "copy.raw"
        r = subprocess.run([str(plugin), "-U", "-", f"urls={server.url}", "--run",
                            f"nbdcopy $uri {out}"], capture_output=True, text=True, env=env,
                           cwd=tmp_path, timeout=120)
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == data
    finally:
        server.stop()


@pytest.mark.parametrize("section,page", [(s, p) for s, ps in PAGES.items() for p in ps])
def test_man_pages_render_without_warnings(installed, section, page):
    pfx = installed[0]
    path = pfx / "man" / section / page
    r = subprocess.run(["man", "--warnings", "-l", str(path)], capture_output=True, text=True,
                       env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MANPAGER="cat",
                                PAGER="cat"), timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "NAME" in r.stdout and page.split(".")[0] in r.stdout


def test_systemd_units_verify(installed, tmp_path):
    pfx = installed[0]
    units = tmp_path / "units"
    units.mkdir()
    # Instances of the templates, as systemctl would start them.
    for unit in UNITS:
        text = (pfx / "units" / unit).read_text()
        (units / unit.replace("@", "@vol1")).write_text(text)
        (units / unit).write_text(text)
    env = dict(os.environ, MANPATH=f"{pfx / 'man'}:/usr/share/man")
    r = subprocess.run(["systemd-analyze", "verify",
                        *(str(units / u.replace("@", "@vol1")) for u in UNITS)],
                       capture_output=True, text=True, env=env, cwd=units, timeout=120)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr
    service = (pfx / "units" / "http-disk-server@.service").read_text()
    assert "NoNewPrivileges=yes" in service and "ProtectSystem=strict" in service
    assert "@BINDIR@" not in service and str(pfx) in service


def test_staged_install_and_uninstall_leave_nothing(tmp_path):
    dest = tmp_path / "dest"
    dirs = {"DESTDIR": str(dest), "PREFIX": "/usr/local", "PLUGINDIR": "/usr/lib/nbdkit/plugins",
            "MANDIR": "/usr/local/share/man", "UNITDIR": "/etc/systemd/system"}
    _make("install", **dirs)
    files = sorted(p for p in dest.rglob("*") if p.is_file())
    names = {p.name for p in files}
    assert {"nbdkit-hexz-plugin", "nbdkit-multihttp-plugin", "http-disk-server",
            "nbdkit-hexz-plugin.1", "http-disk-server@.service"} <= names
    # Nothing written into files names the staging folder or the checkout.
    for p in files:
        if p.suffix in {".service", ".socket", ".1", ".8"} or "plugin" in p.name:
            text = p.read_text(errors="replace")
            assert str(dest) not in text and str(REPO) not in text, p
    _make("uninstall", **dirs)
    left = [p for p in dest.rglob("*") if p.is_file()]
    assert left == [], left
