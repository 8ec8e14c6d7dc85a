/* test-config.c - unit tests for src/core/config.c */
#include <check.h>

#include "config.h"

static int parse_str(const char *text, struct nova_config *cfg, char *err, size_t errlen)
{
        return config_parse(text, strlen(text), cfg, err, errlen);
}

START_TEST(test_defaults)
{
        struct nova_config c;

        memset(&c, 0x5a, sizeof(c));
        config_defaults(&c);
        ck_assert_str_eq(c.state_dir, "/var/lib/nova-hypervisor");
        ck_assert_str_eq(c.run_dir, "/run/nova-hypervisor");
        ck_assert_str_eq(c.api_socket, "");
        ck_assert_str_eq(c.module_dir, "");
        for (int i = 0; i < _PLUG_MAX; i++)
                ck_assert(!c.plugs[i]);
        ck_assert_uint_eq(c.module_timeout_ms, 10000);
        ck_assert_uint_eq(c.restart_min_ms, 200);
        ck_assert_uint_eq(c.restart_max_ms, 30000);
        ck_assert_uint_eq(c.stable_after_ms, 60000);
        ck_assert_uint_eq(c.stop_timeout_ms, 5000);
        ck_assert_str_eq(c.log_level, "info");

        config_finish(&c);
        ck_assert_str_eq(c.api_socket, "/run/nova-hypervisor/nova-hypervisor.socket");
}
END_TEST

START_TEST(test_defaults_comparable)
{
        struct nova_config a, b;

        memset(&a, 0x11, sizeof(a));
        memset(&b, 0x22, sizeof(b));
        config_defaults(&a);
        config_defaults(&b);
        ck_assert_int_eq(memcmp(&a, &b, sizeof(a)), 0);
}
END_TEST

START_TEST(test_empty_text)
{
        struct nova_config c, d;
        char err[256] = "";

        config_defaults(&c);
        d = c;
        ck_assert_int_eq(config_parse("", 0, &c, err, sizeof(err)), 0);
        ck_assert_int_eq(config_parse(NULL, 0, &c, err, sizeof(err)), 0);
        ck_assert_int_eq(parse_str("\n\n# only comments\n   \t\n  # indented\n", &c, err, sizeof(err)), 0);
        ck_assert_int_eq(memcmp(&c, &d, sizeof(c)), 0);
}
END_TEST

/* The image cache's keys (nova's names): defaults, values, refusals that change nothing. */
START_TEST(test_image_cache_keys)
{
        static const char *const bad[] = {
                "remove_unused_base_images = maybe",
                "remove_unused_original_minimum_age_seconds = 31536001",
                "remove_unused_original_minimum_age_seconds = -1",
                "remove_unused_original_minimum_age_seconds = 1d",
        };
        struct nova_config c, d;
        char err[256];

        config_defaults(&c);
        ck_assert(c.remove_unused_base_images);
        ck_assert_uint_eq(c.remove_unused_original_minimum_age_seconds, 86400);
        ck_assert_msg(parse_str("remove_unused_base_images = false\nremove_unused_original_minimum_age_seconds = 0\n", &c,
                                err, sizeof(err)) == 0, "%s", err);
        ck_assert(!c.remove_unused_base_images);
        ck_assert_uint_eq(c.remove_unused_original_minimum_age_seconds, 0);
        ck_assert_msg(parse_str("remove_unused_original_minimum_age_seconds = 31536000\n", &c, err, sizeof(err)) == 0,
                      "%s", err);
        ck_assert_uint_eq(c.remove_unused_original_minimum_age_seconds, 31536000);
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                d = c;
                ck_assert_msg(parse_str(bad[i], &c, err, sizeof(err)) == -EINVAL, "accepted: %s", bad[i]);
                ck_assert_msg(strstr(err, "remove_unused"), "%s", err);
                ck_assert_int_eq(memcmp(&c, &d, sizeof(c)), 0);
        }
}
END_TEST

START_TEST(test_every_key)
{
        const char *text =
                "\xef\xbb\xbf# nova-compute configuration\r\n"
                "state_dir = /srv/nova/state\r\n"
                "  run_dir\t=\t/run/nova  \n"
                "api_socket=/run/nova/api.sock\n"
                "\n"
                "module_dir = /usr/lib/nova-hypervisor/modules\n"
                "plugs = libvirt, openvswitch network-control,process-control\n"
                "module_timeout_ms = 2500\n"
                "restart_min_ms = 50\n"
                "restart_max_ms = 5000\n"
                "stable_after_ms = 120000\n"
                "stop_timeout_ms = 1500\n"
                "log_level = debug"; /* no final newline */
        struct nova_config c;
        char err[256] = "";

        config_defaults(&c);
        ck_assert_msg(parse_str(text, &c, err, sizeof(err)) == 0, "%s", err);
        ck_assert_str_eq(c.state_dir, "/srv/nova/state");
        ck_assert_str_eq(c.run_dir, "/run/nova");
        ck_assert_str_eq(c.api_socket, "/run/nova/api.sock");
        ck_assert_str_eq(c.module_dir, "/usr/lib/nova-hypervisor/modules");
        ck_assert(c.plugs[PLUG_LIBVIRT]);
        ck_assert(c.plugs[PLUG_OPENVSWITCH]);
        ck_assert(c.plugs[PLUG_NETWORK_CONTROL]);
        ck_assert(c.plugs[PLUG_PROCESS_CONTROL]);
        ck_assert(!c.plugs[PLUG_FIREWALL_CONTROL]);
        ck_assert(!c.plugs[PLUG_HARDWARE_OBSERVE]);
        ck_assert(!c.plugs[PLUG_SYSTEM_OBSERVE]);
        ck_assert(!c.plugs[PLUG_NETWORK_OBSERVE]);
        ck_assert_uint_eq(c.module_timeout_ms, 2500);
        ck_assert_uint_eq(c.restart_min_ms, 50);
        ck_assert_uint_eq(c.restart_max_ms, 5000);
        ck_assert_uint_eq(c.stable_after_ms, 120000);
        ck_assert_uint_eq(c.stop_timeout_ms, 1500);
        ck_assert_str_eq(c.log_level, "debug");

        /* explicit api_socket survives config_finish */
        config_finish(&c);
        ck_assert_str_eq(c.api_socket, "/run/nova/api.sock");
}
END_TEST

