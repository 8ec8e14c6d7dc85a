/* curl-lazy.c - libcurl, loaded when the Placement client first needs it.
 *
 * Why: nova-compute links nothing else that needs TLS, yet linking libcurl
 * maps it and its whole tree (OpenSSL's libcrypto and libssl, GnuTLS and
 * p11-kit through libldap and librtmp, Kerberos, libssh2, nghttp2...) at every
 * start, and the loader touches their pages: about 6 MiB of the core's RSS
 * (9.2 MiB idle with it, 3.3 MiB without; bench/boot). Only a host with
 * placement_url set uses libcurl, so the core does not link it: these
 * definitions of the libcurl functions placement.c calls dlopen()
 * libcurl.so.4 on first use and forward to it. Without libcurl on the host
 * (or in the snap) curl_global_init() fails and placement.c reports that
 * Placement is not available; everything else works.
 *
 * The variadic setopt/getinfo calls forward their one argument by the type
 * libcurl's option numbering gives it (curl.h: CURLOPTTYPE_LONG 0,
 * OBJECTPOINT 10000, FUNCTIONPOINT 20000, OFF_T 30000, BLOB 40000; CURLINFO_*
 * always take a pointer). Single-threaded, as the core. */
#define CURL_DISABLE_TYPECHECK 1 /* plain prototypes: these are the definitions */
#include "log.h"
#include "util.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <stdarg.h>

#define CURL_SONAME "libcurl.so.4"

/* The library loaded here, declared in the binary the way systemd's "ELF dlopen metadata"
 * convention does (a note in section .note.dlopen, owner "FDO", type 0x407c0c0a, whose
 * descriptor is a JSON array of {feature, description, priority, soname[]}): a dlopen()ed
 * library is in no DT_NEEDED entry, and scripts/snaplibs.py reads this note so that the snap
 * bundles libcurl and its dependencies as it does for linked libraries (core22 has no libcurl). */
#define DLOPEN_NOTE_JSON                                                                       \
        "[{\"feature\":\"placement\",\"description\":\"HTTP client of the Placement sync\","          \
        "\"priority\":\"required\",\"soname\":[\"" CURL_SONAME "\"]}]"
static const struct {
        uint32_t n_namesz, n_descsz, n_type;
        char name[4];
        char desc[(sizeof(DLOPEN_NOTE_JSON) + 3) & ~(size_t)3];
} dlopen_note __attribute__((used, section(".note.dlopen"), aligned(4))) = {
        .n_namesz = 4,
        .n_descsz = sizeof(DLOPEN_NOTE_JSON),
        .n_type = 0x407c0c0a,
        .name = "FDO",
        .desc = DLOPEN_NOTE_JSON,
};

static struct {
        bool tried;
        void *handle;
        CURLcode (*global_init)(long);
        void (*global_cleanup)(void);
        CURL *(*easy_init)(void);
        void (*easy_cleanup)(CURL *);
        CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
        CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
        const char *(*easy_strerror)(CURLcode);
        CURLM *(*multi_init)(void);
        CURLMcode (*multi_cleanup)(CURLM *);
        CURLMcode (*multi_add_handle)(CURLM *, CURL *);
        CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
        CURLMcode (*multi_assign)(CURLM *, curl_socket_t, void *);
        CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
        CURLMcode (*multi_socket_action)(CURLM *, curl_socket_t, int, int *);
        CURLMsg *(*multi_info_read)(CURLM *, int *);
        struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
        void (*slist_free_all)(struct curl_slist *);
} lib; /* the one libcurl of the process: no per-object state to own */

/* dlopen once; true when every function is there. */
static bool curl_loaded(void)
{
        static const struct {
                const char *name;
                size_t offset;
        } syms[] = {
#define SYM(field, name) { name, offsetof(__typeof__(lib), field) }
                SYM(global_init, "curl_global_init"),
                SYM(global_cleanup, "curl_global_cleanup"),
                SYM(easy_init, "curl_easy_init"),
                SYM(easy_cleanup, "curl_easy_cleanup"),
                SYM(easy_setopt, "curl_easy_setopt"),
                SYM(easy_getinfo, "curl_easy_getinfo"),
                SYM(easy_strerror, "curl_easy_strerror"),
                SYM(multi_init, "curl_multi_init"),
                SYM(multi_cleanup, "curl_multi_cleanup"),
                SYM(multi_add_handle, "curl_multi_add_handle"),
                SYM(multi_remove_handle, "curl_multi_remove_handle"),
                SYM(multi_assign, "curl_multi_assign"),
                SYM(multi_setopt, "curl_multi_setopt"),
                SYM(multi_socket_action, "curl_multi_socket_action"),
                SYM(multi_info_read, "curl_multi_info_read"),
                SYM(slist_append, "curl_slist_append"),
                SYM(slist_free_all, "curl_slist_free_all"),
#undef SYM
        };

        if (lib.tried)
                return lib.handle != NULL;
        lib.tried = true;
        lib.handle = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
        if (!lib.handle) {
                log_err("placement: cannot load %s: %s", CURL_SONAME, dlerror());
                return false;
        }
        for (size_t i = 0; i < ARRAY_SIZE(syms); i++) {
                void *f = dlsym(lib.handle, syms[i].name);
                if (!f) {
                        log_err("placement: %s has no %s", CURL_SONAME, syms[i].name);
                        (void)dlclose(lib.handle);
                        lib.handle = NULL;
                        return false;
                }
                memcpy((char *)&lib + syms[i].offset, &f, sizeof(f));
        }
        return true;
}

