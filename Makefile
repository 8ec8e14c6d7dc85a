# nova-hypervisor - build, run, check.
#
#   make            build/bin/: nova-compute, nova-hypervisor, nova-<plug> modules
#   make deps       install the Debian packages (root), build libopenvswitch and the test guest into a cache
#   make run        the sandbox: private OVS/netns/state/libvirtd, core + modules, the test guest booted from an
#                   image behind a security group: console, ping, TCP (KEEP=1 keeps it; LIBVIRT=test: test driver)
#   make run-multihost  two hypervisor hosts + OVN central in namespaces, a real guest on each: bindings, ping and TCP
#                   across Geneve (GUESTS=standin: stand-ins on the taps instead of QEMU)
#   make check      layer boundaries, unit tests, integration tests (root: netns), a short fuzz run; SAN=1 for ASan+UBSan
#   make chaos      the chaos suite: a seeded mix of operations under injected faults, then invariants
#                   checked against the kernel, OVS and libvirt (DURATION=s, default 1800; SEED=n)
#   make fuzz       libFuzzer targets in build/fuzz/
#   make guest      the real test guest (cloud kernel, busybox initramfs, BIOS-bootable disk), cached
#   make bench      every bench (bench/run-all: privsep-rtt, boot, boot-full, domain-list, footprint, vif-plug, secgroups,
#                   multihost), each
#                   against its anchor (bench/anchors/, packages from make deps), then one table of
#                   every target with MET / NOT MET; BENCHES="a b" picks some; logs in build/bench/

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
# The fuzzers are always built with ASan+UBSan (libFuzzer), whatever SAN says:
# one set, in $(FUZZ_BUILD)/fuzz, serves make check and make check SAN=1.
FUZZ_BUILD := $(BUILD)
ifeq ($(SAN),1)
# Sanitized objects never mix with plain ones.
BUILD := $(BUILD)/san
override CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -U_FORTIFY_SOURCE
override LDFLAGS += -fsanitize=address,undefined
endif