START_TEST(test_plugs_values)
{
        struct nova_config c;
        char err[256];

        config_defaults(&c);
        ck_assert_int_eq(parse_str("plugs = libvirt,libvirt,,hardware-observe,", &c, err, sizeof(err)), 0);
        ck_assert(c.plugs[PLUG_LIBVIRT]);
        ck_assert(c.plugs[PLUG_HARDWARE_OBSERVE]);
        ck_assert(!c.plugs[PLUG_OPENVSWITCH]);

        /* a later source replaces the whole set */
        ck_assert_int_eq(parse_str("plugs = none", &c, err, sizeof(err)), 0);
        for (int i = 0; i < _PLUG_MAX; i++)
                ck_assert(!c.plugs[i]);

        ck_assert_int_eq(config_set(&c, "plugs", "system-observe network-observe", err, sizeof(err)), 0);
        ck_assert(c.plugs[PLUG_SYSTEM_OBSERVE]);
        ck_assert(c.plugs[PLUG_NETWORK_OBSERVE]);
        ck_assert_int_eq(parse_str("plugs =", &c, err, sizeof(err)), 0);
        for (int i = 0; i < _PLUG_MAX; i++)
                ck_assert(!c.plugs[i]);

        /* every plug in the table is accepted by name */
        for (int i = 0; i < _PLUG_MAX; i++) {
                ck_assert_int_eq(config_set(&c, "plugs", plug_table[i].name, err, sizeof(err)), 0);
                for (int j = 0; j < _PLUG_MAX; j++)
                        ck_assert(c.plugs[j] == (i == j));
        }
}
END_TEST

START_TEST(test_log_levels)
{
        static const char *const levels[] = { "debug", "info", "warning", "error" };
        struct nova_config c;
        char err[256];

        config_defaults(&c);
        for (size_t i = 0; i < ARRAY_SIZE(levels); i++) {
                ck_assert_int_eq(config_set(&c, "log_level", levels[i], err, sizeof(err)), 0);
                ck_assert_str_eq(c.log_level, levels[i]);
        }
}
END_TEST

START_TEST(test_number_bounds)
{
        static const struct {
                const char *key;
                uint32_t min, max;
        } keys[] = {
                { "module_timeout_ms", 100, 600000 },
                { "restart_min_ms", 10, 60000 },
                { "restart_max_ms", 10, 600000 },
                { "stable_after_ms", 1000, 3600000 },
                { "stop_timeout_ms", 100, 60000 },
        };

        for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
                struct nova_config c, d;
                char text[128], want[128], err[256];

                config_defaults(&c);
                c.restart_min_ms = 10; /* restart_max_ms may then span its own range ... */
                c.restart_max_ms = 600000; /* ... and restart_min_ms its own */

                ck_assert_int_eq(xsnprintf(text, sizeof(text), "%s = %u", keys[i].key, keys[i].min), 0);
                ck_assert_msg(parse_str(text, &c, err, sizeof(err)) == 0, "%s: %s", text, err);
                ck_assert_int_eq(xsnprintf(text, sizeof(text), "%s = %u", keys[i].key, keys[i].max), 0);
                ck_assert_msg(parse_str(text, &c, err, sizeof(err)) == 0, "%s: %s", text, err);

                ck_assert_int_eq(xsnprintf(want, sizeof(want), "line 1: %s: must be between %u and %u",
                                           keys[i].key, keys[i].min, keys[i].max), 0);
                d = c;
                ck_assert_int_eq(xsnprintf(text, sizeof(text), "%s = %u", keys[i].key, keys[i].min - 1), 0);
                ck_assert_int_eq(parse_str(text, &c, err, sizeof(err)), -EINVAL);
                ck_assert_str_eq(err, want);
                ck_assert_int_eq(xsnprintf(text, sizeof(text), "%s = %u", keys[i].key, keys[i].max + 1), 0);
                ck_assert_int_eq(parse_str(text, &c, err, sizeof(err)), -EINVAL);
                ck_assert_str_eq(err, want);
                ck_assert_int_eq(memcmp(&c, &d, sizeof(c)), 0);
        }
}
END_TEST

START_TEST(test_paths)
{
        struct nova_config c;
        char err[256], path[300];

        config_defaults(&c);
        ck_assert_int_eq(parse_str("module_dir =", &c, err, sizeof(err)), 0);
        ck_assert_str_eq(c.module_dir, "");
        ck_assert_int_eq(parse_str("state_dir = /a b/c..d/.e/", &c, err, sizeof(err)), 0);
        ck_assert_str_eq(c.state_dir, "/a b/c..d/.e/");
        ck_assert_int_eq(parse_str("state_dir = /\xc3\xa9t\xc3\xa9", &c, err, sizeof(err)), 0);

        /* longest paths that fit */
        memset(path, 'p', sizeof(path));
        path[0] = '/';
        path[255] = '\0';
        ck_assert_int_eq(config_set(&c, "state_dir", path, err, sizeof(err)), 0);
        ck_assert_str_eq(c.state_dir, path);
        path[107] = '\0';
        ck_assert_int_eq(config_set(&c, "api_socket", path, err, sizeof(err)), 0);
        ck_assert_str_eq(c.api_socket, path);

        /* run_dir with trailing slashes, and "/" itself */
        config_defaults(&c);
        ck_assert_int_eq(config_set(&c, "run_dir", "/run/x//", err, sizeof(err)), 0);
        config_finish(&c);
        ck_assert_str_eq(c.api_socket, "/run/x/nova-hypervisor.socket");
        config_defaults(&c);
        ck_assert_int_eq(config_set(&c, "run_dir", "/", err, sizeof(err)), 0);
        config_finish(&c);
        ck_assert_str_eq(c.api_socket, "/nova-hypervisor.socket");

        /* a long run_dir is fine once api_socket is set explicitly */
        config_defaults(&c);
        path[200] = '\0';
        memset(path + 1, 'r', 199);
        ck_assert_int_eq(config_set(&c, "run_dir", path, err, sizeof(err)), -EINVAL);
        ck_assert_int_eq(config_set(&c, "api_socket", "/run/api.sock", err, sizeof(err)), 0);
        ck_assert_int_eq(config_set(&c, "run_dir", path, err, sizeof(err)), 0);
        ck_assert_str_eq(c.run_dir, path);
}
END_TEST

