/* image-inspect.h - decide from an image's first bytes what it is, and refuse
 * what must never reach libvirt or qemu-img.
 *
 * Image bytes are untrusted. Three host-file-disclosure CVEs of nova came from
 * letting qemu or libvirt interpret them (CVE-2022-47951: a VMDK whose
 * descriptor names a host file as a flat extent; CVE-2024-32498: a qcow2 with
 * an external data file; CVE-2026-24708: a qcow2 header written by a guest
 * into a raw disk, later probed as qcow2). The rules here:
 *
 *   - Only raw and qcow2 (version 2 or 3, unencrypted) are accepted.
 *   - qcow2: no backing file, no external data file (incompatible feature bit
 *     2, the data file name extension, the raw-external-data autoclear bit),
 *     no unknown incompatible feature bit, no image marked corrupt, no
 *     encryption (crypt_method or the encryption header extension), a sane
 *     cluster size and header length, header extensions inside the first
 *     cluster.
 *   - raw: no other format's signature at the start (qcow/qcow2, QED, VMDK
 *     sparse or text descriptor, VHD, VHDX, VDI, LUKS, cow, Bochs, cloop,
 *     Parallels): a "raw" image that a prober would read as something else
 *     is refused, whatever it claims.
 *   - a declared format must equal the detected one.
 *
 * Pure code: no I/O, no allocation. Callers hand in the image's first bytes
 * and learn how many are needed (streaming imports buffer at most
 * IMAGE_HEAD_MAX bytes before deciding). */
#ifndef NOVA_IMAGE_INSPECT_H
#define NOVA_IMAGE_INSPECT_H

#include "util.h"

/* Bytes every inspection looks at (more when the image is shorter is fine). */
#define IMAGE_HEAD_MIN 4096
/* Most bytes an inspection can ask for: the largest qcow2 cluster (2 MiB),
 * which holds the header and its extensions. */
#define IMAGE_HEAD_MAX (2u * 1024 * 1024)
/* The image's total size when the caller does not know it (a stream). */
#define IMAGE_SIZE_UNKNOWN UINT64_MAX

enum image_format {
        IMAGE_FORMAT_UNSPECIFIED = 0, /* declared: "detect it" (raw or qcow2 only) */
        IMAGE_FORMAT_RAW,
        IMAGE_FORMAT_QCOW2,
};

/* Why an image was refused; IMAGE_OK when it was not. */
enum image_refusal {
        IMAGE_OK = 0,
        IMAGE_REFUSE_TRUNCATED,        /* shorter than its own header says */
        IMAGE_REFUSE_FOREIGN_FORMAT,   /* another format's signature (VMDK, VHD, ...) */
        IMAGE_REFUSE_FORMAT_MISMATCH,  /* declared raw/qcow2, detected the other */
        IMAGE_REFUSE_QCOW_VERSION,     /* qcow2 version other than 2 or 3 */
        IMAGE_REFUSE_BACKING_FILE,     /* backing_file_offset != 0 or backing format extension */
        IMAGE_REFUSE_DATA_FILE,        /* external data file: bit, extension or autoclear bit */
        IMAGE_REFUSE_ENCRYPTED,        /* crypt_method != 0 or encryption header extension */
        IMAGE_REFUSE_UNKNOWN_FEATURE,  /* an incompatible feature bit we do not know */
        IMAGE_REFUSE_CORRUPT,          /* qcow2 corrupt bit set */
        IMAGE_REFUSE_MALFORMED,        /* header fields out of range, bad extension bounds */
};

/* What an accepted image is. */
struct image_info {
        enum image_format format;  /* RAW or QCOW2 */
        unsigned qcow2_version;    /* 2 or 3; 0 for raw */
        uint64_t virtual_size;     /* bytes the guest sees; raw: the image size, or
                                    * IMAGE_SIZE_UNKNOWN when the caller did not know it */
        unsigned cluster_bits;     /* qcow2 only */
};

/* A refusal: the reason and one line for people. */
struct image_error {
        enum image_refusal reason;
        char text[256];
};

/* Inspect the first len bytes of an image of image_size bytes (or
 * IMAGE_SIZE_UNKNOWN); declared is what the user said it is.
 *
 * Returns 0 and fills *ret; -EAGAIN with *ret_need set to the number of bytes
 * it must see (never more than IMAGE_HEAD_MAX, never more than image_size)
 * when len is too short to decide; -EINVAL with *ret_err filled when the
 * image is refused (ret untouched). ret_err may be NULL. */
int image_inspect(const uint8_t *head, size_t len, uint64_t image_size, enum image_format declared,
                  struct image_info *ret, size_t *ret_need, struct image_error *ret_err)
        _warn_unused_result_;

/* Random access variant: read(userdata, offset, buf, n) fills buf with n bytes
 * at offset and returns 0, or -errno (a short image must be stated through
 * image_size, not by a short read). Reads at most IMAGE_HEAD_MAX bytes, into a
 * buffer it grows as needed. Same results as image_inspect(), plus the reader's
 * -errno or -ENOMEM. */
typedef int (*image_read_fn)(void *userdata, uint64_t offset, void *buf, size_t n);
int image_inspect_read(image_read_fn read, void *userdata, uint64_t image_size, enum image_format declared,
                       struct image_info *ret, struct image_error *ret_err) _warn_unused_result_;

/* "raw", "qcow2" or "unspecified". */
const char *image_format_name(enum image_format f);
/* "raw" / "qcow2" -> the format. -EINVAL for anything else (including the
 * names of formats we refuse). */
int image_format_parse(const char *s, enum image_format *ret) _warn_unused_result_;
/* A short name for a refusal reason ("backing-file", ...). */
const char *image_refusal_name(enum image_refusal r);

#endif
