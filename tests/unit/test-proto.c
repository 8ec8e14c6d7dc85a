/* test-proto.c - unit tests for src/lib/proto.c: the writer, the decoder and
 * the accessors. Every rejection path of proto_decode is exercised with a
 * hand-built frame; decodes run on an exactly sized heap copy so that a
 * sanitizer build catches any read past the end. */
#include <check.h>

#include "proto.h"

/* ---- hand-built frames ---- */

struct frame {
        uint8_t b[PROTO_MAX_FRAME + 256];
        size_t n;
};

static struct frame fb;          /* the frame under construction */
static struct proto_msg msg;     /* decode target (large: static) */
static struct proto_writer pw;   /* writer (large: static) */
static char err[256];

static void b_reset(void) { fb.n = 0; }

static void b_mem(const void *p, size_t n)
{
        ck_assert_msg(fb.n + n <= sizeof(fb.b), "test frame buffer overflow");
        memcpy(fb.b + fb.n, p, n);
        fb.n += n;
}

static void b_u8(uint8_t v) { b_mem(&v, 1); }

static void b_u16(uint16_t v)
{
        uint8_t p[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
        b_mem(p, 2);
}

static void b_u32(uint32_t v)
{
        uint8_t p[4];
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
        b_mem(p, 4);
}

static void b_u64(uint64_t v)
{
        uint8_t p[8];
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(v >> (8 * i));
        b_mem(p, 8);
}

/* Raw header with an explicit magic and version. */
static void b_header_raw(uint32_t magic, uint16_t version, uint16_t type, uint32_t id, int32_t status,
                         const void *name, size_t nlen)
{
        b_u32(magic);
        b_u16(version);
        b_u16(type);
        b_u32(id);
        b_u32((uint32_t)status);
        b_u8((uint8_t)nlen);
        b_mem(name, nlen);
}

static void b_header(uint16_t type, uint32_t id, int32_t status, const char *name)
{
        b_header_raw(PROTO_MAGIC, PROTO_VERSION, type, id, status, name, strlen(name));
}

/* Header of a request "tap_get" id 1, then the root object's member count. */
static void b_begin(uint16_t members)
{
        b_reset();
        b_header(PROTO_REQUEST, 1, 0, "tap_get");
        b_u16(members);
}

static void b_key(const char *k) { b_u8((uint8_t)strlen(k)); b_mem(k, strlen(k)); }

static void b_str_raw(const void *s, size_t n)
{
        b_u8(PV_STR);
        b_u16((uint16_t)n);
        b_mem(s, n);
}

static void b_str(const char *s) { b_str_raw(s, strlen(s)); }

static void b_tag_u64(uint64_t v)
{
        b_u8(PV_U64);
        b_u64(v);
}

/* Decode a heap copy of exactly n bytes. */
static int decode_exact(const void *p, size_t n)
{
        uint8_t *copy = malloc(n ? n : 1);
        int r;

        ck_assert_ptr_nonnull(copy);
        if (n)
                memcpy(copy, p, n);
        memset(err, 0, sizeof(err));
        r = proto_decode(copy, n, &msg, err, sizeof(err));
        free(copy);
        return r;
}

static int decode_fb(void) { return decode_exact(fb.b, fb.n); }

/* The frame must be refused with want, a non-empty reason containing why. */
#define REJECT(want, why)                                                                          \
        do {                                                                                       \
                int _r = decode_fb();                                                              \
                ck_assert_msg(_r == (want), "decode returned %d, want %d (err '%s')", _r, (want), err); \
                ck_assert_msg(err[0] != '\0', "rejection without a reason");                       \
                ck_assert_msg(strstr(err, (why)) != NULL, "reason '%s' does not mention '%s'", err, (why)); \
        } while (0)

#define ACCEPT()                                                                                   \
        do {                                                                                       \
                int _r = decode_fb();                                                              \
                ck_assert_msg(_r == 0, "decode returned %d (err '%s')", _r, err);                   \
                ck_assert_ptr_nonnull(msg.body);                                                   \
        } while (0)

/* pw_finish, then decode the writer's frame. */
static int finish_and_decode(void)
{
        const uint8_t *buf;
        size_t len;
        int r = pw_finish(&pw, &buf, &len);

        if (r < 0)
                return r;
        return decode_exact(buf, len);
}

#define WRITER_ERR(want)                                                                           \
        do {                                                                                       \
                const uint8_t *_b = NULL;                                                          \
                size_t _l = 0;                                                                     \
                int _r = pw_finish(&pw, &_b, &_l);                                                 \
                ck_assert_msg(_r == (want), "pw_finish returned %d, want %d", _r, (want));         \
        } while (0)

static const struct proto_value *nth_child(const struct proto_value *v, unsigned n)
{
        const struct proto_value *c = v->child;
        while (c && n--)
                c = c->next;
        return c;
}

static size_t chain_len(const struct proto_value *v)
{
        size_t n = 0;
        for (const struct proto_value *c = v->child; c; c = c->next)
                n++;
        return n;
}

/* ---- round trips ---- */

START_TEST(test_rt_scalars)
{
        const struct proto_value *b, *v;

        pw_init(&pw, PROTO_REQUEST, 42, 0, "tap_create");
        pw_u64(&pw, "zero", 0);
        pw_u64(&pw, "max", UINT64_MAX);
        pw_u64(&pw, "mid", 0x0102030405060708ULL);
        pw_i64(&pw, "neg", -1);
        pw_i64(&pw, "min", INT64_MIN);
        pw_i64(&pw, "pos", INT64_MAX);
        pw_bool(&pw, "yes", true);
        pw_bool(&pw, "no", false);
        pw_str(&pw, "empty", "");
        pw_str(&pw, "text", "hello world");
        ck_assert_int_eq(finish_and_decode(), 0);

        ck_assert_uint_eq(msg.type, PROTO_REQUEST);
        ck_assert_uint_eq(msg.id, 42);
        ck_assert_int_eq(msg.status, 0);
        ck_assert_str_eq(msg.name, "tap_create");
        b = msg.body;
        ck_assert_uint_eq(b->type, PV_OBJ);
        ck_assert_ptr_null(b->key);
        ck_assert_uint_eq(b->count, 10);
        ck_assert_uint_eq(chain_len(b), 10);

        v = proto_get(b, "zero");
        ck_assert_uint_eq(v->type, PV_U64);
        ck_assert_uint_eq(v->v.u, 0);
        v = proto_get(b, "max");
        ck_assert_uint_eq(v->type, PV_U64);
        ck_assert(v->v.u == UINT64_MAX);
        ck_assert(proto_get(b, "mid")->v.u == 0x0102030405060708ULL);
        v = proto_get(b, "neg");
        ck_assert_uint_eq(v->type, PV_I64);
        ck_assert(v->v.i == -1);
        ck_assert(proto_get(b, "min")->v.i == INT64_MIN);
        ck_assert(proto_get(b, "pos")->v.i == INT64_MAX);
        v = proto_get(b, "yes");
        ck_assert_uint_eq(v->type, PV_BOOL);
        ck_assert(v->v.b);
        ck_assert(!proto_get(b, "no")->v.b);
        v = proto_get(b, "empty");
        ck_assert_uint_eq(v->type, PV_STR);
        ck_assert_uint_eq(v->count, 0);
        ck_assert_str_eq(v->v.s, "");
        v = proto_get(b, "text");
        ck_assert_uint_eq(v->count, 11);
        ck_assert_str_eq(v->v.s, "hello world");

        /* members keep their order and keys */
        ck_assert_str_eq(nth_child(b, 0)->key, "zero");
        ck_assert_str_eq(nth_child(b, 9)->key, "text");
        for (v = b->child; v; v = v->next) {
                ck_assert_ptr_null(v->child);
                ck_assert_ptr_nonnull(v->key);
        }
}
END_TEST

START_TEST(test_rt_long_string)
{
        static char big[PROTO_MAX_STR + 1];
        const struct proto_value *v;

        for (int i = 0; i < PROTO_MAX_STR; i++)
                big[i] = (char)('a' + i % 26);
        big[PROTO_MAX_STR] = '\0';
        pw_init(&pw, PROTO_EVENT, 0, 0, "domain_stopped");
        pw_str(&pw, "big", big);
        pw_str(&pw, "utf", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
        ck_assert_int_eq(finish_and_decode(), 0);
        v = proto_get(msg.body, "big");
        ck_assert_uint_eq(v->count, PROTO_MAX_STR);
        ck_assert_uint_eq(strlen(v->v.s), PROTO_MAX_STR);
        ck_assert_mem_eq(v->v.s, big, PROTO_MAX_STR);
        ck_assert_str_eq(proto_get_str(msg.body, "utf", NULL), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}
END_TEST

START_TEST(test_rt_nested_max_depth)
{
        const struct proto_value *a, *l, *o, *d, *it;

        /* root -> obj a -> list b -> obj -> list d: PROTO_MAX_DEPTH containers */
        pw_init(&pw, PROTO_REPLY, 7, 0, "tap_list");
        pw_obj_begin(&pw, "a");
        pw_list_begin(&pw, "b");
        pw_obj_begin(&pw, NULL);
        pw_list_begin(&pw, "d");
        pw_u64(&pw, NULL, 1);
        pw_i64(&pw, NULL, -5);
        pw_str(&pw, NULL, "x");
        pw_bool(&pw, NULL, true);
        pw_list_end(&pw);
        pw_u64(&pw, "after", 9);
        pw_obj_end(&pw);
        pw_obj_begin(&pw, NULL);
        pw_obj_end(&pw);
        pw_list_end(&pw);
        pw_str(&pw, "sibling", "s");
        pw_obj_end(&pw);
        pw_list_begin(&pw, "empty");
        pw_list_end(&pw);
        ck_assert_int_eq(finish_and_decode(), 0);

        ck_assert_uint_eq(msg.body->count, 2);
        a = proto_get(msg.body, "a");
        ck_assert_uint_eq(a->type, PV_OBJ);
        ck_assert_uint_eq(a->count, 2);
        l = proto_get(a, "b");
        ck_assert_uint_eq(l->type, PV_LIST);
        ck_assert_uint_eq(l->count, 2);
        ck_assert_uint_eq(chain_len(l), 2);
        o = l->child;
        ck_assert_ptr_null(o->key);
        ck_assert_uint_eq(o->type, PV_OBJ);
        ck_assert_uint_eq(o->count, 2);
        d = proto_get(o, "d");
        ck_assert_uint_eq(d->type, PV_LIST);
        ck_assert_uint_eq(d->count, 4);
        it = nth_child(d, 0);
        ck_assert_uint_eq(it->type, PV_U64);
        ck_assert_ptr_null(it->key);
        ck_assert_uint_eq(it->v.u, 1);
        it = nth_child(d, 1);
        ck_assert_uint_eq(it->type, PV_I64);
        ck_assert(it->v.i == -5);
        it = nth_child(d, 2);
        ck_assert_uint_eq(it->type, PV_STR);
        ck_assert_str_eq(it->v.s, "x");
        it = nth_child(d, 3);
        ck_assert_uint_eq(it->type, PV_BOOL);
        ck_assert(it->v.b);
        ck_assert_ptr_null(it->next);
        ck_assert_uint_eq(proto_get_u64(o, "after", 0), 9);
        o = nth_child(l, 1);
        ck_assert_uint_eq(o->type, PV_OBJ);
        ck_assert_uint_eq(o->count, 0);
        ck_assert_ptr_null(o->child);
        ck_assert_str_eq(proto_get_str(a, "sibling", ""), "s");
        l = proto_get(msg.body, "empty");
        ck_assert_uint_eq(l->type, PV_LIST);
        ck_assert_uint_eq(l->count, 0);
        ck_assert_ptr_null(l->child);

        /* four lists deep also round-trips */
        pw_init(&pw, PROTO_EVENT, 0, 0, "deep");
        pw_list_begin(&pw, "l");
        for (int i = 0; i < PROTO_MAX_DEPTH - 1; i++)
                pw_list_begin(&pw, NULL);
        pw_u64(&pw, NULL, 77);
        for (int i = 0; i < PROTO_MAX_DEPTH; i++)
                pw_list_end(&pw);
        ck_assert_int_eq(finish_and_decode(), 0);
        it = proto_get(msg.body, "l");
        for (int i = 0; i < PROTO_MAX_DEPTH; i++) {
                ck_assert_uint_eq(it->type, PV_LIST);
                ck_assert_uint_eq(it->count, 1);
                it = it->child;
        }
        ck_assert_uint_eq(it->type, PV_U64);
        ck_assert_uint_eq(it->v.u, 77);
}
END_TEST

START_TEST(test_rt_header_fields)
{
        static const uint16_t types[] = { PROTO_HELLO, PROTO_REQUEST, PROTO_REPLY, PROTO_EVENT };
        static const uint32_t ids[] = { 0, 1, 0x7fffffff, UINT32_MAX };
        static const int32_t statuses[] = { 0, -1, -EINVAL, -ENOSYS, -4095 };
        const char *name32 = "abcdefghijklmnopqrstuvwxyz012345";

        for (size_t t = 0; t < ARRAY_SIZE(types); t++)
                for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
                        pw_init(&pw, types[t], ids[i], 0, "network-control");
                        ck_assert_int_eq(finish_and_decode(), 0);
                        ck_assert_uint_eq(msg.type, types[t]);
                        ck_assert_uint_eq(msg.id, ids[i]);
                        ck_assert_int_eq(msg.status, 0);
                        ck_assert_str_eq(msg.name, "network-control");
                        ck_assert_uint_eq(msg.body->count, 0);
                        ck_assert_ptr_null(msg.body->child);
                }
        for (size_t s = 0; s < ARRAY_SIZE(statuses); s++) {
                pw_init(&pw, PROTO_REPLY, 3, statuses[s], "tap_get");
                pw_str(&pw, "error", "boom");
                ck_assert_int_eq(finish_and_decode(), 0);
                ck_assert_int_eq(msg.status, statuses[s]);
                ck_assert_str_eq(proto_get_str(msg.body, "error", ""), "boom");
        }
        ck_assert_uint_eq(strlen(name32), PROTO_MAX_NAME);
        pw_init(&pw, PROTO_REQUEST, 1, 0, name32);
        ck_assert_int_eq(finish_and_decode(), 0);
        ck_assert_str_eq(msg.name, name32);
        pw_init(&pw, PROTO_REQUEST, 1, 0, "a");
        ck_assert_int_eq(finish_and_decode(), 0);
        ck_assert_str_eq(msg.name, "a");
}
END_TEST

START_TEST(test_rt_set_id)
{
        pw_init(&pw, PROTO_REQUEST, 0, 0, "tap_list");
        pw_u64(&pw, "x", 1);
        pw_set_id(&pw, 0xdeadbeef);
        ck_assert_int_eq(finish_and_decode(), 0);
        ck_assert_uint_eq(msg.id, 0xdeadbeef);
        ck_assert_uint_eq(proto_get_u64(msg.body, "x", 0), 1);
}
END_TEST

/* The writer's bytes are exactly the documented layout. */
START_TEST(test_wire_golden)
{
        const uint8_t *buf;
        size_t len;

        pw_init(&pw, PROTO_REPLY, 0x01020304, -2, "ab");
        pw_u64(&pw, "u", 0x1122334455667788ULL);
        pw_list_begin(&pw, "l");
        pw_bool(&pw, NULL, true);
        pw_str(&pw, NULL, "hi");
        pw_list_end(&pw);
        ck_assert_int_eq(pw_finish(&pw, &buf, &len), 0);

        b_reset();
        b_header(PROTO_REPLY, 0x01020304, -2, "ab");
        b_u16(2);
        b_key("u");
        b_tag_u64(0x1122334455667788ULL);
        b_key("l");
        b_u8(PV_LIST);
        b_u16(2);
        b_u8(PV_BOOL);
        b_u8(1);
        b_str("hi");
        ck_assert_uint_eq(len, fb.n);
        ck_assert_mem_eq(buf, fb.b, len);
        ck_assert_uint_eq(buf[0], 'N');
        ck_assert_uint_eq(buf[3], 'A');
}
END_TEST

START_TEST(test_rt_container_limits)
{
        char key[16];
        const struct proto_value *l;

        /* PROTO_MAX_MEMBERS members and PROTO_MAX_ITEMS items are fine */
        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        for (int i = 0; i < PROTO_MAX_MEMBERS - 1; i++) {
                (void)snprintf(key, sizeof(key), "k%d", i);
                pw_bool(&pw, key, i & 1);
        }
        pw_list_begin(&pw, "items");
        for (int i = 0; i < PROTO_MAX_ITEMS; i++)
                pw_u64(&pw, NULL, (uint64_t)i);
        pw_list_end(&pw);
        ck_assert_int_eq(finish_and_decode(), 0);
        ck_assert_uint_eq(msg.body->count, PROTO_MAX_MEMBERS);
        l = proto_get(msg.body, "items");
        ck_assert_uint_eq(l->count, PROTO_MAX_ITEMS);
        ck_assert_uint_eq(chain_len(l), PROTO_MAX_ITEMS);
        ck_assert_uint_eq(nth_child(l, PROTO_MAX_ITEMS - 1)->v.u, PROTO_MAX_ITEMS - 1);
        ck_assert(proto_get_bool(msg.body, "k1", false));
        ck_assert(!proto_get_bool(msg.body, "k62", true));
}
END_TEST

/* Exactly PROTO_MAX_NODES values: root + 2 list members + 2045 items. */
START_TEST(test_rt_node_limit)
{
        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        pw_list_begin(&pw, "a");
        for (int i = 0; i < PROTO_MAX_ITEMS; i++)
                pw_u64(&pw, NULL, 1);
        pw_list_end(&pw);
        pw_list_begin(&pw, "b");
        for (int i = 0; i < PROTO_MAX_NODES - 3 - PROTO_MAX_ITEMS; i++)
                pw_u64(&pw, NULL, 2);
        pw_list_end(&pw);
        ck_assert_int_eq(finish_and_decode(), 0);
        ck_assert_uint_eq(msg.n_nodes, PROTO_MAX_NODES);
}
END_TEST

/* A frame of exactly PROTO_MAX_FRAME bytes; one byte more does not fit. */
static void write_full_frame(void)
{
        static char s[PROTO_MAX_STR + 1];
        size_t left;
        char key[16];
        int i = 0;

        pw_init(&pw, PROTO_REQUEST, 1, 0, "tap_get");
        left = PROTO_MAX_FRAME - pw.len;
        memset(s, 'z', PROTO_MAX_STR);
        while (left >= 7 + PROTO_MAX_STR) {      /* klen, "sNN", tag, u16 len */
                s[PROTO_MAX_STR] = '\0';
                (void)snprintf(key, sizeof(key), "s%02d", i++);
                pw_str(&pw, key, s);
                left -= 7 + PROTO_MAX_STR;
        }
        ck_assert_uint_ge(left, 7);
        s[left - 7] = '\0';
        (void)snprintf(key, sizeof(key), "s%02d", i);
        pw_str(&pw, key, s);
        ck_assert_int_eq(pw.err, 0);
        ck_assert_uint_eq(pw.len, PROTO_MAX_FRAME);
}

START_TEST(test_rt_full_frame)
{
        write_full_frame();
        ck_assert_int_eq(finish_and_decode(), 0);
        ck_assert_uint_eq(proto_get(msg.body, "s00")->count, PROTO_MAX_STR);
}
END_TEST

/* ---- decoder rejections ---- */

START_TEST(test_rej_short_header)
{
        b_begin(0);
        ck_assert_uint_eq(fb.n, PROTO_HEADER_SIZE + 1 + 7 + 2);
        ACCEPT();
        for (size_t n = 0; n < PROTO_HEADER_SIZE; n++) {
                fb.n = n;
                REJECT(-EBADMSG, "header");
        }
        /* a NULL buffer of length 0 is just short */
        memset(err, 0, sizeof(err));
        ck_assert_int_eq(proto_decode(NULL, 0, &msg, err, sizeof(err)), -EBADMSG);
        ck_assert(err[0] != '\0');
}
END_TEST

START_TEST(test_rej_magic)
{
        b_reset();
        b_header_raw(0x4e4f5641, PROTO_VERSION, PROTO_REQUEST, 1, 0, "a", 1); /* byte-swapped */
        b_u16(0);
        REJECT(-EBADMSG, "magic");
        for (int i = 0; i < 4; i++) {
                b_begin(0);
                fb.b[i] ^= 0x20;
                REJECT(-EBADMSG, "magic");
        }
}
END_TEST

START_TEST(test_rej_version)
{
        static const uint16_t versions[] = { 0, 2, 0x100, 0xffff };

        for (size_t i = 0; i < ARRAY_SIZE(versions); i++) {
                b_reset();
                b_header_raw(PROTO_MAGIC, versions[i], PROTO_REQUEST, 1, 0, "tap_get", 7);
                b_u16(0);
                REJECT(-EPROTONOSUPPORT, "version");
        }
}
END_TEST

START_TEST(test_rej_frame_type)
{
        static const uint16_t types[] = { 0, 5, 6, 0x100, 0xffff };

        for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
                b_reset();
                b_header(types[i], 1, 0, "tap_get");
                b_u16(0);
                REJECT(-EBADMSG, "frame type");
        }
}
END_TEST

START_TEST(test_rej_status)
{
        static const uint16_t non_replies[] = { PROTO_HELLO, PROTO_REQUEST, PROTO_EVENT };
        static const int32_t bad_reply[] = { 1, 4095, INT32_MAX, -4096, -100000, INT32_MIN };

        for (size_t i = 0; i < ARRAY_SIZE(non_replies); i++) {
                b_reset();
                b_header(non_replies[i], 0, -EINVAL, "x");
                b_u16(0);
                REJECT(-EBADMSG, "status");
                b_reset();
                b_header(non_replies[i], 0, 1, "x");
                b_u16(0);
                REJECT(-EBADMSG, "status");
        }
        for (size_t i = 0; i < ARRAY_SIZE(bad_reply); i++) {
                b_reset();
                b_header(PROTO_REPLY, 9, bad_reply[i], "x");
                b_u16(0);
                REJECT(-EBADMSG, "status");
        }
        b_reset();
        b_header(PROTO_REPLY, 9, -4095, "x");
        b_u16(0);
        ACCEPT();
        ck_assert_int_eq(msg.status, -4095);
}
END_TEST

START_TEST(test_rej_name)
{
        static const struct {
                const char *s;
                size_t len;
        } bad_names[] = {
                { "", 0 },
                { "Tap_get", 7 },
                { "tap_GET", 7 },
                { "abcdefghijklmnopqrstuvwxyz0123456", 33 },
                { "1tap", 4 },
                { "_tap", 4 },
                { "-tap", 4 },
                { "tap get", 7 },
                { "tap.get", 7 },
                { "tap/get", 7 },
                { "tap\0", 4 },
                { "caf\xc3\xa9", 5 },
        };

        for (size_t i = 0; i < ARRAY_SIZE(bad_names); i++) {
                b_reset();
                b_header_raw(PROTO_MAGIC, PROTO_VERSION, PROTO_REQUEST, 1, 0, bad_names[i].s, bad_names[i].len);
                b_u16(0);
                REJECT(-EBADMSG, "name");
        }
        /* the name length runs past the end */
        b_reset();
        b_header(PROTO_REQUEST, 1, 0, "");
        fb.b[PROTO_HEADER_SIZE] = 200;
        b_mem("abc", 3);
        REJECT(-EBADMSG, "truncated name");
        /* names may contain '-' and digits after the first letter */
        b_reset();
        b_header(PROTO_HELLO, 0, 0, "network-control2");
        b_u16(0);
        ACCEPT();
        ck_assert_str_eq(msg.name, "network-control2");
}
END_TEST

/* A frame with a bit of everything, for truncation and trailing bytes. */
static void build_rich_frame(void)
{
        b_reset();
        b_header(PROTO_REPLY, 77, -2, "tap_get");
        b_u16(7);
        b_key("u");
        b_tag_u64(1500);
        b_key("i");
        b_u8(PV_I64);
        b_u64((uint64_t)-3);
        b_key("flag");
        b_u8(PV_BOOL);
        b_u8(1);
        b_key("name");
        b_str("tap12345678-9a");
        b_key("empty");
        b_str("");
        b_key("tap");
        b_u8(PV_OBJ);
        b_u16(2);
        b_key("mac");
        b_str("fa:16:3e:00:11:22");
        b_key("ids");
        b_u8(PV_LIST);
        b_u16(3);
        b_tag_u64(1);
        b_str("\xe2\x82\xac");
        b_u8(PV_OBJ);
        b_u16(1);
        b_key("z");
        b_u8(PV_BOOL);
        b_u8(0);
        b_key("none");
        b_u8(PV_LIST);
        b_u16(0);
}

START_TEST(test_rej_truncated_everywhere)
{
        size_t full;

        build_rich_frame();
        ACCEPT();
        ck_assert_uint_eq(msg.body->count, 7);
        ck_assert_int_eq(msg.status, -2);
        ck_assert_str_eq(proto_get_str(proto_get(msg.body, "tap"), "mac", ""), "fa:16:3e:00:11:22");
        full = fb.n;
        for (size_t n = 0; n < full; n++) {
                int r = decode_exact(fb.b, n);
                ck_assert_msg(r == -EBADMSG, "prefix of %zu/%zu bytes: decode returned %d", n, full, r);
                ck_assert_msg(err[0] != '\0', "prefix of %zu bytes: no reason", n);
        }
}
END_TEST

START_TEST(test_rej_trailing)
{
        build_rich_frame();
        b_u8(0);
        REJECT(-EBADMSG, "trailing");
        build_rich_frame();
        for (int i = 0; i < 100; i++)
                b_u8(PV_U64);
        REJECT(-EBADMSG, "100 trailing");
        /* an extra member not counted by the root count is trailing too */
        b_begin(0);
        b_key("a");
        b_tag_u64(1);
        REJECT(-EBADMSG, "trailing");
}
END_TEST

START_TEST(test_rej_value_tag)
{
        static const uint8_t tags[] = { 0, 7, 8, 0x80, 0xff };

        for (size_t i = 0; i < ARRAY_SIZE(tags); i++) {
                b_begin(1);
                b_key("a");
                b_u8(tags[i]);
                b_u64(0);
                REJECT(-EBADMSG, "unknown value tag");
                /* inside a list */
                b_begin(1);
                b_key("a");
                b_u8(PV_LIST);
                b_u16(2);
                b_tag_u64(1);
                b_u8(tags[i]);
                REJECT(-EBADMSG, "unknown value tag");
        }
}
END_TEST

START_TEST(test_rej_bool)
{
        static const uint8_t vals[] = { 2, 3, 0x80, 0xff };

        for (size_t i = 0; i < ARRAY_SIZE(vals); i++) {
                b_begin(1);
                b_key("b");
                b_u8(PV_BOOL);
                b_u8(vals[i]);
                REJECT(-EBADMSG, "bool");
        }
        b_begin(2);
        b_key("t");
        b_u8(PV_BOOL);
        b_u8(1);
        b_key("f");
        b_u8(PV_BOOL);
        b_u8(0);
        ACCEPT();
        ck_assert(proto_get_bool(msg.body, "t", false));
        ck_assert(!proto_get_bool(msg.body, "f", true));
}
END_TEST

START_TEST(test_rej_string_length)
{
        static char s[0x10000];

        memset(s, 'a', sizeof(s));
        b_begin(1);
        b_key("s");
        b_str_raw(s, PROTO_MAX_STR);
        ACCEPT();
        ck_assert_uint_eq(proto_get(msg.body, "s")->count, PROTO_MAX_STR);

        b_begin(1);
        b_key("s");
        b_str_raw(s, PROTO_MAX_STR + 1);
        REJECT(-EBADMSG, "string of 4097 bytes");

        /* u16 length 0xffff with the bytes present (fits the frame) */
        b_begin(1);
        b_key("s");
        b_u8(PV_STR);
        b_u16(0xffff);
        b_mem(s, 0xffff - 100);
        REJECT(-EBADMSG, "string of");
}
END_TEST

START_TEST(test_rej_string_control)
{
        char s[8];

        for (int c = 0; c < 0x20; c++) {
                memcpy(s, "ab?cd", 5);
                s[2] = (char)c;
                b_begin(1);
                b_key("s");
                b_str_raw(s, 5);
                REJECT(-EBADMSG, "not clean");
        }
        b_begin(1);
        b_key("s");
        b_str_raw("ab\x7f", 3);
        REJECT(-EBADMSG, "not clean");
        /* NUL at the very start and end */
        b_begin(1);
        b_key("s");
        b_str_raw("\0abc", 4);
        REJECT(-EBADMSG, "not clean");
        b_begin(1);
        b_key("s");
        b_str_raw("abc\0", 4);
        REJECT(-EBADMSG, "not clean");
        /* C1 controls U+0080..U+009F, encoded as proper UTF-8 */
        for (int c = 0x80; c <= 0x9f; c++) {
                s[0] = 'x';
                s[1] = (char)0xc2;
                s[2] = (char)c;
                b_begin(1);
                b_key("s");
                b_str_raw(s, 3);
                REJECT(-EBADMSG, "not clean");
        }
        /* a control char inside a list item and an object member */
        b_begin(1);
        b_key("l");
        b_u8(PV_LIST);
        b_u16(1);
        b_str("tab\there");
        REJECT(-EBADMSG, "not clean");
}
END_TEST

struct bytes {
        const char *s;
        size_t len;
};
#define B(str) { str, sizeof(str) - 1 }

START_TEST(test_rej_string_utf8)
{
        static const struct bytes bad[] = {
                B("\x80"),                 /* lone continuation byte */
                B("a\xbf" "b"),            /* continuation in the middle */
                B("\xc0\xaf"),             /* overlong '/' (2 bytes) */
                B("\xc1\xbf"),             /* overlong 0x7f */
                B("\xe0\x80\xaf"),         /* overlong '/' (3 bytes) */
                B("\xe0\x9f\xbf"),         /* overlong U+07FF */
                B("\xf0\x80\x80\xaf"),     /* overlong '/' (4 bytes) */
                B("\xf0\x8f\xbf\xbf"),     /* overlong U+FFFF */
                B("\xed\xa0\x80"),         /* surrogate U+D800 */
                B("\xed\xbf\xbf"),         /* surrogate U+DFFF */
                B("\xed\xa0\xbd\xed\xb8\x80"), /* CESU-8 surrogate pair */
                B("\xf4\x90\x80\x80"),     /* U+110000 */
                B("\xf5\x80\x80\x80"),
                B("\xf8\x88\x80\x80\x80"), /* 5-byte form */
                B("\xfc\x84\x80\x80\x80\x80"),
                B("\xfe"),
                B("\xff"),
                B("\xc3"),                 /* truncated 2-byte sequence at the end */
                B("abc\xe2\x82"),          /* truncated 3-byte sequence at the end */
                B("\xf0\x9f\x98"),         /* truncated 4-byte sequence */
                B("\xe2\x82" "a"),         /* truncated sequence followed by ASCII */
                B("\xc3\xc3\xa9"),         /* lead byte where a continuation belongs */
                B("\xe2\x28\xa1"),
        };

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                b_begin(1);
                b_key("s");
                b_str_raw(bad[i].s, bad[i].len);
                REJECT(-EBADMSG, "not clean");
                ck_assert_msg(!proto_text_is_clean(bad[i].s, bad[i].len), "case %zu accepted", i);
        }
}
END_TEST

