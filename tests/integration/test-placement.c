/* test-placement.c - the core against a real OpenStack Placement.
 *
 * Each test runs Debian's placement-api (python3-placement: wsgiref, sqlite,
 * auth_strategy = noauth2) on 127.0.0.1 inside the test's own network
 * namespace, with its database copied from one `placement-manage db sync`
 * made at start (a sync takes ~9 s here). The core is the real nova-compute
 * with the real hardware-observe module. Everything is checked through
 * Placement's own API with curl, never through our client's word:
 * registration equals `host --json`, a restart keeps the provider, a stale
 * generation made behind our back is recovered, Placement down and up again
 * is caught up with, a wrong URL or token is reported with the fix while
 * local work goes on, and the traits follow this machine's /proc/cpuinfo.
 *
 * The state dir of the core is a tmpfs of a chosen size in a private mount
 * namespace, so DISK_GB is known and can grow (remount) like a disk pool. */
#include "harness.h"

#include "placement-json.h"
#include "tmpdir.h"

#include <check.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define PLACEMENT_PORT 8778
#define PLACEMENT_URL "http://127.0.0.1:8778"

static char template_dir[PATH_MAX]; /* placement.conf + a synced p.db */
static char ks_dir[PATH_MAX];       /* keystone.conf, k.db, keys (main) */
static pid_t ks_pid;                /* keystone-wsgi-public, started by main */
static char test_token[512] = "admin"; /* the X-Auth-Token of the test's own Placement calls */
static bool plc_keystone;           /* the next plc_start uses auth_strategy = keystone */

#define KEYSTONE_URL "http://127.0.0.1:5000/v3"
#define KEYSTONE_ADMIN_PW "adm1n-Pw-it"

struct placement_fixture {
        char dir[PATH_MAX];
        pid_t pid;
};

static struct placement_fixture plc;
static struct core core;

static struct json_object *jget(struct json_object *o, const char *key)
{
        struct json_object *v;
        return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}
static int64_t jint(struct json_object *o, const char *key) { return json_object_get_int64(jget(o, key)); }
static const char *jstr(struct json_object *o, const char *key)
{
        struct json_object *v = jget(o, key);
        return v ? json_object_get_string(v) : "";
}

/* ---- Placement itself ---- */

/* A request to Placement with curl; returns the HTTP status, the body in *ret (may be NULL). */
static int plc_api(const char *method, const char *path, const char *microversion, const char *body,
                   struct json_object **ret)
{
        char *out = sh_out("curl -s -m 10 -X %s -H 'X-Auth-Token: %s' -H 'Accept: application/json' "
                           "-H 'OpenStack-API-Version: placement %s' %s%s%s -w '\\n%%{http_code}' '%s%s'",
                           method, test_token, microversion, body ? "-H 'Content-Type: application/json' --data '" : "",
                           body ? body : "", body ? "'" : "", PLACEMENT_URL, path);
        char *nl = out ? strrchr(out, '\n') : NULL;
        int status = 0;

        if (nl) {
                status = (int)strtol(nl + 1, NULL, 10);
                *nl = '\0';
        }
        if (ret)
                *ret = out && out[0] ? json_tokener_parse(out) : NULL;
        free(out);
        return status;
}

/* GET / answers without authentication under both strategies */
static bool plc_up(void) { return plc_api("GET", "/", "1.0", NULL, NULL) == 200; }

static void plc_start(struct placement_fixture *f)
{
        char log[PATH_MAX + 16];
        int fd;

        if (!f->dir[0]) {
                ck_assert_int_eq(xsnprintf(f->dir, sizeof(f->dir), "/tmp/nova-plc-XXXXXX"), 0);
                ck_assert_ptr_nonnull(mkdtemp(f->dir));
                ck_assert_int_eq(sh("sed 's#%s#%s#' '%s/placement.conf' > '%s/placement.conf' && cp '%s/p.db' '%s/p.db'",
                                    template_dir, f->dir, template_dir, f->dir, template_dir, f->dir), 0);
                if (plc_keystone)
                        /* keystonemiddleware validates every token with Keystone (no cache: revocations count) */
                        ck_assert_int_eq(sh("cd '%s' && sed -i 's/^auth_strategy = noauth2/auth_strategy = keystone/' "
                                            "placement.conf && printf '[keystone_authtoken]\\nwww_authenticate_uri = %s\\n"
                                            "auth_url = %s\\nauth_type = password\\nproject_domain_name = Default\\n"
                                            "user_domain_name = Default\\nproject_name = admin\\nusername = admin\\n"
                                            "password = %s\\ntoken_cache_time = -1\\n' >> placement.conf",
                                            f->dir, KEYSTONE_URL, KEYSTONE_URL, KEYSTONE_ADMIN_PW), 0);
        }
        (void)snprintf(log, sizeof(log), "%s/api.log", f->dir);
        fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        f->pid = fork();
        ck_assert_int_ge(f->pid, 0);
        if (f->pid == 0) {
                char port[16];
                (void)snprintf(port, sizeof(port), "%d", PLACEMENT_PORT);
                setenv("OS_PLACEMENT_CONFIG_DIR", f->dir, 1);
                dup2(fd, 1);
                dup2(fd, 2);
                execlp("placement-api", "placement-api", "--host", "127.0.0.1", "--port", port, (char *)NULL);
                _exit(127);
        }
        close(fd);
        for (int i = 0; i < 600 && !plc_up(); i++) {
                ck_assert_msg(process_alive(f->pid), "placement-api exited; see %s", log);
                sleep_ms(50);
        }
        ck_assert_msg(plc_up(), "placement-api did not answer within 30 s; see %s", log);
}

static void plc_stop(struct placement_fixture *f)
{
        if (f->pid <= 0)
                return;
        kill(f->pid, SIGTERM);
        if (!wait_process_gone(f->pid, 5000))
                kill(f->pid, SIGKILL);
        (void)waitpid(f->pid, NULL, 0);
        f->pid = 0;
}

/* ---- the core ---- */

/* A tmpfs of size_mb as the core's state dir (private mount namespace). */
static void core_prepare(struct core *c, unsigned size_mb)
{
        char state[PATH_MAX + 8], opts[64];

        ck_assert_int_eq(test_tmpdir_make("nova-it", c->dir, sizeof(c->dir)), 0);
        (void)snprintf(state, sizeof(state), "%s/state", c->dir);
        ck_assert_int_eq(mkdir(state, 0700), 0);
        (void)snprintf(opts, sizeof(opts), "size=%um,mode=0700", size_mb);
        ck_assert_int_eq(mount("tmpfs", state, "tmpfs", 0, opts), 0);
}

static void state_resize(struct core *c, unsigned size_mb)
{
        char state[PATH_MAX + 8], opts[64];

        (void)snprintf(state, sizeof(state), "%s/state", c->dir);
        (void)snprintf(opts, sizeof(opts), "size=%um", size_mb);
        ck_assert_int_eq(mount("tmpfs", state, "tmpfs", MS_REMOUNT, opts), 0);
}

#define CORE_CONFIG "plugs = hardware-observe\nvif_type = tap\nlibvirt_uri = test:///default\n" \
                    "placement_url = " PLACEMENT_URL "\n"

static struct json_object *placement_status(struct core *c, struct json_object **ret_root)
{
        ck_assert_int_eq(core_api(c, "GET", "/v1/status", NULL, ret_root), 200);
        return jget(*ret_root, "placement");
}

