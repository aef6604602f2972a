# Two commands set up everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CORE   := $(VENV)/.core-installed
DEV    := $(VENV)/.dev-installed
BENCH  := $(VENV)/.bench-installed
# Front-end packages the browser tests serve in place of the CDN (no network at test time).
WEB    := .cache/web/node_modules/.installed
WEB_PACKAGES := leaflet@1.9.3 jquery@3.7.1 bootstrap@5.2.2 @fortawesome/fontawesome-free@6.2.0 \
                leaflet-search@2.9.7
# Debian's Chromium for the real-browser tests; installed with apt where missing.
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint bench bench-exact bench-heuristic clean

$(PY):
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(CORE): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	@touch $@

$(DEV): pyproject.toml $(CORE)
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

$(BENCH): pyproject.toml $(DEV)
	$(PY) -m pip install --quiet -e '.[bench]'
	@touch $@

## demo: synthesise the Baikonur-like register and plan it into outputs/baikonur-2021/, then
## run Stage 2 on synthetic records into outputs/stage2/ (dedup, follow-up re-plan, progress)
STAGE2 := outputs/stage2
demo: $(CORE)
	$(VENV)/bin/districting demo --out outputs/baikonur-2021
	$(VENV)/bin/districting check outputs/baikonur-2021
	$(VENV)/bin/districting -q stage2-synth outputs/baikonur-2021 --out $(STAGE2)/records.csv
	$(VENV)/bin/districting -q dedup $(STAGE2)/records.csv --plan outputs/baikonur-2021 \
		--out $(STAGE2)/dedup
	$(VENV)/bin/districting -q followup outputs/baikonur-2021 \
		--responses $(STAGE2)/dedup/accepted.csv --as-of 2021-09-30 --out $(STAGE2)/followup
	$(VENV)/bin/districting check $(STAGE2)/followup
	$(VENV)/bin/districting -q progress $(STAGE2)/followup --records $(STAGE2)/dedup/accepted.csv \
		--as-of 2021-10-20 --out $(STAGE2)/progress

$(WEB):
	npm install --prefix .cache/web --no-audit --no-fund --silent $(WEB_PACKAGES)
	@touch $@

.PHONY: chromium
chromium:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

## test: the whole test suite (installs Chromium and the front-end packages for browser tests)
test: $(DEV) $(WEB) chromium
	$(PY) -m pytest -q

## lint: ruff and mypy
lint: $(DEV)
	$(VENV)/bin/ruff check districting tests benchmarks cli.py
	$(VENV)/bin/mypy

## bench: benchmarks (speed is measured here, never in unit tests)
bench: $(DEV)
	$(PY) benchmarks/demo.py
	$(PY) benchmarks/osm_import.py

## bench-exact: the exact core against every published optimum (300 s per county, 600 s per tract)
bench-exact: $(DEV)
	$(PY) benchmarks/exact.py --time-limit 300 --tract-time-limit 600

## bench-heuristic: our heuristic against GerryChain, pymetis and spopt (installs the bench extra)
bench-heuristic: $(BENCH)
	$(PY) benchmarks/heuristic.py --timeout 120

clean:
	rm -rf $(VENV) .cache outputs/baikonur-2021 $(STAGE2) .pytest_cache .mypy_cache .ruff_cache
