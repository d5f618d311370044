# recon: two commands from a fresh clone.
#   make demo   set everything up, generate the embedded synthetic street, train, evaluate, print the table
#   make test   set everything up and run the test suite (CPU only)
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.recon-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_DIR ?= demo
DEMO_ITERS ?= 1200

.PHONY: all setup sysdeps demo test lint bench clean

all: test

# System libraries the wheels need: open3d loads libusb-1.0 at import; the viewer tests drive Debian's chromium.
sysdeps:
	@need=""; \
	ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0' || need="$$need libusb-1.0-0"; \
	command -v chromium >/dev/null 2>&1 || need="$$need chromium"; \
	if [ -n "$$need" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing system packages:$$need"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$need) >/dev/null \
	      || { echo "error: apt-get install$$need failed"; exit 1; }; \
	  else \
	    echo "error: missing system packages:$$need; run: sudo apt-get install -y$$need"; exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml setup.py
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (recon needs Python 3.11+; set PYTHON=...)"; exit 1; }
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@# Without CUDA take the CPU build of torch (a plain `torch` would pull a multi-GB CUDA build).
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	  echo "CUDA found: installing torch with CUDA support"; $(PY) -m pip install -q torch; \
	else \
	  echo "no CUDA: installing the CPU build torch==2.13.0"; $(PY) -m pip install -q torch==2.13.0; \
	fi
	@$(PY) -m pip install -q -e '.[dev,cluster]'
	@touch $(STAMP)

setup: sysdeps $(STAMP)

demo: setup
	$(VENV)/bin/recon data synth --out $(DEMO_DIR)/street --seed 0 --overwrite
	$(VENV)/bin/recon train --data $(DEMO_DIR)/street --out $(DEMO_DIR)/run_baseline --overwrite baseline \
	  --iters $(DEMO_ITERS)
	@echo "rendered test views and depth maps: $(DEMO_DIR)/run_baseline/eval/  (view: $(VENV)/bin/recon view $(DEMO_DIR)/run_baseline)"

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check recon viewer tests data_scripts benchmarks

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache
