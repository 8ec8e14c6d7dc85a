/* schema.h - exact validation of decoded protocol bodies against a static
 * per-entrypoint schema. Unknown members are refused, required ones must be
 * present, every value is range- and syntax-checked. */
#ifndef NOVA_SCHEMA_H
#define NOVA_SCHEMA_H

#include "proto.h"

enum schema_kind {
        SCH_UUID = 1,  /* canonical lowercase UUID string */
        SCH_MAC,       /* canonical lowercase unicast MAC string */
        SCH_U64,       /* unsigned integer in [min, max] */
        SCH_STR,       /* string, length in [min, max], optional extra check */
        SCH_BOOL,
        SCH_OBJ,       /* object with members `fields` */
        SCH_LIST,      /* list, item count in [min, max], items of kind `item` */
};

struct schema_field {
        const char *name;                  /* member name; NULL ends a field array */
        enum schema_kind kind;
        bool required;
        uint64_t min, max;                 /* U64 value / STR length / LIST count bounds */
        bool (*str_ok)(const char *s);     /* SCH_STR: optional syntax check */
        const struct schema_field *fields; /* SCH_OBJ members, or LIST items' members when item == SCH_OBJ */
        enum schema_kind item;             /* SCH_LIST: kind of each item (scalar kinds use min/max of item_range) */
        uint64_t item_min, item_max;       /* SCH_LIST of U64/STR: bounds of each item */
};

/* Request schemas many entrypoints share: no field at all ({}), only
 * {"port_uuid"}, only {"instance_uuid"} (required). */
extern const struct schema_field schema_empty_req[];
extern const struct schema_field schema_port_only_req[];
extern const struct schema_field schema_instance_only_req[];

/* A page of a listing (tap_list, domain_list, port_list): {"after"?: UUID,
 * "limit"?: 1..PROTO_MAX_ITEMS}. The module lists its items in ascending
 * order of their UUID (strcmp), only those above `after`, at most `limit`
 * and what one reply frame holds, and answers
 *   { <items>: [...], total: every item of ours (not just this page),
 *     truncated: more items follow the last one listed,
 *     next: the cursor for the next page, the last UUID this page covered
 *           (present when truncated) }
 * so a caller that wants everything asks again with after = next until
 * truncated is false. An item created or removed between two pages may be
 * missed or seen; callers that judge by absence run again later. */
extern const struct schema_field schema_page_req[];

/* Validate obj (an object) against fields. 0 or -EINVAL with e.g.
 * "port_uuid: not a canonical lowercase UUID" in err. */
int schema_check(const struct schema_field *fields, const struct proto_value *obj, char *err, size_t errlen);

/* An entrypoint as both sides know it: the module dispatches it, the core
 * validates requests against the same schema before sending. */
struct proto_entrypoint {
        const char *name;                   /* e.g. "tap_create" */
        const struct schema_field *request; /* request body schema */
        bool privileged;                    /* uses the module's capabilities: one audit line per call */
        bool takes_fd;                      /* the request carries exactly one descriptor (SCM_RIGHTS), e.g.
                                             * the read end of a stream of image bytes; others carry none */
};

/* The whole protocol of one module: what it must announce in its hello. */
struct module_protocol {
        int plug;                                 /* enum plug_id */
        const struct proto_entrypoint *entrypoints;
        size_t n_entrypoints;
};

const struct proto_entrypoint *module_protocol_find(const struct module_protocol *mp, const char *name);

#endif
