/* placement-json.c - see placement-json.h */
#include "placement-json.h"

#include <json-c/json.h>
#include <inttypes.h>
#include <math.h>
#include <time.h>

#define JSON_DEPTH 16

const char *const placement_rc_names[_PRC_MAX] = {
        [PRC_VCPU] = "VCPU",
        [PRC_MEMORY_MB] = "MEMORY_MB",
        [PRC_DISK_GB] = "DISK_GB",
};

/* ---- traits ---- */

bool placement_trait_name_valid(const char *name)
{
        size_t n = 0;

        if (!name)
                return false;
        for (; name[n]; n++)
                if (!((name[n] >= 'A' && name[n] <= 'Z') || (name[n] >= '0' && name[n] <= '9') || name[n] == '_') ||
                    n >= PLACEMENT_TRAIT_MAX)
                        return false;
        return n > 0;
}

void placement_traits_clear(struct placement_traits *t)
{
        for (size_t i = 0; i < t->n; i++)
                free(t->names[i]);
        t->n = 0;
}

/* Index where name is or would go (binary search). */
static size_t traits_slot(const struct placement_traits *t, const char *name, bool *found)
{
        size_t lo = 0, hi = t->n;

        *found = false;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(t->names[mid], name);
                if (c == 0) {
                        *found = true;
                        return mid;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

int placement_traits_add(struct placement_traits *t, const char *name)
{
        bool found;
        size_t at;
        char *copy;

        if (!placement_trait_name_valid(name))
                return -EINVAL;
        at = traits_slot(t, name, &found);
        if (found)
                return 0;
        if (t->n >= PLACEMENT_MAX_TRAITS)
                return -E2BIG;
        copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        memmove(&t->names[at + 1], &t->names[at], (t->n - at) * sizeof(t->names[0]));
        t->names[at] = copy;
        t->n++;
        return 0;
}

bool placement_traits_has(const struct placement_traits *t, const char *name)
{
        bool found;
        (void)traits_slot(t, name, &found);
        return found;
}

bool placement_traits_equal(const struct placement_traits *a, const struct placement_traits *b)
{
        if (a->n != b->n)
                return false;
        for (size_t i = 0; i < a->n; i++)
                if (!streq(a->names[i], b->names[i]))
                        return false;
        return true;
}

int placement_traits_copy(struct placement_traits *ret, const struct placement_traits *src)
{
        placement_traits_clear(ret);
        for (size_t i = 0; i < src->n; i++) {
                ret->names[i] = strdup(src->names[i]);
                if (!ret->names[i]) {
                        placement_traits_clear(ret);
                        return -ENOMEM;
                }
                ret->n = i + 1;
        }
        return 0;
}

/* /proc/cpuinfo flag -> libvirt cpu_map feature -> os-traits, after nova's
 * CPU_TRAITS_MAPPING (nova/virt/libvirt/utils.py). The kernel and libvirt
 * spell some features differently: pni is SSE3, sse4_1 is sse4.1,
 * pclmulqdq is pclmuldq, sha_ni is sha-ni, avx512_* drop or keep the '_'. */
static const struct {
        const char *cpuinfo; /* kernel name */
        const char *libvirt; /* cpu_map name, nova's key (documentation) */
        const char *traits[2];
} cpu_flag_table[] = {
        { "3dnow", "3dnow", { "HW_CPU_X86_3DNOW" } },
        { "abm", "abm", { "HW_CPU_X86_ABM" } },
        { "aes", "aes", { "HW_CPU_X86_AESNI" } },
        { "amx_bf16", "amx-bf16", { "HW_CPU_X86_AMXBF16" } },
        { "amx_int8", "amx-int8", { "HW_CPU_X86_AMXINT8" } },
        { "amx_tile", "amx-tile", { "HW_CPU_X86_AMXTILE" } },
        { "avx", "avx", { "HW_CPU_X86_AVX" } },
        { "avx2", "avx2", { "HW_CPU_X86_AVX2" } },
        { "avx512bw", "avx512bw", { "HW_CPU_X86_AVX512BW" } },
        { "avx512cd", "avx512cd", { "HW_CPU_X86_AVX512CD" } },
        { "avx512dq", "avx512dq", { "HW_CPU_X86_AVX512DQ" } },
        { "avx512er", "avx512er", { "HW_CPU_X86_AVX512ER" } },
        { "avx512f", "avx512f", { "HW_CPU_X86_AVX512F" } },
        { "avx512pf", "avx512pf", { "HW_CPU_X86_AVX512PF" } },
        { "avx512vl", "avx512vl", { "HW_CPU_X86_AVX512VL" } },
        { "avx512_vnni", "avx512vnni", { "HW_CPU_X86_AVX512VNNI" } },
        { "avx512vbmi", "avx512vbmi", { "HW_CPU_X86_AVX512VBMI" } },
        { "avx512ifma", "avx512ifma", { "HW_CPU_X86_AVX512IFMA" } },
        { "avx512_vbmi2", "avx512vbmi2", { "HW_CPU_X86_AVX512VBMI2" } },
        { "avx512_bitalg", "avx512bitalg", { "HW_CPU_X86_AVX512BITALG" } },
        { "vaes", "vaes", { "HW_CPU_X86_AVX512VAES" } },
        { "gfni", "gfni", { "HW_CPU_X86_AVX512GFNI" } },
        { "vpclmulqdq", "vpclmulqdq", { "HW_CPU_X86_AVX512VPCLMULQDQ" } },
        { "avx512_vpopcntdq", "avx512-vpopcntdq", { "HW_CPU_X86_AVX512VPOPCNTDQ" } },
        { "bmi1", "bmi1", { "HW_CPU_X86_BMI" } },
        { "bmi2", "bmi2", { "HW_CPU_X86_BMI2" } },
        { "pclmulqdq", "pclmuldq", { "HW_CPU_X86_CLMUL" } },
        { "f16c", "f16c", { "HW_CPU_X86_F16C" } },
        { "fma", "fma", { "HW_CPU_X86_FMA3" } },
        { "fma4", "fma4", { "HW_CPU_X86_FMA4" } },
        { "mmx", "mmx", { "HW_CPU_X86_MMX" } },
        { "mpx", "mpx", { "HW_CPU_X86_MPX" } },
        { "sha_ni", "sha-ni", { "HW_CPU_X86_SHA" } },
        { "sse", "sse", { "HW_CPU_X86_SSE" } },
        { "sse2", "sse2", { "HW_CPU_X86_SSE2" } },
        { "pni", "sse3", { "HW_CPU_X86_SSE3" } },
        { "sse4_1", "sse4.1", { "HW_CPU_X86_SSE41" } },
        { "sse4_2", "sse4.2", { "HW_CPU_X86_SSE42" } },
        { "sse4a", "sse4a", { "HW_CPU_X86_SSE4A" } },
        { "ssse3", "ssse3", { "HW_CPU_X86_SSSE3" } },
        /* nova keeps the old generic trait next to the vendor-specific one */
        { "svm", "svm", { "HW_CPU_X86_SVM", "HW_CPU_X86_AMD_SVM" } },
        { "tbm", "tbm", { "HW_CPU_X86_TBM" } },
        { "vmx", "vmx", { "HW_CPU_X86_VMX", "HW_CPU_X86_INTEL_VMX" } },
        { "xop", "xop", { "HW_CPU_X86_XOP" } },
};

size_t placement_cpu_flag_traits(const char *flag, size_t len, const char *ret[2])
{
        for (size_t i = 0; i < ARRAY_SIZE(cpu_flag_table); i++) {
                if (strlen(cpu_flag_table[i].cpuinfo) != len || memcmp(cpu_flag_table[i].cpuinfo, flag, len) != 0)
                        continue;
                ret[0] = cpu_flag_table[i].traits[0];
                ret[1] = cpu_flag_table[i].traits[1];
                return ret[1] ? 2 : 1;
        }
        return 0;
}

/* ---- the desired provider ---- */

void placement_desired_clear(struct placement_desired *d)
{
        placement_traits_clear(&d->traits);
        memset(d->inv, 0, sizeof(d->inv));
}

static void inventory_set(struct placement_inventory *inv, uint64_t total, uint64_t reserved, uint32_t ratio_milli)
{
        *inv = (struct placement_inventory){
                .present = total > 0,
                .total = total,
                .reserved = reserved,
                .min_unit = 1,
                .max_unit = total,
                .step_size = 1,
                .allocation_ratio_milli = ratio_milli,
        };
}

static int add_traits(struct placement_desired *d, const struct placement_host *host)
{
        int r = placement_traits_add(&d->traits, "COMPUTE_NODE");

        if (r == 0 && host->vcpus > host->cores && host->cores > 0)
                r = placement_traits_add(&d->traits, "HW_CPU_HYPERTHREADING");
        if (r == 0 && host->arch && host->arch[0]) {
                /* HW_ARCH_X86_64, HW_ARCH_AARCH64, ... as nova: the upper-cased machine name */
                char trait[64] = "HW_ARCH_";
                size_t n = strlen(trait);
                for (const char *p = host->arch; *p && n < sizeof(trait) - 1; p++)
                        trait[n++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
                trait[n] = '\0';
                if (placement_trait_name_valid(trait))
                        r = placement_traits_add(&d->traits, trait);
        }
        for (const char *p = host->cpu_flags; r == 0 && p && *p;) {
                const char *names[2];
                size_t len, k;

                p += strspn(p, " \t");
                len = strcspn(p, " \t\n");
                if (len == 0)
                        break;
                k = placement_cpu_flag_traits(p, len, names);
                for (size_t i = 0; r == 0 && i < k; i++)
                        r = placement_traits_add(&d->traits, names[i]);
                p += len;
        }
        return r;
}

int placement_desired_build(const struct placement_host *host, const struct placement_policy *policy,
                            struct placement_desired *ret, char *why, size_t whylen)
{
        struct placement_desired d = {};
        uint64_t disk_reserved_gb = (policy->reserved_host_disk_mb + 1023) / 1024; /* nova: ceil to GiB */
        int r;

        if (host->vcpus > PLACEMENT_MAX_AMOUNT || host->memory_mb > PLACEMENT_MAX_AMOUNT ||
            host->disk_gb > PLACEMENT_MAX_AMOUNT) {
                (void)snprintf(why, whylen, "a total exceeds what Placement can store (%" PRIu64 ")",
                               PLACEMENT_MAX_AMOUNT);
                return -ERANGE;
        }
        inventory_set(&d.inv[PRC_VCPU], host->vcpus, policy->reserved_host_cpus, policy->cpu_ratio_milli);
        inventory_set(&d.inv[PRC_MEMORY_MB], host->memory_mb, policy->reserved_host_memory_mb, policy->ram_ratio_milli);
        inventory_set(&d.inv[PRC_DISK_GB], host->disk_gb, disk_reserved_gb, policy->disk_ratio_milli);
        /* Placement (1.26) accepts reserved == total but refuses more. */
        static const char *const keys[_PRC_MAX] = { "reserved_host_cpus", "reserved_host_memory_mb",
                                                    "reserved_host_disk_mb" };
        for (int i = 0; i < _PRC_MAX; i++)
                if (d.inv[i].present && d.inv[i].reserved > d.inv[i].total) {
                        (void)snprintf(why, whylen, "%s reserves %" PRIu64 " %s but the host has %" PRIu64
                                       "; lower %s", keys[i], d.inv[i].reserved, placement_rc_names[i],
                                       d.inv[i].total, keys[i]);
                        return -ERANGE;
                }
        r = add_traits(&d, host);
        if (r < 0) {
                placement_traits_clear(&d.traits);
                (void)snprintf(why, whylen, "cannot build the trait set: %s", strerror(-r));
                return r;
        }
        placement_desired_clear(ret);
        *ret = d;
        return 0;
}

bool placement_inventories_equal(const struct placement_inventory a[_PRC_MAX],
                                 const struct placement_inventory b[_PRC_MAX])
{
        for (int i = 0; i < _PRC_MAX; i++) {
                if (a[i].present != b[i].present)
                        return false;
                if (!a[i].present)
                        continue;
                if (a[i].total != b[i].total || a[i].reserved != b[i].reserved || a[i].min_unit != b[i].min_unit ||
                    a[i].max_unit != b[i].max_unit || a[i].step_size != b[i].step_size ||
                    a[i].allocation_ratio_milli != b[i].allocation_ratio_milli)
                        return false;
        }
        return true;
}

/* ---- request bodies ---- */

static char *to_text(struct json_object *root)
{
        const char *s = root ? json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN) : NULL;
        char *copy = s ? strdup(s) : NULL;

        json_object_put(root);
        return copy;
}

char *placement_provider_body(const char *uuid, const char *name)
{
        struct json_object *o = json_object_new_object();

        json_object_object_add(o, "uuid", json_object_new_string(uuid));
        json_object_object_add(o, "name", json_object_new_string(name));
        return to_text(o);
}

char *placement_inventories_body(const struct placement_inventory inv[_PRC_MAX], uint64_t generation)
{
        struct json_object *o = json_object_new_object(), *all = json_object_new_object();

        json_object_object_add(o, "resource_provider_generation", json_object_new_int64((int64_t)generation));
        for (int i = 0; i < _PRC_MAX; i++) {
                struct json_object *c;

                if (!inv[i].present)
                        continue;
                c = json_object_new_object();
                json_object_object_add(c, "total", json_object_new_int64((int64_t)inv[i].total));
                json_object_object_add(c, "reserved", json_object_new_int64((int64_t)inv[i].reserved));
                json_object_object_add(c, "min_unit", json_object_new_int64((int64_t)inv[i].min_unit));
                json_object_object_add(c, "max_unit", json_object_new_int64((int64_t)inv[i].max_unit));
                json_object_object_add(c, "step_size", json_object_new_int64((int64_t)inv[i].step_size));
                json_object_object_add(c, "allocation_ratio",
                                       json_object_new_double(inv[i].allocation_ratio_milli / 1000.0));
                json_object_object_add(all, placement_rc_names[i], c);
        }
        json_object_object_add(o, "inventories", all);
        return to_text(o);
}

char *placement_traits_body(const struct placement_traits *traits, uint64_t generation)
{
        struct json_object *o = json_object_new_object(), *list = json_object_new_array();

        for (size_t i = 0; i < traits->n; i++)
                json_object_array_add(list, json_object_new_string(traits->names[i]));
        json_object_object_add(o, "traits", list);
        json_object_object_add(o, "resource_provider_generation", json_object_new_int64((int64_t)generation));
        return to_text(o);
}

static void add_str(struct json_object *o, const char *key, const char *value)
{
        if (value && value[0])
                json_object_object_add(o, key, json_object_new_string(value));
}

/* {"name": n} or {"id": i}, as Keystone names users, projects and domains. */
static struct json_object *id_or_name(const char *id, const char *name)
{
        struct json_object *o = json_object_new_object();
        if (id && id[0])
                add_str(o, "id", id);
        else
                add_str(o, "name", name);
        return o;
}

char *keystone_token_body(const struct keystone_auth *a)
{
        struct json_object *root = json_object_new_object(), *auth = json_object_new_object();
        struct json_object *identity = json_object_new_object(), *methods = json_object_new_array();

        if (a->application_credential) {
                struct json_object *ac = json_object_new_object();
                json_object_array_add(methods, json_object_new_string("application_credential"));
                add_str(ac, "id", a->app_cred_id);
                add_str(ac, "secret", a->app_cred_secret);
                json_object_object_add(identity, "application_credential", ac);
        } else {
                struct json_object *pw = json_object_new_object(), *user = id_or_name(a->user_id, a->username);
                json_object_array_add(methods, json_object_new_string("password"));
                if (!(a->user_id && a->user_id[0]))
                        json_object_object_add(user, "domain", id_or_name(NULL, a->user_domain));
                add_str(user, "password", a->password);
                json_object_object_add(pw, "user", user);
                json_object_object_add(identity, "password", pw);
        }
        json_object_object_add(identity, "methods", methods);
        json_object_object_add(auth, "identity", identity);
        if (!a->application_credential) {
                /* An application credential carries its own scope; a user is scoped to the project. */
                struct json_object *scope = json_object_new_object(), *project = id_or_name(a->project_id, a->project_name);
                if (!(a->project_id && a->project_id[0]))
                        json_object_object_add(project, "domain", id_or_name(NULL, a->project_domain));
                json_object_object_add(scope, "project", project);
                json_object_object_add(auth, "scope", scope);
        }
        json_object_object_add(root, "auth", auth);
        return to_text(root);
}

/* ---- decoders ---- */

/* Parse exactly len bytes as one JSON object (trailing whitespace allowed). */
static int parse_object(const char *body, size_t len, struct json_object **ret)
{
        struct json_tokener *tok;
        struct json_object *o;
        size_t used;

        if (!body)
                return -EBADMSG;
        if (len > PLACEMENT_MAX_BODY)
                return -EFBIG;
        if (memchr(body, '\0', len))
                return -EBADMSG;
        tok = json_tokener_new_ex(JSON_DEPTH);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        o = json_tokener_parse_ex(tok, body, (int)len);
        used = (size_t)json_tokener_get_parse_end(tok);
        if (!o || json_tokener_get_error(tok) != json_tokener_success) {
                /* a complete top-level value may report "continue" until the end: try an explicit end */
                json_object_put(o);
                o = NULL;
                if (json_tokener_get_error(tok) == json_tokener_continue)
                        o = json_tokener_parse_ex(tok, "", 1);
                if (!o || json_tokener_get_error(tok) != json_tokener_success) {
                        json_object_put(o);
                        json_tokener_free(tok);
                        return -EBADMSG;
                }
                used = len;
        }
        json_tokener_free(tok);
        for (; used < len; used++)
                if (!strchr(" \t\r\n", body[used])) {
                        json_object_put(o);
                        return -EBADMSG;
                }
        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EBADMSG;
        }
        *ret = o;
        return 0;
}

static struct json_object *member(struct json_object *o, const char *key, enum json_type type)
{
        struct json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
                return NULL;
        return v;
}

/* A JSON integer in [0, max]. */
static int get_uint(struct json_object *o, const char *key, uint64_t max, uint64_t *ret)
{
        struct json_object *v = member(o, key, json_type_int);
        int64_t x;

        if (!v)
                return -EBADMSG;
        errno = 0;
        x = json_object_get_int64(v);
        if (errno != 0 || x < 0 || (uint64_t)x > max)
                return -EBADMSG;
        *ret = (uint64_t)x;
        return 0;
}

static int get_string(struct json_object *o, const char *key, char *buf, size_t size)
{
        struct json_object *v = member(o, key, json_type_string);
        size_t n;

        if (!v)
                return -EBADMSG;
        n = (size_t)json_object_get_string_len(v);
        if (n >= size || memchr(json_object_get_string(v), '\0', n))
                return -EBADMSG;
        memcpy(buf, json_object_get_string(v), n + 1);
        return 0;
}

static int decode_provider_object(struct json_object *o, struct placement_provider *ret)
{
        struct placement_provider p = {};

        if (get_string(o, "uuid", p.uuid, sizeof(p.uuid)) < 0 || !uuid_is_valid(p.uuid) ||
            get_string(o, "name", p.name, sizeof(p.name)) < 0 || p.name[0] == '\0' ||
            get_uint(o, "generation", PLACEMENT_MAX_GENERATION, &p.generation) < 0)
                return -EBADMSG;
        *ret = p;
        return 0;
}

int placement_decode_provider(const char *body, size_t len, struct placement_provider *ret)
{
        struct json_object *o;
        int r = parse_object(body, len, &o);

        if (r < 0)
                return r;
        r = decode_provider_object(o, ret);
        json_object_put(o);
        return r;
}

int placement_decode_provider_list(const char *body, size_t len, size_t *ret_count,
                                   struct placement_provider *ret_first)
{
        struct json_object *o, *list;
        struct placement_provider first = {};
        size_t n;
        int r = parse_object(body, len, &o);

        if (r < 0)
                return r;
        list = member(o, "resource_providers", json_type_array);
        if (!list) {
                json_object_put(o);
                return -EBADMSG;
        }
        n = json_object_array_length(list);
        for (size_t i = 0; i < n; i++) {
                struct placement_provider p;
                struct json_object *e = json_object_array_get_idx(list, i);
                if (!json_object_is_type(e, json_type_object) || decode_provider_object(e, &p) < 0) {
                        json_object_put(o);
                        return -EBADMSG;
                }
                if (i == 0)
                        first = p;
        }
        json_object_put(o);
        *ret_count = n;
        if (n > 0)
                *ret_first = first;
        return 0;
}

/* allocation_ratio: a JSON number > 0 and <= 1000000 in thousandths. */
static int get_ratio(struct json_object *o, uint32_t *ret)
{
        struct json_object *v;
        double d;

        if (!json_object_object_get_ex(o, "allocation_ratio", &v) ||
            !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
                return -EBADMSG;
        d = json_object_get_double(v);
        if (!isfinite(d) || d <= 0 || d > 1000000.0)
                return -EBADMSG;
        *ret = (uint32_t)(d * 1000.0 + 0.5);
        return 0;
}

int placement_decode_inventories(const char *body, size_t len, struct placement_remote_inventories *ret)
{
        struct placement_remote_inventories inv = {};
        struct json_object *o, *all;
        int r = parse_object(body, len, &o);

        if (r < 0)
                return r;
        all = member(o, "inventories", json_type_object);
        r = all && get_uint(o, "resource_provider_generation", PLACEMENT_MAX_GENERATION, &inv.generation) == 0
                    ? 0
                    : -EBADMSG;
        if (r == 0) {
                json_object_object_foreach(all, key, c) {
                        struct placement_inventory *x = NULL;

                        for (int i = 0; i < _PRC_MAX; i++)
                                if (streq(key, placement_rc_names[i]))
                                        x = &inv.inv[i];
                        if (!placement_trait_name_valid(key) || !json_object_is_type(c, json_type_object)) {
                                r = -EBADMSG; /* resource class names share the trait alphabet */
                                break;
                        }
                        if (!x) {
                                inv.n_other++;
                                continue;
                        }
                        x->present = true;
                        if (get_uint(c, "total", PLACEMENT_MAX_AMOUNT, &x->total) < 0 ||
                            get_uint(c, "reserved", PLACEMENT_MAX_AMOUNT, &x->reserved) < 0 ||
                            get_uint(c, "min_unit", PLACEMENT_MAX_AMOUNT, &x->min_unit) < 0 ||
                            get_uint(c, "max_unit", PLACEMENT_MAX_AMOUNT, &x->max_unit) < 0 ||
                            get_uint(c, "step_size", PLACEMENT_MAX_AMOUNT, &x->step_size) < 0 ||
                            get_ratio(c, &x->allocation_ratio_milli) < 0) {
                                r = -EBADMSG;
                                break;
                        }
                }
        }
        json_object_put(o);
        if (r == 0)
                *ret = inv;
        return r;
}

int placement_decode_traits(const char *body, size_t len, struct placement_traits *ret, uint64_t *ret_generation)
{
        struct placement_traits t = {};
        struct json_object *o, *list;
        uint64_t generation = 0;
        int r = parse_object(body, len, &o);

        if (r < 0)
                return r;
        list = member(o, "traits", json_type_array);
        if (!list || (ret_generation && get_uint(o, "resource_provider_generation", PLACEMENT_MAX_GENERATION,
                                                 &generation) < 0))
                r = -EBADMSG;
        for (size_t i = 0; r == 0 && list && i < json_object_array_length(list); i++) {
                struct json_object *e = json_object_array_get_idx(list, i);
                if (!json_object_is_type(e, json_type_string) ||
                    (size_t)json_object_get_string_len(e) != strlen(json_object_get_string(e)))
                        r = -EBADMSG;
                else {
                        r = placement_traits_add(&t, json_object_get_string(e));
                        if (r == -EINVAL)
                                r = -EBADMSG;
                }
        }
        json_object_put(o);
        if (r < 0) {
                placement_traits_clear(&t);
                return r;
        }
        placement_traits_clear(ret);
        *ret = t;
        if (ret_generation)
                *ret_generation = generation;
        return 0;
}

/* Copy a remote string for display: cut to fit, control characters and quotes replaced. */
static void copy_display(char *buf, size_t size, const char *s)
{
        size_t n = 0;

        for (; s && *s && n + 1 < size; s++)
                buf[n++] = ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '"' || *s == '\\') ? ' ' : *s;
        buf[n] = '\0';
}

int placement_decode_error(const char *body, size_t len, struct placement_error *ret)
{
        struct placement_error e = {};
        struct json_object *o, *list, *first, *v;
        uint64_t status;
        int r = parse_object(body, len, &o);

        if (r < 0)
                return r;
        list = member(o, "errors", json_type_array);
        first = list && json_object_array_length(list) > 0 ? json_object_array_get_idx(list, 0) : NULL;
        if (!first || !json_object_is_type(first, json_type_object)) {
                json_object_put(o);
                return -EBADMSG;
        }
        if (get_uint(first, "status", 599, &status) == 0)
                e.status = (int)status;
        if ((v = member(first, "code", json_type_string)))
                copy_display(e.code, sizeof(e.code), json_object_get_string(v));
        if ((v = member(first, "detail", json_type_string)))
                copy_display(e.detail, sizeof(e.detail), json_object_get_string(v));
        else if ((v = member(first, "title", json_type_string)))
                copy_display(e.detail, sizeof(e.detail), json_object_get_string(v));
        json_object_put(o);
        *ret = e;
        return 0;
}

/* "YYYY-MM-DDTHH:MM:SS[.ffffff]Z" (Keystone writes UTC with a Z). */
static int parse_iso8601_utc(const char *s, int64_t *ret)
{
        struct tm tm = {};
        const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        time_t t;

        if (!p)
                return -EBADMSG;
        if (*p == '.') {
                p++;
                if (!(*p >= '0' && *p <= '9'))
                        return -EBADMSG;
                while (*p >= '0' && *p <= '9')
                        p++;
        }
        if (!(streq(p, "Z") || streq(p, "+00:00") || *p == '\0'))
                return -EBADMSG;
        t = timegm(&tm);
        if (t == (time_t)-1)
                return -EBADMSG;
        *ret = (int64_t)t;
        return 0;
}

int keystone_decode_token(const char *body, size_t len, int64_t *ret_expires)
{
        struct json_object *o, *token;
        char expires[64];
        int64_t t;
        int r = parse_object(body, len, &o);

        if (r < 0)
                return r;
        token = member(o, "token", json_type_object);
        r = token && get_string(token, "expires_at", expires, sizeof(expires)) == 0 ? parse_iso8601_utc(expires, &t)
                                                                                     : -EBADMSG;
        json_object_put(o);
        if (r == 0)
                *ret_expires = t;
        return r;
}

static bool endpoint_url_ok(const char *u)
{
        if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
                return false;
        for (; *u; u++)
                if (*u <= ' ' || *u >= 0x7f || *u == '"' || *u == '\\' || *u == '\'')
                        return false;
        return true;
}

int keystone_catalog_endpoint(const char *body, size_t len, const char *region, char *buf, size_t size)
{
        static const char *const interfaces[] = { "internal", "public" };
        struct json_object *o, *token, *catalog;
        int r = parse_object(body, len, &o);

        if (r < 0)
                return r;
        token = member(o, "token", json_type_object);
        catalog = token ? member(token, "catalog", json_type_array) : NULL;
        r = catalog ? -ENOENT : -EBADMSG;
        for (size_t want = 0; r == -ENOENT && want < ARRAY_SIZE(interfaces); want++) {
                for (size_t i = 0; r == -ENOENT && i < json_object_array_length(catalog); i++) {
                        struct json_object *svc = json_object_array_get_idx(catalog, i), *type, *eps;
                        if (!json_object_is_type(svc, json_type_object) ||
                            !(type = member(svc, "type", json_type_string)) ||
                            !streq(json_object_get_string(type), "placement") ||
                            !(eps = member(svc, "endpoints", json_type_array)))
                                continue;
                        for (size_t j = 0; r == -ENOENT && j < json_object_array_length(eps); j++) {
                                struct json_object *ep = json_object_array_get_idx(eps, j), *itf, *url, *reg;
                                if (!json_object_is_type(ep, json_type_object) ||
                                    !(itf = member(ep, "interface", json_type_string)) ||
                                    !streq(json_object_get_string(itf), interfaces[want]) ||
                                    !(url = member(ep, "url", json_type_string)))
                                        continue;
                                reg = member(ep, "region_id", json_type_string);
                                if (!reg)
                                        reg = member(ep, "region", json_type_string);
                                if (region && region[0] && !(reg && streq(json_object_get_string(reg), region)))
                                        continue;
                                if (!endpoint_url_ok(json_object_get_string(url)))
                                        r = -EBADMSG;
                                else {
                                        char tmp[512];
                                        size_t n;
                                        r = strscpy(tmp, json_object_get_string(url), sizeof(tmp));
                                        if (r == 0) {
                                                n = strlen(tmp);
                                                while (n > 8 && tmp[n - 1] == '/')
                                                        tmp[--n] = '\0';
                                                r = strlen(tmp) < size ? strscpy(buf, tmp, size) : -ENAMETOOLONG;
                                        }
                                }
                        }
                }
        }
        json_object_put(o);
        return r;
}
