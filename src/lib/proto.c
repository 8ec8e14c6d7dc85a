/* proto.c - see proto.h for the wire format. */
#include "proto.h"

#include <poll.h>
#include <stdarg.h>
#include <sys/socket.h>

static void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_u32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v)
{
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get_u32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const uint8_t *p)
{
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--)
                v = v << 8 | p[i];
        return v;
}

bool proto_name_is_valid(const char *s, size_t len)
{
        if (len == 0 || len > PROTO_MAX_NAME || !(s[0] >= 'a' && s[0] <= 'z'))
                return false;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
                        return false;
        }
        return true;
}

bool proto_text_is_clean(const char *s, size_t len)
{
        const uint8_t *p = (const uint8_t *)s;
        size_t i = 0;

        while (i < len) {
                uint8_t c = p[i];
                size_t n;
                uint32_t cp;

                if (c < 0x80) {
                        if (c < 0x20 || c == 0x7f)
                                return false;
                        i++;
                        continue;
                }
                if ((c & 0xe0) == 0xc0) {
                        n = 1;
                        cp = c & 0x1f;
                } else if ((c & 0xf0) == 0xe0) {
                        n = 2;
                        cp = c & 0x0f;
                } else if ((c & 0xf8) == 0xf0) {
                        n = 3;
                        cp = c & 0x07;
                } else
                        return false;
                if (i + n >= len)
                        return false; /* continuation bytes run past the end */
                for (size_t k = 1; k <= n; k++) {
                        if ((p[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (p[i + k] & 0x3f);
                }
                /* overlong forms, surrogates, beyond Unicode, C1 controls */
                if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
                    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff || (cp >= 0x80 && cp <= 0x9f))
                        return false;
                /* Characters that make a log line lie: bidi overrides and isolates,
                 * line/paragraph separators, zero-width marks, BOM. */
                if ((cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
                    (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff)
                        return false;
                i += n + 1;
        }
        return true;
}

void proto_text_sanitize(char *s)
{
        size_t n = strlen(s);

        for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                        s[i] = ' ';
        if (!proto_text_is_clean(s, n))
                for (size_t i = 0; i < n; i++)
                        if ((unsigned char)s[i] >= 0x80)
                                s[i] = '?';
}

void proto_text_printf(char *dst, size_t size, const char *fmt, ...)
{
        va_list ap;

        if (size == 0)
                return;
        va_start(ap, fmt);
        (void)vsnprintf(dst, size, fmt, ap);
        va_end(ap);
        proto_text_sanitize(dst);
}

/* ---- decoder ---- */

struct decoder {
        const uint8_t *p;
        size_t left;
        struct proto_msg *msg;
        char *err;
        size_t errlen;
};

_printf_(2, 3) static int fail(struct decoder *d, const char *fmt, ...)
{
        va_list ap;

        if (d->errlen > 0) {
                va_start(ap, fmt);
                (void)vsnprintf(d->err, d->errlen, fmt, ap);
                va_end(ap);
        }
        return -EBADMSG;
}

static const char *store_string(struct decoder *d, const uint8_t *s, size_t len)
{
        struct proto_msg *m = d->msg;
        char *dst;

        if (m->strings_used + len + 1 > sizeof(m->strings))
                return NULL;
        dst = m->strings + m->strings_used;
        memcpy(dst, s, len);
        dst[len] = '\0';
        m->strings_used += len + 1;
        return dst;
}

static struct proto_value *new_node(struct decoder *d)
{
        struct proto_msg *m = d->msg;
        struct proto_value *v;

        if (m->n_nodes >= PROTO_MAX_NODES)
                return NULL;
        v = &m->nodes[m->n_nodes++];
        memset(v, 0, sizeof(*v));
        return v;
}

static bool take(struct decoder *d, size_t n, const uint8_t **ret)
{
        if (d->left < n)
                return false;
        *ret = d->p;
        d->p += n;
        d->left -= n;
        return true;
}

static int decode_value(struct decoder *d, struct proto_value *v, unsigned depth);

static int decode_members(struct decoder *d, struct proto_value *obj, unsigned depth)
{
        const uint8_t *q;
        struct proto_value *prev = NULL;
        uint16_t n;

        if (!take(d, 2, &q))
                return fail(d, "truncated object count");
        n = get_u16(q);
        if (n > PROTO_MAX_MEMBERS)
                return fail(d, "object has %u members (limit %d)", n, PROTO_MAX_MEMBERS);
        obj->type = PV_OBJ;
        obj->count = n;
        for (unsigned i = 0; i < n; i++) {
                struct proto_value *m = new_node(d);
                const uint8_t *k;
                uint8_t klen;
                int r;

                if (!m)
                        return fail(d, "too many values (limit %d)", PROTO_MAX_NODES);
                if (!take(d, 1, &q))
                        return fail(d, "truncated key length");
                klen = q[0];
                if (!take(d, klen, &k))
                        return fail(d, "truncated key");
                if (!proto_name_is_valid((const char *)k, klen) || memchr(k, '-', klen))
                        return fail(d, "invalid key name");
                for (const struct proto_value *o = obj->child; o; o = o->next)
                        if (strlen(o->key) == klen && memcmp(o->key, k, klen) == 0)
                                return fail(d, "duplicate key '%.*s'", (int)klen, (const char *)k);
                m->key = store_string(d, k, klen);
                if (!m->key)
                        return fail(d, "string arena exhausted");
                r = decode_value(d, m, depth);
                if (r < 0)
                        return r;
                if (prev)
                        prev->next = m;
                else
                        obj->child = m;
                prev = m;
        }
        return 0;
}

static int decode_value(struct decoder *d, struct proto_value *v, unsigned depth)
{
        const uint8_t *q;
        uint16_t n;

        if (!take(d, 1, &q))
                return fail(d, "truncated value tag");
        switch (q[0]) {
        case PV_U64:
        case PV_I64:
                if (!take(d, 8, &q))
                        return fail(d, "truncated integer");
                v->type = q[-1];
                v->v.u = get_u64(q);
                return 0;
        case PV_BOOL:
                if (!take(d, 1, &q))
                        return fail(d, "truncated bool");
                if (q[0] > 1)
                        return fail(d, "bool is %u", q[0]);
                v->type = PV_BOOL;
                v->v.b = q[0] == 1;
                return 0;
        case PV_STR: {
                const uint8_t *s;
                if (!take(d, 2, &q))
                        return fail(d, "truncated string length");
                n = get_u16(q);
                if (n > PROTO_MAX_STR)
                        return fail(d, "string of %u bytes (limit %d)", n, PROTO_MAX_STR);
                if (!take(d, n, &s))
                        return fail(d, "truncated string");
                if (!proto_text_is_clean((const char *)s, n))
                        return fail(d, "string is not clean UTF-8 text");
                v->type = PV_STR;
                v->count = n;
                v->v.s = store_string(d, s, n);
                if (!v->v.s)
                        return fail(d, "string arena exhausted");
                return 0;
        }
        case PV_LIST: {
                struct proto_value *prev = NULL;
                if (depth >= PROTO_MAX_DEPTH)
                        return fail(d, "nested deeper than %d", PROTO_MAX_DEPTH);
                if (!take(d, 2, &q))
                        return fail(d, "truncated list count");
                n = get_u16(q);
                if (n > PROTO_MAX_ITEMS)
                        return fail(d, "list has %u items (limit %d)", n, PROTO_MAX_ITEMS);
                v->type = PV_LIST;
                v->count = n;
                for (unsigned i = 0; i < n; i++) {
                        struct proto_value *item = new_node(d);
                        int r;
                        if (!item)
                                return fail(d, "too many values (limit %d)", PROTO_MAX_NODES);
                        r = decode_value(d, item, depth + 1);
                        if (r < 0)
                                return r;
                        if (prev)
                                prev->next = item;
                        else
                                v->child = item;
                        prev = item;
                }
                return 0;
        }
        case PV_OBJ:
                if (depth >= PROTO_MAX_DEPTH)
                        return fail(d, "nested deeper than %d", PROTO_MAX_DEPTH);
                return decode_members(d, v, depth + 1);
        default:
                return fail(d, "unknown value tag %u", q[0]);
        }
}

int proto_decode(const void *buf, size_t len, struct proto_msg *msg, char *err, size_t errlen)
{
        struct decoder d = { .p = buf, .left = len, .msg = msg, .err = err, .errlen = errlen };
        const uint8_t *h, *name;
        struct proto_value *root;
        uint16_t version;
        int r;

        if (errlen > 0)
                err[0] = '\0';
        msg->n_nodes = 0;
        msg->strings_used = 0;
        msg->body = NULL;
        if (len > PROTO_MAX_FRAME) {
                (void)fail(&d, "frame of %zu bytes (limit %d)", len, PROTO_MAX_FRAME);
                return -EMSGSIZE;
        }
        if (!take(&d, PROTO_HEADER_SIZE, &h))
                return fail(&d, "frame shorter than the header");
        if (get_u32(h) != PROTO_MAGIC)
                return fail(&d, "bad magic");
        version = get_u16(h + 4);
        if (version != PROTO_VERSION) {
                (void)fail(&d, "protocol version %u, expected %d", version, PROTO_VERSION);
                return -EPROTONOSUPPORT;
        }
        msg->type = get_u16(h + 6);
        if (msg->type < PROTO_HELLO || msg->type > PROTO_EVENT)
                return fail(&d, "unknown frame type %u", msg->type);
        msg->id = get_u32(h + 8);
        msg->status = (int32_t)get_u32(h + 12);
        if (msg->type != PROTO_REPLY && msg->status != 0)
                return fail(&d, "status set on a %s", proto_type_name(msg->type));
        if (msg->status > 0 || msg->status < -4095)
                return fail(&d, "status %d is not 0 or -errno", msg->status);
        if (!take(&d, 1, &h) || !take(&d, h[0], &name))
                return fail(&d, "truncated name");
        if (!proto_name_is_valid((const char *)name, h[0]))
                return fail(&d, "invalid name");
        memcpy(msg->name, name, h[0]);
        msg->name[h[0]] = '\0';
        root = new_node(&d);
        r = decode_members(&d, root, 0);
        if (r < 0)
                return r;
        if (d.left != 0)
                return fail(&d, "%zu trailing bytes", d.left);
        msg->body = root;
        return 0;
}

/* ---- writer ---- */

static uint8_t *pw_reserve(struct proto_writer *w, size_t n)
{
        uint8_t *p;

        if (w->err)
                return NULL;
        if (w->len + n > sizeof(w->buf)) {
                w->err = -EMSGSIZE;
                return NULL;
        }
        p = w->buf + w->len;
        w->len += n;
        return p;
}

void pw_init(struct proto_writer *w, enum proto_type type, uint32_t id, int32_t status, const char *name)
{
        size_t nlen = strlen(name);
        uint8_t *p;

        w->len = 0;
        w->err = 0;
        w->depth = 0;
        w->n_values = 1; /* the root object */
        if (!proto_name_is_valid(name, nlen)) {
                w->err = -EINVAL;
                return;
        }
        p = pw_reserve(w, PROTO_HEADER_SIZE + 1 + nlen + 2);
        put_u32(p, PROTO_MAGIC);
        put_u16(p + 4, PROTO_VERSION);
        put_u16(p + 6, (uint16_t)type);
        put_u32(p + 8, id);
        put_u32(p + 12, (uint32_t)status);
        p[16] = (uint8_t)nlen;
        memcpy(p + 17, name, nlen);
        w->stack[0].count_off = PROTO_HEADER_SIZE + 1 + nlen;
        w->stack[0].count = 0;
        w->stack[0].is_list = false;
}

void pw_set_id(struct proto_writer *w, uint32_t id)
{
        if (w->len >= PROTO_HEADER_SIZE)
                put_u32(w->buf + 8, id);
}

/* Start a value in the current container: key (objects only) and tag. */
static bool pw_begin_value(struct proto_writer *w, const char *key, uint8_t tag)
{
        uint8_t *p;
        size_t klen;

        if (w->err)
                return false;
        if (w->stack[w->depth].is_list != (key == NULL)) {
                w->err = -EINVAL;
                return false;
        }
        if (w->stack[w->depth].count >= (w->stack[w->depth].is_list ? PROTO_MAX_ITEMS : PROTO_MAX_MEMBERS) ||
            w->n_values >= PROTO_MAX_NODES) {
                w->err = -EMSGSIZE; /* never build what the decoder would refuse */
                return false;
        }
        w->n_values++;
        if (key) {
                klen = strlen(key);
                if (!proto_name_is_valid(key, klen) || strchr(key, '-')) {
                        w->err = -EINVAL;
                        return false;
                }
                p = pw_reserve(w, 1 + klen);
                if (!p)
                        return false;
                p[0] = (uint8_t)klen;
                memcpy(p + 1, key, klen);
        }
        p = pw_reserve(w, 1);
        if (!p)
                return false;
        p[0] = tag;
        w->stack[w->depth].count++;
        return true;
}

void pw_u64(struct proto_writer *w, const char *key, uint64_t v)
{
        uint8_t *p;

        if (pw_begin_value(w, key, PV_U64) && (p = pw_reserve(w, 8)))
                put_u64(p, v);
}

void pw_i64(struct proto_writer *w, const char *key, int64_t v)
{
        uint8_t *p;

        if (pw_begin_value(w, key, PV_I64) && (p = pw_reserve(w, 8)))
                put_u64(p, (uint64_t)v);
}

void pw_bool(struct proto_writer *w, const char *key, bool v)
{
        uint8_t *p;

        if (pw_begin_value(w, key, PV_BOOL) && (p = pw_reserve(w, 1)))
                p[0] = v ? 1 : 0;
}

void pw_str(struct proto_writer *w, const char *key, const char *s)
{
        size_t n = strlen(s);
        uint8_t *p;

        if (w->err)
                return;
        if (n > PROTO_MAX_STR || !proto_text_is_clean(s, n)) {
                w->err = -EINVAL;
                return;
        }
        if (pw_begin_value(w, key, PV_STR) && (p = pw_reserve(w, 2 + n))) {
                put_u16(p, (uint16_t)n);
                memcpy(p + 2, s, n);
        }
}

static void pw_container_begin(struct proto_writer *w, const char *key, uint8_t tag)
{
        if (w->depth >= PROTO_MAX_DEPTH) {
                if (!w->err)
                        w->err = -EINVAL;
                return;
        }
        if (!pw_begin_value(w, key, tag) || !pw_reserve(w, 2))
                return;
        w->depth++;
        w->stack[w->depth].count_off = w->len - 2;
        w->stack[w->depth].count = 0;
        w->stack[w->depth].is_list = tag == PV_LIST;
}

static void pw_container_end(struct proto_writer *w, bool is_list)
{
        if (w->err)
                return;
        if (w->depth == 0 || w->stack[w->depth].is_list != is_list) {
                w->err = -EINVAL;
                return;
        }
        put_u16(w->buf + w->stack[w->depth].count_off, (uint16_t)w->stack[w->depth].count);
        w->depth--;
}

void pw_list_begin(struct proto_writer *w, const char *key) { pw_container_begin(w, key, PV_LIST); }
void pw_list_end(struct proto_writer *w) { pw_container_end(w, true); }
void pw_obj_begin(struct proto_writer *w, const char *key) { pw_container_begin(w, key, PV_OBJ); }
void pw_obj_end(struct proto_writer *w) { pw_container_end(w, false); }

int pw_finish(struct proto_writer *w, const uint8_t **ret_buf, size_t *ret_len)
{
        if (w->err)
                return w->err;
        if (w->depth != 0)
                return w->err = -EINVAL;
        put_u16(w->buf + w->stack[0].count_off, (uint16_t)w->stack[0].count);
        *ret_buf = w->buf;
        *ret_len = w->len;
        return 0;
}

/* ---- copies ---- */

/* Nodes and string bytes (keys and strings with their NULs) of v and everything below it. */
static void dup_size(const struct proto_value *v, size_t *nodes, size_t *bytes)
{
        (*nodes)++;
        if (v->key)
                *bytes += strlen(v->key) + 1;
        if (v->type == PV_STR)
                *bytes += (size_t)v->count + 1;
        for (const struct proto_value *c = v->child; c; c = c->next)
                dup_size(c, nodes, bytes);
}

static char *dup_text(char **strings, const char *s, size_t len)
{
        char *copy = *strings;

        memcpy(copy, s, len);
        copy[len] = '\0';
        *strings += len + 1;
        return copy;
}

/* Copy v into *nodes (advanced past it and its subtree) and its text into *strings. */
static struct proto_value *dup_tree(const struct proto_value *v, struct proto_value **nodes, char **strings)
{
        struct proto_value *copy = (*nodes)++, *prev = NULL;

        *copy = *v;
        copy->next = NULL;
        copy->child = NULL;
        if (v->key)
                copy->key = dup_text(strings, v->key, strlen(v->key));
        if (v->type == PV_STR)
                copy->v.s = dup_text(strings, v->v.s, v->count);
        for (const struct proto_value *c = v->child; c; c = c->next) {
                struct proto_value *cc = dup_tree(c, nodes, strings);
                if (prev)
                        prev->next = cc;
                else
                        copy->child = cc;
                prev = cc;
        }
        return copy;
}

struct proto_value *proto_value_dup(const struct proto_value *v)
{
        size_t n_nodes = 0, n_bytes = 0;
        struct proto_value *nodes;
        char *strings;

        dup_size(v, &n_nodes, &n_bytes);
        nodes = malloc(n_nodes * sizeof(*nodes) + n_bytes);
        if (!nodes)
                return NULL;
        strings = (char *)(nodes + n_nodes);
        return dup_tree(v, &nodes, &strings);
}

/* ---- accessors ---- */

const struct proto_value *proto_get(const struct proto_value *obj, const char *key)
{
        if (!obj || obj->type != PV_OBJ)
                return NULL;
        for (const struct proto_value *m = obj->child; m; m = m->next)
                if (streq(m->key, key))
                        return m;
        return NULL;
}

const char *proto_get_str(const struct proto_value *obj, const char *key, const char *dflt)
{
        const struct proto_value *v = proto_get(obj, key);
        return v && v->type == PV_STR ? v->v.s : dflt;
}

uint64_t proto_get_u64(const struct proto_value *obj, const char *key, uint64_t dflt)
{
        const struct proto_value *v = proto_get(obj, key);
        return v && v->type == PV_U64 ? v->v.u : dflt;
}

bool proto_get_bool(const struct proto_value *obj, const char *key, bool dflt)
{
        const struct proto_value *v = proto_get(obj, key);
        return v && v->type == PV_BOOL ? v->v.b : dflt;
}

const char *proto_type_name(uint16_t type)
{
        switch (type) {
        case PROTO_HELLO:
                return "hello";
        case PROTO_REQUEST:
                return "request";
        case PROTO_REPLY:
                return "reply";
        case PROTO_EVENT:
                return "event";
        default:
                return "unknown";
        }
}

ssize_t proto_recv_frame(int fd, uint8_t *buf, int flags, size_t *ret_size)
{
        struct pollfd p = { .fd = fd, .events = POLLRDHUP };
        ssize_t n = recv(fd, buf, PROTO_MAX_FRAME + 1, MSG_TRUNC | flags);

        if (n < 0)
                return -errno;
        if (n > PROTO_MAX_FRAME) {
                if (ret_size)
                        *ret_size = (size_t)n;
                return -EMSGSIZE;
        }
        if (n > 0)
                return n;
        /* 0 bytes: the end of the stream only when the receive side is shut down. */
        if (poll(&p, 1, 0) < 0)
                return -errno;
        if (p.revents & (POLLRDHUP | POLLHUP))
                return 0;
        return -EBADMSG;
}

ssize_t proto_recv_frame_fd(int fd, uint8_t *buf, int flags, size_t *ret_size, int *ret_fd)
{
        /* Room for more than one descriptor so that extra ones are seen (and closed), not dropped silently. */
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * 4)];
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = PROTO_MAX_FRAME + 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                             .msg_controllen = sizeof(control) };
        struct pollfd p = { .fd = fd, .events = POLLRDHUP };
        int got = -1, n_fds = 0;
        bool bad = false;
        ssize_t n;

        *ret_fd = -1;
        n = recvmsg(fd, &mh, MSG_TRUNC | MSG_CMSG_CLOEXEC | flags);
        if (n < 0)
                return -errno;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        for (size_t i = 0; i < k; i++) {
                                int one;
                                memcpy(&one, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                                if (n_fds++ == 0)
                                        got = one;
                                else
                                        (void)close(one);
                        }
                } else {
                        bad = true;
                }
        }
        if (bad || n_fds > 1 || (mh.msg_flags & MSG_CTRUNC)) {
                if (got >= 0)
                        (void)close(got);
                return -EPROTO;
        }
        if (n > PROTO_MAX_FRAME) {
                if (got >= 0)
                        (void)close(got);
                if (ret_size)
                        *ret_size = (size_t)n;
                return -EMSGSIZE;
        }
        if (n > 0) {
                *ret_fd = got;
                return n;
        }
        if (got >= 0)
                (void)close(got);
        if (poll(&p, 1, 0) < 0)
                return -errno;
        if (p.revents & (POLLRDHUP | POLLHUP))
                return 0;
        return -EBADMSG;
}

int proto_send_frame_fd(int fd, const uint8_t *buf, size_t len, int passed_fd)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int))];
        } control;
        struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (passed_fd >= 0) {
                struct cmsghdr *c;

                memset(&control, 0, sizeof(control));
                mh.msg_control = &control;
                mh.msg_controllen = sizeof(control.buf);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &passed_fd, sizeof(int));
        }
        for (;;) {
                if (sendmsg(fd, &mh, MSG_NOSIGNAL) >= 0)
                        return 0;
                if (errno != EINTR)
                        return -errno;
        }
}
