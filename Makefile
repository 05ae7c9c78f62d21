# mpraft: one entry point for set-up, tests, simulator, benchmarks and boards.
# `make test` creates .venv from pinned requirements and runs every test on
# CPython (pytest) and the portable ones under the MicroPython unix port.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
MP     := $(VENV)/bin/micropython
# The portable suite runs ~200 tests, simulator runs included, in one
# MicroPython process whose imports accumulate; at the port's default 2 MB
# heap it ran within ~5% of the edge (a harmless layout change tipped it).
# Board memory is proven elsewhere (memproof, heap_lock tests), not here.
# 16 MB since 2026-12-06: with 334 tests (in-process clusters under
# asyncio among them) 8 MB failed 1 run in 3 with 8 KB MemoryErrors late in
# the run (a MemoryStorage list growing), fragmentation of the one heap.
MPTEST := $(MP) -X heapsize=16M tools/mptest.py
# The paper tests also run on the engine backend (pytest parametrizes them).
PAPER  := $(wildcard host_tests/portable/core/test_paper_*.py)
# So do the cluster scenarios (host_tests/helpers/clusterfix.py backends).
SCENARIOS := host_tests/portable/simulator/test_cluster_scenarios.py
STAMP  := $(VENV)/.installed
JOBS   ?= 2
SEEDS  ?= 1000
BOARD  ?= unix

.PHONY: all venv test test-py test-mp test-netns test-browser timeline cloud-deps image cloud-demo test-prometheus exporter sim sim-sweep sim-sweep-kv sim-sweep-lock sim-sweep-joint sim-sweep-wipe sim-soak bench-core bench-flash bench profile demo demo-sim cluster chaos build memproof mem32 clean bench-boards bench-boot

all: test

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

# pytest exits 5 when it collects nothing; that is a failure here, as is any
# other non-zero status, so CI can never pass by running no tests.
test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) host_tests --ignore=host_tests/ops/test_netns.py --ignore=host_tests/mp_only --ignore=host_tests/browser
	$(MPTEST) host_tests/portable
	$(MPTEST) --backend engine $(PAPER) $(SCENARIOS)
	$(MPTEST) host_tests/mp_only

test-py: $(STAMP)
	$(PY) -m pytest -n $(JOBS) host_tests --ignore=host_tests/ops/test_netns.py --ignore=host_tests/mp_only --ignore=host_tests/browser

# Timeline pages in headless Chromium (Debian's; installed here when missing):
# no script errors, lanes, leader spans, unorderable ops, a chaos run, and
# the 20,000-step run's size and render time. Screenshots in build/timeline/.
test-browser: $(STAMP)
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)
	$(PY) -m pytest -q -s host_tests/browser

# A simulator run as a page: make timeline [SEED=7] [STEPS=2000] -> build/timeline/seedN.html
timeline: $(STAMP)
	mkdir -p build/timeline
	$(PY) tools/simulator/sim.py --seed $(or $(SEED),7) --steps $(or $(STEPS),2000) --clients 5 \
	  --check-linear --timeline build/timeline/seed$(or $(SEED),7).html

# Needs root and nftables (apt-get install -y nftables): five nodes in their
# own network namespaces on a bridge; link cuts and nftables packet loss.
test-netns: $(STAMP)
	$(PY) -m pytest -q host_tests/ops/test_netns.py

test-mp: $(STAMP)
	$(MPTEST) host_tests/portable
	$(MPTEST) --backend engine $(PAPER) $(SCENARIOS)
	$(MPTEST) host_tests/mp_only

sim: $(STAMP)
	$(PY) tools/simulator/sim.py --nodes 5 --seed 7 --steps 20000 --faults all
	$(MP) tools/simulator/sim.py --nodes 5 --seed 7 --steps 20000 --faults all

# Acceptance sweep: seeds 1-200, 20,000 steps, every fault.
sim-sweep: $(STAMP)
	$(PY) tools/simulator/sweep.py --seeds 200 --steps 20000 --faults all --jobs $(JOBS)

# Issue 4 acceptance: the same sweep with 5 KV clients, histories checked by lincheck.
sim-sweep-kv: $(STAMP)
	$(PY) tools/simulator/sweep.py --seeds 200 --steps 20000 --faults all --clients 5 --jobs $(JOBS)

# Issue 14 acceptance: membership changes (joint ones too) with every fault and 5 KV clients.
sim-sweep-joint: $(STAMP)
	$(PY) tools/simulator/sweep.py --seeds 100 --steps 20000 --faults all,reconfig --clients 5 --jobs $(JOBS)

# Issue 12 acceptance: wiped nodes (a whole flash lost, the node back as a new
# incarnation, docs/incarnation.md) with every other fault, membership changes
# and 5 KV clients; make test runs a small sweep (host_tests/simulator/test_wipe.py).
sim-sweep-wipe: $(STAMP)
	$(PY) tools/simulator/sweep.py --seeds 100 --steps 20000 --faults all,reconfig,wipe --clients 5 --jobs $(JOBS)

