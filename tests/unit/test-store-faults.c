/* test-store-faults.c - every write of the core's stores under I/O errors
 * (issue 20, item 5): the instance store (boot, delete, power actions, the
 * record at the end of an operation), the security-group store, and
 * write_file_atomic itself. The state dir is a real tmpfs of 64 KiB mounted in
 * a private mount namespace of the test (root): ENOSPC comes from filling it,
 * EROFS from remounting it read-only. EIO cannot be made with a real file
 * system on this kernel (no device-mapper, no fault injection), so it goes
 * through write_file_atomic_fault, the one test hook of util.c.
 *
 * What is checked each time: the call fails with the errno and a message that
 * names it; memory is as before (the instance, its task, the groups and their
 * rules); the state dir holds exactly the bytes it held before (no temp file,
 * no half record); no module was asked anything; and once space is back the
 * next write works. The pipeline engine runs against the fake module registry
 * of tests/unit/fake/ as in test-lifecycle-engine. */
#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake/fake-modules.h"
#include "firewall.h"
#include "instances.h"
#include "lifecycle.h"
#include "log.h"
#include "secgroups.h"
#include "statefs.h"

#define INST_UUID "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
#define PORT_A0 "11111111-1111-4111-8111-1111111111a0"
#define BOOT_ONE_PORT "{\"name\":\"vm1\",\"uuid\":\"" INST_UUID "\",\"ports\":[{\"port_uuid\":\"" PORT_A0 "\"}]}"
#define TMPFS_SIZE "64k"

static sd_event *event;
static struct nova_config cfg;
static struct instance_store *store;
static struct secgroup_store *groups;
static struct lifecycle *lc;
static struct firewall *fw;
static struct statefs statefs;
static char state_dir[64];

struct done {
        bool called;
        int status;
        char error[256];
};

static void on_done(int status, const char *error, int plug, struct instance *inst, void *userdata)
{
        struct done *d = userdata;

        (void)plug;
        (void)inst;
        d->called = true;
        d->status = status;
        (void)strscpy(d->error, error ? error : "", sizeof(d->error));
}

/* A private mount namespace (the test's own, Check forks each test) with a
 * small tmpfs as the state dir; then the stores on it, empty. */
static void setup(void)
{
        unsigned skipped = 0;
        char why[256];
        int r;

        log_init("test", LOG_LVL_ERR);
        r = statefs_private_namespace();
        ck_assert_msg(r == 0, "private mount namespace: %s (the test needs root)", strerror(-r));
        (void)strscpy(state_dir, "/tmp/nova-sf-XXXXXX", sizeof(state_dir));
        ck_assert_ptr_nonnull(mkdtemp(state_dir));
        ck_assert_int_eq(statefs_mount(&statefs, state_dir, TMPFS_SIZE), 0);
        fake_modules_init();
        fake_set_plug(PLUG_FIREWALL_CONTROL, false, false);
        config_defaults(&cfg);
        ck_assert_int_eq(instances_load(state_dir, &store, &skipped), 0);
        ck_assert_int_eq(secgroups_load(state_dir, &groups, why, sizeof(why)), 0);
        ck_assert_int_ge(sd_event_new(&event), 0);
        ck_assert_int_eq(lifecycle_new(event, &cfg, fake_modules(), store, &lc), 0);
        ck_assert_int_eq(firewall_new(event, fake_modules(), lc, store, groups, &fw), 0);
        lifecycle_set_firewall(lc, fw);
}

static void teardown(void)
{
        write_file_atomic_fault = NULL;
        ck_assert_uint_eq(fake_rejected(), 0);
        lc = lifecycle_free(lc);
        fw = firewall_free(fw);
        store = instances_free(store);
        groups = secgroups_free(groups);
        event = sd_event_unref(event);
        statefs_umount(&statefs);
        (void)rmdir(state_dir);
}

static void fill(void) { ck_assert_int_eq(statefs_fill(&statefs), 0); }
static void unfill(void) { ck_assert_int_eq(statefs_unfill(&statefs), 0); }
static void remount(bool read_only) { ck_assert_int_eq(statefs_remount(&statefs, read_only), 0); }

