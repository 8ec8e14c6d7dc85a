/* names.h - identifier syntax and name derivation. Privileged modules take
 * identifiers (UUIDs, MACs) and derive every device name from them here;
 * nothing outside these schemes is ever touched. */
#ifndef NOVA_NAMES_H
#define NOVA_NAMES_H

#include "util.h"

#define UUID_STR_LEN 36   /* canonical 8-4-4-4-12, lowercase hex */
#define MAC_STR_LEN 17    /* xx:xx:xx:xx:xx:xx, lowercase hex */
#define IFNAME_MAX 16     /* IFNAMSIZ, including the NUL */
#define TAP_PREFIX "tap"
/* Hybrid plugging (tap -> qbr bridge -> qvb/qvo veth pair -> OVS), as nova names it. */
#define QBR_PREFIX "qbr" /* the per-port Linux bridge */
#define QVB_PREFIX "qvb" /* the veth end enslaved to the qbr bridge */
#define QVO_PREFIX "qvo" /* the veth end plugged into OVS */
#define PORT_NAME_CHARS 11 /* nova: prefix + first 11 chars of the port UUID */
#define INSTANCE_NAME_MAX 63 /* an instance's display name, without the NUL */

/* Canonical lowercase UUID, exactly 36 chars. */
bool uuid_is_valid(const char *s);
/* A port's (the guest's) MAC: canonical lowercase, unicast, not all zero, and
 * not starting with TAP_MAC_FIRST_BYTE (kept for the host side of taps). */
bool mac_is_valid(const char *s);
int mac_parse(const char *s, uint8_t ret_mac[6]);
/* The same rule, in words, for error messages. */
#define MAC_RULE_TEXT "not a lowercase unicast MAC address (or one starting with fe:, kept for taps)"
void mac_format(const uint8_t mac[6], char ret[MAC_STR_LEN + 1]);

/* The host-side tap of a port gets the port's MAC with its first byte
 * replaced by 0xfe, as libvirt does for the taps it makes: a Linux bridge
 * (qbr) keeps a local entry for each port's own address and would take the
 * guest's frames for itself if the tap carried the guest's MAC; the IPv6
 * link-local addresses of tap and guest differ too. 0xfe is unicast and
 * locally administered, and port MACs never start with it (mac_parse). */
#define TAP_MAC_FIRST_BYTE 0xfe
void tap_mac_from_port(const uint8_t port_mac[6], uint8_t ret[6]);

/* "tap" + first 11 chars of the port UUID. -EINVAL for a bad UUID. */
int tap_name_from_port(const char *port_uuid, char ret[IFNAME_MAX]);
/* Generic form for the other per-port devices of later issues (qbr, qvb, qvo). */
int port_dev_name(const char *prefix, const char *port_uuid, char ret[IFNAME_MAX]);
/* True when name has the shape prefix + 8 hex + '-' + 2 hex. */
bool port_dev_name_is_ours(const char *prefix, const char *name);

/* Fill ret with a random version-4 UUID (getrandom). 0 or -errno. */
int uuid_new_str(char ret[UUID_STR_LEN + 1]);
/* A random locally administered unicast MAC with nova's fa:16:3e prefix. */
int mac_generate(char ret[MAC_STR_LEN + 1]);

/* Instance display names (API, CLI, store, libvirt module): 1..INSTANCE_NAME_MAX of
 * [A-Za-z0-9._-], not starting with '-' or '.'. */
bool instance_name_is_valid(const char *s);

/* OVN chassis names as we report and pass them on (Open_vSwitch external_ids:system-id, what
 * requested-chassis names): 1..OVN_CHASSIS_MAX of [A-Za-z0-9._:-], not starting with '-'. */
#define OVN_CHASSIS_MAX 64
bool ovn_chassis_name_is_valid(const char *s);

#endif
