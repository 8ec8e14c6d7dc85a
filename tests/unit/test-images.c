/* test-images.c - the image store (src/core/images.c): an import holds its
 * name while it runs and is written only once it succeeded; resolve gives
 * ready images only; the file survives a reload; a damaged file is refused. */
#include <check.h>
#include <stdlib.h>

#include "images.h"
#include "log.h"
#include "util.h"

#define SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static char dir[64];

static void mkdir_tmp(void)
{
        (void)strscpy(dir, "/tmp/nova-img-XXXXXX", sizeof(dir));
        ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void rm_tmp(void)
{
        char cmd[128];
        (void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_import_lifecycle)
{
        struct image_store *s = NULL, *again = NULL;
        struct image *img, *other;
        char why[256], id[UUID_STR_LEN + 1], path[128];

        log_init("test", LOG_LVL_ERR);
        mkdir_tmp();
        ck_assert_int_eq(images_load(dir, &s, why, sizeof(why)), 0);
        ck_assert_int_eq(image_begin(s, "cirros", &img), 0);
        ck_assert(img->uploading);
        ck_assert_int_eq(image_begin(s, "cirros", &other), -EEXIST);   /* the name is held */
        ck_assert_int_eq(image_begin(s, "bad/name", &other), -EINVAL);
        ck_assert_int_eq(image_begin(s, img->uuid, &other), -EINVAL);  /* a UUID is no name */
        ck_assert_int_eq(images_resolve(s, "cirros", id), -ENOENT);    /* not usable while uploading */
        (void)snprintf(path, sizeof(path), "%s/images.json", dir);
        ck_assert_int_eq(access(path, F_OK), -1);                      /* nothing written yet */
        ck_assert_int_eq(image_commit(s, img, "raw", 1048576, 1048576, "not-a-sha"), -EINVAL);
        ck_assert_int_eq(image_commit(s, img, "raw", 1048576, 1048576, SHA), 0);
        ck_assert_int_eq(images_resolve(s, "cirros", id), 0);
        ck_assert_str_eq(id, img->uuid);
        ck_assert_int_eq(images_resolve(s, img->uuid, id), 0);
        /* a failed import goes without a trace */
        ck_assert_int_eq(image_begin(s, "broken", &other), 0);
        ck_assert_int_eq(image_remove(s, other), 0);
        ck_assert_ptr_null(image_find(s, "broken"));
        /* reload: the recorded image only */
        ck_assert_int_eq(images_load(dir, &again, why, sizeof(why)), 0);
        img = image_find(again, "cirros");
        ck_assert_ptr_nonnull(img);
        ck_assert_str_eq(img->sha256, SHA);
        ck_assert_uint_eq(img->size, 1048576);
        ck_assert(!img->uploading);
        ck_assert_int_eq(image_remove(again, img), 0);
        again = images_free(again);
        ck_assert_int_eq(images_load(dir, &again, why, sizeof(why)), 0);
        ck_assert_ptr_null(images_first(again));
        again = images_free(again);
        s = images_free(s);
        rm_tmp();
}
END_TEST

START_TEST(test_damaged_file_refused)
{
        static const char *const bad[] = {
                "not json",
                "{\"images\":{}}",
                "{\"images\":[{\"uuid\":\"x\",\"name\":\"a\",\"format\":\"raw\",\"size\":1,\"virtual_size\":1,"
                "\"sha256\":\"" SHA "\",\"created_at\":1}]}",
                "{\"images\":[{\"uuid\":\"3f2504e0-4f89-41d3-9a0c-0305e82c3301\",\"name\":\"a\",\"format\":\"vmdk\","
                "\"size\":1,\"virtual_size\":1,\"sha256\":\"" SHA "\",\"created_at\":1}]}",
                "{\"images\":[{\"uuid\":\"3f2504e0-4f89-41d3-9a0c-0305e82c3301\",\"name\":\"a\",\"format\":\"raw\","
                "\"size\":1,\"virtual_size\":1,\"sha256\":\"" SHA "\",\"created_at\":1},"
                "{\"uuid\":\"3f2504e0-4f89-41d3-9a0c-0305e82c3302\",\"name\":\"a\",\"format\":\"raw\","
                "\"size\":1,\"virtual_size\":1,\"sha256\":\"" SHA "\",\"created_at\":1}]}",
        };
        struct image_store *s = NULL;
        char why[256], path[128];

        log_init("test", LOG_LVL_ERR);
        mkdir_tmp();
        (void)snprintf(path, sizeof(path), "%s/images.json", dir);
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                ck_assert_int_eq(write_file_atomic(path, bad[i], strlen(bad[i]), 0600), 0);
                ck_assert_msg(images_load(dir, &s, why, sizeof(why)) == -EBADMSG, "accepted: %s", bad[i]);
                ck_assert_ptr_null(s);
        }
        rm_tmp();
}
END_TEST

/* The image cache's bookkeeping: an import starts unused; usage clears the mark, the end of use
 * sets it to that moment; the next expiry is the oldest mark plus the age; marks survive a reload;
 * the store's hook is told of each write; an expiring image does not resolve. */
static const char *in_use_uuid;
static bool uses(const char *uuid, void *userdata)
{
        (void)userdata;
        return in_use_uuid && streq(uuid, in_use_uuid);
}

static int hook_calls;
static void count_hook(void *userdata)
{
        (void)userdata;
        hook_calls++;
}

START_TEST(test_unused_marks_and_expiry)
{
        struct image_store *s = NULL, *again = NULL;
        struct image *a, *b, *uploading;
        char why[256], id[UUID_STR_LEN + 1];
        uint64_t t0;

        log_init("test", LOG_LVL_ERR);
        mkdir_tmp();
        ck_assert_int_eq(images_load(dir, &s, why, sizeof(why)), 0);
        images_set_change_hook(s, count_hook, NULL);
        hook_calls = 0;
        ck_assert_int_eq(image_begin(s, "a", &a), 0);
        ck_assert_int_eq(image_commit(s, a, "qcow2", 1000, 4096, SHA), 0);
        ck_assert_int_eq(hook_calls, 1);
        t0 = a->unused_since;
        ck_assert_uint_gt(t0, 0); /* nothing uses a fresh import */
        ck_assert_int_eq(image_begin(s, "b", &b), 0);
        ck_assert_int_eq(image_commit(s, b, "raw", 1000, 1000, SHA), 0);
        ck_assert_int_eq(image_begin(s, "up", &uploading), 0);
        /* b in use: its mark goes, a keeps its own; the uploading one is never marked */
        in_use_uuid = b->uuid;
        a->unused_since = 1000;
        ck_assert_int_eq(images_mark_usage(s, uses, NULL, 5000), 0);
        ck_assert_uint_eq(a->unused_since, 1000);
        ck_assert_uint_eq(b->unused_since, 0);
        ck_assert_uint_eq(uploading->unused_since, 0);
        ck_assert_uint_eq(images_next_expiry(s, 86400), 1000 + 86400);
        /* nothing changed: no write */
        hook_calls = 0;
        ck_assert_int_eq(images_mark_usage(s, uses, NULL, 6000), 0);
        ck_assert_int_eq(hook_calls, 0);
        /* b no longer used: unused from that moment */
        in_use_uuid = NULL;
        ck_assert_int_eq(images_mark_usage(s, uses, NULL, 7000), 0);
        ck_assert_int_eq(hook_calls, 1);
        ck_assert_uint_eq(b->unused_since, 7000);
        ck_assert_uint_eq(images_next_expiry(s, 10), 1010);
        /* an image being removed is not usable and not counted again */
        a->expiring = true;
        ck_assert_int_eq(images_resolve(s, "a", id), -ENOENT);
        ck_assert_uint_eq(images_next_expiry(s, 10), 7010);
        a->expiring = false;
        ck_assert_uint_eq(images_next_expiry(s, UINT64_MAX - 5), UINT64_MAX); /* no overflow */
        /* the marks are stored */
        ck_assert_int_eq(images_load(dir, &again, why, sizeof(why)), 0);
        ck_assert_uint_eq(image_find(again, "a")->unused_since, 1000);
        ck_assert_uint_eq(image_find(again, "b")->unused_since, 7000);
        ck_assert_ptr_null(image_find(again, "up"));
        again = images_free(again);
        /* no image unused: nothing expires */
        ck_assert_int_eq(image_remove(s, a), 0);
        in_use_uuid = b->uuid;
        ck_assert_int_eq(images_mark_usage(s, uses, NULL, 8000), 0);
        ck_assert_uint_eq(images_next_expiry(s, 10), UINT64_MAX);
        in_use_uuid = NULL;
        s = images_free(s);
        rm_tmp();
}
END_TEST

/* A store written before the image cache (no unused_since) loads; a malformed mark does not. */
START_TEST(test_unused_since_decoding)
{
        static const char *const old_store =
                "{\"images\":[{\"uuid\":\"3f2504e0-4f89-41d3-9a0c-0305e82c3301\",\"name\":\"a\",\"format\":\"raw\","
                "\"size\":1,\"virtual_size\":1,\"sha256\":\"" SHA "\",\"created_at\":1}]}";
        static const char *const bad_mark =
                "{\"images\":[{\"uuid\":\"3f2504e0-4f89-41d3-9a0c-0305e82c3301\",\"name\":\"a\",\"format\":\"raw\","
                "\"size\":1,\"virtual_size\":1,\"sha256\":\"" SHA "\",\"created_at\":1,\"unused_since\":\"x\"}]}";
        struct image *list = NULL;
        size_t n = 0;
        char why[256];

        ck_assert_int_eq(images_parse_stored(old_store, strlen(old_store), &list, &n, why, sizeof(why)), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_uint_eq(list->unused_since, 0);
        images_list_free(list);
        ck_assert_int_eq(images_parse_stored(bad_mark, strlen(bad_mark), &list, &n, why, sizeof(why)), -EBADMSG);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("images");
        TCase *tc = tcase_create("store");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_import_lifecycle);
        tcase_add_test(tc, test_damaged_file_refused);
        tcase_add_test(tc, test_unused_marks_and_expiry);
        tcase_add_test(tc, test_unused_since_decoding);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