/* Every file under the state dir (but the filler) as "path\n<bytes>\n". */
static char *snapshot(void)
{
        static char buf[4][65536];
        static int next;
        char *b = buf[next++ % 4];

        b[0] = '\0';
        ck_assert_int_eq(statefs_snapshot(state_dir, b, sizeof(buf[0])), 0);
        return b;
}

static int boot(struct done *d, struct instance **ret_inst, char *err, size_t errlen)
{
        struct json_object *body = json_tokener_parse(BOOT_ONE_PORT);
        struct instance tmpl;
        int plug, r;

        ck_assert_ptr_nonnull(body);
        r = instance_parse_boot_request(body, secgroup_resolve, groups, NULL, NULL, NULL, &tmpl, err, errlen);
        json_object_put(body);
        ck_assert_msg(r == 0, "%s", err);
        r = lifecycle_boot(lc, &tmpl, on_done, d, NULL, ret_inst, err, errlen, &plug);
        instance_template_clear(&tmpl); /* the store has its own copy */
        return r;
}

static struct instance *boot_ok(void)
{
        struct done d = { 0 };
        struct instance *inst = NULL;
        char err[256];

        ck_assert_int_eq(boot(&d, &inst, err, sizeof(err)), 0);
        fake_flush();
        ck_assert(d.called);
        ck_assert_int_eq(d.status, 0);
        fake_log_clear();
        return inst;
}

static bool record_says(const char *needle)
{
        char path[PATH_MAX];

        ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/instances/%s.json", state_dir, INST_UUID), 0);
        _cleanup_free_ char *text = NULL;
        size_t n;
        return read_file_bounded(path, 65536, &text, &n) == 0 && strstr(text, needle);
}

/* ---- write_file_atomic on the real tmpfs ---- */

START_TEST(test_atomic_write_full_and_readonly)
{
        char path[PATH_MAX], *before;
        _cleanup_free_ char *text = NULL;
        static char big[8192];
        size_t n;

        setup();
        ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/record", state_dir), 0);
        ck_assert_int_eq(write_file_atomic(path, "old", 3, 0600), 0);
        memset(big, 'x', sizeof(big));
        fill();
        before = snapshot();
        ck_assert_int_eq(write_file_atomic(path, big, sizeof(big), 0600), -ENOSPC);
        ck_assert_str_eq(snapshot(), before); /* old bytes, no temp file */
        unfill();
        remount(true);
        ck_assert_int_eq(write_file_atomic(path, "new", 3, 0600), -EROFS);
        ck_assert_str_eq(snapshot(), before);
        remount(false);
        ck_assert_int_eq(write_file_atomic(path, big, sizeof(big), 0600), 0);
        ck_assert_int_eq(read_file_bounded(path, sizeof(big) + 1, &text, &n), 0);
        ck_assert_uint_eq(n, sizeof(big));
        teardown();
}
END_TEST

/* A failed write must not keep its file open (it used to: 64 failures, 64 fds). */
START_TEST(test_atomic_write_failure_leaks_no_fd)
{
        char path[PATH_MAX];
        static char big[8192];
        int before, after;

        setup();
        ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/record", state_dir), 0);
        fill();
        before = dup(0);
        close(before);
        for (int i = 0; i < 64; i++)
                ck_assert_int_eq(write_file_atomic(path, big, sizeof(big), 0600), -ENOSPC);
        after = dup(0);
        close(after);
        ck_assert_int_eq(after, before); /* the lowest free fd is the same: nothing leaked */
        teardown();
}
END_TEST

static int fault_errno, fault_stage;
static int inject(const char *path, int stage)
{
        (void)path;
        return stage == fault_stage ? fault_errno : 0;
}

/* EIO at each stage (through the hook): old bytes stay, no temp file. */
START_TEST(test_atomic_write_eio_each_stage)
{
        char path[PATH_MAX], *before;

        setup();
        ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/record", state_dir), 0);
        ck_assert_int_eq(write_file_atomic(path, "old", 3, 0600), 0);
        before = snapshot();
        fault_errno = -EIO;
        fault_stage = _i;
        write_file_atomic_fault = inject;
        ck_assert_int_eq(write_file_atomic(path, "new!", 4, 0600), -EIO);
        write_file_atomic_fault = NULL;
        ck_assert_str_eq(snapshot(), before);
        ck_assert_int_eq(write_file_atomic(path, "new!", 4, 0600), 0);
        ck_assert_str_ne(snapshot(), before);
        teardown();
}
END_TEST

