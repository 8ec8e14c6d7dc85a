/* test-placement-sync.c - the Placement client's decisions (src/core/placement.c)
 * without a Placement: when it writes, how it meets a stale generation, how
 * long it backs off.
 *
 * Two stand-ins, both in-process, because the decisions are what is under
 * test (the real placement-api and Keystone run in
 * tests/integration/test-placement.c, which stays the proof that the
 * requests are right):
 * - the transport (placement-io.h) is a fake that records each request and
 *   answers it from a small model of a Placement provider (generation,
 *   inventories, traits as last PUT; 409 on a stale generation), with
 *   failures on demand; its timer fires only when the test says so, and the
 *   test reads the delay the client asked for;
 * - the module registry is tests/unit/fake/ (requests checked against the
 *   real schemas): hardware-observe's host_inventory and libvirt's pool_info
 *   answer what the test sets. */
#include <check.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <unistd.h>
#include <stdlib.h>

#include "fake/fake-modules.h"
#include "hw-protocol.h"
#include "log.h"
#include "placement-io.h"
#include "placement-json.h"
#include "placement.h"

#define BASE_URL "http://placement.test:8778"
#define REFRESH_USEC (300 * 1000000ULL) /* placement_refresh_s' default */
#define SEC 1000000ULL

/* ---- the fake transport and its model of Placement ---- */

static struct {
        struct placement_io io;
        bool started, in_flight;
        char method[8], path[2048];
        char *body;            /* of the request in flight */
        char log[8192];        /* "GET /rp PUT /rp/inventories ..." since the last log_clear() */
        unsigned sent;
        bool wake_armed;
        uint64_t wake_delay;   /* the last delay the client asked for */
        /* the model */
        bool exists;
        char uuid[UUID_STR_LEN + 1], name[PLACEMENT_NAME_MAX + 1];
        uint64_t generation;
        struct json_object *inventories; /* {"VCPU": {...}, ...} as last PUT */
        struct json_object *traits;      /* [...] as last PUT */
        /* trouble on demand */
        int fail_status;       /* answer every request with this status (0: none) */
        bool unreachable;      /* fail every transfer (no HTTP answer) */
        bool writer_behind_our_back; /* another client writes just before each of our PUTs */
        const char *put_conflict_code; /* answer PUTs 409 with this error code */
} fio;

static int fio_start(struct placement_io *io _unused_, char *err _unused_, size_t errlen _unused_)
{
        fio.started = true;
        return 0;
}

static int fio_send(struct placement_io *io _unused_, const struct placement_http_request *req)
{
        const char *path = req->url;
        size_t n = strlen(fio.log);

        ck_assert(fio.started);
        ck_assert_msg(!fio.in_flight, "two requests in flight");
        ck_assert_ptr_nonnull(req->microversion); /* every Placement request names its microversion */
        ck_assert_str_eq(req->token, "admin");
        ck_assert_int_eq(strncmp(path, BASE_URL, strlen(BASE_URL)), 0);
        path += strlen(BASE_URL);
        (void)strscpy(fio.method, req->method, sizeof(fio.method));
        (void)strscpy(fio.path, path, sizeof(fio.path));
        free(fio.body);
        fio.body = req->body ? strdup(req->body) : NULL;
        fio.in_flight = true;
        fio.sent++;
        /* the log names the request by method and the path after the provider's uuid */
        if (!strncmp(path, "/resource_providers/", 20) && strlen(path) >= 20 + UUID_STR_LEN)
                path += 20 + UUID_STR_LEN;
        else if (!strncmp(path, "/traits?", 8))
                path = "/traits?";
        (void)snprintf(fio.log + n, sizeof(fio.log) - n, "%s%s %s", n ? " " : "", req->method, path[0] ? path : "/rp");
        return 0;
}

static void fio_cancel(struct placement_io *io _unused_) { fio.in_flight = false; }

static void fio_schedule(struct placement_io *io _unused_, uint64_t delay_usec)
{
        fio.wake_armed = delay_usec != UINT64_MAX;
        if (fio.wake_armed)
                fio.wake_delay = delay_usec;
}

