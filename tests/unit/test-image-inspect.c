/* test-image-inspect.c - unit tests for src/lib/image-inspect.c.
 *
 * Fixtures are made by the real qemu-img (qemu-utils) in a temporary
 * directory when the test starts, so they are what qemu writes today; where
 * qemu-img cannot or must not make a case (a data file named /etc/shadow would
 * make it create that file), the bytes of a qemu-made image are patched or the
 * case is built by hand, and the test says so. The three CVE cases:
 *   CVE-2022-47951  a VMDK descriptor with a FLAT extent naming /etc/shadow
 *   CVE-2024-32498  a qcow2 whose external data file is /etc/shadow
 *   CVE-2026-24708  a raw image into which a guest wrote a qcow2 header
 * and the probe: a qcow2 whose backing file names /etc/shadow. */
#include <check.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "image-inspect.h"

static char tmpdir[] = "/tmp/test-image-inspect.XXXXXX";

/* Run argv (a qemu-img command) in tmpdir once; its wait status. */
static int run_once(const char *const argv[])
{
        pid_t pid;
        int status;

        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

                if (null >= 0)
                        (void)dup2(null, STDOUT_FILENO);
                if (chdir(tmpdir) < 0)
                        _exit(127);
                execvp(argv[0], (char *const *)argv);
                _exit(127);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        return status;
}

/* Run argv in tmpdir; fail the test unless it exits 0. */
static void run(const char *const argv[])
{
        int status = run_once(argv);

        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s %s failed (status %d)", argv[0], argv[1],
                      status);
}

/* The same for a LUKS creation, tried up to 5 times: QEMU times PBKDF2 with
 * the thread's CPU clock to honour iter-time and gives up ("Unable to get
 * accurate CPU usage") when a round measured 0 ms, which this machine's
 * tick-based CPU accounting does now and then (2 of 12 plain `qemu-img
 * create` runs once). The image is our fixture, not what is tested. */
static void run_luks(const char *const argv[])
{
        int status = 0;

        for (int i = 0; i < 5; i++) {
                status = run_once(argv);
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                        return;
        }
        ck_abort_msg("%s %s failed 5 times (status %d)", argv[0], argv[1], status);
}

static char *path_of(const char *name)
{
        static char buf[256];

        ck_assert_int_eq(xsnprintf(buf, sizeof(buf), "%s/%s", tmpdir, name), 0);
        return buf;
}

/* A fixture: its first bytes (at most 4 MiB: qcow2 images are sparse and
 * only the first cluster matters) and its real size. */
struct blob {
        uint8_t *p;
        size_t len;   /* bytes in p */
        uint64_t size; /* the file's size */
};

#define LOAD_MAX (4u << 20)

static struct blob load(const char *name)
{
        struct blob b;
        struct stat st;
        ssize_t k;
        int fd;

        fd = open(path_of(name), O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fstat(fd, &st), 0);
        b.size = (uint64_t)st.st_size;
        b.len = b.size < LOAD_MAX ? (size_t)b.size : LOAD_MAX;
        b.p = malloc(b.len + 1);
        ck_assert_ptr_nonnull(b.p);
        k = pread(fd, b.p, b.len, 0);
        ck_assert_int_eq(k, (ssize_t)b.len);
        close(fd);
        return b;
}

/* Write a fixture: its bytes, then holes up to its size. */
static void store(const char *name, const struct blob *b)
{
        int fd = open(path_of(name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write_all(fd, b->p, b->len), 0);
        ck_assert_int_eq(ftruncate(fd, (off_t)(b->size > b->len ? b->size : b->len)), 0);
        close(fd);
}

static void put_be32(uint8_t *p, uint32_t v)
{
        p[0] = v >> 24;
        p[1] = v >> 16;
        p[2] = v >> 8;
        p[3] = v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
        put_be32(p, v >> 32);
        put_be32(p + 4, (uint32_t)v);
}

static uint32_t get_be32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
        uint64_t v = 0;

        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return v;
}

static void *memfind(const struct blob *b, const void *needle, size_t n)
{
        return memmem(b->p, b->len, needle, n);
}

