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

        (void)argv;
        if (argc != 0) {
                fprintf(stderr, "usage: snapctl get -d | nova-hypervisor config-check\n");
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
