/* fuzz-proc-status.c - libFuzzer target for proc_security_parse() (src/lib/util.c),
 * the decoder of /proc/<pid>/status the modules check their capabilities with
 * and the core reports each module's with. Contracts: documented returns only;
 * *ret untouched on failure; on success every Cap* line was there once, and
 * each mask read is the one a plain re-scan of the input finds. */
#include "util.h"

#define CHECK(x)                                                                              \
        do {                                                                                  \
                if (!(x)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
                        abort();                                                              \
                }                                                                             \
        } while (0)

/* The value on the line "key<blanks><hex>" of text (len bytes, no NUL), by a
 * separate, simple scan: the blanks skipped, strtoull on a bounded copy of the
 * rest (the parser refuses more than 16 hex digits, so 127 bytes hold any value
 * it accepts; the blanks before them may be many). */
static bool rescan(const char *text, size_t len, const char *key, uint64_t *ret)
{
        size_t klen = strlen(key);

        for (size_t i = 0; i < len;) {
                const char *eol = memchr(text + i, '\n', len - i);
                size_t l = eol ? (size_t)(eol - (text + i)) : len - i;
                if (l > klen && memcmp(text + i, key, klen) == 0) {
                        char line[128];
                        size_t v = klen, n;
                        while (v < l && (text[i + v] == ' ' || text[i + v] == '\t'))
                                v++;
                        n = l - v < sizeof(line) - 1 ? l - v : sizeof(line) - 1;
                        memcpy(line, text + i + v, n);
                        line[n] = '\0';
                        *ret = strtoull(line, NULL, 16);
                        return true;
                }
                i += l + 1;
        }
        return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char *const keys[] = { "CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:" };
        struct proc_security sec, untouched;
        char *text = malloc(size + 1); /* exact size: reads past the end are caught */
        int r;

        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        memset(&sec, 0xa5, sizeof(sec));
        untouched = sec;
        r = proc_security_parse(text, size, &sec);
        CHECK(r == 0 || r == -EBADMSG || r == -EINVAL || r == -ERANGE);
        if (r < 0) {
                CHECK(memcmp(&sec, &untouched, sizeof(sec)) == 0);
        } else {
                const uint64_t got[] = { sec.cap_inh, sec.cap_prm, sec.cap_eff, sec.cap_bnd, sec.cap_amb };
                CHECK(memchr(text, '\0', size) == NULL);
                for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
                        uint64_t v;
                        CHECK(rescan(text, size, keys[i], &v));
                        CHECK(v == got[i]);
                }
        }
        free(text);
        return 0;
}
