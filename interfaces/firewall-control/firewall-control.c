/* firewall-control.c - nova-firewall-control: the module that owns the
 * firewall-control plug. It keeps CAP_NET_ADMIN only and talks to nftables
 * through libnftables (netlink; no iptables, no nft binary, no modprobe).
 *
 * It keeps a picture of its two tables (fw_snap), read from the kernel at
 * start and after any failed batch, and updated in place after each commit,
 * so that a port change is one small batch whatever the number of ports:
 * existing chains are replaced with "flush chain" + "add chain { rules }",
 * which needs no chain cache, and set elements are only touched when the
 * port's MAC or addresses change. */
#include "fw-nft.h"
#include "fw-protocol.h"
#include "fw-state.h"
#include "log.h"
#include "modrt.h"

#include <fcntl.h>
#include <malloc.h>
#include <nftables/libnftables.h>

#define BRNF_IPV4 "/proc/sys/net/bridge/bridge-nf-call-iptables"
#define BRNF_IPV6 "/proc/sys/net/bridge/bridge-nf-call-ip6tables"

struct fw_group_req {
        char id[UUID_STR_LEN + 1];
        struct secrule rules[PORT_MAX_RULES];
        size_t n_rules;
};

struct fw {
        struct modrt *rt;
        bool serving;                    /* past init: a rebuild now is news for the core */
        struct nft_ctx *nft;
        struct fw_snap snap;
        bool snap_valid;
        struct sbuf cmd;
        /* one request's decoded groups and ports (static size: no allocation per call) */
        struct fw_group_req groups[FW_MAX_BATCH_GROUPS];
        size_t n_groups;
        struct fw_port ports[FW_MAX_BATCH];
        size_t n_ports;
};

/* ---- libnftables ---- */

/* A context whose output and errors are captured in buffers; NULL on failure. */
static struct nft_ctx *nft_open(void)
{
        struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);

        if (nft && (nft_ctx_buffer_output(nft) < 0 || nft_ctx_buffer_error(nft) < 0)) {
                nft_ctx_free(nft);
                return NULL;
        }
        return nft;
}

/* Run a batch; on failure the first lines of nftables' message go to err. */
static int nft_run(struct fw *fw, const char *text, char *err, size_t errlen)
{
        const char *msg;
        int r;

        nft_ctx_output_set_flags(fw->nft, 0);
        r = nft_run_cmd_from_buffer(fw->nft, text);
        msg = nft_ctx_get_error_buffer(fw->nft);
        if (r == 0)
                return 0;
        log_warn("nftables refused a batch of %zu bytes: %.300s", strlen(text), msg ? msg : "");
        if (getenv("NOVA_FW_TRACE"))
                log_warn("batch:\n%s", text);
        if (err && errlen) {
                proto_text_printf(err, errlen, "nftables refused the change: %s", msg && msg[0] ? msg : "(no message)");
                char *nl = strchr(err, '\n');
                if (nl)
                        *nl = '\0';
        }
        return -EIO;
}

/* JSON listing of our table of one family; "" when it does not exist. */
static int nft_list(struct fw *fw, const char *family, char **ret)
{
        char cmd[64];
        const char *out;
        int r;

        (void)snprintf(cmd, sizeof(cmd), "list table %s " FW_TABLE, family);
        nft_ctx_output_set_flags(fw->nft, NFT_CTX_OUTPUT_JSON);
        r = nft_run_cmd_from_buffer(fw->nft, cmd);
        nft_ctx_output_set_flags(fw->nft, 0);
        out = nft_ctx_get_output_buffer(fw->nft);
        if (r != 0) {
                const char *e = nft_ctx_get_error_buffer(fw->nft);
                if (e && strstr(e, "No such file or directory")) {
                        *ret = strdup("");
                        return *ret ? 0 : -ENOMEM;
                }
                return -EIO;
        }
        *ret = strdup(out ? out : "");
        return *ret ? 0 : -ENOMEM;
}

static int snap_reload(struct fw *fw)
{
        _cleanup_free_ char *inet = NULL, *bridge = NULL;
        struct fw_snap s;
        int r;

        fw->snap_valid = false;
        fw_snap_free(&fw->snap); /* never hold the old picture next to the new listing */
        if ((r = nft_list(fw, "inet", &inet)) < 0 || (r = nft_list(fw, "bridge", &bridge)) < 0)
                return r;
        r = fw_snap_parse(inet, bridge, &s);
        free(inet);
        free(bridge);
        inet = bridge = NULL;
        /* the listing texts and JSON trees are large (hundreds of MB at
         * thousands of ports): hand the freed pages back */
        (void)malloc_trim(0);
        if (r < 0)
                return r;
        fw->snap = s;
        fw->snap_valid = true;
        return 0;
}

