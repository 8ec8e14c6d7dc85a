/* test-guest-boot.c - a real guest on a private libvirtd (QEMU, software
 * emulation) with the disks the libvirt module will make, through libvirt's
 * C API only:
 *   - a dir pool in a temporary directory;
 *   - the test guest's raw disk (scripts/guest/build-test-guest.sh), inspected
 *     by our image inspector, then uploaded into a raw volume by a stream;
 *   - a qcow2 overlay volume on it, with <backingStore> and explicit formats;
 *   - a config drive made by our writer (config-drive.c), uploaded as a raw
 *     volume;
 *   - a domain made by the libvirt module's generator (domain-xml.c):
 *     <disk type='file'>, explicit <driver type=...> and the full
 *     <backingStore> chain, the config drive as an IDE CD-ROM (as nova), a
 *     <serial> with <log file=...>, and an ethernet interface on a tap in
 *     this test's network namespace.
 * It boots from disk (SeaBIOS -> syslinux), the guest prints the uuid and the
 * address it read from its config drive, answers ping and TCP over the tap;
 * after a hard stop and a start its disk marker has counted two boots; all
 * volumes, the pool and the domain are deleted. Direct kernel boot (kernel +
 * initrd + cmdline, no root disk) is checked too.
 *
 * Everything runs for real: libvirtd by scripts/libvirtd-private.sh (own
 * sockets, run/state/cache/log dirs, host_uuid, its own mount namespace),
 * qemu-system-x86_64 with TCG. The guest is built once and cached outside
 * the tree. Prints the boot-to-console-line times it measured. */
#include "harness.h"

#include "config-drive.h"
#include "domain-xml.h"
#include "image-inspect.h"
#include "names.h"

#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

/* Each test has its own subnet: a tap left behind by a failed test must not
 * route the next test's packets. */
struct net {
        const char *guest_ip, *host_ip, *subnet;
        unsigned mtu; /* on the config drive; the guest must apply it */
};
static const struct net net_disk = { "10.0.0.5", "10.0.0.1", "10.0.0.0/24", 1442 };
static const struct net net_kernel = { "10.0.1.5", "10.0.1.1", "10.0.1.0/24", 1400 };
#define BOOT_TIMEOUT_MS 240000

static char tmpdir[] = "/tmp/test-guest-boot.XXXXXX";
static char guest_dir[PATH_MAX];   /* the cached guest: vmlinuz, initrd.gz, disk.raw, cmdline */
static char libvirtd_dir[PATH_MAX];
static char uri[PATH_MAX + 64];
static char pool_dir[PATH_MAX];

/* ---- setup: the guest, libvirtd, the tap ---- */

/* Errors go to the test's assertions, not to stderr twice. */
static void quiet_errors(void *userdata, virErrorPtr err)
{
        (void)userdata;
        (void)err;
}

static virConnectPtr connect_libvirtd(void)
{
        virConnectPtr conn = virConnectOpen(uri);

        ck_assert_msg(conn != NULL, "cannot connect to %s: %s", uri, virGetLastErrorMessage());
        return conn;
}

static void tap_setup(const char *tap, const struct net *net)
{
        ck_assert_int_eq(sh("ip tuntap add dev %s mode tap && ip addr add %s/24 dev %s && ip link set %s up", tap,
                            net->host_ip, tap, tap),
                         0);
}

/* ---- volumes ---- */

struct upload_src {
        int fd;            /* a file, or -1 */
        const uint8_t *p;  /* or bytes in memory */
        size_t len, off;
};

static int upload_read(virStreamPtr st, char *data, size_t nbytes, void *opaque)
{
        struct upload_src *s = opaque;
        ssize_t k;

        (void)st;
        if (s->fd >= 0) {
                k = read(s->fd, data, nbytes);
                return (int)(k < 0 ? -1 : k);
        }
        if (nbytes > s->len - s->off)
                nbytes = s->len - s->off;
        memcpy(data, s->p + s->off, nbytes);
        s->off += nbytes;
        return (int)nbytes;
}

/* A raw volume of exactly len bytes, filled through a libvirt stream. */
static virStorageVolPtr upload_volume(virConnectPtr conn, virStoragePoolPtr pool, const char *name,
                                      struct upload_src *src, uint64_t len)
{
        char xml[1024];
        virStorageVolPtr vol;
        virStreamPtr st;