START_TEST(test_order_independent_cross_check)
{
        struct nova_config c;
        char err[256];

        config_defaults(&c);
        ck_assert_int_eq(parse_str("restart_max_ms = 100\nrestart_min_ms = 50\n", &c, err, sizeof(err)), 0);
        ck_assert_uint_eq(c.restart_min_ms, 50);
        ck_assert_uint_eq(c.restart_max_ms, 100);
        ck_assert_int_eq(parse_str("restart_max_ms = 100\nrestart_min_ms = 100\n", &c, err, sizeof(err)), 0);
}
END_TEST

/* ---- errors: exact message, return value, *cfg unchanged ---- */

static const struct {
        const char *text;
        const char *err;
        int ret;
} error_cases[] = {
        { "state_dir = /a\n\nfoo = 1\n", "line 3: unknown key 'foo'", -EINVAL },
        { "STATE_DIR = /a\n", "line 1: unknown key 'STATE_DIR'", -EINVAL },
        { "state dir = /a\n", "line 1: unknown key 'state dir'", -EINVAL },
        { "[core]\n", "line 1: expected 'key = value'", -EINVAL },
        { "run_dir = /a\nrun_dir = /b\n", "line 2: duplicate key 'run_dir'", -EINVAL },
        { "log_level = info\n#\n log_level=debug", "line 3: duplicate key 'log_level'", -EINVAL },
        { "module_timeout_ms = abc", "line 1: module_timeout_ms: not a number: 'abc'", -EINVAL },
        { "module_timeout_ms = -5", "line 1: module_timeout_ms: not a number: '-5'", -EINVAL },
        { "module_timeout_ms = +500", "line 1: module_timeout_ms: not a number: '+500'", -EINVAL },
        { "module_timeout_ms = 1e3", "line 1: module_timeout_ms: not a number: '1e3'", -EINVAL },
        { "module_timeout_ms = 0x100", "line 1: module_timeout_ms: not a number: '0x100'", -EINVAL },
        { "module_timeout_ms = 01000", "line 1: module_timeout_ms: not a number: '01000'", -EINVAL },
        { "module_timeout_ms = 10 000", "line 1: module_timeout_ms: not a number: '10 000'", -EINVAL },
        { "module_timeout_ms =", "line 1: module_timeout_ms: not a number: ''", -EINVAL },
        { "module_timeout_ms = 5000 # ms", "line 1: module_timeout_ms: not a number: '5000 # ms'", -EINVAL },
        { "# a\n# b\nlog_level = info\n\nmodule_timeout_ms = 99",
          "line 5: module_timeout_ms: must be between 100 and 600000", -EINVAL },
        { "\n\n\n\nmodule_timeout_ms = 99", "line 5: module_timeout_ms: must be between 100 and 600000", -EINVAL },
        { "module_timeout_ms = 99999999999999999999",
          "line 1: module_timeout_ms: must be between 100 and 600000", -EINVAL },
        { "restart_min_ms = 9", "line 1: restart_min_ms: must be between 10 and 60000", -EINVAL },
        { "stop_timeout_ms = 60001", "line 1: stop_timeout_ms: must be between 100 and 60000", -EINVAL },
        { "stable_after_ms = 999", "line 1: stable_after_ms: must be between 1000 and 3600000", -EINVAL },
        { "restart_max_ms = 600001", "line 1: restart_max_ms: must be between 10 and 600000", -EINVAL },
        { "restart_min_ms = 500\nrestart_max_ms = 400\n",
          "restart_max_ms (400) must not be below restart_min_ms (500)", -EINVAL },
        { "restart_max_ms = 100\n", "restart_max_ms (100) must not be below restart_min_ms (200)", -EINVAL },
        { "state_dir = var/lib/nova", "line 1: state_dir: must be an absolute path: 'var/lib/nova'", -EINVAL },
        { "run_dir = ./run", "line 1: run_dir: must be an absolute path: './run'", -EINVAL },
        { "api_socket = sock", "line 1: api_socket: must be an absolute path: 'sock'", -EINVAL },
        { "module_dir = ~/bin", "line 1: module_dir: must be an absolute path: '~/bin'", -EINVAL },
        { "state_dir =", "line 1: state_dir: must be an absolute path, not empty", -EINVAL },
        { "run_dir = /run/../etc", "line 1: run_dir: must not contain '..'", -EINVAL },
        { "module_dir = /usr/lib/..", "line 1: module_dir: must not contain '..'", -EINVAL },
        { "state_dir = /a\x01", "line 1: control character 0x01", -EINVAL },
        { "state_dir = /a\x7f", "line 1: control character 0x7f", -EINVAL },
        { "state_dir = /a\rb", "line 1: control character 0x0d", -EINVAL },
        { "# \xff\n", "line 1: invalid UTF-8", -EINVAL },
        { "state_dir = /\xc0\xaf", "line 1: invalid UTF-8", -EINVAL },
        { "state_dir = /\xed\xa0\x80", "line 1: invalid UTF-8", -EINVAL },
        { "state_dir = /\xf4\x90\x80\x80", "line 1: invalid UTF-8", -EINVAL },
        { "state_dir = /\xe2\x82", "line 1: invalid UTF-8", -EINVAL },
        { "plugs = libvirt\n\n\nplugs2 = x", "line 4: unknown key 'plugs2'", -EINVAL },
        { "\n\n\nplugs = libvirt, bogus", "line 4: plugs: unknown plug 'bogus'", -EINVAL },
        { "plugs = Libvirt", "line 1: plugs: unknown plug 'Libvirt'", -EINVAL },
        { "plugs = libvirt;openvswitch", "line 1: plugs: unknown plug 'libvirt;openvswitch'", -EINVAL },
        { "plugs = none libvirt", "line 1: plugs: 'none' cannot be combined with plug names", -EINVAL },
        { "log_level = verbose", "line 1: log_level: must be one of debug, info, warning, error", -EINVAL },
        { "log_level = INFO", "line 1: log_level: must be one of debug, info, warning, error", -EINVAL },
        { "log_level =", "line 1: log_level: must be one of debug, info, warning, error", -EINVAL },
        { "state_dir /var/lib/x", "line 1: expected 'key = value'", -EINVAL },
        { "# ok\nlog_level\n", "line 2: expected 'key = value'", -EINVAL },
        { "= /x", "line 1: missing key before '='", -EINVAL },
};

