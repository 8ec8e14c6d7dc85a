/* api.c - the API server: connections, HTTP framing, the route table, and the
 * helpers every resource file answers with. The resources are in
 * api-status.c (status, plugs), api-ports.c (ports, domains, VIFs),
 * api-instances.c (instances, pinning, host/stats/metrics) and
 * api-secgroups.c (security groups); each has one static route table. */
#include "api-internal.h"

#include "lifecycle.h"
#include "log.h"
#include "observe.h"
#include "secgroup-change.h"

#include <assert.h>
#include <sys/socket.h>

/* Limits of the API socket (README "Limits of the API socket"). Connections
 * beyond API_MAX_CONNECTIONS push out the one idle, stalled or unread for the
 * longest; when every one is working on a request, the newcomer gets 503. */
#define API_MAX_CONNECTIONS 128
#define API_IDLE_TIMEOUT_USEC (30 * 1000000ULL)    /* keep-alive with no request begun: dropped after this */
#define API_REQUEST_TIMEOUT_USEC (5 * 1000000ULL)  /* first byte to last byte of one request */
#define API_WRITE_TIMEOUT_USEC (5 * 1000000ULL)    /* an answer the client does not read for this long */
#define API_MAX_BODY (64 * 1024)
#define API_MAX_INPUT (HTTP_MAX_HEAD + API_MAX_BODY) /* buffered per connection at most */
#define API_INPUT_CHUNK 4096                         /* first allocation; doubled as a request needs */

struct api_server {
        sd_event *event;
        int listen_fd;
        sd_event_source *listen_io;
        struct api_context ctx;
        struct api_conn *conns;
        unsigned n_conns;
};

static const struct api_route *const route_tables[] = {
        api_status_routes, api_port_routes, api_migrate_routes, api_instance_routes, api_secgroup_routes, api_image_routes,
};

const struct api_context *api_context_of(const struct api_conn *c)
{
        assert(c && c->srv);
        return &c->srv->ctx;
}

static void conn_free(struct api_conn *c)
{
        struct api_server *srv = c->srv;

        for (struct api_conn **pp = &srv->conns; *pp; pp = &(*pp)->next)
                if (*pp == c) {
                        *pp = c->next;
                        break;
                }
        module_call_cancel(c->call);
        lifecycle_waiter_cancel(c->waiter);
        observe_cancel(c->observe);
        sg_change_detach(c->change); /* the change still lands in the store; nobody hears of it */
        api_image_upload_abandon(c);
        safe_close(c->passed_fd);
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->idle);
        safe_close(c->fd);
        free(c->in);
        free(c->out);
        free(c);
        srv->n_conns--;
}

static uint64_t now_mono(const struct api_conn *c)
{
        uint64_t t = 0;

        (void)sd_event_now(c->srv->event, CLOCK_MONOTONIC, &t);
        return t;
}

/* The one timer of a connection, from its state: writing an answer (since the
 * last progress), reading a request (since its first byte, progress or not:
 * a byte now and then does not keep a connection), idle between requests.
 * Working on a request has no timer here: the module call or the operation
 * has its own, and a client that hangs up is noticed (EPOLLRDHUP). */
static void conn_arm_timer(struct api_conn *c)
{
        uint64_t at;

        if (c->out)
                at = c->active_usec + API_WRITE_TIMEOUT_USEC;
        else if (c->busy) {
                (void)sd_event_source_set_enabled(c->idle, SD_EVENT_OFF);
                return;
        } else if (c->in_len > 0)
                at = c->request_start_usec + API_REQUEST_TIMEOUT_USEC;
        else
                at = c->active_usec + API_IDLE_TIMEOUT_USEC;
        (void)sd_event_source_set_time(c->idle, at);
        (void)sd_event_source_set_enabled(c->idle, SD_EVENT_ONESHOT);
}

static void conn_update_events(struct api_conn *c)
{
        uint32_t ev = c->out ? EPOLLOUT : (c->busy ? 0 : EPOLLIN);
        (void)sd_event_source_set_io_events(c->io, ev | EPOLLRDHUP);
        conn_arm_timer(c);
}

/* ---- answering ---- */

