# studyd — see README.md. `make test` is what CI runs.
SHELL         := /bin/bash
GO            ?= go
BIN           := $(CURDIR)/bin
STATICCHECK   := $(BIN)/staticcheck
STATICCHECK_VERSION := v0.8.2
FUZZTIME      ?= 10s
# Unit and adapter tests (embedded nats-server), and the architecture test
# (internal/archtest: import rules from go list); integration tests run in containers.
UNIT_PKGS     = $(shell $(GO) list ./... | grep -v /tests/integration)

.PHONY: all build run demo test test-unit test-integration browser lint fuzz bench docs tools clean

all: lint test

build:
	$(GO) build -o $(BIN)/ ./cmd/...

run:
	$(GO) run ./cmd/studyd

# demo: start studyd, simulate a small fleet, show the views, stop.
demo: build
	./scripts/demo.sh

test: test-unit test-integration

test-unit: browser
	$(GO) test -race -count=1 $(UNIT_PKGS)

# browser: the study page's browser test drives Debian's chromium; installed if missing.
browser:
	./scripts/ensure-chromium.sh

test-integration:
	./scripts/test-integration.sh

lint: $(STATICCHECK)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(STATICCHECK) ./...

$(STATICCHECK):
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# fuzz: every fuzz target for FUZZTIME each, under a memory limit: a Go heap limit
# (FUZZMEMLIMIT) and a virtual-memory cap (FUZZVMEM, KiB), so that a decoder trusting a
# hostile length dies in the run ("out of memory") instead of passing or taking the
# machine down.
FUZZMEMLIMIT ?= 512MiB
FUZZVMEM ?= 4194304
fuzz:
	@ulimit -v $(FUZZVMEM); for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; GOMEMLIMIT=$(FUZZMEMLIMIT) $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1s $$pkg || exit 1; \
	  done; \
	done

bench:
	$(GO) run ./cmd/studybench

docs:
	$(GO) run ./internal/docgen
	$(GO) test -count=1 -run '^TestReadmeMatchesHelp$$' ./cmd/studyctl -args -update

clean:
	rm -rf $(BIN) data integration.log
