/* migrate-xml.c - see migrate-xml.h */
#include "migrate-xml.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool dir_ok(const char *dir, size_t n)
{
        if (n < 2 || n >= MIGRATE_DIR_MAX || dir[0] != '/' || dir[n - 1] == '/')
                return false;
        for (size_t i = 0; i < n; i++)
                if (dir[i] == '\'' || dir[i] == '"' || dir[i] == '<' || dir[i] == '>' || dir[i] == '&' ||
                    (unsigned char)dir[i] < 0x20 || dir[i] == 0x7f)
                        return false;
        for (const char *p = dir; (p = strstr(p, "..")) != NULL && p < dir + n; p++)
                if ((p == dir || p[-1] == '/') && (p + 2 == dir + n || p[2] == '/'))
                        return false;
        return true;
}

int migrate_pool_dir_from_xml(const char *xml, char ret[MIGRATE_DIR_MAX])
{
        const char *target, *start, *end;
        size_t n;

        if (!xml || strlen(xml) > MIGRATE_XML_MAX)
                return -EINVAL;
        while (*xml == ' ' || *xml == '\n' || *xml == '\t' || *xml == '\r')
                xml++;
        if (strncmp(xml, "<pool type='dir'", 16) != 0 && strncmp(xml, "<pool type=\"dir\"", 16) != 0)
                return -EINVAL;
        target = strstr(xml, "<target>");
        if (!target)
                return -EINVAL;
        start = strstr(target, "<path>");
        end = start ? strstr(start, "</path>") : NULL;
        if (!start || !end || end > strstr(target, "</target>"))
                return -EINVAL;
        start += 6;
        n = (size_t)(end - start);
        if (!dir_ok(start, n))
                return -EINVAL;
        memcpy(ret, start, n);
        ret[n] = '\0';
        return 0;
}

int migrate_rewrite_dirs(const char *xml, const char *src_dir, const char *dst_dir, char **ret, size_t *ret_count)
{
        size_t xlen, slen, dlen, count = 0, out_len = 0, cap;
        const char *p;
        char *out;

        if (!xml || !src_dir || !dst_dir)
                return -EINVAL;
        xlen = strlen(xml);
        slen = strlen(src_dir);
        dlen = strlen(dst_dir);
        if (xlen > MIGRATE_XML_MAX || !dir_ok(src_dir, slen) || !dir_ok(dst_dir, dlen))
                return -EINVAL;
        /* each rewrite grows the text by at most dlen bytes, and there are at most xlen / (slen + 2) */
        cap = xlen + 1 + (dlen > slen ? (xlen / (slen + 2) + 1) * (dlen - slen) : 0);
        out = malloc(cap);
        if (!out)
                return -ENOMEM;
        for (p = xml; *p;) {
                if ((*p == '\'' || *p == '"') && strncmp(p + 1, src_dir, slen) == 0 && p[1 + slen] == '/') {
                        out[out_len++] = *p;
                        memcpy(out + out_len, dst_dir, dlen);
                        out_len += dlen;
                        p += 1 + slen;
                        count++;
                        continue;
                }
                out[out_len++] = *p++;
        }
        out[out_len] = '\0';
        /* a path of the source's pool anywhere else (element text, an unquoted form) would
         * make the destination open the source's files: refuse rather than guess */
        if (strcmp(src_dir, dst_dir) != 0) {
                for (const char *q = out; (q = strstr(q, src_dir)) != NULL; q++)
                        if (q[slen] == '/' || q[slen] == '<' || q[slen] == '\'' || q[slen] == '"') {
                                free(out);
                                return -EINVAL;
                        }
        }
        *ret = out;
        *ret_count = count;
        return 0;
}
