# lws: LeaderWorkerSet for Kubernetes, around one WebAssembly module.
# `make demo` and `make test` are the two commands a newcomer needs (README.md).

SHELL := /bin/bash
CARGO ?= cargo
PROFILE ?= release
WASM_TARGET := wasm32-unknown-unknown
WASM := target/lws.wasm
LWS := target/$(PROFILE)/lws
export LWS_WASM := $(CURDIR)/$(WASM)

.PHONY: all setup wasm build test unit lint e2e e2e-lifecycle e2e-failover chaos incluster conformance swap bench bench-cluster demo demo-down clean help

all: build

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

setup: ## install what the build needs (rust target, rustfmt, clippy)
	@echo "[setup] rust target $(WASM_TARGET), rustfmt, clippy"
	@rustup target add $(WASM_TARGET) >/dev/null
	@rustup component add rustfmt clippy >/dev/null 2>&1 || true

wasm: setup ## build target/lws.wasm from core (waPC, Kubewarden metadata section)
	@echo "[wasm] building lws.wasm (cold build ~3 min)"
	$(CARGO) build -p lws-wasm --target $(WASM_TARGET) --profile wasm
	@cp target/$(WASM_TARGET)/wasm/lws_wasm.wasm $(WASM)
	@echo "[wasm] $(WASM): $$(stat -c %s $(WASM)) bytes, $$(gzip -9c $(WASM) | wc -c) gzipped, sha256 $$(sha256sum $(WASM) | cut -c1-16)…"

build: wasm ## build the lws binary (embeds target/lws.wasm)
	@echo "[build] lws ($(PROFILE); cold build ~10 min on 2 cores)"
	$(CARGO) build --profile $(PROFILE) -p lws-host

lint: wasm ## rustfmt and clippy, warnings are errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --profile $(PROFILE) --workspace --all-targets -- -D warnings

# host/tests/upstream_crd.rs compares our CRD with upstream's file, which
# core/schema/upstream-crd.sh fetches from the Go module proxy (a failure stops the target).
unit: build ## unit, scenario and parity tests (no cluster)
	crd="$$(bash core/schema/upstream-crd.sh)" && LWS_UPSTREAM_CRD="$$crd" LWS_UPSTREAM_REQUIRED=1 $(CARGO) test --profile $(PROFILE) --workspace

# The local cluster of `make test` has the two real nodes, for the in-cluster suite.
test: export REAL_NODE := 1
test: lint helm-lint unit cluster-test e2e chaos incluster swap conformance browser-test ## everything: lint, chart, unit, parity, cluster smoke, e2e, faults, in-cluster, live swap, upstream's e2e suite, browser
	@echo "[test] all suites passed"

cluster-test: cluster-up cluster-smoke ## start the local cluster if needed, then smoke-test it

bench: build ## benchmarks: module per-call native vs wasm, size; table in target/bench/results.json
	$(CARGO) bench --profile $(PROFILE) --bench module
	@python3 tests/bench/summarize.py

# Ours vs upstream LWS (the peer) vs the floor, taking turns on the local cluster (tests/bench/cluster.py).
bench: bench-cluster
bench-cluster: build cluster-up ## end to end: ours vs upstream LWS vs no controller, 100×8 (BENCH_ROUNDS/GROUPS/SIZE) -> target/bench/cluster.json
	python3 tests/bench/cluster.py

clean: ## remove build output (not the cluster cache)
	$(CARGO) clean

include tests/cluster/cluster.mk
include tests/browser/browser.mk
# The controller image (make image) and the Helm chart (helm lint, make deploy / undeploy).
include image/image.mk
include charts/charts.mk

# The controller on the local cluster: tests/e2e/controller.sh up|down (cluster-up when no
# KUBECONFIG, install --dev, a least-privilege ServiceAccount, .cluster/controller.pid).
E2E_CONTROLLER := bash tests/e2e/controller.sh
DEMO_LWS := leaderworkerset-sample

