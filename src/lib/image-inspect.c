/* image-inspect.c - raw / qcow2 detection and the refusals of image-inspect.h.
 *
 * Facts used (qemu's docs/interop/qcow2.txt and block/ probes, libvirt's
 * virstoragefile probes):
 *   qcow2 header, big endian: magic "QFI\xfb" @0, version @4, backing_file_offset
 *   @8 (u64), backing_file_size @16, cluster_bits @20, size @24 (u64),
 *   crypt_method @32, ... v3: incompatible_features @72 (u64), compatible @80,
 *   autoclear @88, refcount_order @96, header_length @100, compression_type @104.
 *   Header extensions follow the header (v2: at 72, v3: at header_length), each
 *   {u32 type, u32 length, data padded to 8}, type 0 ends them, all inside the
 *   first cluster. */
#include <inttypes.h>
#include <stdarg.h>

#include "image-inspect.h"

#define QCOW_MAGIC "QFI\xfb"
#define QCOW2_V2_HEADER_LEN 72
#define QCOW2_V3_HEADER_MIN 104
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21

/* incompatible_features */
#define QCOW2_INCOMPAT_DIRTY (UINT64_C(1) << 0)
#define QCOW2_INCOMPAT_CORRUPT (UINT64_C(1) << 1)
#define QCOW2_INCOMPAT_DATA_FILE (UINT64_C(1) << 2)
#define QCOW2_INCOMPAT_COMPRESSION (UINT64_C(1) << 3)
#define QCOW2_INCOMPAT_EXTL2 (UINT64_C(1) << 4)
/* The bits we accept: lazy refcounts, a compression type field, extended L2. */
#define QCOW2_INCOMPAT_ALLOWED (QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_COMPRESSION | QCOW2_INCOMPAT_EXTL2)
/* autoclear_features */
#define QCOW2_AUTOCLEAR_DATA_FILE_RAW (UINT64_C(1) << 1)

/* header extension types */
#define QCOW2_EXT_END 0x00000000u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE 0x6803f857u
#define QCOW2_EXT_CRYPTO_HEADER 0x0537be77u
#define QCOW2_EXT_BITMAPS 0x23852875u
#define QCOW2_EXT_DATA_FILE 0x44415441u