/* br_netfilter must hand bridged IPv4/IPv6 to the inet hooks, else nothing
 * we install ever sees a packet of a hybrid port. */
static int brnf_ensure(char *err, size_t errlen)
{
        static const char *const files[] = { BRNF_IPV4, BRNF_IPV6 };

        for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
                _cleanup_free_ char *v = NULL;
                size_t len;
                if (read_file_bounded(files[i], 16, &v, &len) < 0) {
                        (void)snprintf(err, errlen,
                                       "br_netfilter is not loaded (%s is missing): bridged traffic would bypass "
                                       "the security groups; connecting the firewall-control plug loads it "
                                       "(sudo snap connect nova-hypervisor:firewall-control)", files[i]);
                        return -ENOPKG;
                }
                if (v[0] == '1')
                        continue;
                _cleanup_close_ int fd = open(files[i], O_WRONLY | O_CLOEXEC);
                if (fd < 0 || write_all(fd, "1\n", 2) < 0) {
                        (void)snprintf(err, errlen, "cannot enable %s: %s", files[i], strerror(errno));
                        return -EPERM;
                }
                log_info("enabled %s", files[i]);
        }
        return 0;
}

/* Our tables exist, are ours and complete. A damaged skeleton of ours is
 * rebuilt from scratch (the core's reconcile then re-applies every port). */
static int ensure_ready(struct fw *fw, char *err, size_t errlen)
{
        int r;

        if ((r = brnf_ensure(err, errlen)) < 0)
                return r;
        if (fw->snap_valid && fw->snap.skeleton_ok)
                return 0;
        if ((r = snap_reload(fw)) < 0) {
                (void)snprintf(err, errlen, "cannot read the nftables ruleset: %s", strerror(-r));
                return r;
        }
        if (fw->snap.skeleton_ok)
                return 0;
        if ((fw->snap.inet_exists && !fw->snap.inet_ours) || (fw->snap.bridge_exists && !fw->snap.bridge_ours)) {
                (void)snprintf(err, errlen,
                               "an nftables table named %s exists (%s%s%s) but was not created by nova-hypervisor; "
                               "not touching it",
                               FW_TABLE, fw->snap.inet_exists && !fw->snap.inet_ours ? "inet" : "",
                               fw->snap.inet_exists && !fw->snap.inet_ours && fw->snap.bridge_exists &&
                                               !fw->snap.bridge_ours
                                       ? ", "
                                       : "",
                               fw->snap.bridge_exists && !fw->snap.bridge_ours ? "bridge" : "");
                return -EEXIST;
        }
        sbuf_reset(&fw->cmd);
        if (fw->snap.inet_exists || fw->snap.bridge_exists)
                log_warn("our nftables tables are incomplete: rebuilding them");
        fw_build_drop_tables(&fw->cmd, fw->snap.inet_exists, fw->snap.bridge_exists);
        fw_build_skeleton(&fw->cmd);
        if (fw->cmd.err)
                return fw->cmd.err;
        if ((r = nft_run(fw, fw->cmd.p, err, errlen)) < 0)
                return r;
        if ((r = snap_reload(fw)) < 0)
                return r;
        if (!fw->snap.skeleton_ok) {
                (void)snprintf(err, errlen, "nftables tables were created but do not read back complete");
                return -EIO;
        }
        if (fw->serving) {
                /* Every port's rules went with the old tables: the core re-applies them. */
                struct proto_writer *w = malloc(sizeof(*w));
                if (w) {
                        pw_init(w, PROTO_EVENT, 0, 0, "ruleset_rebuilt");
                        (void)modrt_send_event(fw->rt, w);
                        free(w);
                }
        }
        return 0;
}

/* ---- decoding requests ---- */

