/* schema.c - see schema.h */
#include "schema.h"

#include "names.h"

#include <stdarg.h>

const struct schema_field schema_empty_req[] = {
        { .name = NULL },
};

const struct schema_field schema_port_only_req[] = {
        { .name = "port_uuid", .kind = SCH_UUID, .required = true },
        { .name = NULL },
};

const struct schema_field schema_instance_only_req[] = {
        { .name = "instance_uuid", .kind = SCH_UUID, .required = true },
        { .name = NULL },
};

const struct schema_field schema_page_req[] = {
        { .name = "after", .kind = SCH_UUID },
        { .name = "limit", .kind = SCH_U64, .min = 1, .max = PROTO_MAX_ITEMS },
        { .name = NULL },
};

_printf_(3, 4) static int bad(char *err, size_t errlen, const char *fmt, ...)
{
        va_list ap;

        if (errlen > 0) {
                va_start(ap, fmt);
                (void)vsnprintf(err, errlen, fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

static const char *kind_name(enum schema_kind k)
{
        switch (k) {
        case SCH_UUID:
        case SCH_MAC:
        case SCH_STR:
                return "a string";
        case SCH_U64:
                return "an unsigned integer";
        case SCH_BOOL:
                return "a boolean";
        case SCH_OBJ:
                return "an object";
        case SCH_LIST:
                return "a list";
        }
        return "?";
}

static uint8_t wire_type(enum schema_kind k)
{
        switch (k) {
        case SCH_UUID:
        case SCH_MAC:
        case SCH_STR:
                return PV_STR;
        case SCH_U64:
                return PV_U64;
        case SCH_BOOL:
                return PV_BOOL;
        case SCH_OBJ:
                return PV_OBJ;
        case SCH_LIST:
                return PV_LIST;
        }
        return 0;
}

static int check_scalar(const char *name, enum schema_kind kind, uint64_t min, uint64_t max,
                        bool (*str_ok)(const char *), const struct schema_field *fields,
                        const struct proto_value *v, char *err, size_t errlen)
{
        if (v->type != wire_type(kind))
                return bad(err, errlen, "%s: must be %s", name, kind_name(kind));
        switch (kind) {
        case SCH_UUID:
                if (!uuid_is_valid(v->v.s))
                        return bad(err, errlen, "%s: not a canonical lowercase UUID", name);
                return 0;
        case SCH_MAC:
                if (!mac_is_valid(v->v.s))
                        return bad(err, errlen, "%s: " MAC_RULE_TEXT, name);
                return 0;
        case SCH_U64:
                if (v->v.u < min || v->v.u > max)
                        return bad(err, errlen, "%s: %llu is outside %llu..%llu", name,
                                   (unsigned long long)v->v.u, (unsigned long long)min,
                                   (unsigned long long)max);
                return 0;
        case SCH_STR:
                if (v->count < min || v->count > max)
                        return bad(err, errlen, "%s: length %u is outside %llu..%llu", name, v->count,
                                   (unsigned long long)min, (unsigned long long)max);
                if (str_ok && !str_ok(v->v.s))
                        return bad(err, errlen, "%s: invalid value", name);
                return 0;
        case SCH_BOOL:
                return 0;
        case SCH_OBJ:
                return schema_check(fields, v, err, errlen);
        case SCH_LIST:
                break;
        }
        return bad(err, errlen, "%s: unsupported schema", name);
}

static int check_field(const struct schema_field *f, const struct proto_value *v, char *err, size_t errlen)
{
        if (f->kind != SCH_LIST)
                return check_scalar(f->name, f->kind, f->min, f->max, f->str_ok, f->fields, v, err, errlen);
        if (v->type != PV_LIST)
                return bad(err, errlen, "%s: must be a list", f->name);
        if (v->count < f->min || v->count > f->max)
                return bad(err, errlen, "%s: %u items, allowed %llu..%llu", f->name, v->count,
                           (unsigned long long)f->min, (unsigned long long)f->max);
        for (const struct proto_value *item = v->child; item; item = item->next) {
                int r = check_scalar(f->name, f->item, f->item_min, f->item_max, f->str_ok, f->fields, item,
                                     err, errlen);
                if (r < 0)
                        return r;
        }
        return 0;
}

int schema_check(const struct schema_field *fields, const struct proto_value *obj, char *err, size_t errlen)
{
        if (!obj || obj->type != PV_OBJ)
                return bad(err, errlen, "body: must be an object");
        for (const struct proto_value *m = obj->child; m; m = m->next) {
                const struct schema_field *f;
                for (f = fields; f->name; f++)
                        if (streq(f->name, m->key))
                                break;
                if (!f->name)
                        return bad(err, errlen, "%s: unknown field", m->key);
                int r = check_field(f, m, err, errlen);
                if (r < 0)
                        return r;
        }
        for (const struct schema_field *f = fields; f->name; f++)
                if (f->required && !proto_get(obj, f->name))
                        return bad(err, errlen, "%s: required field missing", f->name);
        return 0;
}

const struct proto_entrypoint *module_protocol_find(const struct module_protocol *mp, const char *name)
{
        for (size_t i = 0; i < mp->n_entrypoints; i++)
                if (streq(mp->entrypoints[i].name, name))
                        return &mp->entrypoints[i];
        return NULL;
}
