/* api-internal.h - what the API's resource files share: the connection, the
 * route table row, and the helpers that answer a request. Only src/core/api*.c
 * include it.
 *
 * A request is answered exactly once: a handler either responds at once
 * (api_respond_*) or leaves one pending thing on the connection (a module
 * call, an instance operation's waiter, an observe query, a security-group
 * change) whose callback responds; the server cancels it if the client goes. */
#ifndef NOVA_API_INTERNAL_H
#define NOVA_API_INTERNAL_H

#include "api.h"
#include "http.h"
#include "instances.h"
#include "modules.h"

#include <json-c/json.h>

#define API_VERSION "0.1.0"
#define API_MAX_ARGS 3          /* captures of one route pattern */
#define API_ID_MAX 80           /* an instance or group reference longer than this names nothing */

struct api_server;
struct sg_change;

struct api_conn {
        struct api_conn *next;          /* in the server's connection list */
        struct api_server *srv;         /* the server this connection belongs to */
        int fd;
        sd_event_source *io;
        sd_event_source *idle;          /* closes a connection that stays silent */
        char *in;                       /* received bytes not yet consumed (NULL while none) */
        size_t in_len;
        size_t in_cap;                  /* allocated at in: grows up to API_MAX_INPUT, freed when empty */
        uint64_t request_start_usec;    /* monotonic time the first byte of the pending request came */
        uint64_t active_usec;           /* monotonic time of the last progress either way */
        char *out;                      /* response being written */
        size_t out_len, out_off;
        bool busy;                      /* a request is being handled */
        bool keep_alive;                /* of the request being handled */
        size_t consumed;                /* bytes of `in` the current request used */
        struct module_call *call;       /* pending module call, cancelled if we go away */
        struct lifecycle_waiter *waiter; /* pending instance operation (?wait=1), cancelled likewise */
        char port_uuid[UUID_STR_LEN + 1]; /* request context for module replies */
        char chassis[OVN_CHASSIS_MAX + 1]; /* a migration's prepare: the source's OVN chassis, "" unknown */
        struct sg_change *change;       /* security-group change in flight; it outlives us */
        struct observe_query *observe;  /* host/stats/metrics query in flight, cancelled if we go away */
        int passed_fd;                  /* a descriptor the client sent (SCM_RIGHTS) with the request
                                         * being handled, -1 none; closed when it is answered */
        bool fd_refused;                /* more than one came: the request is refused */
        struct image_import *import;    /* image import in flight (api-images.c); it outlives us */
        struct image *deleting;         /* image whose volume is being deleted (api-images.c) */
};

/* What a route pattern captured: "{name}" segments and a final "*" rest, in order. */
struct api_args {
        const char *arg[API_MAX_ARGS];
};

typedef void (*api_handler)(struct api_conn *c, const struct http_request *req, const struct api_args *a);

/* One row of a resource's route table. method NULL: any method (a fallback row,
 * placed after the rows it backs up). pattern: literal segments, "{name}" for
 * one segment (possibly empty), a final "*" for the rest (possibly empty, '/'
 * included). The first matching row of the first matching table wins. */
struct api_route {
        const char *method;
        const char *pattern;
        api_handler handler;
};

/* The resource tables, each ended by a row with pattern NULL (api-*.c). */
extern const struct api_route api_status_routes[];
extern const struct api_route api_port_routes[];
extern const struct api_route api_instance_routes[];
extern const struct api_route api_migrate_routes[]; /* api-migrate.c: live migration's steps */
extern const struct api_route api_secgroup_routes[];
extern const struct api_route api_image_routes[];

/* Match path against a route pattern (see struct api_route): true with the
 * captures in *ret (copied into buf, one path-sized slot each), or false. */
bool api_route_match(const char *pattern, const char *path, char buf[API_MAX_ARGS][HTTP_PATH_MAX],
                     struct api_args *ret);

/* The server's context (configuration, snap or not, ...). */
const struct api_context *api_context_of(const struct api_conn *c);

/* Queue the response (body copied). */
void api_respond_typed(struct api_conn *c, int status, const char *content_type, const char *body);
/* Respond with obj and put it. */
void api_respond_json(struct api_conn *c, int status, struct json_object *obj);
/* A large response body built piece by piece in the buffer that becomes the
 * response itself (room for the head is kept at its front): a listing of N
 * instances costs its text once, never a json-c tree of all N plus two copies
 * of the text (the core's peak memory with 1000 instances). Start with
 * api_body_init, add with api_body_add/api_body_add_json, end with
 * api_respond_body, which takes the buffer (or api_body_free). */
struct api_body {
        char *buf;                      /* malloc'd; the body starts at HTTP_RESPONSE_HEAD_MAX */
        size_t len;                     /* bytes of body */
        size_t cap;                     /* bytes allocated at buf */
        bool failed;                    /* an allocation failed: api_respond_body answers 500 */
};
void api_body_init(struct api_body *b);
void api_body_add(struct api_body *b, const char *text, size_t len);
/* Add obj's plain JSON text and put obj (NULL: added as failed). */
void api_body_add_json(struct api_body *b, struct json_object *obj);
void api_body_free(struct api_body *b);
/* Respond with b's body (content_type, as api_respond_typed), taking its buffer. */
void api_respond_body(struct api_conn *c, int status, const char *content_type, struct api_body *b);
/* {"error": {code, message, plug?, fix?}}; plug < 0: no plug is to blame. */
void api_respond_error(struct api_conn *c, int status, const char *message, int plug);
/* 405, for the fallback rows. */
void api_method_not_allowed(struct api_conn *c, const struct http_request *req, const struct api_args *a);
/* HTTP status for an -errno. */
int api_status_for_errno(int r);
/* The request body as a JSON object (no body: an empty one); on error responds
 * (413 or 400) and returns -errno. */
int api_read_body(struct api_conn *c, const struct http_request *req, struct json_object **ret);
/* ?wait=1 or ?wait=true */
bool api_query_wait(const struct http_request *req);
/* Send w to plug's module with cb as the reply handler (c->call pending); when
 * the call cannot be made, responds with the error (blaming the plug when it is
 * not ready). */
void api_call_module(struct api_conn *c, enum plug_id plug, struct proto_writer *w, module_call_cb cb);
/* Answer a failed module call: the error, blaming plug when it is not connected. */
void api_respond_module_error(struct api_conn *c, const struct module_result *res, enum plug_id plug);

/* Take the descriptor passed with the request being handled (-1 when none). */
int api_take_passed_fd(struct api_conn *c);
/* An import in flight whose client went away (api-images.c). */
void api_image_upload_abandon(struct api_conn *c);

/* An instance of the store by uuid or name; NULL when none (api-instances.c). */
struct instance *api_find_instance(const struct api_conn *c, const char *id);
/* The instance a request's id argument names, or NULL after answering 404 (api-instances.c). */
struct instance *api_instance_arg(struct api_conn *c, const char *id);
/* The API view of an instance (caller puts it). */
struct json_object *api_instance_json(const struct api_conn *c, const struct instance *inst);

#endif