static int read_ips(const struct proto_value *list, struct fw_port *p, char *err, size_t errlen)
{
        char ll[IP_STR_MAX];

        ipv6_link_local_from_mac(p->mac, ll);
        p->n_ips = 0;
        for (const struct proto_value *v = list ? list->child : NULL; v; v = v->next) {
                char canon[IP_STR_MAX];
                if (ip_canonical(v->v.s, canon) < 0) {
                        (void)snprintf(err, errlen, "ips: '%s' is not an IP address", v->v.s);
                        return -EINVAL;
                }
                if (streq(canon, ll))
                        continue; /* always allowed anyway */
                for (size_t i = 0; i < p->n_ips; i++)
                        if (streq(p->ips[i], canon)) {
                                (void)snprintf(err, errlen, "ips: %s is listed twice", canon);
                                return -EINVAL;
                        }
                memcpy(p->ips[p->n_ips++], canon, IP_STR_MAX);
        }
        return 0;
}

static int read_group(struct fw *fw, const struct proto_value *g, char *err, size_t errlen)
{
        struct fw_group_req *gr;
        const char *id = proto_get_str(g, "id", "");

        for (size_t i = 0; i < fw->n_groups; i++)
                if (streq(fw->groups[i].id, id)) {
                        (void)snprintf(err, errlen, "groups: %s is listed twice", id);
                        return -EINVAL;
                }
        if (fw->n_groups == FW_MAX_BATCH_GROUPS) {
                (void)snprintf(err, errlen, "groups: more than %d", FW_MAX_BATCH_GROUPS);
                return -EINVAL;
        }
        gr = &fw->groups[fw->n_groups];
        memcpy(gr->id, id, UUID_STR_LEN + 1);
        gr->n_rules = 0;
        for (const struct proto_value *r = proto_get(g, "rules")->child; r; r = r->next) {
                char why[160];
                if (gr->n_rules == PORT_MAX_RULES) {
                        (void)snprintf(err, errlen, "group %s: more than %d rules", id, PORT_MAX_RULES);
                        return -EINVAL;
                }
                if (fw_rule_read(r, &gr->rules[gr->n_rules], why, sizeof(why)) < 0) {
                        (void)snprintf(err, errlen, "group %s rule %zu: %s", id, gr->n_rules + 1, why);
                        return -EINVAL;
                }
                for (size_t k = 0; k < gr->n_rules; k++)
                        if (secrule_equal(&gr->rules[k], &gr->rules[gr->n_rules])) {
                                (void)snprintf(err, errlen, "group %s rule %zu: duplicate of rule %zu", id,
                                               gr->n_rules + 1, k + 1);
                                return -EINVAL;
                        }
                gr->n_rules++;
        }
        fw->n_groups++;
        return 0;
}

static bool group_in_request(struct fw *fw, const char *id)
{
        for (size_t i = 0; i < fw->n_groups; i++)
                if (streq(fw->groups[i].id, id))
                        return true;
        return false;
}

static int read_port(struct fw *fw, const struct proto_value *o, bool ids_only, char *err, size_t errlen)
{
        struct fw_port *p = &fw->ports[fw->n_ports];
        const char *uuid = proto_get_str(o, "port_uuid", "");
        int r;

        for (size_t i = 0; i < fw->n_ports; i++)
                if (streq(fw->ports[i].uuid, uuid)) {
                        (void)snprintf(err, errlen, "ports: %s is listed twice", uuid);
                        return -EINVAL;
                }
        *p = (struct fw_port){ 0 };
        memcpy(p->uuid, uuid, UUID_STR_LEN + 1);
        if (mac_parse(proto_get_str(o, "mac", ""), p->mac) < 0)
                return -EINVAL;
        if ((r = read_ips(proto_get(o, "ips"), p, err, errlen)) < 0)
                return r;
        for (const struct proto_value *g = proto_get(o, "groups")->child; g; g = g->next) {
                const char *id = ids_only ? g->v.s : proto_get_str(g, "id", "");
                if (ids_only && !group_in_request(fw, id)) {
                        (void)snprintf(err, errlen, "port %s: group %s is not in this request's groups", uuid, id);
                        return -EINVAL;
                }
                for (size_t i = 0; i < p->n_groups; i++)
                        if (streq(p->groups[i], id)) {
                                (void)snprintf(err, errlen, "port %s: group %s is listed twice", uuid, id);
                                return -EINVAL;
                        }
                memcpy(p->groups[p->n_groups++], id, UUID_STR_LEN + 1);
        }
        size_t total = 0;
        for (size_t i = 0; i < p->n_groups; i++)
                for (size_t k = 0; k < fw->n_groups; k++)
                        if (streq(fw->groups[k].id, p->groups[i]))
                                total += fw->groups[k].n_rules;
        if (total > PORT_MAX_RULES) {
                (void)snprintf(err, errlen, "port %s: its groups have %zu rules, at most %d", uuid, total,
                               PORT_MAX_RULES);
                return -EINVAL;
        }
        fw->n_ports++;
        return 0;
}

