/* http.c - see http.h */
#include "http.h"

#include <strings.h>

/* What the header block told us; shared by requests and responses. */
struct head_info {
        size_t head_len;          /* bytes up to and including the empty line */
        bool have_length;         /* a Content-Length header was seen */
        uint64_t content_length;  /* its value (<= the caller's limit) */
        bool conn_close;          /* "Connection: close" token seen */
        bool conn_keep_alive;     /* "Connection: keep-alive" token seen */
};

/* RFC 9110 tchar. */
static bool is_tchar(unsigned char c)
{
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
                return true;
        return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_ows(unsigned char c)
{
        return c == ' ' || c == '\t';
}

/* Field-value / reason-phrase byte: HTAB, SP, VCHAR, obs-text. */
static bool is_field_char(unsigned char c)
{
        return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Case-insensitive match of [s, s+n) against the NUL-terminated word. */
static bool span_is(const char *s, size_t n, const char *word)
{
        return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

/* Find the line starting at pos, looking no further than limit.
 * 1: line is [pos, *ret_end), the next one starts at *ret_next (CRLF or bare LF);
 * 0: no terminator before limit; -EBADMSG: NUL byte or a CR not followed by LF. */
static int next_line(const char *buf, size_t limit, size_t pos, size_t *ret_end, size_t *ret_next)
{
        for (size_t i = pos; i < limit; i++) {
                char c = buf[i];

                if (c == '\0')
                        return -EBADMSG;
                if (c == '\r') {
                        if (i + 1 < limit && buf[i + 1] != '\n')
                                return -EBADMSG;
                        continue;
                }
                if (c == '\n') {
                        *ret_end = (i > pos && buf[i - 1] == '\r') ? i - 1 : i;
                        *ret_next = i + 1;
                        return 1;
                }
        }
        return 0;
}

/* Parse a decimal Content-Length value: digits only. -EBADMSG when not a number,
 * -EMSGSIZE when above max. */
static int parse_length(const char *s, size_t n, uint64_t max, uint64_t *ret)
{
        uint64_t v = 0;
        bool big = false;

        if (n == 0)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EBADMSG;
                if (!big) {
                        v = v * 10 + (uint64_t)(s[i] - '0');
                        if (v > max)
                                big = true;
                }
        }
        if (big)
                return -EMSGSIZE;
        *ret = v;
        return 0;
}

/* Record the tokens of one Connection header value. */
static void parse_connection(const char *v, size_t n, struct head_info *h)
{
        size_t i = 0;

        while (i < n) {
                size_t start, end;

                while (i < n && (is_ows((unsigned char)v[i]) || v[i] == ','))
                        i++;
                start = i;
                while (i < n && v[i] != ',')
                        i++;
                end = i;
                while (end > start && is_ows((unsigned char)v[end - 1]))
                        end--;
                if (span_is(v + start, end - start, "close"))
                        h->conn_close = true;
                else if (span_is(v + start, end - start, "keep-alive"))
                        h->conn_keep_alive = true;
        }
}

/* Walk the header lines starting at pos up to the empty line. Bodies larger
 * than max_body give -EMSGSIZE. Returns 0 with *h filled, or -EAGAIN/-EBADMSG/
 * -EMSGSIZE/-EOPNOTSUPP. */
static int parse_headers(const char *buf, size_t len, size_t pos, uint64_t max_body,
                         struct head_info *h)
{
        size_t limit = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;

        for (;;) {
                size_t end, next, colon, vs, ve;
                const char *name;
                int r;

                r = next_line(buf, limit, pos, &end, &next);
                if (r < 0)
                        return r;
                if (r == 0)
                        return len >= HTTP_MAX_HEAD ? -EMSGSIZE : -EAGAIN;
                if (end == pos) {
                        h->head_len = next;
                        return 0;
                }

                /* obs-fold continuation lines and whitespace before the name */
                if (is_ows((unsigned char)buf[pos]))
                        return -EBADMSG;

                name = buf + pos;
                for (colon = pos; colon < end && buf[colon] != ':'; colon++)
                        if (!is_tchar((unsigned char)buf[colon]))
                                return -EBADMSG; /* includes spaces before ':' */
                if (colon == end || colon == pos)
                        return -EBADMSG;

                vs = colon + 1;
                ve = end;
                while (vs < ve && is_ows((unsigned char)buf[vs]))
                        vs++;
                while (ve > vs && is_ows((unsigned char)buf[ve - 1]))
                        ve--;
                for (size_t i = vs; i < ve; i++)
                        if (!is_field_char((unsigned char)buf[i]))
                                return -EBADMSG;

                if (span_is(name, colon - pos, "content-length")) {
                        if (h->have_length)
                                return -EBADMSG;
                        r = parse_length(buf + vs, ve - vs, max_body, &h->content_length);
                        if (r < 0)
                                return r;
                        h->have_length = true;
                } else if (span_is(name, colon - pos, "transfer-encoding") ||
                           span_is(name, colon - pos, "expect")) {
                        return -EOPNOTSUPP;
                } else if (span_is(name, colon - pos, "connection")) {
                        parse_connection(buf + vs, ve - vs, h);
                }
                pos = next;
        }
}

static const char *const methods[] = { "GET", "POST", "PUT", "DELETE" };

static int parse_request_line(const char *line, size_t n, struct http_request *req, bool *ret_http10)
{
        const char *sp1, *sp2, *target, *q, *version;
        size_t mlen, tlen, plen, qlen, vlen;
        bool known = false;

        sp1 = memchr(line, ' ', n);
        if (!sp1)
                return -EBADMSG;
        mlen = (size_t)(sp1 - line);
        if (mlen == 0)
                return -EBADMSG;
        for (size_t i = 0; i < mlen; i++)
                if (!is_tchar((unsigned char)line[i]))
                        return -EBADMSG;

        target = sp1 + 1;
        sp2 = memchr(target, ' ', n - (size_t)(target - line));
        if (!sp2)
                return -EBADMSG;
        tlen = (size_t)(sp2 - target);
        version = sp2 + 1;
        vlen = n - (size_t)(version - line);
        if (vlen == 8 && memcmp(version, "HTTP/1.1", 8) == 0)
                *ret_http10 = false;
        else if (vlen == 8 && memcmp(version, "HTTP/1.0", 8) == 0)
                *ret_http10 = true;
        else
                return -EBADMSG;

        /* origin-form only: '/', visible ASCII, no fragment, no ".." anywhere */
        if (tlen == 0 || target[0] != '/')
                return -EBADMSG;
        for (size_t i = 0; i < tlen; i++) {
                unsigned char c = (unsigned char)target[i];

                if (c <= 0x20 || c >= 0x7f || c == '#')
                        return -EBADMSG;
                if (c == '.' && i + 1 < tlen && target[i + 1] == '.')
                        return -EBADMSG;
        }

        for (size_t i = 0; i < ARRAY_SIZE(methods); i++)
                if (strlen(methods[i]) == mlen && memcmp(methods[i], line, mlen) == 0) {
                        known = true;
                        break;
                }
        if (!known)
                return -ENOSYS;

        q = memchr(target, '?', tlen);
        plen = q ? (size_t)(q - target) : tlen;
        qlen = q ? tlen - plen - 1 : 0;
        if (plen >= sizeof(req->path) || qlen >= sizeof(req->query))
                return -EMSGSIZE;

        memcpy(req->method, line, mlen);
        req->method[mlen] = '\0';
        memcpy(req->path, target, plen);
        req->path[plen] = '\0';
        if (q)
                memcpy(req->query, q + 1, qlen);
        req->query[qlen] = '\0';
        return 0;
}

int http_parse_request(const char *buf, size_t len, struct http_request *ret, size_t *ret_consumed)
{
        struct http_request req = {};
        struct head_info h = {};
        size_t limit = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;
        size_t end, next;
        bool http10 = false;
        int r;

        if (!buf && len > 0)
                return -EINVAL;
        if (!ret || !ret_consumed)
                return -EINVAL;

        r = next_line(buf, limit, 0, &end, &next);
        if (r < 0)
                return r;
        if (r == 0)
                return len >= HTTP_MAX_HEAD ? -EMSGSIZE : -EAGAIN;
        r = parse_request_line(buf, end, &req, &http10);
        if (r < 0)
                return r;

        r = parse_headers(buf, len, next, HTTP_MAX_BODY, &h);
        if (r < 0)
                return r;

        if (h.have_length && h.content_length > len - h.head_len)
                return -EAGAIN;

        if (h.conn_close)
                req.keep_alive = false;
        else
                req.keep_alive = http10 ? h.conn_keep_alive : true;
        if (h.have_length && h.content_length > 0) {
                req.body = buf + h.head_len;
                req.body_len = (size_t)h.content_length;
        }

        *ret = req;
        *ret_consumed = h.head_len + req.body_len;
        return 0;
}

int http_status_for_error(int err)
{
        switch (err) {
        case -EBADMSG:
                return 400;
        case -ENOSYS:
                return 405;
        case -EMSGSIZE:
                return 413;
        case -EOPNOTSUPP:
                return 501;
        default:
                return 500;
        }
}

const char *http_status_text(int status)
{
        switch (status) {
        case 100: return "Continue";
        case 200: return "OK";
        case 201: return "Created";
        case 202: return "Accepted";
        case 204: return "No Content";
        case 304: return "Not Modified";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 409: return "Conflict";
        case 411: return "Length Required";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 415: return "Unsupported Media Type";
        case 417: return "Expectation Failed";
        case 422: return "Unprocessable Content";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        case 505: return "HTTP Version Not Supported";
        default: return "Unknown";
        }
}

/* Join a formatted head and an optional body into one malloc'd buffer. */
static int join_head_body(const char *head, size_t head_len, const char *body, size_t body_len,
                          char **ret_buf, size_t *ret_len)
{
        char *out;

        if (body_len > SIZE_MAX - head_len - 1)
                return -ENOMEM;
        out = malloc(head_len + body_len + 1);
        if (!out)
                return -ENOMEM;
        memcpy(out, head, head_len);
        if (body_len > 0)
                memcpy(out + head_len, body, body_len);
        out[head_len + body_len] = '\0';
        *ret_buf = out;
        *ret_len = head_len + body_len;
        return 0;
}

int http_format_response_head(int status, const char *content_type, size_t body_len, bool keep_alive, char *head,
                              size_t head_size, size_t *ret_len)
{
        char ctype[320] = "";
        const char *conn = keep_alive ? "keep-alive" : "close";
        bool no_body = status == 204 || status == 304;
        int r;

        if (status < 200 || status > 599 || !head || !ret_len)
                return -EINVAL;
        if (body_len > 0 && no_body)
                return -EINVAL;
        if (content_type) {
                if (content_type[0] == '\0')
                        return -EINVAL;
                for (const char *p = content_type; *p; p++)
                        if (!is_field_char((unsigned char)*p) || *p == '\t')
                                return -EINVAL;
                r = xsnprintf(ctype, sizeof(ctype), "Content-Type: %s\r\n", content_type);
                if (r < 0)
                        return -EINVAL;
        }

        if (no_body)
                r = xsnprintf(head, head_size, "HTTP/1.1 %d %s\r\nConnection: %s\r\n\r\n",
                              status, http_status_text(status), conn);
        else
                r = xsnprintf(head, head_size,
                              "HTTP/1.1 %d %s\r\n%sContent-Length: %zu\r\nConnection: %s\r\n\r\n",
                              status, http_status_text(status), ctype, body_len, conn);
        if (r < 0)
                return r;
        *ret_len = strlen(head);
        return 0;
}

int http_format_response(int status, const char *content_type, const char *body, size_t body_len,
                         bool keep_alive, char **ret_buf, size_t *ret_len)
{
        char head[HTTP_RESPONSE_HEAD_MAX];
        size_t head_len;
        int r;

        if (!ret_buf || !ret_len || (body_len > 0 && !body))
                return -EINVAL;
        r = http_format_response_head(status, content_type, body_len, keep_alive, head, sizeof(head), &head_len);
        if (r < 0)
                return r;
        return join_head_body(head, head_len, body, body_len, ret_buf, ret_len);
}

int http_format_request(const char *method, const char *path, const char *body, size_t body_len,
                        char **ret_buf, size_t *ret_len)
{
        char head[HTTP_MAX_HEAD], length[64] = "";
        bool known = false;
        size_t plen;
        int r;

        if (!method || !path || !ret_buf || !ret_len)
                return -EINVAL;
        if (body_len > 0 && !body)
                return -EINVAL;
        for (size_t i = 0; i < ARRAY_SIZE(methods); i++)
                if (streq(method, methods[i]))
                        known = true;
        if (!known)
                return -EINVAL;
        plen = strlen(path);
        if (plen == 0 || path[0] != '/' || plen > 1024)
                return -EINVAL;
        for (size_t i = 0; i < plen; i++)
                if ((unsigned char)path[i] <= 0x20 || (unsigned char)path[i] >= 0x7f)
                        return -EINVAL;

        if (body_len > 0 || streq(method, "POST") || streq(method, "PUT")) {
                r = xsnprintf(length, sizeof(length), "%sContent-Length: %zu\r\n",
                              body_len > 0 ? "Content-Type: application/json\r\n" : "", body_len);
                if (r < 0)
                        return r;
        }
        r = xsnprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n",
                      method, path, length);
        if (r < 0)
                return r;
        return join_head_body(head, strlen(head), body, body_len, ret_buf, ret_len);
}

/* "HTTP/1.x SP 3DIGIT [SP reason]" */
static int parse_status_line(const char *line, size_t n, int *ret_status)
{
        int status;

        if (n < 12 || memcmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') ||
            line[8] != ' ')
                return -EBADMSG;
        for (size_t i = 9; i < 12; i++)
                if (line[i] < '0' || line[i] > '9')
                        return -EBADMSG;
        status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
        if (status < 100 || status > 599)
                return -EBADMSG;
        if (n > 12) {
                if (line[12] != ' ')
                        return -EBADMSG;
                for (size_t i = 13; i < n; i++)
                        if (!is_field_char((unsigned char)line[i]))
                                return -EBADMSG;
        }
        *ret_status = status;
        return 0;
}

int http_parse_response(const char *buf, size_t len, int *ret_status, const char **ret_body,
                        size_t *ret_body_len, size_t *ret_consumed)
{
        struct head_info h = {};
        size_t limit = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;
        size_t end, next, body_len = 0;
        int status, r;

        if (!buf && len > 0)
                return -EINVAL;
        if (!ret_status || !ret_body || !ret_body_len || !ret_consumed)
                return -EINVAL;

        r = next_line(buf, limit, 0, &end, &next);
        if (r < 0)
                return r;
        if (r == 0)
                return len >= HTTP_MAX_HEAD ? -EMSGSIZE : -EAGAIN;
        r = parse_status_line(buf, end, &status);
        if (r < 0)
                return r;

        r = parse_headers(buf, len, next, HTTP_MAX_RESPONSE_BODY, &h);
        if (r < 0)
                return r;

        if (status >= 200 && status != 204 && status != 304) {
                if (!h.have_length)
                        return -EBADMSG;
                if (h.content_length > len - h.head_len)
                        return -EAGAIN;
                body_len = (size_t)h.content_length;
        }

        *ret_status = status;
        *ret_body = body_len > 0 ? buf + h.head_len : NULL;
        *ret_body_len = body_len;
        *ret_consumed = h.head_len + body_len;
        return 0;
}
