/* test-snap-package.c - the snap `make snap` packed, unpacked and run outside
 * confinement: its meta/snap.yaml is derived from snapcraft.yaml, the
 * squashfs has the layout snapd expects, every app starts from its
 * wrapper with $SNAP, $SNAP_DATA and $SNAP_COMMON pointing at test
 * directories and the snap-wide environment of meta/snap.yaml applied as
 * snapd applies it, and every NEEDED library of every ELF file in the snap
 * resolves in the snap or in the core22 base's list with glibc <= 2.35
 * (scripts/snaplibs.py check; shown to fail on a copy missing one bundled
 * library and on a copy carrying a program that needs GLIBC_2.36 with an
 * executable stack).
 *
 * snapd cannot run here: a stand-in `snapctl` on PATH answers
 * `is-connected` from a file the test writes (every plug connected) and
 * records every call. No AppArmor or seccomp applies: what confinement adds
 * is checked by test-snap-conformance (against the policy) and by the VM
 * test under real snapd. */
#include "harness.h"

#include "apiclient.h"
#include "plugs.h"

#include <check.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char dir[PATH_MAX], snap_file[PATH_MAX], snap_dir[PATH_MAX], data_dir[PATH_MAX], common_dir[PATH_MAX],
        api_sock[PATH_MAX], log_path[PATH_MAX], calls_file[PATH_MAX], app_path[4096];
/* meta/snap.yaml's environment, expanded as snapd does for an app. */
static char app_ld_library_path[8192], app_env_path[8192];

static void find_snap_file(void)
{
        const char *bin = getenv("NOVA_BIN");
        char pattern[PATH_MAX];
        glob_t g;

        ck_assert_int_eq(xsnprintf(pattern, sizeof(pattern), "%s/../nova-hypervisor_*_amd64.snap", bin ? bin : "build/bin"), 0);
        ck_assert_msg(glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc == 1, "expected one snap at %s (make snap)", pattern);
        ck_assert_ptr_nonnull(realpath(g.gl_pathv[0], snap_file));
        globfree(&g);
}

static void setup(void)
{
        char path[PATH_MAX], script[2048];

        find_snap_file();
        ck_assert_int_eq(xsnprintf(dir, sizeof(dir), "/tmp/nova-snappkg-XXXXXX"), 0);
        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(xsnprintf(snap_dir, sizeof(snap_dir), "%s/snap", dir), 0);
        ck_assert_int_eq(xsnprintf(data_dir, sizeof(data_dir), "%s/var-snap/nova-hypervisor/x1", dir), 0);
        ck_assert_int_eq(xsnprintf(common_dir, sizeof(common_dir), "%s/var-snap/nova-hypervisor/common", dir), 0);
        ck_assert_int_eq(mkdir_p(data_dir, 0755), 0);
        ck_assert_int_eq(mkdir_p(common_dir, 0755), 0);
        ck_assert_int_eq(xsnprintf(log_path, sizeof(log_path), "%s/log", dir), 0);
        ck_assert_int_eq(xsnprintf(calls_file, sizeof(calls_file), "%s/snapctl.calls", dir), 0);
        ck_assert_int_eq(xsnprintf(api_sock, sizeof(api_sock), "%s/run/nova-hypervisor.socket", data_dir), 0);
        ck_assert_int_eq(sh("unsquashfs -q -n -d %s %s", snap_dir, snap_file), 0);

        /* Every plug connected, plus the core's network-bind. */
        ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/connected", dir), 0);
        {
                char list[1024] = "";
                for (int i = 0; i < _PLUG_MAX; i++)
                        (void)snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s\n", plug_table[i].name);
                (void)snprintf(list + strlen(list), sizeof(list) - strlen(list), "network-bind\n");
                ck_assert_int_eq(write_file_atomic(path, list, strlen(list), 0644), 0);
        }
        ck_assert_int_eq(xsnprintf(script, sizeof(script),
                                   "#!/bin/sh\n"
                                   "# stand-in for snapctl: snapd cannot run here\n"
                                   "echo \"$*\" >> %s\n"
                                   "case \"$1 $2\" in\n"
                                   "  'is-connected --list') cat %s ;;\n"
                                   "  'is-connected '*) grep -qx \"$2\" %s ;;\n"
                                   "  'set-health '*) ;;\n"
                                   "  *) echo \"error: unsupported in the stand-in: $*\" >&2; exit 1 ;;\n"
                                   "esac\n",
                                   calls_file, path, path),
                         0);
        ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/bin", dir), 0);
        ck_assert_int_eq(mkdir(path, 0755), 0);
        ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/bin/snapctl", dir), 0);
        ck_assert_int_eq(write_file_atomic(path, script, strlen(script), 0755), 0);
        /* The apps' PATH: the stand-in first (sh_out() resets the test's own PATH). */
        ck_assert_int_eq(xsnprintf(app_path, sizeof(app_path), "%s/bin:/usr/sbin:/usr/bin:/sbin:/bin", dir), 0);
        /* The snap-wide environment: snapd expands it with $SNAP set and
         * SNAP_LIBRARY_PATH pointing at its GL directories. */
        {
                const char *keys[] = { "LD_LIBRARY_PATH", "PATH" };
                char *bufs[] = { app_ld_library_path, app_env_path };
                for (int i = 0; i < 2; i++) {
                        char *v = sh_out("/usr/bin/python3 -c 'import yaml,sys; m=yaml.safe_load(open(sys.argv[1]));"
                                         "print(m[\"environment\"][sys.argv[2]])' %s/meta/snap.yaml %s | "
                                         "env -i SNAP=%s SNAP_LIBRARY_PATH=/var/lib/snapd/lib/gl:/var/lib/snapd/void "
                                         "PATH=%s /bin/sh -c 'read -r v; eval \"printf %%s \\\"$v\\\"\"'",
                                         snap_dir, keys[i], snap_dir, app_path);
                        ck_assert_msg(v[0] == '/', "meta/snap.yaml environment %s expands to '%s'", keys[i], v);
                        ck_assert_int_eq(strscpy(bufs[i], v, sizeof(app_ld_library_path)) >= 0, 1);
                        free(v);
                }
        }
        setenv("SNAP", snap_dir, 1);
        setenv("SNAP_DATA", data_dir, 1);
        setenv("SNAP_COMMON", common_dir, 1);
        setenv("SNAP_NAME", "nova-hypervisor", 1);
        setenv("SNAP_INSTANCE_NAME", "nova-hypervisor", 1);
}