/* Inspect a whole blob; returns the result, fills info and err. */
static int inspect(const struct blob *b, enum image_format declared, struct image_info *info, struct image_error *err)
{
        size_t need = 0;

        memset(err, 0, sizeof(*err));
        return image_inspect(b->p, b->len, b->size, declared, info, &need, err);
}

static void expect_refused(const char *name, enum image_format declared, enum image_refusal reason)
{
        struct blob b = load(name);
        struct image_info info, sentinel;
        struct image_error err;
        int r;

        memset(&sentinel, 0xa5, sizeof(sentinel));
        info = sentinel;
        r = inspect(&b, declared, &info, &err);
        ck_assert_msg(r == -EINVAL, "%s declared %s: got %d, want a refusal (%s)", name, image_format_name(declared),
                      r, image_refusal_name(reason));
        ck_assert_msg(err.reason == reason, "%s declared %s: refused as %s (%s), want %s", name,
                      image_format_name(declared), image_refusal_name(err.reason), err.text,
                      image_refusal_name(reason));
        ck_assert(err.text[0] != '\0');
        ck_assert(memcmp(&info, &sentinel, sizeof(info)) == 0); /* untouched */
        free(b.p);
}

static struct image_info expect_accepted(const char *name, enum image_format declared, enum image_format detected)
{
        struct blob b = load(name);
        struct image_info info;
        struct image_error err;
        int r;

        r = inspect(&b, declared, &info, &err);
        ck_assert_msg(r == 0, "%s declared %s: refused (%d) as %s: %s", name, image_format_name(declared), r,
                      image_refusal_name(err.reason), err.text);
        ck_assert_int_eq(info.format, detected);
        free(b.p);
        return info;
}

/* ---- accepted images ---- */

START_TEST(test_qcow2_v3_accepted)
{
        struct image_info info;

        run((const char *const[]){ "qemu-img", "create", "-q", "-f", "qcow2", "v3.qcow2", "3G", NULL });
        info = expect_accepted("v3.qcow2", IMAGE_FORMAT_QCOW2, IMAGE_FORMAT_QCOW2);
        ck_assert_uint_eq(info.qcow2_version, 3);
        ck_assert_uint_eq(info.virtual_size, UINT64_C(3) << 30);
        ck_assert_uint_eq(info.cluster_bits, 16);
        info = expect_accepted("v3.qcow2", IMAGE_FORMAT_UNSPECIFIED, IMAGE_FORMAT_QCOW2);
        ck_assert_uint_eq(info.virtual_size, UINT64_C(3) << 30);
}
END_TEST

START_TEST(test_qcow2_v2_accepted)
{
        struct image_info info;

        run((const char *const[]){ "qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "v2.qcow2", "1M",
                                   NULL });
        info = expect_accepted("v2.qcow2", IMAGE_FORMAT_QCOW2, IMAGE_FORMAT_QCOW2);
        ck_assert_uint_eq(info.qcow2_version, 2);
        ck_assert_uint_eq(info.virtual_size, 1u << 20);
}
END_TEST

START_TEST(test_qcow2_features_accepted)
{
        struct image_info info;

        /* a 2 MiB cluster (the largest), lazy refcounts, extended L2, zstd */
        run((const char *const[]){ "qemu-img", "create", "-q", "-f", "qcow2", "-o",
                                   "cluster_size=2M,lazy_refcounts=on,extended_l2=on,compression_type=zstd", "f.qcow2",
                                   "10G", NULL });
        info = expect_accepted("f.qcow2", IMAGE_FORMAT_QCOW2, IMAGE_FORMAT_QCOW2);
        ck_assert_uint_eq(info.cluster_bits, 21);
        ck_assert_uint_eq(info.virtual_size, UINT64_C(10) << 30);
        /* a dirty image (lazy refcounts in use) is still ours to take */
        {
                struct blob b = load("f.qcow2");

                b.p[79] |= 1;
                store("dirty.qcow2", &b);
                free(b.p);
        }
        expect_accepted("dirty.qcow2", IMAGE_FORMAT_QCOW2, IMAGE_FORMAT_QCOW2);
}
END_TEST

