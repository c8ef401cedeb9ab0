# Quick start (Debian 12, as root):
#   make demo   # install what is missing, then serve a built-in sample
#   make test   # install what is missing, then run the whole test suite

DEB_PACKAGES := nbdkit nbdkit-plugin-python libnbd-bin python3-libnbd qemu-utils \
	nbd-client python3-zstandard python3-lz4 python3-requests python3-venv \
	python3-pip e2fsprogs curl nginx-light openssl util-linux \
	liblz4-1 libdeflate0 libzstd1 strace python3-prometheus-client python3-docutils \
	man-db systemd awscli python3-botocore python3-boto3 python3-matplotlib rclone
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: all deps venv moto-venv demo test lint bench clean install uninstall

all: test

# Debian packages: install only the ones that are missing.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" \
	    || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# The venv is built from Debian's Python, the one nbdkit's Python plugin embeds,
# so that the libnbd bindings (python3-libnbd) are importable in tests.
$(STAMP): setup.cfg pyproject.toml | deps
	test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

venv: deps $(STAMP)

# moto, the S3 server of tests/remote, in a virtual environment of its own without
# system site packages: its newer cryptography breaks Debian's python3-openssl when the
# two share an interpreter. The tests start it as a process (.venv-moto/bin/moto_server).
MOTO_VENV := .venv-moto
MOTO_STAMP := $(MOTO_VENV)/.installed
$(MOTO_STAMP): | deps
	test -x $(MOTO_VENV)/bin/python || /usr/bin/python3 -m venv $(MOTO_VENV)
	$(MOTO_VENV)/bin/pip install -q --disable-pip-version-check 'moto[server]==5.2.5'
	touch $(MOTO_STAMP)

moto-venv: deps $(MOTO_STAMP)

demo: venv
	$(PY) scripts/demo.py

test: venv moto-venv
	$(PY) -m pytest -q -p no:cacheprovider tests

lint: venv
	$(VENV)/bin/ruff check .

# perf (linux-perf) is only needed by bench/perf_hexz.py.
bench: venv
	@dpkg-query -W -f='$${Status}\n' linux-perf 2>/dev/null | grep -q "install ok installed" \
	  || $(MAKE) deps DEB_PACKAGES=linux-perf
	$(PY) bench/run_all.py

# make install [PREFIX=/usr/local] [DESTDIR=]: packages and console scripts (pip, for
# Debian's python3, which nbdkit embeds), nbdkit-hexz-plugin and nbdkit-multihttp-plugin in
# nbdkit's plugin directory, man pages, systemd units.  make uninstall removes them.
PREFIX ?= /usr/local
DESTDIR ?=
PLUGINDIR ?= $(shell nbdkit --dump-config 2>/dev/null | sed -n 's/^plugindir=//p')
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= /etc/systemd/system
PIP_DEPS ?= yes
INSTALL_ARGS = --prefix "$(PREFIX)" --destdir "$(DESTDIR)" --plugindir "$(PLUGINDIR)" \
	--mandir "$(MANDIR)" --unitdir "$(UNITDIR)" $(if $(filter no,$(PIP_DEPS)),--no-pip-deps)

install: deps
	@test -n "$(PLUGINDIR)" || { echo "nbdkit --dump-config gave no plugindir" >&2; exit 1; }
	/usr/bin/python3 scripts/install.py install $(INSTALL_ARGS)

uninstall:
	/usr/bin/python3 scripts/install.py uninstall $(INSTALL_ARGS)

clean:
	rm -rf $(VENV) $(MOTO_VENV) demo-work bench/work *.egg-info