void api_respond_typed(struct api_conn *c, int status, const char *content_type, const char *body)
{
        size_t len;
        int r;

        assert(c && content_type && body);
        c->call = NULL;
        c->active_usec = now_mono(c); /* the write timeout counts from the answer */
        r = http_format_response(status, content_type, body, strlen(body), c->keep_alive, &c->out, &len);
        if (r < 0) {
                static const char fallback[] = "HTTP/1.1 500 Internal Server Error\r\n"
                                               "Content-Length: 0\r\nConnection: close\r\n\r\n";
                log_err("api: cannot format a response: %s", strerror(-r));
                c->keep_alive = false;
                c->out = strdup(fallback);
                len = c->out ? strlen(fallback) : 0;
        }
        c->out_len = len;
        c->out_off = 0;
        conn_update_events(c);
}

void api_respond_json(struct api_conn *c, int status, struct json_object *obj)
{
        api_respond_typed(c, status, "application/json", json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN));
        json_object_put(obj);
}

/* ---- bodies built in place ---- */

#define API_BODY_FIRST (64 * 1024) /* first allocation; doubled as the body grows */

void api_body_init(struct api_body *b)
{
        assert(b);
        *b = (struct api_body){ 0 };
}

static bool body_reserve(struct api_body *b, size_t more)
{
        size_t want, cap;
        char *p;

        if (b->failed)
                return false;
        if (more > SIZE_MAX - HTTP_RESPONSE_HEAD_MAX - b->len - 1)
                return b->failed = true, false;
        want = HTTP_RESPONSE_HEAD_MAX + b->len + more + 1;
        if (want <= b->cap)
                return true;
        cap = b->cap ? b->cap : API_BODY_FIRST;
        while (cap < want)
                cap = cap > SIZE_MAX / 2 ? want : cap * 2;
        p = realloc(b->buf, cap);
        if (!p)
                return b->failed = true, false;
        b->buf = p;
        b->cap = cap;
        return true;
}

void api_body_add(struct api_body *b, const char *text, size_t len)
{
        assert(b && (text || len == 0));
        if (!body_reserve(b, len))
                return;
        memcpy(b->buf + HTTP_RESPONSE_HEAD_MAX + b->len, text, len);
        b->len += len;
}

void api_body_add_json(struct api_body *b, struct json_object *obj)
{
        const char *text = obj ? json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN) : NULL;

        assert(b);
        if (text)
                api_body_add(b, text, strlen(text));
        else
                b->failed = true;
        json_object_put(obj);
}

void api_body_free(struct api_body *b)
{
        if (b)
                b->buf = (free(b->buf), NULL);
}

void api_respond_body(struct api_conn *c, int status, const char *content_type, struct api_body *b)
{
        char head[HTTP_RESPONSE_HEAD_MAX];
        size_t head_len;

        assert(c && content_type && b);
        if (b->failed || !body_reserve(b, 0) ||
            http_format_response_head(status, content_type, b->len, c->keep_alive, head, sizeof(head), &head_len) < 0) {
                api_body_free(b);
                return api_respond_error(c, 500, b->failed ? "out of memory" : "cannot format a response", -1);
        }
        c->call = NULL;
        c->active_usec = now_mono(c); /* the write timeout counts from the answer */
        /* the head goes right before the body: the connection writes from out_off */
        memcpy(b->buf + HTTP_RESPONSE_HEAD_MAX - head_len, head, head_len);
        b->buf[HTTP_RESPONSE_HEAD_MAX + b->len] = '\0';
        c->out = TAKE_PTR(b->buf);
        c->out_off = HTTP_RESPONSE_HEAD_MAX - head_len;
        c->out_len = HTTP_RESPONSE_HEAD_MAX + b->len;
        conn_update_events(c);
}

void api_respond_error(struct api_conn *c, int status, const char *message, int plug)
{
        struct json_object *root = json_object_new_object(), *e = json_object_new_object();
        char fix[128];

        assert(message && plug < _PLUG_MAX);
        json_object_object_add(e, "code", json_object_new_int(status));
        json_object_object_add(e, "message", json_object_new_string(message));
        if (plug >= 0) {
                json_object_object_add(e, "plug", json_object_new_string(plug_table[plug].name));
                if (plug_fix_text((enum plug_id)plug, fix, sizeof(fix)) == 0)
                        json_object_object_add(e, "fix", json_object_new_string(fix));
        }
        json_object_object_add(root, "error", e);
        api_respond_json(c, status, root);
}

void api_method_not_allowed(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        (void)req;
        (void)a;
        api_respond_error(c, 405, "method not allowed", -1);
}

int api_status_for_errno(int r)
{
        switch (r) {
        case -EINVAL:
        case -ERANGE:
                return 400;
        case -ENOENT:
                return 404;
        case -EEXIST:
        case -EPERM:
        case -EBUSY:
                return 409;
        case -ENOSPC:
                return 507;
        case -ENOTCONN:
        case -EAGAIN:
                return 503;
        case -ETIMEDOUT:
                return 504;
        case -ECONNRESET:
                return 502;
        case -ENOSYS:
                return 501;
        default:
                return 500;
        }
}

