# docker-cni. The README's two commands are `make run` and `make test` (as root).
GO       ?= go
BIN      := bin/docker-cni
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# Packages whose tests need neither root nor a Docker engine.
UNIT_PKGS = $(shell $(GO) list ./... | grep -v -E '/test/(e2e|cri|integration|node)')

.PHONY: build run deps test unit e2e engines bench vet clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/docker-cni

# The daemon needs the CNI plugins; everything else is Go.
deps:
	bash scripts/install-runtime-deps.sh

run: deps build
	exec $(BIN) serve $(ARGS)

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 $(UNIT_PKGS)

# Engines (Debian's docker.io and a current moby built once and cached under
# /var/cache/docker-cni/engines), the test image, then the end-to-end suite.
engines:
	bash test/engines/install-deps.sh

e2e: engines
	$(GO) test -count=1 -p 1 -timeout 40m -v ./test/integration/ ./test/cri/ ./test/e2e/

test: vet unit e2e

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(UNIT_PKGS)

clean:
	rm -rf bin