START_TEST(test_errors)
{
        struct nova_config c, copy;
        char err[256] = "";
        int r;

        config_defaults(&c);
        /* start from non-default values so "unchanged" is not "back to defaults" */
        ck_assert_int_eq(parse_str("state_dir = /s\nplugs = libvirt\nlog_level = error", &c, err,
                                   sizeof(err)), 0);
        copy = c;
        r = parse_str(error_cases[_i].text, &c, err, sizeof(err));
        ck_assert_msg(r == error_cases[_i].ret, "case %d: ret %d", _i, r);
        ck_assert_str_eq(err, error_cases[_i].err);
        ck_assert_int_eq(memcmp(&c, &copy, sizeof(c)), 0);
}
END_TEST

START_TEST(test_error_nul_byte)
{
        static const char text[] = "state_dir = /a\nrun_dir = /b\0c\n";
        struct nova_config c, copy;
        char err[256];

        config_defaults(&c);
        copy = c;
        ck_assert_int_eq(config_parse(text, sizeof(text) - 1, &c, err, sizeof(err)), -EINVAL);
        ck_assert_str_eq(err, "line 2: NUL byte");
        ck_assert_int_eq(memcmp(&c, &copy, sizeof(c)), 0);
}
END_TEST

START_TEST(test_error_long_line)
{
        struct nova_config c, copy;
        char err[256];
        char *text = malloc(CONFIG_MAX_LINE + 64);
        size_t n;

        ck_assert_ptr_nonnull(text);
        config_defaults(&c);
        copy = c;

        /* exactly CONFIG_MAX_LINE bytes (CRLF not counted) is fine */
        memset(text, '#', CONFIG_MAX_LINE);
        memcpy(text + CONFIG_MAX_LINE, "\r\n", 2);
        ck_assert_int_eq(config_parse(text, CONFIG_MAX_LINE + 2, &c, err, sizeof(err)), 0);

        /* one more byte is not, on any line */
        memcpy(text, "log_level = info\n", 17);
        n = 17;
        memset(text + n, '#', CONFIG_MAX_LINE + 1);
        ck_assert_int_eq(config_parse(text, n + CONFIG_MAX_LINE + 1, &c, err, sizeof(err)), -EINVAL);
        ck_assert_str_eq(err, "line 2: line too long (max 4096 bytes)");

        memcpy(text, "state_dir = /", 13);
        memset(text + 13, 'x', CONFIG_MAX_LINE);
        ck_assert_int_eq(config_parse(text, CONFIG_MAX_LINE + 13, &c, err, sizeof(err)), -EINVAL);
        ck_assert_str_eq(err, "line 1: line too long (max 4096 bytes)");

        /* a path line that fits the line limit but not the field */
        memset(text + 13, 'x', 300);
        ck_assert_int_eq(config_parse(text, 313, &c, err, sizeof(err)), -EINVAL);
        ck_assert_str_eq(err, "line 1: state_dir: path too long (301 bytes, max 255)");
        ck_assert_int_eq(memcmp(&c, &copy, sizeof(c)), 0);
        free(text);
}
END_TEST

START_TEST(test_error_socket_length)
{
        struct nova_config c, copy;
        char err[256], text[400];

        config_defaults(&c);
        copy = c;
        memcpy(text, "api_socket = /", 14);
        memset(text + 14, 's', 107);
        text[14 + 107] = '\0';
        ck_assert_int_eq(parse_str(text, &c, err, sizeof(err)), -EINVAL);
        ck_assert_str_eq(err, "line 1: api_socket: path too long (108 bytes, max 107)");

        memcpy(text, "run_dir = /", 11);
        memset(text + 11, 'r', 100);
        text[111] = '\0';
        ck_assert_int_eq(parse_str(text, &c, err, sizeof(err)), -EINVAL);
        ck_assert_str_eq(err, "run_dir: too long for the derived api_socket (max 107 bytes for a unix socket); "
                              "set api_socket");
        ck_assert_int_eq(memcmp(&c, &copy, sizeof(c)), 0);
}
END_TEST