static void teardown(void)
{
        if (!getenv("KEEP")) (void)sh("rm -rf %s", dir);
}

/* "app<TAB>command" lines of the packed meta/snap.yaml. */
static char *apps_of_packed_snap(void)
{
        return sh_out("/usr/bin/python3 -c 'import yaml,sys; m=yaml.safe_load(open(sys.argv[1]));"
                      "[print(n+\"\\t\"+a[\"command\"]) for n,a in m[\"apps\"].items()]' %s/meta/snap.yaml",
                      snap_dir);
}

static const char *command_of(const char *apps, const char *app, char *buf, size_t size)
{
        char key[128];
        const char *p;

        ck_assert_int_eq(xsnprintf(key, sizeof(key), "%s\t", app), 0);
        for (p = apps; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
                if (strncmp(p, key, strlen(key)) == 0) {
                        const char *s = p + strlen(key);
                        size_t n = strcspn(s, "\n");
                        ck_assert_uint_lt(n, size);
                        memcpy(buf, s, n);
                        buf[n] = '\0';
                        return buf;
                }
        ck_abort_msg("app %s not in meta/snap.yaml", app);
        return NULL;
}

/* Start "$SNAP/<command>" (a wrapper plus its arguments) the way snap run
 * would, outside confinement; output appended to the log. */
static pid_t start_app(const char *command)
{
        char cmd[512], *argv[8];
        int argc = 0;
        pid_t pid;

        ck_assert_int_eq(xsnprintf(cmd, sizeof(cmd), "%s/%s", snap_dir, command), 0);
        for (char *tok = strtok(cmd, " "); tok && argc < 7; tok = strtok(NULL, " "))
                argv[argc++] = tok;
        argv[argc] = NULL;
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                if (setenv("PATH", app_env_path, 1) < 0 || setenv("LD_LIBRARY_PATH", app_ld_library_path, 1) < 0 ||
                    chdir(data_dir) < 0 || log < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
                        _exit(127);
                execv(argv[0], argv);
                _exit(127);
        }
        return pid;
}

static void stop_app(pid_t pid)
{
        int status;

        if (pid <= 0)
                return;
        kill(pid, SIGTERM);
        for (int i = 0; i < 500; i++) {
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return;
                sleep_ms(10);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
}

static const char *plug_module_state(const char *plug, char *buf, size_t size, pid_t *ret_pid)
{
        struct json_object *root = NULL, *plugs, *m, *v;

        buf[0] = '\0';
        *ret_pid = 0;
        if (api_request(api_sock, "GET", "/v1/status", NULL, 5000, &root) != 200)
                return buf;
        ck_assert(json_object_object_get_ex(root, "plugs", &plugs));
        for (size_t i = 0; i < json_object_array_length(plugs); i++) {
                struct json_object *p = json_object_array_get_idx(plugs, i);
                if (!streq(json_object_get_string(json_object_object_get(p, "plug")), plug))
                        continue;
                if (json_object_object_get_ex(p, "module", &m)) {
                        if ((v = json_object_object_get(m, "state")))
                                (void)strscpy(buf, json_object_get_string(v), size);
                        if ((v = json_object_object_get(m, "pid")))
                                *ret_pid = json_object_get_int(v);
                }
        }
        json_object_put(root);
        return buf;
}

START_TEST(test_packed_layout)
{
        char *out;

        /* mksquashfs -comp xz -no-xattrs -no-fragments, as the superblock says. */
        out = sh_out("unsquashfs -s %s", snap_file);
        ck_assert_msg(strstr(out, "Compression xz"), "superblock: %s", out);
        ck_assert_msg(strstr(out, "Xattrs are not stored") || strstr(out, "No xattrs in archive"), "superblock: %s", out);
        ck_assert_msg(strstr(out, "Fragments are not stored") || strstr(out, "Number of fragments 0"),
                      "superblock: %s", out);
        free(out);
        /* -all-root: every file belongs to root. */
        out = sh_out("unsquashfs -lln %s | awk 'NR > 3 && $2 != \"0/0\"' | head -5", snap_file);
        ck_assert_msg(out[0] == '\0', "files not owned by root: %s", out);
        free(out);
        /* The file name carries the version of snapcraft.yaml. */
        out = sh_out("/usr/bin/python3 scripts/snapmeta.py version snapcraft.yaml");
        out[strcspn(out, "\n")] = '\0';
        {
                char want[128];
                ck_assert_int_eq(xsnprintf(want, sizeof(want), "/nova-hypervisor_%s_amd64.snap", out), 0);
                ck_assert_msg(strstr(snap_file, want), "%s is not named %s", snap_file, want);
        }
        free(out);
        /* meta/snap.yaml says what snapcraft.yaml says: name, confinement, base,
         * plugs and apps identical; a hook entry for every file in meta/hooks/. */
        ck_assert_int_eq(sh("/usr/bin/python3 -c 'import yaml,sys,os\n"
                            "m=yaml.safe_load(open(sys.argv[1]+\"/meta/snap.yaml\"))\n"
                            "s=yaml.safe_load(open(\"snapcraft.yaml\"))\n"
                            "for k in (\"name\",\"version\",\"base\",\"grade\",\"confinement\",\"plugs\",\"apps\"):\n"
                            "    assert m[k]==s[k], k\n"
                            "hooks=sorted(os.listdir(sys.argv[1]+\"/meta/hooks\"))\n"
                            "assert sorted(m.get(\"hooks\",{}))==hooks==sorted(os.listdir(\"snap/hooks\")), hooks\n"
                            "assert m[\"confinement\"]==\"strict\" and m[\"name\"]==\"nova-hypervisor\"\n' %s",
                            snap_dir),
                         0);
        /* Programs and wrappers are executable where the apps say. */
        for (int i = 0; i < _PLUG_MAX; i++) {
                char path[PATH_MAX];
                ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/bin/nova-module", snap_dir), 0);
                ck_assert_int_eq(access(path, X_OK), 0);
        }
}
END_TEST

START_TEST(test_apps_start_from_wrappers)
{
        char *apps = apps_of_packed_snap(), cmd[256], buf[64], conf[PATH_MAX], path[PATH_MAX];
        pid_t core, mods[_PLUG_MAX] = { 0 };
        struct json_object *st = NULL;
        struct stat sb;
        int started = 0;

        /* The configure hook's output: the wrapper must hand it to the core and the modules. */
        ck_assert_int_eq(xsnprintf(conf, sizeof(conf), "%s/nova-hypervisor.conf", data_dir), 0);
        ck_assert_int_eq(write_file_atomic(conf, "libvirt_uri = test:///default\nlog_level = debug\n", 48, 0644), 0);

        core = start_app(command_of(apps, "nova-compute", cmd, sizeof(cmd)));
        for (int i = 0; i < 500 && api_request(api_sock, "GET", "/v1/status", NULL, 2000, &st) != 200; i++)
                sleep_ms(10);
        ck_assert_msg(st, "nova-compute did not serve %s; see %s", api_sock, log_path);
        json_object_put(st);
        /* State under $SNAP_COMMON, sockets under $SNAP_DATA, the config from the wrapper. */
        ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/state", common_dir), 0);
        ck_assert_int_eq(stat(path, &sb), 0);
        ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/run/modules.socket", data_dir), 0);
        ck_assert_int_eq(stat(path, &sb), 0);
        ck_assert(S_ISSOCK(sb.st_mode));
        ck_assert_int_eq(xsnprintf(path, sizeof(path), "/proc/%d/cmdline", (int)core), 0);
        {
                char *cl = sh_out("tr '\\0' ' ' < %s", path);
                ck_assert_msg(strstr(cl, "/snap/bin/nova-compute --config ") && strstr(cl, conf), "cmdline: %s", cl);
                free(cl);
        }
        ck_assert(file_contains(calls_file, "is-connected --list"));

        /* Every module app whose program this build has: it connects to the core. */
        for (int i = 0; i < _PLUG_MAX; i++) {
                const char *plug = plug_table[i].name;
                ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/bin/%s", snap_dir, plug_table[i].program), 0);
                if (access(path, X_OK) < 0) {
                        /* Not built yet: the wrapper says so and fails. */
                        int status;
                        pid_t p = start_app(command_of(apps, plug, cmd, sizeof(cmd)));
                        waitpid(p, &status, 0);
                        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1);
                        ck_assert(file_contains(log_path, "this build has no module for plug"));
                        fprintf(stderr, "note: %s is not in this build; its app reports that\n", plug_table[i].program);
                        continue;
                }
                mods[i] = start_app(command_of(apps, plug, cmd, sizeof(cmd)));
                started++;
        }
        for (int i = 0; i < _PLUG_MAX; i++) {
                pid_t pid = 0;
                int t;
                if (!mods[i])
                        continue;
                for (t = 0; t < 1000 && !streq(plug_module_state(plug_table[i].name, buf, sizeof(buf), &pid), "running");
                     t++)
                        sleep_ms(10);
                ck_assert_msg(streq(buf, "running"), "module app %s: state %s; see %s", plug_table[i].name, buf,
                              log_path);
                /* The module the core talks to is the process the wrapper exec'd. */
                ck_assert_int_eq(pid, mods[i]);
                ck_assert_int_eq(xsnprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid), 0);
                char *cl = sh_out("tr '\\0' ' ' < %s", path);
                ck_assert_msg(strstr(cl, "--connect ") && strstr(cl, "/run/modules.socket --config ") && strstr(cl, conf),
                              "cmdline: %s", cl);
                free(cl);
        }
        ck_assert_int_ge(started, 4);
        /* Each module asked whether its own plug is connected. */
        for (int i = 0; i < _PLUG_MAX; i++) {
                char want[64];
                if (!mods[i])
                        continue;
                ck_assert_int_eq(xsnprintf(want, sizeof(want), "is-connected %s", plug_table[i].name), 0);
                ck_assert(file_contains(calls_file, want));
        }
        for (int i = 0; i < _PLUG_MAX; i++)
                stop_app(mods[i]);
        stop_app(core);
        free(apps);
}
END_TEST

