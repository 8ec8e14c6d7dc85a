/* test-secgroups.c - the security-group store: the default group, durable
 * changes, refusals that change nothing (in memory and on disk), and the
 * strict decoder of the stored file. */
#include "secgroups.h"

#include <check.h>
#include <limits.h>
#include <sys/stat.h>

static char dir[PATH_MAX], file[PATH_MAX];
static struct secgroup_store *store; /* the store under test */

static void setup(void)
{
        ck_assert_int_eq(xsnprintf(dir, sizeof(dir), "/tmp/nova-sg-XXXXXX"), 0);
        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(xsnprintf(file, sizeof(file), "%s/secgroups.json", dir), 0);
}

static void teardown(void)
{
        store = secgroups_free(store);
        (void)unlink(file);
        (void)rmdir(dir);
}

static char *slurp(void)
{
        char *text = NULL;
        size_t len = 0;

        ck_assert_int_eq(read_file_bounded(file, 1 << 22, &text, &len), 0);
        return text;
}

static void load_ok(void)
{
        char why[256] = "";
        int r = secgroups_load(dir, &store, why, sizeof(why));

        ck_assert_msg(r == 0, "load: %d %s", r, why);
}

static void reload(void)
{
        store = secgroups_free(store);
        load_ok();
}

static struct secrule tcp_rule(uint16_t port)
{
        return (struct secrule){ .dir = SECRULE_INGRESS, .family = 4, .proto = 6, .port_min = port, .port_max = port,
                                 .icmp_type = -1, .icmp_code = -1 };
}

START_TEST(test_fresh_store_has_default_group)
{
        const struct secgroup *g;
        struct stat st;

        load_ok();
        ck_assert_int_eq(stat(file, &st), 0);
        ck_assert_uint_eq(secgroups_count(store), 1);
        g = secgroup_find(store, SECGROUP_DEFAULT);
        ck_assert_ptr_nonnull(g);
        ck_assert(uuid_is_valid(g->id));
        ck_assert_ptr_eq(secgroup_find(store, g->id), g);
        /* neutron's defaults: egress anything, IPv4 and IPv6; no ingress rule */
        ck_assert_uint_eq(g->n_rules, 2);
        for (size_t i = 0; i < g->n_rules; i++) {
                ck_assert_int_eq(g->rules[i].dir, SECRULE_EGRESS);
                ck_assert_int_eq(g->rules[i].proto, -1);
                ck_assert(!g->rules[i].has_remote);
                ck_assert(uuid_is_valid(g->rules[i].uuid));
        }
        ck_assert_int_ne(g->rules[0].family, g->rules[1].family);
        /* a second load reads the same group back rather than making a new one */
        {
                char id[UUID_STR_LEN + 1];
                memcpy(id, g->id, sizeof(id));
                reload();
                ck_assert_str_eq(secgroup_find(store, SECGROUP_DEFAULT)->id, id);
        }
}
END_TEST

START_TEST(test_changes_are_durable)
{
        struct secgroup *g;
        const struct secrule *stored;
        struct secrule r = tcp_rule(22);
        char rule_id[UUID_STR_LEN + 1], dup[UUID_STR_LEN + 1] = "";
        size_t idx;

        load_ok();
        ck_assert_int_eq(secgroup_create(store, "web", "front end", &g), 0);
        ck_assert_int_eq(cidr_parse("10.0.0.0/8", false, &r.remote), 0);
        r.has_remote = true;
        ck_assert_int_eq(secgroup_rule_add(store, g, &r, NULL, &stored), 0);
        ck_assert(uuid_is_valid(stored->uuid));
        memcpy(rule_id, stored->uuid, sizeof(rule_id));
        /* the same rule again is refused, naming the one that exists */
        ck_assert_int_eq(secgroup_rule_add(store, g, &r, dup, NULL), -EEXIST);
        ck_assert_str_eq(dup, rule_id);

        reload();
        g = secgroup_find(store, "web");
        ck_assert_ptr_nonnull(g);
        ck_assert_str_eq(g->description, "front end");
        ck_assert_uint_eq(g->n_rules, 3);
        ck_assert_ptr_eq(secgroup_find_rule(store, rule_id, &idx), g);
        ck_assert(secrule_equal(&g->rules[idx], &r));

        ck_assert_int_eq(secgroup_rule_delete(store, g, idx), 0);
        reload();
        ck_assert_ptr_null(secgroup_find_rule(store, rule_id, NULL));
        ck_assert_uint_eq(secgroup_find(store, "web")->n_rules, 2);

        ck_assert_int_eq(secgroup_delete(store, secgroup_find(store, "web")), 0);
        reload();
        ck_assert_ptr_null(secgroup_find(store, "web"));
        ck_assert_uint_eq(secgroups_count(store), 1);
}
END_TEST

