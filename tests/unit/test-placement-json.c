/* test-placement-json.c - the Placement request builders, the CPU trait
 * mapping and the strict decoders.
 *
 * The fixtures in tests/unit/fixtures/placement/ are real answers of
 * Debian 12's placement-api 8.0.0 (sqlite, noauth2), recorded with curl:
 * POST /resource_providers at 1.20 (provider-create.json, and again with a
 * second uuid and the same name: error-name-conflict.json), PUT and GET
 * .../inventories at 1.26, a PUT with a stale generation
 * (error-generation-conflict.json), PUT .../traits at 1.6 with a trait
 * Placement does not know (error-unknown-trait.json) and without
 * (traits-put.json), GET /traits?name=in:... (traits-list.json), GET
 * /resource_providers?name= and /{uuid} at 1.14, and a missing uuid
 * (error-not-found.json). keystone-token.json has the shape of Keystone's
 * POST /v3/auth/tokens answer (the api-ref's example body, trimmed). */
#include "placement-json.h"

#include <check.h>
#include <json-c/json.h>
#include <libgen.h>
#include <limits.h>

static char *fixture(const char *name, size_t *ret_len)
{
        char path[PATH_MAX], exe[PATH_MAX];
        char *text = NULL;
        ssize_t n;
        int r;

        (void)snprintf(path, sizeof(path), "tests/unit/fixtures/placement/%s", name);
        if (access(path, R_OK) < 0 && (n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) > 0) {
                exe[n] = '\0';
                /* build/tests/test-x -> the source tree two levels up */
                (void)snprintf(path, sizeof(path), "%s/../../tests/unit/fixtures/placement/%s", dirname(exe), name);
        }
        r = read_file_bounded(path, 1 << 20, &text, ret_len);
        ck_assert_msg(r == 0, "cannot read %s: %s", path, strerror(-r));
        return text;
}

static struct json_object *parse(const char *text)
{
        struct json_object *o = json_tokener_parse(text);
        ck_assert_ptr_nonnull(o);
        return o;
}

static int64_t get_i64(struct json_object *o, const char *path1, const char *path2, const char *key)
{
        struct json_object *v = o;
        if (path1)
                ck_assert(json_object_object_get_ex(v, path1, &v));
        if (path2)
                ck_assert(json_object_object_get_ex(v, path2, &v));
        ck_assert(json_object_object_get_ex(v, key, &v));
        return json_object_get_int64(v);
}

START_TEST(test_cpu_flag_mapping)
{
        static const struct {
                const char *flag, *trait, *second;
        } cases[] = {
                { "sse4_1", "HW_CPU_X86_SSE41", NULL },   { "sse4_2", "HW_CPU_X86_SSE42", NULL },
                { "pclmulqdq", "HW_CPU_X86_CLMUL", NULL }, { "sha_ni", "HW_CPU_X86_SHA", NULL },
                { "pni", "HW_CPU_X86_SSE3", NULL },       { "aes", "HW_CPU_X86_AESNI", NULL },
                { "avx", "HW_CPU_X86_AVX", NULL },        { "avx2", "HW_CPU_X86_AVX2", NULL },
                { "fma", "HW_CPU_X86_FMA3", NULL },       { "bmi1", "HW_CPU_X86_BMI", NULL },
                { "avx512_vnni", "HW_CPU_X86_AVX512VNNI", NULL },
                { "avx512_vpopcntdq", "HW_CPU_X86_AVX512VPOPCNTDQ", NULL },
                { "vaes", "HW_CPU_X86_AVX512VAES", NULL },
                { "vmx", "HW_CPU_X86_VMX", "HW_CPU_X86_INTEL_VMX" },
                { "svm", "HW_CPU_X86_SVM", "HW_CPU_X86_AMD_SVM" },
        };
        const char *t[2];

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                size_t n = placement_cpu_flag_traits(cases[i].flag, strlen(cases[i].flag), t);
                ck_assert_msg(n == (cases[i].second ? 2u : 1u), "%s", cases[i].flag);
                ck_assert_str_eq(t[0], cases[i].trait);
                if (cases[i].second)
                        ck_assert_str_eq(t[1], cases[i].second);
        }
        /* libvirt's spellings are not kernel flags; kernel flags nova does not report map to nothing */
        static const char *const none[] = { "sse4.1", "pclmuldq", "sha-ni", "sse3", "ht", "fpu", "lm", "", "avx5" };
        for (size_t i = 0; i < ARRAY_SIZE(none); i++)
                ck_assert_msg(placement_cpu_flag_traits(none[i], strlen(none[i]), t) == 0, "%s", none[i]);
        /* length-bounded: "avx2" matched as "avx" when only 3 bytes are given */
        ck_assert_uint_eq(placement_cpu_flag_traits("avx2", 3, t), 1);
        ck_assert_str_eq(t[0], "HW_CPU_X86_AVX");
}
END_TEST

