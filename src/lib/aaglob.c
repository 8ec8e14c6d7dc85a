/* aaglob.c - see aaglob.h */
#include "aaglob.h"

#define MAX_ALTERNATIVES 4096
#define DIGITS '\001' /* stands for @{pid}/@{tid}: one or more digits */

static const struct {
        const char *name, *value;
} variables[] = {
        { "@{PROC}", "/proc" },
        { "@{pid}", "\001" },
        { "@{tid}", "\001" },
        { "@{SNAP_NAME}", "nova-hypervisor" },
        { "@{SNAP_INSTANCE_NAME}", "nova-hypervisor" },
        { "@{SNAP_REVISION}", "*" },
        { "@{INSTALL_DIR}", "/{,var/lib/snapd/}snap" },
        { "@{HOME}", "{/root,/home/*}" },
        { "@{HOMEDIRS}", "/home/" },
        { "@{multiarch}", "*-linux-gnu*" },
        { "@{SNAP_COREUTIL_DIRS}", "/{bin/,usr/bin/,usr/bin/gnu,usr/lib/cargo/bin/coreutils/}" },
};

/* Glob match without braces: *, **, ?, [..], DIGITS. */
static bool match_here(const char *p, const char *s)
{
        for (;;) {
                switch (*p) {
                case '\0':
                        return *s == '\0';
                case '*':
                        if (p[1] == '*') {
                                while (*p == '*')
                                        p++;
                                for (const char *t = s;; t++) {
                                        if (match_here(p, t))
                                                return true;
                                        if (!*t)
                                                return false;
                                }
                        }
                        p++;
                        for (const char *t = s;; t++) {
                                if (match_here(p, t))
                                        return true;
                                if (!*t || *t == '/')
                                        return false;
                        }
                case '?':
                        if (!*s || *s == '/')
                                return false;
                        p++, s++;
                        break;
                case DIGITS:
                        if (!(*s >= '0' && *s <= '9'))
                                return false;
                        p++;
                        for (const char *t = s + 1;; t++) {
                                if (match_here(p, t))
                                        return true;
                                if (!(*t >= '0' && *t <= '9'))
                                        return false;
                        }
                case '[': {
                        const char *q = p + 1;
                        bool neg = *q == '^', hit = false;
                        if (neg)
                                q++;
                        if (!*s || *s == '/')
                                return false;
                        for (; *q && *q != ']'; q++) {
                                if (q[1] == '-' && q[2] && q[2] != ']') {
                                        if (*s >= q[0] && *s <= q[2])
                                                hit = true;
                                        q += 2;
                                } else if (*q == *s)
                                        hit = true;
                        }
                        if (*q != ']' || hit == neg)
                                return false;
                        p = q + 1, s++;
                        break;
                }
                default:
                        if (*p != *s)
                                return false;
                        p++, s++;
                }
        }
}

/* Expand the first {..} group of pat (after variables) and match each
 * alternative; *budget bounds the alternatives tried. */
static bool match_braces(const char *pat, const char *path, int *budget)
{
        const char *open = strchr(pat, '{'), *close, *start;
        int depth = 0;

        if (!open)
                return --*budget >= 0 && match_here(pat, path);
        for (close = open; *close; close++) {
                if (*close == '{')
                        depth++;
                else if (*close == '}' && --depth == 0)
                        break;
        }
        if (!*close)
                return false;
        start = open + 1;
        depth = 0;
        for (const char *c = start; c <= close; c++) {
                if (*c == '{')
                        depth++;
                else if (*c == '}' && depth > 0 && c != close)
                        depth--;
                else if ((*c == ',' && depth == 0) || c == close) {
                        size_t n = (size_t)(open - pat) + (size_t)(c - start) + strlen(close + 1) + 1;
                        _cleanup_free_ char *alt = malloc(n);
                        if (!alt)
                                return false;
                        (void)snprintf(alt, n, "%.*s%.*s%s", (int)(open - pat), pat, (int)(c - start), start,
                                       close + 1);
                        if (match_braces(alt, path, budget))
                                return true;
                        if (*budget < 0)
                                return false;
                        start = c + 1;
                }
        }
        return false;
}

bool aaglob_match(const char *pattern, const char *path)
{
        char buf[1024];
        size_t o = 0;
        int budget = MAX_ALTERNATIVES;

        for (const char *p = pattern; *p;) {
                bool done = false;
                if (p[0] == '@' && p[1] == '{')
                        for (size_t i = 0; i < ARRAY_SIZE(variables); i++) {
                                size_t n = strlen(variables[i].name), v = strlen(variables[i].value);
                                if (strncmp(p, variables[i].name, n) == 0) {
                                        if (o + v >= sizeof(buf))
                                                return false;
                                        memcpy(buf + o, variables[i].value, v);
                                        o += v;
                                        p += n;
                                        done = true;
                                        break;
                                }
                        }
                if (!done) {
                        if (o + 1 >= sizeof(buf))
                                return false;
                        buf[o++] = *p++;
                }
        }
        buf[o] = '\0';
        return match_braces(buf, path, &budget);
}

bool aaperms_grant(const char *rule_perms, const char *mask)
{
        if (!mask || !*mask)
                return false;
        for (const char *m = mask; *m; m++) {
                bool ok;
                switch (*m) {
                case 'w':
                case 'c':
                case 'd':
                        ok = strchr(rule_perms, 'w') != NULL;
                        break;
                case 'a':
                        ok = strchr(rule_perms, 'a') || strchr(rule_perms, 'w');
                        break;
                case 'r':
                case 'k':
                case 'l':
                case 'm':
                case 'x':
                        ok = strchr(rule_perms, *m) != NULL;
                        break;
                default:
                        ok = true; /* kernel-only bits (e.g. N) are not file rules */
                }
                if (!ok)
                        return false;
        }
        return true;
}