static void fio_stop(struct placement_io *io)
{
        fio_cancel(io);
        fio.wake_armed = false;
        fio.started = false;
}

static void fio_free(struct placement_io *io _unused_)
{
        free(fio.body);
        fio.body = NULL;
}

static const struct placement_io_ops fio_ops = {
        .start = fio_start, .send = fio_send, .cancel = fio_cancel,
        .schedule = fio_schedule, .stop = fio_stop, .free = fio_free,
};

static void log_clear(void) { fio.log[0] = '\0'; }

static void answer(long status, struct json_object *body)
{
        const char *text = body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : "";
        struct placement_http_answer a = { .status = status, .body = text, .body_len = strlen(text), .subject_token = "" };

        fio.in_flight = false;
        fio.io.on_answer(fio.io.userdata, &a);
        json_object_put(body);
}

static struct json_object *error_body(int status, const char *code, const char *detail)
{
        struct json_object *e = json_object_new_object(), *list = json_object_new_array(), *o = json_object_new_object();

        json_object_object_add(e, "status", json_object_new_int(status));
        json_object_object_add(e, "code", json_object_new_string(code));
        json_object_object_add(e, "title", json_object_new_string("Error"));
        json_object_object_add(e, "detail", json_object_new_string(detail));
        json_object_array_add(list, e);
        json_object_object_add(o, "errors", list);
        return o;
}

static struct json_object *provider_body(void)
{
        struct json_object *o = json_object_new_object();

        json_object_object_add(o, "uuid", json_object_new_string(fio.uuid));
        json_object_object_add(o, "name", json_object_new_string(fio.name));
        json_object_object_add(o, "generation", json_object_new_uint64(fio.generation));
        return o;
}

/* {"resource_provider_generation": g, key: value} */
static struct json_object *generation_body(const char *key, struct json_object *value)
{
        struct json_object *o = json_object_new_object();

        json_object_object_add(o, "resource_provider_generation", json_object_new_uint64(fio.generation));
        json_object_object_add(o, key, json_object_get(value));
        return o;
}

/* GET /traits?name=in:A,B: this Placement knows every trait */
static struct json_object *known_traits_body(void)
{
        struct json_object *o = json_object_new_object(), *list = json_object_new_array();
        char *names = strdup(strstr(fio.path, "in:") + 3), *save = NULL;

        for (char *t = strtok_r(names, ",", &save); t; t = strtok_r(NULL, ",", &save))
                json_object_array_add(list, json_object_new_string(t));
        free(names);
        json_object_object_add(o, "traits", list);
        return o;
}

/* A PUT of inventories or traits: 409 on a stale generation, else stored and the generation moves. */
static void serve_put(const char *key, struct json_object **stored)
{
        struct json_object *body = json_tokener_parse(fio.body), *gen, *value;

        ck_assert_ptr_nonnull(body);
        ck_assert(json_object_object_get_ex(body, "resource_provider_generation", &gen));
        ck_assert(json_object_object_get_ex(body, key, &value));
        if (fio.writer_behind_our_back)
                fio.generation++;
        if (fio.put_conflict_code) {
                json_object_put(body);
                return answer(409, error_body(409, fio.put_conflict_code, "refused by the model"));
        }
        if ((uint64_t)json_object_get_uint64(gen) != fio.generation) {
                json_object_put(body);
                return answer(409, error_body(409, "placement.concurrent_update", "resource provider generation conflict"));
        }
        json_object_put(*stored);
        *stored = json_object_get(value);
        fio.generation++;
        json_object_put(body);
        answer(200, generation_body(key, *stored));
}

