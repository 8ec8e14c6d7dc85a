/* fuzz-snapconfig.c - libFuzzer target for snapconfig_to_config(), the
 * decoder of `snapctl get -d` the configure hook feeds to config-check.
 * On failure: a message and no text. On success: the text parses with
 * config_parse() and never sets a key the snap fixes. */
#include "snapconfig.h"

#define CHECK(x)                                                                              \
        do {                                                                                  \
                if (!(x)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
                        abort();                                                              \
                }                                                                             \
        } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char err[512] = "", why[512];
        char *text = NULL;
        struct nova_config cfg;
        int r = snapconfig_to_config((const char *)data, size, &text, err, sizeof(err));

        if (r < 0) {
                CHECK(text == NULL);
                CHECK(err[0] != '\0');
                return 0;
        }
        CHECK(text != NULL);
        config_defaults(&cfg);
        CHECK(config_parse(text, strlen(text), &cfg, why, sizeof(why)) == 0);
        static const char *const fixed[] = { "state_dir", "run_dir", "api_socket", "module_dir", "plugs" };
        for (const char *line = text; *line; line = strchr(line, '\n') + 1) {
                CHECK(strchr(line, '\n') != NULL);
                for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
                        CHECK(strncmp(line, fixed[i], strlen(fixed[i])) != 0 || line[strlen(fixed[i])] != ' ');
        }
        free(text);
        return 0;
}