/* ---- applying ---- */

static bool port_same_elements(const struct fw_snap_port *sp, const struct fw_port *p)
{
        if (sp->tampered || !sp->has_dispatch || memcmp(sp->port.mac, p->mac, 6) != 0 ||
            sp->port.n_ips != p->n_ips)
                return false;
        for (size_t i = 0; i < p->n_ips; i++) {
                bool found = false;
                for (size_t k = 0; k < sp->port.n_ips; k++)
                        found = found || streq(sp->port.ips[k], p->ips[i]);
                if (!found)
                        return false;
        }
        return true;
}

/* Delete exactly the elements the snapshot says exist for sp. */
static void build_old_elements_delete(struct sbuf *b, const struct fw_snap_port *sp)
{
        const struct fw_elements e = { .dispatch = sp->has_dispatch, .tap = sp->has_tap, .mac = sp->has_mac,
                                       .guard = sp->has_guard, .ll = sp->has_ll };

        fw_build_port_elements_delete(b, &sp->port, &e);
}

/* References each group will have once the request is applied. */
static unsigned refs_after(struct fw *fw, const char *gid)
{
        struct fw_snap_group *g = fw_snap_group_find(&fw->snap, gid);
        unsigned refs = g ? g->refs : 0;

        for (size_t i = 0; i < fw->n_ports; i++) {
                struct fw_snap_port *sp = fw_snap_port_find(&fw->snap, fw->ports[i].uuid);
                for (size_t k = 0; sp && sp->has_chain && k < sp->port.n_groups; k++)
                        refs -= streq(sp->port.groups[k], gid);
                for (size_t k = 0; k < fw->ports[i].n_groups; k++)
                        refs += streq(fw->ports[i].groups[k], gid);
        }
        return refs;
}

static int cmp_size(const void *a, const void *b)
{
        size_t x = *(const size_t *)a, y = *(const size_t *)b;

        return x < y ? -1 : x > y;
}

/* Positions in fw->snap.groups, ascending and unique, of the groups the
 * snapshot's chains of the request's ports (and of removed) jump to: the
 * only groups whose references can drop. Returns how many. */
static size_t gc_candidates(struct fw *fw, const struct fw_port *removed, size_t *ret)
{
        size_t n = 0, w = 0;

        for (size_t i = 0; i <= fw->n_ports; i++) {
                const char *uuid = i < fw->n_ports ? fw->ports[i].uuid : removed ? removed->uuid : NULL;
                struct fw_snap_port *sp = uuid ? fw_snap_port_find(&fw->snap, uuid) : NULL;
                for (size_t k = 0; sp && sp->has_chain && k < sp->port.n_groups; k++) {
                        struct fw_snap_group *g = fw_snap_group_find(&fw->snap, sp->port.groups[k]);
                        if (g)
                                ret[n++] = (size_t)(g - fw->snap.groups);
                }
        }
        qsort(ret, n, sizeof(*ret), cmp_size);
        for (size_t i = 0; i < n; i++)
                if (w == 0 || ret[w - 1] != ret[i])
                        ret[w++] = ret[i];
        return w;
}

#define GC_CANDIDATES_MAX ((FW_MAX_BATCH + 1) * PORT_MAX_GROUPS)

/* Groups referenced now by the ports of the request that nothing will reference afterwards. */
static void build_group_gc(struct fw *fw, struct sbuf *b, const struct fw_port *removed)
{
        size_t cand[GC_CANDIDATES_MAX], n = gc_candidates(fw, removed, cand);

        for (size_t c = 0; c < n; c++) {
                struct fw_snap_group *g = &fw->snap.groups[cand[c]];
                unsigned refs = refs_after(fw, g->id);
                if (removed) {
                        struct fw_snap_port *sp = fw_snap_port_find(&fw->snap, removed->uuid);
                        for (size_t k = 0; sp && sp->has_chain && k < sp->port.n_groups; k++)
                                refs -= streq(sp->port.groups[k], g->id);
                }
                if (refs == 0 && !group_in_request(fw, g->id) && g->refs > 0) {
                        if (g->has_in)
                                sbuf_printf(b, "delete chain inet " FW_TABLE " sg-%s-in\n", g->id);
                        if (g->has_out)
                                sbuf_printf(b, "delete chain inet " FW_TABLE " sg-%s-out\n", g->id);
                }
        }
}