START_TEST(test_refusals_change_nothing)
{
        _cleanup_free_ char *before = NULL, *after = NULL;
        struct secgroup *g;

        load_ok();
        ck_assert_int_eq(secgroup_create(store, "web", "", &g), 0);
        before = slurp();
        ck_assert_int_eq(secgroup_create(store, "web", "", NULL), -EEXIST);
        ck_assert_int_eq(secgroup_create(store, "-bad", "", NULL), -EINVAL);
        ck_assert_int_eq(secgroup_create(store, "", "", NULL), -EINVAL);
        ck_assert_int_eq(secgroup_create(store, "12345678-1234-4234-8234-123456789abc", "", NULL), -EINVAL);
        ck_assert_int_eq(secgroup_create(store, "ok", "line\nbreak", NULL), -EINVAL);
        ck_assert_int_eq(secgroup_delete(store, secgroup_find(store, SECGROUP_DEFAULT)), -EPERM);
        after = slurp();
        ck_assert_str_eq(before, after);
        ck_assert_uint_eq(secgroups_count(store), 2);
        for (uint16_t p = 1; g->n_rules < SECGROUP_MAX_RULES; p++) {
                struct secrule r = tcp_rule(p);
                ck_assert_int_eq(secgroup_rule_add(store, g, &r, NULL, NULL), 0);
        }
        {
                struct secrule r = tcp_rule(60000);
                ck_assert_int_eq(secgroup_rule_add(store, g, &r, NULL, NULL), -ENOSPC);
        }
        ck_assert_uint_eq(secgroup_find(store, "web")->n_rules, SECGROUP_MAX_RULES);
        reload();
        ck_assert_uint_eq(secgroup_find(store, "web")->n_rules, SECGROUP_MAX_RULES);
}
END_TEST

START_TEST(test_failed_write_changes_nothing)
{
        struct secgroup *g;
        struct secrule r = tcp_rule(80);

        load_ok();
        ck_assert_int_eq(secgroup_create(store, "web", "", &g), 0);
        /* the directory goes away: every write fails */
        ck_assert_int_eq(unlink(file), 0);
        ck_assert_int_eq(rmdir(dir), 0);
        ck_assert_int_lt(secgroup_create(store, "db", "", NULL), 0);
        ck_assert_ptr_null(secgroup_find(store, "db"));
        ck_assert_uint_eq(secgroups_count(store), 2);
        ck_assert_int_lt(secgroup_rule_add(store, g, &r, NULL, NULL), 0);
        ck_assert_uint_eq(g->n_rules, 2);
        ck_assert_int_lt(secgroup_rule_delete(store, g, 0), 0);
        ck_assert_uint_eq(g->n_rules, 2);
        ck_assert_int_lt(secgroup_delete(store, g), 0);
        ck_assert_ptr_eq(secgroup_find(store, "web"), g);
        ck_assert_int_eq(mkdir(dir, 0700), 0);
}
END_TEST

START_TEST(test_corrupt_file_is_refused_and_kept)
{
        static const char garbage[] = "{\"version\":1,\"groups\":[{\"id\":\"x\"}]}";
        _cleanup_free_ char *after = NULL;
        char why[256] = "";

        ck_assert_int_eq(write_file_atomic(file, garbage, strlen(garbage), 0600), 0);
        ck_assert_int_eq(secgroups_load(dir, &store, why, sizeof(why)), -EBADMSG);
        ck_assert_msg(strstr(why, "group id"), "reason: %s", why);
        after = slurp();
        ck_assert_str_eq(after, garbage);
}
END_TEST