START_TEST(test_string_utf8_valid)
{
        static const struct bytes good[] = {
                B("caf\xc3\xa9"),           /* U+00E9 */
                B("\xc2\xa0"),              /* U+00A0: first after C1 */
                B("\xdf\xbf"),              /* U+07FF */
                B("\xe0\xa0\x80"),          /* U+0800 */
                B("\xe2\x82\xac"),          /* U+20AC */
                B("\xed\x9f\xbf"),          /* U+D7FF */
                B("\xee\x80\x80"),          /* U+E000 */
                B("\xef\xbf\xbd"),          /* U+FFFD */
                B("\xf0\x90\x80\x80"),      /* U+10000 */
                B("\xf0\x9f\x98\x80"),      /* U+1F600 */
                B("\xf4\x8f\xbf\xbf"),      /* U+10FFFF */
                B("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"),
                B(" ~"),
        };

        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                const struct proto_value *v;

                b_begin(1);
                b_key("s");
                b_str_raw(good[i].s, good[i].len);
                ACCEPT();
                v = proto_get(msg.body, "s");
                ck_assert_uint_eq(v->count, good[i].len);
                ck_assert_mem_eq(v->v.s, good[i].s, good[i].len);
                ck_assert_uint_eq((uint8_t)v->v.s[good[i].len], 0);
                /* the writer takes it too */
                pw_init(&pw, PROTO_EVENT, 0, 0, "e");
                pw_str(&pw, "s", good[i].s);
                ck_assert_int_eq(finish_and_decode(), 0);
                ck_assert_str_eq(proto_get_str(msg.body, "s", ""), good[i].s);
        }
}
END_TEST