static void build_apply(struct fw *fw)
{
        struct sbuf *b = &fw->cmd;

        sbuf_reset(b);
        for (size_t i = 0; i < fw->n_groups; i++) {
                struct fw_snap_group *g = fw_snap_group_find(&fw->snap, fw->groups[i].id);
                if (g && g->has_in != g->has_out) {
                        /* half a group: drop the half and recreate both */
                        sbuf_printf(b, "delete chain inet " FW_TABLE " sg-%s-%s\n", g->id, g->has_in ? "in" : "out");
                        g = NULL;
                }
                fw_build_group(b, fw->groups[i].id, fw->groups[i].rules, fw->groups[i].n_rules, g != NULL);
        }
        for (size_t i = 0; i < fw->n_ports; i++) {
                struct fw_port *p = &fw->ports[i];
                struct fw_snap_port *sp = fw_snap_port_find(&fw->snap, p->uuid);

                fw_build_port_chain(b, p, sp && sp->has_chain);
                if (sp && port_same_elements(sp, p))
                        continue;
                if (sp)
                        build_old_elements_delete(b, sp);
                fw_build_port_elements(b, p);
        }
        build_group_gc(fw, b, NULL);
}

static void snap_update_group(struct fw_snap *s, const struct fw_group_req *gr)
{
        /* found, or appended (the reload after a failure would find it anyway) */
        struct fw_snap_group *g = fw_snap_group_get(s, gr->id);

        if (!g)
                return;
        free(g->rules);
        g->rules = NULL;
        g->n_rules = 0;
        if (gr->n_rules) {
                g->rules = malloc(gr->n_rules * sizeof(*g->rules));
                if (g->rules) {
                        memcpy(g->rules, gr->rules, gr->n_rules * sizeof(*g->rules));
                        g->n_rules = gr->n_rules;
                }
        }
        g->has_in = g->has_out = true;
        g->tampered = false;
}

static void snap_recount(struct fw_snap *s)
{
        size_t w = 0;

        for (size_t i = 0; i < s->n_groups; i++)
                s->groups[i].refs = 0;
        for (size_t i = 0; i < s->n_ports; i++)
                for (size_t k = 0; k < s->ports[i].port.n_groups; k++) {
                        struct fw_snap_group *g = fw_snap_group_find(s, s->ports[i].port.groups[k]);
                        if (g)
                                g->refs++;
                }
        /* groups that lost their last port were deleted in the batch */
        for (size_t i = 0; i < s->n_groups; i++) {
                if (s->groups[i].refs == 0 && s->groups[i].has_in == false && s->groups[i].has_out == false) {
                        free(s->groups[i].rules);
                        continue;
                }
                s->groups[w++] = s->groups[i];
        }
        if (w != s->n_groups)
                fw_snap_reindex(s);
        s->n_groups = w;
}

/* After a successful apply: the snapshot is what we just wrote. */
static int snap_after_apply(struct fw *fw)
{
        struct fw_snap *s = &fw->snap;

        size_t cand[GC_CANDIDATES_MAX], n = gc_candidates(fw, NULL, cand);

        /* groups the batch deleted (only those the request's ports jumped to can be) */
        for (size_t c = 0; c < n; c++) {
                size_t i = cand[c];
                if (refs_after(fw, s->groups[i].id) == 0 && !group_in_request(fw, s->groups[i].id) &&
                    s->groups[i].refs > 0)
                        s->groups[i].has_in = s->groups[i].has_out = false;
        }
        for (size_t i = 0; i < fw->n_groups; i++)
                snap_update_group(s, &fw->groups[i]);
        for (size_t i = 0; i < fw->n_ports; i++) {
                struct fw_snap_port *sp = fw_snap_port_get(s, fw->ports[i].uuid);
                if (!sp)
                        return -ENOMEM;
                *sp = (struct fw_snap_port){ .port = fw->ports[i], .has_chain = true, .has_dispatch = true,
                                             .has_mac = true, .has_tap = true, .has_guard = true, .has_ll = true };
        }
        snap_recount(s);
        return 0;
}

/* Build and commit the request in fw->groups/ports. One retry after
 * re-reading the kernel, for a ruleset changed behind our back. */
