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
# flanneld (for the flannel tests' real overlay) is built once too, cached
# under /var/cache/docker-cni/flannel.
engines:
	bash test/engines/install-deps.sh
	bash test/engines/flannel.sh build >/dev/null

e2e: engines
	$(GO) test -count=1 -p 1 -timeout 60m -v ./test/integration/ ./test/cri/ ./test/node/ ./test/e2e/

# The compatibility matrix (test/compat/, test/e2e/compat_*_test.go): every
# cell, then docs/compatibility.md (commit it). By hand, as root, under the
# e2e lock: `CI=true flock -o /run/docker-cni-e2e.lock make compat`. `make
# test` runs its CI slice (TestCompat without COMPAT=full).
.PHONY: compat
compat: engines
	bash test/compat/deps.sh
	COMPAT=full $(GO) test -count=1 -v -timeout 60m -run '^TestCompat$$' ./test/e2e/

# Calico end to end (test/e2e/calico_*_test.go) with the real Calico plugins,
# calicoctl and felix, built from a projectcalico/calico source tree
# (test/calico/build.sh; cached by Go's build cache; felix needs LIBBPF_SRC,
# a libbpf source tree at the version Calico pins), and a kube-apiserver
# and kubelet built from the k8s.io/kubernetes module (test/calico/kube.sh;
# cached under /var/cache/docker-cni/kubernetes). Calico is not on the Go
# module proxy, so CI cannot build it: in `make test` those tests skip,
# saying so. As root, under the e2e lock:
# `CI=true flock -o /run/docker-cni-e2e.lock make calico-check CALICO_SRC=/path/to/calico LIBBPF_SRC=/path/to/libbpf`.
CALICO_SRC  ?=
LIBBPF_SRC  ?=
CALICO_BIN  ?= /var/cache/docker-cni/calico/bin
KUBE_BIN    ?= /var/cache/docker-cni/kubernetes/v1.37.2
.PHONY: calico-check
calico-check: engines
	@[ -n "$(CALICO_SRC)" ] || { echo "calico-check: give CALICO_SRC=<a projectcalico/calico source tree>"; exit 1; }
	bash test/calico/deps.sh
	LIBBPF_SRC=$(LIBBPF_SRC) bash test/calico/build.sh $(CALICO_SRC) $(CALICO_BIN)
	bash test/calico/kube.sh $(KUBE_BIN)
	E2E_CALICO_BIN=$(CALICO_BIN) E2E_CALICO_SRC=$(abspath $(CALICO_SRC)) E2E_KUBE_BIN=$(KUBE_BIN) \
		$(GO) test -count=1 -v -timeout 40m -run '^TestCalico' ./test/e2e/

# The soak test alone: N run/rm cycles, then a leak check (`make e2e` runs
# it too, with 100). SOAK_REPORT=FILE also writes its table there.
N ?= 100
.PHONY: soak
soak: engines
	SOAK_N=$(N) SOAK_REPORT=$(SOAK_REPORT) $(GO) test -count=1 -v -timeout 0 -run 'TestSoak$$' ./test/e2e/

# engines first: it installs every Debian package the suite needs (iptables
# for hostfw's unit test, systemd-analyze for verify-units) on a fresh machine.
test: engines vet unit verify-units fuzz e2e

# Side by side, in one run (as root, under the e2e lock: `CI=true flock -o
# /run/docker-cni-e2e.lock make bench`): the Go benchmarks of translate/ and
# state/, the libcni floor (driver's BenchmarkLibCNIFloor), then the Docker
# bench of test/e2e (bench_test.go), which reads the first two's output,
# prints the table and writes docs/performance.md and docs/performance.png.
BENCH_OUT ?= bin/bench
bench: SHELL := /bin/bash
bench: .SHELLFLAGS := -eo pipefail -c
bench: engines
	mkdir -p $(BENCH_OUT)
	$(GO) test -run '^$$' -bench . -benchmem ./translate/ ./state/ | tee $(BENCH_OUT)/go.txt
	$(GO) test -run '^$$' -bench '^BenchmarkLibCNIFloor$$' -benchtime 100x ./driver/ | tee -a $(BENCH_OUT)/go.txt
	BENCH_GO_RESULTS=$(CURDIR)/$(BENCH_OUT)/go.txt $(GO) test -count=1 -run '^$$' -bench '^BenchmarkSideBySide$$' -benchtime 1x -timeout 90m ./test/e2e/

clean:
	rm -rf bin

# ---- Installing: binary + systemd units, Debian package, managed plugin ----
# docs/install.md says how each is used.

# A static, reproducible build: the .deb and the plugin's rootfs carry it
# without libc.
RELEASE_BIN := bin/release/docker-cni
PREFIX      ?= /usr/local
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(PREFIX)/lib/systemd/system
DEB_OUT     ?= bin
PLUGIN_DIR  ?= bin/plugin
MANDIR      ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
# Debian's zsh looks in vendor-completions under /usr, site-functions elsewhere.
ZSHCOMPDIR  ?= $(if $(filter /usr,$(PREFIX)),/usr/share/zsh/vendor-completions,$(PREFIX)/share/zsh/site-functions)
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
DOCS_OUT    ?= bin/clidocs
# Man pages are dated by the last commit, so one tree gives one set of bytes.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