static const struct placement_policy nova_defaults = {
        .reserved_host_cpus = 0,
        .reserved_host_memory_mb = 512,
        .reserved_host_disk_mb = 0,
        .cpu_ratio_milli = 16000,
        .ram_ratio_milli = 1500,
        .disk_ratio_milli = 1000,
};

START_TEST(test_desired_build)
{
        struct placement_host host = {
                .vcpus = 8, .cores = 4, .memory_mb = 15890, .disk_gb = 100, .arch = "x86_64",
                .cpu_flags = "fpu vme pni pclmulqdq ssse3 sse4_1 sse4_2 aes avx avx2 sha_ni ht vmx",
        };
        struct placement_policy pol = nova_defaults;
        struct placement_desired d = {}, keep;
        char why[256] = "";

        pol.reserved_host_disk_mb = 1025; /* nova rounds up to whole GiB: 2 */
        pol.reserved_host_cpus = 1;
        ck_assert_int_eq(placement_desired_build(&host, &pol, &d, why, sizeof(why)), 0);
        ck_assert(d.inv[PRC_VCPU].present && d.inv[PRC_VCPU].total == 8 && d.inv[PRC_VCPU].max_unit == 8);
        ck_assert_uint_eq(d.inv[PRC_VCPU].reserved, 1);
        ck_assert_uint_eq(d.inv[PRC_VCPU].allocation_ratio_milli, 16000);
        ck_assert_uint_eq(d.inv[PRC_MEMORY_MB].reserved, 512);
        ck_assert_uint_eq(d.inv[PRC_MEMORY_MB].allocation_ratio_milli, 1500);
        ck_assert_uint_eq(d.inv[PRC_DISK_GB].reserved, 2);
        ck_assert_uint_eq(d.inv[PRC_DISK_GB].min_unit, 1);
        ck_assert_uint_eq(d.inv[PRC_DISK_GB].step_size, 1);
        static const char *const expect[] = {
                "COMPUTE_NODE", "HW_ARCH_X86_64", "HW_CPU_HYPERTHREADING", "HW_CPU_X86_AESNI", "HW_CPU_X86_AVX",
                "HW_CPU_X86_AVX2", "HW_CPU_X86_CLMUL", "HW_CPU_X86_INTEL_VMX", "HW_CPU_X86_SHA", "HW_CPU_X86_SSE3",
                "HW_CPU_X86_SSE41", "HW_CPU_X86_SSE42", "HW_CPU_X86_SSSE3", "HW_CPU_X86_VMX",
        };
        ck_assert_uint_eq(d.traits.n, ARRAY_SIZE(expect));
        for (size_t i = 0; i < ARRAY_SIZE(expect); i++)
                ck_assert_str_eq(d.traits.names[i], expect[i]); /* sorted */

        /* no hyperthreading when each core has one thread; a total of 0 is omitted */
        host.cores = 8;
        host.disk_gb = 0;
        ck_assert_int_eq(placement_desired_build(&host, &pol, &d, why, sizeof(why)), 0);
        ck_assert(!placement_traits_has(&d.traits, "HW_CPU_HYPERTHREADING"));
        ck_assert(!d.inv[PRC_DISK_GB].present);

        /* reserving more than there is: refused, named, and *ret unchanged */
        keep = d;
        pol.reserved_host_memory_mb = 20000;
        ck_assert_int_eq(placement_desired_build(&host, &pol, &d, why, sizeof(why)), -ERANGE);
        ck_assert_ptr_nonnull(strstr(why, "reserved_host_memory_mb"));
        ck_assert(memcmp(&keep, &d, sizeof(d)) == 0);
        /* reserved == total is allowed (Placement 1.26) */
        pol.reserved_host_memory_mb = 15890;
        ck_assert_int_eq(placement_desired_build(&host, &pol, &d, why, sizeof(why)), 0);
        placement_desired_clear(&d);
}
END_TEST

