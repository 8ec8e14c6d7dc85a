# nova-hypervisor - build, run, check.
#
#   make            build/bin/: nova-compute, nova-hypervisor, nova-<plug> modules
#   make deps       install the Debian packages (root) and build libopenvswitch into a cache
#   make run        the sandbox: private OVS/netns/state, core + modules, a demo port (KEEP=1 keeps it)
#   make run-multihost  two hypervisor hosts + OVN central in namespaces: bindings, ping and TCP across Geneve
#   make check      unit tests, integration tests (root: netns), a short fuzz run; SAN=1 for ASan+UBSan
#   make fuzz       libFuzzer targets in build/fuzz/
#   make guest      the real test guest (cloud kernel, busybox initramfs, BIOS-bootable disk), cached
#   make bench      bench/privsep-rtt: our module round trip vs oslo.privsep vs the socketpair floor

SHELL := /bin/bash
BUILD ?= build
CC ?= gcc

.PHONY: all
all:
SAN ?=
FUZZ_SECONDS ?= 10

PKGS := libnl-3.0 libnl-route-3.0 libcap-ng json-c libsystemd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

CFLAGS ?= -O2 -g
override CFLAGS += -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wformat=2 \
	-Wmissing-prototypes -Wstrict-prototypes -fno-strict-aliasing -fstack-protector-strong \
	-D_FORTIFY_SOURCE=2 -fPIE
override LDFLAGS += -pie -Wl,-z,relro,-z,now
ifeq ($(SAN),1)
# Sanitized objects never mix with plain ones.
BUILD := $(BUILD)/san
override CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -U_FORTIFY_SOURCE
override LDFLAGS += -fsanitize=address,undefined
endif

INCLUDES := -Isrc/lib -Isrc/core -Iinterfaces/network-control -Iinterfaces/libvirt -Iinterfaces/openvswitch \
	-Iinterfaces/firewall-control -Iinterfaces/hardware-observe -Iinterfaces/system-observe \
	-Iinterfaces/network-observe -Iinterfaces/process-control -Itests/integration
LIBVIRT_CFLAGS := $(shell pkg-config --cflags libvirt 2>/dev/null)
LIBVIRT_LIBS := $(shell pkg-config --libs libvirt 2>/dev/null)

include mk/ovs.mk

