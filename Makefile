# voxloop: `make run` serves a demo gateway, `make test` runs the whole suite. Both set up .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TYPING := build/typing
# Every version installed, pinned: `make lock` regenerates it from requirements/lock.in.
LOCK := requirements/lock.txt

.PHONY: run test wheel-test wheels lock bench loadtest cluster-test lint clean

# The Node packages, from the npm registry at package-lock.json's versions, into node_modules/
# when missing or older than the lock: uPlot, whose built files the dashboard serves, and
# axe-core, which the browser tests run on every page.
NODE_PACKAGES := node_modules/.package-lock.json
$(NODE_PACKAGES): package-lock.json
	@test -f node_modules/axe-core/axe.min.js && test -f node_modules/uplot/dist/uPlot.min.css && \
		test $@ -nt package-lock.json || \
		{ echo "installing uPlot and axe-core from package-lock.json"; npm ci --no-audit --no-fund; }
	@touch $@

# The dashboard's charts: uPlot's built script and stylesheet, copied into the gateway's static
# files (ignored by git; the wheel ships them, and setup.py refuses to build a wheel without).
VENDOR := gateway/static/vendor
VENDORED := $(VENDOR)/uPlot.iife.min.js $(VENDOR)/uPlot.min.css
$(VENDORED): $(NODE_PACKAGES)
	@mkdir -p $(VENDOR)
	cp node_modules/uplot/dist/$(@F) $@

# The browser tests drive Debian's chromium, installed here if missing (Playwright's own browser
# download is not used). Every package at the lock's version; the core is compiled by the lock's
# setuptools and Cython (no build isolation, which would fetch the newest ones). The Node
# packages and the vendored files come first (order only: a fresh copy reinstalls nothing).
$(STAMP): pyproject.toml setup.py sdk/pyproject.toml core/_pipeline_c.pyx $(LOCK) | $(VENDORED)
	@command -v chromium >/dev/null || ! command -v apt-get >/dev/null || \
		{ echo "installing chromium for the browser tests"; \
		  apt-get install -y -qq chromium >/dev/null 2>&1 || \
		  { apt-get update -qq && apt-get install -y -qq chromium; }; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --constraint $(LOCK) pip setuptools Cython wheel
	$(BIN)/python -m pip install --quiet --no-build-isolation --constraint $(LOCK) \
		-e './sdk[fast,httpx]' -e '.[test,lint,bench]'
	@$(BIN)/voxloop-gateway core
	@touch $@

run: $(STAMP)
	$(BIN)/voxloop-gateway demo

test: $(STAMP)
	$(BIN)/python -m pytest

# Both wheels built from a copy of the tree, installed (not editable) in a bare venv with the
# lock as constraints, then init, serve, a rating posted and read back; part of `make test`.
wheel-test: $(STAMP)
	$(BIN)/python -m pytest tests/packaging

# The two wheels to deploy, in dist/: voxloop (pure Python) and voxloop-server (compiled for this
# Python and platform). build/ is emptied first so no deleted module lingers in a wheel.
wheels: $(STAMP)
	rm -rf build/lib* build/bdist* sdk/build dist
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir dist ./sdk .
	@ls dist

# Regenerate $(LOCK) from requirements/lock.in with uv (at the lock's own version, in a venv of
# its own): keeps the pinned versions that still fit; `make lock UPGRADE=1` moves every package
# to its newest release.
LOCK_VENV := build/lock
lock:
	@test -x $(LOCK_VENV)/bin/python || $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --constraint $(LOCK) uv
	$(LOCK_VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 \
		--no-emit-package voxloop --no-emit-package voxloop-server \
		--custom-compile-command "make lock" $(if $(UPGRADE),--upgrade) \
		--output-file $(LOCK) requirements/lock.in

# The HTTP section drives the servers with wrk, from Debian's packages, installed here if missing.
# The read section's machinery is checked first, against the same peers (loadtests/test_read_bench.py).
bench: $(STAMP)
	@command -v wrk >/dev/null || ! command -v apt-get >/dev/null || \
		{ echo "installing wrk for the HTTP benchmark"; \
		  apt-get install -y -qq wrk >/dev/null 2>&1 || \
		  { apt-get update -qq && apt-get install -y -qq wrk; }; }
	$(BIN)/python -m pytest -q -p no:cacheprovider loadtests/test_read_bench.py
	$(BIN)/python -m loadtests.bench

# Locust against a fresh local gateway for LOADTEST_SECONDS; fails on any failed request or on
# stats that differ from what was acknowledged.
LOADTEST_SECONDS ?= 20
loadtest: $(STAMP)
	$(BIN)/python -m loadtests.loadtest --seconds $(LOADTEST_SECONDS)

# N gateway replicas on one fresh PostgreSQL database ($VOXLOOP_TEST_PG's server) behind nginx
# (from Debian, installed if missing, run from a temp folder: never the system's), Locust through
# it, one replica SIGKILLed mid-run; fails on any acknowledged event lost, stats != scan != what
# was sent, or a client error outside the failover window. CLUSTER_STORE=sqlite: one shared data dir.
CLUSTER_REPLICAS ?= 3
CLUSTER_SECONDS ?= 40
CLUSTER_STORE ?= $(or $(VOXLOOP_TEST_PG),postgresql://postgres@127.0.0.1:5432/test)
cluster-test: $(STAMP)
	$(BIN)/python -m loadtests.cluster --replicas $(CLUSTER_REPLICAS) --seconds $(CLUSTER_SECONDS) \
		--store $(CLUSTER_STORE)

# mypy names modules after their folders and skips linked ones; the import names differ from the
# folders (core/ is voxloop_core), so it reads copies named like the packages.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/cython-lint --max-line-length 100 core/_pipeline_c.pyx
	@rm -rf $(TYPING) && mkdir -p $(TYPING)
	@cp -r core $(TYPING)/voxloop_core && cp -r gateway $(TYPING)/voxloop_gateway
	@cp -r widgets $(TYPING)/voxloop_widgets
	cd $(TYPING) && $(abspath $(BIN))/mypy --config-file $(CURDIR)/pyproject.toml \
		voxloop_core voxloop_gateway voxloop_widgets $(CURDIR)/sdk/voxloop

clean:
	rm -rf $(VENV) build core/_pipeline_c.c core/*.so
