# docker-cni. `make run` and `make test` are the two commands the README gives.
GO      ?= go
BIN     := bin/docker-cni
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: build run test unit e2e bench vet clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/docker-cni

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