START_TEST(test_raw_accepted)
{
        struct image_info info;
        struct blob b;

        run((const char *const[]){ "qemu-img", "create", "-q", "-f", "raw", "r.raw", "1M", NULL });
        info = expect_accepted("r.raw", IMAGE_FORMAT_RAW, IMAGE_FORMAT_RAW);
        ck_assert_uint_eq(info.virtual_size, 1u << 20);
        ck_assert_uint_eq(info.qcow2_version, 0);
        expect_accepted("r.raw", IMAGE_FORMAT_UNSPECIFIED, IMAGE_FORMAT_RAW);

        /* an MBR boot sector with text in it is still raw */
        b = load("r.raw");
        memcpy(b.p + 3, "SYSLINUX", 8);
        memcpy(b.p + 100, "Missing operating system.\r\nversion=1 is not alone on its line\n", 63);
        b.p[510] = 0x55;
        b.p[511] = 0xaa;
        store("mbr.raw", &b);
        free(b.p);
        expect_accepted("mbr.raw", IMAGE_FORMAT_RAW, IMAGE_FORMAT_RAW);
}
END_TEST

/* ---- the probes and the CVEs ---- */

START_TEST(test_backing_file_shadow_refused)
{
        struct blob b;

        /* -u: qemu-img does not open the backing file; it only records its name. */
        run((const char *const[]){ "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "/etc/shadow", "-F", "raw",
                                   "backing.qcow2", "1M", NULL });
        b = load("backing.qcow2");
        ck_assert_ptr_nonnull(memfind(&b, "/etc/shadow", 11)); /* the fixture is what it claims */
        ck_assert_uint_ne(get_be64(b.p + 8), 0);
        free(b.p);
        expect_refused("backing.qcow2", IMAGE_FORMAT_QCOW2, IMAGE_REFUSE_BACKING_FILE);
        expect_refused("backing.qcow2", IMAGE_FORMAT_UNSPECIFIED, IMAGE_REFUSE_BACKING_FILE);
        expect_refused("backing.qcow2", IMAGE_FORMAT_RAW, IMAGE_REFUSE_FORMAT_MISMATCH);

        /* v2 too, and a backing format extension with the offset cleared */
        run((const char *const[]){ "qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-u", "-b",
                                   "/etc/shadow", "-F", "raw", "backing2.qcow2", "1M", NULL });
        expect_refused("backing2.qcow2", IMAGE_FORMAT_QCOW2, IMAGE_REFUSE_BACKING_FILE);
        /* the offset alone: the backing format extension renamed to an unknown type */
        b = load("backing.qcow2");
        {
                static const uint8_t fmt_ext[4] = { 0xe2, 0x79, 0x2a, 0xca };
                uint8_t *ext = memfind(&b, fmt_ext, 4);

                ck_assert_ptr_nonnull(ext);
                put_be32(ext, 0x12345678);
        }
        store("backing-offset-only.qcow2", &b);
        free(b.p);
        expect_refused("backing-offset-only.qcow2", IMAGE_FORMAT_QCOW2, IMAGE_REFUSE_BACKING_FILE);
        b = load("backing.qcow2");
        put_be64(b.p + 8, 0);
        store("backing-fmt-only.qcow2", &b);
        free(b.p);
        expect_refused("backing-fmt-only.qcow2", IMAGE_FORMAT_QCOW2, IMAGE_REFUSE_BACKING_FILE);
}
END_TEST