        ck_assert_int_eq(xsnprintf(xml, sizeof(xml),
                                   "<volume><name>%s</name><capacity unit='bytes'>%" PRIu64 "</capacity>"
                                   "<allocation>0</allocation><target><format type='raw'/></target></volume>",
                                   name, len),
                         0);
        vol = virStorageVolCreateXML(pool, xml, 0);
        ck_assert_msg(vol != NULL, "create %s: %s", name, virGetLastErrorMessage());
        st = virStreamNew(conn, 0);
        ck_assert_ptr_nonnull(st);
        ck_assert_msg(virStorageVolUpload(vol, st, 0, len, 0) == 0, "upload %s: %s", name, virGetLastErrorMessage());
        ck_assert_msg(virStreamSendAll(st, upload_read, src) == 0, "stream %s: %s", name, virGetLastErrorMessage());
        ck_assert_msg(virStreamFinish(st) == 0, "finish %s: %s", name, virGetLastErrorMessage());
        virStreamFree(st);
        return vol;
}

static int read_fd_at(void *userdata, uint64_t offset, void *buf, size_t n)
{
        ssize_t k = pread(*(int *)userdata, buf, n, (off_t)offset);

        if (k < 0)
                return -errno;
        return (size_t)k == n ? 0 : -EIO;
}

/* The guest's disk, inspected by our code before libvirt sees a byte, then uploaded. */
static virStorageVolPtr upload_base(virConnectPtr conn, virStoragePoolPtr pool, uint64_t *ret_size)
{
        char path[PATH_MAX + 16];
        struct image_info info;
        struct image_error err = { 0 };
        struct upload_src src = { .fd = -1 };
        virStorageVolPtr vol;
        struct stat st;

        ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/disk.raw", guest_dir), 0);
        src.fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(src.fd, 0);
        ck_assert_int_eq(fstat(src.fd, &st), 0);
        ck_assert_msg(image_inspect_read(read_fd_at, &src.fd, (uint64_t)st.st_size, IMAGE_FORMAT_RAW, &info, &err) ==
                              0,
                      "the test guest's disk refused: %s", err.text);
        ck_assert_int_eq(info.format, IMAGE_FORMAT_RAW);
        ck_assert_uint_eq(info.virtual_size, (uint64_t)st.st_size);
        vol = upload_volume(conn, pool, "base.raw", &src, (uint64_t)st.st_size);
        close(src.fd);
        *ret_size = (uint64_t)st.st_size;
        return vol;
}

/* A qcow2 overlay on base.raw, with the backing chain and formats spelled out. */
static virStorageVolPtr create_overlay(virStoragePoolPtr pool, uint64_t size)
{
        char xml[2048], *desc;
        virStorageVolPtr vol;

        ck_assert_int_eq(xsnprintf(xml, sizeof(xml),
                                   "<volume><name>root.qcow2</name><capacity unit='bytes'>%" PRIu64 "</capacity>"
                                   "<target><format type='qcow2'/></target>"
                                   "<backingStore><path>%s/base.raw</path><format type='raw'/></backingStore>"
                                   "</volume>",
                                   size, pool_dir),
                         0);
        vol = virStorageVolCreateXML(pool, xml, 0);
        ck_assert_msg(vol != NULL, "create overlay: %s", virGetLastErrorMessage());
        desc = virStorageVolGetXMLDesc(vol, 0);
        ck_assert_ptr_nonnull(desc);
        ck_assert_msg(strstr(desc, "<format type='qcow2'/>") && strstr(desc, "/base.raw</path>"), "%s", desc);
        free(desc);
        return vol;
}

struct membuf {
        uint8_t *p;
        size_t len, cap;
};

static int mem_sink(void *userdata, const void *buf, size_t len)
{
        struct membuf *m = userdata;

        if (m->len + len > m->cap) {
                size_t cap = (m->len + len) * 2;
                uint8_t *p = realloc(m->p, cap);

                if (!p)
                        return -ENOMEM;
                m->p = p;
                m->cap = cap;
        }
        memcpy(m->p + m->len, buf, len);
        m->len += len;
        return 0;
}

