/* apiclient.c - see apiclient.h */
#include "apiclient.h"

#include "http.h"

#include <assert.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

/* Send buf on fd with passed_fd riding on its first byte(s) (SCM_RIGHTS); the rest follows. */
static int send_with_fd(int fd, const char *buf, size_t len, int passed_fd)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int))];
        } control;
        struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                             .msg_controllen = sizeof(control.buf) };
        struct cmsghdr *c;
        ssize_t k;

        memset(&control, 0, sizeof(control));
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &passed_fd, sizeof(int));
        do
                k = sendmsg(fd, &mh, MSG_NOSIGNAL);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return -errno;
        return (size_t)k < len ? write_all(fd, buf + k, len - (size_t)k) : 0;
}

int api_send_request_fd(const char *socket_path, const char *method, const char *path, const char *body, int passed_fd)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *req = NULL;
        size_t req_len;
        int r;

        assert(socket_path && method && path);
        if (strscpy(sa.sun_path, socket_path, sizeof(sa.sun_path)) < 0)
                return -ENAMETOOLONG;
        r = http_format_request(method, path, body, body ? strlen(body) : 0, &req, &req_len);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -errno;
        r = passed_fd >= 0 ? send_with_fd(fd, req, req_len, passed_fd) : write_all(fd, req, req_len);
        if (r < 0)
                return r;
        return TAKE_FD(fd);
}

int api_send_request(const char *socket_path, const char *method, const char *path, const char *body)
{
        return api_send_request_fd(socket_path, method, path, body, -1);
}

int api_read_response(int fd, int timeout_ms, struct json_object **ret)
{
        _cleanup_free_ char *resp = NULL;
        size_t resp_len = 0, cap = 64 * 1024, consumed, body_len;
        uint64_t deadline = now_usec() + (uint64_t)timeout_ms * 1000;
        const char *rbody;
        struct json_object *obj;
        int status, r;

        resp = malloc(cap);
        if (!resp)
                return -ENOMEM;
        for (;;) {
                struct pollfd p = { fd, POLLIN, 0 };
                uint64_t now = now_usec();
                ssize_t k;

                r = http_parse_response(resp, resp_len, &status, &rbody, &body_len, &consumed);
                if (r == 0)
                        break;
                if (r != -EAGAIN)
                        return -EBADMSG;
                if (resp_len == cap) {
                        char *n;
                        if (cap >= HTTP_MAX_HEAD + HTTP_MAX_RESPONSE_BODY)
                                return -EMSGSIZE;
                        n = realloc(resp, cap * 2);
                        if (!n)
                                return -ENOMEM;
                        resp = n;
                        cap *= 2;
                }
                if (now >= deadline)
                        return -ETIMEDOUT;
                r = poll(&p, 1, (int)((deadline - now) / 1000) + 1);
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r <= 0)
                        continue;
                k = read(fd, resp + resp_len, cap - resp_len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -ECONNRESET;
                resp_len += (size_t)k;
        }
        if (rbody) {
                struct json_tokener *tok = json_tokener_new_ex(16);
                if (!tok)
                        return -ENOMEM;
                obj = json_tokener_parse_ex(tok, rbody, (int)body_len);
                if (json_tokener_get_error(tok) != json_tokener_success) {
                        json_object_put(obj);
                        obj = NULL;
                }
                json_tokener_free(tok);
        } else
                obj = json_object_new_object();
        if (!obj)
                return -EBADMSG;
        *ret = obj;
        return status;
}

int api_request(const char *socket_path, const char *method, const char *path, const char *body, int timeout_ms,
                struct json_object **ret)
{
        _cleanup_close_ int fd = api_send_request(socket_path, method, path, body);

        if (fd < 0)
                return fd;
        return api_read_response(fd, timeout_ms, ret);
}
