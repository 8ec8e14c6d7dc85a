/* proto.h - the module protocol: framed, typed, bounded messages between the
 * core and the plug modules (our privsep channel).
 *
 * One frame = one SOCK_SEQPACKET datagram (the kernel keeps the boundaries;
 * a datagram larger than PROTO_MAX_FRAME is detected with MSG_TRUNC and is a
 * protocol violation). Layout, little endian:
 *
 *   u32 magic "NOVA" | u16 version | u16 type | u32 id | i32 status
 *   u8 name_len | name            entrypoint (request/reply/event) or plug (hello)
 *   body: an object               u16 count, then count members
 *   member: u8 key_len | key | value
 *   value:  u8 tag | payload      U64/I64: 8 bytes; STR: u16 len + bytes;
 *                                 BOOL: u8 0|1; LIST: u16 n + n values;
 *                                 OBJ: u16 n + n members
 *
 * Decoding never allocates: the tree lives in the caller's struct proto_msg.
 * Every length, count, depth, key and string is checked; anything off is
 * -EBADMSG with a reason, and the caller closes the connection. */
#ifndef NOVA_PROTO_H
#define NOVA_PROTO_H

#include "util.h"

#define PROTO_MAGIC 0x41564f4eU /* "NOVA" */
#define PROTO_VERSION 1
#define PROTO_HEADER_SIZE 16
#define PROTO_MAX_FRAME 65536      /* bytes in one frame */
#define PROTO_MAX_NODES 2048       /* values in one frame */
#define PROTO_MAX_DEPTH 4          /* nesting of lists/objects below the root */
#define PROTO_MAX_NAME 32          /* entrypoint, plug and key names */
#define PROTO_MAX_STR 4096         /* bytes in one string */
#define PROTO_MAX_MEMBERS 64       /* members of one object */
#define PROTO_MAX_ITEMS 1024       /* items of one list */

enum proto_type {
        PROTO_HELLO = 1,   /* module -> core: plug, version, entrypoints; core -> module: accepted */
        PROTO_REQUEST = 2, /* core -> module: call an entrypoint */
        PROTO_REPLY = 3,   /* module -> core: result of request `id` (status 0 or -errno) */
        PROTO_EVENT = 4,   /* module -> core: something happened (e.g. a domain stopped) */
};

enum proto_vtype {
        PV_U64 = 1,
        PV_I64 = 2,
        PV_STR = 3,
        PV_BOOL = 4,
        PV_LIST = 5,
        PV_OBJ = 6,
};

struct proto_value {
        uint8_t type;                    /* enum proto_vtype */
        const char *key;                 /* member name (NUL-terminated); NULL for list items and the root */
        uint32_t count;                  /* LIST/OBJ: number of children; STR: length in bytes */
        union {
                uint64_t u;              /* PV_U64 */
                int64_t i;               /* PV_I64 */
                bool b;                  /* PV_BOOL */
                const char *s;           /* PV_STR: NUL-terminated copy, valid UTF-8, no control chars */
        } v;
        const struct proto_value *child; /* LIST/OBJ: first child, or NULL */
        const struct proto_value *next;  /* next sibling, or NULL */
};

/* A decoded frame. Large (~170 KiB): allocate once per connection. */
struct proto_msg {
        uint16_t type;                   /* enum proto_type */
        uint32_t id;                     /* request id (0 for hello/event) */
        int32_t status;                  /* reply: 0 or -errno */
        char name[PROTO_MAX_NAME + 1];   /* entrypoint or plug name */
        const struct proto_value *body;  /* root object, never NULL after a successful decode */
        struct proto_value nodes[PROTO_MAX_NODES]; /* arena for the tree */
        size_t n_nodes;
        char strings[PROTO_MAX_FRAME + 2 * PROTO_MAX_NODES]; /* arena for keys and strings */
        size_t strings_used;
};

/* Decode one frame into *msg. 0, or -EBADMSG / -EMSGSIZE / -EPROTONOSUPPORT
 * with a one-line reason in err. *msg is garbage after a failure. */
int proto_decode(const void *buf, size_t len, struct proto_msg *msg, char *err, size_t errlen) _warn_unused_result_;

/* Builder for one frame. Errors are sticky: the first one is returned by pw_finish. */
struct proto_writer {
        uint8_t buf[PROTO_MAX_FRAME];    /* the frame being built */
        size_t len;                      /* bytes used */
        int err;                         /* first error (-EMSGSIZE, -EINVAL), 0 when fine */
        unsigned depth;                  /* open containers, 0 = root object */
        unsigned n_values;               /* values so far, root included (decoder's PROTO_MAX_NODES) */
        struct {
                size_t count_off;        /* where the container's u16 count lives */
                uint32_t count;          /* children so far */
                bool is_list;            /* items have no keys */
        } stack[PROTO_MAX_DEPTH + 1];
};