.PHONY: release-bin install uninstall deb plugin verify-units docs-gen

release-bin:
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=$(VERSION)" -o $(RELEASE_BIN) ./cmd/docker-cni

# The man pages (one per command) and the bash, zsh and fish completions,
# generated from the commands (cmd/docker-cni/gendocs.go, a build tag the
# release binary leaves out) into $(DOCS_OUT)/{man/man1,completions}.
docs-gen:
	rm -rf $(DOCS_OUT)
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) CGO_ENABLED=0 $(GO) run -tags gendocs -trimpath -ldflags "-X main.version=$(VERSION)" ./cmd/docker-cni gendocs $(DOCS_OUT)

# The binary, the systemd units (ExecStart and EnvironmentFile pointed at
# PREFIX and SYSCONFDIR), $(SYSCONFDIR)/default/docker-cni (kept when
# present), the man pages and the shell completions, under DESTDIR. Starts
# and enables nothing.
install: release-bin docs-gen
	install -D -m 0755 $(RELEASE_BIN) $(DESTDIR)$(PREFIX)/bin/docker-cni
	install -d $(DESTDIR)$(MANDIR)/man1
	install -m 0644 $(DOCS_OUT)/man/man1/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -D -m 0644 $(DOCS_OUT)/completions/docker-cni.bash $(DESTDIR)$(BASHCOMPDIR)/docker-cni
	install -D -m 0644 $(DOCS_OUT)/completions/_docker-cni $(DESTDIR)$(ZSHCOMPDIR)/_docker-cni
	install -D -m 0644 $(DOCS_OUT)/completions/docker-cni.fish $(DESTDIR)$(FISHCOMPDIR)/docker-cni.fish
	install -d $(DESTDIR)$(UNITDIR)
	for u in docker-cni.service docker-cni.socket; do \
		sed -e 's|/usr/bin/docker-cni|$(PREFIX)/bin/docker-cni|' -e 's|/etc/default/docker-cni|$(SYSCONFDIR)/default/docker-cni|' \
			dist/$$u >$(DESTDIR)$(UNITDIR)/$$u && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	[ -e $(DESTDIR)$(SYSCONFDIR)/default/docker-cni ] || install -D -m 0644 dist/docker-cni.default $(DESTDIR)$(SYSCONFDIR)/default/docker-cni
	@[ -n "$(DESTDIR)" ] || echo "installed; to run it: systemctl daemon-reload && systemctl enable --now docker-cni.socket docker-cni.service"

# What install put there, but the config; run `systemctl disable --now
# docker-cni.socket docker-cni.service` first.
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/docker-cni $(DESTDIR)$(UNITDIR)/docker-cni.service $(DESTDIR)$(UNITDIR)/docker-cni.socket
	rm -f $(DESTDIR)$(MANDIR)/man1/docker-cni.1 $(DESTDIR)$(MANDIR)/man1/docker-cni-*.1
	rm -f $(DESTDIR)$(BASHCOMPDIR)/docker-cni $(DESTDIR)$(ZSHCOMPDIR)/_docker-cni $(DESTDIR)$(FISHCOMPDIR)/docker-cni.fish
	@echo "kept: $(DESTDIR)$(SYSCONFDIR)/default/docker-cni, and docker-cni's state in /var/lib/docker-cni"

# $(DEB_OUT)/docker-cni_<version>_<arch>.deb (scripts/build-deb.sh).
deb:
	@set -e; stage=$$(mktemp -d); trap 'rm -rf "$$stage"' EXIT; \
	$(MAKE) --no-print-directory install DESTDIR=$$stage PREFIX=/usr UNITDIR=/lib/systemd/system SYSCONFDIR=/etc; \
	bash scripts/build-deb.sh $$stage $(DEB_OUT)

# The managed-plugin bundle $(PLUGIN_DIR)/{config.json,rootfs}
# (scripts/build-plugin.sh); then: docker plugin create docker-cni $(PLUGIN_DIR)
plugin: release-bin
	bash scripts/build-plugin.sh $(RELEASE_BIN) $(PLUGIN_DIR)

# systemd-analyze verify of the units, ExecStart pointed at the binary just
# built (verify wants the command to exist). verify exits 0 on an unknown
# key or a bad value it ignores: any output fails too.
verify-units: release-bin
	@set -e; d=$$(mktemp -d); trap 'rm -rf "$$d"' EXIT; \
	sed 's|^ExecStart=/usr/bin/docker-cni|ExecStart=$(CURDIR)/$(RELEASE_BIN)|' dist/docker-cni.service >$$d/docker-cni.service; \
	cp dist/docker-cni.socket $$d/; \
	if ! out=$$(systemd-analyze verify $$d/docker-cni.socket $$d/docker-cni.service 2>&1) || [ -n "$$out" ]; then \
		echo "$$out"; echo "verify-units: systemd-analyze verify found problems in dist/"; exit 1; \
	fi; \
	echo "verify-units: dist/docker-cni.socket dist/docker-cni.service ok"
