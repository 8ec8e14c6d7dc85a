/* test-snap-consistency.c - scripts/snapmeta.py's check (make
 * check-snap-consistency) and store-request on a copy of the tree: the real
 * tree agrees, and each kind of disagreement fails with a line naming it. */
#include "harness.h"

#include <check.h>

static char dir[PATH_MAX];

static void setup(void)
{
        ck_assert_int_eq(xsnprintf(dir, sizeof(dir), "/tmp/nova-snapcheck-XXXXXX"), 0);
        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(sh("mkdir -p %s/src/lib %s/snap && cp -r snapcraft.yaml interfaces %s/ && "
                            "cp src/lib/plugs.c %s/src/lib/ && cp -r snap/hooks %s/snap/",
                            dir, dir, dir, dir, dir),
                         0);
}

static void teardown(void)
{
        (void)sh("rm -rf %s", dir);
}

/* Output (stdout+stderr) of the check on the copy; *ret_status its exit status. */
static char *check_copy(int *ret_status)
{
        char *out = sh_out("/usr/bin/python3 scripts/snapmeta.py check %s 2>&1; echo \"status=$?\"", dir);
        char *st = strstr(out, "status=");
        ck_assert_ptr_nonnull(st);
        *ret_status = atoi(st + 7);
        return out;
}

START_TEST(test_tree_agrees)
{
        int status;
        char *out = check_copy(&status);

        ck_assert_msg(status == 0, "%s", out);
        free(out);
}
END_TEST

START_TEST(test_missing_module_dir_fails_clearly)
{
        int status;
        char *out;

        ck_assert_int_eq(sh("rm -rf %s/interfaces/process-control", dir), 0);
        out = check_copy(&status);
        ck_assert_int_eq(status, 1);
        ck_assert_msg(strstr(out, "interfaces/process-control/: missing: plug process-control is requested and has "
                                  "app process-control, but its module (nova-process-control) does not exist yet"),
                      "%s", out);
        free(out);
}
END_TEST

START_TEST(test_disagreements_fail)
{
        static const struct {
                const char *edit, *says;
        } cases[] = {
                /* a plug dropped from snapcraft.yaml */
                { "sed -i '/^  libvirt:$/,/^    interface: libvirt$/d' %s/snapcraft.yaml",
                  "plug libvirt (src/lib/plugs.c) is not requested" },
                /* a plug no module holds */
                { "sed -i 's/^plugs:$/plugs:\\n  system-trace:\\n    interface: system-trace/' %s/snapcraft.yaml",
                  "plug system-trace must never be requested" },
                /* a module app with a second plug */
                { "sed -i 's/plugs: \\[openvswitch\\]/plugs: [openvswitch, network-control]/' %s/snapcraft.yaml",
                  "app openvswitch must list exactly plugs: [openvswitch]" },
                /* a module app installed enabled */
                { "/usr/bin/python3 -c 'import sys,yaml; p=sys.argv[1]+\"/snapcraft.yaml\"; d=yaml.safe_load(open(p)); "
                  "del d[\"apps\"][\"firewall-control\"][\"install-mode\"]; yaml.safe_dump(d, open(p, \"w\"))' %s",
                  "app firewall-control must be a daemon with install-mode: disable" },
                /* a module directory with no plug */
                { "mkdir -p %s/interfaces/kernel-module-control", "interfaces/kernel-module-control/: no plug" },
                /* a missing hook */
                { "rm %s/snap/hooks/disconnect-plug-network-control", "snap/hooks/disconnect-plug-network-control: missing" },
                /* a missing manifest */
                { "rm %s/interfaces/libvirt/MANIFEST.md", "interfaces/libvirt/MANIFEST.md: missing" },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                int status;
                char *out;

                teardown();
                setup();
                char cmd[1024];
                /* each edit has one %s: the copy */
                const char *at = strstr(cases[i].edit, "%s");
                ck_assert_ptr_nonnull(at);
                ck_assert_int_eq(xsnprintf(cmd, sizeof(cmd), "%.*s%s%s", (int)(at - cases[i].edit), cases[i].edit, dir,
                                           at + 2),
                                 0);
                ck_assert_int_eq(sh("%s", cmd), 0);
                out = check_copy(&status);
                ck_assert_msg(status == 1 && strstr(out, cases[i].says), "case %zu: %s", i, out);
                free(out);
        }
}
END_TEST

START_TEST(test_store_request_from_manifests)
{
        char *out = sh_out("/usr/bin/python3 scripts/snapmeta.py store-request %s", dir);

        /* Every plug, its reason from its manifest, and the plugs we never ask for. */
        ck_assert_ptr_nonnull(strstr(out, "## network-control\n"));
        ck_assert_ptr_nonnull(strstr(out, "## libvirt\n"));
        ck_assert_ptr_nonnull(strstr(out, "### Why the plug is needed"));
        ck_assert_ptr_nonnull(strstr(out, "| `network-control` | `nova-hypervisor.network-control`"));
        ck_assert_ptr_nonnull(strstr(out, "CAP_NET_ADMIN"));
        ck_assert_ptr_nonnull(strstr(out, "`system-trace`: not requested"));
        ck_assert_ptr_nonnull(strstr(out, "`account-control`: not requested"));
        ck_assert_ptr_nonnull(strstr(out, "`kernel-module-control`: not requested"));
        free(out);
        /* The text comes from the manifests: a manifest without its "Why" section stops it. */
        ck_assert_int_eq(sh("sed -i 's/^## Why the network-control plug is needed/## Reasons/' "
                            "%s/interfaces/network-control/MANIFEST.md", dir),
                         0);
        out = sh_out("/usr/bin/python3 scripts/snapmeta.py store-request %s 2>&1 >/dev/null; echo status=$?", dir);
        ck_assert_msg(strstr(out, "network-control (section 'Why the plug is needed')") && strstr(out, "status=1"), "%s",
                      out);
        free(out);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("snap-consistency");
        TCase *tc = tcase_create("check");
        SRunner *sr;
        int failed;

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_tree_agrees);
        tcase_add_test(tc, test_missing_module_dir_fails_clearly);
        tcase_add_test(tc, test_disagreements_fail);
        tcase_add_test(tc, test_store_request_from_manifests);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
