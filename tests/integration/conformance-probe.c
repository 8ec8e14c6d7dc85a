/* conformance-probe.c - stands in for our code in test-snap-conformance.
 * Built with the product's flags (so under SAN=1 with the sanitizer runtime),
 * it reads /proc/self/environ from main: the very access that the ASan/UBSan
 * runtime makes before main. The conformance checker must set the runtime's
 * read apart and still flag this one. Exits 0 when the read worked. */
#include <fcntl.h>
#include <unistd.h>

int main(void)
{
        char buf[256];
        ssize_t n;
        int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return 1;
        n = read(fd, buf, sizeof(buf));
        (void)close(fd);
        return n >= 0 ? 0 : 1;
}
