# The two set-up commands of the README: `make demo` and `make test`.
# Both install what they need (as root on Debian 12) and are idempotent.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# bench/ may not exist yet in a fresh clone (git keeps no empty directory).
LINT_PATHS := bot mmuci mmucore checks mmukit tests $(wildcard bench)
APT_PACKAGES := git xz-utils gcc make binutils python3 python3-venv python3-dev \
	linux-source-6.1 linux-source-6.12 public-inbox bubblewrap libseccomp2 \
	redis-server postgresql chromium fonts-dejavu-core

.PHONY: demo test check deps venv lint bench clean

demo: deps venv
	$(BIN)/mmubot demo

test: deps venv
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy
	$(BIN)/pytest -q

# The fast lane (< 2 minutes): lint, types, the tests that need no prepared kernel tree
# and no real server (`make test` runs everything; tests/conftest.py marks the slow ones).
check: venv
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy
	$(BIN)/pytest -q -m "not slow" -p no:cacheprovider

# Installs only the Debian packages that are missing, so a second run is instant.
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		if [ "$$(id -u)" != 0 ]; then echo "run as root, or: sudo apt-get install" $$missing; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.installed

# Started as root, the jail runs as uid 65534 (deploy/OPERATORS.md): the venv and our
# packages must be world-readable, whatever the caller's umask.
$(VENV)/.installed: pyproject.toml
	umask 022; test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	umask 022; $(BIN)/python -m pip install -q --upgrade pip
	umask 022; $(BIN)/python -m pip install -q -e '.[test]'
	chmod -R a+rX $(VENV) mmuci mmucore checks tests
	touch $@

lint: venv
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

bench: deps venv
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .cache .mypy_cache
