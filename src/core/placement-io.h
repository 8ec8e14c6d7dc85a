/* placement-io.h - how the Placement client reaches the world: one HTTP
 * request at a time and one timer.
 *
 * The client (placement.c) decides what to ask and what an answer means; a
 * provider only carries requests and keeps time, the way a netdev provider
 * carries packets for Open vSwitch. placement-curl.c is the real one
 * (libcurl's multi interface on the core's sd-event loop); the unit test
 * (tests/unit/test-placement-sync.c) has an in-process fake that records the
 * requests, answers them as the test says and fires the timer on demand, so
 * the client's decisions are tested without a Placement. */
#ifndef NOVA_PLACEMENT_IO_H
#define NOVA_PLACEMENT_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

/* One request. Every string is the caller's and only needs to live until
 * send() returns: the provider copies what it keeps. */
struct placement_http_request {
        const char *method;       /* "GET", "POST" or "PUT" */
        const char *url;          /* absolute http(s) URL */
        const char *microversion; /* "1.26": OpenStack-API-Version: placement 1.26; NULL: none (Keystone) */
        const char *token;        /* X-Auth-Token (a secret: never logged); NULL or "": none */
        const char *body;         /* JSON (Content-Type: application/json); NULL: none */
};

/* What came back. Valid during the answer callback only. */
struct placement_http_answer {
        int error;                 /* 0: an HTTP answer came; -errno: the transfer failed (no status) */
        const char *error_text;    /* error < 0: the transport's words ("Connection refused", ...) */
        bool body_too_big;         /* the answer exceeded PLACEMENT_MAX_BODY (error is -EMSGSIZE) */
        long status;               /* HTTP status when error == 0 */
        const char *body;          /* NUL-terminated, "" when none */
        size_t body_len;
        const char *subject_token; /* Keystone's X-Subject-Token header, "" when none */
};

struct placement_io;

/* The provider's operations. The client calls them; none is called again
 * from inside another. */
struct placement_io_ops {
        /* Before the first request (libcurl is loaded and initialised here). 0, or -errno with err set. */
        int (*start)(struct placement_io *io, char *err, size_t errlen);
        /* Send req; its answer comes later through io->on_answer, from the event loop,
         * never from inside send(). At most one request is in flight. 0 or -errno
         * (nothing in flight then). */
        int (*send)(struct placement_io *io, const struct placement_http_request *req);
        /* Forget the request in flight (its answer never comes); nothing in flight: nothing. */
        void (*cancel)(struct placement_io *io);
        /* Call io->on_wake once, delay_usec from now (replaces the earlier time); UINT64_MAX: never. */
        void (*schedule)(struct placement_io *io, uint64_t delay_usec);
        /* Undo start(): cancel, disarm the timer, release the library. */
        void (*stop)(struct placement_io *io);
        /* Free the provider (stopped first when it was started). */
        void (*free)(struct placement_io *io);
};

/* The part every provider starts with (its first member). The client sets the
 * callbacks in placement_new(). */
struct placement_io {
        const struct placement_io_ops *ops;
        void (*on_answer)(void *userdata, const struct placement_http_answer *answer);
        void (*on_wake)(void *userdata);
        void *userdata;
};

/* The real provider: libcurl (loaded on start) on event's loop. 0 and *ret, or -ENOMEM. */
int placement_curl_new(sd_event *event, struct placement_io **ret);

#endif