START_TEST(test_bodies)
{
        struct placement_host host = { .vcpus = 2, .cores = 2, .memory_mb = 3900, .disk_gb = 60, .arch = "x86_64" };
        struct placement_desired d = {};
        char why[128];
        char *body;
        struct json_object *o, *v;

        ck_assert_int_eq(placement_desired_build(&host, &nova_defaults, &d, why, sizeof(why)), 0);
        body = placement_inventories_body(d.inv, 7);
        o = parse(body);
        ck_assert_int_eq(get_i64(o, NULL, NULL, "resource_provider_generation"), 7);
        ck_assert_int_eq(get_i64(o, "inventories", "VCPU", "total"), 2);
        ck_assert_int_eq(get_i64(o, "inventories", "MEMORY_MB", "reserved"), 512);
        ck_assert_int_eq(get_i64(o, "inventories", "DISK_GB", "max_unit"), 60);
        ck_assert(json_object_object_get_ex(o, "inventories", &v) && json_object_object_get_ex(v, "MEMORY_MB", &v) &&
                  json_object_object_get_ex(v, "allocation_ratio", &v));
        ck_assert(json_object_get_double(v) == 1.5);
        json_object_put(o);
        free(body);

        /* what we send is what the decoder reads back */
        {
                size_t len;
                _cleanup_free_ char *put = fixture("inventories-put.json", &len);
                struct placement_remote_inventories remote;
                ck_assert_int_eq(placement_decode_inventories(put, len, &remote), 0);
                ck_assert(placement_inventories_equal(remote.inv, d.inv));
                d.inv[PRC_MEMORY_MB].allocation_ratio_milli = 1501;
                ck_assert(!placement_inventories_equal(remote.inv, d.inv));
        }

        body = placement_traits_body(&d.traits, 3);
        o = parse(body);
        ck_assert_int_eq(get_i64(o, NULL, NULL, "resource_provider_generation"), 3);
        ck_assert(json_object_object_get_ex(o, "traits", &v));
        ck_assert_uint_eq(json_object_array_length(v), d.traits.n);
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(v, 0)), "COMPUTE_NODE");
        json_object_put(o);
        free(body);

        body = placement_provider_body("1b6f7e2c-3a4d-4e5f-8a9b-0c1d2e3f4a5b", "host\"1");
        o = parse(body);
        ck_assert(json_object_object_get_ex(o, "name", &v));
        ck_assert_str_eq(json_object_get_string(v), "host\"1");
        json_object_put(o);
        free(body);
        placement_desired_clear(&d);
}
END_TEST

START_TEST(test_keystone_body)
{
        struct keystone_auth pw = { .username = "nova", .user_domain = "Default", .password = "s3cret",
                                    .project_name = "service", .project_domain = "Default" };
        struct keystone_auth ac = { .application_credential = true, .app_cred_id = "abc", .app_cred_secret = "xyz" };
        _cleanup_free_ char *a = keystone_token_body(&pw), *b = keystone_token_body(&ac);

        ck_assert_str_eq(a, "{\"auth\":{\"identity\":{\"password\":{\"user\":{\"name\":\"nova\",\"domain\":{\"name\":"
                            "\"Default\"},\"password\":\"s3cret\"}},\"methods\":[\"password\"]},\"scope\":{\"project\":"
                            "{\"name\":\"service\",\"domain\":{\"name\":\"Default\"}}}}}");
        ck_assert_str_eq(b, "{\"auth\":{\"identity\":{\"application_credential\":{\"id\":\"abc\",\"secret\":\"xyz\"},"
                            "\"methods\":[\"application_credential\"]}}}");
}
END_TEST