/* The config drive of (uuid, port, mac): built by our writer, uploaded as raw. */
static virStorageVolPtr upload_config_drive(virConnectPtr conn, virStoragePoolPtr pool, const char *uuid,
                                            const char *port, const char *mac, const struct net *net)
{
        char json[2048], err[256] = "";
        struct config_drive_spec *spec = NULL;
        struct json_object *o;
        struct membuf m = { 0 };
        struct upload_src src = { .fd = -1 };
        virStorageVolPtr vol;

        ck_assert_int_eq(xsnprintf(json, sizeof(json),
                                   "{\"uuid\":\"%s\",\"name\":\"guest\",\"hostname\":\"guest\","
                                   "\"public_keys\":[{\"name\":\"k\",\"data\":\"ssh-ed25519 AAAA test\"}],"
                                   "\"ports\":[{\"port_id\":\"%s\",\"network_id\":\"%s\",\"mac\":\"%s\",\"mtu\":%u,"
                                   "\"fixed_ips\":[{\"address\":\"%s\",\"subnet\":\"%s\","
                                   "\"gateway\":\"%s\"}]}]}",
                                   uuid, port, port, mac, net->mtu, net->guest_ip, net->subnet, net->host_ip),
                         0);
        o = json_tokener_parse(json);
        ck_assert_ptr_nonnull(o);
        ck_assert_msg(config_drive_spec_from_json(o, &spec, err, sizeof(err)) == 0, "%s", err);
        json_object_put(o);
        ck_assert_int_eq(config_drive_write(spec, mem_sink, &m, NULL), 0);
        config_drive_spec_free(spec);
        src.p = m.p;
        src.len = m.len;
        vol = upload_volume(conn, pool, "config.iso", &src, m.len);
        free(m.p);
        return vol;
}

/* ---- the domain ---- */

/* The domain document, made by the libvirt module's own generator
 * (domain-xml.c): the disks with explicit formats and the backing chain, the
 * config drive as an IDE CD-ROM, the serial console's log. */
static char *domain_xml(const char *uuid, const char *port, const char *mac, const struct net *net,
                        const char *log, bool from_disk, char paths[5][PATH_MAX])
{
        static char cmdline[DOMAIN_CMDLINE_MAX + 1];
        struct domain_port dport = { .port_uuid = port, .mac = mac, .mtu = net->mtu };
        struct domain_disks disks = { 0 };
        struct domain_spec spec = {
                .type = "qemu",
                .instance_uuid = uuid,
                .display_name = "guest",
                .vcpus = 1,
                .memory_mb = 256,
                .ports = &dport,
                .n_ports = 1,
                .disks = &disks,
        };
        char *xml = malloc(DOMAIN_XML_MAX), *text = NULL;
        size_t len;

        ck_assert_ptr_nonnull(xml);
        ck_assert_int_eq(xsnprintf(paths[0], PATH_MAX, "%s/root.qcow2", pool_dir), 0);
        ck_assert_int_eq(xsnprintf(paths[1], PATH_MAX, "%s/base.raw", pool_dir), 0);
        ck_assert_int_eq(xsnprintf(paths[2], PATH_MAX, "%s/config.iso", pool_dir), 0);
        disks.config_path = paths[2];
        disks.console_log = log;
        if (from_disk) {
                disks.root_path = paths[0];
                disks.base_path = paths[1];
        } else {
                ck_assert_int_eq(xsnprintf(paths[3], PATH_MAX, "%s/vmlinuz", guest_dir), 0);
                ck_assert_int_eq(xsnprintf(paths[4], PATH_MAX, "%s/initrd.gz", guest_dir), 0);
                ck_assert_int_eq(xsnprintf(cmdline, sizeof(cmdline), "%s/cmdline", guest_dir), 0);
                ck_assert_int_eq(read_file_bounded(cmdline, DOMAIN_CMDLINE_MAX, &text, &len), 0);
                while (len > 0 && text[len - 1] == '\n')
                        text[--len] = '\0';
                ck_assert_int_eq(strscpy(cmdline, text, sizeof(cmdline)), 0);
                free(text);
                disks.kernel = paths[3];
                disks.initrd = paths[4];
                disks.cmdline = cmdline;
        }
        ck_assert_int_eq(domain_xml_build(&spec, xml, DOMAIN_XML_MAX), 0);
        return xml;
}