CURLcode curl_global_init(long flags) { return curl_loaded() ? lib.global_init(flags) : CURLE_FAILED_INIT; }

void curl_global_cleanup(void)
{
        if (lib.handle)
                lib.global_cleanup();
}

CURL *curl_easy_init(void) { return curl_loaded() ? lib.easy_init() : NULL; }

void curl_easy_cleanup(CURL *c)
{
        if (lib.handle)
                lib.easy_cleanup(c);
}

/* One setopt argument, by the type its option number gives (see the top). */
#define FORWARD_OPTION(call, handle, option, ap)                                                      \
        do {                                                                                          \
                if ((option) < CURLOPTTYPE_OBJECTPOINT)                                               \
                        r = call(handle, option, va_arg(ap, long));                                   \
                else if ((option) < CURLOPTTYPE_FUNCTIONPOINT)                                        \
                        r = call(handle, option, va_arg(ap, void *));                                 \
                else if ((option) < CURLOPTTYPE_OFF_T)                                                \
                        r = call(handle, option, va_arg(ap, void (*)(void)));                         \
                else if ((option) < CURLOPTTYPE_BLOB)                                                 \
                        r = call(handle, option, va_arg(ap, curl_off_t));                             \
                else                                                                                  \
                        r = call(handle, option, va_arg(ap, void *));                                 \
        } while (0)

CURLcode curl_easy_setopt(CURL *c, CURLoption option, ...)
{
        CURLcode r;
        va_list ap;

        if (!curl_loaded())
                return CURLE_FAILED_INIT;
        va_start(ap, option);
        FORWARD_OPTION(lib.easy_setopt, c, option, ap);
        va_end(ap);
        return r;
}

CURLcode curl_easy_getinfo(CURL *c, CURLINFO info, ...)
{
        CURLcode r;
        va_list ap;

        if (!curl_loaded())
                return CURLE_FAILED_INIT;
        va_start(ap, info);
        r = lib.easy_getinfo(c, info, va_arg(ap, void *));
        va_end(ap);
        return r;
}

const char *curl_easy_strerror(CURLcode code)
{
        return curl_loaded() ? lib.easy_strerror(code) : "libcurl is not available";
}

CURLM *curl_multi_init(void) { return curl_loaded() ? lib.multi_init() : NULL; }

CURLMcode curl_multi_cleanup(CURLM *m) { return lib.handle ? lib.multi_cleanup(m) : CURLM_BAD_HANDLE; }

CURLMcode curl_multi_add_handle(CURLM *m, CURL *c)
{
        return lib.handle ? lib.multi_add_handle(m, c) : CURLM_BAD_HANDLE;
}

CURLMcode curl_multi_remove_handle(CURLM *m, CURL *c)
{
        return lib.handle ? lib.multi_remove_handle(m, c) : CURLM_BAD_HANDLE;
}

CURLMcode curl_multi_assign(CURLM *m, curl_socket_t fd, void *p)
{
        return lib.handle ? lib.multi_assign(m, fd, p) : CURLM_BAD_HANDLE;
}

CURLMcode curl_multi_setopt(CURLM *m, CURLMoption option, ...)
{
        CURLMcode r;
        va_list ap;

        if (!lib.handle)
                return CURLM_BAD_HANDLE;
        va_start(ap, option);
        FORWARD_OPTION(lib.multi_setopt, m, option, ap);
        va_end(ap);
        return r;
}

CURLMcode curl_multi_socket_action(CURLM *m, curl_socket_t fd, int mask, int *running)
{
        return lib.handle ? lib.multi_socket_action(m, fd, mask, running) : CURLM_BAD_HANDLE;
}

CURLMsg *curl_multi_info_read(CURLM *m, int *left)
{
        if (!lib.handle) {
                *left = 0;
                return NULL;
        }
        return lib.multi_info_read(m, left);
}

struct curl_slist *curl_slist_append(struct curl_slist *list, const char *s)
{
        return curl_loaded() ? lib.slist_append(list, s) : NULL;
}

void curl_slist_free_all(struct curl_slist *list)
{
        if (lib.handle)
                lib.slist_free_all(list);
}
