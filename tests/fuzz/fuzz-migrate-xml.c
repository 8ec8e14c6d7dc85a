/* fuzz-migrate-xml.c - libFuzzer target for a live migration's text work and field checks:
 * migrate_rewrite_dirs() (the destination XML), migrate_pool_dir_from_xml() (the destination
 * pool's directory) and the validators of domain_migrate's fields.
 *
 * A rewritten XML never names the source's directory as a directory; it is the input with
 * exactly `count` directory swaps; a pool directory accepted is absolute, bounded and free of
 * quotes and "..". A URI, host or pool name the validators accept follows the documented grammar. */
#include "libvirt-protocol.h"
#include "migrate-xml.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(x)                                                                             \
        do {                                                                                 \
                if (!(x)) {                                                                  \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
                        __builtin_trap();                                                    \
                }                                                                            \
        } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SRC "/p/a"
#define DST "/pool/b-longer"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *text, *out = NULL, dir[MIGRATE_DIR_MAX];
        size_t n = 0;

        if (size > 64 * 1024)
                return 0;
        text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';

        if (migrate_rewrite_dirs(text, SRC, DST, &out, &n) == 0) {
                size_t in_len = strlen(text), out_len = strlen(out);
                CHECK(out_len == in_len + n * (strlen(DST) - strlen(SRC)));
                for (const char *q = out; (q = strstr(q, SRC)) != NULL; q++)
                        CHECK(q[strlen(SRC)] != '/' && q[strlen(SRC)] != '\'' && q[strlen(SRC)] != '"' &&
                              q[strlen(SRC)] != '<');
                free(out);
        }
        if (migrate_pool_dir_from_xml(text, dir) == 0) {
                CHECK(dir[0] == '/');
                CHECK(strlen(dir) < MIGRATE_DIR_MAX);
                CHECK(!strpbrk(dir, "'\"<>&"));
                CHECK(!strstr(dir, "/../") && strcmp(dir + (strlen(dir) >= 3 ? strlen(dir) - 3 : 0), "/..") != 0);
        }
        if (migrate_dest_uri_is_valid(text)) {
                CHECK(strlen(text) <= LIBVIRT_MAX_URI);
                CHECK(!strstr(text, ".."));
                CHECK(!strpbrk(text, " ;&|'\"\\`$\n"));
                CHECK(strncmp(text, "qemu+unix:///system?socket=/", 28) == 0 ||
                      ((strncmp(text, "qemu+tcp://", 11) == 0 || strncmp(text, "qemu+tls://", 11) == 0) &&
                       strlen(text) > 18 && strcmp(text + strlen(text) - 7, "/system") == 0 && !strchr(text, '?')));
        }
        if (migrate_host_is_valid(text)) {
                unsigned char buf[16];
                CHECK(inet_pton(AF_INET, text, buf) == 1 || inet_pton(AF_INET6, text, buf) == 1);
        }
        if (pool_name_is_valid(text)) {
                CHECK(strlen(text) >= 1 && strlen(text) <= 63);
                CHECK(strspn(text, "abcdefghijklmnopqrstuvwxyz0123456789_-") == strlen(text));
        }
        free(text);
        return 0;
}