START_TEST(test_rej_members)
{
        char key[16];

        /* root object */
        b_begin(PROTO_MAX_MEMBERS + 1);
        for (int i = 0; i < PROTO_MAX_MEMBERS + 1; i++) {
                (void)snprintf(key, sizeof(key), "k%d", i);
                b_key(key);
                b_tag_u64((uint64_t)i);
        }
        REJECT(-EBADMSG, "65 members");
        /* a count of 0xffff with nothing behind it is refused for the count */
        b_begin(0xffff);
        REJECT(-EBADMSG, "members");
        /* nested object */
        b_begin(1);
        b_key("o");
        b_u8(PV_OBJ);
        b_u16(PROTO_MAX_MEMBERS + 1);
        for (int i = 0; i < PROTO_MAX_MEMBERS + 1; i++) {
                (void)snprintf(key, sizeof(key), "k%d", i);
                b_key(key);
                b_tag_u64((uint64_t)i);
        }
        REJECT(-EBADMSG, "members");
        /* exactly the limit, nested */
        b_begin(1);
        b_key("o");
        b_u8(PV_OBJ);
        b_u16(PROTO_MAX_MEMBERS);
        for (int i = 0; i < PROTO_MAX_MEMBERS; i++) {
                (void)snprintf(key, sizeof(key), "k%d", i);
                b_key(key);
                b_tag_u64((uint64_t)i);
        }
        ACCEPT();
        ck_assert_uint_eq(proto_get(msg.body, "o")->count, PROTO_MAX_MEMBERS);
        ck_assert_uint_eq(proto_get_u64(proto_get(msg.body, "o"), "k63", 0), 63);
}
END_TEST