/* Answer the request in flight as the model says. */
static void serve(void)
{
        char rp[64];
        bool get = streq(fio.method, "GET");

        ck_assert(fio.in_flight);
        (void)snprintf(rp, sizeof(rp), "/resource_providers/%s", fio.uuid);
        if (fio.unreachable) {
                struct placement_http_answer a = { .error = -EIO, .error_text = "Connection refused", .body = "",
                                                   .subject_token = "" };
                fio.in_flight = false;
                return fio.io.on_answer(fio.io.userdata, &a);
        }
        if (fio.fail_status)
                return answer(fio.fail_status, error_body(fio.fail_status, "", "the model is failing"));
        if (streq(fio.method, "POST") && streq(fio.path, "/resource_providers")) {
                struct json_object *b = json_tokener_parse(fio.body), *v;
                ck_assert(json_object_object_get_ex(b, "uuid", &v));
                (void)strscpy(fio.uuid, json_object_get_string(v), sizeof(fio.uuid));
                ck_assert(json_object_object_get_ex(b, "name", &v));
                (void)strscpy(fio.name, json_object_get_string(v), sizeof(fio.name));
                json_object_put(b);
                fio.exists = true;
                fio.generation = 0;
                return answer(200, provider_body());
        }
        if (get && !strncmp(fio.path, "/traits?name=in:", 16))
                return answer(200, known_traits_body());
        if (!fio.exists || strncmp(fio.path, rp, strlen(rp)) != 0)
                return answer(404, error_body(404, "placement.undefined_code", "No resource provider"));
        if (get && streq(fio.path, rp))
                return answer(200, provider_body());
        if (streq(fio.path + strlen(rp), "/inventories"))
                return get ? answer(200, generation_body("inventories", fio.inventories))
                           : serve_put("inventories", &fio.inventories);
        if (streq(fio.path + strlen(rp), "/traits"))
                return get ? answer(200, generation_body("traits", fio.traits)) : serve_put("traits", &fio.traits);
        ck_abort_msg("the model has no answer to %s %s", fio.method, fio.path);
}

/* Run until the client waits for its timer: module calls answered, requests served. */
static void settle(void)
{
        for (int i = 0; i < 200; i++) {
                if (fake_flush())
                        continue;
                if (!fio.in_flight)
                        return;
                serve();
        }
        ck_abort_msg("the client did not settle in 200 steps: %s", fio.log);
}

/* The client's timer fires (the backoff's retry or the refresh). */
static void fire_wake(void)
{
        ck_assert_msg(fio.wake_armed, "the client asked for no timer");
        fio.wake_armed = false;
        fio.io.on_wake(fio.io.userdata);
        settle();
}

/* ---- the host, as the modules tell it ---- */

static uint64_t host_memory_kb = 16ULL * 1024 * 1024;
static uint64_t host_threads = 8;

static void reply_host_inventory(const struct proto_value *req _unused_, struct proto_writer *w)
{
        pw_obj_begin(w, "cpu");
        pw_u64(w, "threads", host_threads);
        pw_u64(w, "cores", 4);
        pw_str(w, "flags", "fpu sse4_1 avx2 aes");
        pw_obj_end(w);
        pw_obj_begin(w, "memory");
        pw_u64(w, "total_kb", host_memory_kb);
        pw_obj_end(w);
}

static void reply_pool_info(const struct proto_value *req _unused_, struct proto_writer *w)
{
        pw_u64(w, "capacity", 100ULL * 1024 * 1024 * 1024);
}

/* ---- fixture ---- */

static struct nova_config cfg;
static struct placement *pl;
static char state_dir[64];

static void setup(void)
{
        char err[256];

        log_init("test", LOG_LVL_ERR);
        fake_modules_init();
        fake_set_reply("host_inventory", reply_host_inventory);
        fake_set_reply("pool_info", reply_pool_info);
        json_object_put(fio.inventories);
        json_object_put(fio.traits);
        memset(&fio, 0, sizeof(fio));
        fio.io.ops = &fio_ops;
        fio.inventories = json_object_new_object();
        fio.traits = json_object_new_array();
        host_memory_kb = 16ULL * 1024 * 1024;
        host_threads = 8;
        (void)strscpy(state_dir, "/tmp/nova-plsync-XXXXXX", sizeof(state_dir));
        ck_assert_ptr_nonnull(mkdtemp(state_dir));
        config_defaults(&cfg);
        ck_assert_int_eq(config_set(&cfg, "state_dir", state_dir, err, sizeof(err)), 0);
        ck_assert_int_eq(config_set(&cfg, "placement_url", BASE_URL, err, sizeof(err)), 0);
        ck_assert_int_eq(config_set(&cfg, "provider_name", "unit-host", err, sizeof(err)), 0);
        ck_assert_int_eq(placement_new(&cfg, fake_modules(), &fio.io, &pl), 0);
}