static int apply_request(struct fw *fw, char *err, size_t errlen)
{
        int r;

        for (int attempt = 0; attempt < 2; attempt++) {
                if ((r = ensure_ready(fw, err, errlen)) < 0)
                        return r;
                build_apply(fw);
                if (fw->cmd.err)
                        return fw->cmd.err;
                r = nft_run(fw, fw->cmd.p, err, errlen);
                if (r == 0) {
                        if (snap_after_apply(fw) < 0)
                                fw->snap_valid = false;
                        return 0;
                }
                fw->snap_valid = false; /* re-read and try once more */
        }
        return r;
}

/* ---- handlers ---- */

static void reply_group(struct proto_writer *w, const char *id, const struct secrule *rules, size_t n)
{
        pw_obj_begin(w, NULL);
        pw_str(w, "id", id);
        pw_list_begin(w, "rules");
        for (size_t i = 0; i < n; i++) {
                pw_obj_begin(w, NULL);
                fw_rule_write(w, &rules[i]);
                pw_obj_end(w);
        }
        pw_list_end(w);
        pw_obj_end(w);
}

static int handle_apply(void *state, struct modrt_call *call)
{
        struct fw *fw = state;
        int r;

        fw->n_groups = fw->n_ports = 0;
        for (const struct proto_value *g = proto_get(call->req, "groups")->child; g; g = g->next)
                if ((r = read_group(fw, g, call->err, sizeof(call->err))) < 0)
                        return r;
        if ((r = read_port(fw, call->req, false, call->err, sizeof(call->err))) < 0)
                return r;
        (void)snprintf(call->audit, sizeof(call->audit), "port=%s groups=%zu", fw->ports[0].uuid, fw->n_groups);
        return apply_request(fw, call->err, sizeof(call->err));
}

static int handle_apply_many(void *state, struct modrt_call *call)
{
        struct fw *fw = state;
        int r;

        fw->n_groups = fw->n_ports = 0;
        for (const struct proto_value *g = proto_get(call->req, "groups")->child; g; g = g->next)
                if ((r = read_group(fw, g, call->err, sizeof(call->err))) < 0)
                        return r;
        for (const struct proto_value *p = proto_get(call->req, "ports")->child; p; p = p->next)
                if ((r = read_port(fw, p, true, call->err, sizeof(call->err))) < 0)
                        return r;
        (void)snprintf(call->audit, sizeof(call->audit), "ports=%zu groups=%zu", fw->n_ports, fw->n_groups);
        r = apply_request(fw, call->err, sizeof(call->err));
        if (r == 0)
                pw_u64(call->reply, "applied", fw->n_ports);
        return r;
}

static int handle_remove(void *state, struct modrt_call *call)
{
        struct fw *fw = state;
        const char *uuid = proto_get_str(call->req, "port_uuid", "");
        struct fw_snap_port *sp;
        struct fw_port gone;
        int r;

        (void)snprintf(call->audit, sizeof(call->audit), "port=%s", uuid);
        for (int attempt = 0; attempt < 2; attempt++) {
                if ((r = ensure_ready(fw, call->err, sizeof(call->err))) < 0)
                        return r;
                sp = fw_snap_port_find(&fw->snap, uuid);
                if (!sp) {
                        (void)snprintf(call->err, sizeof(call->err), "port %s has no security-group rules of ours",
                                       uuid);
                        return -ENOENT;
                }
                gone = sp->port;
                fw->n_groups = fw->n_ports = 0;
                sbuf_reset(&fw->cmd);
                build_old_elements_delete(&fw->cmd, sp);
                if (sp->has_chain)
                        fw_build_port_chain_remove(&fw->cmd, uuid);
                build_group_gc(fw, &fw->cmd, &gone);
                if (fw->cmd.err)
                        return fw->cmd.err;
                r = nft_run(fw, fw->cmd.p, call->err, sizeof(call->err));
                if (r == 0) {
                        /* drop the port, mark emptied groups, recount */
                        /* (only groups the port jumped to can lose their last reference) */
                        for (size_t j = 0; sp->has_chain && j < sp->port.n_groups; j++) {
                                struct fw_snap_group *g = fw_snap_group_find(&fw->snap, sp->port.groups[j]);
                                if (!g)
                                        continue;
                                unsigned left = g->refs;
                                for (size_t k = 0; k < sp->port.n_groups; k++)
                                        left -= streq(sp->port.groups[k], g->id);
                                if (left == 0 && g->refs > 0)
                                        g->has_in = g->has_out = false;
                        }
                        *sp = fw->snap.ports[--fw->snap.n_ports];
                        fw_snap_reindex(&fw->snap);
                        snap_recount(&fw->snap);
                        return 0;
                }
                fw->snap_valid = false;
        }
        return r;
}