LIB_SRCS := $(wildcard src/lib/*.c)
CORE_SRCS := $(wildcard src/core/*.c)
NETCTL_PROTO_SRCS := interfaces/network-control/netctl-protocol.c
NETCTL_SRCS := interfaces/network-control/network-control.c interfaces/network-control/tap.c
LIBVIRT_PROTO_SRCS := interfaces/libvirt/libvirt-protocol.c
LIBVIRT_SRCS := interfaces/libvirt/libvirt.c interfaces/libvirt/domain-xml.c
# The config drive writer (ISO 9660 by libisofs): its own objects and link line,
# so only what uses it links libisofs.
CONFIG_DRIVE_SRCS := interfaces/libvirt/config-drive.c
ISOFS_LIBS := $(shell pkg-config --libs libisofs-1 2>/dev/null || echo -lisofs)
OVS_PROTO_SRCS := interfaces/openvswitch/ovs-protocol.c
OVS_MODULE_SRCS := interfaces/openvswitch/openvswitch.c
FW_PROTO_SRCS := interfaces/firewall-control/fw-protocol.c
# fw-nft.c and fw-state.c are pure (text builder, JSON decoder): unit-tested and fuzzed.
FW_LIB_SRCS := interfaces/firewall-control/fw-nft.c interfaces/firewall-control/fw-state.c
# fw-nl.c builds the netlink batches with libnftnl (tested against the kernel: test-fw-nl).
FW_NL_SRCS := interfaces/firewall-control/fw-nl.c
FW_SRCS := interfaces/firewall-control/firewall-control.c $(FW_NL_SRCS) $(FW_LIB_SRCS)
# The observe and process modules: one protocol file (shared with the core) and one main each.
HW_PROTO_SRCS := interfaces/hardware-observe/hw-protocol.c
HW_SRCS := interfaces/hardware-observe/hardware-observe.c
SYSOBS_PROTO_SRCS := interfaces/system-observe/sysobs-protocol.c
SYSOBS_SRCS := interfaces/system-observe/system-observe.c
NETOBS_PROTO_SRCS := interfaces/network-observe/netobs-protocol.c
NETOBS_SRCS := interfaces/network-observe/network-observe.c
PROCCTL_PROTO_SRCS := interfaces/process-control/procctl-protocol.c
PROCCTL_SRCS := interfaces/process-control/process-control.c
PROTO_SRCS := $(NETCTL_PROTO_SRCS) $(LIBVIRT_PROTO_SRCS) $(OVS_PROTO_SRCS) $(FW_PROTO_SRCS) $(HW_PROTO_SRCS) \
	$(SYSOBS_PROTO_SRCS) $(NETOBS_PROTO_SRCS) $(PROCCTL_PROTO_SRCS)
CLI_SRCS := $(wildcard src/cli/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

PROGRAMS := $(BUILD)/bin/nova-compute $(BUILD)/bin/nova-hypervisor $(BUILD)/bin/nova-network-control \
	$(BUILD)/bin/nova-libvirt $(BUILD)/bin/nova-openvswitch $(BUILD)/bin/nova-firewall-control \
	$(BUILD)/bin/nova-hardware-observe $(BUILD)/bin/nova-system-observe $(BUILD)/bin/nova-network-observe \
	$(BUILD)/bin/nova-process-control
LIBNOVA := $(BUILD)/lib/libnova.a

UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test-*.c))
INTEGRATION_TESTS := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(wildcard tests/integration/test-*.c))
FUZZERS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz-*.c))

.PHONY: all deps guest run run-stop run-multihost check check-reset check-ovs-link bench-boot bench-vif bench-multihost bench-secgroups check-unit check-integration fuzz fuzz-run bench clean
all: $(PROGRAMS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INCLUDES) $(PKG_CFLAGS) $(LIBVIRT_CFLAGS) -MMD -MP -c $< -o $@

$(LIBNOVA): $(call obj,$(LIB_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/nova-compute: $(call obj,$(CORE_SRCS) $(PROTO_SRCS)) $(LIBNOVA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(PKG_LIBS) -o $@

$(BUILD)/bin/nova-hypervisor: $(call obj,$(CLI_SRCS) $(LIBVIRT_PROTO_SRCS)) $(LIBNOVA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(PKG_LIBS) -o $@

$(BUILD)/bin/nova-network-control: $(call obj,$(NETCTL_SRCS) $(NETCTL_PROTO_SRCS)) $(LIBNOVA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(PKG_LIBS) -o $@

# libcrypto: the sha256 of uploaded images; pthread: uploads run on their own thread and connection.
# libisofs: the config drive is written inside the module (config_drive_create).
$(BUILD)/bin/nova-libvirt: $(call obj,$(LIBVIRT_SRCS) $(LIBVIRT_PROTO_SRCS) $(CONFIG_DRIVE_SRCS)) $(LIBNOVA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(PKG_LIBS) $(LIBVIRT_LIBS) $(ISOFS_LIBS) -lcrypto -pthread -o $@

$(BUILD)/bin/nova-hardware-observe: $(call obj,$(HW_SRCS) $(HW_PROTO_SRCS)) $(LIBNOVA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(PKG_LIBS) -o $@

$(BUILD)/bin/nova-system-observe: $(call obj,$(SYSOBS_SRCS) $(SYSOBS_PROTO_SRCS)) $(LIBNOVA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(PKG_LIBS) -o $@

$(BUILD)/bin/nova-network-observe: $(call obj,$(NETOBS_SRCS) $(NETOBS_PROTO_SRCS)) $(LIBNOVA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(PKG_LIBS) -o $@

$(BUILD)/bin/nova-process-control: $(call obj,$(PROCCTL_SRCS) $(PROCCTL_PROTO_SRCS)) $(LIBNOVA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(PKG_LIBS) -o $@

NFT_LIBS := $(shell pkg-config --libs libnftables libnftnl 2>/dev/null)

$(BUILD)/bin/nova-firewall-control: $(call obj,$(FW_SRCS) $(FW_PROTO_SRCS)) $(LIBNOVA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(PKG_LIBS) $(NFT_LIBS) -o $@

# The openvswitch module compiles against libopenvswitch (pkg-config or the
# cache that make deps builds); only its own sources see the OVS headers.
$(BUILD)/obj/interfaces/openvswitch/openvswitch.o: interfaces/openvswitch/openvswitch.c $(OVS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INCLUDES) $(PKG_CFLAGS) $(OVS_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/bin/nova-openvswitch: $(call obj,$(OVS_MODULE_SRCS) $(OVS_PROTO_SRCS)) $(LIBNOVA) $(OVS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $(filter %.o %.a,$^) $(PKG_LIBS) $(OVS_LIBS) -o $@

# Tests link everything but the programs' main files.
TEST_OBJS := $(call obj,$(filter-out src/core/main.c,$(CORE_SRCS)) $(PROTO_SRCS) \
	interfaces/network-control/tap.c interfaces/libvirt/domain-xml.c $(FW_LIB_SRCS)) $(LIBNOVA)

$(BUILD)/tests/%: tests/unit/%.c $(TEST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INCLUDES) $(PKG_CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) $^ $(PKG_LIBS) $(LIBVIRT_LIBS) $(CHECK_LIBS) -o $@

$(BUILD)/tests/%: tests/integration/%.c tests/integration/harness.c tests/integration/harness.h $(TEST_OBJS) $(PROGRAMS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INCLUDES) $(PKG_CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) $(filter %.c %.a %.o,$^) \
		$(PKG_LIBS) $(LIBVIRT_LIBS) $(CHECK_LIBS) -o $@

# The config drive's tests link libisofs.
$(BUILD)/tests/test-config-drive: tests/unit/test-config-drive.c $(call obj,$(CONFIG_DRIVE_SRCS)) $(TEST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INCLUDES) $(PKG_CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) $^ $(PKG_LIBS) $(LIBVIRT_LIBS) $(CHECK_LIBS) \
		$(ISOFS_LIBS) -o $@

# A real guest on a private libvirtd: the config drive writer and libisofs too.
$(BUILD)/tests/test-guest-boot: tests/integration/test-guest-boot.c tests/integration/harness.c tests/integration/harness.h \
		$(call obj,$(CONFIG_DRIVE_SRCS)) $(TEST_OBJS) $(PROGRAMS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INCLUDES) $(PKG_CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) $(filter %.c %.a %.o,$^) \
		$(PKG_LIBS) $(LIBVIRT_LIBS) $(CHECK_LIBS) $(ISOFS_LIBS) -o $@

# The netlink builder's test also needs libnftnl (and libnftables as its reference).
$(BUILD)/tests/test-fw-nl: tests/integration/test-fw-nl.c tests/integration/harness.c tests/integration/harness.h \
		$(call obj,$(FW_NL_SRCS)) $(TEST_OBJS) $(PROGRAMS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INCLUDES) $(PKG_CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) $(filter %.c %.a %.o,$^) \
		$(PKG_LIBS) $(LIBVIRT_LIBS) $(CHECK_LIBS) $(NFT_LIBS) -o $@

TALLY := $(BUILD)/check-tally

check-unit: $(UNIT_TESTS)
	@TALLY_FILE=$(abspath $(TALLY)) bash scripts/run-tests.sh $(UNIT_TESTS)

# Integration tests run against the real kernel in private network namespaces (root).
check-integration: $(INTEGRATION_TESTS) $(PROGRAMS)
	@NOVA_BIN=$(abspath $(BUILD)/bin) TALLY_FILE=$(abspath $(TALLY)) bash scripts/run-tests.sh $(INTEGRATION_TESTS)

# The OVS build path (libopenvswitch from pkg-config or the cache) must keep linking.
check-ovs-link: $(BUILD)/bin/ovs-link-smoke
	$(BUILD)/bin/ovs-link-smoke

check-reset:
	@mkdir -p $(BUILD) && rm -f $(TALLY)

# Ordered: the tally is reset first, the total printed last (one line CI reads).
check:
	@$(MAKE) --no-print-directory check-reset
	@$(MAKE) --no-print-directory check-unit check-integration check-ovs-link fuzz-run
	@$(MAKE) --no-print-directory e2e-skip-note
	@awk '{p += $$1; f += $$2} END {printf "check: %d passed, %d failed\n", p, f}' $(TALLY)

# ---- fuzzing (clang libFuzzer) ----
FUZZ_CC ?= clang
FUZZ_CFLAGS := -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	$(INCLUDES) $(PKG_CFLAGS) $(LIBVIRT_CFLAGS)
FUZZ_LIB_SRCS := $(LIB_SRCS) $(PROTO_SRCS) $(FW_LIB_SRCS) src/core/instances.c src/core/secgroups.c

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_SRCS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $^ $(PKG_LIBS) -o $@

$(BUILD)/fuzz/fuzz-config-drive: tests/fuzz/fuzz-config-drive.c $(FUZZ_LIB_SRCS) $(CONFIG_DRIVE_SRCS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $^ $(PKG_LIBS) $(ISOFS_LIBS) -o $@

fuzz: $(FUZZERS)

fuzz-run: $(FUZZERS)
	@set -e; for f in $(FUZZERS); do n=$$(basename $$f); corpus=tests/fuzz/corpus/$${n#fuzz-}; \
		mkdir -p $(BUILD)/fuzz/work-$$n; echo "== $$n ($(FUZZ_SECONDS) s)"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(BUILD)/fuzz/work-$$n $$corpus 2>&1 \
		| grep -E "stat::number_of_executed_units|ERROR|SUMMARY|Done" || true; \
		test "$${PIPESTATUS[0]}" = 0 || { echo "fuzzer $$n failed"; echo "0 1" >> $(abspath $(TALLY)); exit 1; }; \
		echo "1 0" >> $(abspath $(TALLY)); done

# ---- setup, sandbox, bench ----
deps:
	bash scripts/deps.sh
	$(MAKE) ovs-lib

run:
	@KEEP=$(KEEP) bash scripts/sandbox.sh

run-stop:
	@bash scripts/sandbox.sh stop

# The test guest (kernel, initramfs, bootable disk), cached in /var/cache/nova-hypervisor-build.
guest:
	@bash scripts/guest/build-test-guest.sh

# Two hypervisor hosts sharing a network through OVN, in namespaces (KEEP=1 keeps them).
run-multihost: $(PROGRAMS)
	@KEEP=$(KEEP) bash scripts/multihost.sh

bench: $(PROGRAMS)
	bash bench/privsep-rtt
	bash bench/boot
	bash bench/vif-plug
	bash bench/secgroups
	bash bench/multihost

bench-boot: $(PROGRAMS)
	bash bench/boot

bench-vif: $(PROGRAMS)
	bash bench/vif-plug

bench-multihost: $(PROGRAMS)
	bash bench/multihost

# bench/secgroups builds its client from libnova.a, as bench/vif-plug does.
bench-secgroups: $(BUILD)/bin/nova-firewall-control $(LIBNOVA)
	bash bench/secgroups

include mk/snap.mk
include mk/e2e.mk

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