static void teardown(void)
{
        pl = placement_free(pl);
        ck_assert_int_eq(fake_rejected(), 0);
        {
                char path[128];
                (void)snprintf(path, sizeof(path), "%s/placement-provider-uuid", state_dir);
                (void)unlink(path);
                ck_assert_int_eq(rmdir(state_dir), 0); /* nothing else was written there */
        }
}

static struct json_object *status(void) { return placement_status_json(pl); }

static const char *state_of(void)
{
        static char buf[32];
        struct json_object *st = status(), *v;

        (void)strscpy(buf, json_object_object_get_ex(st, "state", &v) ? json_object_get_string(v) : "?", sizeof(buf));
        json_object_put(st);
        return buf;
}

static uint64_t counter(const char *name)
{
        struct json_object *st = status(), *req, *v;
        uint64_t n = 0;

        if (json_object_object_get_ex(st, "requests", &req) && json_object_object_get_ex(req, name, &v))
                n = (uint64_t)json_object_get_uint64(v);
        json_object_put(st);
        return n;
}

/* The model's inventory of one class: field of it (0 when absent). */
static uint64_t model_inv(const char *rc, const char *field)
{
        struct json_object *c, *v;

        if (!json_object_object_get_ex(fio.inventories, rc, &c) || !json_object_object_get_ex(c, field, &v))
                return 0;
        return (uint64_t)json_object_get_uint64(v);
}

static void start_and_register(void)
{
        ck_assert_int_eq(placement_start(pl), 0);
        settle();
        ck_assert_str_eq(state_of(), "synced");
        log_clear();
}

/* ---- tests ---- */

/* First start: provider created, then inventories and traits written once each. Then a kick with
 * nothing changed sends nothing at all; the refresh reads (two GETs) and writes nothing; a change
 * of the host writes the inventories, and only them. */
START_TEST(test_writes_only_what_changed)
{
        ck_assert_int_eq(placement_start(pl), 0);
        settle();
        ck_assert_str_eq(fio.log, "GET /rp POST /resource_providers GET /inventories PUT /inventories GET /traits? "
                                  "GET /traits PUT /traits");
        ck_assert_str_eq(state_of(), "synced");
        ck_assert_uint_eq(model_inv("VCPU", "total"), 8);
        ck_assert_uint_eq(model_inv("MEMORY_MB", "total"), 16384);
        ck_assert_uint_eq(model_inv("MEMORY_MB", "reserved"), 512);
        ck_assert_uint_eq(model_inv("DISK_GB", "total"), 100); /* the storage pool's size */
        ck_assert_uint_ge(json_object_array_length(fio.traits), 4); /* COMPUTE_NODE, arch, SSE41, AVX2, AES, HT */
        ck_assert(fio.wake_armed);
        ck_assert_uint_le(fio.wake_delay, REFRESH_USEC);
        ck_assert_uint_gt(fio.wake_delay, REFRESH_USEC - 1000000); /* counted from this pass's start */
        ck_assert_uint_eq(fio.generation, 2);

        log_clear();
        /* a kick does not postpone the refresh: it stays due one interval after the pass that read
         * Placement (a host kicked more often than the interval would otherwise never re-read) */
        ck_assert_int_eq(usleep(20000), 0);
        placement_kick(pl, "boot");
        settle();
        ck_assert_str_eq(fio.log, "");
        ck_assert_str_eq(state_of(), "synced");
        ck_assert(fio.wake_armed);
        ck_assert_uint_le(fio.wake_delay, REFRESH_USEC - 20000);
        ck_assert_uint_gt(fio.wake_delay, 0);

        fire_wake(); /* the refresh */
        ck_assert_str_eq(fio.log, "GET /inventories GET /traits");
        ck_assert_uint_eq(fio.generation, 2);

        log_clear();
        host_memory_kb = 32ULL * 1024 * 1024; /* memory hot-added */
        placement_kick(pl, "hardware change");
        settle();
        ck_assert_str_eq(fio.log, "PUT /inventories");
        ck_assert_uint_eq(model_inv("MEMORY_MB", "total"), 32768);
        ck_assert_uint_eq(counter("put"), 3);
        ck_assert_uint_eq(counter("post"), 1);
        ck_assert_uint_eq(counter("failed"), 0);
}
END_TEST

