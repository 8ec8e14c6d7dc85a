/* placement-curl.c - the Placement client's real transport (placement-io.h):
 * libcurl's multi interface on the core's sd-event loop.
 *
 * libcurl tells us which sockets to watch and when to call it back
 * (CURLMOPT_SOCKETFUNCTION, CURLMOPT_TIMERFUNCTION); each socket becomes an
 * sd-event io source and the timeout one time source, so nothing here
 * blocks. Answers are bounded (PLACEMENT_MAX_BODY, TOKEN_MAX) and only
 * http(s) is spoken, without redirects. The client's own timer (backoff,
 * refresh) is one more time source. */
#include "placement-io.h"

#include "log.h"
#include "placement-json.h"
#include "util.h"

#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#define REQUEST_TIMEOUT_MS 15000L
#define CONNECT_TIMEOUT_MS 5000L
#define TOKEN_MAX 8192 /* bytes of an X-Subject-Token we accept */

struct transfer {
        CURL *easy;
        struct curl_slist *headers;
        char *recv;              /* response body (owned, NUL-terminated) */
        size_t recv_len;
        bool recv_too_big;
        char subject_token[TOKEN_MAX];
        bool subject_token_too_big;
        char errbuf[CURL_ERROR_SIZE];
};

struct curl_io {
        struct placement_io io; /* first: the provider's public part */
        sd_event *event;
        CURLM *multi;
        sd_event_source *curl_timer; /* libcurl's timeout */
        sd_event_source *wake;       /* the client's timer */
        struct transfer *xfer;       /* in flight */
        bool global_initialised;     /* curl_global_init() done */
};

static struct curl_io *curl_io_of(struct placement_io *io) { return (struct curl_io *)io; }

static uint64_t loop_now(const struct curl_io *c)
{
        uint64_t t = 0;
        if (sd_event_now(c->event, CLOCK_MONOTONIC, &t) < 0)
                t = now_usec();
        return t;
}

/* ---- libcurl on sd-event ---- */

static void check_done(struct curl_io *c);

static int on_curl_io(sd_event_source *s _unused_, int fd, uint32_t revents, void *userdata)
{
        struct curl_io *c = userdata;
        int running, mask = 0;

        if (revents & EPOLLIN)
                mask |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                mask |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                mask |= CURL_CSELECT_ERR;
        (void)curl_multi_socket_action(c->multi, fd, mask, &running);
        check_done(c);
        return 0;
}

static int curl_socket_cb(CURL *easy _unused_, curl_socket_t fd, int what, void *userp, void *socketp)
{
        struct curl_io *c = userp;
        sd_event_source *src = socketp;
        uint32_t events = (what == CURL_POLL_IN ? EPOLLIN : what == CURL_POLL_OUT ? EPOLLOUT : EPOLLIN | EPOLLOUT);

        if (what == CURL_POLL_REMOVE) {
                if (src) {
                        (void)sd_event_source_set_enabled(src, SD_EVENT_OFF);
                        sd_event_source_unref(src);
                        (void)curl_multi_assign(c->multi, fd, NULL);
                }
                return 0;
        }
        if (src)
                return sd_event_source_set_io_events(src, events) < 0 ? -1 : 0;
        if (sd_event_add_io(c->event, &src, fd, events, on_curl_io, c) < 0)
                return -1;
        (void)curl_multi_assign(c->multi, fd, src);
        return 0;
}

static int on_curl_timer(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata)
{
        struct curl_io *c = userdata;
        int running;

        (void)curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        check_done(c);
        return 0;
}

