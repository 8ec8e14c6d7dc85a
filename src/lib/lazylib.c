/* lazylib.c - see lazylib.h */
#include "lazylib.h"

#include "log.h"
#include "util.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* A library is loaded once its slots lead into it (they are filled together, never emptied). */
static bool lib_loaded(const struct lazylib *lib)
{
        return lib->n == 0 || lib->slots[0] != (void *)lazylib_unloaded;
}

bool lazylib_loaded(const struct lazylib *table, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (!lib_loaded(&table[i]))
                        return false;
        return true;
}

void lazylib_unloaded(void)
{
        log_err("internal error: a function of a lazily loaded library was called before lazylib_load_all()");
        abort();
}

static int load_one(const struct lazylib *lib, char *err, size_t errlen)
{
        void *handle = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);

        if (!handle) {
                const char *why = dlerror();
                (void)snprintf(err, errlen, "cannot load %s: %s", lib->soname, why ? why : "unknown error");
                return -ENOENT;
        }
        /* every name first, so that a library missing one leaves its slots as they were */
        for (size_t i = 0; i < lib->n; i++)
                if (!dlsym(handle, lib->names[i])) {
                        (void)snprintf(err, errlen, "%s has no function %s", lib->soname, lib->names[i]);
                        return -ENOENT; /* handle stays open: harmless, the program exits or retries */
                }
        for (size_t i = 0; i < lib->n; i++)
                lib->slots[i] = dlsym(handle, lib->names[i]);
        return 0;
}

int lazylib_load_all(const struct lazylib *table, size_t n, char *err, size_t errlen)
{
        int r;

        for (size_t i = 0; i < n; i++) {
                if (lib_loaded(&table[i]))
                        continue;
                r = load_one(&table[i], err, errlen);
                if (r < 0)
                        return r;
        }
        return 0;
}