# The suite runs under one controller: the scenarios of issue 5, then the lifecycle tests
# (tests/e2e/lifecycle.rs); then that controller stops and the fail-over tests run controllers of
# their own (tests/e2e/failover.rs), so no other controller may run.
e2e: build ## end-to-end: controller scenarios, lifecycle, fail-over, gang scheduling, on the local cluster
	@LWS_SCHEDULER_PROVIDER=volcano $(E2E_CONTROLLER) up
	@set -a; [ -n "$$KUBECONFIG" ] || . .cluster/env; set +a; \
	  rc=0; $(CARGO) test --profile $(PROFILE) --test e2e -- --ignored --test-threads=4 --skip failover:: --skip lifecycle:: --skip incluster:: --skip swap:: --skip chaos:: || rc=$$?; \
	  if [ $$rc -eq 0 ]; then echo "[e2e] lifecycle"; $(CARGO) test --profile $(PROFILE) --test e2e -- --ignored --test-threads=6 lifecycle:: || rc=$$?; fi; \
	  $(E2E_CONTROLLER) down; \
	  if [ $$rc -ne 0 ]; then echo "[e2e] FAILED (controller log: .cluster/logs/controller.log)"; fi; exit $$rc
	@echo "[e2e] fail-over (controllers of its own, ~3 min)"
	@$(MAKE) --no-print-directory e2e-failover

e2e-lifecycle: build ## lifecycle only: rolling updates per upstream §4.5.2, restart policies, failures
	@$(E2E_CONTROLLER) up
	@set -a; [ -n "$$KUBECONFIG" ] || . .cluster/env; set +a; \
	  rc=0; $(CARGO) test --profile $(PROFILE) --test e2e -- --ignored --test-threads=6 lifecycle:: || rc=$$?; \
	  $(E2E_CONTROLLER) down; exit $$rc

e2e-failover: build ## fail-over only: leader election and controller kills (stops the e2e controller)
	@$(E2E_CONTROLLER) down
	@$(E2E_CONTROLLER) prepare
	@set -a; [ -n "$$KUBECONFIG" ] || . .cluster/env; set +a; \
	  rc=0; $(CARGO) test --profile $(PROFILE) --test e2e -- --ignored --test-threads=1 failover:: || rc=$$?; \
	  if [ $$rc -ne 0 ]; then echo "[e2e] FAILED (candidate logs: .cluster/logs/failover-*.log)"; fi; exit $$rc

# The fault suite (issue 14; tests/e2e/chaos.rs): control-plane restarts, the leader cut off
# by a proxy, the webhook server down, nodes lost, deletions, two writers; controllers of its
# own like the fail-over tests. Figures: target/chaos/results.jsonl.
chaos: build cluster-up ## fault suite: apiserver/etcd restarts, partitioned leader, webhook down, node loss, deletes, two writers
	@$(E2E_CONTROLLER) down
	@$(E2E_CONTROLLER) prepare
	@rm -f target/chaos/results.jsonl
	@set -a; [ -n "$$KUBECONFIG" ] || . .cluster/env; set +a; \
	  rc=0; $(CARGO) test --profile $(PROFILE) --test e2e -- --ignored --test-threads=1 chaos:: || rc=$$?; \
	  if [ $$rc -ne 0 ]; then echo "[chaos] FAILED (controller logs: .cluster/logs/failover-*.log, proxy: .cluster/chaos-proxy-*)"; fi; \
	  [ ! -s target/chaos/results.jsonl ] || { echo "[chaos] figures (target/chaos/results.jsonl):"; cat target/chaos/results.jsonl; }; \
	  exit $$rc

# The chart's controller pods on the real nodes: image, helm install, hand-over, rotation,
# uninstall (tests/e2e/incluster.sh). Needs REAL_NODE=1 make cluster-up.
incluster: build image helm ## in-cluster: the chart on the local cluster's real nodes
	@CARGO="$(CARGO)" PROFILE="$(PROFILE)" bash tests/e2e/incluster.sh