static int reload_for_query(struct fw *fw, struct modrt_call *call)
{
        int r;

        /* Queries report what the kernel holds now, not our picture of it; a
         * damaged skeleton found here is rebuilt at once (and the core told). */
        fw->snap_valid = false;
        r = ensure_ready(fw, call->err, sizeof(call->err)); /* reads the ruleset once, rebuilds if needed */
        if (r == 0 && !fw->snap_valid) {
                r = snap_reload(fw);
                if (r < 0)
                        (void)snprintf(call->err, sizeof(call->err), "cannot read the nftables ruleset: %s",
                                       strerror(-r));
        }
        return r;
}

static int handle_list(void *state, struct modrt_call *call)
{
        struct fw *fw = state;
        size_t shown = 0;
        int r;

        if ((r = reload_for_query(fw, call)) < 0)
                return r;
        pw_list_begin(call->reply, "groups");
        for (size_t i = 0; i < fw->snap.n_groups; i++) {
                const struct fw_snap_group *g = &fw->snap.groups[i];
                char digest[17];
                if (call->reply->n_values + 8 > PROTO_MAX_NODES / 4)
                        break;
                (void)snprintf(digest, sizeof(digest), "%016llx",
                               (unsigned long long)secrule_digest(g->rules, g->n_rules));
                pw_obj_begin(call->reply, NULL);
                pw_str(call->reply, "id", g->id);
                pw_u64(call->reply, "rules", g->n_rules);
                pw_str(call->reply, "digest", g->tampered || !g->has_in || !g->has_out ? "tampered" : digest);
                pw_obj_end(call->reply);
        }
        pw_list_end(call->reply);
        pw_list_begin(call->reply, "ports");
        for (; shown < fw->snap.n_ports; shown++) {
                const struct fw_snap_port *p = &fw->snap.ports[shown];
                if (call->reply->n_values + 6 + PORT_MAX_GROUPS + 8 > PROTO_MAX_NODES ||
                    call->reply->len + 64 + 48 * PORT_MAX_GROUPS + 256 > PROTO_MAX_FRAME)
                        break;
                pw_obj_begin(call->reply, NULL);
                pw_str(call->reply, "port_uuid", p->port.uuid);
                pw_bool(call->reply, "complete", !p->tampered && p->has_chain);
                pw_list_begin(call->reply, "groups");
                for (size_t k = 0; k < p->port.n_groups; k++)
                        pw_str(call->reply, NULL, p->port.groups[k]);
                pw_list_end(call->reply);
                pw_obj_end(call->reply);
        }
        pw_list_end(call->reply);
        pw_u64(call->reply, "total", fw->snap.n_ports);
        pw_bool(call->reply, "truncated", shown < fw->snap.n_ports);
        return 0;
}

static int handle_get(void *state, struct modrt_call *call)
{
        struct fw *fw = state;
        const char *uuid = proto_get_str(call->req, "port_uuid", "");
        const struct fw_snap_port *p;
        char mac[MAC_STR_LEN + 1];
        int r;

        if ((r = reload_for_query(fw, call)) < 0)
                return r;
        p = fw_snap_port_find(&fw->snap, uuid);
        if (!p || !p->has_chain) {
                (void)snprintf(call->err, sizeof(call->err), "port %s has no security-group rules of ours", uuid);
                return -ENOENT;
        }
        mac_format(p->port.mac, mac);
        pw_str(call->reply, "port_uuid", uuid);
        pw_str(call->reply, "mac", mac);
        pw_bool(call->reply, "complete", !p->tampered);
        pw_list_begin(call->reply, "ips");
        for (size_t i = 0; i < p->port.n_ips; i++)
                pw_str(call->reply, NULL, p->port.ips[i]);
        pw_list_end(call->reply);
        pw_list_begin(call->reply, "groups");
        for (size_t i = 0; i < p->port.n_groups; i++) {
                const struct fw_snap_group *g = fw_snap_group_find(&fw->snap, p->port.groups[i]);
                reply_group(call->reply, p->port.groups[i], g ? g->rules : NULL, g ? g->n_rules : 0);
        }
        pw_list_end(call->reply);
        return 0;
}

