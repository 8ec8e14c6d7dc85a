# mk/ovs.mk: libopenvswitch for the build.  Include it from the top-level Makefile.
#
# Defines:
#   OVS_CFLAGS, OVS_LIBS  compile/link flags for code using OVS headers and lib
#   OVS_STAMP             prerequisite for anything that needs them: the cache
#                         stamp (builds OVS when missing); empty when pkg-config
#                         provides libopenvswitch (e.g. Ubuntu's libopenvswitch-dev)
#   ovs-lib               phony target running scripts/build-ovs.sh
#   $(BUILD)/bin/ovs-link-smoke   headers + static-lib link smoke test
#
# Where neither pkg-config nor the cache has libopenvswitch yet, OVS_CFLAGS and
# OVS_LIBS expand to nothing, so unrelated targets still build.  They are then
# read lazily from the cache's flags.mk, so a recipe that runs after $(OVS_STAMP)
# was built in the same make run sees the new flags.  Use them with `=` or in
# recipes, not in a `:=` assignment made before OVS is built.

# Where this file lives, as a prefix ("" when included as mk/ovs.mk from the top).
_ovs_mkdir := $(dir $(lastword $(MAKEFILE_LIST)))
OVS_TOPDIR := $(if $(filter mk/,$(_ovs_mkdir)),,$(_ovs_mkdir)../)

BUILD ?= build
NOVA_BUILD_CACHE ?= /var/cache/nova-hypervisor-build
OVS_BUILD_SCRIPT := $(OVS_TOPDIR)scripts/build-ovs.sh
OVS_RUN_BUILD = NOVA_BUILD_CACHE='$(NOVA_BUILD_CACHE)' bash '$(OVS_BUILD_SCRIPT)'

ifeq ($(shell pkg-config --exists libopenvswitch 2>/dev/null && echo yes),yes)
  OVS_CFLAGS := $(shell pkg-config --cflags libopenvswitch)
  OVS_LIBS := $(shell pkg-config --libs libopenvswitch)
  OVS_STAMP :=
else
  # Same directory name as scripts/build-ovs.sh: ovs-<openvswitch-source version>,
  # with an epoch's ':' replaced because make cannot have it in a target name.
  OVS_VERSION := $(shell dpkg-query -W -f='$${Version}' openvswitch-source 2>/dev/null)
  ifneq ($(OVS_VERSION),)
    OVS_CACHE_DIR := $(NOVA_BUILD_CACHE)/ovs-$(subst :,_,$(OVS_VERSION))
    OVS_FLAGS_MK := $(OVS_CACHE_DIR)/flags.mk
    OVS_STAMP := $(OVS_CACHE_DIR)/built.stamp
  else
    # openvswitch-source is not installed: depending on the phony target runs
    # the script, which fails saying so.
    OVS_STAMP := ovs-lib
  endif
  ifneq ($(and $(OVS_FLAGS_MK),$(wildcard $(OVS_STAMP))),)
    -include $(OVS_FLAGS_MK)
  else
    _ovs_flag = $(if $(OVS_FLAGS_MK),$(shell sed -n 's/^$(1) := //p' '$(OVS_FLAGS_MK)' 2>/dev/null))
    OVS_CFLAGS = $(call _ovs_flag,OVS_CFLAGS)
    OVS_LIBS = $(call _ovs_flag,OVS_LIBS)
  endif
endif

.PHONY: ovs-lib
ovs-lib:
	$(OVS_RUN_BUILD)

ifneq ($(OVS_CACHE_DIR),)
# Also rerun when the script changed: a cache hit returns at once, a bumped
# RECIPE in the script rebuilds.
$(OVS_STAMP): $(OVS_BUILD_SCRIPT)
	$(OVS_RUN_BUILD)
endif

# Smoke test.  OVS's headers need no -Wno-* under -std=gnu11 -Wall -Wextra
# -Werror (checked with gcc 12 and clang 14 at -O0/-O2/-O3).  Note they do warn
# under -Wconversion/-Wsign-conversion (lib/util.h, lib/hash.h): a target that
# adds those must add -Wno-conversion -Wno-sign-conversion.
OVS_SMOKE_CFLAGS := -std=gnu11 -Wall -Wextra -Werror -O2

$(BUILD)/bin/ovs-link-smoke: $(OVS_TOPDIR)tests/build/ovs-link-smoke.c $(OVS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(OVS_SMOKE_CFLAGS) $(OVS_CFLAGS) -o $@ $< $(LDFLAGS) $(OVS_LIBS)