/* Parse a JSON object body strictly: at most 64 KiB, depth 6, fully consumed. */
static int parse_body(const struct http_request *req, struct json_object **ret, char *err, size_t errlen)
{
        struct json_tokener *tok;
        struct json_object *obj;

        if (!req->body || req->body_len == 0) {
                *ret = json_object_new_object();
                return 0;
        }
        if (req->body_len > API_MAX_BODY) {
                (void)snprintf(err, errlen, "request body larger than 64 KiB");
                return -EMSGSIZE;
        }
        tok = json_tokener_new_ex(6); /* {ports: [{ips: [...]}]} */
        if (!tok) {
                (void)snprintf(err, errlen, "out of memory");
                return -ENOMEM;
        }
        obj = json_tokener_parse_ex(tok, req->body, (int)req->body_len);
        if (!obj || json_tokener_get_error(tok) != json_tokener_success ||
            json_tokener_get_parse_end(tok) != req->body_len || !json_object_is_type(obj, json_type_object)) {
                (void)snprintf(err, errlen, "request body is not a single JSON object");
                json_object_put(obj);
                json_tokener_free(tok);
                return -EINVAL;
        }
        json_tokener_free(tok);
        *ret = obj;
        return 0;
}

int api_read_body(struct api_conn *c, const struct http_request *req, struct json_object **ret)
{
        char err[128];
        int r;

        assert(c && req && ret);
        r = parse_body(req, ret, err, sizeof(err));
        if (r < 0)
                api_respond_error(c, r == -EMSGSIZE ? 413 : r == -ENOMEM ? 500 : 400, err, -1);
        return r;
}

bool api_query_wait(const struct http_request *req)
{
        char q[sizeof(req->query)], *save = NULL;

        if (strscpy(q, req->query, sizeof(q)) < 0)
                return false;
        for (char *kv = strtok_r(q, "&", &save); kv; kv = strtok_r(NULL, "&", &save))
                if (streq(kv, "wait=1") || streq(kv, "wait=true"))
                        return true;
        return false;
}

void api_call_module(struct api_conn *c, enum plug_id plug, struct proto_writer *w, module_call_cb cb)
{
        char err[512];
        int r;

        assert(c && w && cb);
        r = modules_call(api_context_of(c)->modules, plug, w, 0, cb, c, &c->call, err, sizeof(err));
        if (r < 0)
                api_respond_error(c, api_status_for_errno(r), err, r == -ENOTCONN || r == -EAGAIN ? (int)plug : -1);
}

void api_respond_module_error(struct api_conn *c, const struct module_result *res, enum plug_id plug)
{
        assert(res->status < 0);
        api_respond_error(c, api_status_for_errno(res->status), res->error, res->status == -ENOTCONN ? (int)plug : -1);
}

/* ---- routing ---- */

bool api_route_match(const char *pattern, const char *path, char buf[API_MAX_ARGS][HTTP_PATH_MAX],
                        struct api_args *ret)
{
        struct api_args a = { { NULL } };
        size_t n = 0;

        while (*pattern) {
                const char *pend, *qend;
                size_t plen, qlen;

                if (*pattern != '/' || *path != '/')
                        return false;
                pattern++;
                path++;
                pend = strchrnul(pattern, '/');
                plen = (size_t)(pend - pattern);
                qend = plen == 1 && *pattern == '*' ? path + strlen(path) : strchrnul(path, '/');
                qlen = (size_t)(qend - path);
                if (*pattern == '{' || *pattern == '*') {
                        assert(n < API_MAX_ARGS && qlen < HTTP_PATH_MAX);
                        memcpy(buf[n], path, qlen);
                        buf[n][qlen] = '\0';
                        a.arg[n] = buf[n];
                        n++;
                } else if (plen != qlen || memcmp(pattern, path, plen) != 0)
                        return false;
                pattern = pend;
                path = qend;
        }
        if (*path)
                return false;
        *ret = a;
        return true;
}

static void route(struct api_conn *c, const struct http_request *req)
{
        char buf[API_MAX_ARGS][HTTP_PATH_MAX];
        struct api_args a;

        for (size_t t = 0; t < ARRAY_SIZE(route_tables); t++)
                for (const struct api_route *r = route_tables[t]; r->pattern; r++) {
                        if (r->method && !streq(r->method, req->method))
                                continue;
                        if (!api_route_match(r->pattern, req->path, buf, &a))
                                continue;
                        return r->handler(c, req, &a);
                }
        api_respond_error(c, 404, "no such endpoint", -1);
}

