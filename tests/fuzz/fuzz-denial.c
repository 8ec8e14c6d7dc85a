/* fuzz-denial.c - libFuzzer target for denial_parse(): never crashes, and a
 * decoded record has NUL-terminated fields and the kind's required fields. */
#include "denial.h"

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
        struct denial d;
        int r = denial_parse((const char *)data, size, &d);

        if (r < 0) {
                CHECK(r == -ENOENT || r == -EBADMSG || r == -EFBIG || r == -ENOMEM);
                return 0;
        }
        CHECK(memchr(d.profile, '\0', sizeof(d.profile)) && memchr(d.name, '\0', sizeof(d.name)) &&
              memchr(d.comm, '\0', sizeof(d.comm)) && memchr(d.exe, '\0', sizeof(d.exe)));
        if (d.kind == DENIAL_SECCOMP)
                CHECK(!strchr(d.profile, ' ')); /* the label only, never "(enforce)" */
        else
                CHECK(d.operation[0] != '\0' && d.protocol >= -1 && d.protocol <= 255);
        (void)denial_syscall_name(d.syscall);
        (void)denial_netlink_name(d.protocol);
        return 0;
}
