/* secrule.h - security-group rules as the core stores them, the CLI and API
 * take them, and the firewall-control module installs and reads them back.
 *
 * Semantics are OpenStack's: a port accepts traffic matched by any rule of
 * any of its groups; everything else is dropped (ingress and egress alike),
 * replies of accepted flows come back (conntrack), invalid packets are
 * dropped. A new group starts with "allow all egress" for IPv4 and IPv6, as
 * neutron's do, so "default deny ingress, allow egress" holds until the
 * operator changes it.
 *
 * One canonical text form, used as the nftables rule comment so that what
 * the kernel holds can be read back exactly:
 *     "nh <in|out> <4|6> <proto|any> <port_min|-> <port_max|-> <icmp_type|-> <icmp_code|-> <cidr|->"
 * Library code: functions return 0 or -errno and never log. */
#ifndef NOVA_SECRULE_H
#define NOVA_SECRULE_H

#include "names.h"

#include <json-c/json.h>

#define SECRULE_TEXT_MAX 128   /* canonical form incl. NUL (nftables comments hold 128) */
#define CIDR_STR_MAX 44        /* "ffff:...:ffff/128" + NUL */
#define IP_STR_MAX 40          /* an IPv6 address + NUL */
#define SECGROUP_MAX_RULES 100 /* rules of one group */
#define PORT_MAX_GROUPS 8      /* groups of one port */
#define PORT_MAX_IPS 8         /* fixed IPs of one port */
#define PORT_MAX_RULES 200     /* rules of all groups of one port, what one module call carries */

enum secrule_dir { SECRULE_INGRESS = 0, SECRULE_EGRESS = 1 };

struct cidr {
        uint8_t family;   /* 4 or 6 */
        uint8_t prefix;   /* 0..32 / 0..128 */
        uint8_t addr[16]; /* network address, host bits zero */
};

struct secrule {
        char uuid[UUID_STR_LEN + 1]; /* rule id in the store ("" on the module side) */
        uint8_t dir;                 /* enum secrule_dir */
        uint8_t family;              /* ethertype: 4 (IPv4) or 6 (IPv6) */
        int16_t proto;               /* IP protocol number 0..255, -1 = any */
        uint16_t port_min, port_max; /* 0 = no port match; else 1..65535, min <= max */
        int16_t icmp_type;           /* -1 = any */
        int16_t icmp_code;           /* -1 = any (needs a type) */
        bool has_remote;
        struct cidr remote;          /* source (ingress) or destination (egress) */
};

/* Protocols that carry ports in the transport header (tcp, udp, dccp, sctp, udplite). */
bool secrule_proto_has_ports(int proto);
/* The ICMP protocol of a family: 1 (icmp) for 4, 58 (ipv6-icmp) for 6. */
int secrule_icmp_proto(uint8_t family);

/* Is the rule self-consistent? 0, or -EINVAL with the reason in err. */
int secrule_check(const struct secrule *r, char *err, size_t errlen);

/* Canonical text (see above). -ENAMETOOLONG never happens for a checked rule. */
int secrule_format(const struct secrule *r, char *buf, size_t size);
/* Strict parse of the canonical text; the result passes secrule_check.
 * 0 or -EINVAL; *ret untouched on error. (Fuzzed.) */
int secrule_parse(const char *s, struct secrule *ret);
/* Same rule (ignoring the uuid)? */
bool secrule_equal(const struct secrule *a, const struct secrule *b);

/* "tcp", "udp", "icmp", "icmpv6"/"ipv6-icmp", "any", or a number 0..255.
 * -1 for any. -EINVAL otherwise. */
int secrule_proto_parse(const char *s, int *ret);
/* Name for display: "tcp", "udp", "icmp", "ipv6-icmp", "sctp", "any", or the number. */
const char *secrule_proto_name(int proto, char buf[8]);

/* CIDR "a.b.c.d/n" or IPv6 "x::/n" (a bare address means /32 or /128).
 * Host bits must be zero unless normalize is set (then they are cleared).
 * 0 or -EINVAL. */
int cidr_parse(const char *s, bool normalize, struct cidr *ret);
void cidr_format(const struct cidr *c, char buf[CIDR_STR_MAX]);
/* A single address (no prefix). family 4 or 6. 0 or -EINVAL. */
int ip_parse(const char *s, uint8_t *ret_family, uint8_t ret_addr[16]);
/* Canonical form of an address string (inet_ntop of inet_pton), for comparisons. */
int ip_canonical(const char *s, char buf[IP_STR_MAX]);
bool ip_is_valid(const char *s);
bool cidr_is_canonical(const char *s);

/* IPv6 link-local address of a MAC (EUI-64, RFC 4291), canonical text. */
void ipv6_link_local_from_mac(const uint8_t mac[6], char buf[IP_STR_MAX]);

/* JSON (API and store): {"id","direction":"ingress|egress","ethertype":"IPv4|IPv6",
 * "protocol":"tcp|..|null","port_range_min","port_range_max","remote_ip_prefix"}
 * in neutron's field names; for ICMP port_range_min/max are type/code as in neutron.
 * Parse checks everything (secrule_check) and normalizes a CIDR with host
 * bits set; unknown members are refused. (Fuzzed through the store decoder.) */
int secrule_from_json(struct json_object *o, struct secrule *ret, char *err, size_t errlen);
struct json_object *secrule_to_json(const struct secrule *r);

/* FNV-1a 64 digest of a list of canonical rule texts, order-independent
 * (sorted first), so the core and the module agree on "same rules". */
uint64_t secrule_digest(const struct secrule *rules, size_t n);

#endif