START_TEST(test_error_file_size)
{
        struct nova_config c, copy;
        char err[256];
        char *text = malloc(CONFIG_MAX_FILE + 1);

        ck_assert_ptr_nonnull(text);
        config_defaults(&c);
        copy = c;
        /* lines of 63 '#' and a newline: exactly 64 KiB parses */
        for (size_t i = 0; i < CONFIG_MAX_FILE + 1; i++)
                text[i] = (i % 64 == 63) ? '\n' : '#';
        ck_assert_int_eq(config_parse(text, CONFIG_MAX_FILE, &c, err, sizeof(err)), 0);
        ck_assert_int_eq(config_parse(text, CONFIG_MAX_FILE + 1, &c, err, sizeof(err)), -EFBIG);
        ck_assert_str_eq(err, "file too large (65537 bytes, max 65536)");
        ck_assert_int_eq(memcmp(&c, &copy, sizeof(c)), 0);
        free(text);
}
END_TEST

START_TEST(test_error_null_err)
{
        struct nova_config c, copy;

        config_defaults(&c);
        copy = c;
        ck_assert_int_eq(parse_str("foo = 1", &c, NULL, 0), -EINVAL);
        ck_assert_int_eq(config_set(&c, "foo", "1", NULL, 0), -EINVAL);
        ck_assert_int_eq(memcmp(&c, &copy, sizeof(c)), 0);
}
END_TEST

/* ---- config_set ---- */

START_TEST(test_qemu_user)
{
        static const char *const good[] = { "libvirt-qemu", "root", "qemu", "_svc", "+64055", "+0" };
        static const char *const bad[] = { "", "Root", "-x", "a b", "../etc", "+", "+-1", "+4294967295", "+12x",
                                           "averyveryveryverylonguser_name_over32c" };
        struct nova_config c;
        char err[256];

        config_defaults(&c);
        ck_assert_str_eq(c.qemu_user, "libvirt-qemu");
        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                ck_assert_msg(config_set(&c, "qemu_user", good[i], err, sizeof(err)) == 0, "%s: %s", good[i], err);
                ck_assert_str_eq(c.qemu_user, good[i]);
        }
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                ck_assert_msg(config_set(&c, "qemu_user", bad[i], err, sizeof(err)) == -EINVAL, "%s accepted", bad[i]);
                ck_assert_str_eq(c.qemu_user, "+0"); /* unchanged */
                ck_assert_ptr_nonnull(strstr(err, "qemu_user"));
        }
}
END_TEST

START_TEST(test_storage_pool)
{
        static const char *const good_names[] = { "nova-hypervisor", "p", "pool_2", "a123456789012345678901234567890123456789012345678901234567890ab" };
        static const char *const bad_names[] = { "", "Nova", "-p", "1pool", "a b", "a/b", "a<b", "p.q",
                                                 "a1234567890123456789012345678901234567890123456789012345678901234" };
        static const char *const good_paths[] = { "/var/lib/libvirt/images/nova-hypervisor", "/srv/pool.d/x_1", "/p" };
        static const char *const bad_paths[] = { "", "/", "relative", "/a/../b", "/a/./b", "/a//b", "/a/", "/a/.",
                                                 "/a b", "/a<b", "/a&b", "/a'b", "/a\"b", "/a\nb" };
        struct nova_config c;
        char err[256];

        config_defaults(&c);
        ck_assert_str_eq(c.storage_pool, "nova-hypervisor");
        ck_assert_str_eq(c.storage_pool_path, "/var/lib/libvirt/images/nova-hypervisor");
        for (size_t i = 0; i < ARRAY_SIZE(good_names); i++) {
                ck_assert_msg(config_set(&c, "storage_pool", good_names[i], err, sizeof(err)) == 0, "%s: %s",
                              good_names[i], err);
                ck_assert_str_eq(c.storage_pool, good_names[i]);
        }
        ck_assert_int_eq(config_set(&c, "storage_pool", "pool", err, sizeof(err)), 0);
        for (size_t i = 0; i < ARRAY_SIZE(bad_names); i++) {
                ck_assert_msg(config_set(&c, "storage_pool", bad_names[i], err, sizeof(err)) == -EINVAL, "%s accepted",
                              bad_names[i]);
                ck_assert_str_eq(c.storage_pool, "pool"); /* unchanged */
                ck_assert_ptr_nonnull(strstr(err, "storage_pool"));
        }
        for (size_t i = 0; i < ARRAY_SIZE(good_paths); i++) {
                ck_assert_msg(config_set(&c, "storage_pool_path", good_paths[i], err, sizeof(err)) == 0, "%s: %s",
                              good_paths[i], err);
                ck_assert_str_eq(c.storage_pool_path, good_paths[i]);
        }
        for (size_t i = 0; i < ARRAY_SIZE(bad_paths); i++) {
                ck_assert_msg(config_set(&c, "storage_pool_path", bad_paths[i], err, sizeof(err)) == -EINVAL,
                              "%s accepted", bad_paths[i]);
                ck_assert_str_eq(c.storage_pool_path, "/p"); /* unchanged */
                ck_assert_ptr_nonnull(strstr(err, "storage_pool_path"));
        }
}
END_TEST