START_TEST(test_rej_items)
{
        b_begin(1);
        b_key("l");
        b_u8(PV_LIST);
        b_u16(PROTO_MAX_ITEMS + 1);
        for (int i = 0; i < PROTO_MAX_ITEMS + 1; i++) {
                b_u8(PV_BOOL);
                b_u8(0);
        }
        REJECT(-EBADMSG, "1025 items");
        b_begin(1);
        b_key("l");
        b_u8(PV_LIST);
        b_u16(0xffff);
        REJECT(-EBADMSG, "items");
        b_begin(1);
        b_key("l");
        b_u8(PV_LIST);
        b_u16(PROTO_MAX_ITEMS);
        for (int i = 0; i < PROTO_MAX_ITEMS; i++) {
                b_u8(PV_BOOL);
                b_u8(1);
        }
        ACCEPT();
        ck_assert_uint_eq(proto_get(msg.body, "l")->count, PROTO_MAX_ITEMS);
}
END_TEST

/* depth containers of kind tags[i % 2], innermost empty */
static void build_nest(int depth, uint8_t first, uint8_t second)
{
        b_begin(1);
        b_key("n");
        for (int i = 0; i < depth; i++) {
                uint8_t tag = i % 2 ? second : first;
                b_u8(tag);
                b_u16(i == depth - 1 ? 0 : 1);
                /* the next container is a member of an object, an item of a list */
                if (i != depth - 1 && tag == PV_OBJ)
                        b_key("n");
        }
}