# Issue 11 acceptance: the lock service (lib/raftapp/lock.py) with 5 contending
# clients under every fault; tools/simulator/lockcheck.py checks every entry.
sim-sweep-lock: $(STAMP)
	$(PY) tools/simulator/sweep.py --seeds 50 --steps 20000 --faults all --machine lock --clients 5 --jobs $(JOBS)

# Long soak: SEEDS seeds (default 1,000) starting after the acceptance range.
sim-soak: $(STAMP)
	$(PY) tools/simulator/sweep.py --first 201 --seeds $(SEEDS) --steps 20000 --faults all --jobs $(JOBS)

bench-flash: $(STAMP)
	$(PY) tools/bench/bench_flash.py

# Stock boards (boards/README.md): five nodes per network profile under client
# load (leader kill; SCENARIO=wifi or wrap), commits/s and drops, lincheck'd.
bench-boards: $(STAMP)
	$(PY) tools/bench/bench_boards.py --profiles $(or $(PROFILES),rp2,esp32) \
	  --seconds $(or $(SECONDS),20) --scenario $(or $(SCENARIO),kill)

# Power-on to serving on the virtual board with a 10,000-entry flash log.
bench-boot: $(STAMP)
	$(PY) tools/bench/bench_boot.py --entries $(or $(ENTRIES),10000) --heap $(or $(HEAP),256K)

bench-core: $(STAMP)
	$(PY) tools/bench/bench_core.py
	$(MP) tools/bench/bench_core.py

# README command 1: five MicroPython nodes on loopback, 1,000 keys, leader
# killed and restarted, everything read back and verified.
demo: $(STAMP)
	$(PY) tools/ops/cluster_demo.py

# The simulator on both interpreters plus the esp32 firmware build.
demo-sim: $(STAMP)
	$(PY) tools/demo.py

# A 5-node cluster in the foreground until Ctrl-C (DIR=... to choose its folder).
cluster: $(STAMP)
	$(PY) tools/ops/cluster.py run --nodes 5 --dir $(or $(DIR),/tmp/mpraft-cluster)

# Random faults on a real 5-node cluster (kills, partitions, noise, leadership
# transfers, membership changes) with concurrent clients, then lincheck.
# make chaos [SECONDS=300] [SEED=7]
chaos: $(STAMP)
	$(PY) tools/ops/chaos.py --seconds $(or $(SECONDS),120) --seed $(or $(SEED),1)

# The real-cluster benchmark (not part of make test): puts/s, latency and CPU
# per committed put at 1/16/64/256 in flight (unbatched and in client batches
# of 16), failover, heap at 10 s and 60 s, PySyncObj comparison.
# BASE=COMMIT (exported to build/base) or BASELINE=DIR (another checkout):
# the same load on its nodes in the same run, interleaved ROUNDS times (2).
bench: $(STAMP)
	mkdir -p build
	$(if $(BASE),rm -rf build/base && mkdir -p build/base && git archive $(BASE) | tar -x -C build/base)
	$(PY) tools/bench/cluster_bench.py --json build/bench.json \
	  $(if $(or $(BASE),$(BASELINE)),--baseline-tree $(or $(BASELINE),build/base) --rounds $(or $(ROUNDS),2))

# Where a put's CPU goes, stage by stage (docs/profile.md): the path in one
# MicroPython process, unbatched and in batches of 16, then a live leader.
profile: $(STAMP)
	$(MP) -X heapsize=512M tools/bench/profile_path.py --rounds 100 --gc off --batch 32
	$(MP) -X heapsize=512M tools/bench/profile_path.py --rounds 100 --gc off --batch 32 --group 16
	$(PY) tools/bench/profile_leader.py --seconds 10

build: $(STAMP)
	$(PY) tools/board/build.py $(BOARD)

# Memory proof (not part of make test, which runs 20 s of it): five nodes boot
# the .mpy firmware under BOARD's heap budget (-X heapsize, code included) and
# take the benchmark's puts for 60 s; fails on a MemoryError or heap growth > 5%.
# make memproof BOARD=esp32 [HEAP=100K] [ROMFS=1]  (ROMFS=1: the firmware runs
# from a ROMFS image, as on a board with a ROMFS partition; the cap is raised
# by exactly the image's heap blocks, since the unix port cannot map flash)
# The same firmware weighed on a 32-bit MicroPython (the webassembly port,
# from npm, run by node): code, node and live heap under puts. A weighing, not
# a proof (that port cannot cap its heap). make mem32 BOARD=esp32 [ROMFS=1]
mem32: $(STAMP)
	$(PY) tools/board/build.py unix --out build/mem32 --no-budget
	cd tools/board/mem32 && npm ci --silent --no-audit --no-fund
	$(if $(ROMFS),rm -rf build/mem32-rom && mkdir -p build/mem32-rom && cp build/mem32/mpraft*.mpy build/mem32-rom/ && \
	  .venv/bin/mpremote romfs --no-mpy -o build/mem32.rom build build/mem32-rom >/dev/null)
	node tools/board/mem32/mem32.mjs build/mem32 boards/$(BOARD)/board.json 3000 $(if $(ROMFS),build/mem32.rom)