/* ---- connections ---- */

/* Parse and handle the next buffered request, if any. */
static void conn_process(struct api_conn *c)
{
        struct http_request req;
        size_t consumed;
        int r;

        if (c->busy || c->out)
                return;
        r = c->in_len > 0 ? http_parse_request(c->in, c->in_len, &req, &consumed) : -EAGAIN;
        if (r == -EAGAIN) {
                conn_update_events(c);
                return;
        }
        c->busy = true;
        if (r < 0) {
                c->keep_alive = false;
                c->consumed = c->in_len;
                return api_respond_error(c, http_status_for_error(r), "malformed HTTP request", -1);
        }
        c->keep_alive = req.keep_alive;
        c->consumed = consumed;
        route(c, &req);
        /* The handler either responded or left something pending. */
        conn_update_events(c);
}

static int on_conn_idle(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct api_conn *c = userdata;

        (void)s;
        (void)usec;
        if (c->busy && !c->out) { /* working for it (armed before the work began) */
                conn_arm_timer(c);
                return 0;
        }
        if (c->out || c->in_len > 0) {
                static struct log_ratelimit rl = LOG_RATELIMIT_INIT(10 * 1000000ULL, 5);
                log_ratelimited(&rl, LOG_LVL_INFO, "api: dropping a client that %s",
                                c->out ? "does not read its answer" : "did not finish its request in time");
        }
        conn_free(c);
        return 0;
}

/* Keep the input buffer small: freed once nothing is buffered. */
static void conn_shrink_input(struct api_conn *c)
{
        if (c->in_len == 0 && c->in_cap > API_INPUT_CHUNK) {
                c->in = (free(c->in), NULL);
                c->in_cap = 0;
        }
}

/* The response is (partly) written; when it is complete, go on with the next request or close. */
static void conn_write(struct api_conn *c)
{
        ssize_t k = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (k < 0 && errno != EAGAIN && errno != EINTR)
                return conn_free(c);
        if (k > 0) {
                c->out_off += (size_t)k;
                c->active_usec = now_mono(c);
        }
        if (c->out_off < c->out_len)
                return conn_arm_timer(c);
        c->out = (free(c->out), NULL);
        c->busy = false;
        c->passed_fd = safe_close(c->passed_fd); /* a descriptor goes with one request only */
        c->fd_refused = false;
        if (!c->keep_alive)
                return conn_free(c);
        if (c->in_len > c->consumed)
                memmove(c->in, c->in + c->consumed, c->in_len - c->consumed);
        c->in_len -= c->consumed;
        c->consumed = 0;
        c->request_start_usec = c->active_usec; /* a pipelined request starts now */
        conn_shrink_input(c);
        conn_process(c);
}

/* recv() that also takes a descriptor the client passed (SCM_RIGHTS, at most
 * one per request: image import). Any other control message, or a second
 * descriptor, marks the request refused (the descriptors are closed). */
static ssize_t recv_with_fd(struct api_conn *c, size_t cap)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * 4)];
        } control;
        struct iovec iov = { .iov_base = c->in + c->in_len, .iov_len = cap - c->in_len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof(control) };
        ssize_t k = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

        if (k < 0)
                return k;
        if (mh.msg_flags & MSG_CTRUNC)
                c->fd_refused = true; /* the kernel closed what did not fit */
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
                size_t n;
                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
                        c->fd_refused = true;
                        continue;
                }
                n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < n; i++) {
                        int fd;
                        memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                        if (c->passed_fd < 0 && !c->fd_refused)
                                c->passed_fd = fd;
                        else {
                                safe_close(fd);
                                c->fd_refused = true;
                        }
                }
        }
        return k;
}

int api_take_passed_fd(struct api_conn *c)
{
        int fd = c->passed_fd;

        c->passed_fd = -EBADF;
        return c->fd_refused ? safe_close(fd) : fd;
}

