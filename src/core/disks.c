/* disks.c - see disks.h */
#include "disks.h"

#include "util.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <unistd.h>

void disks_hostname_from_name(const char *name, char ret[INSTANCE_NAME_MAX + 1])
{
        size_t n = 0;

        for (const char *c = name; *c && n < INSTANCE_NAME_MAX; c++) {
                char ch = *c;
                if (ch >= 'A' && ch <= 'Z')
                        ch = (char)(ch - 'A' + 'a');
                else if (ch == '_' || ch == '.')
                        ch = '-';
                else if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
                        continue;
                if (ch == '-' && n == 0)
                        continue;
                ret[n++] = ch;
        }
        while (n > 0 && ret[n - 1] == '-')
                n--;
        ret[n] = '\0';
        if (n == 0)
                (void)strscpy(ret, "instance", INSTANCE_NAME_MAX + 1);
}

/* {"address": ip, "subnet": the default-prefix network around it} */
static struct json_object *fixed_ip_json(const char *ip)
{
        struct json_object *o;
        char text[IP_STR_MAX + 8], subnet[CIDR_STR_MAX];
        struct cidr c;
        uint8_t family, addr[16];

        if (ip_parse(ip, &family, addr) < 0)
                return NULL;
        (void)snprintf(text, sizeof(text), "%s/%d", ip, family == 4 ? DISKS_DEFAULT_PREFIX_V4 : DISKS_DEFAULT_PREFIX_V6);
        if (cidr_parse(text, true, &c) < 0)
                return NULL;
        cidr_format(&c, subnet);
        o = json_object_new_object();
        json_object_object_add(o, "address", json_object_new_string(ip));
        json_object_object_add(o, "subnet", json_object_new_string(subnet));
        return o;
}

int disks_config_drive_json(const struct instance *inst, char **ret_text, size_t *ret_len)
{
        struct json_object *root, *ports;
        char hostname[INSTANCE_NAME_MAX + 1];
        const char *text;
        size_t len;
        char *copy;

        if (inst->n_ports > DISKS_CONFIG_DRIVE_MAX_PORTS)
                return -E2BIG;
        root = json_object_new_object();
        if (!root)
                return -ENOMEM;
        disks_hostname_from_name(inst->name, hostname);
        json_object_object_add(root, "uuid", json_object_new_string(inst->uuid));
        json_object_object_add(root, "name", json_object_new_string(inst->name));
        json_object_object_add(root, "hostname", json_object_new_string(hostname));
        if (inst->key) {
                struct json_object *keys = json_object_new_array(), *k = json_object_new_object();
                json_object_object_add(k, "name", json_object_new_string("default"));
                json_object_object_add(k, "data", json_object_new_string(inst->key));
                json_object_array_add(keys, k);
                json_object_object_add(root, "public_keys", keys);
        }
        ports = json_object_new_array();
        for (size_t i = 0; i < inst->n_ports; i++) {
                const struct instance_port *p = &inst->ports[i];
                struct json_object *o = json_object_new_object(), *ips = json_object_new_array();

                json_object_object_add(o, "port_id", json_object_new_string(p->port_uuid));
                json_object_object_add(o, "network_id", json_object_new_string(p->port_uuid));
                json_object_object_add(o, "mac", json_object_new_string(p->mac));
                json_object_object_add(o, "mtu", json_object_new_int64(p->mtu));
                for (size_t k = 0; k < p->n_ips; k++) {
                        struct json_object *ip = fixed_ip_json(p->ips[k]);
                        if (ip)
                                json_object_array_add(ips, ip);
                }
                json_object_object_add(o, "fixed_ips", ips);
                json_object_array_add(ports, o);
        }
        json_object_object_add(root, "ports", ports);
        if (inst->user_data)
                json_object_object_add(root, "user_data", json_object_new_string(inst->user_data));
        text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
        len = text ? strlen(text) : 0;
        if (!text || len > DISKS_DESCRIPTION_MAX) {
                json_object_put(root);
                return text ? -E2BIG : -ENOMEM;
        }
        copy = strdup(text);
        json_object_put(root);
        if (!copy)
                return -ENOMEM;
        *ret_text = copy;
        if (ret_len)
                *ret_len = len;
        return 0;
}

int disks_pipe_with(const char *text, size_t len, int *ret_fd)
{
        _cleanup_close_ int rd = -EBADF, wr = -EBADF;
        int fds[2];
        size_t done = 0;

        if (len > DISKS_DESCRIPTION_MAX)
                return -E2BIG;
        if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        rd = fds[0];
        wr = fds[1];
        if (len > 0 && fcntl(wr, F_SETPIPE_SZ, (int)len) < 0 && fcntl(wr, F_GETPIPE_SZ) < (int)len)
                return -errno;
        while (done < len) {
                ssize_t n = write(wr, text + done, len - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return errno == EAGAIN ? -EMSGSIZE : -errno; /* never: the pipe holds len */
                done += (size_t)n;
        }
        /* the reader may block on its end: only the write end needed O_NONBLOCK */
        if (fcntl(rd, F_SETFL, 0) < 0)
                return -errno;
        *ret_fd = TAKE_FD(rd);
        return 0;
}
