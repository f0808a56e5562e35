# Two commands from a fresh clone: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.12 2>/dev/null || echo python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

CHROMIUM := /usr/bin/chromium

.PHONY: run test lint format bench clean browser notebooks

# The install builds the compiled order path (model/_book.pyx and the .pxi files it
# includes; Cython and g++) in place: a changed source is built again.
$(STAMP): pyproject.toml model/_book.pyx $(wildcard model/_*.pxi)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# uv installs in about 45 s what pip takes about two minutes for, from the indexes
	@# pip is configured with (.ci/uv_args.py), compiled to bytecode as pip does (this
	@# machine sets PYTHONDONTWRITEBYTECODE: without it every import compiles); pip
	@# itself is the fallback.
	{ $(BIN)/python -m pip install --quiet 'uv>=0.5' && \
	  $(BIN)/uv pip install --quiet --native-tls --compile-bytecode --python $(BIN)/python \
	    $$($(BIN)/python .ci/uv_args.py) --upgrade-package pip pip -e '.[dev]'; } || \
	{ $(BIN)/python -m pip install --quiet --upgrade pip && \
	  PYTHONWARNINGS='ignore:Editable installation' $(BIN)/python -m pip install --quiet -e '.[dev]'; }
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/crossmargin run experiments/scenarios/baseline.toml --out results/baseline --overwrite
	$(BIN)/crossmargin report results/baseline --overwrite

# The browser tests drive Debian's chromium through Playwright (Playwright cannot
# download its own browser here).
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium is missing: install Debian's chromium (apt-get install chromium)"; fi; }

# PYTHONDONTWRITEBYTECODE= (this machine sets it): pytest may then keep what it
# rewrites for assertions (hypothesis and anyio as plugins, 149 modules, rewritten again
# by every pytest process without it: collection 11.0 s -> 7.8 s) and Python the
# project's own bytecode, in __pycache__ folders git ignores.
test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@# worksteal: a worker that runs dry takes queued tests from the other (with the
	@# default scheduling one worker idled for the last 100 s of a 553 s run).
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -n 2 --dist worksteal -m "not serial"
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -m serial

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Re-execute the example notebooks in place (their stored outputs are what readers see).
notebooks: $(STAMP)
	cd docs/notebooks && for nb in *.ipynb; do \
	  ../../$(BIN)/python -c "import sys, nbformat; from nbclient import NotebookClient; \
	nb = nbformat.read(sys.argv[1], 4); NotebookClient(nb, timeout=600).execute(); \
	nbformat.write(nb, sys.argv[1])" $$nb || exit 1; done

bench: $(STAMP)
	$(BIN)/python benchmarks/orderbook.py
	$(BIN)/python benchmarks/ledger.py
	$(BIN)/python benchmarks/model.py

clean:
	rm -rf $(VENV) results .pytest_cache