START_TEST(test_data_file_shadow_refused)
{
        struct blob b;
        uint8_t *name;

        /* CVE-2024-32498. qemu-img would create (truncate!) the data file it is
         * given, so it makes one named "xxxxxxxxxxx" in the temporary
         * directory and the 11 bytes are then replaced by "/etc/shadow". */
        run((const char *const[]){ "qemu-img", "create", "-q", "-f", "qcow2", "-o", "data_file=xxxxxxxxxxx",
                                   "data.qcow2", "1M", NULL });
        b = load("data.qcow2");
        name = memfind(&b, "xxxxxxxxxxx", 11);
        ck_assert_ptr_nonnull(name);
        memcpy(name, "/etc/shadow", 11);
        ck_assert_uint_eq(b.p[79] & 4, 4); /* qemu set incompatible bit 2 */
        store("data-shadow.qcow2", &b);

        expect_refused("data-shadow.qcow2", IMAGE_FORMAT_QCOW2, IMAGE_REFUSE_DATA_FILE);
        expect_refused("data-shadow.qcow2", IMAGE_FORMAT_UNSPECIFIED, IMAGE_REFUSE_DATA_FILE);
        expect_refused("data-shadow.qcow2", IMAGE_FORMAT_RAW, IMAGE_REFUSE_FORMAT_MISMATCH);

        /* the extension alone (bit cleared) is refused */
        b.p[79] &= (uint8_t)~4;
        store("data-ext-only.qcow2", &b);
        expect_refused("data-ext-only.qcow2", IMAGE_FORMAT_QCOW2, IMAGE_REFUSE_DATA_FILE);

        /* the bit alone (extension renamed to an unknown type) is refused */
        b.p[79] |= 4;
        {
                uint8_t *ext = memfind(&b, "DATA", 4);

                ck_assert_ptr_nonnull(ext);
                memcpy(ext, "XATA", 4);
        }
        store("data-bit-only.qcow2", &b);
        expect_refused("data-bit-only.qcow2", IMAGE_FORMAT_QCOW2, IMAGE_REFUSE_DATA_FILE);

        /* data_file_raw (autoclear bit 1) */
        b.p[79] &= (uint8_t)~4;
        b.p[95] |= 2;
        store("data-raw-bit.qcow2", &b);
        expect_refused("data-raw-bit.qcow2", IMAGE_FORMAT_QCOW2, IMAGE_REFUSE_DATA_FILE);
        free(b.p);
}
END_TEST

START_TEST(test_vmdk_flat_descriptor_refused)
{
        /* CVE-2022-47951: a text descriptor whose FLAT extent is a host file,
         * uploaded as "raw" (built by hand: it is what an attacker writes). */
        static const char descriptor[] = "# Disk DescriptorFile\n"
                                         "version=1\n"
                                         "CID=fffffffe\n"
                                         "parentCID=ffffffff\n"
                                         "createType=\"monolithicFlat\"\n"
                                         "\n"
                                         "# Extent description\n"
                                         "RW 4096 FLAT \"/etc/shadow\" 0\n";
        struct blob b = { (uint8_t *)(uintptr_t)descriptor, sizeof(descriptor) - 1, sizeof(descriptor) - 1 };
        struct blob nomarker;

        store("flat.vmdk", &b);
        expect_refused("flat.vmdk", IMAGE_FORMAT_RAW, IMAGE_REFUSE_FOREIGN_FORMAT);
        expect_refused("flat.vmdk", IMAGE_FORMAT_UNSPECIFIED, IMAGE_REFUSE_FOREIGN_FORMAT);
        expect_refused("flat.vmdk", IMAGE_FORMAT_QCOW2, IMAGE_REFUSE_FOREIGN_FORMAT);

        /* without the marker line qemu still probes it as VMDK (version=1) */
        nomarker.p = (uint8_t *)(uintptr_t)strchr(descriptor, '\n') + 1;
        nomarker.len = nomarker.size = strlen((const char *)nomarker.p);
        store("flat-nomarker.vmdk", &nomarker);
        expect_refused("flat-nomarker.vmdk", IMAGE_FORMAT_RAW, IMAGE_REFUSE_FOREIGN_FORMAT);

        /* the descriptor qemu-img itself writes for a flat VMDK */
        run((const char *const[]){ "qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat",
                                   "qflat.vmdk", "1M", NULL });
        expect_refused("qflat.vmdk", IMAGE_FORMAT_RAW, IMAGE_REFUSE_FOREIGN_FORMAT);
        /* and a sparse one ("KDMV") */
        run((const char *const[]){ "qemu-img", "create", "-q", "-f", "vmdk", "sparse.vmdk", "1M", NULL });
        expect_refused("sparse.vmdk", IMAGE_FORMAT_RAW, IMAGE_REFUSE_FOREIGN_FORMAT);
}
END_TEST