static int parse(const char *text, char *why, size_t whylen)
{
        struct secgroup *list = NULL;
        size_t n = 0;
        int r = secgroups_parse_stored(text, strlen(text), &list, &n, why, whylen);

        secgroups_list_free(list);
        return r;
}

START_TEST(test_decoder_is_strict)
{
#define G1 "\"id\":\"11111111-1111-4111-8111-111111111111\""
#define G2 "\"id\":\"22222222-2222-4222-8222-222222222222\""
#define R1 "{\"id\":\"33333333-3333-4333-8333-333333333333\",\"direction\":\"ingress\",\"protocol\":\"tcp\"," \
           "\"port_range_min\":22,\"port_range_max\":22}"
#define R2 "{\"id\":\"44444444-4444-4444-8444-444444444444\",\"direction\":\"ingress\",\"protocol\":\"tcp\"," \
           "\"port_range_min\":22,\"port_range_max\":22}"
        static const struct {
                const char *text, *why;
        } bad[] = {
                { "", "single JSON" },
                { "[]", "single JSON" },
                { "{\"version\":2,\"groups\":[]}", "version" },
                { "{\"version\":1}", "groups" },
                { "{\"version\":1,\"groups\":[{" G1 ",\"name\":\"a\",\"description\":\"\",\"rules\":[],\"x\":1}]}",
                  "unknown field" },
                { "{\"version\":1,\"groups\":[{" G1 ",\"name\":\".a\",\"description\":\"\",\"rules\":[]}]}", "name" },
                { "{\"version\":1,\"groups\":[{" G1 ",\"name\":\"a\",\"description\":\"\",\"rules\":[]},{" G1
                  ",\"name\":\"b\",\"description\":\"\",\"rules\":[]}]}",
                  "repeated" },
                { "{\"version\":1,\"groups\":[{" G1 ",\"name\":\"a\",\"description\":\"\",\"rules\":[]},{" G2
                  ",\"name\":\"a\",\"description\":\"\",\"rules\":[]}]}",
                  "repeated" },
                { "{\"version\":1,\"groups\":[{" G1 ",\"name\":\"a\",\"description\":\"\",\"rules\":[" R1 "," R2 "]}]}",
                  "repeats" },
                { "{\"version\":1,\"groups\":[{" G1 ",\"name\":\"a\",\"description\":\"\",\"rules\":[{\"direction\":"
                  "\"ingress\"}]}]}",
                  "no id" },
                { "{\"version\":1,\"groups\":[{" G1 ",\"name\":\"a\",\"description\":\"\",\"rules\":[{\"id\":"
                  "\"33333333-3333-4333-8333-333333333333\",\"direction\":\"ingress\",\"protocol\":\"tcp\","
                  "\"port_range_min\":0}]}]}",
                  "port" },
        };
        char why[256];

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                why[0] = '\0';
                ck_assert_msg(parse(bad[i].text, why, sizeof(why)) < 0, "accepted: %s", bad[i].text);
                ck_assert_msg(strstr(why, bad[i].why), "%s: reason '%s' lacks '%s'", bad[i].text, why, bad[i].why);
        }
        ck_assert_int_eq(parse("{\"version\":1,\"groups\":[{" G1 ",\"name\":\"a\",\"description\":\"\",\"rules\":[" R1
                               "]}]}",
                               why, sizeof(why)),
                         0);
}
END_TEST

static Suite *suite(void)
{
        Suite *s = suite_create("secgroups");
        TCase *tc = tcase_create("store");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_fresh_store_has_default_group);
        tcase_add_test(tc, test_changes_are_durable);
        tcase_add_test(tc, test_refusals_change_nothing);
        tcase_add_test(tc, test_failed_write_changes_nothing);
        tcase_add_test(tc, test_corrupt_file_is_refused_and_kept);
        tcase_add_test(tc, test_decoder_is_strict);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