static int refuse(struct image_error *e, enum image_refusal r, const char *fmt, ...) _printf_(3, 4);
static int refuse(struct image_error *e, enum image_refusal r, const char *fmt, ...)
{
        va_list ap;

        if (e) {
                e->reason = r;
                va_start(ap, fmt);
                (void)vsnprintf(e->text, sizeof(e->text), fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

static uint32_t be32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
        return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static uint32_t le32(const uint8_t *p)
{
        return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static bool has_bytes(const uint8_t *buf, size_t len, size_t off, const void *sig, size_t n)
{
        return off <= len && n <= len - off && memcmp(buf + off, sig, n) == 0;
}

/* One signature of a format we refuse. */
struct foreign_sig {
        const char *format;
        size_t offset;
        const char *bytes;
        size_t n;
};

#define SIG(fmt, off, lit) { fmt, off, lit, sizeof(lit) - 1 }
static const struct foreign_sig foreign_sigs[] = {
        SIG("QED", 0, "QED\0"),
        SIG("VMDK (sparse)", 0, "KDMV"),
        SIG("VMDK (COWD)", 0, "COWD"),
        SIG("VHD", 0, "conectix"),
        SIG("VHDX", 0, "vhdxfile"),
        SIG("LUKS", 0, "LUKS\xba\xbe"),
        SIG("cow", 0, "OOOM"),
        SIG("Bochs", 0, "Bochs Virtual HD Image"),
        SIG("cloop", 0, "#!/bin/sh\n#V2.0 Format\nmodprobe cloop"),
        SIG("Parallels", 0, "WithoutFreeSpace"),
        SIG("Parallels", 0, "WithouFreSpacExt"),
        SIG("VDI", 0, "<<< Oracle VM VirtualBox Disk Image >>>"),
        SIG("VDI", 0, "<<< Sun VirtualBox Disk Image >>>"),
        SIG("VDI", 0, "<<< Sun xVM VirtualBox Disk Image >>>"),
        SIG("VDI", 0, "<<< innotek VirtualBox Disk Image >>>"),
};

#define VDI_SIGNATURE_OFFSET 0x40
#define VDI_SIGNATURE 0xbeda107fu

/* A VMDK text descriptor, as qemu's vmdk probe and nova's inspector see one:
 * "# Disk DescriptorFile" at the start (after blanks), or, like qemu, any line
 * that is exactly "version=1|2|3" (comment lines skipped, leading blanks
 * ignored). */
static bool looks_like_vmdk_descriptor(const uint8_t *buf, size_t len)
{
        static const char marker[] = "# Disk DescriptorFile";
        size_t i = 0;

        while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
                i++;
        if (has_bytes(buf, len, i, marker, sizeof(marker) - 1))
                return true;

        for (i = 0; i < len;) {
                size_t eol = i;

                while (eol < len && buf[eol] != '\n')
                        eol++;
                if (buf[i] != '#') {
                        size_t p = i, n;

                        while (p < eol && buf[p] == ' ')
                                p++;
                        n = eol - p;
                        if (n > 0 && buf[eol - 1] == '\r')
                                n--;
                        if (eol < len && n == 9 && memcmp(buf + p, "version=", 8) == 0 &&
                            buf[p + 8] >= '1' && buf[p + 8] <= '3')
                                return true;
                }
                i = eol + 1;
        }
        return false;
}

/* The name of a format we refuse whose signature is in buf, or NULL. */
static const char *foreign_format(const uint8_t *buf, size_t len)
{
        for (size_t i = 0; i < ARRAY_SIZE(foreign_sigs); i++)
                if (has_bytes(buf, len, foreign_sigs[i].offset, foreign_sigs[i].bytes, foreign_sigs[i].n))
                        return foreign_sigs[i].format;
        if (len >= VDI_SIGNATURE_OFFSET + 4 && le32(buf + VDI_SIGNATURE_OFFSET) == VDI_SIGNATURE)
                return "VDI";
        if (looks_like_vmdk_descriptor(buf, len))
                return "VMDK (text descriptor)";
        return NULL;
}

const char *image_format_name(enum image_format f)
{
        switch (f) {
        case IMAGE_FORMAT_RAW:
                return "raw";
        case IMAGE_FORMAT_QCOW2:
                return "qcow2";
        case IMAGE_FORMAT_UNSPECIFIED:
                break;
        }
        return "unspecified";
}

int image_format_parse(const char *s, enum image_format *ret)
{
        if (!s)
                return -EINVAL;
        if (streq(s, "raw"))
                *ret = IMAGE_FORMAT_RAW;
        else if (streq(s, "qcow2"))
                *ret = IMAGE_FORMAT_QCOW2;
        else
                return -EINVAL;
        return 0;
}

const char *image_refusal_name(enum image_refusal r)
{
        static const char *const names[] = {
                [IMAGE_OK] = "ok",
                [IMAGE_REFUSE_TRUNCATED] = "truncated",
                [IMAGE_REFUSE_FOREIGN_FORMAT] = "foreign-format",
                [IMAGE_REFUSE_FORMAT_MISMATCH] = "format-mismatch",
                [IMAGE_REFUSE_QCOW_VERSION] = "qcow-version",
                [IMAGE_REFUSE_BACKING_FILE] = "backing-file",
                [IMAGE_REFUSE_DATA_FILE] = "data-file",
                [IMAGE_REFUSE_ENCRYPTED] = "encrypted",
                [IMAGE_REFUSE_UNKNOWN_FEATURE] = "unknown-feature",
                [IMAGE_REFUSE_CORRUPT] = "corrupt",
                [IMAGE_REFUSE_MALFORMED] = "malformed",
        };

        if ((size_t)r < ARRAY_SIZE(names) && names[r])
                return names[r];
        return "unknown";
}

static size_t min_size(uint64_t a, size_t b)
{
        return a < b ? (size_t)a : b;
}

/* How many bytes the caller must hand in: want, or the whole image if shorter. */
static bool need_more(size_t len, uint64_t image_size, size_t want, size_t *ret_need)
{
        size_t need = min_size(image_size, want);

        if (len >= need)
                return false;
        if (ret_need)
                *ret_need = need;
        return true;
}

/* The qcow2 header extensions in buf[start, end): refuse backing format, data
 * file and encryption extensions; refuse extensions that overrun. Bytes past
 * the image's end read as zero (an end marker), as qemu reads them. */
static int qcow2_check_extensions(const uint8_t *buf, size_t start, size_t end, size_t avail,
                                  struct image_error *err)
{
        size_t off = start;

        while (off < end) {
                uint32_t type, n;

                if (off + 8 > avail) /* zeros past the end of a short image */
                        return 0;
                if (end - off < 8)
                        return refuse(err, IMAGE_REFUSE_MALFORMED,
                                      "qcow2 header extension at %zu crosses the first cluster", off);
                type = be32(buf + off);
                n = be32(buf + off + 4);
                off += 8;
                if (n > end - off)
                        return refuse(err, IMAGE_REFUSE_MALFORMED,
                                      "qcow2 header extension 0x%08x of %" PRIu32 " bytes overruns the first cluster",
                                      type, n);
                switch (type) {
                case QCOW2_EXT_END:
                        return 0;
                case QCOW2_EXT_BACKING_FORMAT:
                        return refuse(err, IMAGE_REFUSE_BACKING_FILE,
                                      "qcow2 names a backing file format: images with a backing file are refused");
                case QCOW2_EXT_DATA_FILE:
                        return refuse(err, IMAGE_REFUSE_DATA_FILE,
                                      "qcow2 names an external data file: refused (CVE-2024-32498)");
                case QCOW2_EXT_CRYPTO_HEADER:
                        return refuse(err, IMAGE_REFUSE_ENCRYPTED, "qcow2 carries an encryption header: refused");
                default: /* feature table, bitmaps, unknown: qemu ignores or validates them */
                        break;
                }
                off += ((size_t)n + 7) & ~(size_t)7;
        }
        return 0;
}

/* The fields every qcow2 version has (the first 72 bytes, available): no backing file, no
 * encryption, a sane cluster size and virtual size. */
static int qcow2_check_common(const uint8_t *buf, uint32_t *ret_cluster_bits, uint64_t *ret_size,
                              struct image_error *err)
{
        uint64_t backing_offset = be64(buf + 8), size = be64(buf + 24);
        uint32_t cluster_bits = be32(buf + 20), crypt_method = be32(buf + 32);

        if (backing_offset != 0)
                return refuse(err, IMAGE_REFUSE_BACKING_FILE,
                              "qcow2 has a backing file: images with a backing file are refused");
        if (crypt_method != 0)
                return refuse(err, IMAGE_REFUSE_ENCRYPTED,
                              "qcow2 is encrypted (crypt_method %" PRIu32 "): refused", crypt_method);
        if (cluster_bits < QCOW2_MIN_CLUSTER_BITS || cluster_bits > QCOW2_MAX_CLUSTER_BITS)
                return refuse(err, IMAGE_REFUSE_MALFORMED, "qcow2 cluster_bits %" PRIu32 " out of range 9..21",
                              cluster_bits);
        if (size > (uint64_t)INT64_MAX)
                return refuse(err, IMAGE_REFUSE_MALFORMED, "qcow2 virtual size %" PRIu64 " out of range", size);
        *ret_cluster_bits = cluster_bits;
        *ret_size = size;
        return 0;
}

/* The version 3 header fields (QCOW2_V3_HEADER_MIN bytes available): no external data file,
 * not corrupt, no unknown incompatible feature, sane refcount order and header length. */
static int qcow2_check_v3(const uint8_t *buf, size_t cluster_size, uint64_t *ret_incompat,
                          uint32_t *ret_header_length, struct image_error *err)
{
        uint64_t incompat = be64(buf + 72), autoclear = be64(buf + 88);
        uint32_t refcount_order = be32(buf + 96), header_length = be32(buf + 100);

        if (incompat & QCOW2_INCOMPAT_DATA_FILE)
                return refuse(err, IMAGE_REFUSE_DATA_FILE,
                              "qcow2 uses an external data file (incompatible feature bit 2): refused (CVE-2024-32498)");
        if (autoclear & QCOW2_AUTOCLEAR_DATA_FILE_RAW)
                return refuse(err, IMAGE_REFUSE_DATA_FILE, "qcow2 sets the raw external data autoclear bit: refused");
        if (incompat & QCOW2_INCOMPAT_CORRUPT)
                return refuse(err, IMAGE_REFUSE_CORRUPT, "qcow2 is marked corrupt: refused");
        if (incompat & ~QCOW2_INCOMPAT_ALLOWED)
                return refuse(err, IMAGE_REFUSE_UNKNOWN_FEATURE,
                              "qcow2 has unknown incompatible feature bits 0x%" PRIx64 ": refused",
                              incompat & ~QCOW2_INCOMPAT_ALLOWED);
        if (refcount_order > 6)
                return refuse(err, IMAGE_REFUSE_MALFORMED, "qcow2 refcount_order %" PRIu32 " out of range",
                              refcount_order);
        if (header_length < QCOW2_V3_HEADER_MIN || header_length % 8 != 0 || header_length > cluster_size)
                return refuse(err, IMAGE_REFUSE_MALFORMED, "qcow2 header_length %" PRIu32 " out of range",
                              header_length);
        *ret_incompat = incompat;
        *ret_header_length = header_length;
        return 0;
}

static int inspect_qcow2(const uint8_t *buf, size_t len, uint64_t image_size, struct image_info *ret,
                         size_t *ret_need, struct image_error *err)
{
        uint32_t version, cluster_bits = 0, header_length = QCOW2_V2_HEADER_LEN;
        uint64_t size = 0, incompat = 0;
        size_t cluster_size, ext_start, avail;
        int r;

        if (need_more(len, image_size, QCOW2_V3_HEADER_MIN, ret_need))
                return -EAGAIN;
        avail = min_size(image_size, len);
        if (avail < 8)
                return refuse(err, IMAGE_REFUSE_TRUNCATED, "qcow2 image of %zu bytes: truncated header", avail);
        version = be32(buf + 4);
        if (version != 2 && version != 3)
                return refuse(err, IMAGE_REFUSE_QCOW_VERSION,
                              "qcow version %" PRIu32 ": only qcow2 versions 2 and 3 are accepted", version);
        if (avail < (version == 2 ? QCOW2_V2_HEADER_LEN : QCOW2_V3_HEADER_MIN))
                return refuse(err, IMAGE_REFUSE_TRUNCATED, "qcow2 image of %zu bytes: truncated header", avail);

        r = qcow2_check_common(buf, &cluster_bits, &size, err);
        if (r < 0)
                return r;
        cluster_size = (size_t)1 << cluster_bits;
        if (version == 3) {
                r = qcow2_check_v3(buf, cluster_size, &incompat, &header_length, err);
                if (r < 0)
                        return r;
        }

        /* The header and its extensions fill at most the first cluster. */
        if (need_more(len, image_size, cluster_size, ret_need))
                return -EAGAIN;
        avail = min_size(image_size, len);
        if (avail < header_length)
                return refuse(err, IMAGE_REFUSE_TRUNCATED, "qcow2 image of %zu bytes: truncated header", avail);

        if (version == 3) {
                uint8_t compression_type = header_length > 104 ? buf[104] : 0;

                if ((incompat & QCOW2_INCOMPAT_COMPRESSION) ? compression_type > 1 : compression_type != 0)
                        return refuse(err, IMAGE_REFUSE_MALFORMED, "qcow2 compression type %u not accepted",
                                      compression_type);
        }

        ext_start = version == 2 ? QCOW2_V2_HEADER_LEN : header_length;
        r = qcow2_check_extensions(buf, ext_start, cluster_size, avail, err);
        if (r < 0)
                return r;

        *ret = (struct image_info){
                .format = IMAGE_FORMAT_QCOW2,
                .qcow2_version = version,
                .virtual_size = size,
                .cluster_bits = cluster_bits,
        };
        return 0;
}

int image_inspect(const uint8_t *head, size_t len, uint64_t image_size, enum image_format declared,
                  struct image_info *ret, size_t *ret_need, struct image_error *ret_err)
{
        const char *foreign;
        size_t avail;

        if (!ret || (!head && len > 0))
                return -EINVAL;
        if (declared != IMAGE_FORMAT_UNSPECIFIED && declared != IMAGE_FORMAT_RAW && declared != IMAGE_FORMAT_QCOW2)
                return refuse(ret_err, IMAGE_REFUSE_FORMAT_MISMATCH, "only raw and qcow2 images are accepted");
        if (image_size == 0)
                return refuse(ret_err, IMAGE_REFUSE_TRUNCATED, "the image is empty");

        if (need_more(len, image_size, 4, ret_need))
                return -EAGAIN;
        avail = min_size(image_size, len);

        if (has_bytes(head, avail, 0, QCOW_MAGIC, 4)) {
                struct image_info info;
                int r;

                if (declared == IMAGE_FORMAT_RAW)
                        return refuse(ret_err, IMAGE_REFUSE_FORMAT_MISMATCH,
                                      "declared raw but the image starts with a qcow header: refused (CVE-2026-24708)");
                r = inspect_qcow2(head, len, image_size, &info, ret_need, ret_err);
                if (r < 0)
                        return r;
                *ret = info;
                return 0;
        }

        if (need_more(len, image_size, IMAGE_HEAD_MIN, ret_need))
                return -EAGAIN;
        avail = min_size(image_size, len);
        foreign = foreign_format(head, min_size(avail, IMAGE_HEAD_MIN));
        if (foreign)
                return refuse(ret_err, IMAGE_REFUSE_FOREIGN_FORMAT,
                              "the image is %s, not %s: only raw and qcow2 are accepted", foreign,
                              declared == IMAGE_FORMAT_UNSPECIFIED ? "raw or qcow2" : image_format_name(declared));
        if (declared == IMAGE_FORMAT_QCOW2)
                return refuse(ret_err, IMAGE_REFUSE_FORMAT_MISMATCH, "declared qcow2 but the image is raw");

        *ret = (struct image_info){
                .format = IMAGE_FORMAT_RAW,
                .virtual_size = image_size,
        };
        return 0;
}

int image_inspect_read(image_read_fn read, void *userdata, uint64_t image_size, enum image_format declared,
                       struct image_info *ret, struct image_error *ret_err)
{
        _cleanup_free_ uint8_t *buf = NULL;
        size_t have = 0, need = 0;

        if (!read || !ret)
                return -EINVAL;
        for (;;) {
                uint8_t *bigger;
                int r;

                r = image_inspect(buf, have, image_size, declared, ret, &need, ret_err);
                if (r != -EAGAIN)
                        return r;
                if (need > IMAGE_HEAD_MAX || need <= have)
                        return -EIO; /* image_inspect never asks for that */
                bigger = realloc(buf, need); /* grows as asked: 4 KiB for raw, a cluster for qcow2 */
                if (!bigger)
                        return -ENOMEM;
                buf = bigger;
                r = read(userdata, have, buf + have, need - have);
                if (r < 0)
                        return r;
                have = need;
        }
}