/* ---- the instance store through the pipeline engine ---- */

START_TEST(test_boot_disk_full)
{
        struct done d = { 0 };
        struct instance *inst = NULL;
        char err[256], *before;

        setup();
        fill();
        before = snapshot();
        ck_assert_int_eq(boot(&d, &inst, err, sizeof(err)), -ENOSPC);
        ck_assert_msg(strstr(err, "No space left on device"), "%s", err);
        ck_assert_ptr_null(inst);
        ck_assert_uint_eq(instances_count(store), 0);
        ck_assert_str_eq(fake_log(), ""); /* nothing was created */
        fake_flush();
        ck_assert(!d.called);
        ck_assert_str_eq(snapshot(), before);
        unfill();
        (void)boot_ok();
        ck_assert_uint_eq(instances_count(store), 1);
        teardown();
}
END_TEST

/* Delete, stop, reboot on a full (_i 0) or read-only (_i 1) store: refused with
 * the reason, the waiter is not kept, the instance is as it was; then they work. */
START_TEST(test_operations_cannot_record)
{
        struct lifecycle_waiter *w = (struct lifecycle_waiter *)&w;
        struct done d = { 0 };
        struct instance *inst, saved;
        const char *reason = _i == 0 ? "No space left on device" : "Read-only file system";
        int want = _i == 0 ? -ENOSPC : -EROFS;
        char err[256], *before;
        int plug;

        setup();
        inst = boot_ok();
        saved = *inst;
        if (_i == 0)
                fill();
        else
                remount(true);
        before = snapshot();
        ck_assert_int_eq(lifecycle_delete(lc, inst, on_done, &d, &w, err, sizeof(err), &plug), want);
        ck_assert_msg(strstr(err, reason), "%s", err);
        ck_assert_ptr_null(w);
        ck_assert_int_eq(lifecycle_power(lc, inst, POWER_STOP, on_done, &d, &w, err, sizeof(err), &plug), want);
        ck_assert_msg(strstr(err, reason), "%s", err);
        ck_assert_int_eq(lifecycle_power(lc, inst, POWER_REBOOT, on_done, &d, &w, err, sizeof(err), &plug), want);
        ck_assert_int_eq(fake_flush(), 0);
        ck_assert(!d.called);
        ck_assert_str_eq(fake_log(), "");
        ck_assert_ptr_eq(instance_find(store, INST_UUID), inst);
        ck_assert_int_eq(memcmp(inst, &saved, sizeof(saved)), 0);
        ck_assert_str_eq(snapshot(), before);
        if (_i == 0)
                unfill();
        else
                remount(false);
        ck_assert_int_eq(lifecycle_power(lc, inst, POWER_STOP, on_done, &d, &w, err, sizeof(err), &plug), 0);
        fake_flush();
        ck_assert_int_eq(d.status, 0);
        ck_assert_int_eq(inst->vm_state, VM_STOPPED);
        ck_assert(record_says("\"stopped\""));
        ck_assert_int_eq(lifecycle_delete(lc, inst, NULL, NULL, NULL, err, sizeof(err), &plug), 0);
        fake_flush();
        ck_assert_uint_eq(instances_count(store), 0);
        ck_assert(!record_says("{"));
        teardown();
}
END_TEST

/* Start of an instance in error repairs it; when that cannot be recorded the
 * instance stays in error (it was put to active before the launch). */
