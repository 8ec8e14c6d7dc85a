/* fuzz-config.c - libFuzzer target for config_parse().
 * After a failure the struct must still equal the defaults and carry a message;
 * after a success every field must be within its contract, and writing the
 * result back out as text must parse to the identical struct. */
#include "config.h"

#define CHECK(x)                                                                     \
        do {                                                                         \
                if (!(x)) {                                                          \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
                        abort();                                                     \
                }                                                                    \
        } while (0)

static void check_path(const char *p, size_t size, bool may_be_empty)
{
        CHECK(memchr(p, '\0', size) != NULL);
        if (p[0] == '\0') {
                CHECK(may_be_empty);
                return;
        }
        CHECK(p[0] == '/');
        CHECK(!strstr(p, "/../") && !(strlen(p) >= 3 && streq(p + strlen(p) - 3, "/..")));
        for (const char *c = p; *c; c++)
                CHECK((unsigned char)*c >= 0x20 && *c != 0x7f);
}

static void check_valid(const struct nova_config *c)
{
        check_path(c->state_dir, sizeof(c->state_dir), false);
        check_path(c->run_dir, sizeof(c->run_dir), false);
        check_path(c->api_socket, sizeof(c->api_socket), true);
        check_path(c->module_dir, sizeof(c->module_dir), true);
        CHECK(strlen(c->api_socket) <= 107);
        CHECK(c->module_timeout_ms >= 100 && c->module_timeout_ms <= 600000);
        CHECK(c->restart_min_ms >= 10 && c->restart_min_ms <= 60000);
        CHECK(c->restart_max_ms >= c->restart_min_ms && c->restart_max_ms <= 600000);
        CHECK(c->stable_after_ms >= 1000 && c->stable_after_ms <= 3600000);
        CHECK(c->stop_timeout_ms >= 100 && c->stop_timeout_ms <= 60000);
        CHECK(streq(c->log_level, "debug") || streq(c->log_level, "info") ||
              streq(c->log_level, "warning") || streq(c->log_level, "error"));
        CHECK(strstr(c->libvirt_uri, "://") != NULL);
        CHECK(streq(c->orphan_policy, "report") || streq(c->orphan_policy, "reap"));
        CHECK(streq(c->vif_type, "ovs") || streq(c->vif_type, "tap"));
        CHECK(strncmp(c->ovsdb_socket, "unix:/", 6) == 0);
        CHECK(c->integration_bridge[0] != '\0' && c->integration_bridge[0] != '-');
        CHECK(streq(c->bridge_datapath_type, "system") || streq(c->bridge_datapath_type, "netdev"));
        CHECK(c->port_timeout_ms >= 100 && c->port_timeout_ms <= 60000 && c->shutdown_timeout_s <= 3600);
        CHECK(c->cpu_allocation_ratio_milli >= 1 && c->cpu_allocation_ratio_milli <= 1000000);
        CHECK(c->ram_allocation_ratio_milli >= 1 && c->ram_allocation_ratio_milli <= 1000000);
        CHECK(c->disk_allocation_ratio_milli >= 1 && c->disk_allocation_ratio_milli <= 1000000);
        CHECK(memchr(c->cpu_set, '\0', sizeof(c->cpu_set)) != NULL);
        CHECK(c->ovn_wait_ms >= 100 && c->ovn_wait_ms <= 600000);
        CHECK(streq(c->ovn_timeout_policy, "fail") || streq(c->ovn_timeout_policy, "continue"));
        CHECK(c->network_mtu == 0 || (c->network_mtu >= 68 && c->network_mtu <= 65535));
        CHECK(c->qemu_user[0] == '+' || (c->qemu_user[0] >= 'a' && c->qemu_user[0] <= 'z') || c->qemu_user[0] == '_');
        for (const char *q = c->qemu_user + 1; *q; q++)
                CHECK((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '_' || *q == '-');
        /* Placement (issue 18) */
        CHECK(streq(c->placement_auth, "noauth") || streq(c->placement_auth, "keystone"));
        CHECK(!c->placement_url[0] || streq(c->placement_url, "catalog") || strncmp(c->placement_url, "http://", 7) == 0 ||
              strncmp(c->placement_url, "https://", 8) == 0);
        CHECK(!strpbrk(c->placement_url, "?#@ \"'\\") && !strpbrk(c->keystone_auth_url, "?#@ \"'\\"));
        CHECK(c->reserved_host_cpus <= 4096 && c->reserved_host_memory_mb <= 16777216 &&
              c->reserved_host_disk_mb <= 1000000000);
        CHECK(c->placement_refresh_s >= 10 && c->placement_refresh_s <= 86400);
        CHECK(strlen(c->provider_name) <= 200);
        CHECK(c->storage_pool[0] >= 'a' && c->storage_pool[0] <= 'z');
        for (const char *q = c->storage_pool; *q; q++)
                CHECK((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '_' || *q == '-');
        CHECK(c->storage_pool_path[0] == '/' && c->storage_pool_path[1] != '\0' &&
              strstr(c->storage_pool_path, "//") == NULL && strstr(c->storage_pool_path, "/./") == NULL &&
              strstr(c->storage_pool_path, "/../") == NULL);
        for (const char *q = c->storage_pool_path; *q; q++)
                CHECK((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '/' ||
                      *q == '.' || *q == '_' || *q == '-');
}

/* Write c back as a config file. */
static int serialize(const struct nova_config *c, char *buf, size_t size)
{
        char plugs[256] = "";
        size_t n = 0;

        for (int i = 0; i < _PLUG_MAX; i++) {
                if (!c->plugs[i])
                        continue;
                if (xsnprintf(plugs + n, sizeof(plugs) - n, "%s%s", n ? "," : "", plug_table[i].name) < 0)
                        return -ENAMETOOLONG;
                n += strlen(plugs + n);
        }
        return xsnprintf(buf, size,
                         "state_dir = %s\nrun_dir = %s\napi_socket = %s\nmodule_dir = %s\nplugs = %s\n"
                         "module_timeout_ms = %u\nrestart_min_ms = %u\nrestart_max_ms = %u\n"
                         "stable_after_ms = %u\nstop_timeout_ms = %u\nlog_level = %s\n"
                         "libvirt_uri = %s\nshutdown_timeout_s = %u\norphan_policy = %s\nvif_type = %s\n"
                         "ovsdb_socket = %s\nintegration_bridge = %s\nbridge_create = %s\n"
                         "bridge_datapath_type = %s\nport_timeout_ms = %u\n"
                         "cpu_allocation_ratio = %u.%03u\nram_allocation_ratio = %u.%03u\n"
                         "disk_allocation_ratio = %u.%03u\ncpu_set = %s\n"
                         "ovn = %s\novn_wait_ms = %u\novn_timeout_policy = %s\nnetwork_mtu = %u\nqemu_user = %s\n"
                         "placement_url = %s\nplacement_auth = %s\nplacement_noauth_token = %s\nplacement_region = %s\n"
                         "keystone_auth_url = %s\nkeystone_username = %s\nkeystone_user_id = %s\n"
                         "keystone_user_domain = %s\nkeystone_password = %s\nkeystone_project_name = %s\n"
                         "keystone_project_id = %s\nkeystone_project_domain = %s\nkeystone_app_cred_id = %s\n"
                         "keystone_app_cred_secret = %s\nprovider_name = %s\nreserved_host_cpus = %u\n"
                         "reserved_host_memory_mb = %u\nreserved_host_disk_mb = %u\nplacement_refresh_s = %u\n"
                         "storage_pool = %s\nstorage_pool_path = %s\n",
                         c->state_dir, c->run_dir, c->api_socket, c->module_dir, n ? plugs : "none",
                         c->module_timeout_ms, c->restart_min_ms, c->restart_max_ms,
                         c->stable_after_ms, c->stop_timeout_ms, c->log_level, c->libvirt_uri,
                         c->shutdown_timeout_s, c->orphan_policy, c->vif_type, c->ovsdb_socket,
                         c->integration_bridge, c->bridge_create ? "true" : "false", c->bridge_datapath_type,
                         c->port_timeout_ms, c->cpu_allocation_ratio_milli / 1000, c->cpu_allocation_ratio_milli % 1000,
                         c->ram_allocation_ratio_milli / 1000, c->ram_allocation_ratio_milli % 1000,
                         c->disk_allocation_ratio_milli / 1000, c->disk_allocation_ratio_milli % 1000, c->cpu_set,
                         c->ovn ? "true" : "false", c->ovn_wait_ms, c->ovn_timeout_policy, c->network_mtu,
                         c->qemu_user,
                         c->placement_url, c->placement_auth, c->placement_noauth_token, c->placement_region,
                         c->keystone_auth_url, c->keystone_username, c->keystone_user_id, c->keystone_user_domain,
                         c->keystone_password, c->keystone_project_name, c->keystone_project_id,
                         c->keystone_project_domain, c->keystone_app_cred_id, c->keystone_app_cred_secret,
                         c->provider_name, c->reserved_host_cpus, c->reserved_host_memory_mb, c->reserved_host_disk_mb,
                         c->placement_refresh_s, c->storage_pool, c->storage_pool_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct nova_config defaults, c, again;
        char err[256], text[8192];
        int r;

        config_defaults(&defaults);
        c = defaults;
        err[0] = '\0';
        r = config_parse((const char *)data, size, &c, err, sizeof(err));
        if (r < 0) {
                CHECK(r == -EINVAL || r == -EFBIG);
                CHECK(memcmp(&c, &defaults, sizeof(c)) == 0);
                CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)));
                return 0;
        }
        CHECK(r == 0);
        check_valid(&c);

        /* the parsed values, written back out, parse to the same struct */
        CHECK(serialize(&c, text, sizeof(text)) == 0);
        again = defaults;
        r = config_parse(text, strlen(text), &again, err, sizeof(err));
        if (r < 0)
                fprintf(stderr, "re-parse failed: %s\n%s", err, text);
        CHECK(r == 0);
        CHECK(memcmp(&c, &again, sizeof(c)) == 0);

        config_finish(&c);
        check_valid(&c);
        CHECK(c.api_socket[0] == '/');
        return 0;
}
