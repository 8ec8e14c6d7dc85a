/* lazylib.h - libraries a program links lazily: loaded with dlopen() when the
 * program asks (lazylib_load_all), not by the dynamic loader at exec.
 *
 * Why: a module whose library tree is big pays for loading it at every start,
 * before it can say hello (nova-libvirt: libvirt.so.0 brings 60 libraries,
 * about 40 ms of CPU to map and relocate). Such a program is linked without the
 * library: scripts/lazy-shim.sh generates, from the program's own objects, one
 * small function (a trampoline) for each library function they call. Each
 * trampoline jumps through a slot; lazylib_load_all() fills the slots with
 * dlsym()'s answers. Until then a slot points to lazylib_unloaded(), which
 * aborts with a message: calling a lazy library before loading it is a bug of
 * the program, never a silent fallback. The generated file also declares each
 * library in an ELF note (.note.dlopen, systemd's convention), which
 * scripts/snaplibs.py reads so that the snap bundles the library as if it
 * were linked. */
#ifndef NOVA_LAZYLIB_H
#define NOVA_LAZYLIB_H

#include <stdbool.h>
#include <stddef.h>

struct lazylib {
        const char *soname;             /* dlopen()ed by this name */
        const char *const *names;       /* the functions the program calls, n of them */
        void **slots;                   /* where each trampoline jumps, n of them */
        size_t n;
};

/* Defined by the file scripts/lazy-shim.sh generates for a program: its lazy libraries. */
extern const struct lazylib lazylib_program_table[];
extern const size_t lazylib_program_table_n;

/* Load every library of table not loaded yet (RTLD_NOW: a missing function shows here,
 * not at its first call) and fill its slots; never unloaded. 0, or -ENOENT with the
 * reason in err and the slots of the library that failed untouched (those loaded before
 * it stay loaded). Call from one thread, before any lazy function is called. */
int lazylib_load_all(const struct lazylib *table, size_t n, char *err, size_t errlen);

/* True when every library of table is loaded (its slots lead into it). */
bool lazylib_loaded(const struct lazylib *table, size_t n);

/* Where an unfilled slot leads: logs and aborts. */
_Noreturn void lazylib_unloaded(void);

#endif
