/* test-ovs-sha1.c - the openvswitch module's SHA-1 (interfaces/openvswitch/ovs-sha1.c):
 * libopenvswitch linked as the module links it (with OVS_SHA1_WRAP) computes SHA-1
 * without OpenSSL's EVP (whose first use loads OpenSSL's default provider: 2-3 MiB of an
 * idle module), with the right digests, and UUID generation (the IDL's row inserts) goes
 * through it too. EVP_DigestInit_ex is defined here: the executable's definition is the one
 * every caller in the process reaches, so a call to it is seen. */
#include <config.h>

#include "sha1.h"
#include "uuid.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

static int evp_calls;

int EVP_DigestInit_ex(EVP_MD_CTX *ctx, const EVP_MD *type, ENGINE *impl)
{
        (void)ctx;
        (void)type;
        (void)impl;
        evp_calls++;
        return 0; /* refused: lib/sha1.c's EVP path gives up (and aborts) */
}

static void hex(const uint8_t d[SHA1_DIGEST_SIZE], char out[2 * SHA1_DIGEST_SIZE + 1])
{
        for (int i = 0; i < SHA1_DIGEST_SIZE; i++)
                (void)snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* FIPS 180 test vectors */
START_TEST(test_digests)
{
        static const struct {
                const char *in, *want;
        } v[] = {
                { "abc", "a9993e364706816aba3e25717850c26c9cd0d89d" },
                { "", "da39a3ee5e6b4b0d3255bfef95601890afd80709" },
                { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "84983e441c3bd26ebaae4aa1f95129e5e54670f1" },
        };
        uint8_t d[SHA1_DIGEST_SIZE];
        char got[2 * SHA1_DIGEST_SIZE + 1];
        struct sha1_ctx ctx;

        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
                sha1_bytes(v[i].in, (uint32_t)strlen(v[i].in), d);
                hex(d, got);
                ck_assert_str_eq(got, v[i].want);
                /* the same in pieces of 1 and the rest */
                sha1_init(&ctx);
                if (v[i].in[0]) {
                        sha1_update(&ctx, v[i].in, 1);
                        sha1_update(&ctx, v[i].in + 1, (uint32_t)strlen(v[i].in) - 1);
                }
                sha1_final(&ctx, d);
                hex(d, got);
                ck_assert_str_eq(got, v[i].want);
        }
        ck_assert_int_eq(evp_calls, 0);
}
END_TEST

/* The IDL's inserts generate UUIDs; their seed is a SHA-1 (lib/uuid.c). */
START_TEST(test_uuid_generation_without_evp)
{
        struct uuid a, b;

        uuid_generate(&a);
        uuid_generate(&b);
        ck_assert(!uuid_is_zero(&a));
        ck_assert(!uuid_equals(&a, &b));
        ck_assert_int_eq(evp_calls, 0);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("ovs-sha1");
        TCase *tc = tcase_create("sha1");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_digests);
        tcase_add_test(tc, test_uuid_generation_without_evp);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