/* A restart with the provider there already: read, found equal, nothing written. */
START_TEST(test_restart_writes_nothing)
{
        start_and_register();
        pl = placement_free(pl);
        ck_assert_int_eq(placement_new(&cfg, fake_modules(), &fio.io, &pl), 0);
        ck_assert_int_eq(placement_start(pl), 0); /* the uuid from the state dir */
        settle();
        ck_assert_str_eq(fio.log, "GET /rp GET /inventories GET /traits? GET /traits");
        ck_assert_str_eq(state_of(), "synced");
        ck_assert_uint_eq(counter("put") + counter("post"), 0);
}
END_TEST

/* Someone else wrote the provider since we read it (here: removed our traits): our PUT meets 409
 * concurrent_update, the inventories are read again and the PUT repeated with the new
 * generation; the traits are read again too (the generation moved) and put back. */
START_TEST(test_stale_generation_is_reread)
{
        size_t n_traits;

        start_and_register();
        n_traits = json_object_array_length(fio.traits);
        ck_assert_uint_gt(n_traits, 0);
        json_object_put(fio.traits);
        fio.traits = json_object_new_array();
        fio.generation++;
        host_threads = 16;
        placement_kick(pl, "hardware change");
        settle();
        ck_assert_str_eq(fio.log, "PUT /inventories GET /inventories PUT /inventories GET /traits PUT /traits");
        ck_assert_str_eq(state_of(), "synced");
        ck_assert_uint_eq(model_inv("VCPU", "total"), 16);
        ck_assert_uint_eq(json_object_array_length(fio.traits), n_traits);
        ck_assert_uint_eq(counter("conflicts"), 1);
}
END_TEST

/* Another writer that never stops: at most 4 conflicts are re-read in one pass; the 5th ends the
 * pass (retrying, with the fix) and the backoff starts at 1 s. */
START_TEST(test_conflicts_are_bounded)
{
        struct json_object *st, *v;

        start_and_register();
        fio.writer_behind_our_back = true;
        host_threads = 16;
        placement_kick(pl, "hardware change");
        settle();
        ck_assert_str_eq(fio.log, "PUT /inventories GET /inventories PUT /inventories GET /inventories "
                                  "PUT /inventories GET /inventories PUT /inventories GET /inventories PUT /inventories");
        ck_assert_str_eq(state_of(), "retrying");
        ck_assert_uint_eq(counter("conflicts"), 5);
        st = status();
        ck_assert(json_object_object_get_ex(st, "error", &v));
        ck_assert_ptr_nonnull(strstr(json_object_get_string(v), "5 generation conflicts in one pass"));
        ck_assert(json_object_object_get_ex(st, "fix", &v));
        ck_assert_ptr_nonnull(strstr(json_object_get_string(v), "only one"));
        json_object_put(st);
        ck_assert(fio.wake_armed);
        ck_assert_uint_eq(fio.wake_delay, 1 * SEC);

        /* the other writer stops: the retry reads first (the generation it had is stale) and
         * catches up without another conflict */
        fio.writer_behind_our_back = false;
        log_clear();
        fire_wake();
        ck_assert_str_eq(fio.log, "GET /inventories PUT /inventories GET /traits");
        ck_assert_uint_eq(counter("conflicts"), 5);
        ck_assert_str_eq(state_of(), "synced");
        ck_assert_uint_eq(model_inv("VCPU", "total"), 16);
        ck_assert_uint_le(fio.wake_delay, REFRESH_USEC);
        ck_assert_uint_gt(fio.wake_delay, REFRESH_USEC - 1000000);
}
END_TEST