memproof: $(STAMP)
	mkdir -p build && $(PY) tools/board/memproof.py --board $(BOARD) --seconds 60 \
	  $(if $(HEAP),--heap $(HEAP)) $(if $(ROMFS),--romfs) --json build/memproof-$(BOARD).json

# --- issue 6: flash a board (real or virtual) with mpremote -----------------
# make flash BOARD=esp32 PORT=/dev/ttyUSB0 NODE=1 CLUSTER=DIR/cluster.json [SSID=lab WIFI_PASSWORD=pw]
#   [EXAMPLE=counter|sensorlog: an app beside the node, examples/README.md]
#   [FORCE=1: flash a board that cannot hold the cluster's limits anyway]
#   builds build/$(BOARD), writes node NODE's /node.json from CLUSTER (validated
#   against the board), copies everything in one mpremote session (one line per
#   file, main.py last), removes stale .py that would shadow an .mpy, resets.
# make vboard FLASH=DIR [LINK=/tmp/vb1]: a virtual board on a pty (prints its path).
# make firmware BOARD=esp32 FW=ESP32_GENERIC-*.bin PORT=/dev/ttyUSB0: write
#   MicroPython itself with esptool (esptool is in .venv; not run in CI).
PORT    ?=
NODE    ?=
CLUSTER ?=
SSID    ?=
WIFI_PASSWORD ?=
FLASH   ?=
LINK    ?=
FW      ?=
HEAP    ?=
EXAMPLE ?=
FORCE   ?=

flash: $(STAMP)
	@if [ -z "$(PORT)" ] || [ -z "$(NODE)" ] || [ -z "$(CLUSTER)" ]; then \
	  echo "usage: make flash BOARD=$(BOARD) PORT=/dev/ttyUSB0 NODE=n CLUSTER=DIR/cluster.json [SSID=s WIFI_PASSWORD=p] [ROMFS=1]"; exit 2; fi
	$(PY) tools/board/build.py $(BOARD) $(if $(EXAMPLE),--with-optional --no-budget --out build/$(BOARD)-$(EXAMPLE))
	$(if $(EXAMPLE),cp examples/$(EXAMPLE)/main.py build/$(BOARD)-$(EXAMPLE)/main.py)
	$(PY) tools/board/vboard.py flash --build build/$(BOARD)$(if $(EXAMPLE),-$(EXAMPLE)) --port $(PORT) --node $(NODE) \
	  --cluster $(CLUSTER) $(if $(SSID),--ssid "$(SSID)" --password "$(WIFI_PASSWORD)") \
	  $(if $(ROMFS),--romfs) $(if $(FORCE),--force)

vboard: $(STAMP)
	@if [ -z "$(FLASH)" ]; then echo "usage: make vboard FLASH=DIR [LINK=/tmp/vb1] [ROMFS=64K]"; exit 2; fi
	$(PY) tools/board/vboard.py --flash $(FLASH) $(if $(LINK),--link $(LINK)) $(if $(ROMFS),--romfs $(ROMFS)) \
	  --heap $$($(PY) -c "import json; print(json.load(open('boards/$(BOARD)/board.json'))['heap_budget_bytes'] // 1024)")K

firmware: $(STAMP)
	@if [ -z "$(FW)" ] || [ -z "$(PORT)" ]; then echo "usage: make firmware BOARD=esp32 FW=file.bin PORT=/dev/ttyUSB0"; exit 2; fi
	$(PY) -m esptool --chip $(if $(filter esp32s3,$(BOARD)),esp32s3,esp32) --port $(PORT) erase_flash
	$(PY) -m esptool --chip $(if $(filter esp32s3,$(BOARD)),esp32s3,esp32) --port $(PORT) --baud 460800 \
	  write_flash -z $(if $(filter esp32s3,$(BOARD)),0,0x1000) $(FW)

.PHONY: flash vboard firmware

clean:
	rm -rf build .pytest_cache .hypothesis

# --- issue 15: containers, Kubernetes, Prometheus (docs/cloud.md) -----------
# Root. Each installs what it needs from Debian (podman, mmdebstrap, runc;
# prometheus) and pulls no image. make image: ~2 min the first time (the
# Debian base), ~5 s after. make cloud-demo: ~15 s after the image.
# make test-prometheus: ~12 s. make exporter CLUSTER=DIR/cluster.json [PORT=9100].
cloud-deps:
	@command -v podman >/dev/null && command -v mmdebstrap >/dev/null && command -v runc >/dev/null || \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman mmdebstrap runc)

image: $(STAMP) cloud-deps
	deploy/container/build.sh $(or $(IMAGE),mpraft:latest)

cloud-demo: image
	$(PY) tools/cloud/cloud_demo.py --image $(or $(IMAGE),mpraft:latest)

test-prometheus: $(STAMP)
	@command -v prometheus >/dev/null || \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus)
	$(PY) tools/cloud/prom_check.py --prometheus $$(command -v prometheus)

exporter: $(STAMP)
	@if [ -z "$(CLUSTER)" ]; then echo "usage: make exporter CLUSTER=DIR/cluster.json [PORT=9100]"; exit 2; fi
	$(PY) tools/cloud/exporter.py --cluster $(CLUSTER) --port $(or $(PORT),9100)