/* Wait until the client's state is `state`; returns the status root (put it). */
static struct json_object *wait_state(struct core *c, const char *state, int timeout_ms)
{
        struct json_object *root = NULL;

        for (int waited = 0;; waited += 50) {
                struct json_object *p = placement_status(c, &root);
                if (streq(jstr(p, "state"), state))
                        return root;
                ck_assert_msg(waited < timeout_ms, "placement state is '%s', not '%s', after %d ms: %s (log %s)",
                              jstr(p, "state"), state, timeout_ms, jstr(p, "error"), c->log);
                json_object_put(root);
                sleep_ms(50);
        }
}

static uint64_t counter(struct json_object *status_root, const char *name)
{
        return (uint64_t)jint(jget(jget(status_root, "placement"), "requests"), name);
}

/* Restart hardware-observe: its ready hook kicks the client. */
static void kick_by_module_restart(struct core *c)
{
        pid_t pid = core_module_pid(c, "hardware-observe");
        ck_assert_int_gt(pid, 0);
        kill(pid, SIGKILL);
        ck_assert_int_gt(core_wait_module_running(c, "hardware-observe", pid, 10000), 0);
}

static void setup(void)
{
        memset(&core, 0, sizeof(core));
        memset(&plc, 0, sizeof(plc));
        plc_start(&plc);
}

static void teardown(void)
{
        char state[PATH_MAX + 8];

        core_stop(&core);
        plc_stop(&plc);
        (void)snprintf(state, sizeof(state), "%s/state", core.dir);
        (void)umount2(state, MNT_DETACH);
        if (plc.dir[0])
                (void)sh("rm -rf '%s'", plc.dir);
}

static uint64_t rss_kb(pid_t pid)
{
        char path[64];
        _cleanup_free_ char *text = NULL;
        const char *p;

        (void)snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        if (read_file_bounded(path, 65536, &text, NULL) < 0 || !(p = strstr(text, "VmRSS:")))
                return 0;
        return strtoull(p + 6, NULL, 10);
}

/* ---- tests ---- */

