/* names.c - see names.h */
#include "names.h"

#include <sys/random.h>

static bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool uuid_is_valid(const char *s)
{
        if (!s || strnlen(s, UUID_STR_LEN + 1) != UUID_STR_LEN)
                return false;
        for (int i = 0; i < UUID_STR_LEN; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                if (dash ? s[i] != '-' : !is_lower_hex(s[i]))
                        return false;
        }
        return true;
}

static int hexval(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

int mac_parse(const char *s, uint8_t ret_mac[6])
{
        uint8_t mac[6];
        bool nonzero = false;

        if (!s || strnlen(s, MAC_STR_LEN + 1) != MAC_STR_LEN)
                return -EINVAL;
        for (int i = 0; i < 6; i++) {
                const char *p = s + i * 3;
                if (!is_lower_hex(p[0]) || !is_lower_hex(p[1]))
                        return -EINVAL;
                if (i < 5 && p[2] != ':')
                        return -EINVAL;
                mac[i] = (uint8_t)(hexval(p[0]) << 4 | hexval(p[1]));
                nonzero |= mac[i] != 0;
        }
        if (!nonzero || (mac[0] & 1))
                return -EINVAL; /* all-zero or multicast/broadcast */
        if (mac[0] == TAP_MAC_FIRST_BYTE)
                return -EINVAL; /* a tap's, never a port's: the two would be the same */
        memcpy(ret_mac, mac, 6);
        return 0;
}

bool mac_is_valid(const char *s)
{
        uint8_t mac[6];
        return mac_parse(s, mac) == 0;
}

void tap_mac_from_port(const uint8_t port_mac[6], uint8_t ret[6])
{
        memcpy(ret, port_mac, 6);
        ret[0] = TAP_MAC_FIRST_BYTE;
}

void mac_format(const uint8_t mac[6], char ret[MAC_STR_LEN + 1])
{
        static const char hex[] = "0123456789abcdef";

        /* On the tap_get latency path: no printf machinery. */
        for (int i = 0; i < 6; i++) {
                ret[i * 3] = hex[mac[i] >> 4];
                ret[i * 3 + 1] = hex[mac[i] & 0xf];
                ret[i * 3 + 2] = i < 5 ? ':' : '\0';
        }
}

int port_dev_name(const char *prefix, const char *port_uuid, char ret[IFNAME_MAX])
{
        size_t plen = strlen(prefix);

        if (!uuid_is_valid(port_uuid) || plen == 0 || plen + PORT_NAME_CHARS >= IFNAME_MAX)
                return -EINVAL;
        memcpy(ret, prefix, plen);
        memcpy(ret + plen, port_uuid, PORT_NAME_CHARS);
        ret[plen + PORT_NAME_CHARS] = '\0';
        return 0;
}

int tap_name_from_port(const char *port_uuid, char ret[IFNAME_MAX])
{
        return port_dev_name(TAP_PREFIX, port_uuid, ret);
}

bool port_dev_name_is_ours(const char *prefix, const char *name)
{
        size_t plen = strlen(prefix);

        if (plen + PORT_NAME_CHARS >= IFNAME_MAX || strnlen(name, IFNAME_MAX) != plen + PORT_NAME_CHARS ||
            strncmp(name, prefix, plen) != 0)
                return false;
        for (int i = 0; i < PORT_NAME_CHARS; i++) {
                char c = name[plen + i];
                if (i == 8 ? c != '-' : !is_lower_hex(c))
                        return false;
        }
        return true;
}

int uuid_new_str(char ret[UUID_STR_LEN + 1])
{
        uint8_t b[16];

        if (getrandom(b, sizeof(b), 0) != sizeof(b))
                return -EIO;
        b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
        b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
        (void)snprintf(ret, UUID_STR_LEN + 1,
                       "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                       b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                       b[12], b[13], b[14], b[15]);
        return 0;
}

int mac_generate(char ret[MAC_STR_LEN + 1])
{
        uint8_t b[3];
        uint8_t mac[6] = { 0xfa, 0x16, 0x3e };

        if (getrandom(b, sizeof(b), 0) != sizeof(b))
                return -EIO;
        memcpy(mac + 3, b, 3);
        mac_format(mac, ret);
        return 0;
}

bool ovn_chassis_name_is_valid(const char *s)
{
        size_t n = s ? strnlen(s, OVN_CHASSIS_MAX + 1) : 0;

        if (n == 0 || n > OVN_CHASSIS_MAX || s[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '_' || c == '-' || c == ':'))
                        return false;
        }
        return true;
}

bool instance_name_is_valid(const char *s)
{
        size_t n = strnlen(s, INSTANCE_NAME_MAX + 1);

        if (n == 0 || n > INSTANCE_NAME_MAX || s[0] == '-' || s[0] == '.')
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '_' || c == '-'))
                        return false;
        }
        return true;
}