START_TEST(test_set_every_key)
{
        static const struct {
                const char *key, *value;
        } sets[] = {
                { "state_dir", "/srv/state" },     { "run_dir", "/run/n" },
                { "api_socket", "/run/n/s" },      { "module_dir", "/opt/mods" },
                { "plugs", "libvirt" },            { "module_timeout_ms", "100" },
                { "restart_min_ms", "10" },        { "restart_max_ms", "20" },
                { "stable_after_ms", "1000" },     { "stop_timeout_ms", "100" },
                { "log_level", "warning" },
        };
        struct nova_config a, b;
        char err[256], text[2048] = "";
        size_t n = 0;

        config_defaults(&a);
        config_defaults(&b);
        for (size_t i = 0; i < ARRAY_SIZE(sets); i++) {
                ck_assert_msg(config_set(&a, sets[i].key, sets[i].value, err, sizeof(err)) == 0, "%s: %s",
                              sets[i].key, err);
                ck_assert_int_eq(xsnprintf(text + n, sizeof(text) - n, "%s = %s\n", sets[i].key,
                                           sets[i].value), 0);
                n += strlen(text + n);
        }
        /* config_set and config_parse share one table: same result */
        ck_assert_msg(parse_str(text, &b, err, sizeof(err)) == 0, "%s", err);
        ck_assert_int_eq(memcmp(&a, &b, sizeof(a)), 0);
        ck_assert_str_eq(a.api_socket, "/run/n/s");
        ck_assert_uint_eq(a.restart_max_ms, 20);

        /* values are trimmed like in the file */
        ck_assert_int_eq(config_set(&a, "state_dir", "  /x\t", err, sizeof(err)), 0);
        ck_assert_str_eq(a.state_dir, "/x");
        /* a key may be set again (later sources override) */
        ck_assert_int_eq(config_set(&a, "state_dir", "/y", err, sizeof(err)), 0);
        ck_assert_str_eq(a.state_dir, "/y");
}
END_TEST


/* The Placement keys (issue 18): URLs, secrets that no error repeats, the keystone cross-checks. */
START_TEST(test_placement_keys)
{
        struct nova_config c, keep;
        char err[512];

        config_defaults(&c);
        ck_assert_str_eq(c.placement_url, "");
        ck_assert_str_eq(c.placement_auth, "noauth");
        ck_assert_str_eq(c.placement_noauth_token, "admin");
        ck_assert_uint_eq(c.reserved_host_memory_mb, 512);
        ck_assert_uint_eq(c.placement_refresh_s, 300);

        ck_assert_int_eq(config_set(&c, "placement_url", "http://127.0.0.1:8778/placement/", err, sizeof(err)), 0);
        ck_assert_str_eq(c.placement_url, "http://127.0.0.1:8778/placement"); /* trailing '/' dropped */
        static const char *const bad_urls[] = { "ftp://x", "http://", "http://u:p@host/", "http://h/p?x=1",
                                                "http://h /", "127.0.0.1:8778", "catalog" /* needs keystone */ };
        for (size_t i = 0; i < ARRAY_SIZE(bad_urls); i++) {
                keep = c;
                ck_assert_msg(config_set(&c, "placement_url", bad_urls[i], err, sizeof(err)) == -EINVAL, "%s",
                              bad_urls[i]);
                ck_assert(memcmp(&c, &keep, sizeof(c)) == 0);
        }
        /* no error message ever repeats a secret */
        char secret[200];
        memset(secret, 'S', sizeof(secret) - 1);
        secret[sizeof(secret) - 1] = '\0';
        ck_assert_int_eq(config_set(&c, "keystone_password", secret, err, sizeof(err)), -EINVAL);
        ck_assert_ptr_null(strstr(err, "SSSS"));
        ck_assert(config_key_is_secret("keystone_password") && config_key_is_secret("keystone_app_cred_secret") &&
                  config_key_is_secret("placement_noauth_token"));
        ck_assert(!config_key_is_secret("keystone_username") && !config_key_is_secret("placement_url"));

        /* keystone needs its settings, named in the error */
        ck_assert_int_eq(config_set(&c, "placement_auth", "keystone", err, sizeof(err)), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "keystone_auth_url"));
        ck_assert_int_eq(parse_str("placement_url = catalog\nplacement_auth = keystone\n"
                                   "keystone_auth_url = http://127.0.0.1:5000/v3\nkeystone_app_cred_id = abc\n",
                                   &c, err, sizeof(err)), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "keystone_app_cred_secret"));
        ck_assert_int_eq(parse_str("placement_url = catalog\nplacement_auth = keystone\n"
                                   "keystone_auth_url = http://127.0.0.1:5000/v3\nkeystone_app_cred_id = abc\n"
                                   "keystone_app_cred_secret = xyz\nplacement_region = RegionOne\n",
                                   &c, err, sizeof(err)), 0);
        ck_assert_str_eq(c.placement_url, "catalog");
        /* keystone settings without placement_url are inert and accepted */
        config_defaults(&c);
        ck_assert_int_eq(config_set(&c, "placement_auth", "keystone", err, sizeof(err)), 0);
        ck_assert_int_eq(config_set(&c, "reserved_host_cpus", "4097", err, sizeof(err)), -EINVAL);
        ck_assert_int_eq(config_set(&c, "placement_refresh_s", "9", err, sizeof(err)), -EINVAL);
        ck_assert_int_eq(config_set(&c, "provider_name", "compute-1.example.org", err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_set_errors)
{
        static const struct {
                const char *key, *value, *err;
        } cases[] = {
                { "foo", "1", "unknown key 'foo'" },
                { "state-dir", "/x", "unknown key 'state-dir'" },
                { "module_timeout_ms", "50", "module_timeout_ms: must be between 100 and 600000" },
                { "module_timeout_ms", "fast", "module_timeout_ms: not a number: 'fast'" },
                { "state_dir", "relative", "state_dir: must be an absolute path: 'relative'" },
                { "state_dir", "/a/../b", "state_dir: must not contain '..'" },
                { "state_dir", "/a\nb", "state_dir: control character 0x0a" },
                { "state_dir", "/\xff", "state_dir: invalid UTF-8" },
                { "plugs", "bogus", "plugs: unknown plug 'bogus'" },
                { "log_level", "trace", "log_level: must be one of debug, info, warning, error" },
                { "restart_max_ms", "150", "restart_max_ms (150) must not be below restart_min_ms (200)" },
                { "restart_min_ms", "40000", "restart_max_ms (30000) must not be below restart_min_ms (40000)" },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct nova_config c, copy;
                char err[256] = "";

                config_defaults(&c);
                copy = c;
                ck_assert_int_eq(config_set(&c, cases[i].key, cases[i].value, err, sizeof(err)), -EINVAL);
                ck_assert_str_eq(err, cases[i].err);
                ck_assert_int_eq(memcmp(&c, &copy, sizeof(c)), 0);
        }
}
END_TEST

/* ---- config_load_file ---- */

static void write_tmp(char *path, const char *data, size_t len)
{
        int fd = mkstemp(path);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write_all(fd, data, len), 0);
        close(fd);
}