START_TEST(test_registration_matches_host)
{
        struct json_object *root, *p, *host, *inv = NULL, *traits = NULL, *list = NULL;
        struct timespec t0, t1;
        char path[256];
        uint64_t uuid_len;

        core_prepare(&core, 2048);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        core_start(&core, CORE_CONFIG "provider_name = it-registration\nreserved_host_disk_mb = 1\n");
        /* the provider uuid appears in status at once; its inventories in Placement shortly after */
        p = placement_status(&core, &root);
        ck_assert_str_eq(jstr(p, "provider_name"), "it-registration");
        uuid_len = strlen(jstr(p, "provider_uuid"));
        ck_assert_uint_eq(uuid_len, 36);
        (void)snprintf(path, sizeof(path), "/resource_providers/%s/inventories", jstr(p, "provider_uuid"));
        json_object_put(root);
        for (int i = 0; i < 400; i++) {
                json_object_put(inv);
                inv = NULL;
                if (plc_api("GET", path, "1.26", NULL, &inv) == 200 && jget(jget(inv, "inventories"), "DISK_GB") &&
                    jget(jget(inv, "inventories"), "VCPU"))
                        break;
                sleep_ms(25);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ck_assert_ptr_nonnull(jget(jget(inv, "inventories"), "VCPU"));
        fprintf(stderr, "figure: core start to inventories visible in Placement: %.2f s\n",
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
        root = wait_state(&core, "synced", 10000);
        json_object_put(root);

        /* every class equals `host --json` (the core's /v1/host): total, reserved, ratio; nova's units */
        ck_assert_int_eq(core_api(&core, "GET", "/v1/host", NULL, &host), 200);
        static const char *const rcs[] = { "VCPU", "MEMORY_MB", "DISK_GB" };
        for (size_t i = 0; i < ARRAY_SIZE(rcs); i++) {
                struct json_object *mine = jget(jget(host, "placement"), rcs[i]);
                struct json_object *theirs = jget(jget(inv, "inventories"), rcs[i]);
                ck_assert_msg(theirs, "%s missing in Placement", rcs[i]);
                ck_assert_int_eq(jint(theirs, "total"), jint(mine, "total"));
                ck_assert_int_eq(jint(theirs, "reserved"), jint(mine, "reserved"));
                ck_assert(json_object_get_double(jget(theirs, "allocation_ratio")) ==
                          json_object_get_double(jget(mine, "allocation_ratio")));
                ck_assert_int_eq(jint(theirs, "min_unit"), 1);
                ck_assert_int_eq(jint(theirs, "step_size"), 1);
                ck_assert_int_eq(jint(theirs, "max_unit"), jint(mine, "total"));
        }
        /* independent of the core: nproc, the tmpfs size, nova's defaults */
        ck_assert_int_eq(jint(jget(jget(inv, "inventories"), "VCPU"), "total"), sysconf(_SC_NPROCESSORS_ONLN));
        ck_assert_int_eq(jint(jget(jget(inv, "inventories"), "DISK_GB"), "total"), 2);
        ck_assert_int_eq(jint(jget(jget(inv, "inventories"), "DISK_GB"), "reserved"), 1); /* 1 MB rounds up to 1 GiB */
        ck_assert_int_eq(jint(jget(jget(inv, "inventories"), "MEMORY_MB"), "reserved"), 512);
        ck_assert(json_object_get_double(jget(jget(jget(inv, "inventories"), "VCPU"), "allocation_ratio")) == 16.0);
        json_object_put(host);

        /* exactly one provider, with our name */
        ck_assert_int_eq(plc_api("GET", "/resource_providers", "1.14", NULL, &list), 200);
        ck_assert_uint_eq(json_object_array_length(jget(list, "resource_providers")), 1);
        ck_assert_str_eq(jstr(json_object_array_get_idx(jget(list, "resource_providers"), 0), "name"),
                         "it-registration");
        json_object_put(list);

        /* traits: this machine's /proc/cpuinfo, through a table written here independently */
        {
                struct json_object *st;
                p = placement_status(&core, &st);
                (void)snprintf(path, sizeof(path), "/resource_providers/%s/traits", jstr(p, "provider_uuid"));
                json_object_put(st);
        }
        ck_assert_int_eq(plc_api("GET", path, "1.6", NULL, &traits), 200);
        {
                _cleanup_free_ char *cpuinfo = NULL, *flags_line = NULL;
                struct json_object *names = jget(traits, "traits");
                static const struct {
                        const char *flag, *trait;
                } expect[] = {
                        { "sse4_1", "HW_CPU_X86_SSE41" }, { "sse4_2", "HW_CPU_X86_SSE42" },
                        { "pclmulqdq", "HW_CPU_X86_CLMUL" }, { "sha_ni", "HW_CPU_X86_SHA" },
                        { "avx", "HW_CPU_X86_AVX" },     { "avx2", "HW_CPU_X86_AVX2" },
                        { "aes", "HW_CPU_X86_AESNI" },   { "ssse3", "HW_CPU_X86_SSSE3" },
                        { "pni", "HW_CPU_X86_SSE3" },    { "fma", "HW_CPU_X86_FMA3" },
                        { "bmi1", "HW_CPU_X86_BMI" },    { "vmx", "HW_CPU_X86_VMX" },
                        { "svm", "HW_CPU_X86_SVM" },     { "avx512f", "HW_CPU_X86_AVX512F" },
                };
                bool has[ARRAY_SIZE(expect)] = {};
                size_t checked = 0;
                char *line;

                ck_assert_int_eq(read_file_bounded("/proc/cpuinfo", 1 << 22, &cpuinfo, NULL), 0);
                line = strstr(cpuinfo, "\nflags");
                ck_assert_ptr_nonnull(line);
                {
                        size_t n = strcspn(line + 1, "\n");
                        flags_line = malloc(n + 4);
                        ck_assert_ptr_nonnull(flags_line);
                        (void)snprintf(flags_line, n + 4, " %.*s ", (int)n, line + 1);
                }
                for (size_t i = 0; i < ARRAY_SIZE(expect); i++) {
                        char needle[40];
                        (void)snprintf(needle, sizeof(needle), " %s ", expect[i].flag);
                        bool in_cpu = strstr(flags_line, needle) != NULL;
                        for (size_t k = 0; k < json_object_array_length(names); k++)
                                if (streq(json_object_get_string(json_object_array_get_idx(names, k)), expect[i].trait))
                                        has[i] = true;
                        ck_assert_msg(in_cpu == has[i], "flag %s is %s in /proc/cpuinfo but trait %s is %s", expect[i].flag,
                                      in_cpu ? "set" : "not set", expect[i].trait, has[i] ? "there" : "missing");
                        checked += in_cpu;
                }
                fprintf(stderr, "figure: %zu of the checked cpuinfo flags present here, %zu traits in Placement\n",
                        checked, json_object_array_length(names));
                bool compute_node = false, arch = false, ht = false;
                for (size_t k = 0; k < json_object_array_length(names); k++) {
                        const char *t = json_object_get_string(json_object_array_get_idx(names, k));
                        compute_node |= streq(t, "COMPUTE_NODE");
                        arch |= streq(t, "HW_ARCH_X86_64");
                        ht |= streq(t, "HW_CPU_HYPERTHREADING");
                }
                ck_assert(compute_node && arch);
                /* hyperthreading: some core lists more than one thread sibling */
                _cleanup_free_ char *sib = sh_out("cat /sys/devices/system/cpu/cpu*/topology/thread_siblings_list | "
                                                  "grep -c '[,-]' || true");
                ck_assert_int_eq(ht, strtol(sib, NULL, 10) > 0);
        }
        json_object_put(traits);
        json_object_put(inv);

        /* RSS of the core with the client in, beside a core without it */
        {
                struct core bare = {};
                fprintf(stderr, "figure: core RSS with the Placement client synced: %" PRIu64 " kB\n", rss_kb(core.pid));
                core_start(&bare, "plugs = hardware-observe\n");
                sleep_ms(500);
                fprintf(stderr, "figure: core RSS without placement_url: %" PRIu64 " kB\n", rss_kb(bare.pid));
                /* libcurl (and its TLS/LDAP/Kerberos tree, ~6 MiB of RSS) is loaded only by a
                 * core that uses Placement (src/core/curl-lazy.c). */
                char maps[64];
                (void)snprintf(maps, sizeof(maps), "/proc/%ld/maps", (long)core.pid);
                ck_assert_msg(file_contains(maps, "libcurl"), "the core with placement_url has no libcurl mapped");
                (void)snprintf(maps, sizeof(maps), "/proc/%ld/maps", (long)bare.pid);
                ck_assert_msg(!file_contains(maps, "libcurl"), "a core without placement_url has libcurl mapped");
                ck_assert_msg(!file_contains(maps, "libcrypto"), "a core without placement_url has libcrypto mapped");
                core_stop(&bare);
        }
}
END_TEST

/* With the libvirt plug, DISK_GB is the storage pool's size, in `host` and in Placement alike
 * (libvirt's test driver has a pool "default-pool" of 100 GiB; the state dir's tmpfs is 2 GiB).
 * Without the pool lookup the client registered the state dir's 2 while `host` said 100. */
START_TEST(test_disk_gb_is_the_storage_pool)
{
        struct json_object *host = NULL, *inv = NULL, *root;
        char path[256];
        int64_t want = 0, got = -1;

        core_prepare(&core, 2048);
        core_start(&core, "plugs = hardware-observe libvirt\nvif_type = tap\nlibvirt_uri = test:///default\n"
                          "storage_pool = default-pool\nstorage_pool_path = /default-pool\nplacement_url = " PLACEMENT_URL "\nprovider_name = it-pool\n");
        ck_assert_int_gt(core_wait_module_running(&core, "libvirt", 0, 10000), 0);
        root = wait_state(&core, "synced", 15000);
        (void)snprintf(path, sizeof(path), "/resource_providers/%s/inventories",
                       jstr(jget(root, "placement"), "provider_uuid"));
        json_object_put(root);
        ck_assert_int_eq(core_api(&core, "GET", "/v1/host", NULL, &host), 200);
        want = jint(jget(jget(host, "placement"), "DISK_GB"), "total");
        if (want != 100)
                fprintf(stderr, "host: %s\n", json_object_to_json_string(host));
        ck_assert_msg(want == 100, "host DISK_GB total %" PRId64 ", not the pool's 100 (the state dir's is 2)", want);
        json_object_put(host);
        /* the libvirt module may come up after the first pass: its readiness triggers another */
        for (int i = 0; i < 400 && got != want; i++) {
                json_object_put(inv);
                inv = NULL;
                if (plc_api("GET", path, "1.26", NULL, &inv) == 200)
                        got = jint(jget(jget(inv, "inventories"), "DISK_GB"), "total");
                if (got != want)
                        sleep_ms(25);
        }
        json_object_put(inv);
        ck_assert_int_eq(got, want);
}
END_TEST

/* Idle: no writes at all (Placement's generation does not move); a boot and a module restart
 * change nothing either. The refresh re-reads (GETs) are counted. */
START_TEST(test_idle_and_boot_write_nothing)
{
        struct json_object *before, *after, *prov = NULL;
        char path[128];
        int64_t gen0;

        core_prepare(&core, 1024);
        core_start(&core, "plugs = hardware-observe network-control libvirt\nvif_type = tap\n"
                          "libvirt_uri = test:///default\nplacement_url = " PLACEMENT_URL "\n"
                          "provider_name = it-idle\nplacement_refresh_s = 10\n");
        before = wait_state(&core, "synced", 15000);
        (void)snprintf(path, sizeof(path), "/resource_providers/%s", jstr(jget(before, "placement"), "provider_uuid"));
        ck_assert_int_eq(plc_api("GET", path, "1.14", NULL, &prov), 200);
        gen0 = jint(prov, "generation");
        json_object_put(prov);
        fprintf(stderr, "figure: registration took %" PRIu64 " GET, %" PRIu64 " POST, %" PRIu64 " PUT\n",
                counter(before, "get"), counter(before, "post"), counter(before, "put"));

        /* a boot and a delete: the client re-reads the host, Placement hears nothing */
        ck_assert_int_eq(core_module_pid(&core, "libvirt") > 0 || core_wait_module_running(&core, "libvirt", 0, 5000) > 0, 1);
        ck_assert_int_gt(core_wait_module_running(&core, "network-control", 0, 5000), 0);
        {
                struct json_object *r = NULL, *mid;
                int status = core_api(&core, "POST", "/v1/instances?wait=1",
                                      "{\"name\":\"plc-vm\",\"vcpus\":1,\"memory_mb\":64,\"ports\":[{}]}", &r);
                ck_assert_msg(status == 200 || status == 201 || status == 202, "boot: %d %s", status,
                              r ? json_object_to_json_string(r) : "");
                json_object_put(r);
                sleep_ms(1500);
                ck_assert_int_eq(core_api(&core, "GET", "/v1/status", NULL, &mid), 200);
                fprintf(stderr, "figure: requests caused by a boot: %" PRIu64 " (writes %" PRIu64 ")\n",
                        counter(mid, "get") + counter(mid, "post") + counter(mid, "put") - counter(before, "get") -
                                counter(before, "post") - counter(before, "put"),
                        counter(mid, "post") + counter(mid, "put") - counter(before, "post") - counter(before, "put"));
                ck_assert_uint_eq(counter(mid, "put") + counter(mid, "post"), counter(before, "put") + counter(before, "post"));
                json_object_put(mid);
        }
        /* Idle with a 10 s refresh: at least 25 s, and until two refreshes (two GETs each) have been
         * made (under load a refresh against placement-api takes seconds, so 25 s may hold only one;
         * bounded at 90 s). */
        sleep_ms(25000);
        ck_assert_int_eq(core_api(&core, "GET", "/v1/status", NULL, &after), 200);
        for (int t = 0; t < 65 && counter(after, "get") < counter(before, "get") + 4; t++) {
                json_object_put(after);
                sleep_ms(1000);
                ck_assert_int_eq(core_api(&core, "GET", "/v1/status", NULL, &after), 200);
        }
        ck_assert_str_eq(jstr(jget(after, "placement"), "state"), "synced");
        ck_assert_uint_eq(counter(after, "put"), counter(before, "put"));
        ck_assert_uint_eq(counter(after, "post"), counter(before, "post"));
        ck_assert_uint_ge(counter(after, "get"), counter(before, "get") + 4); /* two refreshes, two GETs each */
        fprintf(stderr, "figure: idle (25 s at least) with a 10 s refresh: %" PRIu64 " GET, 0 writes; at the default 300 s "
                        "refresh that is 24 GET and 0 writes per hour\n",
                counter(after, "get") - counter(before, "get"));
        ck_assert_int_eq(plc_api("GET", path, "1.14", NULL, &prov), 200);
        ck_assert_int_eq(jint(prov, "generation"), gen0); /* Placement's own word: nothing was written */
        json_object_put(prov);
        json_object_put(before);
        json_object_put(after);
}
END_TEST

START_TEST(test_restart_keeps_the_provider)
{
        struct json_object *a, *b, *list = NULL;
        char uuid[64];

        core_prepare(&core, 1024);
        core_start(&core, CORE_CONFIG "provider_name = it-restart\n");
        a = wait_state(&core, "synced", 15000);
        (void)strscpy(uuid, jstr(jget(a, "placement"), "provider_uuid"), sizeof(uuid));
        core_stop(&core);
        core_start(&core, CORE_CONFIG "provider_name = it-restart\n"); /* same dir, same state */
        b = wait_state(&core, "synced", 15000);
        ck_assert_str_eq(jstr(jget(b, "placement"), "provider_uuid"), uuid);
        /* nothing changed: the restarted core only read */
        ck_assert_uint_eq(counter(b, "post") + counter(b, "put"), 0);
        ck_assert_int_eq(plc_api("GET", "/resource_providers", "1.14", NULL, &list), 200);
        ck_assert_uint_eq(json_object_array_length(jget(list, "resource_providers")), 1);
        ck_assert_str_eq(jstr(json_object_array_get_idx(jget(list, "resource_providers"), 0), "uuid"), uuid);
        json_object_put(list);
        json_object_put(a);
        json_object_put(b);
}
END_TEST

/* A writer behind our back moves the generation; then the disk pool grows: our write meets a 409,
 * the client re-reads and writes again; Placement ends with our view (and our traits). */
START_TEST(test_stale_generation_recovered)
{
        struct json_object *st, *inv = NULL, *traits = NULL, *prov = NULL;
        char path[160], traits_path[200], inv_path[200], body[512];
        int64_t gen;

        core_prepare(&core, 1024);
        core_start(&core, CORE_CONFIG "provider_name = it-stale\n");
        st = wait_state(&core, "synced", 15000);
        (void)snprintf(path, sizeof(path), "/resource_providers/%s", jstr(jget(st, "placement"), "provider_uuid"));
        json_object_put(st);
        (void)snprintf(traits_path, sizeof(traits_path), "%s/traits", path);
        (void)snprintf(inv_path, sizeof(inv_path), "%s/inventories", path);
        ck_assert_int_eq(plc_api("GET", path, "1.14", NULL, &prov), 200);
        gen = jint(prov, "generation");
        json_object_put(prov);
        /* behind our back: a custom trait and a changed ratio */
        ck_assert_int_eq(plc_api("PUT", "/traits/CUSTOM_BEHIND_YOUR_BACK", "1.6", NULL, NULL) / 100, 2);
        (void)snprintf(body, sizeof(body), "{\"resource_provider_generation\":%" PRId64 ",\"traits\":[\"CUSTOM_BEHIND_YOUR_BACK\"]}",
                       gen);
        ck_assert_int_eq(plc_api("PUT", traits_path, "1.6", body, NULL), 200);
        /* the disk pool grows; the kick makes the client write with the generation it knew */
        state_resize(&core, 3072);
        kick_by_module_restart(&core);
        for (int i = 0;; i++) {
                json_object_put(inv);
                ck_assert_int_eq(plc_api("GET", inv_path, "1.26", NULL, &inv),
                                 200);
                if (jint(jget(jget(inv, "inventories"), "DISK_GB"), "total") == 3)
                        break;
                ck_assert_msg(i < 200, "DISK_GB did not grow to 3 in Placement");
                sleep_ms(50);
        }
        st = wait_state(&core, "synced", 10000);
        ck_assert_uint_ge(counter(st, "conflicts"), 1); /* it did meet the stale generation */
        json_object_put(st);
        ck_assert_int_eq(plc_api("GET", traits_path, "1.6", NULL, &traits), 200);
        {
                bool custom = false, compute = false;
                for (size_t k = 0; k < json_object_array_length(jget(traits, "traits")); k++) {
                        const char *t = json_object_get_string(json_object_array_get_idx(jget(traits, "traits"), k));
                        custom |= streq(t, "CUSTOM_BEHIND_YOUR_BACK");
                        compute |= streq(t, "COMPUTE_NODE");
                }
                ck_assert(!custom && compute);
        }
        json_object_put(traits);
        json_object_put(inv);
}
END_TEST

/* A kernel uevent for a CPU, as `udevadm trigger --action=change` makes one (harmless: nothing on
 * this machine changes; the kernel sends it to every network namespace of the initial user
 * namespace, this test's too). */
static void hardware_uevent(void)
{
        ck_assert_int_eq(sh("echo change > /sys/devices/system/cpu/cpu0/uevent"), 0);
}

/* Wait until the client has run more than `passes` passes and is synced again; returns the status root. */
static struct json_object *wait_pass_after(struct core *c, uint64_t passes, int timeout_ms)
{
        for (int waited = 0;; waited += 50) {
                struct json_object *root = NULL, *p = placement_status(c, &root);
                if (counter(root, "passes") > passes && streq(jstr(p, "state"), "synced"))
                        return root;
                ck_assert_msg(waited < timeout_ms, "no new Placement pass after %d ms (passes %" PRIu64 ", state %s; log %s)",
                              timeout_ms, counter(root, "passes"), jstr(p, "state"), c->log);
                json_object_put(root);
                sleep_ms(50);
        }
}

/* hardware-observe reports a hardware change (a kernel uevent): the client re-reads the host at
 * once, not at the next refresh (300 s here), and writes only what changed: nothing while the host
 * is the same (not even a GET: what Placement holds is cached), the new DISK_GB after the state dir
 * grew. Without the event nothing would be read before the refresh: checked in between. */
START_TEST(test_hardware_change_resyncs)
{
        struct json_object *before, *after, *inv = NULL;
        char inv_path[200];

        core_prepare(&core, 1024);
        core_start(&core, CORE_CONFIG "provider_name = it-hwchange\nplacement_refresh_s = 300\n");
        before = wait_state(&core, "synced", 15000);
        (void)snprintf(inv_path, sizeof(inv_path), "/resource_providers/%s/inventories",
                       jstr(jget(before, "placement"), "provider_uuid"));

        /* nothing changed: a pass, no request */
        hardware_uevent();
        after = wait_pass_after(&core, counter(before, "passes"), 5000);
        ck_assert_uint_eq(counter(after, "put") + counter(after, "post") + counter(after, "get"),
                          counter(before, "put") + counter(before, "post") + counter(before, "get"));
        ck_assert_msg(file_contains(core.log, "hardware changed (cpu change): telling the core"), "see %s", core.log);
        json_object_put(before);
        before = after;

        /* the disk grows: nobody tells the client (no pass within 1.5 s) until the next uevent */
        state_resize(&core, 3072);
        sleep_ms(1500);
        {
                struct json_object *mid = NULL;
                (void)placement_status(&core, &mid);
                ck_assert_uint_eq(counter(mid, "passes"), counter(before, "passes"));
                json_object_put(mid);
        }
        ck_assert_int_eq(plc_api("GET", inv_path, "1.26", NULL, &inv), 200);
        ck_assert_int_eq(jint(jget(jget(inv, "inventories"), "DISK_GB"), "total"), 1);
        json_object_put(inv);
        hardware_uevent();
        after = wait_pass_after(&core, counter(before, "passes"), 5000);
        ck_assert_int_eq(plc_api("GET", inv_path, "1.26", NULL, &inv), 200);
        ck_assert_int_eq(jint(jget(jget(inv, "inventories"), "DISK_GB"), "total"), 3);
        ck_assert_uint_eq(counter(after, "put"), counter(before, "put") + 1); /* the inventories, not the traits */
        ck_assert_uint_eq(counter(after, "post"), counter(before, "post"));
        json_object_put(inv);
        json_object_put(before);
        json_object_put(after);
}
END_TEST

/* Placement stops, the host changes, local work goes on, Placement comes back: the node catches up. */
START_TEST(test_placement_down_and_back)
{
        struct json_object *st, *inv = NULL, *host = NULL;
        char path[200];

        core_prepare(&core, 1024);
        core_start(&core, CORE_CONFIG "provider_name = it-down\n");
        st = wait_state(&core, "synced", 15000);
        (void)snprintf(path, sizeof(path), "/resource_providers/%s/inventories",
                       jstr(jget(st, "placement"), "provider_uuid"));
        json_object_put(st);
        plc_stop(&plc);
        state_resize(&core, 4096);
        kick_by_module_restart(&core);
        st = wait_state(&core, "retrying", 10000);
        ck_assert_ptr_nonnull(strstr(jstr(jget(st, "placement"), "error"), "cannot reach"));
        ck_assert_ptr_nonnull(strstr(jstr(jget(st, "placement"), "fix"), "placement-url"));
        json_object_put(st);
        /* local work goes on */
        ck_assert_int_eq(core_api(&core, "GET", "/v1/host", NULL, &host), 200);
        ck_assert_int_eq(jint(jget(jget(host, "placement"), "DISK_GB"), "total"), 4);
        json_object_put(host);
        plc_start(&plc);
        for (int i = 0;; i++) {
                json_object_put(inv);
                inv = NULL;
                if (plc_api("GET", path, "1.26", NULL, &inv) == 200 &&
                    jint(jget(jget(inv, "inventories"), "DISK_GB"), "total") == 4)
                        break;
                ck_assert_msg(i < 1200, "the node did not catch up within 60 s of Placement's return");
                sleep_ms(50);
        }
        json_object_put(inv);
        st = wait_state(&core, "synced", 10000);
        json_object_put(st);
}
END_TEST

/* A wrong URL and a wrong token: status says which and how to fix it; the token never shows. */
START_TEST(test_wrong_url_and_token)
{
        struct json_object *st, *host = NULL;
        _cleanup_free_ char *log = NULL;
        const char *text;

        core_prepare(&core, 1024);
        core_start(&core, "plugs = hardware-observe\nplacement_url = http://127.0.0.1:9\nprovider_name = it-wrong\n");
        st = wait_state(&core, "retrying", 10000);
        ck_assert_ptr_nonnull(strstr(jstr(jget(st, "placement"), "error"), "cannot reach http://127.0.0.1:9"));
        ck_assert_ptr_nonnull(strstr(jstr(jget(st, "placement"), "fix"), "placement-url"));
        json_object_put(st);
        ck_assert_int_eq(core_api(&core, "GET", "/v1/host", NULL, &host), 200);
        json_object_put(host);
        {
                /* the CLI's human status says it too */
                const char *bin = getenv("NOVA_BIN");
                _cleanup_free_ char *human = sh_out("'%s/nova-hypervisor' --socket '%s' status", bin ? bin : "build/bin",
                                                    core.socket);
                ck_assert_msg(human && strstr(human, "placement:  retrying, provider it-wrong") &&
                                      strstr(human, "fix: check placement-url"), "%s", human ? human : "");
        }
        core_stop(&core);

        /* noauth2 with a token that is not 'admin': Placement answers 403 */
        core_start(&core, "plugs = hardware-observe\nplacement_url = " PLACEMENT_URL "\nprovider_name = it-wrong\n"
                          "placement_noauth_token = tok3n-s3cret-xyz\n");
        st = wait_state(&core, "retrying", 10000);
        text = json_object_to_json_string(st);
        ck_assert_msg(strstr(jstr(jget(st, "placement"), "error"), "403"), "%s", text);
        ck_assert_ptr_nonnull(strstr(jstr(jget(st, "placement"), "fix"), "placement-noauth-token"));
        ck_assert_ptr_null(strstr(text, "tok3n-s3cret-xyz"));
        ck_assert_int_eq(core_api(&core, "GET", "/v1/host", NULL, &host), 200);
        ck_assert_ptr_null(strstr(json_object_to_json_string(host), "tok3n-s3cret-xyz"));
        json_object_put(host);
        json_object_put(st);
        {
                _cleanup_free_ char *metrics = sh_out("curl -s --unix-socket '%s' http://x/metrics", core.socket);
                ck_assert_ptr_nonnull(strstr(metrics, "nova_placement_sync_ok 0"));
                ck_assert_ptr_null(strstr(metrics, "tok3n"));
        }
        core_stop(&core);
        ck_assert_int_eq(read_file_bounded(core.log, 1 << 24, &log, NULL), 0);
        ck_assert_ptr_null(strstr(log, "tok3n"));
        ck_assert_ptr_nonnull(strstr(log, "placement"));
}
END_TEST

/* A second host taking the same provider name is told so, with the fix. */
START_TEST(test_name_taken)
{
        struct json_object *st;
        struct core other = {};

        core_prepare(&core, 1024);
        core_start(&core, CORE_CONFIG "provider_name = it-same-name\n");
        st = wait_state(&core, "synced", 15000);
        json_object_put(st);
        core_prepare(&other, 1024);
        core_start(&other, CORE_CONFIG "provider_name = it-same-name\n");
        st = wait_state(&other, "retrying", 10000);
        ck_assert_ptr_nonnull(strstr(jstr(jget(st, "placement"), "error"), "name 'it-same-name' is taken"));
        ck_assert_ptr_nonnull(strstr(jstr(jget(st, "placement"), "fix"), "provider-name"));
        json_object_put(st);
        core_stop(&other);
        {
                char state[PATH_MAX + 8];
                (void)snprintf(state, sizeof(state), "%s/state", other.dir);
                (void)umount2(state, MNT_DETACH);
        }
}
END_TEST


/* ---- Keystone (a real keystone-wsgi-public from python3-keystone, sqlite, fernet; started by main) ---- */

/* An admin token of the test's own (password auth; scope: project admin, or the system).
 * This is the test's setup, not the product: a token request that gets no answer in time (000)
 * or a 5xx is tried again, at most KS_TOKEN_TRIES times, each failure printed with its status,
 * its time and the end of Keystone's log; a 4xx fails at once. Why: keystone-wsgi-public is a
 * single-threaded wsgiref server that hashes the password with bcrypt on every token request,
 * and at load 16 on two shared cores one run in four failed here ("no admin token from
 * Keystone") with nothing wrong in the code under test; the call then allowed 10 s and printed
 * neither the status nor the log, so which of the two it was is not known. */
#define KS_TOKEN_TRIES 3
static void keystone_token_scoped(char *buf, size_t size, bool system)
{
        for (int attempt = 1;; attempt++) {
                _cleanup_free_ char *out = sh_out(
                        "curl -s -m 30 -D - -o /dev/null -w 'status=%%{http_code} time=%%{time_total}\n' "
                        "-H 'Content-Type: application/json' -d '{\"auth\":{\"identity\":"
                        "{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"admin\",\"domain\":"
                        "{\"name\":\"Default\"},\"password\":\"%s\"}}},\"scope\":%s}}' %s/auth/tokens | tr -d '\\r'",
                        KEYSTONE_ADMIN_PW,
                        system ? "{\"system\":{\"all\":true}}"
                               : "{\"project\":{\"name\":\"admin\",\"domain\":{\"name\":\"Default\"}}}",
                        KEYSTONE_URL);
                const char *tok = out ? strcasestr(out, "\nx-subject-token: ") : NULL, *st;
                long status;

                if (tok) {
                        size_t len;
                        tok += strlen("\nx-subject-token: ");
                        len = strcspn(tok, "\n");
                        ck_assert_msg(len > 20 && len < size, "Keystone's token has %zu bytes", len);
                        memcpy(buf, tok, len);
                        buf[len] = '\0';
                        return;
                }
                st = out ? strstr(out, "status=") : NULL;
                status = st ? strtol(st + 7, NULL, 10) : 0;
                {
                        _cleanup_free_ char *tail = sh_out("tail -n 30 '%s/ks.log'", ks_dir);
                        fprintf(stderr, "test-placement: no admin token from Keystone (attempt %d of %d, %s)\n"
                                        "--- the end of %s/ks.log:\n%s\n", attempt, KS_TOKEN_TRIES,
                                st ? st : "no answer", ks_dir, tail ? tail : "");
                }
                ck_assert_msg(attempt < KS_TOKEN_TRIES && (status == 0 || status >= 500),
                              "no admin token from Keystone (%s)", st ? st : "no answer");
        }
}

static void keystone_admin_token(char *buf, size_t size) { keystone_token_scoped(buf, size, false); }

/* A call to Keystone with the test's admin token: status, body in *ret. */
static int ks_api(const char *method, const char *path, const char *body, struct json_object **ret)
{
        char *out = sh_out("curl -s -m 10 -X %s -H 'X-Auth-Token: %s' -H 'Content-Type: application/json' %s%s%s "
                           "-w '\\n%%{http_code}' '%s%s'", method, test_token, body ? "--data '" : "", body ? body : "",
                           body ? "'" : "", KEYSTONE_URL, path);
        char *nl = out ? strrchr(out, '\n') : NULL;
        int status = 0;

        if (nl) {
                status = (int)strtol(nl + 1, NULL, 10);
                *nl = '\0';
        }
        if (status >= 500) {
                /* Keystone's own traceback says why (its answer does not): show it with the failure */
                _cleanup_free_ char *tail = sh_out("tail -n 40 '%s/ks.log'", ks_dir);
                fprintf(stderr, "test-placement: keystone answered %s %s with %d: %s\n--- the end of %s/ks.log:\n%s\n",
                        method, path, status, out ? out : "", ks_dir, tail ? tail : "");
        }
        if (ret)
                *ret = out && out[0] ? json_tokener_parse(out) : NULL;
        free(out);
        return status;
}

static void ks_setup(void)
{
        ck_assert_msg(ks_pid > 0, "keystone is not running (see main's message)");
        plc_keystone = true;
        keystone_admin_token(test_token, sizeof(test_token));
        memset(&core, 0, sizeof(core));
        memset(&plc, 0, sizeof(plc));
        plc_start(&plc);
}

#define KS_CONFIG "plugs = hardware-observe\nplacement_auth = keystone\nkeystone_auth_url = " KEYSTONE_URL "\n"

/* Password auth, project scope: registered; one token fetched; the password never shows. */
START_TEST(test_keystone_password)
{
        struct json_object *st, *list = NULL;
        _cleanup_free_ char *log = NULL;

        core_prepare(&core, 1024);
        core_start(&core, KS_CONFIG "placement_url = " PLACEMENT_URL "\nprovider_name = it-ks-password\n"
                                    "keystone_username = admin\nkeystone_password = " KEYSTONE_ADMIN_PW "\n"
                                    "keystone_project_name = admin\n");
        st = wait_state(&core, "synced", 30000);
        ck_assert_str_eq(jstr(jget(st, "placement"), "auth"), "keystone");
        ck_assert_uint_eq(counter(st, "auth"), 1);
        ck_assert_ptr_null(strstr(json_object_to_json_string(st), KEYSTONE_ADMIN_PW));
        json_object_put(st);
        ck_assert_int_eq(plc_api("GET", "/resource_providers?name=it-ks-password", "1.14", NULL, &list), 200);
        ck_assert_uint_eq(json_object_array_length(jget(list, "resource_providers")), 1);
        json_object_put(list);
        core_stop(&core);
        ck_assert_int_eq(read_file_bounded(core.log, 1 << 24, &log, NULL), 0);
        ck_assert_ptr_null(strstr(log, KEYSTONE_ADMIN_PW));
}
END_TEST

/* An application credential, and Placement's endpoint found in the token's catalog by region. */
START_TEST(test_keystone_app_cred_and_catalog)
{
        struct json_object *r = NULL, *st, *list = NULL;
        char config[2048], user_id[128], cred_id[128], secret[256], svc_id[128];

        /* the user's id, an application credential of it, and a placement service with an endpoint */
        ck_assert_int_eq(ks_api("GET", "/users?name=admin", NULL, &r), 200);
        (void)strscpy(user_id, jstr(json_object_array_get_idx(jget(r, "users"), 0), "id"), sizeof(user_id));
        json_object_put(r);
        {
                char path[256];
                (void)snprintf(path, sizeof(path), "/users/%s/application_credentials", user_id);
                ck_assert_int_eq(ks_api("POST", path, "{\"application_credential\":{\"name\":\"nova-hv-it\"}}", &r),
                                 201);
        }
        (void)strscpy(cred_id, jstr(jget(r, "application_credential"), "id"), sizeof(cred_id));
        (void)strscpy(secret, jstr(jget(r, "application_credential"), "secret"), sizeof(secret));
        json_object_put(r);
        ck_assert_int_eq(ks_api("POST", "/services", "{\"service\":{\"type\":\"placement\",\"name\":\"placement\"}}", &r), 201);
        (void)strscpy(svc_id, jstr(jget(r, "service"), "id"), sizeof(svc_id));
        json_object_put(r);
        {
                char body[512];
                (void)snprintf(body, sizeof(body), "{\"endpoint\":{\"service_id\":\"%s\",\"interface\":\"public\","
                                                   "\"url\":\"%s/\",\"region_id\":\"RegionOne\"}}", svc_id, PLACEMENT_URL);
                ck_assert_int_eq(ks_api("POST", "/endpoints", body, NULL), 201);
        }
        core_prepare(&core, 1024);
        (void)snprintf(config, sizeof(config), KS_CONFIG "placement_url = catalog\nplacement_region = RegionOne\n"
                                                         "provider_name = it-ks-appcred\nkeystone_app_cred_id = %s\n"
                                                         "keystone_app_cred_secret = %s\n", cred_id, secret);
        core_start(&core, config);
        st = wait_state(&core, "synced", 30000);
        ck_assert_str_eq(jstr(jget(st, "placement"), "url"), PLACEMENT_URL); /* from the catalog, '/' dropped */
        ck_assert_ptr_null(strstr(json_object_to_json_string(st), secret));
        json_object_put(st);
        ck_assert_int_eq(plc_api("GET", "/resource_providers?name=it-ks-appcred", "1.14", NULL, &list), 200);
        ck_assert_uint_eq(json_object_array_length(jget(list, "resource_providers")), 1);
        json_object_put(list);
        /* a region without a placement endpoint: said so */
        core_stop(&core);
        (void)snprintf(config, sizeof(config), KS_CONFIG "placement_url = catalog\nplacement_region = RegionTwo\n"
                                                         "provider_name = it-ks-appcred\nkeystone_app_cred_id = %s\n"
                                                         "keystone_app_cred_secret = %s\n", cred_id, secret);
        core_start(&core, config);
        st = wait_state(&core, "retrying", 30000);
        ck_assert_ptr_nonnull(strstr(jstr(jget(st, "placement"), "error"), "no placement endpoint in region RegionTwo"));
        json_object_put(st);
        {
                char path[256];
                (void)snprintf(path, sizeof(path), "/services/%s", svc_id);
                (void)ks_api("DELETE", path, NULL, NULL);
        }
}
END_TEST

/* A wrong password: Keystone's 401 in status with the fix. Then a working core whose tokens are
 * revoked behind its back (its user disabled and enabled again: Keystone records a revocation
 * event): the next refresh meets 401, gets one new token and is in sync again. */
START_TEST(test_keystone_wrong_password_and_reauth)
{
        struct json_object *st, *r = NULL;
        char user_id[128], project_id[128], role_id[128], path[512], body[256];
        uint64_t auths;

        core_prepare(&core, 1024);
        core_start(&core, KS_CONFIG "placement_url = " PLACEMENT_URL "\nprovider_name = it-ks-wrong\n"
                                    "keystone_username = admin\nkeystone_password = not-the-Pw-42\n"
                                    "keystone_project_name = admin\n");
        st = wait_state(&core, "retrying", 30000);
        ck_assert_ptr_nonnull(strstr(jstr(jget(st, "placement"), "error"), "Keystone refused the token request (401)"));
        ck_assert_ptr_nonnull(strstr(jstr(jget(st, "placement"), "fix"), "keystone-username"));
        ck_assert_ptr_null(strstr(json_object_to_json_string(st), "not-the-Pw-42"));
        json_object_put(st);
        core_stop(&core);

        /* a service user of the core's own, admin on project admin */
        ck_assert_int_eq(ks_api("POST", "/users", "{\"user\":{\"name\":\"nova-hv-it\",\"password\":\"nova-hv-Pw-7\","
                                                  "\"domain_id\":\"default\"}}", &r), 201);
        (void)strscpy(user_id, jstr(jget(r, "user"), "id"), sizeof(user_id));
        json_object_put(r);
        ck_assert_int_eq(ks_api("GET", "/projects?name=admin", NULL, &r), 200);
        (void)strscpy(project_id, jstr(json_object_array_get_idx(jget(r, "projects"), 0), "id"), sizeof(project_id));
        json_object_put(r);
        ck_assert_int_eq(ks_api("GET", "/roles?name=admin", NULL, &r), 200);
        (void)strscpy(role_id, jstr(json_object_array_get_idx(jget(r, "roles"), 0), "id"), sizeof(role_id));
        json_object_put(r);
        (void)snprintf(path, sizeof(path), "/projects/%s/users/%s/roles/%s", project_id, user_id, role_id);
        ck_assert_int_eq(ks_api("PUT", path, NULL, NULL) / 100, 2);

        core_start(&core, KS_CONFIG "placement_url = " PLACEMENT_URL "\nprovider_name = it-ks-wrong\n"
                                    "keystone_username = nova-hv-it\nkeystone_password = nova-hv-Pw-7\n"
                                    "keystone_project_name = admin\nplacement_refresh_s = 10\n");
        st = wait_state(&core, "synced", 30000);
        auths = counter(st, "auth");
        ck_assert_uint_eq(auths, 1);
        json_object_put(st);
        (void)snprintf(path, sizeof(path), "/users/%s", user_id);
        (void)snprintf(body, sizeof(body), "{\"user\":{\"enabled\":false}}");
        ck_assert_int_eq(ks_api("PATCH", path, body, NULL), 200);
        sleep_ms(1100); /* revocation events have a one-second granularity */
        (void)snprintf(body, sizeof(body), "{\"user\":{\"enabled\":true}}");
        ck_assert_int_eq(ks_api("PATCH", path, body, NULL), 200);
        for (int i = 0;; i++) {
                ck_assert_int_eq(core_api(&core, "GET", "/v1/status", NULL, &st), 200);
                if (counter(st, "auth") > auths && streq(jstr(jget(st, "placement"), "state"), "synced")) {
                        json_object_put(st);
                        break;
                }
                ck_assert_msg(i < 600, "no re-authentication within 30 s (state %s, %" PRIu64 " token requests: %.200s)",
                              jstr(jget(st, "placement"), "state"), counter(st, "auth"),
                              jstr(jget(st, "placement"), "error"));
                json_object_put(st);
                sleep_ms(50);
        }
}
END_TEST

/* A shell command that switches the sqlite file named after it to WAL mode (fails otherwise). */
#define SQLITE_WAL "python3 -c 'import sqlite3, sys; sys.exit(sqlite3.connect(sys.argv[1]).execute(\"PRAGMA journal_mode=WAL\").fetchone()[0] != \"wal\")'"

/* sh() without Check's asserts, for main() (outside any test). */
static int run_outside_tests(const char *fmt, ...) _printf_(1, 2);
static int run_outside_tests(const char *fmt, ...)
{
        char cmd[2048];
        va_list ap;
        int status;
        pid_t pid;

        va_start(ap, fmt);
        (void)vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (devnull >= 0)
                        (void)dup2(devnull, STDOUT_FILENO);
                execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) != pid)
                return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

int main(void)
{
        Suite *s = suite_create("placement");
        TCase *tc = tcase_create("placement");
        SRunner *sr;
        int failed;

        harness_enter_netns("test-placement");
        /* our tmpfs mounts stay in this test's own mount namespace */
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
                fprintf(stderr, "test-placement: cannot make a private mount namespace: %s\n", strerror(errno));
                return 1;
        }
        if (run_outside_tests("command -v placement-api && command -v placement-manage") != 0) {
                fprintf(stderr, "test-placement: placement-api is not installed (python3-placement; make deps)\n");
                return 1;
        }
        /* Both services keep sqlite files, in WAL mode (kept in the file) with a 30 s busy timeout.
         * Why: Keystone once answered POST /services with 500 here, "sqlite3.OperationalError:
         * database is locked" raised by COMMIT after sqlite's 5 s busy timeout. Failing at COMMIT
         * means the writer had its RESERVED lock and waited for the readers to go: a connection of
         * Keystone's own (single-threaded) process still held a read transaction (oslo.db emits
         * BEGIN for reads too). In the default rollback-journal mode a reader blocks a writer's
         * COMMIT; in WAL mode it does not. Measured with this file's Keystone setup and the keystone
         * case's calls in a loop (token, GET users, POST application_credentials, POST services,
         * POST endpoints, DELETE services, POST users, PATCH user twice; 15 rounds, load 16):
         * rollback journal, POST /services failed with that 500 in 15 of 15 rounds (in 4 of 5
         * without the application credential before it; in 5 of 5 with a 30 s busy timeout: the
         * reader does not go away while the writer waits, so a longer timeout alone does not help);
         * WAL with the 30 s timeout, 0 failures in 135 calls and no lock in Keystone's log. Why the
         * case passed most of the time before WAL is not established. */
        (void)snprintf(template_dir, sizeof(template_dir), "/tmp/nova-plc-template-XXXXXX");
        if (!mkdtemp(template_dir) ||
            run_outside_tests("printf '[placement_database]\\nconnection = sqlite:///%s/p.db?timeout=30\\n[api]\\n"
               "auth_strategy = noauth2\\n' > '%s/placement.conf' && placement-manage --config-file '%s/placement.conf' db sync && "
               SQLITE_WAL " '%s/p.db'", template_dir, template_dir, template_dir, template_dir) != 0) {
                fprintf(stderr, "test-placement: placement-manage db sync failed in %s\n", template_dir);
                return 1;
        }
        /* Keystone, once: db_sync, fernet and credential keys, bootstrap (admin, RegionOne), then
         * keystone-wsgi-public (a wsgiref server) on 127.0.0.1:5000 of this netns */
        (void)snprintf(ks_dir, sizeof(ks_dir), "/tmp/nova-ks-XXXXXX");
        if (!mkdtemp(ks_dir) ||
            run_outside_tests("cd '%s' && printf '[database]\\nconnection = sqlite:///%s/k.db?timeout=30\\n[token]\\nprovider = fernet\\n"
                              "[fernet_tokens]\\nkey_repository = %s/fernet-keys\\n[fernet_receipts]\\nkey_repository = "
                              "%s/fernet-receipts\\n[credential]\\nkey_repository = %s/credential-keys\\n' > keystone.conf && "
                              "KM='keystone-manage --config-file %s/keystone.conf' && $KM db_sync >ks-manage.log 2>&1 && "
                              "$KM fernet_setup --keystone-user root --keystone-group root >>ks-manage.log 2>&1 && "
                              "$KM credential_setup --keystone-user root --keystone-group root >>ks-manage.log 2>&1 && "
                              "$KM bootstrap --bootstrap-password '%s' --bootstrap-region-id RegionOne "
                              "--bootstrap-public-url " KEYSTONE_URL " --bootstrap-internal-url " KEYSTONE_URL " "
                              "--bootstrap-admin-url " KEYSTONE_URL " >>ks-manage.log 2>&1 && " SQLITE_WAL " '%s/k.db'",
                              ks_dir, ks_dir, ks_dir, ks_dir, ks_dir, ks_dir, KEYSTONE_ADMIN_PW, ks_dir) != 0) {
                fprintf(stderr, "test-placement: keystone-manage failed (see %s/ks-manage.log); the keystone tests will fail\n",
                        ks_dir);
        } else {
                ks_pid = fork();
                if (ks_pid == 0) {
                        char log[PATH_MAX + 16];
                        int fd;
                        (void)snprintf(log, sizeof(log), "%s/ks.log", ks_dir);
                        fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                        if (fd >= 0) {
                                dup2(fd, 1);
                                dup2(fd, 2);
                        }
                        setenv("OS_KEYSTONE_CONFIG_DIR", ks_dir, 1);
                        execlp("keystone-wsgi-public", "keystone-wsgi-public", "--host", "127.0.0.1", "--port", "5000",
                               (char *)NULL);
                        _exit(127);
                }
                for (int i = 0; i < 600 && run_outside_tests("curl -sf -m 2 " KEYSTONE_URL " >/dev/null") != 0; i++)
                        usleep(50000);
        }
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 180);
        tcase_add_test(tc, test_registration_matches_host);
        tcase_add_test(tc, test_idle_and_boot_write_nothing);
        tcase_add_test(tc, test_restart_keeps_the_provider);
        tcase_add_test(tc, test_stale_generation_recovered);
        tcase_add_test(tc, test_placement_down_and_back);
        tcase_add_test(tc, test_wrong_url_and_token);
        tcase_add_test(tc, test_name_taken);
        suite_add_tcase(s, tc);
        {
                /* its own case, so that it can be run alone: CK_RUN_CASE=pool */
                TCase *pool = tcase_create("pool");
                tcase_add_checked_fixture(pool, setup, teardown);
                tcase_set_timeout(pool, 120);
                tcase_add_test(pool, test_disk_gb_is_the_storage_pool);
                suite_add_tcase(s, pool);
        }
        {
                /* its own case: CK_RUN_CASE=hardware-change runs it alone */
                TCase *hw = tcase_create("hardware-change");
                tcase_add_checked_fixture(hw, setup, teardown);
                tcase_set_timeout(hw, 120);
                tcase_add_test(hw, test_hardware_change_resyncs);
                suite_add_tcase(s, hw);
        }
        {
                TCase *ks = tcase_create("keystone");
                tcase_add_checked_fixture(ks, ks_setup, teardown);
                tcase_set_timeout(ks, 120);
                tcase_add_test(ks, test_keystone_password);
                tcase_add_test(ks, test_keystone_app_cred_and_catalog);
                tcase_add_test(ks, test_keystone_wrong_password_and_reauth);
                suite_add_tcase(s, ks);
        }
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        if (ks_pid > 0) {
                kill(ks_pid, SIGTERM);
                (void)waitpid(ks_pid, NULL, 0);
        }
        (void)run_outside_tests("rm -rf '%s' '%s'", template_dir, ks_dir);
        return failed ? 1 : 0;
}
