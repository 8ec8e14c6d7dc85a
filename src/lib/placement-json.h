/* placement-json.h - what this host tells OpenStack Placement, and strict
 * decoding of what Placement (and Keystone) answer. Pure: no I/O, no globals.
 *
 * The shapes follow nova (nova/virt/libvirt/driver.py update_provider_tree,
 * nova/scheduler/client/report.py, nova/compute/resource_tracker.py):
 * VCPU, MEMORY_MB and DISK_GB with total, reserved, min_unit 1,
 * max_unit = total, step_size 1 and the configured allocation ratio; a class
 * whose total is 0 is omitted (Placement refuses total 0). Traits: the CPU
 * feature traits of nova's CPU_TRAITS_MAPPING (keyed by libvirt cpu_map
 * names; /proc/cpuinfo names are mapped to those first), HW_ARCH_<arch>,
 * HW_CPU_HYPERTHREADING when a core has more than one thread, COMPUTE_NODE.
 *
 * Everything decoded here comes from the network: bodies are bounded
 * (PLACEMENT_MAX_BODY), parsed with a depth limit, every field used is
 * type- and range-checked, and a decoder changes nothing on failure. */
#ifndef NOVA_PLACEMENT_JSON_H
#define NOVA_PLACEMENT_JSON_H

#include "names.h"
#include "util.h"

#define PLACEMENT_MAX_BODY (256 * 1024)  /* bytes of one response we accept */
#define PLACEMENT_MAX_TRAITS 160         /* traits of one provider we keep */
#define PLACEMENT_TRAIT_MAX 255          /* Placement's limit on a trait name */
#define PLACEMENT_NAME_MAX 200           /* Placement's limit on a provider name */
#define PLACEMENT_MAX_GENERATION ((uint64_t)INT32_MAX * 1024) /* sanity bound on generations */
#define PLACEMENT_MAX_AMOUNT ((uint64_t)INT32_MAX) /* Placement stores inventory amounts as 32-bit ints */

enum placement_rc {
        PRC_VCPU,
        PRC_MEMORY_MB,
        PRC_DISK_GB,
        _PRC_MAX,
};

/* "VCPU", "MEMORY_MB", "DISK_GB". */
extern const char *const placement_rc_names[_PRC_MAX];

/* One resource class's inventory record. */
struct placement_inventory {
        bool present;                  /* false: the class is not in the inventory */
        uint64_t total, reserved, min_unit, max_unit, step_size;
        uint32_t allocation_ratio_milli; /* 16.0 -> 16000 */
};

/* A set of trait names, sorted, unique, each valid ([A-Z0-9_], 1..255). */
struct placement_traits {
        size_t n;
        char *names[PLACEMENT_MAX_TRAITS]; /* owned */
};

/* What the host has, as observed locally (hardware-observe, statvfs, uname). */
struct placement_host {
        uint64_t vcpus;     /* online logical CPUs */
        uint64_t memory_mb; /* MemTotal / 1024 */
        uint64_t disk_gb;   /* size of the instance storage file system, GiB rounded down */
        uint64_t cores;     /* physical cores (hyperthreading when vcpus > cores) */
        const char *cpu_flags; /* /proc/cpuinfo "flags" line (space separated); may be NULL */
        const char *arch;      /* uname machine, e.g. "x86_64"; may be NULL */
};

/* Operator settings that shape the inventory (nova's names). */
struct placement_policy {
        uint64_t reserved_host_cpus;      /* VCPU reserved */
        uint64_t reserved_host_memory_mb; /* MEMORY_MB reserved */
        uint64_t reserved_host_disk_mb;   /* DISK_GB reserved = ceil(mb / 1024) */
        uint32_t cpu_ratio_milli, ram_ratio_milli, disk_ratio_milli;
};

/* The provider as we want it in Placement. */
struct placement_desired {
        struct placement_inventory inv[_PRC_MAX];
        struct placement_traits traits;
};

/* A provider record (POST answer at 1.20, GET /resource_providers/{uuid}). */
struct placement_provider {
        char uuid[UUID_STR_LEN + 1];
        char name[PLACEMENT_NAME_MAX + 1];
        uint64_t generation;
};

/* GET /resource_providers/{uuid}/inventories. */
struct placement_remote_inventories {
        uint64_t generation;
        struct placement_inventory inv[_PRC_MAX];
        size_t n_other; /* classes that are not ours (a PUT of ours would drop them) */
};

/* An error body: {"errors": [{"status", "code", "title", "detail"}]} (first entry). */
struct placement_error {
        int status;        /* 0 when absent */
        char code[64];     /* e.g. "placement.concurrent_update"; "" when absent */
        char detail[256];  /* cut to fit, control characters replaced */
};