START_TEST(test_repair_cannot_record_keeps_error)
{
        struct done d = { 0 };
        struct instance *inst = NULL;
        char err[256];
        int plug;

        setup();
        fake_fail("domain_start", 0, -EIO);
        ck_assert_int_eq(boot(&d, &inst, err, sizeof(err)), 0);
        fake_flush();
        ck_assert_int_eq(inst->vm_state, VM_ERROR);
        fill();
        ck_assert_int_eq(lifecycle_power(lc, inst, POWER_START, NULL, NULL, NULL, err, sizeof(err), &plug), -ENOSPC);
        ck_assert_int_eq(inst->vm_state, VM_ERROR);
        ck_assert_int_eq(inst->task, TASK_NONE);
        ck_assert_ptr_null(inst->op);
        teardown();
}
END_TEST

/* The store fills while a boot runs: what was done is kept in memory, marked
 * unsaved; the file keeps the last good record; the next write writes it. */
START_TEST(test_finish_cannot_record_then_catches_up)
{
        struct done d = { 0 };
        struct instance *inst = NULL;
        char err[256];

        setup();
        ck_assert_int_eq(boot(&d, &inst, err, sizeof(err)), 0);
        ck_assert(record_says("\"building\""));
        fill();
        fake_flush();
        ck_assert_int_eq(d.status, 0);
        ck_assert_int_eq(inst->vm_state, VM_ACTIVE);
        ck_assert_int_eq(inst->task, TASK_NONE);
        ck_assert_int_eq(inst->unsaved, -ENOSPC);
        ck_assert_uint_eq(instances_unsaved(store), 1);
        ck_assert(record_says("\"building\"")); /* the last good record, whole */
        unfill();
        ck_assert_int_eq(instance_save(inst), 0);
        ck_assert_int_eq(inst->unsaved, 0);
        ck_assert(!record_says("\"building\""));
        ck_assert_uint_eq(instances_unsaved(store), 0);
        teardown();
}
END_TEST

/* The same, with nothing else to write afterwards (found by the chaos suite:
 * the record kept saying "building" after space was back): the core retries
 * the write on a timer, so store and memory agree without another operation. */
START_TEST(test_finish_cannot_record_retried_by_timer)
{
        struct done d = { 0 };
        struct instance *inst = NULL;
        char err[256];

        setup();
        ck_assert_int_eq(boot(&d, &inst, err, sizeof(err)), 0);
        fill();
        fake_flush();
        ck_assert_int_eq(d.status, 0);
        ck_assert_int_eq(inst->unsaved, -ENOSPC);
        /* still full: the retries fail and change nothing on disk */
        for (uint64_t end = now_usec() + 1200000; now_usec() < end;)
                ck_assert_int_ge(sd_event_run(event, 100000), 0);
        ck_assert_int_eq(inst->unsaved, -ENOSPC);
        ck_assert(record_says("\"building\""));
        unfill();
        for (uint64_t end = now_usec() + 6000000; now_usec() < end && inst->unsaved;)
                ck_assert_int_ge(sd_event_run(event, 100000), 0);
        ck_assert_int_eq(inst->unsaved, 0);
        ck_assert(!record_says("\"building\""));
        ck_assert(record_says("\"active\""));
        ck_assert_uint_eq(instances_unsaved(store), 0);
        teardown();
}
END_TEST

/* A delete whose record cannot be removed at the end (read-only): the waiter
 * hears why, the instance stays in error, a delete again removes it. */
START_TEST(test_delete_record_stays_on_readonly)
{
        struct done d = { 0 };
        struct instance *inst;
        char err[256];
        int plug;

        setup();
        inst = boot_ok();
        ck_assert_int_eq(lifecycle_delete(lc, inst, on_done, &d, NULL, err, sizeof(err), &plug), 0);
        remount(true);
        fake_flush();
        ck_assert(d.called);
        ck_assert_int_eq(d.status, -EROFS);
        ck_assert_msg(strstr(d.error, "Read-only file system"), "%s", d.error);
        ck_assert_ptr_eq(instance_find(store, INST_UUID), inst);
        ck_assert_int_eq(inst->vm_state, VM_ERROR);
        ck_assert_ptr_null(inst->op);
        ck_assert(record_says("\"deleting\"")); /* a restart would finish the delete */
        remount(false);
        ck_assert_int_eq(lifecycle_delete(lc, inst, NULL, NULL, NULL, err, sizeof(err), &plug), 0);
        fake_flush();
        ck_assert_ptr_null(instance_find(store, INST_UUID));
        ck_assert(!record_says("{"));
        teardown();
}
END_TEST

