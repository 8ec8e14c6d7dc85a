/* fuzz-fwdump.c - libFuzzer target for fw_snap_read() and fw_dump_feed(),
 * the decoder of the kernel's nf_tables dumps with which the
 * firewall-control module reads its tables back.
 *
 * The input stands in for the kernel: a sequence of datagrams, each a
 * 16-bit little-endian length and that many bytes. Each dump request the
 * decoder sends is answered by the next datagrams, fed one by one until the
 * decoder says the dump is done (or fails); every complete netlink header in
 * a datagram gets the request's sequence number first, so that inputs reach
 * the decoding of objects rather than stopping at the sequence check. The
 * requests themselves must be well-formed dump requests. A refusal leaves
 * the result untouched; a decoded snapshot must keep every promise of
 * fw-state.h (fw-snap-check.h), as for the JSON decoder. Seeds: datagrams
 * of real dumps, written by test-fw-nl (FW_DUMP_CORPUS=dir). */
#include "fw-snap-check.h"

#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
        const uint8_t *p;
        size_t left;
        unsigned requests;
};

static int fake_kernel(void *userdata, const void *req, size_t len, struct fw_dump *d)
{
        struct input *in = userdata;
        struct nlmsghdr h;
        uint8_t buf[65536];
        int r = 0;

        CHECK(len >= NLMSG_HDRLEN + sizeof(struct nfgenmsg) && len <= 4096);
        memcpy(&h, req, sizeof(h));
        CHECK(h.nlmsg_len == len && (h.nlmsg_flags & NLM_F_DUMP) && (h.nlmsg_flags & NLM_F_REQUEST));
        CHECK((h.nlmsg_type >> 8) == NFNL_SUBSYS_NFTABLES);
        in->requests++;
        while (r == 0) {
                size_t n;
                if (in->left < 2)
                        return -ECONNRESET; /* the kernel went silent: a socket error */
                n = (size_t)in->p[0] | (size_t)in->p[1] << 8;
                in->p += 2;
                in->left -= 2;
                if (n > in->left)
                        n = in->left;
                memcpy(buf, in->p, n);
                in->p += n;
                in->left -= n;
                for (size_t off = 0; off + sizeof(struct nlmsghdr) <= n;) {
                        struct nlmsghdr m;
                        memcpy(&m, buf + off, sizeof(m));
                        m.nlmsg_seq = h.nlmsg_seq;
                        memcpy(buf + off, &m, sizeof(m));
                        if (m.nlmsg_len < sizeof(m) || m.nlmsg_len > n - off)
                                break; /* (and NLMSG_ALIGN of a length near 4 GiB would wrap to 0) */
                        off += NLMSG_ALIGN((size_t)m.nlmsg_len);
                }
                r = fw_dump_feed(d, buf, n);
                CHECK(r == 0 || r == 1 || (r < 0 && r > -4096));
        }
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct input in = { .p = data, .left = size };
        struct fw_snap s, sentinel;
        struct fw_tables t, tsentinel;
        bool only[FW_MAX_SHARDS];
        uint32_t seq = 0;
        int r;

        if (size > 1024 * 1024)
                return 0;
        memset(&sentinel, 0xa5, sizeof(sentinel));
        memset(&tsentinel, 0x5a, sizeof(tsentinel));
        s = sentinel;
        t = tsentinel;
        /* every other input reads only the even shards (the guard's partial read) */
        for (unsigned k = 0; k < FW_MAX_SHARDS; k++)
                only[k] = k % 2 == 0;
        r = fw_snap_read(fake_kernel, &in, &seq, size % 2 ? only : NULL, &s, &t);
        CHECK(seq == in.requests);
        if (r < 0) {
                CHECK(r > -4096);
                CHECK(memcmp(&s, &sentinel, sizeof(s)) == 0);
                CHECK(memcmp(&t, &tsentinel, sizeof(t)) == 0);
                return 0;
        }
        CHECK(r == 0);
        check_snap(&s);
        for (unsigned k = 0; k < FW_MAX_SHARDS; k++) {
                CHECK(!s.shards[k].exists || t.inet[k]); /* only tables the kernel listed are read */
                CHECK(!(size % 2) || only[k] || !s.shards[k].exists);
        }
        CHECK(!s.bridge_exists || t.bridge);
        fw_snap_free(&s);
        CHECK(s.n_ports == 0 && s.ports == NULL && s.n_groups == 0 && s.groups == NULL);
        return 0;
}