START_TEST(test_decode_fixtures)
{
        struct placement_provider p;
        struct placement_traits t = {};
        struct placement_error e;
        uint64_t gen = 99;
        size_t len, count = 0;
        char *text;

        text = fixture("provider-create.json", &len);
        ck_assert_int_eq(placement_decode_provider(text, len, &p), 0);
        ck_assert_str_eq(p.uuid, "1b6f7e2c-3a4d-4e5f-8a9b-0c1d2e3f4a5b");
        ck_assert_str_eq(p.name, "fixture-host");
        ck_assert_uint_eq(p.generation, 0);
        free(text);

        text = fixture("provider-list.json", &len);
        ck_assert_int_eq(placement_decode_provider_list(text, len, &count, &p), 0);
        ck_assert_uint_eq(count, 1);
        ck_assert_uint_eq(p.generation, 2);
        free(text);

        text = fixture("traits-put.json", &len);
        ck_assert_int_eq(placement_decode_traits(text, len, &t, &gen), 0);
        ck_assert_uint_eq(gen, 2);
        ck_assert_uint_eq(t.n, 3);
        ck_assert(placement_traits_has(&t, "HW_CPU_X86_SSE41"));
        free(text);

        text = fixture("traits-list.json", &len);
        ck_assert_int_eq(placement_decode_traits(text, len, &t, NULL), 0);
        ck_assert_uint_eq(t.n, 2);
        /* a provider's traits need the generation */
        ck_assert_int_eq(placement_decode_traits(text, len, &t, &gen), -EBADMSG);
        ck_assert_uint_eq(t.n, 2);
        free(text);
        placement_traits_clear(&t);

        text = fixture("error-generation-conflict.json", &len);
        ck_assert_int_eq(placement_decode_error(text, len, &e), 0);
        ck_assert_int_eq(e.status, 409);
        ck_assert_str_eq(e.code, "placement.concurrent_update");
        ck_assert_ptr_null(strchr(e.detail, '\n'));
        free(text);

        text = fixture("error-name-conflict.json", &len);
        ck_assert_int_eq(placement_decode_error(text, len, &e), 0);
        ck_assert_ptr_nonnull(strstr(e.detail, "Conflicting resource provider name"));
        free(text);

        text = fixture("error-unknown-trait.json", &len);
        ck_assert_int_eq(placement_decode_error(text, len, &e), 0);
        ck_assert_int_eq(e.status, 400);
        ck_assert_ptr_nonnull(strstr(e.detail, "No such trait HW_CPU_X86_AMXBF16"));
        free(text);

        text = fixture("keystone-token.json", &len);
        {
                int64_t exp = 0;
                ck_assert_int_eq(keystone_decode_token(text, len, &exp), 0);
                ck_assert_int_eq(exp, 1796583600); /* 2026-12-06T19:00:00Z */
                char url[256] = "untouched";
                ck_assert_int_eq(keystone_catalog_endpoint(text, len, "", url, sizeof(url)), 0);
                ck_assert_str_eq(url, "http://127.0.0.1:8778");
                ck_assert_int_eq(keystone_catalog_endpoint(text, len, "RegionOne", url, sizeof(url)), 0);
                (void)strscpy(url, "untouched", sizeof(url));
                ck_assert_int_eq(keystone_catalog_endpoint(text, len, "RegionTwo", url, sizeof(url)), -ENOENT);
                ck_assert_str_eq(url, "untouched");
        }
        free(text);
}
END_TEST

