# Thin aliases; everything real lives in pyproject.toml.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: demo test compat tox lint docs bench bench-quick clean redis-server sshfs

$(PY):
	$(shell command -v $(PYTHON) || echo python3) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m diskstore demo

# The Redis tests start their own redis-server, and a cluster joined by redis-cli (Debian's
# redis-server package, which brings redis-tools); install them when missing.
redis-server:
	@{ command -v redis-server && command -v redis-cli; } >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends redis-server redis-tools >/dev/null; } || \
	  echo "redis-server could not be installed: the Redis tests will be skipped"

# The network-filesystem tests mount sshfs over their own sshd, and the power-cut tests a
# FUSE filesystem of their own (libfuse 3): Debian's packages.
sshfs:
	@{ command -v sshfs && command -v fusermount3 && test -x /usr/sbin/sshd; } >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends openssh-server sshfs fuse3 >/dev/null; } || \
	  echo "sshd, sshfs or fuse3 could not be installed: their tests will be skipped"

test: $(STAMP) redis-server sshfs
	$(PY) -m pytest -q -p no:cacheprovider
	$(PY) tests/diskcache_suite/run.py

# The suite on Python 3.10 to 3.13 (tox.ini), with interpreters from PATH or from pyenv.
tox: $(STAMP)
	PATH="$$(ls -d $$HOME/.pyenv/versions/3.1[0-3]*/bin 2>/dev/null | tr '\n' ':')$$PATH" \
	  $(VENV)/bin/tox

compat: $(STAMP)
	$(PY) tests/diskcache_suite/run.py

lint: $(STAMP)
	$(VENV)/bin/ruff check diskstore tests benchmarks
	$(VENV)/bin/ruff format --check diskstore tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict --site-dir build/site

bench: $(STAMP) redis-server
	$(PY) -m benchmarks
	$(PY) -m benchmarks.growth

bench-quick: $(STAMP)
	$(PY) -m benchmarks --quick
	$(PY) -m benchmarks.growth --quick

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
