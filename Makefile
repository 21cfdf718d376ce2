# minkms — build, run and test.
#
#   make run    start a local three-node development cluster (generated CA, certificates, root key and admin API key)
#   make test   vet, then every unit and integration test with the race detector
#               (with a short linearizability run: 300 operations, 2 leader kills)
#   make chaos  the long linearizability run: CHAOS_OPS operations (default 20000) by six
#               clients on four keys through all three nodes while the leader is SIGKILLed
#               and restarted CHAOS_KILLS times (default 20), checked with porcupine;
#               a violation leaves an HTML visualization under MINKMS_ARTIFACTS (or a
#               minkms-artifacts-* temp dir) and prints its path
#   make bench  start a local three-node cluster and the baseline server (bare HTTPS with the
#               same mutual TLS), run the standard minkms bench scenarios against both and
#               print one table (ops/s, p99, server CPU per request, ratios to the baseline),
#               also written to bench-results.txt; BENCH_DURATION (5s), BENCH_CONCURRENCY (64),
#               BENCH_HTTP1=1 for HTTP/1.1 clients instead of the SDK's HTTP/2,
#               BENCH_ONLY=REGEXP to run only the scenarios whose name matches,
#               BENCH_ROUNDS (3) pairs of baseline and minkms runs per compared row
#   make build  build bin/minkms
#   make lint   gofmt and go vet

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/minkms/minkms/server.Version=$(VERSION)
BIN     := bin/minkms

.PHONY: build run test chaos lint fuzz bench clean

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/minkms

run: build
	./$(BIN) server --dev --nodes 3

lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test: lint
	$(GO) test -race -count=1 -timeout 9m ./...

# chaos is the long linearizability run (see the header); the short one is part of make test.
CHAOS_OPS   ?= 20000
CHAOS_KILLS ?= 20
chaos:
	MINKMS_CHAOS_OPS=$(CHAOS_OPS) MINKMS_CHAOS_KILLS=$(CHAOS_KILLS) MINKMS_CHAOS_CHECK_SECONDS=300 \
	  $(GO) test -count=1 -v -run '^TestLinearizability$$' -timeout 30m ./integration/

# bench: see the header and docs/benchmarks.md.
BENCH_DURATION    ?= 5s
BENCH_CONCURRENCY ?= 64
BENCH_HTTP1       ?=
BENCH_ONLY        ?=
BENCH_ROUNDS      ?= 3
bench: build
	$(GO) run ./internal/benchrun -bin $(BIN) -out bench-results.txt \
	  -duration $(BENCH_DURATION) -concurrency $(BENCH_CONCURRENCY) -rounds $(BENCH_ROUNDS) $(if $(BENCH_HTTP1),-http1) $(if $(BENCH_ONLY),-only '$(BENCH_ONLY)')

# fuzz runs each fuzz target for a short while (FUZZTIME, default 30s).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin
