/* fuzz-api-route.c - libFuzzer target for the API's path decoder: a request
 * parsed by http_parse_request(), then matched by api_route_match() against
 * every row of every route table of the core (src/core/api-*.c), and the
 * query by api_query_wait(). Contracts checked: a "{name}" capture holds no
 * '/', a capture fits HTTP_PATH_MAX, putting the captures back into the
 * pattern gives the path again byte for byte, and a path that matches a row
 * with no capture is that row's pattern. The input is also tried as a bare
 * path (NUL-terminated, at most HTTP_PATH_MAX - 1 bytes, starting with '/'). */
#include "api-internal.h"

#define CHECK(x)                                                                              \
        do {                                                                                  \
                if (!(x)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
                        abort();                                                              \
                }                                                                             \
        } while (0)

static const struct api_route *const tables[] = {
        api_status_routes, api_port_routes, api_instance_routes, api_secgroup_routes,
};

/* The pattern with its captures put back. */
static void check_rebuilds(const char *pattern, const char *path, const struct api_args *a)
{
        char out[2 * HTTP_PATH_MAX];
        size_t len = 0, n = 0;

        for (const char *p = pattern; *p;) {
                const char *end = strchrnul(p + 1, '/');
                size_t seg = (size_t)(end - p);

                CHECK(*p == '/');
                CHECK(len + 1 < sizeof(out));
                out[len++] = '/';
                if (p[1] == '{' || (p[1] == '*' && seg == 2)) {
                        const char *arg = a->arg[n++];
                        CHECK(arg != NULL);
                        CHECK(strlen(arg) < HTTP_PATH_MAX);
                        CHECK(p[1] == '*' || !strchr(arg, '/'));
                        CHECK(len + strlen(arg) < sizeof(out));
                        memcpy(out + len, arg, strlen(arg));
                        len += strlen(arg);
                } else {
                        CHECK(len + seg - 1 < sizeof(out));
                        memcpy(out + len, p + 1, seg - 1);
                        len += seg - 1;
                }
                p = end;
        }
        out[len] = '\0';
        CHECK(n <= API_MAX_ARGS);
        for (size_t i = n; i < API_MAX_ARGS; i++)
                CHECK(a->arg[i] == NULL);
        CHECK(streq(out, path));
        if (n == 0)
                CHECK(streq(pattern, path));
}

static void match_all(const char *path)
{
        for (size_t t = 0; t < ARRAY_SIZE(tables); t++)
                for (const struct api_route *r = tables[t]; r->pattern; r++) {
                        char buf[API_MAX_ARGS][HTTP_PATH_MAX];
                        struct api_args a = { { (const char *)1, (const char *)1, (const char *)1 } };
                        struct api_args untouched = a;

                        if (api_route_match(r->pattern, path, buf, &a))
                                check_rebuilds(r->pattern, path, &a);
                        else
                                CHECK(memcmp(&a, &untouched, sizeof(a)) == 0);
                }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct http_request req;
        char path[HTTP_PATH_MAX];
        size_t used, n;

        if (http_parse_request((const char *)data, size, &req, &used) == 0) {
                match_all(req.path);
                (void)api_query_wait(&req);
        }
        /* the bytes as a bare path */
        n = size < sizeof(path) - 1 ? size : sizeof(path) - 1;
        memcpy(path, data, n);
        path[n] = '\0';
        if (path[0] == '/')
                match_all(path);
        return 0;
}