START_TEST(test_rej_depth)
{
        static const uint8_t kinds[][2] = {
                { PV_LIST, PV_LIST }, { PV_OBJ, PV_OBJ }, { PV_LIST, PV_OBJ }, { PV_OBJ, PV_LIST },
        };

        for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
                build_nest(PROTO_MAX_DEPTH, kinds[k][0], kinds[k][1]);
                ACCEPT();
                build_nest(PROTO_MAX_DEPTH + 1, kinds[k][0], kinds[k][1]);
                REJECT(-EBADMSG, "nested deeper");
                build_nest(PROTO_MAX_DEPTH + 20, kinds[k][0], kinds[k][1]);
                REJECT(-EBADMSG, "nested deeper");
        }
}
END_TEST

START_TEST(test_rej_duplicate_key)
{
        b_begin(2);
        b_key("mtu");
        b_tag_u64(1);
        b_key("mtu");
        b_tag_u64(2);
        REJECT(-EBADMSG, "duplicate key 'mtu'");
        /* not adjacent, different types */
        b_begin(3);
        b_key("a");
        b_str("x");
        b_key("b");
        b_tag_u64(2);
        b_key("a");
        b_u8(PV_BOOL);
        b_u8(0);
        REJECT(-EBADMSG, "duplicate");
        /* inside a nested object */
        b_begin(1);
        b_key("o");
        b_u8(PV_OBJ);
        b_u16(2);
        b_key("k");
        b_tag_u64(1);
        b_key("k");
        b_tag_u64(1);
        REJECT(-EBADMSG, "duplicate");
        /* prefixes are different keys; same key in different objects is fine */
        b_begin(3);
        b_key("a");
        b_tag_u64(1);
        b_key("ab");
        b_tag_u64(2);
        b_key("o");
        b_u8(PV_OBJ);
        b_u16(1);
        b_key("a");
        b_tag_u64(3);
        ACCEPT();
        ck_assert_uint_eq(proto_get_u64(msg.body, "a", 0), 1);
        ck_assert_uint_eq(proto_get_u64(msg.body, "ab", 0), 2);
        ck_assert_uint_eq(proto_get_u64(proto_get(msg.body, "o"), "a", 0), 3);
}
END_TEST

START_TEST(test_rej_bad_key)
{
        static const struct bytes bad[] = {
                B("port-uuid"), B("Mtu"), B("mTU"), B(""), B("1a"), B("_a"), B("a b"), B("a.b"),
                B("a\0"), B("abcdefghijklmnopqrstuvwxyz0123456"), B("caf\xc3\xa9"),
        };

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                b_begin(1);
                b_u8((uint8_t)bad[i].len);
                b_mem(bad[i].s, bad[i].len);
                b_tag_u64(1);
                REJECT(-EBADMSG, "invalid key");
                /* inside a nested object */
                b_begin(1);
                b_key("o");
                b_u8(PV_OBJ);
                b_u16(1);
                b_u8((uint8_t)bad[i].len);
                b_mem(bad[i].s, bad[i].len);
                b_tag_u64(1);
                REJECT(-EBADMSG, "invalid key");
        }
        b_begin(1);
        b_key("abcdefghijklmnopqrstuvwxyz_12345");
        b_tag_u64(5);
        ACCEPT();
        ck_assert_uint_eq(proto_get_u64(msg.body, "abcdefghijklmnopqrstuvwxyz_12345", 0), 5);
        /* key length running past the end */
        b_begin(1);
        b_u8(50);
        b_mem("abc", 3);
        REJECT(-EBADMSG, "truncated key");
}
END_TEST

static void build_nodes(int second_list)
{
        b_begin(2);
        b_key("a");
        b_u8(PV_LIST);
        b_u16(PROTO_MAX_ITEMS);
        for (int i = 0; i < PROTO_MAX_ITEMS; i++)
                b_tag_u64(1);
        b_key("b");
        b_u8(PV_LIST);
        b_u16((uint16_t)second_list);
        for (int i = 0; i < second_list; i++)
                b_tag_u64(2);
}

START_TEST(test_rej_nodes)
{
        /* root + 2 members + items */
        build_nodes(PROTO_MAX_NODES - 3 - PROTO_MAX_ITEMS);
        ACCEPT();
        ck_assert_uint_eq(msg.n_nodes, PROTO_MAX_NODES);
        build_nodes(PROTO_MAX_NODES - 3 - PROTO_MAX_ITEMS + 1);
        REJECT(-EBADMSG, "too many values");
        build_nodes(PROTO_MAX_ITEMS);
        REJECT(-EBADMSG, "too many values");
        /* through object members: 64 objects of 31 members = 2048 + root */
        b_begin(PROTO_MAX_MEMBERS);
        for (int i = 0; i < PROTO_MAX_MEMBERS; i++) {
                char key[16];
                (void)snprintf(key, sizeof(key), "o%d", i);
                b_key(key);
                b_u8(PV_OBJ);
                b_u16(31);
                for (int j = 0; j < 31; j++) {
                        (void)snprintf(key, sizeof(key), "k%d", j);
                        b_key(key);
                        b_u8(PV_BOOL);
                        b_u8(1);
                }
        }
        REJECT(-EBADMSG, "too many values");
}
END_TEST

START_TEST(test_rej_frame_size)
{
        static uint8_t big[PROTO_MAX_FRAME * 2];
        const uint8_t *buf;
        size_t len;

        write_full_frame();
        ck_assert_int_eq(pw_finish(&pw, &buf, &len), 0);
        ck_assert_uint_eq(len, PROTO_MAX_FRAME);
        b_reset();
        b_mem(buf, len);
        ACCEPT();
        b_u8(0);
        REJECT(-EMSGSIZE, "frame of 65537 bytes");
        memset(err, 0, sizeof(err));
        ck_assert_int_eq(proto_decode(big, sizeof(big), &msg, err, sizeof(err)), -EMSGSIZE);
        ck_assert(err[0] != '\0');
        memset(err, 0, sizeof(err));
        ck_assert_int_eq(proto_decode(big, SIZE_MAX, &msg, err, sizeof(err)), -EMSGSIZE);
        ck_assert(err[0] != '\0');
}
END_TEST

START_TEST(test_err_buffer)
{
        char small[6];

        b_begin(0);
        fb.b[0] = 'X';
        /* no error buffer at all */
        ck_assert_int_eq(proto_decode(fb.b, fb.n, &msg, NULL, 0), -EBADMSG);
        memset(small, 'Q', sizeof(small));
        ck_assert_int_eq(proto_decode(fb.b, fb.n, &msg, small, sizeof(small)), -EBADMSG);
        ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
        /* a success leaves an empty message */
        b_begin(0);
        memset(err, 'Q', sizeof(err));
        ck_assert_int_eq(proto_decode(fb.b, fb.n, &msg, err, sizeof(err)), 0);
        ck_assert_str_eq(err, "");
}
END_TEST

