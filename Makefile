# graygw: a gray-release gateway. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go

.PHONY: help deps build test ha-soak generate vectors api p4 bench demo lint fuzz clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

deps: ## install build/test dependencies (Debian 12, root)
	bash scripts/deps.sh >/dev/null

build: ## build every Go binary into bin/
	$(GO) build -o bin/ ./cmd/...

test: ## run all tests (as root: BPF and namespace tests included)
	bash scripts/test.sh

ha-soak: ## HA failover under traffic, ROUNDS times (default 10): the figures of docs/ha.md (root, etcd, BIRD)
	bash scripts/ha-soak.sh

generate: ## regenerate bpf2go bindings (needs clang) and the test vectors
	$(GO) generate ./bpf/... ./testvectors/...

vectors: ## regenerate testvectors/pipeline.json and ipv6.json from testvectors/cases.go and ipv6.go
	cd testvectors && $(GO) run ./gen -o pipeline.json -o6 ipv6.json

api: ## regenerate the controller's gRPC API (api/graygw/v1) from its .proto
	bash scripts/genapi.sh

p4: ## compile the P4 programs with p4c and compare the P4Info with the committed one
	bash scripts/p4c.sh

bench: ## run the benchmarks and write the results under bench/
	bash scripts/bench.sh

demo: ## the quick-start demo: a gateway in network namespaces
	bash scripts/demo.sh

lint: ## gofmt and go vet over the module
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	bash scripts/fuzz.sh $${FUZZTIME:-30s}

clean: ## remove build output
	rm -rf bin build