/* EIO through the hook on the instance record: boot refused with the reason. */
START_TEST(test_boot_eio)
{
        struct done d = { 0 };
        struct instance *inst = NULL;
        char err[256], *before;

        setup();
        before = snapshot();
        fault_errno = -EIO;
        fault_stage = WRITE_STAGE_FSYNC;
        write_file_atomic_fault = inject;
        ck_assert_int_eq(boot(&d, &inst, err, sizeof(err)), -EIO);
        ck_assert_msg(strstr(err, "Input/output error"), "%s", err);
        ck_assert_uint_eq(instances_count(store), 0);
        ck_assert_str_eq(snapshot(), before);
        write_file_atomic_fault = NULL;
        (void)boot_ok();
        teardown();
}
END_TEST

/* ---- the security-group store ---- */

START_TEST(test_secgroups_cannot_record)
{
        struct secgroup *web = NULL, *g;
        struct secrule rule = { .dir = SECRULE_INGRESS, .family = 4, .proto = 6, .port_min = 80, .port_max = 80,
                                .icmp_type = -1, .icmp_code = -1 };
        const struct secrule *added;
        int want = _i == 0 ? -ENOSPC : _i == 1 ? -EROFS : -EIO;
        size_t count, n_rules;
        char *before;

        setup();
        ck_assert_int_eq(secgroup_create(groups, "web", "", &web), 0);
        ck_assert_int_eq(secgroup_rule_add(groups, web, &rule, NULL, &added), 0);
        count = secgroups_count(groups);
        n_rules = web->n_rules;
        if (_i == 0) {
                fill();
        } else if (_i == 1) {
                remount(true);
        } else {
                fault_errno = -EIO;
                fault_stage = WRITE_STAGE_WRITE;
                write_file_atomic_fault = inject;
        }
        before = snapshot();
        rule.port_min = rule.port_max = 443;
        ck_assert_int_eq(secgroup_create(groups, "db", "", &g), want);
        ck_assert_int_eq(secgroup_rule_add(groups, web, &rule, NULL, &added), want);
        ck_assert_int_eq(secgroup_rule_delete(groups, web, 0), want);
        ck_assert_int_eq(secgroup_delete(groups, web), want);
        ck_assert_uint_eq(secgroups_count(groups), count);
        ck_assert_ptr_eq(secgroup_find(groups, "web"), web);
        ck_assert_ptr_null(secgroup_find(groups, "db"));
        ck_assert_uint_eq(web->n_rules, n_rules);
        ck_assert_str_eq(snapshot(), before);
        if (_i == 0)
                unfill();
        else if (_i == 1)
                remount(false);
        else
                write_file_atomic_fault = NULL;
        ck_assert_int_eq(secgroup_rule_add(groups, web, &rule, NULL, &added), 0);
        ck_assert_int_eq(secgroup_create(groups, "db", "", &g), 0);
        ck_assert_str_ne(snapshot(), before);
        teardown();
}
END_TEST

static Suite *store_faults_suite(void)
{
        Suite *s = suite_create("store-faults");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 20); /* the retry test waits for the core's timer (up to 7 s) */
        tcase_add_test(tc, test_atomic_write_full_and_readonly);
        tcase_add_test(tc, test_atomic_write_failure_leaks_no_fd);
        tcase_add_loop_test(tc, test_atomic_write_eio_each_stage, WRITE_STAGE_WRITE, WRITE_STAGE_RENAME + 1);
        tcase_add_test(tc, test_boot_disk_full);
        tcase_add_loop_test(tc, test_operations_cannot_record, 0, 2);
        tcase_add_test(tc, test_repair_cannot_record_keeps_error);
        tcase_add_test(tc, test_finish_cannot_record_then_catches_up);
        tcase_add_test(tc, test_finish_cannot_record_retried_by_timer);
        tcase_add_test(tc, test_delete_record_stays_on_readonly);
        tcase_add_test(tc, test_boot_eio);
        tcase_add_loop_test(tc, test_secgroups_cannot_record, 0, 3);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(store_faults_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
