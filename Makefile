# One-command set-up: every target builds the virtual env it needs first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SUDO   := $(shell [ "$$(id -u)" = 0 ] || command -v sudo)

.PHONY: demo test lint bench redis-server chromium docs docs-ref docs-screenshot clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[redis,plots,dev]'
	touch $(STAMP)

## demo: the main job: the whole pipeline offline in PAPER mode (new database, sample signals,
## bundled candles, execute, reconcile as time passes, pnl-report and its PNG)
demo: $(STAMP)
	$(BIN)/qtrader demo

## test: lint, then the whole test suite (installs redis-server and chromium from Debian if
## missing); the suite also builds the docs strictly and checks the generated reference
test: $(STAMP) redis-server chromium
	$(BIN)/ruff check qtrader tests benchmarks scripts data/demo
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check qtrader tests benchmarks scripts data/demo
	$(BIN)/ruff format --check qtrader tests benchmarks scripts data/demo

## bench: every budget script (a "-" keeps going past a missed budget, so all figures print)
bench: $(STAMP)
	-$(BIN)/python benchmarks/help_time.py
	-$(BIN)/python benchmarks/ingest.py
	-$(BIN)/python benchmarks/execute_requests.py
	-$(BIN)/python benchmarks/reconcile_requests.py
	-$(BIN)/python benchmarks/pnl_report.py
	-$(BIN)/python benchmarks/demo_time.py
	-$(BIN)/python benchmarks/lock_and_rate.py
	-$(BIN)/python benchmarks/explore_copy.py
	-$(BIN)/python benchmarks/tick_cost.py
	-$(BIN)/python benchmarks/reaction_time.py
	-$(BIN)/python benchmarks/storage_per_day.py --load idle --chain tick --minutes 1440
	-$(BIN)/python benchmarks/requests_per_signal.py
	-$(BIN)/python benchmarks/okx_requests.py

redis-server:
	@command -v redis-server >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q redis-server; }

# the HTML report's browser test drives Debian's Chromium (Playwright never downloads one)
chromium:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

## docs: build the documentation site into site/ (strict: a broken link fails)
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

## docs-ref: regenerate the reference pages from the code (commands, settings, exit codes, tables)
docs-ref: $(STAMP)
	$(BIN)/python -m qtrader.docs_gen

## docs-screenshot: regenerate docs/img/report.png from the demo's HTML report
docs-screenshot: $(STAMP) chromium
	$(BIN)/python scripts/report_screenshot.py
clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