/* A decode after a failed one starts afresh. */
START_TEST(test_decode_reuse)
{
        build_rich_frame();
        fb.n -= 3;
        ck_assert_int_lt(decode_fb(), 0);
        build_rich_frame();
        ACCEPT();
        ck_assert_uint_eq(msg.body->count, 7);
        ck_assert_uint_eq(proto_get_u64(msg.body, "u", 0), 1500);
        b_begin(0);
        ACCEPT();
        ck_assert_uint_eq(msg.n_nodes, 1);
        ck_assert_uint_eq(msg.strings_used, 0);
}
END_TEST

/* A copy outlives its frame: decode the rich frame, copy its body, decode another frame into the
 * same arena (and scribble over what is left of the first), and the copy still reads the same. */
START_TEST(test_value_dup)
{
        const struct proto_value *tap, *ids, *item;
        struct proto_value *copy;

        build_rich_frame();
        ACCEPT();
        copy = proto_value_dup(msg.body);
        ck_assert_ptr_nonnull(copy);
        b_begin(1);
        b_key("other");
        b_str("a string that lands where the first frame's strings were");
        ACCEPT();
        memset(msg.strings + msg.strings_used, 'x', sizeof(msg.strings) - msg.strings_used);
        memset(&msg.nodes[msg.n_nodes], 0xa5, sizeof(msg.nodes) - msg.n_nodes * sizeof(msg.nodes[0]));

        ck_assert_int_eq(copy->type, PV_OBJ);
        ck_assert_ptr_null(copy->key);
        ck_assert_ptr_null(copy->next);
        ck_assert_uint_eq(copy->count, 7);
        ck_assert_uint_eq(chain_len(copy), 7);
        ck_assert_uint_eq(proto_get_u64(copy, "u", 0), 1500);
        ck_assert_int_eq(proto_get(copy, "i")->v.i, -3);
        ck_assert(proto_get_bool(copy, "flag", false));
        ck_assert_str_eq(proto_get_str(copy, "name", ""), "tap12345678-9a");
        ck_assert_uint_eq(proto_get(copy, "name")->count, 14);
        ck_assert_str_eq(proto_get_str(copy, "empty", "absent"), "");
        tap = proto_get(copy, "tap");
        ck_assert_ptr_nonnull(tap);
        ck_assert_str_eq(proto_get_str(tap, "mac", ""), "fa:16:3e:00:11:22");
        ids = proto_get(tap, "ids");
        ck_assert_ptr_nonnull(ids);
        ck_assert_int_eq(ids->type, PV_LIST);
        ck_assert_uint_eq(chain_len(ids), 3);
        ck_assert_uint_eq(nth_child(ids, 0)->v.u, 1);
        ck_assert_ptr_null(nth_child(ids, 0)->key);
        ck_assert_str_eq(nth_child(ids, 1)->v.s, "\xe2\x82\xac");
        item = nth_child(ids, 2);
        ck_assert_int_eq(item->type, PV_OBJ);
        ck_assert(!proto_get_bool(item, "z", true));
        ck_assert_int_eq(proto_get(copy, "none")->type, PV_LIST);
        ck_assert_ptr_null(proto_get(copy, "none")->child);
        /* the copy points into itself only */
        ck_assert_ptr_ne(proto_get_str(copy, "name", NULL), NULL);
        ck_assert(proto_get_str(copy, "name", NULL) < msg.strings ||
                  proto_get_str(copy, "name", NULL) >= msg.strings + sizeof(msg.strings));
        free(copy);

        /* a scalar alone, with its key */
        build_rich_frame();
        ACCEPT();
        copy = proto_value_dup(proto_get(msg.body, "name"));
        ck_assert_ptr_nonnull(copy);
        ck_assert_ptr_null(copy->next);
        ck_assert_str_eq(copy->key, "name");
        ck_assert_str_eq(copy->v.s, "tap12345678-9a");
        free(copy);
}
END_TEST

/* ---- writer errors ---- */

START_TEST(test_w_key_in_list)
{
        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        pw_list_begin(&pw, "l");
        pw_u64(&pw, "k", 1);
        ck_assert_int_eq(pw.err, -EINVAL);
        WRITER_ERR(-EINVAL);

        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        pw_list_begin(&pw, "l");
        pw_obj_begin(&pw, "o");
        WRITER_ERR(-EINVAL);
}
END_TEST

START_TEST(test_w_no_key_in_object)
{
        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        pw_u64(&pw, NULL, 1);
        WRITER_ERR(-EINVAL);
        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        pw_str(&pw, NULL, "a");
        WRITER_ERR(-EINVAL);
        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        pw_list_begin(&pw, NULL);
        WRITER_ERR(-EINVAL);
        /* nested object */
        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        pw_list_begin(&pw, "l");
        pw_obj_begin(&pw, NULL);
        pw_bool(&pw, NULL, true);
        WRITER_ERR(-EINVAL);
}
END_TEST

START_TEST(test_w_unbalanced)
{
        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        pw_obj_end(&pw);
        ck_assert_int_eq(pw.err, -EINVAL); /* sticky right away, not only at finish */
        ck_assert_uint_eq(pw.depth, 0);
        WRITER_ERR(-EINVAL);
        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        pw_list_end(&pw);
        ck_assert_int_eq(pw.err, -EINVAL);
        WRITER_ERR(-EINVAL);
        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        pw_list_begin(&pw, "l");
        pw_obj_end(&pw);
        WRITER_ERR(-EINVAL);
        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        pw_obj_begin(&pw, "o");
        pw_list_end(&pw);
        WRITER_ERR(-EINVAL);
        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        pw_obj_begin(&pw, "o");
        pw_obj_end(&pw);
        pw_obj_end(&pw);
        ck_assert_int_eq(pw.err, -EINVAL);
        pw_u64(&pw, "a", 1);
        WRITER_ERR(-EINVAL);
        /* left open */
        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        pw_obj_begin(&pw, "o");
        WRITER_ERR(-EINVAL);
        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        pw_list_begin(&pw, "l");
        pw_list_begin(&pw, NULL);
        pw_list_end(&pw);
        WRITER_ERR(-EINVAL);
}
END_TEST

START_TEST(test_w_too_deep)
{
        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        pw_list_begin(&pw, "l");
        for (int i = 1; i < PROTO_MAX_DEPTH; i++)
                pw_list_begin(&pw, NULL);
        ck_assert_int_eq(pw.err, 0);
        pw_list_begin(&pw, NULL);
        ck_assert_int_eq(pw.err, -EINVAL);
        pw_obj_begin(&pw, NULL);
        for (int i = 0; i < PROTO_MAX_DEPTH + 1; i++)
                pw_list_end(&pw);
        WRITER_ERR(-EINVAL);
}
END_TEST

START_TEST(test_w_overflow)
{
        static char s[PROTO_MAX_STR + 1];
        char key[16];
        int i;

        memset(s, 'y', PROTO_MAX_STR);
        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        for (i = 0; i < 20 && pw.err == 0; i++) {
                (void)snprintf(key, sizeof(key), "s%d", i);
                pw_str(&pw, key, s);
                ck_assert_uint_le(pw.len, PROTO_MAX_FRAME);
        }
        ck_assert_int_eq(i, 16); /* the 16th string does not fit */
        ck_assert_int_eq(pw.err, -EMSGSIZE);
        WRITER_ERR(-EMSGSIZE);

        /* one byte past a full frame */
        write_full_frame();
        pw_bool(&pw, "one", true);
        WRITER_ERR(-EMSGSIZE);
        ck_assert_uint_le(pw.len, PROTO_MAX_FRAME);
        write_full_frame();
        pw_list_begin(&pw, "l");
        WRITER_ERR(-EMSGSIZE);

        /* a list overflowing the frame through many small items */
        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        for (i = 0; i < PROTO_MAX_MEMBERS && pw.err == 0; i++) {
                (void)snprintf(key, sizeof(key), "l%d", i);
                pw_list_begin(&pw, key);
                for (int j = 0; j < PROTO_MAX_ITEMS; j++)
                        pw_u64(&pw, NULL, (uint64_t)j);
                pw_list_end(&pw);
        }
        WRITER_ERR(-EMSGSIZE);
        ck_assert_uint_le(pw.len, PROTO_MAX_FRAME);
}
END_TEST

