/* fw-protocol.c - request schemas of the firewall-control entrypoints. */
#include "fw-protocol.h"

#include "plugs.h"

static bool str_is_ip(const char *s) { return ip_is_valid(s); }
static bool str_is_cidr(const char *s) { return cidr_is_canonical(s); }
static bool str_is_direction(const char *s) { return streq(s, "ingress") || streq(s, "egress"); }
static bool str_is_rule_text(const char *s)
{
        struct secrule r;

        return secrule_parse(s, &r) == 0;
}

static const struct schema_field rule_fields[] = {
        { .name = "direction", .kind = SCH_STR, .required = true, .min = 6, .max = 7, .str_ok = str_is_direction },
        { .name = "ethertype", .kind = SCH_U64, .required = true, .min = 4, .max = 6 },
        { .name = "protocol", .kind = SCH_U64, .min = 0, .max = 255 },
        { .name = "port_min", .kind = SCH_U64, .min = 1, .max = 65535 },
        { .name = "port_max", .kind = SCH_U64, .min = 1, .max = 65535 },
        { .name = "icmp_type", .kind = SCH_U64, .min = 0, .max = 255 },
        { .name = "icmp_code", .kind = SCH_U64, .min = 0, .max = 255 },
        { .name = "remote", .kind = SCH_STR, .min = 4, .max = CIDR_STR_MAX - 1, .str_ok = str_is_cidr },
        { .name = NULL },
};

static const struct schema_field group_fields[] = {
        { .name = "id", .kind = SCH_UUID, .required = true },
        /* one of the two (the module refuses both or neither) */
        { .name = "rules", .kind = SCH_LIST, .min = 0, .max = PORT_MAX_RULES, .item = SCH_OBJ, .fields = rule_fields },
        { .name = "rule_texts", .kind = SCH_LIST, .min = 0, .max = PORT_MAX_RULES, .item = SCH_STR, .item_min = 1,
          .item_max = SECRULE_TEXT_MAX - 1, .str_ok = str_is_rule_text },
        { .name = NULL },
};

static const struct schema_field apply_req[] = {
        { .name = "port_uuid", .kind = SCH_UUID, .required = true },
        { .name = "mac", .kind = SCH_MAC, .required = true },
        { .name = "ips", .kind = SCH_LIST, .required = true, .min = 0, .max = PORT_MAX_IPS, .item = SCH_STR,
          .item_min = 2, .item_max = IP_STR_MAX - 1, .str_ok = str_is_ip },
        { .name = "groups", .kind = SCH_LIST, .required = true, .min = 0, .max = PORT_MAX_GROUPS, .item = SCH_OBJ,
          .fields = group_fields },
        { .name = NULL },
};

static const struct schema_field batch_port_fields[] = {
        { .name = "port_uuid", .kind = SCH_UUID, .required = true },
        { .name = "mac", .kind = SCH_MAC, .required = true },
        { .name = "ips", .kind = SCH_LIST, .required = true, .min = 0, .max = PORT_MAX_IPS, .item = SCH_STR,
          .item_min = 2, .item_max = IP_STR_MAX - 1, .str_ok = str_is_ip },
        { .name = "groups", .kind = SCH_LIST, .required = true, .min = 0, .max = PORT_MAX_GROUPS, .item = SCH_UUID },
        { .name = NULL },
};

static const struct schema_field apply_many_req[] = {
        { .name = "groups", .kind = SCH_LIST, .required = true, .min = 0, .max = FW_MAX_BATCH_GROUPS,
          .item = SCH_OBJ, .fields = group_fields },
        { .name = "ports", .kind = SCH_LIST, .required = true, .min = 1, .max = FW_MAX_BATCH, .item = SCH_OBJ,
          .fields = batch_port_fields },
        { .name = NULL },
};

/* A page of rules_list: the cursors of both lists (fw-protocol.h). */
static const struct schema_field list_req[] = {
        { .name = "after", .kind = SCH_UUID },
        { .name = "groups_after", .kind = SCH_UUID },
        { .name = "limit", .kind = SCH_U64, .min = 1, .max = PROTO_MAX_ITEMS },
        { .name = NULL },
};

/* Changing the ruleset uses CAP_NET_ADMIN: audited. Reads are not. */
const struct proto_entrypoint fw_entrypoints[_FW_MAX] = {
        [FW_PORT_RULES_APPLY] = { "port_rules_apply", apply_req, true },
        [FW_PORTS_RULES_APPLY] = { "ports_rules_apply", apply_many_req, true },
        [FW_PORT_RULES_REMOVE] = { "port_rules_remove", schema_port_only_req, true },
        [FW_RULES_LIST] = { "rules_list", list_req, false },
        [FW_RULES_GET] = { "rules_get", schema_port_only_req, false },
};

const struct module_protocol fw_protocol = {
        .plug = PLUG_FIREWALL_CONTROL,
        .entrypoints = fw_entrypoints,
        .n_entrypoints = _FW_MAX,
};

void fw_rule_write(struct proto_writer *w, const struct secrule *r)
{
        char cidr[CIDR_STR_MAX];

        pw_str(w, "direction", r->dir == SECRULE_EGRESS ? "egress" : "ingress");
        pw_u64(w, "ethertype", r->family);
        if (r->proto >= 0)
                pw_u64(w, "protocol", (uint64_t)r->proto);
        if (r->port_min) {
                pw_u64(w, "port_min", r->port_min);
                pw_u64(w, "port_max", r->port_max);
        }
        if (r->icmp_type >= 0)
                pw_u64(w, "icmp_type", (uint64_t)r->icmp_type);
        if (r->icmp_code >= 0)
                pw_u64(w, "icmp_code", (uint64_t)r->icmp_code);
        if (r->has_remote) {
                cidr_format(&r->remote, cidr);
                pw_str(w, "remote", cidr);
        }
}

int fw_rule_read(const struct proto_value *o, struct secrule *ret, char *err, size_t errlen)
{
        struct secrule r = { .proto = -1, .icmp_type = -1, .icmp_code = -1 };
        const struct proto_value *v;
        int k;

        r.dir = streq(proto_get_str(o, "direction", ""), "egress") ? SECRULE_EGRESS : SECRULE_INGRESS;
        r.family = (uint8_t)proto_get_u64(o, "ethertype", 0);
        if ((v = proto_get(o, "protocol")))
                r.proto = (int16_t)v->v.u;
        if (proto_get(o, "port_min") || proto_get(o, "port_max")) {
                r.port_min = (uint16_t)proto_get_u64(o, "port_min", 0);
                r.port_max = (uint16_t)proto_get_u64(o, "port_max", 0);
                if (!r.port_min || !r.port_max) {
                        (void)snprintf(err, errlen, "port_min and port_max go together");
                        return -EINVAL;
                }
        }
        if ((v = proto_get(o, "icmp_type")))
                r.icmp_type = (int16_t)v->v.u;
        if ((v = proto_get(o, "icmp_code")))
                r.icmp_code = (int16_t)v->v.u;
        if ((v = proto_get(o, "remote"))) {
                if (cidr_parse(v->v.s, false, &r.remote) < 0) {
                        (void)snprintf(err, errlen, "remote: not a canonical CIDR");
                        return -EINVAL;
                }
                r.has_remote = true;
        }
        if ((k = secrule_check(&r, err, errlen)) < 0)
                return k;
        *ret = r;
        return 0;
}