START_TEST(test_guest_written_qcow2_header_refused)
{
        /* CVE-2026-24708: a guest writes a qcow2 header (backing file
         * /etc/shadow) into the first bytes of its raw disk, which is then
         * imported (snapshot, resize) as raw. */
        struct blob hdr, disk;

        run((const char *const[]){ "qemu-img", "create", "-q", "-f", "raw", "guest.raw", "2M", NULL });
        run((const char *const[]){ "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "/etc/shadow", "-F", "raw",
                                   "hdr.qcow2", "1G", NULL });
        hdr = load("hdr.qcow2");
        disk = load("guest.raw");
        ck_assert_uint_le(hdr.len, disk.len);
        memcpy(disk.p, hdr.p, hdr.len);
        store("guest-wrote-qcow2.raw", &disk);
        expect_refused("guest-wrote-qcow2.raw", IMAGE_FORMAT_RAW, IMAGE_REFUSE_FORMAT_MISMATCH);
        /* also with a clean qcow2 header: a raw volume never carries one */
        run((const char *const[]){ "qemu-img", "create", "-q", "-f", "qcow2", "clean.qcow2", "1G", NULL });
        free(hdr.p);
        hdr = load("clean.qcow2");
        memcpy(disk.p, hdr.p, hdr.len);
        store("guest-wrote-clean.raw", &disk);
        expect_refused("guest-wrote-clean.raw", IMAGE_FORMAT_RAW, IMAGE_REFUSE_FORMAT_MISMATCH);
        free(hdr.p);
        free(disk.p);
}
END_TEST

START_TEST(test_foreign_formats_refused)
{
        static const char *const fmts[] = { "vpc", "vhdx", "vdi", "qed", "parallels", "qcow" };

        for (size_t i = 0; i < ARRAY_SIZE(fmts); i++) {
                char name[32];

                ck_assert_int_eq(xsnprintf(name, sizeof(name), "img.%s", fmts[i]), 0);
                run((const char *const[]){ "qemu-img", "create", "-q", "-f", fmts[i], name, "1M", NULL });
                if (streq(fmts[i], "qcow")) { /* same magic as qcow2, version 1 */
                        expect_refused(name, IMAGE_FORMAT_QCOW2, IMAGE_REFUSE_QCOW_VERSION);
                        expect_refused(name, IMAGE_FORMAT_RAW, IMAGE_REFUSE_FORMAT_MISMATCH);
                        continue;
                }
                expect_refused(name, IMAGE_FORMAT_RAW, IMAGE_REFUSE_FOREIGN_FORMAT);
                expect_refused(name, IMAGE_FORMAT_UNSPECIFIED, IMAGE_REFUSE_FOREIGN_FORMAT);
                expect_refused(name, IMAGE_FORMAT_QCOW2, IMAGE_REFUSE_FOREIGN_FORMAT);
        }
}
END_TEST

START_TEST(test_hand_built_foreign_refused)
{
        /* Signatures qemu-img cannot create here (read-only formats). */
        static const struct {
                const char *bytes;
                size_t n, off;
        } cases[] = {
                { "OOOM\0\0\0\2", 8, 0 },
                { "LUKS\xba\xbe\0\1", 8, 0 }, /* qemu-img's LUKS needs a timed PBKDF run: flaky here */
                { "Bochs Virtual HD Image", 22, 0 },
                { "#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0", 45, 0 },
                { "\x7f\x10\xda\xbe", 4, 0x40 }, /* VDI signature, little endian */
                { "  \n# Disk DescriptorFile", 24, 0 },
                { "# comment\n  version=2\r\n", 23, 0 },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                uint8_t buf[8192] = { 0 };
                struct blob b = { buf, sizeof(buf), sizeof(buf) };

                memcpy(buf + cases[i].off, cases[i].bytes, cases[i].n);
                store("hand.img", &b);
                expect_refused("hand.img", IMAGE_FORMAT_RAW, IMAGE_REFUSE_FOREIGN_FORMAT);
        }
}
END_TEST