static void conn_read(struct api_conn *c, uint32_t revents)
{
        ssize_t k;

        if (c->busy) {
                /* Client went away while we were working: drop everything. */
                if (revents & (EPOLLHUP | EPOLLRDHUP | EPOLLERR))
                        conn_free(c);
                return;
        }
        if (c->in_len >= API_MAX_INPUT) {
                c->busy = true;
                c->keep_alive = false;
                c->consumed = c->in_len;
                return api_respond_error(c, 413, "request too large (head 8 KiB, body 64 KiB at most)", -1);
        }
        if (c->in_len == c->in_cap) {
                size_t cap = c->in_cap ? c->in_cap * 2 : API_INPUT_CHUNK;
                char *in = realloc(c->in, cap < API_MAX_INPUT ? cap : API_MAX_INPUT);
                if (!in)
                        return conn_free(c);
                c->in = in;
                c->in_cap = cap < API_MAX_INPUT ? cap : API_MAX_INPUT;
        }
        k = recv_with_fd(c, c->in_cap);
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (k <= 0)
                return conn_free(c);
        c->active_usec = now_mono(c);
        if (c->in_len == 0)
                c->request_start_usec = c->active_usec;
        c->in_len += (size_t)k;
        conn_process(c);
}

static int on_conn_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct api_conn *c = userdata;

        (void)s;
        assert(fd == c->fd);
        if (c->out && (revents & EPOLLOUT))
                conn_write(c);
        else if (revents & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR))
                conn_read(c, revents);
        return 0;
}

/* At the connection limit: close the connection that has waited on its client
 * the longest (idle, part of a request, or an answer it does not read), never
 * one whose request is being worked on. Whether one was closed. */
static bool evict_one(struct api_server *srv)
{
        struct api_conn *victim = NULL;

        for (struct api_conn *c = srv->conns; c; c = c->next)
                if ((!c->busy || c->out) && (!victim || c->active_usec < victim->active_usec))
                        victim = c;
        if (!victim)
                return false;
        {
                static struct log_ratelimit rl = LOG_RATELIMIT_INIT(10 * 1000000ULL, 5);
                log_ratelimited(&rl, LOG_LVL_INFO, "api: %d connections; closing the one waiting on its client longest",
                                API_MAX_CONNECTIONS);
        }
        conn_free(victim);
        return true;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct api_server *srv = userdata;
        struct api_conn *c;
        int cfd;

        (void)s;
        (void)revents;
        cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0)
                return 0;
        if (srv->n_conns >= API_MAX_CONNECTIONS && !evict_one(srv)) {
                static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                           "Content-Length: 64\r\nConnection: close\r\n\r\n"
                                           "{\"error\":{\"code\":503,\"message\":\"too many requests in progress\"}}";
                static struct log_ratelimit rl = LOG_RATELIMIT_INIT(10 * 1000000ULL, 5);
                log_ratelimited(&rl, LOG_LVL_WARN, "api: %d requests in progress; refusing a connection",
                                API_MAX_CONNECTIONS);
                (void)send(cfd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                safe_close(cfd);
                return 0;
        }
        c = calloc(1, sizeof(*c));
        if (!c || sd_event_add_io(srv->event, &c->io, cfd, EPOLLIN | EPOLLRDHUP, on_conn_io, c) < 0 ||
            sd_event_add_time_relative(srv->event, &c->idle, CLOCK_MONOTONIC, API_IDLE_TIMEOUT_USEC, 100000,
                                       on_conn_idle, c) < 0) {
                if (c)
                        sd_event_source_disable_unref(c->io);
                free(c);
                safe_close(cfd);
                return 0;
        }
        c->fd = cfd;
        c->passed_fd = -EBADF;
        c->srv = srv;
        c->active_usec = now_mono(c);
        c->next = srv->conns;
        srv->conns = c;
        srv->n_conns++;
        return 0;
}

int api_start(sd_event *event, int listen_fd, const struct api_context *ctx, struct api_server **ret)
{
        struct api_server *srv;
        int r;

        assert(event && listen_fd >= 0 && ctx && ctx->cfg && ret);
        srv = calloc(1, sizeof(*srv));
        if (!srv) {
                safe_close(listen_fd);
                return -ENOMEM;
        }
        srv->event = event;
        srv->ctx = *ctx;
        srv->listen_fd = listen_fd;
        r = sd_event_add_io(event, &srv->listen_io, listen_fd, EPOLLIN, on_accept, srv);
        if (r < 0) {
                safe_close(srv->listen_fd);
                free(srv);
                return r;
        }
        *ret = srv;
        return 0;
}

struct api_server *api_stop(struct api_server *srv)
{
        if (!srv)
                return NULL;
        while (srv->conns)
                conn_free(srv->conns);
        sd_event_source_disable_unref(srv->listen_io);
        safe_close(srv->listen_fd);
        free(srv);
        return NULL;
}