/* Wait until the console log holds needle; returns the ms it took, or -1. */
static long wait_console(const char *log, const char *needle, int timeout_ms)
{
        uint64_t start = now_usec();

        while (now_usec() - start < (uint64_t)timeout_ms * 1000) {
                if (file_contains(log, needle))
                        return (long)((now_usec() - start) / 1000);
                sleep_ms(100);
        }
        return -1;
}

/* The guest's own uptime when it printed its line (its "up=" field), for the figures. */
static char *guest_uptime(const char *log)
{
        char *out = sh_out("grep -a -o 'NOVA-GUEST uuid=.* up=[0-9.]*' '%s' | tail -n 1 | sed 's/.* up=//'", log);
        size_t len = strlen(out);

        while (len > 0 && out[len - 1] == '\n')
                out[--len] = '\0';
        return out;
}

static bool ping_guest(const struct net *net, int tries)
{
        for (int i = 0; i < tries; i++)
                if (sh("ping -c 1 -W 1 %s", net->guest_ip) == 0)
                        return true;
        return false;
}

/* What the guest serves on tcp/7: its uuid from the config drive. */
static void tcp_read_uuid(const struct net *net, char *buf, size_t size)
{
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(7) };
        struct pollfd p;
        size_t len = 0;
        int fd = -1;

        ck_assert_int_eq(inet_pton(AF_INET, net->guest_ip, &a.sin_addr), 1);
        for (int i = 0; i < 50; i++) {
                fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                ck_assert_int_ge(fd, 0);
                if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
                        break;
                close(fd);
                fd = -1;
                sleep_ms(200);
        }
        ck_assert_msg(fd >= 0, "no TCP connection to %s:7", net->guest_ip);
        p = (struct pollfd){ .fd = fd, .events = POLLIN };
        while (len + 1 < size && poll(&p, 1, 10000) == 1) {
                ssize_t k = read(fd, buf + len, size - 1 - len);

                if (k <= 0)
                        break;
                len += (size_t)k;
        }
        close(fd);
        buf[len] = '\0';
}

static void cleanup_everything(virConnectPtr conn, virDomainPtr dom, virStoragePoolPtr pool)
{
        char **names = NULL;
        int n;

        if (dom) {
                (void)virDomainDestroy(dom);
                ck_assert_msg(virDomainUndefine(dom) == 0, "undefine: %s", virGetLastErrorMessage());
                virDomainFree(dom);
        }
        n = virStoragePoolNumOfVolumes(pool);
        ck_assert_int_ge(n, 0);
        if (n > 0) {
                names = calloc((size_t)n, sizeof(char *));
                ck_assert_ptr_nonnull(names);
                n = virStoragePoolListVolumes(pool, names, n);
                for (int i = 0; i < n; i++) {
                        virStorageVolPtr v = virStorageVolLookupByName(pool, names[i]);

                        ck_assert_msg(v && virStorageVolDelete(v, 0) == 0, "delete %s: %s", names[i],
                                      virGetLastErrorMessage());
                        virStorageVolFree(v);
                        free(names[i]);
                }
                free(names);
        }
        ck_assert_int_eq(virStoragePoolRefresh(pool, 0), 0);
        ck_assert_int_eq(virStoragePoolNumOfVolumes(pool), 0);
        ck_assert_int_eq(virStoragePoolDestroy(pool), 0);
        virStoragePoolFree(pool);
        (void)conn;
}

static virStoragePoolPtr make_pool(virConnectPtr conn, const char *name)
{
        char xml[PATH_MAX + 256];
        virStoragePoolPtr pool;

        ck_assert_int_eq(xsnprintf(pool_dir, sizeof(pool_dir), "%s/pool-%s", tmpdir, name), 0);
        ck_assert_int_eq(mkdir(pool_dir, 0700), 0);
        ck_assert_int_eq(xsnprintf(xml, sizeof(xml),
                                   "<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>", name,
                                   pool_dir),
                         0);
        pool = virStoragePoolCreateXML(conn, xml, 0);
        ck_assert_msg(pool != NULL, "pool: %s", virGetLastErrorMessage());
        return pool;
}