START_TEST(test_encrypted_refused)
{
        struct blob b;

        run_luks((const char *const[]){ "qemu-img", "create", "-q", "--object", "secret,id=s0,data=nova", "-f", "qcow2",
                                   "-o", "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=100", "enc.qcow2",
                                   "1M", NULL });
        expect_refused("enc.qcow2", IMAGE_FORMAT_QCOW2, IMAGE_REFUSE_ENCRYPTED);
        /* the encryption header extension alone (crypt_method cleared) */
        b = load("enc.qcow2");
        put_be32(b.p + 32, 0);
        store("enc-ext.qcow2", &b);
        free(b.p);
        expect_refused("enc-ext.qcow2", IMAGE_FORMAT_QCOW2, IMAGE_REFUSE_ENCRYPTED);
}
END_TEST

START_TEST(test_header_fields_refused)
{
        struct blob b;

        run((const char *const[]){ "qemu-img", "create", "-q", "-f", "qcow2", "base.qcow2", "1M", NULL });
#define MUTATE(name, stmt, reason)                                           \
        do {                                                                 \
                b = load("base.qcow2");                                      \
                stmt;                                                        \
                store(name, &b);                                             \
                free(b.p);                                                   \
                expect_refused(name, IMAGE_FORMAT_QCOW2, reason);            \
        } while (0)
        MUTATE("unknown5.qcow2", b.p[79] |= 0x20, IMAGE_REFUSE_UNKNOWN_FEATURE);
        MUTATE("unknown63.qcow2", b.p[72] |= 0x80, IMAGE_REFUSE_UNKNOWN_FEATURE);
        MUTATE("corrupt.qcow2", b.p[79] |= 0x02, IMAGE_REFUSE_CORRUPT);
        MUTATE("v1.qcow2", put_be32(b.p + 4, 1), IMAGE_REFUSE_QCOW_VERSION);
        MUTATE("v4.qcow2", put_be32(b.p + 4, 4), IMAGE_REFUSE_QCOW_VERSION);
        MUTATE("aes.qcow2", put_be32(b.p + 32, 1), IMAGE_REFUSE_ENCRYPTED);
        MUTATE("cb8.qcow2", put_be32(b.p + 20, 8), IMAGE_REFUSE_MALFORMED);
        MUTATE("cb22.qcow2", put_be32(b.p + 20, 22), IMAGE_REFUSE_MALFORMED);
        MUTATE("hlen.qcow2", put_be32(b.p + 100, 96), IMAGE_REFUSE_MALFORMED);
        MUTATE("hlen-odd.qcow2", put_be32(b.p + 100, 113), IMAGE_REFUSE_MALFORMED);
        MUTATE("hlen-big.qcow2", put_be32(b.p + 100, 70000), IMAGE_REFUSE_MALFORMED);
        MUTATE("refcount.qcow2", put_be32(b.p + 96, 7), IMAGE_REFUSE_MALFORMED);
        MUTATE("size.qcow2", put_be64(b.p + 24, UINT64_MAX), IMAGE_REFUSE_MALFORMED);
        MUTATE("compr.qcow2", (b.p[79] |= 0x08, b.p[104] = 2), IMAGE_REFUSE_MALFORMED);
        MUTATE("compr-nobit.qcow2", b.p[104] = 1, IMAGE_REFUSE_MALFORMED);
        /* an extension whose length runs past the first cluster */
        MUTATE("ext-overrun.qcow2", put_be32(b.p + get_be32(b.p + 100) + 4, 65536), IMAGE_REFUSE_MALFORMED);
#undef MUTATE
        /* truncated: a v3 header cut inside itself, and a lone magic */
        b = load("base.qcow2");
        b.len = b.size = 90;
        store("short.qcow2", &b);
        b.len = b.size = 4;
        store("magic.qcow2", &b);
        free(b.p);
        expect_refused("short.qcow2", IMAGE_FORMAT_QCOW2, IMAGE_REFUSE_TRUNCATED);
        expect_refused("magic.qcow2", IMAGE_FORMAT_QCOW2, IMAGE_REFUSE_TRUNCATED);
}
END_TEST