void placement_traits_clear(struct placement_traits *t);
/* Add a copy of name (validated) keeping the set sorted; a duplicate is not an error.
 * 0, -EINVAL (bad name), -E2BIG (set full), -ENOMEM. */
int placement_traits_add(struct placement_traits *t, const char *name);
bool placement_traits_has(const struct placement_traits *t, const char *name);
bool placement_traits_equal(const struct placement_traits *a, const struct placement_traits *b);
/* Deep copy of src into *ret (cleared first). 0 or -ENOMEM (ret cleared). */
int placement_traits_copy(struct placement_traits *ret, const struct placement_traits *src);
/* A trait name Placement accepts: 1..255 of [A-Z0-9_]. */
bool placement_trait_name_valid(const char *name);

/* The os-traits names of one /proc/cpuinfo flag (nova's mapping, reached
 * through libvirt's cpu_map name: "sse4_1" -> HW_CPU_X86_SSE41, "pclmulqdq"
 * -> HW_CPU_X86_CLMUL, "sha_ni" -> HW_CPU_X86_SHA, "vmx" -> HW_CPU_X86_VMX
 * and HW_CPU_X86_INTEL_VMX). Fills ret[0..1], returns how many (0: not a
 * flag nova reports). */
size_t placement_cpu_flag_traits(const char *flag, size_t len, const char *ret[2]);

/* Fill *ret from the host and the policy: inventories as nova builds them
 * and the trait set. -ERANGE with why filled when a reserved amount exceeds
 * the total (Placement would refuse it), -ENOMEM; *ret untouched on failure
 * (the caller clears it with placement_desired_clear()). */
int placement_desired_build(const struct placement_host *host, const struct placement_policy *policy,
                            struct placement_desired *ret, char *why, size_t whylen);
void placement_desired_clear(struct placement_desired *d);

/* Request bodies (malloc'd JSON text, NULL on -ENOMEM). */
char *placement_provider_body(const char *uuid, const char *name);
char *placement_inventories_body(const struct placement_inventory inv[_PRC_MAX], uint64_t generation);
char *placement_traits_body(const struct placement_traits *traits, uint64_t generation);
/* Keystone v3 token request: password (user_id or user name + user domain,
 * project scope) or application credential (id + secret, no scope). */
struct keystone_auth {
        bool application_credential;
        const char *user_id, *username, *user_domain, *password; /* password auth */
        const char *project_id, *project_name, *project_domain;  /* password auth: scope */
        const char *app_cred_id, *app_cred_secret;               /* application credential */
};
char *keystone_token_body(const struct keystone_auth *a);

/* Decoders: 0 and *ret filled, or -EBADMSG (not the expected shape),
 * -EFBIG (len > PLACEMENT_MAX_BODY), -E2BIG (too many traits), -ENOMEM. */
int placement_decode_provider(const char *body, size_t len, struct placement_provider *ret);
/* {"resource_providers": [...]}: the number of entries and the first one. */
int placement_decode_provider_list(const char *body, size_t len, size_t *ret_count,
                                   struct placement_provider *ret_first);
int placement_decode_inventories(const char *body, size_t len, struct placement_remote_inventories *ret);
/* {"resource_provider_generation": N, "traits": [...]} (a provider's traits:
 * ret_generation non-NULL, generation required) or {"traits": [...]}
 * (GET /traits: ret_generation NULL). ret is cleared first on success. */
int placement_decode_traits(const char *body, size_t len, struct placement_traits *ret, uint64_t *ret_generation);
int placement_decode_error(const char *body, size_t len, struct placement_error *ret);
/* Keystone's token body: {"token": {"expires_at": "2026-12-06T19:00:00.000000Z", ...}};
 * *ret_expires in seconds since the epoch (UTC). */
int keystone_decode_token(const char *body, size_t len, int64_t *ret_expires);

/* The placement endpoint in the token body's service catalog: type
 * "placement", interface "internal" preferred over "public" (nova's
 * valid_interfaces order), in region (any when "" ). The URL must be
 * http(s) without spaces or quotes; copied into buf without a trailing '/'.
 * 0, -ENOENT (no such endpoint), -EBADMSG, -ENAMETOOLONG, -EFBIG. */
int keystone_catalog_endpoint(const char *body, size_t len, const char *region, char *buf, size_t size);

/* Equal as Placement would store them (all six fields of each present class). */
bool placement_inventories_equal(const struct placement_inventory a[_PRC_MAX],
                                 const struct placement_inventory b[_PRC_MAX]);

#endif
