/* fuzz-http.c - libFuzzer target for the HTTP request and response parsers.
 * Checks the contracts: documented return values only, consumed <= len,
 * bodies inside the input, outputs untouched on failure, prefixes of a
 * complete message are incomplete, and a parsed request survives a
 * format/parse round trip. */
#include "http.h"

#define CHECK(x)                                                                     \
        do {                                                                         \
                if (!(x)) {                                                          \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
                        abort();                                                     \
                }                                                                    \
        } while (0)

static bool request_error_ok(int r)
{
        return r == -EAGAIN || r == -EBADMSG || r == -EMSGSIZE || r == -EOPNOTSUPP || r == -ENOSYS;
}

static void check_request(const char *buf, size_t len, const struct http_request *req, size_t used)
{
        CHECK(used > 0 && used <= len);
        CHECK(streq(req->method, "GET") || streq(req->method, "POST") || streq(req->method, "PUT") ||
              streq(req->method, "DELETE"));
        CHECK(memchr(req->path, '\0', sizeof(req->path)) != NULL);
        CHECK(memchr(req->query, '\0', sizeof(req->query)) != NULL);
        CHECK(req->path[0] == '/');
        CHECK(!strstr(req->path, "..") && !strstr(req->query, ".."));
        for (const char *p = req->path; *p; p++)
                CHECK(*p > 0x20 && *p < 0x7f && *p != '?' && *p != '#');
        for (const char *p = req->query; *p; p++)
                CHECK(*p > 0x20 && *p < 0x7f && *p != '#');
        if (req->body) {
                CHECK(req->body_len > 0 && req->body_len <= HTTP_MAX_BODY);
                CHECK(req->body > buf && req->body + req->body_len == buf + used);
        } else {
                CHECK(req->body_len == 0);
        }
        CHECK(used - req->body_len <= HTTP_MAX_HEAD);
}

/* Prefixes of a complete request are incomplete; the exact request parses the same. */
static void check_prefixes(const char *buf, size_t used, const struct http_request *req)
{
        struct http_request again;
        size_t used2;
        char *copy = malloc(used);

        if (!copy)
                return;
        memcpy(copy, buf, used);
        CHECK(http_parse_request(copy, used, &again, &used2) == 0);
        CHECK(used2 == used);
        CHECK(streq(again.method, req->method) && streq(again.path, req->path) &&
              streq(again.query, req->query) && again.keep_alive == req->keep_alive &&
              again.body_len == req->body_len);
        /* a few cut points, not all of them, to keep the target fast */
        for (size_t cut = 0; cut < used; cut += 1 + cut / 2)
                CHECK(http_parse_request(copy, cut, &again, &used2) == -EAGAIN);
        CHECK(http_parse_request(copy, used - 1, &again, &used2) == -EAGAIN);
        free(copy);
}

static void check_roundtrip(const struct http_request *req)
{
        char target[600], *out = NULL;
        struct http_request back;
        size_t out_len, used;

        if (xsnprintf(target, sizeof(target), "%s%s%s", req->path, req->query[0] ? "?" : "",
                      req->query) < 0)
                return;
        CHECK(http_format_request(req->method, target, req->body, req->body_len, &out, &out_len) == 0);
        CHECK(http_parse_request(out, out_len, &back, &used) == 0);
        CHECK(used == out_len);
        CHECK(streq(back.method, req->method) && streq(back.path, req->path));
        CHECK(streq(back.query, req->query) || (!req->query[0] && !back.query[0]));
        CHECK(back.body_len == req->body_len);
        CHECK(back.body_len == 0 || memcmp(back.body, req->body, back.body_len) == 0);
        free(out);
}

static void fuzz_request(const char *buf, size_t len)
{
        size_t off = 0;

        /* parse a pipeline of requests until one is not complete */
        for (int n = 0; n < 16 && off <= len; n++) {
                struct http_request req, orig;
                size_t used = 0xdeadbeef;
                int r;

                memset(&req, 0xa5, sizeof(req));
                orig = req;
                r = http_parse_request(buf + off, len - off, &req, &used);
                if (r < 0) {
                        CHECK(request_error_ok(r));
                        CHECK(used == 0xdeadbeef);
                        CHECK(memcmp(&req, &orig, sizeof(req)) == 0);
                        CHECK(http_status_for_error(r) >= 400 && http_status_for_error(r) <= 599);
                        return;
                }
                CHECK(r == 0);
                check_request(buf + off, len - off, &req, used);
                if (n == 0) {
                        check_prefixes(buf, used, &req);
                        check_roundtrip(&req);
                }
                off += used;
        }
}

static void fuzz_response(const char *buf, size_t len)
{
        size_t off = 0;

        for (int n = 0; n < 16 && off <= len; n++) {
                const char *body = (const char *)&off;
                size_t body_len = 77, used = 88;
                int status = -1, r;

                r = http_parse_response(buf + off, len - off, &status, &body, &body_len, &used);
                if (r < 0) {
                        CHECK(r == -EAGAIN || r == -EBADMSG || r == -EMSGSIZE || r == -EOPNOTSUPP);
                        CHECK(status == -1 && body == (const char *)&off && body_len == 77 && used == 88);
                        return;
                }
                CHECK(r == 0);
                CHECK(status >= 100 && status <= 599);
                CHECK(used > 0 && used <= len - off);
                if (body) {
                        CHECK(body_len > 0 && body_len <= HTTP_MAX_RESPONSE_BODY);
                        CHECK(body > buf + off && body + body_len == buf + off + used);
                } else {
                        CHECK(body_len == 0);
                }
                off += used;
        }
}

static void fuzz_format(const uint8_t *data, size_t size)
{
        /* status and keep-alive from the first bytes, the rest as body */
        char *out = NULL;
        const char *body;
        size_t out_len, body_len, used;
        int status, parsed;

        if (size < 2)
                return;
        status = 100 + (int)(((unsigned)data[0] << 8 | data[1]) % 520);
        if (http_format_response(status, "application/json", (const char *)data + 2, size - 2,
                                 data[0] & 1, &out, &out_len) < 0) {
                CHECK(status < 200 || status > 599 || ((status == 204 || status == 304) && size > 2));
                return;
        }
        CHECK(http_parse_response(out, out_len, &parsed, &body, &body_len, &used) == 0);
        CHECK(parsed == status && used == out_len);
        if (status != 204 && status != 304) {
                CHECK(body_len == size - 2);
                CHECK(body_len == 0 || memcmp(body, data + 2, body_len) == 0);
        }
        free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fuzz_request((const char *)data, size);
        fuzz_response((const char *)data, size);
        if (size <= 4096)
                fuzz_format(data, size);
        return 0;
}
