# wanderer-kills: the two commands a new user needs are `make run` and `make test`.
GO        ?= go
BIN       := bin/wanderer-kills
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
PHOENIX_CLIENT := server/testdata/phoenix-client

.PHONY: build run test test-deps bench lint fuzz clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/wanderer-kills

## run: build and start `serve` on the embedded default store (./var)
run: build
	./$(BIN) serve

## test-deps: install what the tests need and a fresh machine lacks: the
## Phoenix JS client (npm) for the WebSocket tests and Debian's chromium for
## the dashboard's browser test
test-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the dashboard browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi
	@if [ -f $(PHOENIX_CLIENT)/package.json ] && [ ! -d $(PHOENIX_CLIENT)/node_modules ]; then \
		echo "installing the Phoenix JS client for the WebSocket tests"; \
		npm ci --prefix $(PHOENIX_CLIENT) --no-audit --no-fund; \
	fi

## test: the whole suite under the race detector
test: test-deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

## bench: the Go benchmarks, then the full harness run: bench/results/<date>.json, .md and .svg (bench/README.md)
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count 1 -timeout 60m ./...
	@mkdir -p bench/results
	./$(BIN) bench --out bench/results/$$(date +%F).json

## lint: gofmt, go vet and a pinned staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## fuzz: a short run of every fuzz target (FUZZTIME per target)
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

clean:
	rm -rf bin
