# Common tasks. `make demo` and `make test` do all their own set-up on a fresh
# Debian machine (as root): system packages, a virtualenv, the package.

VENV        ?= .venv
PYTHON      ?= python3
PY          := $(VENV)/bin/python
RECGUARD    := $(VENV)/bin/recguard
# Debian packages, each as COMMAND:PACKAGE when the package's command has another name.
SYSTEM_DEPS := mmdebstrap espeak-ng sox sipp:sip-tester promtool:prometheus chromium:chromium pg_ctlcluster:postgresql
PYTEST_ARGS ?=

.PHONY: help demo test unit integration bench system-deps venv sandbox-up sandbox-down clean

help:
	@echo "make demo         sandbox Asterisk + recguard + a few simulated calls (main job)"
	@echo "make test         all tests: unit, then integration on a real Asterisk 22"
	@echo "make unit         the fast, pure tests only"
	@echo "make integration  the tests that place real calls on the sandbox"
	@echo "make bench        the benchmarks"
	@echo "make sandbox-up / sandbox-down"

# Debian packages the sandbox, the prompt builder, the SIP tests (SIPp) and the
# alert-rule tests (promtool) need; a package is installed only when its command
# is missing.
system-deps:
	@missing=""; for dep in $(SYSTEM_DEPS); do \
	  command -v $${dep%%:*} >/dev/null 2>&1 || missing="$$missing $${dep#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing:$$missing; install them (apt-get install$$missing) or run as root" >&2; exit 1; fi; \
	  echo "installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed; on Debian: apt-get install python3-venv" >&2; exit 1; }

$(VENV)/.installed: $(VENV)/bin/activate setup.cfg pyproject.toml
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

demo: system-deps venv
	$(RECGUARD) demo

test: system-deps venv
	$(PY) -m pytest -ra $(PYTEST_ARGS) tests

unit: venv
	$(PY) -m pytest -ra $(PYTEST_ARGS) tests/unit

integration: system-deps venv
	$(PY) -m pytest -ra $(PYTEST_ARGS) tests/integration

bench: system-deps venv
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

sandbox-up: system-deps venv
	$(RECGUARD) sandbox up

sandbox-down: venv
	$(RECGUARD) sandbox down

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
