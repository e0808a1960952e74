# QEMU werror/rerror=retry: the patch series and its workspace.
#
#   make            install dependencies, fetch QEMU, apply the series, build
#   make demo       ... build upstream too, and show a guest riding out an outage
#   make check      ... and run every test suite (what CI runs)
#
# See README.md for the rest.

SHELL := /bin/bash
S := scripts

.PHONY: all deps source tree tree-upstream build build-upstream export \
        build-asan check check-qtest check-iotests check-asan check-e2e \
        check-workspace check-full check-e2e-full torture \
        check-series check-quilt demo ops-table bench bench-full clean

all: build
	@echo
	@echo "Patched QEMU: build/qemu/build/qemu-system-x86_64"
	@echo "Run it with a disk that rides out storage outages, e.g.:"
	@echo
	@echo "  build/qemu/build/qemu-system-x86_64 -accel kvm:tcg -m 1G \\"
	@echo "    -blockdev driver=file,node-name=d0,filename=disk.img,cache.direct=on,aio=native \\"
	@echo "    -device virtio-blk-pci,drive=d0,werror=retry,rerror=retry,retry-interval=2000,retry-timeout=10000"

deps:
	@$(S)/install-deps.sh

source: deps
	@mkdir -p build && $(S)/fetch-qemu.sh build/.src-check >/dev/null && rm -rf build/.src-check

tree: deps
	@$(S)/tree.sh qemu $(if $(filter 1 yes,$(FORCE)),--force)

tree-upstream: deps
	@$(S)/tree.sh qemu --upstream

build: tree
	@$(S)/build.sh

# Unpatched QEMU from the same source and flags, for comparisons
build-upstream: tree-upstream
	@$(S)/build.sh --upstream

# The patched qemu-system-x86_64 with AddressSanitizer, for check-asan
build-asan: tree
	@$(S)/build.sh --asan

export:
	@$(S)/export.sh qemu

# QEMU's own test programs in the patched and upstream builds, for the gate
# (scripts/gate.py): ninja's default target in both
.PHONY: build-gate check-gate check-gate-full
build-gate: build build-upstream
	@$(S)/build.sh --all
	@$(S)/build.sh --upstream --all

check: build build-upstream build-asan build-libvirt build-gate
	@$(S)/check.sh

check-workspace: tree libvirt-tree
	@$(S)/check.sh workspace
# QEMU's own suites on the series, compared with upstream (quick: upstream
# runs only what the series fails; full: both whole, migration-test --full)
check-gate: build-gate
	@$(S)/check.sh gate
check-gate-full: build-gate
	@$(S)/check.sh gate-full
check-qtest: build
	@$(S)/check.sh qtest
check-iotests: build
	@$(S)/check.sh iotests
check-asan: build build-asan
	@$(S)/check.sh asan
check-e2e: build build-upstream
	@$(S)/check.sh e2e

# Everything: the suites of make check, with every e2e run instead of
# make check's subset (tests/e2e/README.md)
check-full: build build-upstream build-asan build-libvirt build-gate
	@TORTURE_SEEDS=1,2 $(S)/check.sh workspace gate-full qtest iotests asan e2e-full torture libvirt
check-e2e-full: build build-upstream
	@$(S)/check.sh e2e-full

# Seeded torture on the sanitizer build: make torture SEED=42 DURATION=3600
# (SEED: one or more, comma separated; default a random one, printed)
torture: build build-asan
	@QEMU=build/qemu/build/qemu-system-x86_64 \
	 QEMU_SANITIZER=build/qemu/build-asan/qemu-system-x86_64 \
	 python3 tests/e2e/run.py --torture $(if $(SEED),--seed $(SEED)) \
	   --duration $(or $(DURATION),600)

# libvirt: the second series (patches-libvirt/), against Debian 13's libvirt
# 11.3.0 source package, built with the QEMU driver only (README, "libvirt")
.PHONY: libvirt-tree build-libvirt export-libvirt check-libvirt check-libvirt-quilt
libvirt-tree: deps
	@$(S)/tree.sh libvirt $(if $(filter 1 yes,$(FORCE)),--force)
build-libvirt: libvirt-tree
	@$(S)/libvirt-build.sh
export-libvirt:
	@$(S)/export.sh libvirt
# libvirt's tests of what the series touches, and the end-to-end run
check-libvirt: build build-upstream build-libvirt
	@$(S)/check.sh libvirt
# The libvirt series applies with quilt inside Debian's libvirt source package
check-libvirt-quilt: deps
	@$(S)/check-quilt.sh libvirt
# Every libvirt patch builds on its own, passes the tests and syntax-check
# (slow: one build per patch)
.PHONY: check-libvirt-series
check-libvirt-series: libvirt-tree
	@$(S)/check-series.sh libvirt

# Every patch builds on its own and passes checkpatch (slow: one build per patch)
check-series: tree
	@$(S)/check-series.sh qemu

# The series applies with quilt inside Debian's source package
check-quilt: deps
	@$(S)/check-quilt.sh qemu

# The series as a Debian package (README, "Debian package"): deb, the
# source package in build/deb/ (quilt, dpkg-source -b, lintian compared
# with Debian's); deb-binary, its binary packages with Debian's
# debian/rules (47 min on 2 busy cores; off Debian 13 in a trixie chroot
# made with debootstrap, root needed; on Debian 13 lists missing
# build-deps first).  deb-libvirt and deb-binary-libvirt: the same for the
# libvirt series and Debian's libvirt, in build/deb-libvirt/ (its test
# suite runs in the build).
.PHONY: deb deb-binary deb-libvirt deb-binary-libvirt
deb: deps
	@$(S)/deb.sh qemu
deb-binary: deb
	@$(S)/deb.sh --binary qemu
deb-libvirt: deps
	@$(S)/deb.sh libvirt
deb-binary-libvirt: deb-libvirt
	@$(S)/deb.sh --binary libvirt

demo: build build-upstream
	@QEMU=build/qemu/build/qemu-system-x86_64 \
	 QEMU_UPSTREAM=build/qemu-upstream/build/qemu-system-x86_64 \
	 python3 tests/e2e/run.py --demo

# Every management operation sent while a disk hangs, on the series and on
# upstream with werror=stop: README's table (build/ops-table.md; 32 runs,
# about 20 min).  OPS=op-reset,op-reset-stop redoes some runs and merges them.
ops-table: build build-upstream
	@python3 tests/e2e/run.py --ops-table build/ops-table.md $(if $(OPS),--scenario $(OPS))

# Benchmarks, patched vs upstream (README, "Benchmarks"): fast path under
# callgrind, recovery latency, timeout precision, CPU while hung, scale.
# bench: the quick mode (what CI prints, no thresholds); bench-full: the
# README's figures and bench/*.png (31 min)
bench: build build-upstream
	@/usr/bin/python3 bench/run.py --quick
bench-full: build build-upstream
	@/usr/bin/python3 bench/run.py --full

clean:
	rm -rf build/qemu/build build/qemu/build-asan build/qemu-upstream/build build/check-logs