START_TEST(test_w_counts)
{
        char key[16];

        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        for (int i = 0; i < PROTO_MAX_MEMBERS; i++) {
                (void)snprintf(key, sizeof(key), "k%d", i);
                pw_u64(&pw, key, 1);
        }
        ck_assert_int_eq(pw.err, 0);
        pw_u64(&pw, "extra", 1);
        WRITER_ERR(-EMSGSIZE);

        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        pw_list_begin(&pw, "l");
        for (int i = 0; i < PROTO_MAX_ITEMS; i++)
                pw_bool(&pw, NULL, true);
        ck_assert_int_eq(pw.err, 0);
        pw_bool(&pw, NULL, true);
        pw_list_end(&pw);
        WRITER_ERR(-EMSGSIZE);
}
END_TEST

START_TEST(test_w_bad_strings)
{
        static const char *const bad[] = {
                "a\tb", "line\n", "\r", "\x01", "del\x7f", "\xc0\xaf", "\xed\xa0\x80", "\xc3", "\xff",
                "\xc2\x85",
        };
        static char big[PROTO_MAX_STR + 2];

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
                pw_str(&pw, "s", bad[i]);
                WRITER_ERR(-EINVAL);
                pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
                pw_list_begin(&pw, "l");
                pw_str(&pw, NULL, bad[i]);
                pw_list_end(&pw);
                WRITER_ERR(-EINVAL);
        }
        memset(big, 'a', PROTO_MAX_STR + 1);
        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        pw_str(&pw, "s", big);
        WRITER_ERR(-EINVAL);
}
END_TEST

START_TEST(test_w_bad_keys_and_names)
{
        static const char *const keys[] = {
                "port-uuid", "Mtu", "", "1x", "_x", "a b", "abcdefghijklmnopqrstuvwxyz0123456",
        };
        static const char *const names[] = {
                "", "Tap", "1x", "-x", "tap get", "abcdefghijklmnopqrstuvwxyz0123456",
        };

        for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
                pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
                pw_u64(&pw, keys[i], 1);
                WRITER_ERR(-EINVAL);
                pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
                pw_obj_begin(&pw, keys[i]);
                pw_obj_end(&pw);
                WRITER_ERR(-EINVAL);
        }
        for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
                pw_init(&pw, PROTO_REQUEST, 1, 0, names[i]);
                ck_assert_int_eq(pw.err, -EINVAL);
                pw_u64(&pw, "a", 1);
                pw_list_begin(&pw, "l");
                pw_list_end(&pw);
                WRITER_ERR(-EINVAL);
        }
}
END_TEST

START_TEST(test_w_sticky)
{
        static char s[PROTO_MAX_STR + 1];
        const uint8_t *buf;
        size_t len, at;
        char key[16];

        /* first -EINVAL, then operations that would succeed or overflow */
        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        pw_u64(&pw, "ok", 1);
        pw_u64(&pw, NULL, 2);
        at = pw.len;
        pw_u64(&pw, "fine", 3);
        pw_obj_begin(&pw, "o");
        pw_obj_end(&pw);
        memset(s, 'q', PROTO_MAX_STR);
        for (int i = 0; i < 20; i++) {
                (void)snprintf(key, sizeof(key), "s%d", i);
                pw_str(&pw, key, s);
        }
        ck_assert_uint_eq(pw.len, at);
        ck_assert_int_eq(pw.err, -EINVAL);
        ck_assert_int_eq(pw_finish(&pw, &buf, &len), -EINVAL);
        ck_assert_int_eq(pw_finish(&pw, &buf, &len), -EINVAL);

        /* first -EMSGSIZE, then an -EINVAL cause */
        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        for (int i = 0; i < 20; i++) {
                (void)snprintf(key, sizeof(key), "s%d", i);
                pw_str(&pw, key, s);
        }
        ck_assert_int_eq(pw.err, -EMSGSIZE);
        at = pw.len;
        pw_str(&pw, "bad", "\x01");
        pw_u64(&pw, NULL, 1);
        pw_obj_end(&pw);
        ck_assert_int_eq(pw.err, -EMSGSIZE);
        ck_assert_uint_eq(pw.len, at);
        WRITER_ERR(-EMSGSIZE);
        pw_init(&pw, PROTO_REQUEST, 1, 0, "x"); /* pw_init starts afresh */
        ck_assert_int_eq(pw.err, 0);
        pw_u64(&pw, "a", 1);
        ck_assert_int_eq(finish_and_decode(), 0);
        ck_assert_uint_eq(proto_get_u64(msg.body, "a", 0), 1);

        /* an error inside an open container is still the one reported */
        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        pw_list_begin(&pw, "l");
        pw_str(&pw, NULL, "\x02");
        pw_list_end(&pw);
        ck_assert_int_eq(pw.err, -EINVAL);
        WRITER_ERR(-EINVAL);
}
END_TEST

/* ---- accessors ---- */

START_TEST(test_accessors)
{
        const struct proto_value *b, *o, *l;

        pw_init(&pw, PROTO_REPLY, 5, 0, "tap_get");
        pw_str(&pw, "name", "tap0");
        pw_u64(&pw, "mtu", 1500);
        pw_i64(&pw, "neg", -7);
        pw_bool(&pw, "up", true);
        pw_obj_begin(&pw, "tap");
        pw_str(&pw, "mac", "fa:16:3e:00:00:01");
        pw_obj_end(&pw);
        pw_list_begin(&pw, "list");
        pw_u64(&pw, NULL, 1);
        pw_list_end(&pw);
        ck_assert_int_eq(finish_and_decode(), 0);
        b = msg.body;

        /* proto_get */
        ck_assert_ptr_null(proto_get(NULL, "name"));
        ck_assert_ptr_null(proto_get(b, "absent"));
        ck_assert_ptr_null(proto_get(b, "nam"));
        ck_assert_ptr_null(proto_get(b, "names"));
        ck_assert_ptr_null(proto_get(b, ""));
        ck_assert_ptr_null(proto_get(b, "mac")); /* only in the nested object */
        ck_assert_ptr_nonnull(proto_get(b, "name"));
        ck_assert_ptr_null(proto_get(proto_get(b, "name"), "name")); /* a string is no object */
        l = proto_get(b, "list");
        ck_assert_ptr_null(proto_get(l, "list"));                    /* nor is a list */
        o = proto_get(b, "tap");
        ck_assert_ptr_nonnull(o);
        ck_assert_str_eq(proto_get_str(o, "mac", NULL), "fa:16:3e:00:00:01");

        /* proto_get_str */
        ck_assert_str_eq(proto_get_str(b, "name", "d"), "tap0");
        ck_assert_str_eq(proto_get_str(b, "absent", "d"), "d");
        ck_assert_ptr_null(proto_get_str(b, "absent", NULL));
        ck_assert_str_eq(proto_get_str(b, "mtu", "d"), "d");
        ck_assert_str_eq(proto_get_str(b, "up", "d"), "d");
        ck_assert_str_eq(proto_get_str(b, "tap", "d"), "d");
        ck_assert_str_eq(proto_get_str(b, "list", "d"), "d");
        ck_assert_str_eq(proto_get_str(NULL, "name", "d"), "d");
        ck_assert_str_eq(proto_get_str(l, "name", "d"), "d");

        /* proto_get_u64 */
        ck_assert_uint_eq(proto_get_u64(b, "mtu", 9), 1500);
        ck_assert_uint_eq(proto_get_u64(b, "absent", 9), 9);
        ck_assert_uint_eq(proto_get_u64(b, "neg", 9), 9); /* an I64 is not a U64 */
        ck_assert_uint_eq(proto_get_u64(b, "name", 9), 9);
        ck_assert_uint_eq(proto_get_u64(b, "up", 9), 9);
        ck_assert_uint_eq(proto_get_u64(b, "tap", 9), 9);
        ck_assert_uint_eq(proto_get_u64(NULL, "mtu", 9), 9);

        /* proto_get_bool */
        ck_assert(proto_get_bool(b, "up", false));
        ck_assert(!proto_get_bool(b, "absent", false));
        ck_assert(proto_get_bool(b, "absent", true));
        ck_assert(!proto_get_bool(b, "mtu", false));
        ck_assert(proto_get_bool(b, "mtu", true));
        ck_assert(proto_get_bool(b, "name", true));
        ck_assert(!proto_get_bool(NULL, "up", false));
}
END_TEST

/* ---- small helpers ---- */

