/* test-http.c - unit tests for src/lib/http.c */
#include <check.h>

#include "http.h"

/* A byte string with its length, so cases may contain NUL bytes. */
struct bytes {
        const char *s;   /* the bytes */
        size_t len;      /* their count */
        int want;        /* expected return value */
};
#define B(str, w) { str, sizeof(str) - 1, w }

static int parse(const char *s, size_t len, struct http_request *req, size_t *used)
{
        return http_parse_request(s, len, req, used);
}

static int parse_str(const char *s, struct http_request *req, size_t *used)
{
        return parse(s, strlen(s), req, used);
}

/* ---- accept paths ---- */

START_TEST(test_simple_get)
{
        const char *s = "GET /v1/status HTTP/1.1\r\nHost: localhost\r\n\r\n";
        struct http_request req;
        size_t used = 0;

        ck_assert_int_eq(parse_str(s, &req, &used), 0);
        ck_assert_str_eq(req.method, "GET");
        ck_assert_str_eq(req.path, "/v1/status");
        ck_assert_str_eq(req.query, "");
        ck_assert(req.keep_alive);
        ck_assert_ptr_null(req.body);
        ck_assert_uint_eq(req.body_len, 0);
        ck_assert_uint_eq(used, strlen(s));
}
END_TEST

START_TEST(test_curl_request)
{
        const char *s = "GET /v1/status HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/7.88.1\r\n"
                        "Accept: */*\r\n\r\n";
        struct http_request req;
        size_t used;

        ck_assert_int_eq(parse_str(s, &req, &used), 0);
        ck_assert_str_eq(req.path, "/v1/status");
        ck_assert_uint_eq(used, strlen(s));
}
END_TEST

START_TEST(test_bare_lf)
{
        const char *s = "GET /a HTTP/1.1\nHost: x\n\n";
        const char *m = "GET /a HTTP/1.1\r\nHost: x\n\r\n";
        struct http_request req;
        size_t used;

        ck_assert_int_eq(parse_str(s, &req, &used), 0);
        ck_assert_uint_eq(used, strlen(s));
        ck_assert_str_eq(req.path, "/a");
        ck_assert_int_eq(parse_str(m, &req, &used), 0);
        ck_assert_uint_eq(used, strlen(m));
}
END_TEST

START_TEST(test_no_host)
{
        struct http_request req;
        size_t used;

        ck_assert_int_eq(parse_str("GET / HTTP/1.1\r\n\r\n", &req, &used), 0);
        ck_assert_str_eq(req.path, "/");
        ck_assert_uint_eq(used, 18);
}
END_TEST

START_TEST(test_query)
{
        struct http_request req;
        size_t used;

        ck_assert_int_eq(parse_str("GET /v1/x?a=1&b=%20 HTTP/1.1\r\n\r\n", &req, &used), 0);
        ck_assert_str_eq(req.path, "/v1/x");
        ck_assert_str_eq(req.query, "a=1&b=%20");
        ck_assert_int_eq(parse_str("GET /v1/x? HTTP/1.1\r\n\r\n", &req, &used), 0);
        ck_assert_str_eq(req.path, "/v1/x");
        ck_assert_str_eq(req.query, "");
        ck_assert_int_eq(parse_str("GET /?q?r HTTP/1.1\r\n\r\n", &req, &used), 0);
        ck_assert_str_eq(req.path, "/");
        ck_assert_str_eq(req.query, "q?r");
}
END_TEST

START_TEST(test_methods)
{
        static const char *const m[] = { "GET", "POST", "PUT", "DELETE" };
        struct http_request req;
        size_t used;
        char buf[64];

        for (size_t i = 0; i < ARRAY_SIZE(m); i++) {
                ck_assert_int_eq(xsnprintf(buf, sizeof(buf), "%s /x HTTP/1.1\r\n\r\n", m[i]), 0);
                ck_assert_int_eq(parse_str(buf, &req, &used), 0);
                ck_assert_str_eq(req.method, m[i]);
        }
}
END_TEST