START_TEST(test_declared_mismatch_refused)
{
        run((const char *const[]){ "qemu-img", "create", "-q", "-f", "raw", "m.raw", "1M", NULL });
        run((const char *const[]){ "qemu-img", "create", "-q", "-f", "qcow2", "m.qcow2", "1M", NULL });
        expect_refused("m.raw", IMAGE_FORMAT_QCOW2, IMAGE_REFUSE_FORMAT_MISMATCH);
        expect_refused("m.qcow2", IMAGE_FORMAT_RAW, IMAGE_REFUSE_FORMAT_MISMATCH);
        expect_refused("m.raw", (enum image_format)7, IMAGE_REFUSE_FORMAT_MISMATCH);
}
END_TEST

/* ---- streaming: the caller learns how much to buffer ---- */

START_TEST(test_need_more)
{
        struct blob b;
        struct image_info info;
        struct image_error err;
        size_t need = 0;

        run((const char *const[]){ "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512K", "n.qcow2",
                                   "1M", NULL });
        b = load("n.qcow2");
        /* nothing yet: 4 bytes for the magic */
        ck_assert_int_eq(image_inspect(b.p, 0, IMAGE_SIZE_UNKNOWN, IMAGE_FORMAT_QCOW2, &info, &need, &err), -EAGAIN);
        ck_assert_uint_eq(need, 4);
        /* the magic: then the v3 header */
        ck_assert_int_eq(image_inspect(b.p, 4, IMAGE_SIZE_UNKNOWN, IMAGE_FORMAT_QCOW2, &info, &need, &err), -EAGAIN);
        ck_assert_uint_eq(need, 104);
        /* the header: then the whole first cluster (the extensions live there) */
        ck_assert_int_eq(image_inspect(b.p, 104, IMAGE_SIZE_UNKNOWN, IMAGE_FORMAT_QCOW2, &info, &need, &err),
                         -EAGAIN);
        ck_assert_uint_eq(need, 512 * 1024);
        ck_assert_int_eq(image_inspect(b.p, need, IMAGE_SIZE_UNKNOWN, IMAGE_FORMAT_QCOW2, &info, &need, &err), 0);
        ck_assert_uint_eq(info.virtual_size, 1u << 20);
        free(b.p);

        /* raw of unknown size: IMAGE_HEAD_MIN bytes, size unknown */
        b = (struct blob){ calloc(1, IMAGE_HEAD_MIN), IMAGE_HEAD_MIN, IMAGE_HEAD_MIN };
        ck_assert_ptr_nonnull(b.p);
        ck_assert_int_eq(image_inspect(b.p, 4, IMAGE_SIZE_UNKNOWN, IMAGE_FORMAT_RAW, &info, &need, &err), -EAGAIN);
        ck_assert_uint_eq(need, IMAGE_HEAD_MIN);
        ck_assert_int_eq(image_inspect(b.p, IMAGE_HEAD_MIN, IMAGE_SIZE_UNKNOWN, IMAGE_FORMAT_RAW, &info, &need, &err),
                         0);
        ck_assert_uint_eq(info.virtual_size, IMAGE_SIZE_UNKNOWN);
        /* a tiny raw image needs only its own bytes */
        ck_assert_int_eq(image_inspect(b.p, 100, 100, IMAGE_FORMAT_RAW, &info, &need, &err), 0);
        ck_assert_uint_eq(info.virtual_size, 100);
        ck_assert_int_eq(image_inspect(b.p, 0, 0, IMAGE_FORMAT_RAW, &info, &need, &err), -EINVAL);
        ck_assert_int_eq(err.reason, IMAGE_REFUSE_TRUNCATED);
        free(b.p);
}
END_TEST

struct file_reader {
        int fd;
        unsigned reads;
        uint64_t furthest;
};

static int read_at(void *userdata, uint64_t offset, void *buf, size_t n)
{
        struct file_reader *fr = userdata;
        ssize_t k = pread(fr->fd, buf, n, (off_t)offset);

        fr->reads++;
        if (offset + n > fr->furthest)
                fr->furthest = offset + n;
        if (k < 0)
                return -errno;
        if ((size_t)k != n)
                memset((uint8_t *)buf + k, 0, n - (size_t)k); /* sparse tail */
        return 0;
}

