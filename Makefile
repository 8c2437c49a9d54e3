# lws: LeaderWorkerSet for Kubernetes, around one WebAssembly module.
# `make demo` and `make test` are the two commands a newcomer needs (README.md).

SHELL := /bin/bash
CARGO ?= cargo
PROFILE ?= release
WASM_TARGET := wasm32-unknown-unknown
WASM := target/lws.wasm
LWS := target/$(PROFILE)/lws
export LWS_WASM := $(CURDIR)/$(WASM)

.PHONY: all setup wasm build test unit lint e2e bench demo demo-down clean help

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

unit: build ## unit, scenario and parity tests (no cluster)
	$(CARGO) test --profile $(PROFILE) --workspace

test: lint unit browser-test ## everything: lint, unit, parity, the cluster smoke test
	@echo "[test] all suites passed"

clean: ## remove build output (not the cluster cache)
	$(CARGO) clean

include tests/cluster/cluster.mk
include tests/browser/browser.mk