static const struct modrt_entry entries[_FW_MAX] = {
        [FW_PORT_RULES_APPLY] = { &fw_entrypoints[FW_PORT_RULES_APPLY], handle_apply },
        [FW_PORTS_RULES_APPLY] = { &fw_entrypoints[FW_PORTS_RULES_APPLY], handle_apply_many },
        [FW_PORT_RULES_REMOVE] = { &fw_entrypoints[FW_PORT_RULES_REMOVE], handle_remove },
        [FW_RULES_LIST] = { &fw_entrypoints[FW_RULES_LIST], handle_list },
        [FW_RULES_GET] = { &fw_entrypoints[FW_RULES_GET], handle_get },
};

static int fw_init(struct modrt *rt, void **ret_state)
{
        struct fw *fw;
        char err[256] = "";
        int r;

        (void)rt;
        fw = calloc(1, sizeof(*fw));
        if (!fw)
                return -ENOMEM;
        fw->rt = rt;
        fw->nft = nft_open();
        if (!fw->nft) {
                free(fw);
                return -ENOMEM;
        }
        /* Set up (or check) our tables now, so problems show at start; a
         * failure is reported but the module still serves (every call then
         * says what is wrong). */
        r = ensure_ready(fw, err, sizeof(err));
        if (r < 0)
                log_warn("security groups not ready: %s", err);
        else
                log_info("nftables tables ready: %zu ports, %zu groups", fw->snap.n_ports, fw->snap.n_groups);
        fw->serving = true;
        *ret_state = fw;
        return 0;
}

static void fw_done(void *state)
{
        struct fw *fw = state;

        if (!fw)
                return;
        fw_snap_free(&fw->snap);
        sbuf_free(&fw->cmd);
        nft_ctx_free(fw->nft);
        free(fw);
}

static const struct modrt_module firewall_control_module = {
        .protocol = &fw_protocol,
        .entries = entries,
        .n_entries = ARRAY_SIZE(entries),
        .init = fw_init,
        .done = fw_done,
};

/* nova-firewall-control --purge: for the snap's remove hook, after the core
 * deleted every instance. Deletes our tables (only those that carry our owner
 * mark; a foreign table of the same name is left alone) and nothing else.
 * Takes no input: nothing to validate, no name from outside. */
static int purge_main(void)
{
        _cleanup_(sbuf_free) struct sbuf b = { 0 };
        struct fw fw = { 0 };
        char err[256] = "";
        int r;

        log_init("firewall-control", LOG_LVL_INFO);
        r = modrt_drop_privileges(plug_table[PLUG_FIREWALL_CONTROL].caps, err, sizeof(err));
        if (r < 0) {
                log_err("%s", err);
                return 1;
        }
        fw.nft = nft_open();
        if (!fw.nft) {
                log_err("cannot set up libnftables");
                return 1;
        }
        r = snap_reload(&fw);
        if (r < 0) {
                log_err("cannot read our nftables tables: %s", strerror(-r));
                goto out;
        }
        if (fw.snap.inet_exists && !fw.snap.inet_ours)
                log_warn("table inet " FW_TABLE " is not ours (no owner mark): left alone");
        if (fw.snap.bridge_exists && !fw.snap.bridge_ours)
                log_warn("table bridge " FW_TABLE " is not ours (no owner mark): left alone");
        if (fw.snap.n_ports)
                log_warn("purging with %zu port(s) still filtered", fw.snap.n_ports);
        fw_build_drop_tables(&b, fw.snap.inet_ours, fw.snap.bridge_ours);
        if (b.err) {
                r = b.err;
                goto out;
        }
        if (b.len) {
                r = nft_run(&fw, b.p, err, sizeof(err));
                if (r < 0) {
                        log_err("%s", err);
                        goto out;
                }
        }
        log_info("purged: %s%s%s", fw.snap.inet_ours ? "table inet " FW_TABLE " " : "",
                 fw.snap.bridge_ours ? "table bridge " FW_TABLE : "", b.len ? "" : "nothing of ours");
out:
        fw_snap_free(&fw.snap);
        nft_ctx_free(fw.nft);
        return r < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
        if (argc == 2 && streq(argv[1], "--purge"))
                return purge_main();
        return modrt_main(&firewall_control_module, argc, argv);
}
