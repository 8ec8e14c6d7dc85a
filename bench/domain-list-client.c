/* domain-list-client.c - bench/domain-list's client: what a reconcile pass asks the libvirt module
 * for (every page of domain_list), timed against the libvirt calls the same answer needs one at a
 * time (the anchor: what a plain libvirt client, virsh for one, does for it).
 *
 *   domain-list-client URI N ROUNDS MODULE_PROGRAM
 *
 * Defines N domains of the test driver with our ownership mark at URI (a private libvirtd reached
 * through the remote driver; the connection held here keeps them), starts MODULE_PROGRAM (the
 * nova-libvirt to measure) on a socketpair as the core would, then ROUNDS times: the anchor
 * (virConnectListAllDomains, and virDomainGetMetadata + virDomainGetState + virDomainGetInfo of each
 * domain, one call at a time) and the module's whole listing (domain_list pages until not
 * truncated; every one of the N listed once). Prints one line per round and the medians. */
#include "proto.h"
#include "util.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MARK_URI "urn:nova-hypervisor:instance:1"

static double now_s(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
        fprintf(stderr, "domain-list-client: %s\n", what);
        exit(1);
}

static void quiet(void *userdata, virErrorPtr e)
{
        (void)userdata;
        (void)e;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/* One frame from the module (events skipped) within 60 s into msg. */
static void recv_reply(int fd, struct proto_msg *msg)
{
        static uint8_t buf[PROTO_MAX_FRAME];
        char err[256];

        for (;;) {
                struct pollfd p = { fd, POLLIN, 0 };
                ssize_t n;
                if (poll(&p, 1, 60000) != 1)
                        die("no frame from the module within 60 s");
                n = recv(fd, buf, sizeof(buf), 0);
                if (n <= 0)
                        die("the module hung up");
                if (proto_decode(buf, (size_t)n, msg, err, sizeof(err)) < 0)
                        die(err);
                if (msg->type != PROTO_EVENT)
                        return;
        }
}

int main(int argc, char **argv)
{
        static struct proto_writer w;
        static struct proto_msg msg;
        unsigned n, rounds, id = 1;
        double *anchor, *ours;
        virConnectPtr conn;
        int sv[2];
        pid_t pid;

        if (argc != 5 || sscanf(argv[2], "%u", &n) != 1 || sscanf(argv[3], "%u", &rounds) != 1 || n == 0 ||
            n > 10000 || rounds == 0 || rounds > 100)
                die("usage: domain-list-client URI N ROUNDS MODULE_PROGRAM");
        anchor = calloc(rounds, sizeof(*anchor));
        ours = calloc(rounds, sizeof(*ours));
        if (!anchor || !ours)
                die("out of memory");
        virSetErrorFunc(NULL, quiet);
        conn = virConnectOpen(argv[1]);
        if (!conn)
                die("cannot connect to libvirt");
        for (unsigned i = 0; i < n; i++) {
                char uuid[37], xml[1024];
                virDomainPtr d;
                (void)snprintf(uuid, sizeof(uuid), "3f2504e0-4f89-41d3-9a0c-%012u", i);
                (void)snprintf(xml, sizeof(xml),
                               "<domain type='test'><name>nova-%s</name><uuid>%s</uuid><metadata>"
                               "<nova:instance xmlns:nova='" MARK_URI "'><nova:uuid>%s</nova:uuid><nova:name>bench-%u"
                               "</nova:name><nova:ports/></nova:instance></metadata><memory unit='MiB'>64</memory>"
                               "<vcpu>1</vcpu><os><type>hvm</type></os></domain>",
                               uuid, uuid, uuid, i);
                d = virDomainDefineXML(conn, xml);
                if (!d || virDomainCreate(d) < 0)
                        die("cannot define and start a domain");
                virDomainFree(d);
        }

        /* the module's config: read before its hello, removed once that came */
        char conf[] = "/tmp/domain-list-client-XXXXXX";
        int cfd = mkstemp(conf);
        if (cfd < 0 || dprintf(cfd, "libvirt_uri = %s\nlog_level = warning\n", argv[1]) < 0)
                die("cannot write the module's config");
        close(cfd);
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                die("socketpair");
        pid = fork();
        if (pid < 0)
                die("fork");
        if (pid == 0) {
                dup2(sv[1], 3);
                execl(argv[4], "nova-libvirt", "--fd", "3", "--config", conf, (char *)NULL);
                _exit(127);
        }
        close(sv[1]);
        recv_reply(sv[0], &msg); /* the hello */
        (void)unlink(conf);
        if (msg.type != PROTO_HELLO)
                die("no hello from the module");

        for (unsigned r = 0; r < rounds; r++) {
                virDomainPtr *doms = NULL;
                unsigned listed = 0, pages = 0;
                char after[37] = "";
                double t0 = now_s();
                int k = virConnectListAllDomains(conn, &doms, 0);
                if (k < 0)
                        die("cannot list domains");
                for (int i = 0; i < k; i++) {
                        char *md = virDomainGetMetadata(doms[i], VIR_DOMAIN_METADATA_ELEMENT, MARK_URI, 0);
                        int state, reason;
                        virDomainInfo info;
                        free(md);
                        (void)virDomainGetState(doms[i], &state, &reason, 0);
                        (void)virDomainGetInfo(doms[i], &info);
                        virDomainFree(doms[i]);
                }
                free(doms);
                anchor[r] = now_s() - t0;

                t0 = now_s();
                for (;;) {
                        const uint8_t *frame;
                        size_t len;
                        const struct proto_value *l;
                        pw_init(&w, PROTO_REQUEST, id, 0, "domain_list");
                        if (after[0])
                                pw_str(&w, "after", after);
                        if (pw_finish(&w, &frame, &len) < 0 || send(sv[0], frame, len, MSG_NOSIGNAL) != (ssize_t)len)
                                die("cannot send domain_list");
                        recv_reply(sv[0], &msg);
                        if (msg.type != PROTO_REPLY || msg.id != id++ || msg.status != 0)
                                die("domain_list failed (is libvirt reachable?)");
                        l = proto_get(msg.body, "domains");
                        listed += l ? l->count : 0;
                        pages++;
                        if (!proto_get_bool(msg.body, "truncated", false))
                                break;
                        (void)snprintf(after, sizeof(after), "%s", proto_get_str(msg.body, "next", ""));
                }
                ours[r] = now_s() - t0;
                if (listed != n)
                        die("the module did not list every domain once");
                printf("round %u: anchor %.3f s, domain_list %.3f s (%u pages), load %s", r + 1, anchor[r], ours[r],
                       pages, "");
                fflush(stdout);
                {
                        FILE *f = fopen("/proc/loadavg", "re");
                        char la[64] = "?";
                        if (f) {
                                if (!fgets(la, sizeof(la), f))
                                        la[0] = '\0';
                                fclose(f);
                        }
                        printf("%.14s\n", la);
                }
        }
        qsort(anchor, rounds, sizeof(*anchor), cmp_double);
        qsort(ours, rounds, sizeof(*ours), cmp_double);
        printf("result: n=%u rounds=%u anchor_median_s=%.3f ours_median_s=%.3f ratio=%.2f\n", n, rounds,
               anchor[rounds / 2], ours[rounds / 2], anchor[rounds / 2] / ours[rounds / 2]);
        close(sv[0]);
        (void)kill(pid, SIGTERM);
        (void)waitpid(pid, NULL, 0);
        virConnectClose(conn);
        return 0;
}
