/* apiclient.h - a blocking client of the nova-compute REST/JSON API over its
 * unix socket: one request, one response. Used by the CLI and the tests. */
#ifndef NOVA_APICLIENT_H
#define NOVA_APICLIENT_H

#include "util.h"

#include <json-c/json.h>

#define APICLIENT_TIMEOUT_MS 60000

/* Send method path (body may be NULL) to the API at socket_path and parse the
 * JSON response. Returns the HTTP status (and *ret, to json_object_put) or
 * -errno: -ENOENT/-ECONNREFUSED (no core), -ETIMEDOUT, -EBADMSG (not HTTP/JSON). */
int api_request(const char *socket_path, const char *method, const char *path, const char *body, int timeout_ms,
                struct json_object **ret);

/* Connect to socket_path and send the request without waiting for the answer
 * (tests use it to have a request in flight). Returns the fd or -errno. */
int api_send_request(const char *socket_path, const char *method, const char *path, const char *body);
/* The same with one descriptor passed along (SCM_RIGHTS with the request's
 * first bytes): image import. The caller keeps its copy. fd or -errno. */
int api_send_request_fd(const char *socket_path, const char *method, const char *path, const char *body, int passed_fd);
/* Read and parse the response on fd (from api_send_request). Same returns as api_request. */
int api_read_response(int fd, int timeout_ms, struct json_object **ret);

#endif
