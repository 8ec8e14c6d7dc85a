/* libvirt-idle-floor.c - the floor under nova-libvirt for bench/footprint: the least a
 * libvirt client that hears domain events can be. It registers libvirt's default
 * event loop (as nova-libvirt must, for lifecycle events and the close callback),
 * opens the URI it is given, registers a domain lifecycle callback and idles in
 * the loop. Its resident memory and its wake-ups in an idle window are what no
 * code of ours on top of libvirt can go under; bench/footprint prints them beside
 * nova-libvirt's.
 *
 *   libvirt-idle-floor URI     (prints "ready" once connected; runs until killed)
 *
 * Built by bench/footprint with the libraries nova-libvirt links at exec as well
 * (so that the same libraries are mapped). */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdio.h>

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
        (void)conn;
        (void)dom;
        (void)event;
        (void)detail;
        (void)opaque;
        return 0;
}

static void silent(void *data, virErrorPtr error)
{
        (void)data;
        (void)error;
}

int main(int argc, char **argv)
{
        virConnectPtr conn;

        if (argc != 2) {
                fprintf(stderr, "usage: libvirt-idle-floor URI\n");
                return 2;
        }
        virSetErrorFunc(NULL, silent);
        if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0) {
                fprintf(stderr, "libvirt-idle-floor: cannot set up libvirt's event loop\n");
                return 1;
        }
        conn = virConnectOpen(argv[1]);
        if (!conn) {
                fprintf(stderr, "libvirt-idle-floor: cannot open %s\n", argv[1]);
                return 1;
        }
        if (virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                             VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), NULL, NULL) < 0) {
                fprintf(stderr, "libvirt-idle-floor: cannot register for domain events\n");
                return 1;
        }
        printf("ready\n");
        fflush(stdout);
        for (;;)
                if (virEventRunDefaultImpl() < 0)
                        return 1;
}