void pw_init(struct proto_writer *w, enum proto_type type, uint32_t id, int32_t status, const char *name);
void pw_u64(struct proto_writer *w, const char *key, uint64_t v);
void pw_i64(struct proto_writer *w, const char *key, int64_t v);
void pw_str(struct proto_writer *w, const char *key, const char *s);
void pw_bool(struct proto_writer *w, const char *key, bool v);
void pw_list_begin(struct proto_writer *w, const char *key);
void pw_list_end(struct proto_writer *w);
void pw_obj_begin(struct proto_writer *w, const char *key);
void pw_obj_end(struct proto_writer *w);
/* Patch the id of a built frame (the core assigns ids at send time). */
void pw_set_id(struct proto_writer *w, uint32_t id);
/* Close the frame. 0 and the frame in ret_buf/ret_len (pointing into w), or the first error. */
int pw_finish(struct proto_writer *w, const uint8_t **ret_buf, size_t *ret_len) _warn_unused_result_;

/* Member lookup in an object; NULL when absent or obj is not an object. */
const struct proto_value *proto_get(const struct proto_value *obj, const char *key);
/* Typed lookups: the value, or dflt when absent or of another type. */
const char *proto_get_str(const struct proto_value *obj, const char *key, const char *dflt);
uint64_t proto_get_u64(const struct proto_value *obj, const char *key, uint64_t dflt);
bool proto_get_bool(const struct proto_value *obj, const char *key, bool dflt);

/* A copy of the value tree v (v and everything below it: members, items, keys and strings) in
 * one allocation, for a request served after the frame it came in is gone (the decode arena is
 * reused by the next frame); the copy's root has no sibling. free() frees it. NULL when out of
 * memory. */
struct proto_value *proto_value_dup(const struct proto_value *v) _warn_unused_result_;

/* True when s (len bytes) is valid UTF-8 without control characters. */
bool proto_text_is_clean(const char *s, size_t len);
/* Make foreign text (libvirt or OVS error messages, possibly translated or
 * cut mid-character) safe to send: control characters become spaces and, if
 * the result is still not clean UTF-8, every non-ASCII byte becomes '?'. */
void proto_text_sanitize(char *s);
/* snprintf into dst (cut to size, for operator text) and sanitize it. */
void proto_text_printf(char *dst, size_t size, const char *fmt, ...) _printf_(3, 4);

/* True for names: 1..PROTO_MAX_NAME of [a-z0-9_-], starting with a letter. */
bool proto_name_is_valid(const char *s, size_t len);

const char *proto_type_name(uint16_t type);

/* Receive one frame (one SOCK_SEQPACKET datagram) from fd into buf, which
 * holds PROTO_MAX_FRAME + 1 bytes; flags are added to recv()'s (e.g.
 * MSG_DONTWAIT). On SOCK_SEQPACKET a read of 0 bytes is both how the end of
 * the stream shows and what an empty datagram gives: the two are told apart by
 * the socket's receive-shutdown state (POLLRDHUP/POLLHUP, set when the peer
 * closed or shut down). Returns the frame's length (1..PROTO_MAX_FRAME), 0 at
 * the end of the stream, -EBADMSG for an empty datagram from a live peer
 * (a protocol violation: every frame has a 16-byte header), -EMSGSIZE for a
 * datagram larger than PROTO_MAX_FRAME (*ret_size: its size), or -errno
 * (-EAGAIN, -EINTR included). An empty datagram sent just before the peer
 * closed counts as the end of the stream: the peer is gone either way. */
ssize_t proto_recv_frame(int fd, uint8_t *buf, int flags, size_t *ret_size);

/* proto_recv_frame() that also takes at most one file descriptor passed with
 * the frame (SCM_RIGHTS, received close-on-exec). *ret_fd is the descriptor or
 * -1 when none came; the caller owns it. A frame carrying more than one
 * descriptor, other ancillary data or a truncated control message is a
 * protocol violation: every descriptor received is closed and -EPROTO is
 * returned. Other results as proto_recv_frame() (no descriptor is kept then). */
ssize_t proto_recv_frame_fd(int fd, uint8_t *buf, int flags, size_t *ret_size, int *ret_fd);

/* Send one frame of len bytes on fd with one descriptor passed_fd attached
 * (SCM_RIGHTS); passed_fd < 0 sends the frame alone. The caller keeps its
 * copy of passed_fd. 0 or -errno (-EINTR retried). */
int proto_send_frame_fd(int fd, const uint8_t *buf, size_t len, int passed_fd);

#endif