START_TEST(test_name_and_text_helpers)
{
        ck_assert(proto_name_is_valid("tap_create", 10));
        ck_assert(proto_name_is_valid("tap_create", 3));   /* "tap": length is honoured */
        ck_assert(proto_name_is_valid("a-9_z", 5));
        ck_assert(!proto_name_is_valid("tap", 0));
        ck_assert(!proto_name_is_valid("Tap", 3));
        ck_assert(!proto_name_is_valid("9ap", 3));
        ck_assert(!proto_name_is_valid("abcdefghijklmnopqrstuvwxyz0123456", 33));
        ck_assert(proto_name_is_valid("abcdefghijklmnopqrstuvwxyz0123456", 32));

        ck_assert(proto_text_is_clean("", 0));
        ck_assert(proto_text_is_clean("abc\x01", 3));       /* only len bytes are looked at */
        ck_assert(!proto_text_is_clean("abc\x01", 4));
        ck_assert(!proto_text_is_clean("\xe2\x82\xac", 2)); /* cut sequence */
        ck_assert(proto_text_is_clean("\xe2\x82\xac", 3));

        ck_assert_str_eq(proto_type_name(PROTO_HELLO), "hello");
        ck_assert_str_eq(proto_type_name(PROTO_REQUEST), "request");
        ck_assert_str_eq(proto_type_name(PROTO_REPLY), "reply");
        ck_assert_str_eq(proto_type_name(PROTO_EVENT), "event");
        ck_assert_str_eq(proto_type_name(0), "unknown");
        ck_assert_str_eq(proto_type_name(5), "unknown");
}
END_TEST

/* ---- regressions ---- */

/* Whatever the writer finishes without an error must decode. The writer
 * bounds depth, members, items and bytes, but not PROTO_MAX_NODES: a tap_list
 * reply with more than 227 taps (9 values each) is built and sent, and the
 * core refuses it as a protocol violation. */
START_TEST(test_bug_writer_node_limit)
{
        const uint8_t *buf;
        size_t len;
        int r;

        /* Whatever the writer accepts, the decoder must accept: write far more
         * taps than fit and check the writer stops with -EMSGSIZE. */
        pw_init(&pw, PROTO_REPLY, 1, 0, "tap_list");
        pw_list_begin(&pw, "taps");
        for (int i = 0; i < 1000; i++) {
                pw_obj_begin(&pw, NULL);
                pw_str(&pw, "name", "tap01234567-89");
                pw_str(&pw, "port_uuid", "01234567-89ab-cdef-0123-456789abcdef");
                pw_str(&pw, "mac", "fa:16:3e:00:00:01");
                pw_u64(&pw, "mtu", 1500);
                pw_u64(&pw, "ifindex", 10);
                pw_bool(&pw, "admin_up", true);
                pw_bool(&pw, "carrier", true);
                pw_str(&pw, "operstate", "up");
                pw_obj_end(&pw);
        }
        pw_list_end(&pw);
        r = pw_finish(&pw, &buf, &len);
        if (r == 0) {
                r = decode_exact(buf, len);
                ck_assert_msg(r == 0, "writer produced %zu bytes the decoder refuses: %s", len, err);
        } else
                ck_assert_int_eq(r, -EMSGSIZE);
        ck_assert_int_eq(r, -EMSGSIZE); /* 1000 taps do not fit one frame */

        /* 227 taps are 2 + 227 * 9 = 2045 values: they build and decode;
         * 228 taps (2054 values) the writer refuses, as the decoder would. */
        for (int taps = 227; taps <= 228; taps++) {
                pw_init(&pw, PROTO_REPLY, 1, 0, "tap_list");
                pw_list_begin(&pw, "taps");
                for (int i = 0; i < taps; i++) {
                        pw_obj_begin(&pw, NULL);
                        pw_str(&pw, "name", "tap01234567-89");
                        pw_str(&pw, "port_uuid", "01234567-89ab-cdef-0123-456789abcdef");
                        pw_str(&pw, "mac", "fa:16:3e:00:00:01");
                        pw_u64(&pw, "mtu", 1500);
                        pw_u64(&pw, "ifindex", 10);
                        pw_bool(&pw, "admin_up", true);
                        pw_bool(&pw, "carrier", true);
                        pw_str(&pw, "operstate", "up");
                        pw_obj_end(&pw);
                }
                pw_list_end(&pw);
                r = pw_finish(&pw, &buf, &len);
                if (taps == 228) {
                        ck_assert_int_eq(r, -EMSGSIZE);
                        continue;
                }
                ck_assert_int_eq(r, 0);
                ck_assert_int_eq(decode_exact(buf, len), 0);
        }
}
END_TEST

START_TEST(test_text_sanitize)
{
        char a[] = "line1\nline2\tx\x7f", b[] = "cut mid-character \xc3", c[] = "caf\xc3\xa9", d[16];

        proto_text_sanitize(a);
        ck_assert_str_eq(a, "line1 line2 x ");
        proto_text_sanitize(b); /* not clean UTF-8: non-ASCII bytes go */
        ck_assert_str_eq(b, "cut mid-character ?");
        proto_text_sanitize(c); /* clean UTF-8 stays */
        ck_assert_str_eq(c, "caf\xc3\xa9");
        proto_text_printf(d, sizeof(d), "%s", "0123456789abcdefghij\n");
        ck_assert_str_eq(d, "0123456789abcde");
        ck_assert(proto_text_is_clean(d, strlen(d)));
}
END_TEST

START_TEST(test_text_refuses_misleading_unicode)
{
        /* right-to-left override, line separator, zero-width space, BOM */
        static const char *const bad[] = { "port\xe2\x80\xae" "evil", "a\xe2\x80\xa8" "b", "x\xe2\x80\x8by",
                                           "\xef\xbb\xbf" "name" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                ck_assert(!proto_text_is_clean(bad[i], strlen(bad[i])));
        ck_assert(proto_text_is_clean("caf\xc3\xa9 \xe2\x82\xac", 9)); /* café € */
}
END_TEST

static Suite *proto_suite(void)
{
        Suite *s = suite_create("proto");
        TCase *tc;

        tc = tcase_create("roundtrip");
        tcase_add_test(tc, test_rt_scalars);
        tcase_add_test(tc, test_rt_long_string);
        tcase_add_test(tc, test_rt_nested_max_depth);
        tcase_add_test(tc, test_rt_header_fields);
        tcase_add_test(tc, test_rt_set_id);
        tcase_add_test(tc, test_wire_golden);
        tcase_add_test(tc, test_rt_container_limits);
        tcase_add_test(tc, test_rt_node_limit);
        tcase_add_test(tc, test_rt_full_frame);
        suite_add_tcase(s, tc);

        tc = tcase_create("decode_reject");
        tcase_add_test(tc, test_rej_short_header);
        tcase_add_test(tc, test_rej_magic);
        tcase_add_test(tc, test_rej_version);
        tcase_add_test(tc, test_rej_frame_type);
        tcase_add_test(tc, test_rej_status);
        tcase_add_test(tc, test_rej_name);
        tcase_add_test(tc, test_rej_truncated_everywhere);
        tcase_add_test(tc, test_rej_trailing);
        tcase_add_test(tc, test_rej_value_tag);
        tcase_add_test(tc, test_rej_bool);
        tcase_add_test(tc, test_rej_string_length);
        tcase_add_test(tc, test_rej_string_control);
        tcase_add_test(tc, test_rej_string_utf8);
        tcase_add_test(tc, test_string_utf8_valid);
        tcase_add_test(tc, test_rej_members);
        tcase_add_test(tc, test_rej_items);
        tcase_add_test(tc, test_rej_depth);
        tcase_add_test(tc, test_rej_duplicate_key);
        tcase_add_test(tc, test_rej_bad_key);
        tcase_add_test(tc, test_rej_nodes);
        tcase_add_test(tc, test_rej_frame_size);
        tcase_add_test(tc, test_err_buffer);
        tcase_add_test(tc, test_decode_reuse);
        tcase_add_test(tc, test_value_dup);
        suite_add_tcase(s, tc);

        tc = tcase_create("writer");
        tcase_add_test(tc, test_w_key_in_list);
        tcase_add_test(tc, test_w_no_key_in_object);
        tcase_add_test(tc, test_w_unbalanced);
        tcase_add_test(tc, test_w_too_deep);
        tcase_add_test(tc, test_w_overflow);
        tcase_add_test(tc, test_w_counts);
        tcase_add_test(tc, test_w_bad_strings);
        tcase_add_test(tc, test_w_bad_keys_and_names);
        tcase_add_test(tc, test_w_sticky);
        suite_add_tcase(s, tc);

        tc = tcase_create("accessors");
        tcase_add_test(tc, test_accessors);
        tcase_add_test(tc, test_name_and_text_helpers);
        suite_add_tcase(s, tc);

        tc = tcase_create("regressions");
        tcase_add_test(tc, test_bug_writer_node_limit);
        tcase_add_test(tc, test_text_refuses_misleading_unicode);
        tcase_add_test(tc, test_text_sanitize);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(proto_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