START_TEST(test_load_file)
{
        char path[] = "/tmp/test-config-XXXXXX", want[512], err[512];
        struct nova_config c, copy;
        char *big;

        config_defaults(&c);
        write_tmp(path, "log_level = warning\nplugs = openvswitch\n", 40);
        ck_assert_int_eq(config_load_file(path, &c, err, sizeof(err)), 0);
        ck_assert_str_eq(c.log_level, "warning");
        ck_assert(c.plugs[PLUG_OPENVSWITCH]);
        unlink(path);

        copy = c;
        ck_assert_int_eq(config_load_file(path, &c, err, sizeof(err)), -ENOENT);
        ck_assert_int_eq(xsnprintf(want, sizeof(want), "%s: %s", path, strerror(ENOENT)), 0);
        ck_assert_str_eq(err, want);

        ck_assert_int_eq(strscpy(path, "/tmp/test-config-XXXXXX", sizeof(path)), 0);
        write_tmp(path, "log_level = warning\nbogus = 1\n", 30);
        ck_assert_int_eq(config_load_file(path, &c, err, sizeof(err)), -EINVAL);
        ck_assert_int_eq(xsnprintf(want, sizeof(want), "%s: line 2: unknown key 'bogus'", path), 0);
        ck_assert_str_eq(err, want);
        unlink(path);

        big = malloc(CONFIG_MAX_FILE + 1);
        ck_assert_ptr_nonnull(big);
        memset(big, '\n', CONFIG_MAX_FILE + 1);
        ck_assert_int_eq(strscpy(path, "/tmp/test-config-XXXXXX", sizeof(path)), 0);
        write_tmp(path, big, CONFIG_MAX_FILE + 1);
        ck_assert_int_eq(config_load_file(path, &c, err, sizeof(err)), -EFBIG);
        ck_assert_int_eq(xsnprintf(want, sizeof(want), "%s: file too large (max 65536 bytes)", path), 0);
        ck_assert_str_eq(err, want);
        unlink(path);
        free(big);

        ck_assert_int_eq(memcmp(&c, &copy, sizeof(c)), 0);
}
END_TEST

START_TEST(test_module_keys)
{
        static const char *const good_uris[] = { "qemu:///system", "test:///default", "qemu:///embed?root=/tmp/x",
                                                 "qemu+unix:///system?socket=/run/l.sock", "qemu+ssh://host/system" };
        static const char *const bad_uris[] = { "", "system", "://x", "QEMU:///system", "qemu:///sys tem",
                                                "qemu:///s\"x", "qemu:///a'b", "q_emu:///x" };
        struct nova_config c, before;
        char err[256];

        config_defaults(&c);
        ck_assert_str_eq(c.libvirt_uri, "qemu:///system");
        ck_assert_uint_eq(c.shutdown_timeout_s, 60);
        ck_assert_str_eq(c.orphan_policy, "report");
        for (size_t i = 0; i < ARRAY_SIZE(good_uris); i++) {
                ck_assert_int_eq(config_set(&c, "libvirt_uri", good_uris[i], err, sizeof(err)), 0);
                ck_assert_str_eq(c.libvirt_uri, good_uris[i]);
        }
        for (size_t i = 0; i < ARRAY_SIZE(bad_uris); i++) {
                before = c;
                ck_assert_int_eq(config_set(&c, "libvirt_uri", bad_uris[i], err, sizeof(err)), -EINVAL);
                ck_assert_msg(strstr(err, "libvirt_uri"), "error does not name the key: %s", err);
                ck_assert_int_eq(memcmp(&c, &before, sizeof(c)), 0);
        }
        ck_assert_int_eq(config_set(&c, "shutdown_timeout_s", "0", err, sizeof(err)), 0);
        ck_assert_int_eq(config_set(&c, "shutdown_timeout_s", "3600", err, sizeof(err)), 0);
        ck_assert_int_eq(config_set(&c, "shutdown_timeout_s", "3601", err, sizeof(err)), -EINVAL);
        ck_assert_uint_eq(c.reconcile_interval_s, 60);
        ck_assert_int_eq(config_set(&c, "reconcile_interval_s", "0", err, sizeof(err)), 0);
        ck_assert_uint_eq(c.reconcile_interval_s, 0);
        ck_assert_int_eq(config_set(&c, "reconcile_interval_s", "86400", err, sizeof(err)), 0);
        ck_assert_int_eq(config_set(&c, "reconcile_interval_s", "86401", err, sizeof(err)), -EINVAL);
        ck_assert_uint_eq(c.reconcile_interval_s, 86400);
        ck_assert_int_eq(config_set(&c, "orphan_policy", "reap", err, sizeof(err)), 0);
        ck_assert_str_eq(c.orphan_policy, "reap");
        ck_assert_int_eq(config_set(&c, "orphan_policy", "delete", err, sizeof(err)), -EINVAL);
        ck_assert_str_eq(c.orphan_policy, "reap");
        ck_assert_int_eq(config_parse("libvirt_uri = test:///default\norphan_policy = report\n", 53, &c, err,
                                      sizeof(err)),
                         0);
        ck_assert_str_eq(c.libvirt_uri, "test:///default");
}
END_TEST