/* Every NEEDED library resolves in the snap or in core22's list, glibc <= 2.35;
 * the check fails on a copy missing one bundled library and on a copy with a
 * program that needs GLIBC_2.36; the app environment makes the loader take the
 * bundled copies. */
START_TEST(test_libraries_resolve)
{
        char copy[PATH_MAX], lib[256] = "", *out;
        int rc;

        out = sh_out("/usr/bin/python3 scripts/snaplibs.py check %s 2>&1; echo rc=$?", snap_dir);
        ck_assert_msg(strstr(out, "rc=0\n"), "snaplibs check on the packed snap: %s", out);
        free(out);

        /* The bundled libraries are where snapcraft's LD_LIBRARY_PATH looks. */
        ck_assert_msg(strstr(app_ld_library_path, "/usr/lib/x86_64-linux-gnu"), "LD_LIBRARY_PATH=%s",
                      app_ld_library_path);
        out = sh_out("ls %s/usr/lib/x86_64-linux-gnu/ | grep -x 'libvirt.so.0'", snap_dir);
        ck_assert_msg(strstr(out, "libvirt.so.0"), "libvirt.so.0 is not bundled");
        free(out);
        /* nova-libvirt dlopen()s libvirt after its hello (src/lib/lazylib.h): no DT_NEEDED entry, a
         * .note.dlopen; the loader finds it by the same LD_LIBRARY_PATH, where the bundled copy is first. */
        out = sh_out("/usr/bin/python3 scripts/snaplibs.py elf %s/bin/nova-libvirt | grep '^dlopen'", snap_dir);
        ck_assert_msg(strstr(out, "libvirt.so.0"), "nova-libvirt declares no dlopen of libvirt.so.0: %s", out);
        free(out);
        out = sh_out("env LD_LIBRARY_PATH=%s ldd %s/usr/lib/x86_64-linux-gnu/libvirt.so.0 >/dev/null && "
                     "for d in $(echo %s | tr : ' '); do [ -e $d/libvirt.so.0 ] && echo $d/libvirt.so.0 && break; done",
                     app_ld_library_path, snap_dir, app_ld_library_path);
        {
                char want[PATH_MAX];
                ck_assert_int_eq(xsnprintf(want, sizeof(want), "%s/usr/lib/x86_64-linux-gnu/libvirt.so.0\n", snap_dir), 0);
                ck_assert_msg(streq(out, want), "the first libvirt.so.0 on LD_LIBRARY_PATH is not the bundled one: %s", out);
        }
        free(out);

        /* libcurl, which nova-compute dlopen()s (no DT_NEEDED entry; its .note.dlopen
         * says so) and core22 lacks, is bundled too. */
        out = sh_out("/usr/bin/python3 scripts/snaplibs.py elf %s/bin/nova-compute | grep '^dlopen'", snap_dir);
        ck_assert_msg(strstr(out, "dlopen libcurl.so.4"), "nova-compute declares no dlopen of libcurl: %s", out);
        free(out);
        out = sh_out("ls %s/usr/lib/x86_64-linux-gnu/ | grep -x 'libcurl.so.4'", snap_dir);
        ck_assert_msg(strstr(out, "libcurl.so.4"), "libcurl.so.4 is not bundled");
        free(out);

        /* A copy without one linked library (libnftables.so.1) and without the dlopen()ed
         * libcurl.so.4 fails, naming both. */
        ck_assert_int_eq(xsnprintf(copy, sizeof(copy), "%s/copy", dir), 0);
        ck_assert_int_eq(sh("cp -a %s %s", snap_dir, copy), 0);
        ck_assert_int_eq(strscpy(lib, "libnftables.so.1", sizeof(lib)) >= 0, 1);
        ck_assert_int_eq(sh("rm %s/usr/lib/x86_64-linux-gnu/%s %s/usr/lib/x86_64-linux-gnu/libcurl.so.4", copy, lib,
                            copy),
                         0);
        out = sh_out("/usr/bin/python3 scripts/snaplibs.py check %s 2>&1; echo rc=$?", copy);
        ck_assert_msg(strstr(out, "rc=1\n") && strstr(out, "bin/nova-firewall-control: needs libnftables.so.1"),
                      "check passed without %s: %s", lib, out);
        ck_assert_msg(strstr(out, "bin/nova-compute: dlopen()s libcurl.so.4"), "check passed without libcurl.so.4: %s",
                      out);
        free(out);
        ck_assert_int_eq(sh("rm -rf %s", copy), 0);

        /* A copy with a program that needs GLIBC_2.36 (arc4random) and has an
         * executable stack (which store review flags) fails, naming both. */
        ck_assert_int_eq(sh("cp -a %s %s", snap_dir, copy), 0);
        rc = sh("printf '#include <stdlib.h>\\nint main(void){return (int)(arc4random() & 1);}\\n' > %s/new.c && "
                "cc -z execstack -o %s/bin/needs-glibc-236 %s/new.c",
                dir, copy, dir);
        ck_assert_int_eq(rc, 0);
        out = sh_out("/usr/bin/python3 scripts/snaplibs.py check %s 2>&1; echo rc=$?", copy);
        ck_assert_msg(strstr(out, "rc=1\n") && strstr(out, "bin/needs-glibc-236: needs GLIBC_2.36"),
                      "check passed with a GLIBC_2.36 program: %s", out);
        ck_assert_msg(strstr(out, "bin/needs-glibc-236: executable stack"), "check missed the executable stack: %s", out);
        free(out);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("snap-package");
        TCase *tc = tcase_create("packed");
        SRunner *sr;
        int failed;

        harness_enter_netns("test-snap-package");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_packed_layout);
        tcase_add_test(tc, test_apps_start_from_wrappers);
        suite_add_tcase(s, tc);
        /* Three runs of scripts/snaplibs.py check (dpkg-shlibdeps over every
         * ELF file of the snap): minutes on a loaded 2-core machine. */
        tc = tcase_create("libraries");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 900);
        tcase_add_test(tc, test_libraries_resolve);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
