/* fuzz-image-inspect.c - libFuzzer target for src/lib/image-inspect.c.
 *
 * Input: one byte that picks the declared format (unspecified, raw, qcow2),
 * then the image. Each image is inspected whole (size known), as a stream
 * (size unknown, bytes handed in as the inspector asks for them), and through
 * the random-access reader; the three must agree. What is accepted must obey
 * the rules: a qcow2 has no backing file, no data file bit, no encryption, a
 * version of 2 or 3; a raw image carries no qcow magic and was not declared
 * qcow2. A refusal leaves the output untouched and says why. Any violation
 * aborts. */
#include "image-inspect.h"

#define CHECK(x)                                                                             \
        do {                                                                                 \
                if (!(x)) {                                                                  \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
                        abort();                                                             \
                }                                                                            \
        } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t be32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

struct mem {
        const uint8_t *p;
        size_t len;
};

static int mem_read(void *userdata, uint64_t offset, void *buf, size_t n)
{
        const struct mem *m = userdata;

        CHECK(offset <= m->len && n <= m->len - offset); /* never past the stated size */
        memcpy(buf, m->p + offset, n);
        return 0;
}

static void accepted_is_safe(const uint8_t *img, size_t len, enum image_format declared, const struct image_info *info)
{
        CHECK(info->format == IMAGE_FORMAT_RAW || info->format == IMAGE_FORMAT_QCOW2);
        CHECK(declared == IMAGE_FORMAT_UNSPECIFIED || declared == info->format);
        if (info->format == IMAGE_FORMAT_RAW) {
                CHECK(len < 4 || memcmp(img, "QFI\xfb", 4) != 0);
                CHECK(info->virtual_size == len);
                CHECK(info->qcow2_version == 0);
                return;
        }
        CHECK(len >= 72 && memcmp(img, "QFI\xfb", 4) == 0);
        CHECK(len >= (info->qcow2_version == 2 ? 72u : 104u));
        CHECK(info->qcow2_version == 2 || info->qcow2_version == 3);
        CHECK(info->qcow2_version == be32(img + 4));
        CHECK(be32(img + 8) == 0 && be32(img + 12) == 0); /* no backing file */
        CHECK(be32(img + 32) == 0);                       /* not encrypted */
        CHECK(info->cluster_bits >= 9 && info->cluster_bits <= 21);
        if (info->qcow2_version == 3) {
                CHECK(!(img[79] & 0x06));                       /* no data file, not corrupt */
                CHECK(be32(img + 72) == 0 && !(img[79] & 0xe0)); /* no unknown bits */
                CHECK(!(img[95] & 0x02));
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        enum image_format declared;
        struct image_info whole, streamed, viaread, sentinel;
        struct image_error err, err2, err3;
        const uint8_t *img;
        size_t len, have = 0, need = 0;
        struct mem m;
        int r, r2, r3;

        if (size < 1 || size > IMAGE_HEAD_MAX + 1)
                return 0;
        declared = (enum image_format)(data[0] % 3);
        img = data + 1;
        len = size - 1;
        memset(&sentinel, 0xa5, sizeof(sentinel));

        /* whole */
        whole = sentinel;
        memset(&err, 0, sizeof(err));
        r = image_inspect(img, len, len, declared, &whole, &need, &err);
        CHECK(r == 0 || r == -EINVAL); /* never -EAGAIN: it has every byte */
        if (r == 0) {
                accepted_is_safe(img, len, declared, &whole);
                CHECK(err.reason == IMAGE_OK);
        } else {
                CHECK(err.reason != IMAGE_OK && err.text[0] != '\0');
                CHECK(memchr(err.text, '\0', sizeof(err.text)) != NULL);
                CHECK(memcmp(&whole, &sentinel, sizeof(whole)) == 0);
        }

        /* streamed, size unknown: bytes as asked for; past the end, the same
         * call with the size known (the stream ended) */
        streamed = sentinel;
        for (;;) {
                memset(&err2, 0, sizeof(err2));
                r2 = image_inspect(img, have, IMAGE_SIZE_UNKNOWN, declared, &streamed, &need, &err2);
                if (r2 != -EAGAIN)
                        break;
                CHECK(need > have && need <= IMAGE_HEAD_MAX);
                if (need > len) {
                        r2 = image_inspect(img, len, len, declared, &streamed, &need, &err2);
                        break;
                }
                have = need;
        }
        CHECK(r2 == r);
        if (r == 0) {
                CHECK(streamed.format == whole.format && streamed.qcow2_version == whole.qcow2_version);
                CHECK(whole.format == IMAGE_FORMAT_RAW ? streamed.virtual_size == IMAGE_SIZE_UNKNOWN ||
                                                                 streamed.virtual_size == len
                                                       : streamed.virtual_size == whole.virtual_size);
        } else
                CHECK(err2.reason == err.reason);

        /* random access */
        m = (struct mem){ img, len };
        viaread = sentinel;
        memset(&err3, 0, sizeof(err3));
        r3 = image_inspect_read(mem_read, &m, len, declared, &viaread, &err3);
        CHECK(r3 == r);
        if (r == 0)
                CHECK(memcmp(&viaread, &whole, sizeof(whole)) == 0);
        else
                CHECK(err3.reason == err.reason && memcmp(&viaread, &sentinel, sizeof(viaread)) == 0);
        return 0;
}