static int dir_entries(const char *path)
{
        char *out = sh_out("ls -A '%s' | wc -l", path);
        int n = (int)strtol(out, NULL, 10);

        free(out);
        return n;
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

START_TEST(test_boot_from_disk)
{
        char uuid[UUID_STR_LEN + 1], port[UUID_STR_LEN + 1], mac[MAC_STR_LEN + 1], tap[IFNAME_MAX];
        char log[PATH_MAX], line[160], got[128], paths[5][PATH_MAX];
        virConnectPtr conn = connect_libvirtd();
        virStoragePoolPtr pool;
        virStorageVolPtr base, root, cd;
        virDomainPtr dom;
        uint64_t size;
        char *xml;
        const struct net *net = &net_disk;
        char *up;
        long ms;

        ck_assert_int_eq(uuid_new_str(uuid), 0);
        ck_assert_int_eq(uuid_new_str(port), 0);
        ck_assert_int_eq(mac_generate(mac), 0);
        ck_assert_int_eq(tap_name_from_port(port, tap), 0);
        tap_setup(tap, net);

        pool = make_pool(conn, "disk");
        base = upload_base(conn, pool, &size);
        root = create_overlay(pool, size * 2);
        cd = upload_config_drive(conn, pool, uuid, port, mac, net);

        ck_assert_int_eq(xsnprintf(log, sizeof(log), "%s/console-disk.log", tmpdir), 0);
        xml = domain_xml(uuid, port, mac, net, log, true, paths);
        dom = virDomainDefineXML(conn, xml);
        ck_assert_msg(dom != NULL, "define: %s\n%s", virGetLastErrorMessage(), xml);
        free(xml);

        ck_assert_msg(virDomainCreate(dom) == 0, "start: %s", virGetLastErrorMessage());
        ck_assert_int_eq(xsnprintf(line, sizeof(line), "NOVA-GUEST uuid=%s ip=%s dev=eth0 mtu=%u ", uuid, net->guest_ip, net->mtu), 0);
        ms = wait_console(log, line, BOOT_TIMEOUT_MS);
        ck_assert_msg(ms >= 0, "no '%s' on the console (%s)", line, log);
        up = guest_uptime(log);
        printf("test-guest-boot: boot from disk: console line %ld ms after virDomainCreate returned "
               "(guest kernel uptime %s s)\n",
               ms, up);
        free(up);
        ck_assert_msg(file_contains(log, "NOVA-GUEST disk boots=1"), "first boot did not count 1");
        ck_assert_msg(!file_contains(log, "NOVA-GUEST error="), "guest reported an error");

        ck_assert_msg(ping_guest(net, 20), "no ping answer from %s over %s", net->guest_ip, tap);
        tcp_read_uuid(net, got, sizeof(got));
        ck_assert_msg(strncmp(got, uuid, UUID_STR_LEN) == 0, "tcp/7 said '%s', want %s", got, uuid);

        /* hard stop, start: the disk (the overlay) keeps what the guest wrote */
        ck_assert_int_eq(virDomainDestroy(dom), 0);
        ck_assert_msg(virDomainCreate(dom) == 0, "restart: %s", virGetLastErrorMessage());
        ms = wait_console(log, "NOVA-GUEST disk boots=2", BOOT_TIMEOUT_MS);
        ck_assert_msg(ms >= 0, "second boot did not count 2 (%s)", log);
        ck_assert_msg(wait_console(log, line, 60000) >= 0, "no console line after restart");
        printf("test-guest-boot: after stop/start: marker line after %ld ms\n", ms);
        ck_assert_msg(ping_guest(net, 20), "no ping after restart");

        virStorageVolFree(base);
        virStorageVolFree(root);
        virStorageVolFree(cd);
        cleanup_everything(conn, dom, pool);
        ck_assert_int_eq(dir_entries(pool_dir), 0);
        ck_assert_int_eq(virConnectNumOfDefinedDomains(conn) + virConnectNumOfDomains(conn), 0);
        virConnectClose(conn);
        ck_assert_int_eq(sh("ip link del %s", tap), 0);
}
END_TEST

START_TEST(test_direct_kernel_boot)
{
        char uuid[UUID_STR_LEN + 1], port[UUID_STR_LEN + 1], mac[MAC_STR_LEN + 1], tap[IFNAME_MAX];
        char log[PATH_MAX], line[160], paths[5][PATH_MAX];
        virConnectPtr conn = connect_libvirtd();
        virStoragePoolPtr pool;
        virStorageVolPtr cd;
        virDomainPtr dom;
        char *xml;
        const struct net *net = &net_kernel;
        char *up;
        long ms;

        ck_assert_int_eq(uuid_new_str(uuid), 0);
        ck_assert_int_eq(uuid_new_str(port), 0);
        ck_assert_int_eq(mac_generate(mac), 0);
        ck_assert_int_eq(tap_name_from_port(port, tap), 0);
        tap_setup(tap, net);
        pool = make_pool(conn, "kernel");
        cd = upload_config_drive(conn, pool, uuid, port, mac, net);

        ck_assert_int_eq(xsnprintf(log, sizeof(log), "%s/console-kernel.log", tmpdir), 0);
        xml = domain_xml(uuid, port, mac, net, log, false, paths);
        dom = virDomainDefineXML(conn, xml);
        ck_assert_msg(dom != NULL, "define: %s\n%s", virGetLastErrorMessage(), xml);
        free(xml);
        ck_assert_msg(virDomainCreate(dom) == 0, "start: %s", virGetLastErrorMessage());
        ck_assert_int_eq(xsnprintf(line, sizeof(line), "NOVA-GUEST uuid=%s ip=%s dev=eth0 mtu=%u ", uuid, net->guest_ip, net->mtu), 0);
        ms = wait_console(log, line, BOOT_TIMEOUT_MS);
        ck_assert_msg(ms >= 0, "no '%s' on the console (%s)", line, log);
        up = guest_uptime(log);
        printf("test-guest-boot: direct kernel boot: console line %ld ms after virDomainCreate returned "
               "(guest kernel uptime %s s)\n",
               ms, up);
        free(up);
        ck_assert_msg(!file_contains(log, "NOVA-GUEST disk boots="), "no disk, yet a boot was counted");
        ck_assert_msg(ping_guest(net, 20), "no ping answer from %s over %s", net->guest_ip, tap);

        virStorageVolFree(cd);
        cleanup_everything(conn, dom, pool);
        ck_assert_int_eq(dir_entries(pool_dir), 0);
        virConnectClose(conn);
        ck_assert_int_eq(sh("ip link del %s", tap), 0);
}
END_TEST

static Suite *guest_boot_suite(void)
{
        Suite *s = suite_create("guest-boot");
        TCase *tc = tcase_create("qemu");

        tcase_set_timeout(tc, 900);
        tcase_add_test(tc, test_boot_from_disk);
        tcase_add_test(tc, test_direct_kernel_boot);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr;
        int failed;

        setvbuf(stdout, NULL, _IOLBF, 0); /* the figures survive Check's forked tests */
        if (geteuid() != 0) {
                fprintf(stderr, "test-guest-boot: needs root (network namespace, taps, libvirtd)\n");
                return EXIT_FAILURE;
        }
        /* Before the private netns: a first build downloads two .debs. */
        if (test_guest_dir(guest_dir, sizeof(guest_dir)) < 0) {
                fprintf(stderr, "test-guest-boot: building the test guest failed\n");
                return EXIT_FAILURE;
        }
        harness_enter_netns("test-guest-boot");
        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return EXIT_FAILURE;
        }
        virSetErrorFunc(NULL, quiet_errors);
        if (xsnprintf(libvirtd_dir, sizeof(libvirtd_dir), "%s/libvirtd", tmpdir) < 0 ||
            libvirtd_private_start(libvirtd_dir, uri, sizeof(uri)) < 0) {
                fprintf(stderr, "test-guest-boot: the private libvirtd did not start\n");
                libvirtd_dir[0] = '\0';
                return EXIT_FAILURE;
        }
        printf("test-guest-boot: guest %s, libvirtd %s\n", guest_dir, uri);
        sr = srunner_create(guest_boot_suite());
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        libvirtd_private_stop(libvirtd_dir, uri); /* and the domains a failed test left */
        if (failed == 0)
                (void)rm_rf(tmpdir);
        else
                printf("test-guest-boot: kept %s for inspection\n", tmpdir);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