START_TEST(test_ovs_keys)
{
        struct nova_config c, before;
        char err[256];
        static const struct {
                const char *key, *value;
        } bad[] = {
                { "vif_type", "bridge" },          { "ovsdb_socket", "/run/openvswitch/db.sock" },
                { "ovsdb_socket", "tcp:1.2.3.4:6640" }, { "ovsdb_socket", "unix:relative" },
                { "ovsdb_socket", "unix:/a/../b" },  { "integration_bridge", "" },
                { "integration_bridge", "-br" },     { "integration_bridge", "br int" },
                { "integration_bridge", "a-very-long-bridge-name" }, { "bridge_create", "maybe" },
                { "bridge_datapath_type", "dpdk" },  { "port_timeout_ms", "99" },
                { "port_timeout_ms", "60001" },      { "ovn", "on" },
                { "ovn_wait_ms", "99" },             { "ovn_wait_ms", "600001" },
                { "ovn_timeout_policy", "ignore" },  { "ovn_timeout_policy", "" },
                { "network_mtu", "67" },             { "network_mtu", "65536" },
                { "network_mtu", "-1" },             { "network_mtu", "1442x" },
        };

        config_defaults(&c);
        ck_assert_str_eq(c.vif_type, "ovs");
        ck_assert_str_eq(c.ovsdb_socket, "unix:/run/openvswitch/db.sock");
        ck_assert_str_eq(c.integration_bridge, "br-int");
        ck_assert(!c.bridge_create);
        ck_assert_str_eq(c.bridge_datapath_type, "system");
        ck_assert_uint_eq(c.port_timeout_ms, 5000);
        ck_assert_int_eq(config_set(&c, "vif_type", "tap", err, sizeof(err)), 0);
        ck_assert_int_eq(config_set(&c, "ovsdb_socket", "unix:/tmp/ovs/db.sock", err, sizeof(err)), 0);
        ck_assert_int_eq(config_set(&c, "integration_bridge", "br-int.2_x", err, sizeof(err)), 0);
        ck_assert_int_eq(config_set(&c, "bridge_create", "yes", err, sizeof(err)), 0);
        ck_assert(c.bridge_create);
        ck_assert_int_eq(config_set(&c, "bridge_datapath_type", "netdev", err, sizeof(err)), 0);
        ck_assert(!c.ovn);
        ck_assert_uint_eq(c.ovn_wait_ms, 30000);
        ck_assert_str_eq(c.ovn_timeout_policy, "fail");
        ck_assert_uint_eq(c.network_mtu, 0);
        ck_assert_int_eq(config_set(&c, "port_timeout_ms", "100", err, sizeof(err)), 0);
        ck_assert_int_eq(config_set(&c, "ovn", "true", err, sizeof(err)), 0);
        ck_assert(c.ovn);
        ck_assert_int_eq(config_set(&c, "ovn_wait_ms", "100", err, sizeof(err)), 0);
        ck_assert_int_eq(config_set(&c, "ovn_wait_ms", "600000", err, sizeof(err)), 0);
        ck_assert_uint_eq(c.ovn_wait_ms, 600000);
        ck_assert_int_eq(config_set(&c, "ovn_timeout_policy", "continue", err, sizeof(err)), 0);
        ck_assert_str_eq(c.ovn_timeout_policy, "continue");
        ck_assert_int_eq(config_set(&c, "network_mtu", "1442", err, sizeof(err)), 0);
        ck_assert_uint_eq(c.network_mtu, 1442);
        ck_assert_int_eq(config_set(&c, "network_mtu", "0", err, sizeof(err)), 0);
        ck_assert_uint_eq(c.network_mtu, 0);
        ck_assert_int_eq(config_set(&c, "network_mtu", "68", err, sizeof(err)), 0);
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                before = c;
                ck_assert_msg(config_set(&c, bad[i].key, bad[i].value, err, sizeof(err)) == -EINVAL, "%s = %s accepted",
                              bad[i].key, bad[i].value);
                ck_assert_msg(strstr(err, bad[i].key), "error does not name %s: %s", bad[i].key, err);
                ck_assert_int_eq(memcmp(&c, &before, sizeof(c)), 0);
        }
}
END_TEST

static Suite *config_suite(void)
{
        Suite *s = suite_create("config");
        TCase *tc;

        tc = tcase_create("parse");
        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_defaults_comparable);
        tcase_add_test(tc, test_empty_text);
        tcase_add_test(tc, test_every_key);
        tcase_add_test(tc, test_image_cache_keys);
        tcase_add_test(tc, test_plugs_values);
        tcase_add_test(tc, test_log_levels);
        tcase_add_test(tc, test_number_bounds);
        tcase_add_test(tc, test_paths);
        tcase_add_test(tc, test_order_independent_cross_check);
        tcase_add_test(tc, test_module_keys);
        tcase_add_test(tc, test_ovs_keys);
        suite_add_tcase(s, tc);

        tc = tcase_create("errors");
        tcase_add_loop_test(tc, test_errors, 0, (int)ARRAY_SIZE(error_cases));
        tcase_add_test(tc, test_error_nul_byte);
        tcase_add_test(tc, test_error_long_line);
        tcase_add_test(tc, test_error_socket_length);
        tcase_add_test(tc, test_error_file_size);
        tcase_add_test(tc, test_error_null_err);
        suite_add_tcase(s, tc);

        tc = tcase_create("set");
        tcase_add_test(tc, test_set_every_key);
        tcase_add_test(tc, test_qemu_user);
        tcase_add_test(tc, test_storage_pool);
        tcase_add_test(tc, test_set_errors);
        tcase_add_test(tc, test_placement_keys);
        tcase_add_test(tc, test_load_file);
        suite_add_tcase(s, tc);

        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(config_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