static int curl_timer_cb(CURLM *multi _unused_, long timeout_ms, void *userp)
{
        struct curl_io *c = userp;

        if (timeout_ms < 0)
                return sd_event_source_set_enabled(c->curl_timer, SD_EVENT_OFF) < 0 ? -1 : 0;
        if (sd_event_source_set_time(c->curl_timer, loop_now(c) + (uint64_t)timeout_ms * 1000) < 0 ||
            sd_event_source_set_enabled(c->curl_timer, SD_EVENT_ONESHOT) < 0)
                return -1;
        return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
        struct transfer *x = userp;
        size_t n = size * nmemb;
        char *nb;

        if (x->recv_len + n > PLACEMENT_MAX_BODY) {
                x->recv_too_big = true;
                return 0; /* aborts the transfer */
        }
        nb = realloc(x->recv, x->recv_len + n + 1);
        if (!nb)
                return 0;
        memcpy(nb + x->recv_len, data, n);
        x->recv = nb;
        x->recv_len += n;
        x->recv[x->recv_len] = '\0';
        return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
        static const char name[] = "x-subject-token:";
        struct transfer *x = userp;
        size_t n = size * nmemb, v;

        if (n > strlen(name) && strncasecmp(data, name, strlen(name)) == 0) {
                v = strlen(name);
                while (v < n && (data[v] == ' ' || data[v] == '\t'))
                        v++;
                while (n > v && (data[n - 1] == '\r' || data[n - 1] == '\n' || data[n - 1] == ' '))
                        n--;
                if (n - v >= sizeof(x->subject_token)) {
                        x->subject_token_too_big = true;
                        return 0;
                }
                memcpy(x->subject_token, data + v, n - v);
                x->subject_token[n - v] = '\0';
        }
        return size * nmemb;
}

static void transfer_free(struct curl_io *c, struct transfer *x)
{
        if (!x)
                return;
        if (x->easy) {
                if (c->multi)
                        (void)curl_multi_remove_handle(c->multi, x->easy);
                curl_easy_cleanup(x->easy);
        }
        curl_slist_free_all(x->headers);
        free(x->recv);
        explicit_bzero(x->subject_token, sizeof(x->subject_token));
        free(x);
}

/* The transfer ended: hand its answer to the client, then free it (the client may send the
 * next request from its callback). */
static void check_done(struct curl_io *c)
{
        CURLMsg *msg;
        int left;

        while ((msg = curl_multi_info_read(c->multi, &left))) {
                struct transfer *x = NULL;
                struct placement_http_answer a = { .body = "", .subject_token = "" };
                if (msg->msg != CURLMSG_DONE)
                        continue;
                (void)curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
                if (!x || x != c->xfer)
                        continue;
                CURLcode code = msg->data.result;
                c->xfer = NULL;
                if (code != CURLE_OK) {
                        a.body_too_big = x->recv_too_big;
                        a.error = x->recv_too_big ? -EMSGSIZE : x->subject_token_too_big ? -E2BIG : -EIO;
                        a.error_text = x->subject_token_too_big ? "the X-Subject-Token header is too long"
                                       : x->errbuf[0]            ? x->errbuf
                                                                 : curl_easy_strerror(code);
                } else
                        (void)curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &a.status);
                if (x->recv) {
                        a.body = x->recv;
                        a.body_len = x->recv_len;
                }
                a.subject_token = x->subject_token;
                c->io.on_answer(c->io.userdata, &a);
                transfer_free(c, x);
                return; /* msg is invalid after remove_handle; the loop comes back for more */
        }
}

/* ---- the operations ---- */

static struct curl_slist *request_headers(const struct placement_http_request *req)
{
        struct curl_slist *h = NULL, *n;
        char line[TOKEN_MAX + 32];
        const char *fixed[] = { "Accept: application/json", "User-Agent: nova-hypervisor",
                                req->body ? "Content-Type: application/json" : NULL };

        for (size_t i = 0; i < ARRAY_SIZE(fixed); i++) {
                if (!fixed[i])
                        continue;
                n = curl_slist_append(h, fixed[i]);
                if (!n)
                        goto fail;
                h = n;
        }
        if (req->microversion) {
                (void)snprintf(line, sizeof(line), "OpenStack-API-Version: placement %s", req->microversion);
                if (!(n = curl_slist_append(h, line)))
                        goto fail;
                h = n;
        }
        if (req->token && req->token[0]) {
                if (strlen(req->token) >= TOKEN_MAX)
                        goto fail;
                (void)snprintf(line, sizeof(line), "X-Auth-Token: %s", req->token);
                n = curl_slist_append(h, line);
                explicit_bzero(line, sizeof(line));
                if (!n)
                        goto fail;
                h = n;
        }
        return h;
fail:
        curl_slist_free_all(h);
        return NULL;
}

static void set_transfer_options(struct transfer *x, const struct placement_http_request *req)
{
        (void)curl_easy_setopt(x->easy, CURLOPT_URL, req->url);
        (void)curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
        (void)curl_easy_setopt(x->easy, CURLOPT_CUSTOMREQUEST, req->method);
        if (req->body) {
                (void)curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(req->body));
                (void)curl_easy_setopt(x->easy, CURLOPT_COPYPOSTFIELDS, req->body);
        } else if (streq(req->method, "GET"))
                (void)curl_easy_setopt(x->easy, CURLOPT_HTTPGET, 1L);
        (void)curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body);
        (void)curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
        (void)curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header);
        (void)curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
        (void)curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf);
        (void)curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
        (void)curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
        (void)curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
        (void)curl_easy_setopt(x->easy, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85 (Debian 12); core22 has 7.81 */
        (void)curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
        (void)curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        (void)curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
}