START_TEST(test_inspect_read)
{
        struct file_reader fr = { .fd = -1 };
        struct image_info info;
        struct image_error err;
        struct stat st;

        run((const char *const[]){ "qemu-img", "create", "-q", "-f", "qcow2", "rd.qcow2", "5G", NULL });
        fr.fd = open(path_of("rd.qcow2"), O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fr.fd, 0);
        ck_assert_int_eq(fstat(fr.fd, &st), 0);
        ck_assert_int_eq(image_inspect_read(read_at, &fr, (uint64_t)st.st_size, IMAGE_FORMAT_QCOW2, &info, &err), 0);
        ck_assert_uint_eq(info.virtual_size, UINT64_C(5) << 30);
        ck_assert_uint_le(fr.furthest, 65536); /* only the first cluster */
        close(fr.fd);

        run((const char *const[]){ "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "/etc/shadow", "-F", "raw",
                                   "rdb.qcow2", "1M", NULL });
        fr = (struct file_reader){ .fd = open(path_of("rdb.qcow2"), O_RDONLY | O_CLOEXEC) };
        ck_assert_int_ge(fr.fd, 0);
        ck_assert_int_eq(fstat(fr.fd, &st), 0);
        ck_assert_int_eq(image_inspect_read(read_at, &fr, (uint64_t)st.st_size, IMAGE_FORMAT_QCOW2, &info, &err),
                         -EINVAL);
        ck_assert_int_eq(err.reason, IMAGE_REFUSE_BACKING_FILE);
        close(fr.fd);
}
END_TEST

START_TEST(test_format_names)
{
        enum image_format f = IMAGE_FORMAT_UNSPECIFIED;

        ck_assert_int_eq(image_format_parse("raw", &f), 0);
        ck_assert_int_eq(f, IMAGE_FORMAT_RAW);
        ck_assert_int_eq(image_format_parse("qcow2", &f), 0);
        ck_assert_int_eq(f, IMAGE_FORMAT_QCOW2);
        ck_assert_int_eq(image_format_parse("vmdk", &f), -EINVAL);
        ck_assert_int_eq(image_format_parse("QCOW2", &f), -EINVAL);
        ck_assert_int_eq(image_format_parse("", &f), -EINVAL);
        ck_assert_int_eq(f, IMAGE_FORMAT_QCOW2);
        ck_assert_str_eq(image_format_name(IMAGE_FORMAT_RAW), "raw");
        ck_assert_str_eq(image_refusal_name(IMAGE_REFUSE_DATA_FILE), "data-file");
}
END_TEST

static Suite *image_inspect_suite(void)
{
        Suite *s = suite_create("image-inspect");
        TCase *tc;

        tc = tcase_create("accepted");
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_qcow2_v3_accepted);
        tcase_add_test(tc, test_qcow2_v2_accepted);
        tcase_add_test(tc, test_qcow2_features_accepted);
        tcase_add_test(tc, test_raw_accepted);
        suite_add_tcase(s, tc);

        tc = tcase_create("cve");
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_backing_file_shadow_refused);
        tcase_add_test(tc, test_data_file_shadow_refused);
        tcase_add_test(tc, test_vmdk_flat_descriptor_refused);
        tcase_add_test(tc, test_guest_written_qcow2_header_refused);
        suite_add_tcase(s, tc);

        tc = tcase_create("refused");
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_foreign_formats_refused);
        tcase_add_test(tc, test_hand_built_foreign_refused);
        tcase_add_test(tc, test_encrypted_refused);
        tcase_add_test(tc, test_header_fields_refused);
        tcase_add_test(tc, test_declared_mismatch_refused);
        suite_add_tcase(s, tc);

        tc = tcase_create("streaming");
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_need_more);
        tcase_add_test(tc, test_inspect_read);
        tcase_add_test(tc, test_format_names);
        suite_add_tcase(s, tc);
        return s;
}

static int rm_rf(const char *dir)
{
        pid_t pid = fork();
        int status;

        if (pid < 0)
                return -errno;
        if (pid == 0) {
                execlp("rm", "rm", "-rf", "--", dir, (char *)NULL);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) != pid)
                return -errno;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

int main(void)
{
        SRunner *sr;
        int failed;

        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return EXIT_FAILURE;
        }
        sr = srunner_create(image_inspect_suite());
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        (void)rm_rf(tmpdir);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
