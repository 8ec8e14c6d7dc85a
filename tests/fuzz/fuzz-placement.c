/* fuzz-placement.c - libFuzzer target for the decoders of what Placement and
 * Keystone answer (placement-json.c), the service catalog included. The first byte picks the decoder, the
 * rest is the body. Checked: a failure leaves the output as it was; a
 * success yields only valid values (UUID syntax, trait alphabet, sorted and
 * unique traits, bounded amounts, a positive ratio). */
#include "placement-json.h"

#define CHECK(x)                                                                              \
        do {                                                                                  \
                if (!(x)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
                        abort();                                                              \
                }                                                                             \
        } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *body = (const char *)data + 1;
        size_t len;

        if (size < 1)
                return 0;
        len = size - 1;
        switch (data[0] % 6) {
        case 0: {
                struct placement_provider p = { .generation = 77 }, keep = p;
                if (placement_decode_provider(body, len, &p) < 0)
                        CHECK(memcmp(&p, &keep, sizeof(p)) == 0);
                else
                        CHECK(uuid_is_valid(p.uuid) && p.name[0] && p.generation <= PLACEMENT_MAX_GENERATION);
                break;
        }
        case 1: {
                struct placement_provider p = { .generation = 77 };
                size_t n = 12345;
                if (placement_decode_provider_list(body, len, &n, &p) < 0)
                        CHECK(n == 12345 && p.generation == 77);
                else if (n > 0)
                        CHECK(uuid_is_valid(p.uuid));
                break;
        }
        case 2: {
                struct placement_remote_inventories inv = { .generation = 77 };
                if (placement_decode_inventories(body, len, &inv) < 0) {
                        CHECK(inv.generation == 77);
                        break;
                }
                for (int i = 0; i < _PRC_MAX; i++)
                        if (inv.inv[i].present)
                                CHECK(inv.inv[i].total <= PLACEMENT_MAX_AMOUNT && inv.inv[i].allocation_ratio_milli > 0);
                break;
        }
        case 3:
        case 4: {
                struct placement_traits t = {};
                uint64_t gen = 77;
                CHECK(placement_traits_add(&t, "KEEP") == 0);
                if (placement_decode_traits(body, len, &t, data[0] % 6 == 3 ? &gen : NULL) < 0) {
                        CHECK(t.n == 1 && gen == 77);
                } else {
                        for (size_t i = 0; i < t.n; i++) {
                                CHECK(placement_trait_name_valid(t.names[i]));
                                CHECK(i == 0 || strcmp(t.names[i - 1], t.names[i]) < 0);
                        }
                }
                placement_traits_clear(&t);
                break;
        }
        case 5: {
                struct placement_error e = { .status = 7 };
                int64_t exp = 5;
                if (placement_decode_error(body, len, &e) < 0)
                        CHECK(e.status == 7);
                else
                        CHECK(strlen(e.detail) < sizeof(e.detail) && !strchr(e.detail, '\n'));
                if (keystone_decode_token(body, len, &exp) < 0)
                        CHECK(exp == 5);
                {
                        char url[64] = "keep";
                        if (keystone_catalog_endpoint(body, len, (data[0] & 0x40) ? "RegionOne" : "", url,
                                                      sizeof(url)) < 0)
                                CHECK(streq(url, "keep"));
                        else
                                CHECK((strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0) &&
                                      !strpbrk(url, " \"'\\"));
                }
                break;
        }
        }
        return 0;
}