# Upstream LWS v0.9 (the peer) and ours take turns over live LeaderWorkerSets, both ways
# (tests/e2e/swap.rs): one controller at a time, so one test at a time.
swap: build cluster-up ## live swap both ways: upstream <-> ours with rollouts in flight, nothing recreated
	@set -a; [ -n "$$KUBECONFIG" ] || . .cluster/env; set +a; \
	  $(CARGO) test --profile $(PROFILE) --test e2e -- --ignored --test-threads=1 --nocapture swap::

# Upstream's own e2e suite against ours and against the peer (tests/conformance/run.sh).
conformance: build image helm ## upstream's e2e suite (sigs.k8s.io/lws v0.9.0) vs ours and the peer: target/conformance/results.json
	@LWS=$(CURDIR)/$(LWS) bash tests/conformance/run.sh

demo: build ## cluster, controller, the seed's sample: 12 pods Running
	@$(E2E_CONTROLLER) up
	@set -a; [ -n "$$KUBECONFIG" ] || . .cluster/env; set +a; K=$${KUBECTL:-kubectl}; \
	  $$K apply -f examples/lws.yaml; \
	  echo "[demo] waiting for 12 Running pods"; \
	  for i in $$(seq 1 120); do \
	    n=$$($$K get pods --selector=leaderworkerset.sigs.k8s.io/name=$(DEMO_LWS) --field-selector=status.phase=Running --no-headers 2>/dev/null | wc -l); \
	    [ "$$n" -ge 12 ] && break; sleep 1; \
	  done; \
	  $$K get pods --selector=leaderworkerset.sigs.k8s.io/name=$(DEMO_LWS); \
	  [ "$$n" -ge 12 ] || { echo "[demo] only $$n of 12 pods Running (log: .cluster/logs/controller.log)"; exit 1; }; \
	  echo; echo "[demo] the cluster and the controller keep running (log: .cluster/logs/controller.log)."; \
	  echo "[demo] stop them with: make demo-down"

demo-down: ## stop the demo's controller and the local cluster
	@$(E2E_CONTROLLER) down
	@if [ -f .cluster/pids ]; then $(MAKE) --no-print-directory cluster-down; fi

# Structure-aware fuzzing (fuzz/src/lib.rs): every module operation natively, through wasmtime
# (checked against native), and the CLI's manifest reader; cargo-fuzz on the nightly toolchain.
# Short by default; issue 14's campaign: make fuzz FUZZ_RUNS=1000000 FUZZ_WASM_RUNS=100000.
FUZZ_RUNS ?= 20000
FUZZ_WASM_RUNS ?= 2000
FUZZ_DOCUMENT_RUNS ?= $(FUZZ_RUNS)
.PHONY: fuzz
fuzz: wasm ## fuzz the module's operations (native, wasmtime) and the manifest reader; FUZZ_RUNS, FUZZ_WASM_RUNS set the counts
	@rustup toolchain list | grep -q '^nightly' || { echo "[fuzz] needs the nightly toolchain (rustup toolchain install nightly)"; exit 1; }
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	@cd fuzz && for run in ops_native:$(FUZZ_RUNS) ops_wasm:$(FUZZ_WASM_RUNS) documents:$(FUZZ_DOCUMENT_RUNS); do \
	  target=$${run%%:*}; runs=$${run##*:}; seeds=; [ $$target = documents ] && seeds=../examples; \
	  mkdir -p corpus/$$target target; echo "[fuzz] $$target: $$runs inputs"; \
	  cargo +nightly fuzz run -s none $$target corpus/$$target $$seeds -- -runs=$$runs -timeout=10 -print_final_stats=1 2>&1 \
	    | tee target/$$target.log | grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|panicked|ERROR|SUMMARY|Test unit written'; \
	  status=$${PIPESTATUS[0]}; [ $$status -eq 0 ] || { echo "[fuzz] $$target FAILED (fuzz/target/$$target.log)"; exit $$status; }; \
	done