/* A 409 that is not a stale generation (e.g. inventory in use) is not retried in the pass. */
START_TEST(test_other_conflict_not_retried)
{
        start_and_register();
        fio.put_conflict_code = "placement.inventory.inuse";
        host_threads = 2;
        placement_kick(pl, "hardware change");
        settle();
        ck_assert_str_eq(fio.log, "PUT /inventories");
        ck_assert_str_eq(state_of(), "retrying");
        ck_assert_uint_eq(fio.wake_delay, 1 * SEC);
}
END_TEST

/* Placement unreachable, then failing with 503: one request per attempt, the delay doubles from
 * 1 s to 60 s and stays there; a kick meanwhile sends nothing; the first success goes back to
 * the refresh interval, and the next failure starts again at 1 s. Local work is not involved. */
START_TEST(test_backoff_schedule)
{
        static const uint64_t expected[] = { 1, 2, 4, 8, 16, 32, 60, 60, 60 };

        fio.unreachable = true;
        ck_assert_int_eq(placement_start(pl), 0);
        settle();
        for (size_t i = 0; i < ARRAY_SIZE(expected); i++) {
                ck_assert_str_eq(state_of(), "retrying");
                ck_assert_msg(fio.wake_delay == expected[i] * SEC, "attempt %zu: backoff %" PRIu64 " us, expected %" PRIu64 " s",
                              i + 1, fio.wake_delay, expected[i]);
                ck_assert_uint_eq(fio.sent, i + 1);
                if (i == 3) {
                        placement_kick(pl, "boot"); /* while failing: no extra request, same timer */
                        settle();
                        ck_assert_uint_eq(fio.sent, i + 1);
                        ck_assert(fio.wake_armed);
                        fio.unreachable = false;
                        fio.fail_status = 503;
                }
                fire_wake();
        }
        ck_assert_uint_eq(counter("failed"), ARRAY_SIZE(expected) + 1);
        fio.fail_status = 0;
        fire_wake();
        ck_assert_str_eq(state_of(), "synced");
        ck_assert_uint_le(fio.wake_delay, REFRESH_USEC);
        ck_assert_uint_gt(fio.wake_delay, REFRESH_USEC - 1000000);

        fio.fail_status = 500;
        fire_wake(); /* the refresh fails */
        ck_assert_str_eq(state_of(), "retrying");
        ck_assert_uint_eq(fio.wake_delay, 1 * SEC);
}
END_TEST

/* hardware-observe not answering: no Placement request at all; the client waits for it (backoff on
 * the local call) and a kick (the module ready) resumes at once. */
START_TEST(test_waits_for_hardware_observe)
{
        fake_fail("host_inventory", 0, -ECONNRESET);
        ck_assert_int_eq(placement_start(pl), 0);
        settle();
        ck_assert_str_eq(state_of(), "waiting");
        ck_assert_uint_eq(fio.sent, 0);
        ck_assert_uint_eq(fio.wake_delay, 1 * SEC);
        placement_kick(pl, "hardware-observe ready");
        settle();
        ck_assert_str_eq(state_of(), "synced");
}
END_TEST

int main(void)
{
        Suite *s = suite_create("placement-sync");
        TCase *tc = tcase_create("decisions");
        SRunner *sr;
        int failed;

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_writes_only_what_changed);
        tcase_add_test(tc, test_restart_writes_nothing);
        tcase_add_test(tc, test_stale_generation_is_reread);
        tcase_add_test(tc, test_conflicts_are_bounded);
        tcase_add_test(tc, test_other_conflict_not_retried);
        tcase_add_test(tc, test_backoff_schedule);
        tcase_add_test(tc, test_waits_for_hardware_observe);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