static int curl_io_send(struct placement_io *io, const struct placement_http_request *req)
{
        struct curl_io *c = curl_io_of(io);
        struct transfer *x;

        assert(c->multi && !c->xfer && req && req->method && req->url);
        x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        x->easy = curl_easy_init();
        x->headers = request_headers(req);
        if (!x->easy || !x->headers) {
                transfer_free(c, x);
                return -ENOMEM;
        }
        set_transfer_options(x, req);
        if (curl_multi_add_handle(c->multi, x->easy) != CURLM_OK) {
                transfer_free(c, x);
                return -ENOMEM;
        }
        c->xfer = x;
        return 0;
}

static void curl_io_cancel(struct placement_io *io)
{
        struct curl_io *c = curl_io_of(io);

        transfer_free(c, c->xfer);
        c->xfer = NULL;
}

static int on_wake(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata)
{
        struct curl_io *c = userdata;

        c->io.on_wake(c->io.userdata);
        return 0;
}

static void curl_io_schedule(struct placement_io *io, uint64_t delay_usec)
{
        struct curl_io *c = curl_io_of(io);

        if (!c->wake)
                return;
        if (delay_usec == UINT64_MAX) {
                (void)sd_event_source_set_enabled(c->wake, SD_EVENT_OFF);
                return;
        }
        (void)sd_event_source_set_time(c->wake, loop_now(c) + delay_usec);
        (void)sd_event_source_set_enabled(c->wake, SD_EVENT_ONESHOT);
}

static void curl_io_stop(struct placement_io *io)
{
        struct curl_io *c = curl_io_of(io);

        curl_io_cancel(io);
        if (c->multi)
                (void)curl_multi_cleanup(c->multi);
        c->multi = NULL;
        c->curl_timer = sd_event_source_disable_unref(c->curl_timer);
        c->wake = sd_event_source_disable_unref(c->wake);
        if (c->global_initialised)
                curl_global_cleanup();
        c->global_initialised = false;
}

static int add_timers(struct curl_io *c)
{
        int r;

        r = sd_event_add_time(c->event, &c->curl_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_curl_timer, c);
        if (r >= 0)
                r = sd_event_source_set_enabled(c->curl_timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time(c->event, &c->wake, CLOCK_MONOTONIC, UINT64_MAX, 0, on_wake, c);
        if (r >= 0)
                r = sd_event_source_set_enabled(c->wake, SD_EVENT_OFF);
        return r;
}

static int curl_io_start(struct placement_io *io, char *err, size_t errlen)
{
        struct curl_io *c = curl_io_of(io);
        int r;

        assert(!c->multi && io->on_answer && io->on_wake);
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                (void)snprintf(err, errlen, "libcurl failed to initialise");
                return -ENOMEM;
        }
        c->global_initialised = true;
        if (!(c->multi = curl_multi_init())) {
                curl_io_stop(io);
                (void)snprintf(err, errlen, "libcurl failed to initialise");
                return -ENOMEM;
        }
        (void)curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
        (void)curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
        (void)curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
        (void)curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
        r = add_timers(c);
        if (r < 0) {
                curl_io_stop(io);
                (void)snprintf(err, errlen, "cannot set up the client: %s", strerror(-r));
        }
        return r;
}

static void curl_io_free(struct placement_io *io)
{
        struct curl_io *c = curl_io_of(io);

        if (!io)
                return;
        curl_io_stop(io);
        sd_event_unref(c->event);
        free(c);
}

static const struct placement_io_ops curl_io_ops = {
        .start = curl_io_start,
        .send = curl_io_send,
        .cancel = curl_io_cancel,
        .schedule = curl_io_schedule,
        .stop = curl_io_stop,
        .free = curl_io_free,
};

int placement_curl_new(sd_event *event, struct placement_io **ret)
{
        struct curl_io *c;

        assert(event && ret);
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->io.ops = &curl_io_ops;
        c->event = sd_event_ref(event);
        *ret = &c->io;
        return 0;
}
