/* fuzz-fwstate.c - libFuzzer target for fw_snap_parse(), the decoder of the
 * `nft -j list table` listings of the firewall-control module's tables (one
 * inet table per shard, one bridge table), for fw_tables_feed(), the
 * decoder of the kernel's table dump, and for fw_watch_feed(), the decoder of
 * the kernel's nftables notifications.
 *
 * The input is NUL-separated: the first inet listing, the bridge listing,
 * then any further inet listings (other shards); without a NUL the bridge
 * table is absent. The whole input is also fed to fw_tables_feed() and to
 * fw_watch_feed() as netlink messages (to the latter also in two pieces). A refusal is -EBADMSG or -ENOMEM and leaves the result untouched.
 * A decoded snapshot must keep every promise of fw-state.h (only well-formed
 * names, canonical addresses, checked rules, consistent flags, shards and
 * reference counts; nothing decoded from a table without our mark), and
 * everything in it must be usable as is by the builders, as the module uses
 * it: rebuilding a port's chain in its shard, deleting its elements,
 * rewriting a group's copy. Any violation aborts. */
#include "fw-snap-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_commit(const struct fw_watch_commit *c, void *userdata)
{
        bool any = c->bridge != FW_WATCH_NONE;

        (*(unsigned *)userdata)++;
        CHECK(c->bridge <= FW_WATCH_RECREATED);
        for (unsigned k = 0; k < FW_MAX_SHARDS; k++) {
                CHECK(c->inet[k] <= FW_WATCH_RECREATED);
                any = any || c->inet[k] != FW_WATCH_NONE;
        }
        CHECK(c->any == any);
        CHECK(strnlen(c->proc, sizeof(c->proc)) < sizeof(c->proc));
}

/* The notification decoder: 0 or -EBADMSG, every commit well-formed, the
 * state empty after a refusal; the same bytes in two pieces never report
 * more transactions than NEWGENs could end. */
static void check_watch(const uint8_t *data, size_t size)
{
        struct fw_watch w = { 0 }, zero = { 0 };
        unsigned n = 0;
        int r = fw_watch_feed(&w, data, size, check_commit, &n);

        CHECK(r == 0 || r == -EBADMSG);
        if (r < 0)
                CHECK(memcmp(&w, &zero, sizeof(w)) == 0);
        CHECK(n <= size / 20);
        if (size > 1) {
                struct fw_watch v = { 0 };
                (void)fw_watch_feed(&v, data, size / 2, check_commit, &n);
                (void)fw_watch_feed(&v, data + size / 2, size - size / 2, check_commit, &n);
        }
}

/* The table dump decoder on the same bytes: a result or a refusal, and only
 * names of ours ever marked. */
static void check_tables(const uint8_t *data, size_t size)
{
        struct fw_tables t = { 0 };
        uint32_t seq = 0;
        int r;

        if (size >= 12)
                memcpy(&seq, data + 8, sizeof(seq)); /* the first message's */
        r = fw_tables_feed(&t, data, size, seq);
        CHECK(r == 0 || r == 1 || (r < 0 && r > -4096));
        check_watch(data, size);
}

#define MAX_LISTINGS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fw_snap s, sentinel;
        const char *inets[MAX_LISTINGS];
        char *text, *bridge = NULL, *p;
        size_t n = 0;
        int r;

        if (size > 256 * 1024)
                return 0;
        check_tables(data, size);
        text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        /* segments: inet, bridge, inet... (each up to its NUL) */
        inets[n++] = text;
        p = memchr(text, '\0', size);
        if (p && p < text + size) {
                bridge = p + 1;
                for (char *q = bridge; n < MAX_LISTINGS && (q = memchr(q, '\0', (size_t)(text + size - q))) &&
                                       q < text + size;)
                        inets[n++] = ++q;
        }

        memset(&sentinel, 0xa5, sizeof(sentinel));
        s = sentinel;
        r = fw_snap_parse(inets, n, bridge, &s);
        if (r < 0) {
                CHECK(r == -EBADMSG || r == -ENOMEM);
                CHECK(memcmp(&s, &sentinel, sizeof(s)) == 0);
                free(text);
                return 0;
        }
        CHECK(r == 0);
        check_snap(&s);
        fw_snap_free(&s);
        CHECK(s.n_ports == 0 && s.ports == NULL && s.n_groups == 0 && s.groups == NULL);
        free(text);
        return 0;
}