START_TEST(test_decode_refusals)
{
        struct placement_provider p = { .generation = 42 };
        struct placement_remote_inventories inv = { .generation = 42 };
        struct placement_traits t = {};
        uint64_t gen = 42;
        static const char *const bad_providers[] = {
                "",
                "[]",
                "{}",
                "{\"uuid\":\"1b6f7e2c-3a4d-4e5f-8a9b-0c1d2e3f4a5b\",\"name\":\"x\"}",                       /* no generation */
                "{\"uuid\":\"1b6f7e2c-3a4d-4e5f-8a9b-0c1d2e3f4a5b\",\"name\":\"x\",\"generation\":-1}",
                "{\"uuid\":\"1b6f7e2c-3a4d-4e5f-8a9b-0c1d2e3f4a5b\",\"name\":\"x\",\"generation\":\"1\"}",
                "{\"uuid\":\"1b6f7e2c-3a4d-4e5f-8a9b-0c1d2e3f4a5\",\"name\":\"x\",\"generation\":1}",       /* short uuid */
                "{\"uuid\":\"../../etc/passwd\",\"name\":\"x\",\"generation\":1}",
                "{\"uuid\":\"1b6f7e2c-3a4d-4e5f-8a9b-0c1d2e3f4a5b\",\"name\":\"\",\"generation\":1}",
                "{\"uuid\":\"1b6f7e2c-3a4d-4e5f-8a9b-0c1d2e3f4a5b\",\"name\":\"x\",\"generation\":1} x",  /* trailing */
                "{\"uuid\":\"1b6f7e2c-3a4d-4e5f-8a9b-0c1d2e3f4a5b\",\"name\":\"x\",\"generation\":1",     /* cut */
                "{\"uuid\":\"1b6f7e2c-3a4d-4e5f-8a9b-0c1d2e3f4a5b\",\"name\":\"x\",\"generation\":99999999999999999999}",
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad_providers); i++) {
                ck_assert_msg(placement_decode_provider(bad_providers[i], strlen(bad_providers[i]), &p) == -EBADMSG,
                              "%s", bad_providers[i]);
                ck_assert_uint_eq(p.generation, 42);
        }
        /* an embedded NUL is refused */
        ck_assert_int_eq(placement_decode_provider("{}\0{}", 5, &p), -EBADMSG);
        /* deeply nested input stops at the depth limit */
        {
                char deep[200];
                memset(deep, '[', sizeof(deep));
                ck_assert_int_eq(placement_decode_provider(deep, sizeof(deep), &p), -EBADMSG);
        }
        /* oversized */
        {
                size_t n = PLACEMENT_MAX_BODY + 1;
                char *big = malloc(n);
                ck_assert_ptr_nonnull(big);
                memset(big, ' ', n);
                ck_assert_int_eq(placement_decode_provider(big, n, &p), -EFBIG);
                free(big);
        }
        static const char *const bad_inv[] = {
                "{\"resource_provider_generation\":1}",
                "{\"resource_provider_generation\":1,\"inventories\":[]}",
                "{\"resource_provider_generation\":1,\"inventories\":{\"VCPU\":{\"total\":2}}}",
                "{\"resource_provider_generation\":1,\"inventories\":{\"VCPU\":{\"total\":2,\"reserved\":0,\"min_unit\":1,"
                "\"max_unit\":2,\"step_size\":1,\"allocation_ratio\":0}}}",
                "{\"resource_provider_generation\":1,\"inventories\":{\"VCPU\":{\"total\":2,\"reserved\":0,\"min_unit\":1,"
                "\"max_unit\":2,\"step_size\":1,\"allocation_ratio\":\"16\"}}}",
                "{\"resource_provider_generation\":1,\"inventories\":{\"vcpu lower\":{}}}",
                "{\"resource_provider_generation\":1,\"inventories\":{\"VCPU\":{\"total\":4294967296,\"reserved\":0,"
                "\"min_unit\":1,\"max_unit\":2,\"step_size\":1,\"allocation_ratio\":1}}}",
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad_inv); i++) {
                ck_assert_msg(placement_decode_inventories(bad_inv[i], strlen(bad_inv[i]), &inv) == -EBADMSG, "%s",
                              bad_inv[i]);
                ck_assert_uint_eq(inv.generation, 42);
        }
        /* a class that is not ours is counted, not refused */
        {
                const char *other = "{\"resource_provider_generation\":5,\"inventories\":{\"CUSTOM_X\":{}}}";
                ck_assert_int_eq(placement_decode_inventories(other, strlen(other), &inv), 0);
                ck_assert_uint_eq(inv.n_other, 1);
                ck_assert(!inv.inv[PRC_VCPU].present);
        }
        static const char *const bad_traits[] = {
                "{\"resource_provider_generation\":1,\"traits\":[\"lower\"]}",
                "{\"resource_provider_generation\":1,\"traits\":[1]}",
                "{\"resource_provider_generation\":1,\"traits\":[\"\"]}",
                "{\"resource_provider_generation\":1,\"traits\":\"COMPUTE_NODE\"}",
                "{\"traits\":[\"COMPUTE_NODE\"]}",
        };
        ck_assert_int_eq(placement_traits_add(&t, "KEEP_ME"), 0);
        for (size_t i = 0; i < ARRAY_SIZE(bad_traits); i++) {
                ck_assert_msg(placement_decode_traits(bad_traits[i], strlen(bad_traits[i]), &t, &gen) == -EBADMSG,
                              "%s", bad_traits[i]);
                ck_assert_uint_eq(gen, 42);
                ck_assert(t.n == 1 && placement_traits_has(&t, "KEEP_ME"));
        }
        /* too many traits */
        {
                char *many = malloc(64 * 200 + 64);
                size_t n = (size_t)snprintf(many, 64, "{\"resource_provider_generation\":1,\"traits\":[");
                for (int i = 0; i < PLACEMENT_MAX_TRAITS + 1; i++)
                        n += (size_t)snprintf(many + n, 64, "%s\"CUSTOM_T%d\"", i ? "," : "", i);
                n += (size_t)snprintf(many + n, 8, "]}");
                ck_assert_int_eq(placement_decode_traits(many, n, &t, &gen), -E2BIG);
                ck_assert(t.n == 1);
                free(many);
        }
        placement_traits_clear(&t);
        /* a 401 of the auth middleware is not a Placement error body */
        {
                size_t len;
                struct placement_error e = { .status = 7 };
                _cleanup_free_ char *text = fixture("error-401-noauth.json", &len);
                ck_assert_int_eq(placement_decode_error(text, len, &e), -EBADMSG);
                ck_assert_int_eq(e.status, 7);
        }
        {
                int64_t exp = 5;
                const char *bad = "{\"token\":{\"expires_at\":\"tomorrow\"}}";
                ck_assert_int_eq(keystone_decode_token(bad, strlen(bad), &exp), -EBADMSG);
                ck_assert_int_eq(exp, 5);
        }
}
END_TEST

START_TEST(test_trait_names)
{
        char long_name[300];

        ck_assert(placement_trait_name_valid("HW_CPU_X86_SSE41"));
        ck_assert(!placement_trait_name_valid("hw_cpu"));
        ck_assert(!placement_trait_name_valid(""));
        ck_assert(!placement_trait_name_valid("A B"));
        memset(long_name, 'A', sizeof(long_name));
        long_name[256] = '\0'; /* 256 characters: too long */
        ck_assert(!placement_trait_name_valid(long_name));
        long_name[255] = '\0'; /* Placement's limit: 255 */
        ck_assert(placement_trait_name_valid(long_name));
}
END_TEST

int main(void)
{
        Suite *s = suite_create("placement-json");
        TCase *tc = tcase_create("placement");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_cpu_flag_mapping);
        tcase_add_test(tc, test_desired_build);
        tcase_add_test(tc, test_bodies);
        tcase_add_test(tc, test_keystone_body);
        tcase_add_test(tc, test_decode_fixtures);
        tcase_add_test(tc, test_decode_refusals);
        tcase_add_test(tc, test_trait_names);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