# Layers by directory, enforced by the include path of each object (make check-layers proves it):
#   src/lib           only itself
#   interfaces/<plug> src/lib and its own directory (never the core, never another module)
#   src/core          src/lib, itself, and of each module only its *-protocol.h (a directory of links
#                     to just those headers, so tap.h or fw-nft.h are not found from the core)
#   src/cli           src/lib and itself
#   tests, fuzz       everything (they test internals)
MODULE_DIRS := $(sort $(dir $(wildcard interfaces/*/MANIFEST.md)))
PROTO_HEADERS := $(wildcard interfaces/*/*-protocol.h)
PROTO_INCLUDE_DIR := $(BUILD)/include/protocols
PROTO_INCLUDE_LINKS := $(addprefix $(PROTO_INCLUDE_DIR)/,$(notdir $(PROTO_HEADERS)))
LIB_INCLUDES := -Isrc/lib
CORE_INCLUDES := -Isrc/lib -Isrc/core -I$(PROTO_INCLUDE_DIR)
CLI_INCLUDES := -Isrc/lib -Isrc/cli
module_includes = -Isrc/lib -I$(patsubst %/,%,$(1))
# The include flags of one source file, by the layer its path puts it in.
includes_for = $(strip $(if $(filter src/lib/%,$(1)),$(LIB_INCLUDES),\
	$(if $(filter src/core/%,$(1)),$(CORE_INCLUDES),\
	$(if $(filter src/cli/%,$(1)),$(CLI_INCLUDES),\
	$(if $(filter interfaces/%,$(1)),$(call module_includes,$(dir $(1))),\
	$(INCLUDES))))))
INCLUDES := -Isrc/lib -Isrc/core $(addprefix -I,$(patsubst %/,%,$(MODULE_DIRS))) -Itests/integration -Itests/common
# libcurl: the core's Placement client (src/core/placement.c) only; the modules do not link it,
# and nova-compute does not either: src/core/curl-lazy.c loads it when placement_url is set
# (its library tree is ~6 MiB of RSS). The tests that link core objects still link it.
CURL_CFLAGS := $(shell pkg-config --cflags libcurl 2>/dev/null)
CURL_LIBS := $(shell pkg-config --libs libcurl 2>/dev/null)
LIBVIRT_CFLAGS := $(shell pkg-config --cflags libvirt 2>/dev/null)
LIBVIRT_LIBS := $(shell pkg-config --libs libvirt 2>/dev/null)

include mk/ovs.mk

LIB_SRCS := $(wildcard src/lib/*.c)
CORE_SRCS := $(wildcard src/core/*.c)
NETCTL_PROTO_SRCS := interfaces/network-control/netctl-protocol.c
NETCTL_SRCS := interfaces/network-control/network-control.c interfaces/network-control/tap.c
LIBVIRT_PROTO_SRCS := interfaces/libvirt/libvirt-protocol.c
LIBVIRT_SRCS := interfaces/libvirt/libvirt.c interfaces/libvirt/domain-xml.c interfaces/libvirt/migrate.c \
	interfaces/libvirt/migrate-xml.c
# The config drive writer (ISO 9660 by libisofs): its own objects and link line,
# so only what uses it links libisofs.
CONFIG_DRIVE_SRCS := interfaces/libvirt/config-drive.c
ISOFS_LIBS := $(shell pkg-config --libs libisofs-1 2>/dev/null || echo -lisofs)
OVS_PROTO_SRCS := interfaces/openvswitch/ovs-protocol.c
OVS_MODULE_SRCS := interfaces/openvswitch/openvswitch.c interfaces/openvswitch/ovs-sha1.c
# libopenvswitch's SHA-1 entry points go to its own implementation, not OpenSSL's EVP
# (interfaces/openvswitch/ovs-sha1.c says why: 2-3 MiB of an idle module).
OVS_SHA1_WRAP := -Wl,--wrap=sha1_init,--wrap=sha1_update,--wrap=sha1_final,--wrap=sha1_bytes
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
FUZZERS := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz-*.c))

.PHONY: all deps guest run run-stop run-multihost run-migrate check-migrate check check-build check-layers check-reset check-ovs-link bench-boot bench-boot-full bench-qemu-deletes bench-domain-list bench-footprint bench-vif bench-multihost bench-secgroups bench-api fuzz-long check-unit check-integration fuzz fuzz-run bench clean
all: $(PROGRAMS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(call includes_for,$<) $(PKG_CFLAGS) $(LIBVIRT_CFLAGS) $(CURL_CFLAGS) -MMD -MP -c $< -o $@

# The core sees a module's protocol header, and nothing else of it, through these links.
$(PROTO_INCLUDE_DIR)/%.h: | $(PROTO_INCLUDE_DIR)
	ln -sfn $(abspath $(filter %/$*.h,$(PROTO_HEADERS))) $@
$(PROTO_INCLUDE_DIR):
	@mkdir -p $@
$(call obj,$(CORE_SRCS)): | $(PROTO_INCLUDE_LINKS)

$(LIBNOVA): $(call obj,$(LIB_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/nova-compute: $(call obj,$(CORE_SRCS) $(PROTO_SRCS)) $(LIBNOVA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(PKG_LIBS) -o $@

$(BUILD)/bin/nova-hypervisor: $(call obj,$(CLI_SRCS)) $(LIBNOVA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(PKG_LIBS) -o $@

$(BUILD)/bin/nova-network-control: $(call obj,$(NETCTL_SRCS) $(NETCTL_PROTO_SRCS)) $(LIBNOVA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(PKG_LIBS) -o $@

# libcrypto: the sha256 of uploaded images; pthread: uploads run on their own thread and connection.
# libisofs: the config drive is written inside the module (config_drive_create).
# All three are linked lazily: loaded after the module's hello, not at exec (libvirt.so.0 alone
# brings 60 libraries, ~40 ms of CPU at every start). src/lib/lazylib.h says how; the
# trampolines are generated from the module's own objects, so a new libvirt call needs nothing.
LIBVIRT_LAZY := libvirt.so.0=^vir libisofs.so.6=^iso_ libcrypto.so.3=^EVP_
LIBVIRT_OBJS := $(call obj,$(LIBVIRT_SRCS) $(LIBVIRT_PROTO_SRCS) $(CONFIG_DRIVE_SRCS))
$(BUILD)/gen/nova-libvirt-lazy.c: $(LIBVIRT_OBJS) scripts/lazy-shim.sh
	@mkdir -p $(dir $@)
	CC="$(CC)" bash scripts/lazy-shim.sh $@ $(LIBVIRT_LAZY) -- $(LIBVIRT_OBJS)
$(BUILD)/gen/nova-libvirt-lazy.o: $(BUILD)/gen/nova-libvirt-lazy.c src/lib/lazylib.h
	$(CC) $(CFLAGS) $(LIB_INCLUDES) -c $< -o $@
# Under ASan the XDR functions libvirt calls (libtirpc's) are among ASan's interceptors, whose
# real targets are looked up once, at exec: a libtirpc that lazylib loads later leaves them NULL
# (SEGV at pc 0 in virNetMessageEncodeHeader on the first stream). The sanitized build therefore
# loads libtirpc at exec; libvirt itself stays lazy, so the lazy path is what both builds test.
ifeq ($(SAN),1)
LIBVIRT_EXEC_LIBS := -Wl,--no-as-needed -l:libtirpc.so.3 -Wl,--as-needed
endif
$(BUILD)/bin/nova-libvirt: $(LIBVIRT_OBJS) $(BUILD)/gen/nova-libvirt-lazy.o $(LIBNOVA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(PKG_LIBS) $(LIBVIRT_EXEC_LIBS) -pthread -o $@

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

NFT_LIBS := $(shell pkg-config --libs libnftables libnftnl libmnl 2>/dev/null)

$(BUILD)/bin/nova-firewall-control: $(call obj,$(FW_SRCS) $(FW_PROTO_SRCS)) $(LIBNOVA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(PKG_LIBS) $(NFT_LIBS) -o $@

# The openvswitch module compiles against libopenvswitch (pkg-config or the
# cache that make deps builds); only its own sources see the OVS headers.
$(BUILD)/obj/interfaces/openvswitch/openvswitch.o: interfaces/openvswitch/openvswitch.c $(OVS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(call includes_for,$<) $(PKG_CFLAGS) $(OVS_CFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/obj/interfaces/openvswitch/ovs-sha1.o: interfaces/openvswitch/ovs-sha1.c $(OVS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(call includes_for,$<) $(OVS_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/bin/nova-openvswitch: $(call obj,$(OVS_MODULE_SRCS) $(OVS_PROTO_SRCS)) $(LIBNOVA) $(OVS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $(OVS_SHA1_WRAP) $(filter %.o %.a,$^) $(PKG_LIBS) $(OVS_LIBS) -o $@

# Tests link everything but the daemon's main and its wiring (core.c: the harness has its own core_*).
TEST_OBJS := $(call obj,$(filter-out src/core/main.c src/core/core.c,$(CORE_SRCS)) $(PROTO_SRCS) \
	interfaces/network-control/tap.c interfaces/libvirt/domain-xml.c interfaces/libvirt/migrate-xml.c $(FW_LIB_SRCS)) $(LIBNOVA)

# The pipeline engine's test links lifecycle.c and its neighbours against the fake registry of
# tests/unit/fake/ instead of modules.c (the real modules run in the integration tests).
# It also links the config drive's decoder, to check that the core's description is one the module takes.
ENGINE_TEST_OBJS := $(call obj,src/core/lifecycle.c src/core/firewall.c src/core/instances.c src/core/secgroups.c src/core/protocols.c \
	src/core/disks.c src/core/secgroup-change.c $(PROTO_SRCS) $(CONFIG_DRIVE_SRCS)) $(LIBNOVA)
$(BUILD)/tests/test-lifecycle-engine: tests/unit/test-lifecycle-engine.c tests/unit/fake/fake-modules.c tests/common/tmpdir.c \
		tests/unit/fake/fake-modules.h $(ENGINE_TEST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INCLUDES) -Itests/unit $(PKG_CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) $(filter %.c %.o %.a,$^) \
		$(PKG_LIBS) $(CHECK_LIBS) $(ISOFS_LIBS) -o $@

# The Placement client's decisions against an in-process fake transport (in the test) and the fake
# registry; the real placement-api is test-placement's.
PLACEMENT_TEST_OBJS := $(call obj,src/core/placement.c src/core/protocols.c $(PROTO_SRCS)) $(LIBNOVA)
$(BUILD)/tests/test-placement-sync: tests/unit/test-placement-sync.c tests/unit/fake/fake-modules.c tests/common/tmpdir.c \
		tests/unit/fake/fake-modules.h $(PLACEMENT_TEST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INCLUDES) -Itests/unit $(PKG_CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) $(filter %.c %.o %.a,$^) \
		$(PKG_LIBS) $(CHECK_LIBS) -o $@

# The store-fault test drives the same engine against the same fake registry, on a real tmpfs
# (tests/common/statefs.c, which test-store-io shares).
$(BUILD)/tests/test-store-faults: tests/unit/test-store-faults.c tests/unit/fake/fake-modules.c \
		tests/unit/fake/fake-modules.h tests/common/statefs.c tests/common/statefs.h tests/common/tmpdir.c $(ENGINE_TEST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INCLUDES) -Itests/unit -Itests/common $(PKG_CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) $(filter %.c %.o %.a,$^) \
		$(PKG_LIBS) $(CHECK_LIBS) $(ISOFS_LIBS) -o $@

# The openvswitch module's SHA-1: libopenvswitch linked as the module links it.
$(BUILD)/tests/test-ovs-sha1: tests/unit/test-ovs-sha1.c $(call obj,interfaces/openvswitch/ovs-sha1.c) $(OVS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(OVS_CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) $(OVS_SHA1_WRAP) $(filter %.c %.o,$^) $(OVS_LIBS) \
		$(CHECK_LIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c tests/common/tmpdir.c $(TEST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INCLUDES) $(PKG_CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) $^ $(PKG_LIBS) $(LIBVIRT_LIBS) $(CURL_LIBS) $(CHECK_LIBS) -o $@

$(BUILD)/tests/%: tests/integration/%.c tests/integration/harness.c tests/integration/harness.h tests/common/tmpdir.c \
		tests/common/tmpdir.h $(TEST_OBJS) $(PROGRAMS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INCLUDES) $(PKG_CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) $(filter %.c %.a %.o,$^) \
		$(PKG_LIBS) $(LIBVIRT_LIBS) $(CURL_LIBS) $(CHECK_LIBS) -o $@

# The config drive's tests link libisofs.
$(BUILD)/tests/test-config-drive: tests/unit/test-config-drive.c tests/common/tmpdir.c $(call obj,$(CONFIG_DRIVE_SRCS)) $(TEST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INCLUDES) $(PKG_CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) $^ $(PKG_LIBS) $(LIBVIRT_LIBS) $(CURL_LIBS) $(CHECK_LIBS) \
		$(ISOFS_LIBS) -o $@

# The core's store under I/O errors: its state dir on a tmpfs (tests/common/statefs.c).
$(BUILD)/tests/test-store-io: tests/integration/test-store-io.c tests/integration/harness.c tests/integration/harness.h \
		tests/common/statefs.c tests/common/statefs.h tests/common/tmpdir.c tests/common/tmpdir.h $(TEST_OBJS) $(PROGRAMS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INCLUDES) -Itests/common $(PKG_CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) $(filter %.c %.a %.o,$^) \
		$(PKG_LIBS) $(LIBVIRT_LIBS) $(CURL_LIBS) $(CHECK_LIBS) -o $@

# A real guest on a private libvirtd: the config drive writer and libisofs too.
$(BUILD)/tests/test-guest-boot: tests/integration/test-guest-boot.c tests/integration/harness.c tests/integration/harness.h \
		tests/common/tmpdir.c $(call obj,$(CONFIG_DRIVE_SRCS)) $(TEST_OBJS) $(PROGRAMS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INCLUDES) $(PKG_CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) $(filter %.c %.a %.o,$^) \
		$(PKG_LIBS) $(LIBVIRT_LIBS) $(CURL_LIBS) $(CHECK_LIBS) $(ISOFS_LIBS) -o $@

# test-snap-conformance traces this stand-in for our code (built with the
# product's flags: sanitized under SAN=1) to prove its accesses are still caught.
$(BUILD)/tests/conformance-probe: tests/integration/conformance-probe.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $< -o $@

$(BUILD)/tests/test-snap-conformance: $(BUILD)/tests/conformance-probe

# The netlink builder's test also needs libnftnl (and libnftables as its reference).
$(BUILD)/tests/test-fw-nl: tests/integration/test-fw-nl.c tests/integration/harness.c tests/integration/harness.h \
		tests/common/tmpdir.c $(call obj,$(FW_NL_SRCS)) $(TEST_OBJS) $(PROGRAMS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INCLUDES) $(PKG_CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) $(filter %.c %.a %.o,$^) \
		$(PKG_LIBS) $(LIBVIRT_LIBS) $(CURL_LIBS) $(CHECK_LIBS) $(NFT_LIBS) -o $@

TALLY := $(BUILD)/check-tally
# Wall time of each test program and fuzz target ("SECONDS NAME"), summed up by make check.
TIMES := $(BUILD)/check-times
# Check's per-test timeouts were set for the plain build; ASan+UBSan code runs
# several times slower (test-fw's decoder tests took over their 4 s under load).
ifeq ($(SAN),1)
CHECK_ENV := CK_TIMEOUT_MULTIPLIER=$(or $(CK_TIMEOUT_MULTIPLIER),5)
endif

# Layer boundaries: each probe of tests/build/layers/ is compiled with the include flags of the layer
# it names; controls must compile, violations must fail because the header is not found.
LAYER_CC_CORE = $(CC) $(CFLAGS) $(call includes_for,src/core/probe.c) $(PKG_CFLAGS)
LAYER_CC_MODULE = $(CC) $(CFLAGS) $(call includes_for,interfaces/network-control/probe.c) $(PKG_CFLAGS)
LAYER_CC_CLI = $(CC) $(CFLAGS) $(call includes_for,src/cli/probe.c) $(PKG_CFLAGS)
LAYER_CC_LIB = $(CC) $(CFLAGS) $(call includes_for,src/lib/probe.c) $(PKG_CFLAGS)
export LAYER_CC_CORE LAYER_CC_MODULE LAYER_CC_CLI LAYER_CC_LIB
LAYER_PROBES := ok-core-protocols@LAYER_CC_CORE@ ok-module-own@LAYER_CC_MODULE@ ok-cli-lib@LAYER_CC_CLI@ \
	bad-core-module-internal@LAYER_CC_CORE@tap.h bad-module-core@LAYER_CC_MODULE@instances.h \
	bad-module-other-module@LAYER_CC_MODULE@fw-protocol.h bad-cli-protocol@LAYER_CC_CLI@libvirt-protocol.h \
	bad-lib-core@LAYER_CC_LIB@modules.h

check-layers: $(PROTO_INCLUDE_LINKS)
	@TALLY_FILE=$(abspath $(TALLY)) bash scripts/check-layers.sh $(LAYER_PROBES)

check-unit: $(UNIT_TESTS)
	@$(CHECK_ENV) TALLY_FILE=$(abspath $(TALLY)) TIMES_FILE=$(abspath $(TIMES)) bash scripts/run-tests.sh $(UNIT_TESTS)

# Integration tests run against the real kernel in private network namespaces (root).
# CHECK_SKIP names integration tests this run leaves out (nothing by default): .ci/run runs the
# ones that boot real QEMU guests in one of its two passes only (see there why which).
CHECK_SKIP ?=
$(foreach t,$(CHECK_SKIP),$(if $(filter $(BUILD)/tests/$(t),$(INTEGRATION_TESTS)),,$(error CHECK_SKIP: no integration test named $(t))))
RUN_INTEGRATION_TESTS := $(filter-out $(addprefix $(BUILD)/tests/,$(CHECK_SKIP)),$(INTEGRATION_TESTS))
check-integration: $(INTEGRATION_TESTS) $(PROGRAMS)
	@$(if $(strip $(CHECK_SKIP)),echo "== left out of this run (CHECK_SKIP): $(strip $(CHECK_SKIP))";)
	@$(CHECK_ENV) NOVA_BIN=$(abspath $(BUILD)/bin) TALLY_FILE=$(abspath $(TALLY)) TIMES_FILE=$(abspath $(TIMES)) \
		bash scripts/run-tests.sh $(RUN_INTEGRATION_TESTS)

# The chaos suite alone, for as long as asked (make check runs it for 60 s as test-chaos).
DURATION ?= 1800
SEED ?=
.PHONY: chaos
chaos: $(BUILD)/tests/test-chaos $(PROGRAMS)
	@$(CHECK_ENV) CHAOS_DURATION=$(DURATION) CHAOS_SEED=$(SEED) NOVA_BIN=$(abspath $(BUILD)/bin) $(BUILD)/tests/test-chaos

# The OVS build path (libopenvswitch from pkg-config or the cache) must keep linking.
check-ovs-link: $(BUILD)/bin/ovs-link-smoke
	$(BUILD)/bin/ovs-link-smoke

check-reset:
	@mkdir -p $(BUILD) && rm -f $(TALLY) $(TIMES)

# Everything make check runs, to build it in parallel first (make -j2 check-build;
# make check itself runs one test at a time).
check-build: $(PROGRAMS) $(UNIT_TESTS) $(INTEGRATION_TESTS) $(BUILD)/bin/ovs-link-smoke $(FUZZERS)

# Ordered: the tally is reset first, the total printed last (one line CI reads).
check:
	@$(MAKE) --no-print-directory check-reset
	@$(MAKE) --no-print-directory check-layers check-unit check-integration check-ovs-link fuzz-run
	@$(MAKE) --no-print-directory e2e-skip-note
	@sort -rn $(TIMES) 2>/dev/null | awk '{t += $$1; if (NR <= 5) s = s sprintf(" %s %ss", $$2, $$1)} \
		END {printf "check: test programs and fuzz targets took %.0f s; slowest:%s\n", t, s}'
	@awk '{p += $$1; f += $$2} END {printf "check: %d passed, %d failed\n", p, f}' $(TALLY)

# ---- fuzzing (clang libFuzzer) ----
FUZZ_CC ?= clang
FUZZ_CFLAGS := -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=address,undefined -fno-sanitize-recover=all \
	$(INCLUDES) $(PKG_CFLAGS) $(LIBVIRT_CFLAGS)
FUZZ_LIB_SRCS := $(LIB_SRCS) $(PROTO_SRCS) $(FW_LIB_SRCS) interfaces/libvirt/migrate-xml.c src/core/instances.c src/core/secgroups.c src/core/images.c
# The code under test is compiled once (with libFuzzer's coverage, without its
# main) and linked into every target; each target's own file brings main.
FUZZ_OBJS := $(patsubst %.c,$(FUZZ_BUILD)/fuzz/obj/%.o,$(FUZZ_LIB_SRCS))

$(FUZZ_OBJS): $(FUZZ_BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $^ $(PKG_LIBS) -o $@

$(FUZZ_BUILD)/fuzz/fuzz-config-drive: tests/fuzz/fuzz-config-drive.c $(FUZZ_OBJS) $(CONFIG_DRIVE_SRCS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $^ $(PKG_LIBS) $(ISOFS_LIBS) -o $@

# The API's path decoder is matched against the core's own route tables: that target
# links the core (but its main and wiring), compiled for fuzzing too.
FUZZ_CORE_SRCS := $(filter-out src/core/main.c src/core/core.c src/core/instances.c src/core/secgroups.c src/core/images.c,$(CORE_SRCS)) \
	interfaces/network-control/tap.c interfaces/libvirt/domain-xml.c
FUZZ_CORE_OBJS := $(patsubst %.c,$(FUZZ_BUILD)/fuzz/obj/%.o,$(FUZZ_CORE_SRCS))

$(FUZZ_CORE_OBJS): $(FUZZ_BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(CURL_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/fuzz/fuzz-api-route: tests/fuzz/fuzz-api-route.c $(FUZZ_OBJS) $(FUZZ_CORE_OBJS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $^ $(PKG_LIBS) $(LIBVIRT_LIBS) $(CURL_LIBS) -o $@

fuzz: $(FUZZERS)

# FUZZ_JOBS targets at a time (default: one per core), each for FUZZ_SECONDS (scripts/fuzz-run.sh).
FUZZ_JOBS ?= $(shell nproc)
fuzz-run: $(FUZZERS)
	@bash scripts/fuzz-run.sh $(FUZZ_JOBS) $(FUZZ_SECONDS) $(FUZZ_BUILD)/fuzz $(abspath $(TALLY)) $(abspath $(TIMES)) $(FUZZERS)

# Each target for FUZZ_LONG_SECONDS (10 min; outside make check), from the corpora in the tree,
# into which the fewest new inputs covering the new edges are merged (FUZZ_LONG_MERGE=0: not);
# prints executions and coverage per target. FUZZ_LONG_TARGETS="http proto" limits it to those.
FUZZ_LONG_SECONDS ?= 600
FUZZ_LONG_TARGETS ?=
fuzz-long: $(FUZZERS)
	@bash scripts/fuzz-long.sh $(FUZZ_LONG_SECONDS) \
		$(if $(FUZZ_LONG_TARGETS),$(addprefix $(FUZZ_BUILD)/fuzz/fuzz-,$(FUZZ_LONG_TARGETS)),$(FUZZERS))

# ---- setup, sandbox, bench ----
deps:
	bash scripts/deps.sh
	$(MAKE) ovs-lib
	$(MAKE) --no-print-directory guest

# LIBVIRT=qemu (default: a private libvirtd, QEMU, the test guest) or LIBVIRT=test (libvirt's test driver).
LIBVIRT ?= qemu
run:
	@KEEP=$(KEEP) NOVA_SANDBOX_LIBVIRT=$(LIBVIRT) bash scripts/sandbox.sh

run-stop:
	@bash scripts/sandbox.sh stop

# The test guest (kernel, initramfs, bootable disk), cached in /var/cache/nova-hypervisor-build.
guest:
	@bash scripts/guest/build-test-guest.sh

# Two hypervisor hosts sharing a network through OVN, in namespaces (KEEP=1 keeps them).
# GUESTS=qemu (default): real guests (a private libvirtd per host, the test guest); GUESTS=standin: the stand-ins
# (scripts/guest-standin.py on the taps, libvirt's test driver), about 30 s faster; tests and bench/multihost use those.
GUESTS ?= qemu
run-multihost: $(PROGRAMS)
	@KEEP=$(KEEP) MH_GUESTS=$(GUESTS) bash scripts/multihost.sh

# Live migration of the real test guest between two hosts on this machine (docs/MIGRATION.md):
# two private libvirtds in two network namespaces, two cores, a ping every 10 ms; prints the figures.
run-migrate: $(PROGRAMS)
	@KEEP=$(KEEP) bash scripts/migrate-demo.sh

# The same as a check (about 5 minutes here, so not part of make check): fails on any FAIL.
check-migrate: $(PROGRAMS)
	@bash scripts/migrate-demo.sh | tee $(BUILD)/migrate-demo.out; grep -q '^RESULT ok' $(BUILD)/migrate-demo.out

bench: $(PROGRAMS)
	bash bench/run-all

bench-boot: $(PROGRAMS)
	bash bench/boot

bench-boot-full: $(PROGRAMS)
	bash bench/boot-full

# Deletes on real QEMU (private libvirtd): N=8; NOVA_BIN_OLD=DIR compares another build's binaries.
bench-qemu-deletes: $(PROGRAMS)
	bash bench/qemu-deletes

bench-footprint: $(PROGRAMS)
	bash bench/footprint

bench-domain-list: $(PROGRAMS)
	bash bench/domain-list

bench-vif: $(PROGRAMS)
	bash bench/vif-plug

bench-multihost: $(PROGRAMS)
	bash bench/multihost

# The API socket under load: 64 clients booting, showing, listing, deleting and asking the
# status for API_LOAD_SECONDS; prints p50/p99 per request kind, the core's RSS, fds and CPU.
API_LOAD_SECONDS ?= 30
API_LOAD_CLIENTS ?= 64
bench-api: $(BUILD)/tests/test-api-load $(PROGRAMS)
	NOVA_BIN=$(abspath $(BUILD)/bin) NOVA_API_LOAD_SECONDS=$(API_LOAD_SECONDS) NOVA_API_LOAD_CLIENTS=$(API_LOAD_CLIENTS) \
		CK_RUN_CASE=load $(BUILD)/tests/test-api-load

# bench/secgroups builds its client from libnova.a, as bench/vif-plug does.
bench-secgroups: $(BUILD)/bin/nova-firewall-control $(LIBNOVA)
	bash bench/secgroups

include mk/snap.mk
include mk/e2e.mk

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj $(FUZZ_BUILD)/fuzz/obj -name '*.d' 2>/dev/null)