START_TEST(test_post_body)
{
        const char *s = "POST /v1/instances HTTP/1.1\r\nContent-Type: application/json\r\n"
                        "Content-Length: 11\r\n\r\n{\"a\":\"bcd\"}";
        struct http_request req;
        size_t used;

        ck_assert_int_eq(parse_str(s, &req, &used), 0);
        ck_assert_str_eq(req.method, "POST");
        ck_assert_uint_eq(req.body_len, 11);
        ck_assert_ptr_eq(req.body, s + strlen(s) - 11);
        ck_assert_int_eq(memcmp(req.body, "{\"a\":\"bcd\"}", 11), 0);
        ck_assert_uint_eq(used, strlen(s));
}
END_TEST

START_TEST(test_post_without_length)
{
        const char *s = "POST /v1/x HTTP/1.1\r\n\r\nGET /y HTTP/1.1\r\n\r\n";
        struct http_request req;
        size_t used;

        ck_assert_int_eq(parse_str(s, &req, &used), 0);
        ck_assert_ptr_null(req.body);
        ck_assert_uint_eq(req.body_len, 0);
        ck_assert_uint_eq(used, strlen("POST /v1/x HTTP/1.1\r\n\r\n"));
}
END_TEST

START_TEST(test_zero_length)
{
        struct http_request req;
        size_t used;

        ck_assert_int_eq(parse_str("PUT /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &req, &used), 0);
        ck_assert_ptr_null(req.body);
        ck_assert_uint_eq(req.body_len, 0);
}
END_TEST

START_TEST(test_get_with_body)
{
        const char *s = "GET /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET";
        struct http_request req;
        size_t used;

        ck_assert_int_eq(parse_str(s, &req, &used), 0);
        ck_assert_uint_eq(req.body_len, 3);
        ck_assert_uint_eq(used, strlen(s) - 3);
}
END_TEST

START_TEST(test_header_case_and_ows)
{
        const char *s = "POST /x HTTP/1.1\r\ncontent-LENGTH: \t 2 \t\r\nCONNECTION:close\r\n\r\nhi";
        struct http_request req;
        size_t used;

        ck_assert_int_eq(parse_str(s, &req, &used), 0);
        ck_assert_uint_eq(req.body_len, 2);
        ck_assert(!req.keep_alive);
        ck_assert_uint_eq(used, strlen(s));
}
END_TEST

START_TEST(test_leading_zero_length)
{
        struct http_request req;
        size_t used;

        ck_assert_int_eq(parse_str("POST /x HTTP/1.1\r\nContent-Length: 002\r\n\r\nhi", &req, &used), 0);
        ck_assert_uint_eq(req.body_len, 2);
}
END_TEST

START_TEST(test_field_value_chars)
{
        /* obs-text, tabs and punctuation are fine in unrelated header values */
        const char *s = "GET /x HTTP/1.1\r\nX-Thing: a\tb \xc3\xa9 \"q\" ()<>@\r\nX-Empty:\r\n\r\n";
        struct http_request req;
        size_t used;

        ck_assert_int_eq(parse_str(s, &req, &used), 0);
        ck_assert_uint_eq(used, strlen(s));
}
END_TEST

START_TEST(test_keep_alive)
{
        static const struct {
                const char *s;
                bool keep_alive;
        } cases[] = {
                { "GET / HTTP/1.1\r\n\r\n", true },
                { "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false },
                { "GET / HTTP/1.1\r\nConnection: Close\r\n\r\n", false },
                { "GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", true },
                { "GET / HTTP/1.1\r\nConnection: Upgrade, close\r\n\r\n", false },
                { "GET / HTTP/1.1\r\nConnection: closed\r\n\r\n", true },
                { "GET / HTTP/1.1\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", false },
                { "GET / HTTP/1.0\r\n\r\n", false },
                { "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true },
                { "GET / HTTP/1.0\r\nConnection: Keep-Alive , foo\r\n\r\n", true },
                { "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct http_request req;
                size_t used;

                ck_assert_int_eq(parse_str(cases[i].s, &req, &used), 0);
                ck_assert_msg(req.keep_alive == cases[i].keep_alive, "case %zu", i);
        }
}
END_TEST

START_TEST(test_limits_accepted)
{
        struct http_request req;
        size_t used, len;
        char *buf, path[256];

        /* path of 255 chars and query of 255 chars */
        memset(path, 'a', sizeof(path));
        path[0] = '/';
        path[255] = '\0';
        buf = malloc(1024);
        ck_assert_ptr_nonnull(buf);
        ck_assert_int_eq(xsnprintf(buf, 1024, "GET %s?%sa HTTP/1.1\r\n\r\n", path, path + 1), 0);
        ck_assert_int_eq(parse_str(buf, &req, &used), 0);
        ck_assert_uint_eq(strlen(req.path), 255);
        ck_assert_uint_eq(strlen(req.query), 255);
        ck_assert_uint_eq(used, strlen(buf));
        free(buf);

        /* a head of exactly HTTP_MAX_HEAD bytes */
        buf = malloc(HTTP_MAX_HEAD + 16);
        ck_assert_ptr_nonnull(buf);
        len = (size_t)snprintf(buf, HTTP_MAX_HEAD, "GET / HTTP/1.1\r\nX-Pad: ");
        memset(buf + len, 'p', HTTP_MAX_HEAD - len - 4);
        memcpy(buf + HTTP_MAX_HEAD - 4, "\r\n\r\n", 4);
        ck_assert_int_eq(parse(buf, HTTP_MAX_HEAD, &req, &used), 0);
        ck_assert_uint_eq(used, HTTP_MAX_HEAD);
        free(buf);

        /* a body of exactly HTTP_MAX_BODY bytes */
        buf = malloc(HTTP_MAX_BODY + 128);
        ck_assert_ptr_nonnull(buf);
        len = (size_t)snprintf(buf, 128, "PUT /x HTTP/1.1\r\nContent-Length: %d\r\n\r\n", HTTP_MAX_BODY);
        memset(buf + len, 'b', HTTP_MAX_BODY);
        ck_assert_int_eq(parse(buf, len + HTTP_MAX_BODY - 1, &req, &used), -EAGAIN);
        ck_assert_int_eq(parse(buf, len + HTTP_MAX_BODY, &req, &used), 0);
        ck_assert_uint_eq(req.body_len, HTTP_MAX_BODY);
        ck_assert_uint_eq(used, len + HTTP_MAX_BODY);
        free(buf);
}
END_TEST

/* ---- rejection paths ---- */

static const struct bytes reject_cases[] = {
        /* target */
        B("GET /a\x01 HTTP/1.1\r\n\r\n", -EBADMSG),
        B("GET /a\x7f HTTP/1.1\r\n\r\n", -EBADMSG),
        B("GET /a\tb HTTP/1.1\r\n\r\n", -EBADMSG),
        B("GET /\xc3\xa9 HTTP/1.1\r\n\r\n", -EBADMSG),
        B("GET /a#frag HTTP/1.1\r\n\r\n", -EBADMSG),
        B("GET http://localhost/ HTTP/1.1\r\n\r\n", -EBADMSG),
        B("GET * HTTP/1.1\r\n\r\n", -EBADMSG),
        B("GET v1/status HTTP/1.1\r\n\r\n", -EBADMSG),
        B("GET /.. HTTP/1.1\r\n\r\n", -EBADMSG),
        B("GET /a/../b HTTP/1.1\r\n\r\n", -EBADMSG),
        B("GET /a..b HTTP/1.1\r\n\r\n", -EBADMSG),
        B("GET /a?x=.. HTTP/1.1\r\n\r\n", -EBADMSG),
        /* request line shape */
        B("\r\n\r\n", -EBADMSG),
        B("GET\r\n\r\n", -EBADMSG),
        B("GET /\r\n\r\n", -EBADMSG),
        B("GET  / HTTP/1.1\r\n\r\n", -EBADMSG),
        B(" GET / HTTP/1.1\r\n\r\n", -EBADMSG),
        B("GET / HTTP/1.1 \r\n\r\n", -EBADMSG),
        B("GET / HTTP/2.0\r\n\r\n", -EBADMSG),
        B("GET / HTTP/1.10\r\n\r\n", -EBADMSG),
        B("GET / http/1.1\r\n\r\n", -EBADMSG),
        B("GET / HTTP/1.1\r\r\n\r\n", -EBADMSG),
        B("GET /a\rb HTTP/1.1\r\n\r\n", -EBADMSG),
        B("G(T / HTTP/1.1\r\n\r\n", -EBADMSG),
        /* NUL bytes */
        B("GET /\0 HTTP/1.1\r\n\r\n", -EBADMSG),
        B("GET / HTTP/1.1\r\nX-A: b\0c\r\n\r\n", -EBADMSG),
        B("GET / HTTP/1.1\r\nX\0: b\r\n\r\n", -EBADMSG),
        B("\0", -EBADMSG),
        /* methods */
        B("get / HTTP/1.1\r\n\r\n", -ENOSYS),
        B("PATCH / HTTP/1.1\r\n\r\n", -ENOSYS),
        B("HEAD / HTTP/1.1\r\n\r\n", -ENOSYS),
        B("OPTIONS / HTTP/1.1\r\n\r\n", -ENOSYS),
        B("CONNECTXYZ / HTTP/1.1\r\n\r\n", -ENOSYS),
        /* header lines */
        B("GET / HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n", -EBADMSG),
        B("GET / HTTP/1.1\r\nX-A: b\r\n\tc\r\n\r\n", -EBADMSG),
        B("GET / HTTP/1.1\r\n Host: x\r\n\r\n", -EBADMSG),
        B("GET / HTTP/1.1\r\nHost x\r\n\r\n", -EBADMSG),
        B("GET / HTTP/1.1\r\nHost : x\r\n\r\n", -EBADMSG),
        B("GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", -EBADMSG),
        B("GET / HTTP/1.1\r\n: x\r\n\r\n", -EBADMSG),
        B("GET / HTTP/1.1\r\nX(y): z\r\n\r\n", -EBADMSG),
        B("GET / HTTP/1.1\r\nX-A: b\x01\r\n\r\n", -EBADMSG),
        B("GET / HTTP/1.1\r\nX-A: b\x7f\r\n\r\n", -EBADMSG),
        B("GET / HTTP/1.1\r\nX-A: b\rc\r\n\r\n", -EBADMSG),
        /* Content-Length */
        B("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na", -EBADMSG),
        B("POST / HTTP/1.1\r\nContent-Length: 1\r\ncontent-length: 2\r\n\r\nab", -EBADMSG),
        B("POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", -EBADMSG),
        B("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", -EBADMSG),
        B("POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\na", -EBADMSG),
        B("POST / HTTP/1.1\r\nContent-Length: 1 1\r\n\r\na", -EBADMSG),
        B("POST / HTTP/1.1\r\nContent-Length: 1,1\r\n\r\na", -EBADMSG),
        B("POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", -EBADMSG),
        B("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", -EBADMSG),
        B("POST / HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n", -EMSGSIZE),
        B("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n", -EMSGSIZE),
        /* unsupported framing */
        B("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", -EOPNOTSUPP),
        B("POST / HTTP/1.1\r\ntransfer-encoding: identity\r\n\r\n", -EOPNOTSUPP),
        B("POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", -EOPNOTSUPP),
        B("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", -EOPNOTSUPP),
};

START_TEST(test_reject)
{
        const struct bytes *c = &reject_cases[_i];
        struct http_request req, orig;
        size_t used = 12345;
        int r;

        memset(&req, 0xaa, sizeof(req));
        orig = req;
        r = parse(c->s, c->len, &req, &used);
        ck_assert_msg(r == c->want, "case %d: got %d want %d", _i, r, c->want);
        ck_assert_int_eq(memcmp(&req, &orig, sizeof(req)), 0);
        ck_assert_uint_eq(used, 12345);
}
END_TEST

START_TEST(test_reject_long)
{
        struct http_request req;
        size_t used;
        char *buf = malloc(HTTP_MAX_HEAD * 2);
        size_t n;

        ck_assert_ptr_nonnull(buf);

        /* no end of head within HTTP_MAX_HEAD bytes */
        n = (size_t)snprintf(buf, 64, "GET / HTTP/1.1\r\nX-Pad: ");
        memset(buf + n, 'p', HTTP_MAX_HEAD * 2 - n);
        ck_assert_int_eq(parse(buf, HTTP_MAX_HEAD - 1, &req, &used), -EAGAIN);
        ck_assert_int_eq(parse(buf, HTTP_MAX_HEAD, &req, &used), -EMSGSIZE);
        ck_assert_int_eq(parse(buf, HTTP_MAX_HEAD * 2, &req, &used), -EMSGSIZE);

        /* head one byte over the limit, though complete */
        memcpy(buf + HTTP_MAX_HEAD - 3, "\r\n\r\n", 4);
        ck_assert_int_eq(parse(buf, HTTP_MAX_HEAD + 1, &req, &used), -EMSGSIZE);

        /* an endless request line */
        memset(buf, 'a', HTTP_MAX_HEAD * 2);
        memcpy(buf, "GET /", 5);
        ck_assert_int_eq(parse(buf, HTTP_MAX_HEAD, &req, &used), -EMSGSIZE);

        /* path of 256 and query of 256 bytes */
        memset(buf, 'a', HTTP_MAX_HEAD);
        memcpy(buf, "GET /", 5);
        memcpy(buf + 4 + 256, " HTTP/1.1\r\n\r\n", 13);
        ck_assert_int_eq(parse(buf, 4 + 256 + 13, &req, &used), -EMSGSIZE);
        memset(buf, 'a', HTTP_MAX_HEAD);
        memcpy(buf, "GET /?", 6);
        memcpy(buf + 6 + 256, " HTTP/1.1\r\n\r\n", 13);
        ck_assert_int_eq(parse(buf, 6 + 256 + 13, &req, &used), -EMSGSIZE);
        free(buf);
}
END_TEST

/* ---- incremental feeding and pipelining ---- */

START_TEST(test_incremental)
{
        static const char *const reqs[] = {
                "POST /v1/instances?x=1 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 13\r\n\r\n{\"name\":\"vm\"}",
                "GET / HTTP/1.0\n\n",
                "DELETE /v1/x HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        };

        for (size_t k = 0; k < ARRAY_SIZE(reqs); k++) {
                size_t len = strlen(reqs[k]);

                for (size_t i = 0; i < len; i++) {
                        /* a fresh heap copy of the prefix, so ASan sees any over-read */
                        char *p = malloc(i ? i : 1);
                        struct http_request req;
                        size_t used;

                        ck_assert_ptr_nonnull(p);
                        memcpy(p, reqs[k], i);
                        ck_assert_msg(parse(p, i, &req, &used) == -EAGAIN, "req %zu prefix %zu", k, i);
                        free(p);
                }
                struct http_request req;
                size_t used;

                ck_assert_int_eq(parse(reqs[k], len, &req, &used), 0);
                ck_assert_uint_eq(used, len);
        }
}
END_TEST

START_TEST(test_incremental_error_early)
{
        /* a malformed line is reported before the head is complete */
        struct http_request req;
        size_t used;

        ck_assert_int_eq(parse_str("GET / HTTP/1.1\r\nBad Header: x\r\n", &req, &used), -EBADMSG);
        ck_assert_int_eq(parse_str("GET / HTTP/1.1\r\nBad Header: x", &req, &used), -EAGAIN);
        ck_assert_int_eq(parse_str("BREW / HTTP/1.1\r\n", &req, &used), -ENOSYS);
        ck_assert_int_eq(parse_str("GET / HTTP/1.1\r", &req, &used), -EAGAIN);
        ck_assert_int_eq(parse_str("GET / HTTP/1.1\r\n\r", &req, &used), -EAGAIN);
        ck_assert_int_eq(parse("", 0, &req, &used), -EAGAIN);
        ck_assert_int_eq(parse(NULL, 0, &req, &used), -EAGAIN);
}
END_TEST

START_TEST(test_pipelined)
{
        const char *s = "POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
                        "GET /b?c HTTP/1.1\r\nConnection: close\r\n\r\n";
        struct http_request req;
        size_t used, used2, len = strlen(s);

        ck_assert_int_eq(parse(s, len, &req, &used), 0);
        ck_assert_str_eq(req.method, "POST");
        ck_assert_str_eq(req.path, "/a");
        ck_assert_uint_eq(req.body_len, 5);
        ck_assert_int_eq(memcmp(req.body, "hello", 5), 0);
        ck_assert(req.keep_alive);
        ck_assert_uint_lt(used, len);

        ck_assert_int_eq(parse(s + used, len - used, &req, &used2), 0);
        ck_assert_str_eq(req.method, "GET");
        ck_assert_str_eq(req.path, "/b");
        ck_assert_str_eq(req.query, "c");
        ck_assert(!req.keep_alive);
        ck_assert_uint_eq(used + used2, len);

        /* second request still incomplete */
        ck_assert_int_eq(parse(s + used, len - used - 1, &req, &used2), -EAGAIN);
}
END_TEST

/* ---- status mapping ---- */

START_TEST(test_status_mapping)
{
        ck_assert_int_eq(http_status_for_error(-EBADMSG), 400);
        ck_assert_int_eq(http_status_for_error(-ENOSYS), 405);
        ck_assert_int_eq(http_status_for_error(-EMSGSIZE), 413);
        ck_assert_int_eq(http_status_for_error(-EOPNOTSUPP), 501);
        ck_assert_int_eq(http_status_for_error(-ENOMEM), 500);
        ck_assert_str_eq(http_status_text(200), "OK");
        ck_assert_str_eq(http_status_text(404), "Not Found");
        ck_assert_str_eq(http_status_text(405), "Method Not Allowed");
        ck_assert_str_eq(http_status_text(413), "Content Too Large");
        ck_assert_str_eq(http_status_text(431), "Request Header Fields Too Large");
        ck_assert_str_eq(http_status_text(503), "Service Unavailable");
        ck_assert_str_eq(http_status_text(299), "Unknown");
        ck_assert_str_eq(http_status_text(-1), "Unknown");
}
END_TEST

/* ---- formatting and client-side parsing ---- */

START_TEST(test_response_roundtrip)
{
        const char *body = "{\"status\":\"ok\"}";
        const char *rbody;
        char *buf = NULL;
        size_t len = 0, rlen, used;
        int status;

        ck_assert_int_eq(http_format_response(200, "application/json", body, strlen(body), true,
                                              &buf, &len), 0);
        ck_assert_str_eq(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              "Content-Length: 15\r\nConnection: keep-alive\r\n\r\n{\"status\":\"ok\"}");
        ck_assert_uint_eq(len, strlen(buf));
        ck_assert_int_eq(http_parse_response(buf, len, &status, &rbody, &rlen, &used), 0);
        ck_assert_int_eq(status, 200);
        ck_assert_uint_eq(rlen, strlen(body));
        ck_assert_int_eq(memcmp(rbody, body, rlen), 0);
        ck_assert_ptr_eq(rbody, buf + len - rlen);
        ck_assert_uint_eq(used, len);

        /* every prefix is incomplete */
        for (size_t i = 0; i < len; i++) {
                char *p = malloc(i ? i : 1);

                ck_assert_ptr_nonnull(p);
                memcpy(p, buf, i);
                ck_assert_int_eq(http_parse_response(p, i, &status, &rbody, &rlen, &used), -EAGAIN);
                free(p);
        }
        free(buf);

        ck_assert_int_eq(http_format_response(404, NULL, NULL, 0, false, &buf, &len), 0);
        ck_assert_str_eq(buf, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        ck_assert_int_eq(http_parse_response(buf, len, &status, &rbody, &rlen, &used), 0);
        ck_assert_int_eq(status, 404);
        ck_assert_ptr_null(rbody);
        ck_assert_uint_eq(rlen, 0);
        ck_assert_uint_eq(used, len);
        free(buf);

        ck_assert_int_eq(http_format_response(204, "application/json", NULL, 0, true, &buf, &len), 0);
        ck_assert_str_eq(buf, "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n");
        ck_assert_int_eq(http_parse_response(buf, len, &status, &rbody, &rlen, &used), 0);
        ck_assert_int_eq(status, 204);
        ck_assert_uint_eq(used, len);
        free(buf);
}
END_TEST

START_TEST(test_format_response_invalid)
{
        char *buf = (char *)"untouched";
        size_t len = 7;

        ck_assert_int_eq(http_format_response(199, NULL, NULL, 0, true, &buf, &len), -EINVAL);
        ck_assert_int_eq(http_format_response(600, NULL, NULL, 0, true, &buf, &len), -EINVAL);
        ck_assert_int_eq(http_format_response(204, NULL, "x", 1, true, &buf, &len), -EINVAL);
        ck_assert_int_eq(http_format_response(304, NULL, "x", 1, true, &buf, &len), -EINVAL);
        ck_assert_int_eq(http_format_response(200, NULL, NULL, 1, true, &buf, &len), -EINVAL);
        ck_assert_int_eq(http_format_response(200, "text/plain\r\nX-Evil: 1", "x", 1, true, &buf, &len),
                         -EINVAL);
        ck_assert_int_eq(http_format_response(200, "", "x", 1, true, &buf, &len), -EINVAL);
        ck_assert_str_eq(buf, "untouched");
        ck_assert_uint_eq(len, 7);
}
END_TEST

START_TEST(test_request_roundtrip)
{
        const char *body = "{\"name\":\"vm1\"}";
        struct http_request req;
        char *buf;
        size_t len, used;

        ck_assert_int_eq(http_format_request("POST", "/v1/instances?dry_run=1", body, strlen(body),
                                             &buf, &len), 0);
        ck_assert_str_eq(buf, "POST /v1/instances?dry_run=1 HTTP/1.1\r\nHost: localhost\r\n"
                              "Content-Type: application/json\r\nContent-Length: 14\r\n\r\n"
                              "{\"name\":\"vm1\"}");
        ck_assert_int_eq(parse(buf, len, &req, &used), 0);
        ck_assert_str_eq(req.method, "POST");
        ck_assert_str_eq(req.path, "/v1/instances");
        ck_assert_str_eq(req.query, "dry_run=1");
        ck_assert_uint_eq(req.body_len, strlen(body));
        ck_assert_int_eq(memcmp(req.body, body, req.body_len), 0);
        ck_assert(req.keep_alive);
        ck_assert_uint_eq(used, len);
        free(buf);

        ck_assert_int_eq(http_format_request("GET", "/v1/status", NULL, 0, &buf, &len), 0);
        ck_assert_str_eq(buf, "GET /v1/status HTTP/1.1\r\nHost: localhost\r\n\r\n");
        ck_assert_int_eq(parse(buf, len, &req, &used), 0);
        ck_assert_uint_eq(used, len);
        free(buf);

        ck_assert_int_eq(http_format_request("PUT", "/v1/x", NULL, 0, &buf, &len), 0);
        ck_assert_str_eq(buf, "PUT /v1/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n");
        free(buf);

        ck_assert_int_eq(http_format_request("DELETE", "/v1/x", NULL, 0, &buf, &len), 0);
        ck_assert_int_eq(parse(buf, len, &req, &used), 0);
        ck_assert_str_eq(req.method, "DELETE");
        free(buf);
}
END_TEST

START_TEST(test_format_request_invalid)
{
        char *buf = NULL;
        size_t len = 0;

        ck_assert_int_eq(http_format_request("PATCH", "/x", NULL, 0, &buf, &len), -EINVAL);
        ck_assert_int_eq(http_format_request("get", "/x", NULL, 0, &buf, &len), -EINVAL);
        ck_assert_int_eq(http_format_request("GET", "x", NULL, 0, &buf, &len), -EINVAL);
        ck_assert_int_eq(http_format_request("GET", "", NULL, 0, &buf, &len), -EINVAL);
        ck_assert_int_eq(http_format_request("GET", "/a b", NULL, 0, &buf, &len), -EINVAL);
        ck_assert_int_eq(http_format_request("GET", "/a\r\nX: y", NULL, 0, &buf, &len), -EINVAL);
        ck_assert_int_eq(http_format_request("POST", "/x", NULL, 3, &buf, &len), -EINVAL);
        ck_assert_ptr_null(buf);
        ck_assert_uint_eq(len, 0);
}
END_TEST

static const struct bytes response_cases[] = {
        B("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 0),
        B("HTTP/1.0 200 OK\nContent-Length: 2\n\nhi", 0),
        B("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 0),
        B("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", 0),
        B("HTTP/1.1 100 Continue\r\n\r\n", 0),
        B("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", 0),
        B("HTTP/1.1 200 OK\r\n\r\n", -EBADMSG),
        B("HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", -EBADMSG),
        B("HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", -EBADMSG),
        B("HTTP/1.1 600 OK\r\nContent-Length: 0\r\n\r\n", -EBADMSG),
        B("HTTP/1.1 099 OK\r\nContent-Length: 0\r\n\r\n", -EBADMSG),
        B("HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n", -EBADMSG),
        B("HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", -EBADMSG),
        B("HTTP/1.1 200OK\r\nContent-Length: 0\r\n\r\n", -EBADMSG),
        B("HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n", -EBADMSG),
        B("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", -EBADMSG),
        B("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", -EBADMSG),
        B("HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n", -EBADMSG),
        B("HTTP/1.1 200 OK\r\nContent-Length: 0\0\r\n\r\n", -EBADMSG),
        B("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", -EOPNOTSUPP),
        B("HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", -EMSGSIZE),
        B("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi", -EAGAIN),
};

START_TEST(test_response_cases)
{
        const struct bytes *c = &response_cases[_i];
        const char *body = (const char *)&c;
        size_t blen = 77, used = 88;
        int status = 99, r;

        r = http_parse_response(c->s, c->len, &status, &body, &blen, &used);
        ck_assert_msg(r == c->want, "case %d: got %d want %d", _i, r, c->want);
        if (r == 0) {
                ck_assert_uint_eq(used, c->len);
                ck_assert(status >= 100 && status <= 599);
        } else {
                ck_assert_int_eq(status, 99);
                ck_assert_ptr_eq(body, (const char *)&c);
                ck_assert_uint_eq(blen, 77);
                ck_assert_uint_eq(used, 88);
        }
}
END_TEST

START_TEST(test_response_pipelined)
{
        const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 204 No Content\r\n\r\n";
        const char *body;
        size_t blen, used, used2, len = strlen(s);
        int status;

        ck_assert_int_eq(http_parse_response(s, len, &status, &body, &blen, &used), 0);
        ck_assert_int_eq(status, 200);
        ck_assert_uint_eq(blen, 2);
        ck_assert_int_eq(http_parse_response(s + used, len - used, &status, &body, &blen, &used2), 0);
        ck_assert_int_eq(status, 204);
        ck_assert_ptr_null(body);
        ck_assert_uint_eq(used + used2, len);
}
END_TEST

static Suite *http_suite(void)
{
        Suite *s = suite_create("http");
        TCase *tc;

        tc = tcase_create("accept");
        tcase_add_test(tc, test_simple_get);
        tcase_add_test(tc, test_curl_request);
        tcase_add_test(tc, test_bare_lf);
        tcase_add_test(tc, test_no_host);
        tcase_add_test(tc, test_query);
        tcase_add_test(tc, test_methods);
        tcase_add_test(tc, test_post_body);
        tcase_add_test(tc, test_post_without_length);
        tcase_add_test(tc, test_zero_length);
        tcase_add_test(tc, test_get_with_body);
        tcase_add_test(tc, test_header_case_and_ows);
        tcase_add_test(tc, test_leading_zero_length);
        tcase_add_test(tc, test_field_value_chars);
        tcase_add_test(tc, test_keep_alive);
        tcase_add_test(tc, test_limits_accepted);
        suite_add_tcase(s, tc);

        tc = tcase_create("reject");
        tcase_add_loop_test(tc, test_reject, 0, (int)ARRAY_SIZE(reject_cases));
        tcase_add_test(tc, test_reject_long);
        suite_add_tcase(s, tc);

        tc = tcase_create("stream");
        tcase_add_test(tc, test_incremental);
        tcase_add_test(tc, test_incremental_error_early);
        tcase_add_test(tc, test_pipelined);
        suite_add_tcase(s, tc);

        tc = tcase_create("format");
        tcase_add_test(tc, test_status_mapping);
        tcase_add_test(tc, test_response_roundtrip);
        tcase_add_test(tc, test_format_response_invalid);
        tcase_add_test(tc, test_request_roundtrip);
        tcase_add_test(tc, test_format_request_invalid);
        tcase_add_loop_test(tc, test_response_cases, 0, (int)ARRAY_SIZE(response_cases));
        tcase_add_test(tc, test_response_pipelined);
        suite_add_tcase(s, tc);

        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(http_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
