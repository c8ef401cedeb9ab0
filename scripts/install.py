#!/usr/bin/python3
"""``make install`` / ``make uninstall``: install the suite the way nbdkit's own plugins are.

* the Python packages and console scripts, with pip, for Debian's ``/usr/bin/python3``
  (the interpreter nbdkit's Python plugin embeds), under PREFIX;
* ``nbdkit-hexz-plugin`` and ``nbdkit-multihttp-plugin``, executable scripts in nbdkit's
  plugin directory, so ``nbdkit hexz file=...`` works from any folder;
* the man pages, built from docs/man/*.rst with rst2man;
* the systemd units of contrib/systemd, with the installed paths filled in.

Everything installed is listed in PREFIX/share/nbdkit-python-suite/installed-files, which
``uninstall`` reads back.  DESTDIR stages the whole tree elsewhere (for packages and for
the tests); the paths written into files never contain it.
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLUGINS = {"hexz": REPO / "plugins" / "hexz.py",
           "multihttp": REPO / "plugins" / "multihttp.py"}
DIST_INFO = "nbdkit_python_suite-*.dist-info"
MANIFEST = "share/nbdkit-python-suite/installed-files"
# Runtime dependencies that Debian does not package (the others come from apt).
PIP_ONLY_DEPS = ["blake3"]


class Installer:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.root = Path(a.destdir or "/")
        self.installed: list[str] = []          # absolute paths, without DESTDIR
        self.bindir = str(Path(a.prefix) / "bin")

    def staged(self, path: str | Path) -> Path:
        """Where ``path`` (as seen after installation) lives under DESTDIR."""
        return self.root / str(path).lstrip("/")

    def put(self, path: str | Path, data: bytes, mode: int) -> None:
        target = self.staged(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(mode)
        self.installed.append(str(path))

    # ---- the parts ---------------------------------------------------------------

    def python_packages(self) -> None:
        # Debian's python3 installs under {prefix}/local when asked for {prefix} (its
        # posix_local scheme): ask for /usr to get /usr/local, which it searches.
        prefix = self.a.prefix.rstrip("/")
        pip_prefix = prefix[:-len("/local")] if prefix.endswith("/local") else prefix
        pip = [self.a.python, "-m", "pip", "install", "--quiet", "--no-deps",
               "--no-build-isolation", "--disable-pip-version-check",
               "--no-warn-script-location", "--break-system-packages", "--ignore-installed",
               "--prefix", pip_prefix, "--root", str(self.root), str(REPO)]
        subprocess.run(pip, check=True, env=_clean_env())
        if not self.a.destdir and self.a.pip_deps:
            # A real installation must run; a staged one is for packagers, who declare
            # the dependency instead.
            subprocess.run([self.a.python, "-m", "pip", "install", "--quiet",
                            "--disable-pip-version-check", "--break-system-packages",
                            *PIP_ONLY_DEPS], check=True, env=_clean_env())
        # Where that interpreter puts packages for this prefix: ask it, rather than
        # search (a recursive search of /usr takes minutes).
        site = subprocess.run(
            [self.a.python, "-c", "import sys, sysconfig; print(sysconfig.get_path("
             "'purelib', vars={'base': sys.argv[1], 'platbase': sys.argv[1]}))", pip_prefix],
            check=True, capture_output=True, text=True, env=_clean_env()).stdout.strip()
        records = glob.glob(str(self.staged(site) / DIST_INFO / "RECORD"))
        if len(records) != 1:
            sys.exit(f"install: expected one {DIST_INFO}/RECORD under {self.a.prefix}, "
                     f"found {len(records)}")
        site = Path(records[0]).parents[1]
        for line in Path(records[0]).read_text().splitlines():
            rel = line.split(",", 1)[0]
            if rel:
                staged = (site / rel).resolve()
                path = "/" + str(staged.relative_to(self.root.resolve()))
                self.installed.append(path)
                if path.endswith("/bin/http-disk-server"):
                    self.bindir = str(Path(path).parent)   # for the systemd units

    def plugins(self) -> None:
        for name, script in PLUGINS.items():
            self.put(Path(self.a.plugindir) / f"nbdkit-{name}-plugin", script.read_bytes(),
                     0o755)

    def man_pages(self) -> None:
        for rst in sorted((REPO / "docs" / "man").glob("*.rst")):
            name = rst.stem                          # e.g. nbdkit-hexz-plugin.1
            section = name.rsplit(".", 1)[1]
            page = subprocess.run(["rst2man", "--halt=warning", str(rst)], check=True,
                                  capture_output=True).stdout
            self.put(Path(self.a.mandir) / f"man{section}" / name, page, 0o644)

    def units(self) -> None:
        bindir = self.bindir
        for unit in sorted((REPO / "contrib" / "systemd").iterdir()):
            text = unit.read_text().replace("@BINDIR@", bindir) \
                .replace("@PLUGINDIR@", self.a.plugindir)
            self.put(Path(self.a.unitdir) / unit.name, text.encode(), 0o644)

    def install(self) -> None:
        self.python_packages()
        self.plugins()
        self.man_pages()
        self.units()
        manifest = Path(self.a.prefix) / MANIFEST
        self.installed.append(str(manifest))
        self.put(manifest, "".join(f"{p}\n" for p in self.installed).encode(), 0o644)
        print(f"installed {len(self.installed)} files; nbdkit plugins in {self.a.plugindir}")

    def uninstall(self) -> None:
        manifest = self.staged(Path(self.a.prefix) / MANIFEST)
        if not manifest.exists():
            sys.exit(f"uninstall: {manifest} not found (nothing installed with this PREFIX "
                     f"and DESTDIR)")
        paths = [self.staged(p) for p in manifest.read_text().splitlines() if p]
        for p in paths:
            p.unlink(missing_ok=True)
        # Folders the installation created and left empty (package folders, __pycache__,
        # the dist-info): remove them, deepest first, and never a folder still in use.
        parents = sorted({q for p in paths for q in p.parents if self.root in q.parents},
                         key=lambda q: len(q.parts), reverse=True)
        for d in parents:
            if d.is_dir() and not any(d.iterdir()) and _created_by_us(d):
                d.rmdir()
        print(f"removed {len(paths)} files")


def _clean_env() -> dict[str, str]:
    """The environment without anything pointing pip at another Python's packages: with
    a venv on PYTHONPATH, pip would first uninstall the copy it finds there."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_PREFIX"}}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _created_by_us(d: Path) -> bool:
    """Only folders that exist because of this package (never share/, bin/, man1/...)."""
    name = d.name
    return (name in {"hxz", "http_disk_server", "multihttp", "nbd_http_server", "nbdsuite",
                     "__pycache__",
                     "resources", "sources", "nbdkit-python-suite"}
            or name.endswith(".dist-info") or d.parent.name in {"hxz", "http_disk_server",
                                                                "multihttp", "nbdsuite"}
            or d.parent.parent.name in {"hxz", "http_disk_server"})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=["install", "uninstall"])
    ap.add_argument("--prefix", default="/usr/local")
    ap.add_argument("--destdir", default="")
    ap.add_argument("--plugindir", required=True)
    ap.add_argument("--mandir", required=True)
    ap.add_argument("--unitdir", required=True)
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--no-pip-deps", dest="pip_deps", action="store_false",
                    help=f"do not pip-install {', '.join(PIP_ONLY_DEPS)} (no DESTDIR only)")
    a = ap.parse_args()
    inst = Installer(a)
    inst.install() if a.action == "install" else inst.uninstall()
    return 0


if __name__ == "__main__":
    sys.exit(main())
