/* http.h - minimal, strict HTTP/1.1 for the local REST/JSON API.
 *
 * The server side is a stateless re-parse: the caller accumulates bytes in
 * its own buffer and calls http_parse_request() again whenever more arrive.
 * Only what a local JSON API needs is supported: GET/POST/PUT/DELETE,
 * Content-Length bodies, keep-alive and pipelining. Everything ambiguous
 * (obs-fold, duplicate Content-Length, Transfer-Encoding, Expect, NUL bytes,
 * ".." in the target) is rejected rather than interpreted. */
#ifndef NOVA_HTTP_H
#define NOVA_HTTP_H

#include "util.h"

#define HTTP_MAX_HEAD 8192          /* request line + headers */
#define HTTP_MAX_BODY (1024 * 1024)
#define HTTP_PATH_MAX 256           /* a request path, with the NUL */
#define HTTP_MAX_RESPONSE_BODY (16 * 1024 * 1024) /* client side: largest response body accepted */

struct http_request {
        char method[8];        /* "GET", "POST", "PUT", "DELETE" only */
        char path[HTTP_PATH_MAX]; /* path part of the target, starts with '/' */
        char query[256];       /* after '?', may be empty */
        bool keep_alive;       /* HTTP/1.1 default true unless "Connection: close"; HTTP/1.0 default false */
        const char *body;      /* points into the caller's buffer; NULL when no body */
        size_t body_len;       /* bytes at body; 0 when body is NULL */
};

/* 0: a whole request is in buf, *ret filled, *ret_consumed = bytes it used (pipelining-safe);
 * -EAGAIN: incomplete, read more; -EBADMSG: malformed (400); -EMSGSIZE: head, target or body too large;
 * -EOPNOTSUPP: Transfer-Encoding / chunked or Expect; -ENOSYS: unknown method (405).
 * Errors are reported as soon as the bytes seen so far prove them. */
int http_parse_request(const char *buf, size_t len, struct http_request *ret, size_t *ret_consumed);

/* Map an error from http_parse_request to a status code (500 for anything unexpected). */
int http_status_for_error(int err);

/* Reason phrase for a status code ("Not Found"); never NULL ("Unknown" when unlisted). */
const char *http_status_text(int status);

/* Format a full response with Content-Type, Content-Length, Connection headers into a malloc'd buffer.
 * content_type may be NULL (header omitted); 204 carries neither body nor Content-Length.
 * -EINVAL for a status outside 200..599, a body on 204/304, or CR/LF/control chars in content_type. */
int http_format_response(int status, const char *content_type, const char *body, size_t body_len,
                         bool keep_alive, char **ret_buf, size_t *ret_len);

/* The longest head http_format_response_head writes (content_type is at most ~300 bytes). */
#define HTTP_RESPONSE_HEAD_MAX 512

/* The head alone of the response http_format_response would make for a body of body_len bytes,
 * into head (head_size bytes, HTTP_RESPONSE_HEAD_MAX is enough), NUL-terminated; *ret_len its
 * length. For a body built in place (the API's large listings): the same checks, -EINVAL. */
int http_format_response_head(int status, const char *content_type, size_t body_len, bool keep_alive, char *head,
                              size_t head_size, size_t *ret_len);

/* Client side (used by the CLI): format a request into a malloc'd buffer. method must be one of the
 * four supported, path must start with '/' and hold only visible ASCII; a body gets
 * "Content-Type: application/json". -EINVAL otherwise. */
int http_format_request(const char *method, const char *path, const char *body, size_t body_len,
                        char **ret_buf, size_t *ret_len);

/* Parse one complete response (status line, headers, Content-Length body; 1xx/204/304 have none).
 * *ret_body points into buf (NULL when empty). -EAGAIN while incomplete, -EBADMSG when malformed or
 * without Content-Length, -EMSGSIZE when larger than HTTP_MAX_HEAD / HTTP_MAX_RESPONSE_BODY,
 * -EOPNOTSUPP for Transfer-Encoding. */
int http_parse_response(const char *buf, size_t len, int *ret_status, const char **ret_body,
                        size_t *ret_body_len, size_t *ret_consumed);

#endif
