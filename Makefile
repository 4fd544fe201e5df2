# docker-cni. The README's two commands are `make run` and `make test` (as root).
GO       ?= go
BIN      := bin/docker-cni
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# Packages whose tests need neither root nor a Docker engine.
UNIT_PKGS = $(shell $(GO) list ./... | grep -v -E '/test/(e2e|cri|integration|node)')

.PHONY: build run deps test unit fuzz e2e engines bench vet clean

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

# Every fuzz target of FUZZ_PKGS for FUZZTIME each, one at a time (go test
# fuzzes one target per run). The seeds and the inputs that once failed
# (testdata/fuzz/) also run as plain tests in unit; a new failing input is
# written to the package's testdata/fuzz/<target>/. Go before 1.27 can end
# a run that found nothing with a bare "context deadline exceeded"
# (golang/go#75804): such a target runs once more.
FUZZTIME  ?= 10s
FUZZ_PKGS  = ./server/ ./translate/
fuzz:
	@set -e; log=$$(mktemp); trap 'rm -f "$$log"' EXIT; \
	for pkg in $(FUZZ_PKGS); do \
		list=$$($(GO) test -list '^Fuzz' $$pkg); targets=$$(echo "$$list" | grep '^Fuzz' || true); \
		[ -n "$$targets" ] || { echo "fuzz: no fuzz targets in $$pkg"; exit 1; }; \
		for target in $$targets; do \
			for try in 1 2; do \
				echo "fuzz $$pkg $$target for $(FUZZTIME)"; \
				if $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg >"$$log" 2>&1; then cat "$$log"; break; fi; \
				cat "$$log"; \
				if [ $$try = 2 ] || grep -q 'Failing input written' "$$log" || ! grep -qx '    context deadline exceeded' "$$log"; then exit 1; fi; \
				echo "fuzz: $$target ended on golang/go#75804, with no failing input: running it once more"; \
			done; \
		done; \
	done

# Engines (Debian's docker.io and a current moby built once and cached under
# /var/cache/docker-cni/engines), the test image, then the end-to-end suite.
engines:
	bash test/engines/install-deps.sh

e2e: engines
	$(GO) test -count=1 -p 1 -timeout 40m -v ./test/integration/ ./test/cri/ ./test/e2e/

# The soak test alone: N run/rm cycles, then a leak check (`make e2e` runs
# it too, with 100). SOAK_REPORT=FILE also writes its table there.
N ?= 100
.PHONY: soak
soak: engines
	SOAK_N=$(N) SOAK_REPORT=$(SOAK_REPORT) $(GO) test -count=1 -v -timeout 0 -run 'TestSoak$$' ./test/e2e/

test: vet unit fuzz e2e

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(UNIT_PKGS)

clean:
	rm -rf bin
