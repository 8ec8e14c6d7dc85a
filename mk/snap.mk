# ---- the snap, built offline (no snapcraft, no network) ----
#
#   make install DESTDIR=D PREFIX=P   programs, app wrappers and the hooks' library under D/P
#   make snap                         build/nova-hypervisor_<version>_amd64.snap (scripts/mksnap.sh)
#   make snap-baselist                regenerate snap/base/core22-libs.txt (the core22 base's libraries)
#                                     from snap/base/core22-packages.txt (root; Debian mirror)
#   make store-request                the store auto-connect request text, from interfaces/*/MANIFEST.md
#   make check-snap-consistency       snapcraft.yaml plugs, module apps, hooks, src/lib/plugs.c and
#                                     interfaces/*/ agree (part of make check)

PREFIX ?= /usr/local
SNAP_PY := /usr/bin/python3
SNAP_VERSION := $(shell $(SNAP_PY) scripts/snapmeta.py version snapcraft.yaml 2>/dev/null)
SNAP_FILE := $(BUILD)/nova-hypervisor_$(SNAP_VERSION)_amd64.snap
SNAP_PRIME := $(BUILD)/snap/prime
SNAP_WRAPPERS := snap/local/nova-compute-daemon snap/local/nova-module
SNAP_SHARE := snap/local/hooklib.sh

.PHONY: install snap snap-baselist store-request check-snap-consistency

install: $(PROGRAMS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/nova-hypervisor
	install -m 0755 $(PROGRAMS) $(SNAP_WRAPPERS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 $(wildcard $(SNAP_SHARE)) $(DESTDIR)$(PREFIX)/share/nova-hypervisor/

snap: $(SNAP_FILE)

$(SNAP_FILE): $(PROGRAMS) $(SNAP_WRAPPERS) $(wildcard $(SNAP_SHARE)) snapcraft.yaml $(wildcard snap/hooks/*) \
		scripts/mksnap.sh scripts/snapmeta.py scripts/snaplibs.py $(wildcard snap/base/*.txt)
	rm -rf $(SNAP_PRIME)
	@$(MAKE) --no-print-directory install DESTDIR=$(abspath $(SNAP_PRIME)) PREFIX=
	bash scripts/mksnap.sh $(SNAP_PRIME) $(BUILD)

# The stand-in core22 tree (scripts/base/mkbase.sh, cached) and the library list made from it.
snap-baselist:
	bash scripts/e2e/host-deps.sh
	root=$$(bash scripts/base/mkbase.sh | tail -1) && \
	$(SNAP_PY) scripts/snaplibs.py baselist "$$root" >snap/base/core22-libs.txt.new && \
	mv snap/base/core22-libs.txt.new snap/base/core22-libs.txt
	@echo "snap-baselist: $$(grep -vc '^#' snap/base/core22-libs.txt) libraries in snap/base/core22-libs.txt"

# The packaging test unpacks the snap and starts its apps from their wrappers.
$(BUILD)/tests/test-snap-package: $(SNAP_FILE)

$(BUILD)/tests/test-snap-hooks: $(SNAP_FILE)

# The store auto-connect request text, from interfaces/*/MANIFEST.md.
store-request:
	@$(SNAP_PY) scripts/snapmeta.py store-request .

# snapcraft.yaml's plugs, the module apps, the hooks, src/lib/plugs.c and
# interfaces/*/ must agree; one line per disagreement. Counted in make check's tally.
check-snap-consistency:
	@mkdir -p $(BUILD)
	@if $(SNAP_PY) scripts/snapmeta.py check .; then echo "1 0" >> $(abspath $(TALLY)); \
	else echo "0 1" >> $(abspath $(TALLY)); exit 1; fi

check-unit: check-snap-consistency

# The snapd policy data is compiled into libnova (.incbin).
$(BUILD)/obj/src/lib/snapd-policy.o: data/snapd-policy.json
