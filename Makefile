# mcpgate — run `make help` for the targets.
SHELL := /bin/bash
GO ?= go
STATICCHECK_VERSION := v0.8.2
CONTROLLER_GEN := $(GO) run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BIN := bin
E2E_TIMEOUT ?= 15m

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/gateway and bin/gateway-controller
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN)/gateway ./cmd/gateway
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN)/gateway-controller ./cmd/gateway-controller

.PHONY: tools
tools: ## install what the tests and the demo run (Dex, npm packages), cached
	scripts/install-tools.sh

.PHONY: demo
demo: tools build ## the walkthrough on loopback: Dex + server-everything + gateway
	MCPGATE_BIN=$(CURDIR)/$(BIN)/gateway scripts/demo.sh

.PHONY: generate
generate: ## deepcopy code and CRD YAML from the k8s/api types (controller-gen)
	$(CONTROLLER_GEN) object paths=./k8s/api/...
	$(CONTROLLER_GEN) crd paths=./k8s/api/... output:crd:artifacts:config=k8s/crds
	$(CONTROLLER_GEN) rbac:roleName=mcpgate-controller paths=./k8s/controller/... output:rbac:artifacts:config=k8s/deploy/rbac

.PHONY: generate-check
generate-check: generate ## fail when generated files differ from the committed ones
	@git diff --exit-code -- k8s/ && test -z "$$(git status --porcelain --untracked-files=all -- k8s/)" || { echo "generated files are stale: run 'make generate' and commit"; exit 1; }

.PHONY: lint
lint: ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^tools/')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

.PHONY: bundle-check
bundle-check: build ## compiled example bundles pass `opa test` (library and user tests) and load in `opa eval -b`
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	$(BIN)/gateway bundle -f examples/quickstart -o $$tmp/bundle.tar.gz && \
	$(GO) tool opa test $$tmp/bundle.tar.gz $(wildcard rego/mcpgate/*_test.rego) && \
	$(GO) tool opa eval --fail -b $$tmp/bundle.tar.gz -f raw \
	  -i tests/testdata/walkthrough-input.json 'data.mcpgate.decision.http_status' | grep -qx 401 && \
	$(BIN)/gateway bundle -f examples/authorization -o $$tmp/authz.tar.gz && \
	$(GO) tool opa test $$tmp/authz.tar.gz examples/authorization/tests && \
	echo "bundle-check: opa test and opa eval -b pass on the quickstart and authorization bundles"

.PHONY: unit
unit: ## unit tests (no external components)
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /tests/)

.PHONY: e2e
e2e: tools build ## end-to-end tests with real Dex, MCP servers and clients
	MCPGATE_BIN=$(CURDIR)/$(BIN)/gateway MCPGATE_CONTROLLER_BIN=$(CURDIR)/$(BIN)/gateway-controller $(GO) test -count=1 -timeout $(E2E_TIMEOUT) ./tests/...

.PHONY: test
test: tools generate-check lint build bundle-check ## everything CI checks
	MCPGATE_BIN=$(CURDIR)/$(BIN)/gateway MCPGATE_CONTROLLER_BIN=$(CURDIR)/$(BIN)/gateway-controller $(GO) test -count=1 -timeout $(E2E_TIMEOUT) ./...
	$(MAKE) --no-print-directory fuzz-short
	$(GO) test -count=1 ./translate/... -run Golden
	@git diff --exit-code -- translate/testdata || { echo "golden files changed: run 'go test ./translate/... -update' and commit"; exit 1; }

.PHONY: bench
bench: build ## Go benchmarks (decision path, JWT with/without cache, list filtering, limiter, CEL, federation), then a short load run
	$(GO) test -run '^$$' -bench . -benchmem ./engine/... ./translate/...
	$(MAKE) --no-print-directory load LOAD_DURATION=$(BENCH_LOAD_DURATION) LOAD_WARMUP=1s

LOAD_DURATION ?= 10s
LOAD_WARMUP ?= 2s
BENCH_LOAD_DURATION ?= 3s
.PHONY: load
load: tools build ## load harness: direct / bare proxy / gateway at 500, 1k, 2k req/s and saturation, then federation (3 targets x 100 tools); LOAD_DURATION each (default 10s), table to tests/load/results/ (LOAD_OUT, LOAD_FLAGS)
	MCPGATE_BIN=$(CURDIR)/$(BIN)/gateway $(GO) run ./tests/load/cmd/load -duration $(LOAD_DURATION) -warmup $(LOAD_WARMUP) $(if $(LOAD_OUT),-out $(LOAD_OUT)) $(LOAD_FLAGS)

.PHONY: load-federation
load-federation: ## the load harness's federation scenario only (about 4 minutes at the default LOAD_DURATION)
	$(MAKE) --no-print-directory load LOAD_FLAGS='-scenarios federation $(LOAD_FLAGS)'

.PHONY: bench-federation
bench-federation: ## the federation Go benchmarks only (fan-out list of 3 x 100 tools, routed call), against direct, bare proxy and one target
	$(GO) test -run '^$$' -bench 'Federated' -benchmem ./engine

# Every fuzz target as PACKAGE:TARGET. go test runs one -fuzz target per
# invocation; the seed corpora also run as plain tests in `go test ./...`.
FUZZ_TARGETS := ./engine/mcp:FuzzParse ./engine/authn:FuzzVerify ./engine:FuzzSessionOpen ./k8s/load:FuzzLoad \
	./translate/cel:FuzzCompile ./translate/cel:FuzzCompileApprox ./translate/cel:FuzzCompileValue ./translate/cel:FuzzEquivalence

.PHONY: fuzz
fuzz: ## run each fuzz target for FUZZTIME (default 60s), one after the other
	@for t in $(FUZZ_TARGETS); do \
	  echo "fuzz $$t for $${FUZZTIME:-60s}"; \
	  $(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $${FUZZTIME:-60s} -fuzzminimizetime 5s $${t%%:*} || exit 1; \
	done

.PHONY: fuzz-short
fuzz-short: ## every fuzz target for FUZZTIME (default 8s), in two lanes (part of make test)
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	lane() { for t in "$$@"; do \
	  if $(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $${FUZZTIME:-8s} -fuzzminimizetime 1s -parallel 1 $${t%%:*} > $$tmp/$${t#*:}.log 2>&1; \
	  then echo "fuzz-short: $$t ok: $$(grep '^fuzz:' $$tmp/$${t#*:}.log | tail -1)"; \
	  else echo "fuzz-short: $$t FAILED"; cat $$tmp/$${t#*:}.log; return 1; fi; \
	done; }; \
	lane $(wordlist 1,3,$(FUZZ_TARGETS)) & a=$$!; lane $(wordlist 4,99,$(FUZZ_TARGETS)) & b=$$!; \
	wait $$a; ra=$$?; wait $$b; rb=$$?; exit $$((ra || rb))

SOAK ?= 5m
.PHONY: soak
soak: tools build ## mixed traffic through the gateway for SOAK (default 5m); prints RSS, threads, descriptors and goroutines at start and end
	MCPGATE_SOAK=$(SOAK) MCPGATE_BIN=$(CURDIR)/$(BIN)/gateway $(GO) test -count=1 -v -timeout 0 -run TestSoak ./tests/soak

.PHONY: clean
clean: ## remove build outputs (keeps the cached Dex build)
	rm -f $(BIN)/gateway $(BIN)/gateway-controller
