/* config-check.c - `nova-hypervisor config-check`, used by the configure hook:
 * reads `snapctl get -d` from stdin and prints the validated config file. */
#include "snap-commands.h"

#include "snapconfig.h"

int cmd_config_check(int argc, char **argv)
{
        _cleanup_free_ char *json = NULL, *text = NULL;
        size_t len = 0;
        char err[512];
        int r;

        if (argc == 1 && streq(argv[0], "--keys")) {
                /* every snap key, for `snapctl get -d $(nova-hypervisor config-check --keys)` */
                for (size_t i = 0; config_key_name(i); i++) {
                        char key[64];
                        if (snapconfig_snap_key(config_key_name(i), key, sizeof(key)) == 0)
                                printf("%s\n", key);
                }
                return fflush(stdout) == 0 ? 0 : 1;
        }
        if (argc != 0) {
                fprintf(stderr, "usage: snapctl get -d KEY... | nova-hypervisor config-check\n"
                                "       nova-hypervisor config-check --keys\n");
                return 2;
        }
        json = malloc(SNAPCONFIG_MAX_JSON + 2);
        if (!json)
                return 1;
        while (len <= SNAPCONFIG_MAX_JSON) {
                size_t k = fread(json + len, 1, SNAPCONFIG_MAX_JSON + 1 - len, stdin);
                if (k == 0)
                        break;
                len += k;
        }
        if (ferror(stdin)) {
                fprintf(stderr, "error: cannot read the configuration from stdin\n");
                return 1;
        }
        r = snapconfig_to_config(json, len, &text, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "error: %s\n", err);
                return 1;
        }
        fputs(text, stdout);
        return fflush(stdout) == 0 ? 0 : 1;
}
