/* openvswitch.c - nova-openvswitch: the module that owns the openvswitch plug.
 * It keeps no capability; its privilege is the ovsdb-server socket. It takes
 * port identifiers, derives the OVS Port/Interface name itself (the port's tap
 * name, or with hybrid plugging the port's qvo veth end), works only on the
 * configured integration bridge and only on ports carrying our ownership mark,
 * and reports ovsdb-server coming and going. A port has one OVS Port: the
 * other name of the same port (tap vs qvo) is replaced in the same transaction.
 *
 * Everything runs in OVS's own poll loop: the OVSDB IDL (a replica of the
 * Open_vSwitch, Bridge, Port and Interface columns we need), the core's socket
 * and the deadlines of waiting requests. Requests that change OVS are kept in
 * a list while their transactions are in flight and while they wait for
 * ovs-vswitchd to assign ofports; they are answered with deferred replies. */

/* OVS's build configuration must precede every OVS header. Our own config.h
 * shadows the name <config.h> on the include path, so it is reached through
 * OVS's include directory (<ovs>/include/openvswitch/../../config.h). */
#include <openvswitch/../../config.h>
#ifndef PACKAGE_NAME
#error "OVS's config.h was not found"
#endif

#include "openvswitch/poll-loop.h"
#include "openvswitch/shash.h"
#include "openvswitch/vlog.h"
#include "ovsdb-idl.h"
#include "smap.h"
#include "timeval.h"
#include "uuid.h"
#include "vswitch-idl.h"

/* Our util.h defines ARRAY_SIZE with the same meaning as OVS's. */
#undef ARRAY_SIZE
#include "names.h"

#include "log.h"
#include "modrt.h"
#include "ovs-protocol.h"

#include <poll.h>
#include <stdarg.h>

#define UNDO_GRACE_MS 2000     /* after a failure, how long an answer may wait for the removal */
#define DISPATCH_BURST 64      /* core frames served per loop iteration, at most */
#define OVS_TEXT_MAX 200       /* OVS text (errors, statuses) kept for messages and replies */
/* A PORT object in a reply: the object and 10 members at most, 11 with ovn
 * (ovn_binding). */
#define PORT_VALUES 11
#define PORT_VALUES_OVN 12
/* Bytes of one PORT, at most: fixed keys, UUIDs, names, and the error text. */
#define PORT_MAX_BYTES (300 + OVS_TEXT_MAX)
/* The most ports a port_add_many reply can carry within the frame limits
 * (a successful PORT has no error member: one value less). */
#define ADD_MANY_REPLY_MAX ((PROTO_MAX_NODES - 8) / (PORT_VALUES - 1))
#define ADD_MANY_REPLY_MAX_OVN ((PROTO_MAX_NODES - 8) / (PORT_VALUES_OVN - 1))
/* The external_ids key ovn-controller sets to "true" on an Interface once the
 * flows of its logical port are installed (ovn-controller(8)). */
#define OVN_INSTALLED_KEY "ovn-installed"

/* The external_ids our Interfaces carry, in the order of the contract. */
enum { XID_IFACE_ID, XID_ATTACHED_MAC, XID_IFACE_STATUS, XID_VM_UUID, XID_VM_ID, XID_MARK, _XID_MAX };
static const char *const xid_keys[_XID_MAX] = {
        [XID_IFACE_ID] = "iface-id", [XID_ATTACHED_MAC] = "attached-mac", [XID_IFACE_STATUS] = "iface-status",
        [XID_VM_UUID] = "vm-uuid",   [XID_VM_ID] = "vm-id",               [XID_MARK] = OVS_MARK_KEY,
};

enum conn_state {
        CONN_CONNECTING, /* at start, before the first attempt resolved */
        CONN_UP,         /* connected and the replica is in sync */
        CONN_DOWN,       /* unreachable, or reconnected but not in sync yet */
};

enum req_kind { REQ_ADD, REQ_DEL, REQ_GET, REQ_LIST };

enum req_state {
        ST_BUILD,   /* build and commit the change (or answer a read) once the replica allows */
        ST_COMMIT,  /* the change is in flight */
        ST_WAIT,    /* committed: waiting for ovs-vswitchd to assign the ofports */
        ST_UNDO,    /* failed: remove the ports this call inserted, once the replica allows */
        ST_UNDOING, /* the removal is in flight */
};

struct req;

/* One port of a port_add/port_add_many/port_del/port_get request. */
struct port_spec {
        char port_uuid[UUID_STR_LEN + 1];
        char instance_uuid[UUID_STR_LEN + 1];
        char mac[MAC_STR_LEN + 1];
        char name[IFNAME_MAX];           /* derived: tap (or, hybrid, qvo) + 11 chars of port_uuid */
        char other[IFNAME_MAX];          /* the port's other name (qvo, or tap when hybrid) */
        bool hybrid;                     /* port_add: the OVS port is the qvo veth end */
        int64_t mtu;
        bool inserting;                  /* the transaction being built inserts it */
        bool inserted;                   /* a transaction of this call that inserts it was sent */
        struct req *req;                 /* the request it belongs to */
        bool changed;                    /* ST_WAIT: its Interface changed since it was last looked at */
        bool ready;                      /* ST_WAIT: its Interface has an ofport */
        bool installed;                  /* ST_WAIT: its Interface has ovn-installed=true (ovn only) */
};

/* A request that cannot be answered at once. */
/* Commits of one request refused for a constraint our replica could not see (a
 * foreign row created under one of our names just before): each waits for the
 * replica to change and builds again; after this many the refusal is the answer. */
#define MAX_CONFLICTS 3

struct req {
        struct req *next;
        enum req_kind kind;
        enum req_state state;
        bool many;                       /* port_add_many: the reply is a list */
        bool named;                      /* its ports are in ovs->busy */
        bool blocked;                    /* ST_BUILD/ST_UNDO: wait for the replica to change ... */
        unsigned int blocked_seqno;      /* ... from this seqno */
        bool sent;                       /* a change of this request reached the server once */
        unsigned int conflicts;          /* commits refused for a row our replica did not have yet */
        struct modrt_deferred *d;        /* the pending answer; NULL once answered */
        struct ovsdb_idl_txn *txn;       /* in flight (ST_COMMIT, ST_UNDOING) */
        long long started;               /* time_msec() at arrival */
        long long deadline;              /* answer by then */
        long long committed;             /* when the insert committed (ST_WAIT) */
        bool scanned;                    /* ST_WAIT: every port was looked at once */
        bool changed;                    /* ST_WAIT: some port's Interface changed since the last step */
        size_t n_ready;                  /* ST_WAIT: ports whose Interface has an ofport */
        size_t n_installed;              /* ST_WAIT: ports whose Interface has ovn-installed=true */
        bool ovn_waiting;                /* ST_WAIT, ovn: every ofport is there; deadline is now the ovn_wait_ms one */
        long long ofports_at;            /* when the last ofport came (ovn_waiting) */
        bool extended;                   /* ST_WAIT: the deadline was moved by ovs_wait_deadline() */
        int error;                       /* the failure being reported, 0 while fine */
        char err_text[256];
        char after[UUID_STR_LEN + 1];    /* REQ_LIST: the page starts above this port UUID ("" = first) */
        uint64_t limit;                  /* REQ_LIST: at most this many ports */
        size_t n;
        struct port_spec ports[];
};

/* The module's state. */
struct ovs {
        struct modrt *rt;                /* runtime: core socket, config */
        const struct nova_config *cfg;
        const char *socket;              /* ovsdb_socket from the config ("unix:/...") */
        const char *bridge;              /* integration_bridge from the config: the only bridge we touch */
        struct ovsdb_idl *idl;
        struct ovsdb_idl_index *port_by_name;
        struct ovsdb_idl_index *iface_by_name;
        enum conn_state conn;
        unsigned int seqno_down;         /* IDL seqno when the connection was seen down */
        char last_error[OVS_TEXT_MAX];   /* why ovsdb-server is unreachable */
        struct ovsdb_idl_txn *bridge_txn; /* creation of the integration bridge, in flight */
        bool bridge_blocked;             /* creation failed: retry when the replica changes */
        unsigned int bridge_seqno;
        char bridge_error[256];          /* why the creation failed, "" when it did not */
        struct req *reqs;                /* requests in progress (and removals still owed) */
        struct shash busy;               /* name -> struct port_spec of every port_add/port_del in progress */
        long long progress_at;           /* time_msec() of the last ofport assigned to a waiting port, 0 = none */
        long long recent_ms;             /* what ovs-vswitchd took lately from a commit to an ofport (ovs_wait_recent()) */
        struct proto_writer *ev;         /* builder of event frames */
};

/* ---- text ---- */

/* Protocol strings must be clean UTF-8 without control characters; OVS's
 * text (JSON error objects, kernel messages) is made so. */

/* Set call->err (cleaned) and return r. */
_printf_(3, 4) static int call_fail(struct modrt_call *call, int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(call->err, sizeof(call->err), fmt, ap);
        va_end(ap);
        proto_text_sanitize(call->err);
        return r;
}

static int unreachable_text(const struct ovs *ovs, char *buf, size_t size)
{
        proto_text_printf(buf, size, "ovsdb-server at %s is unreachable; reconnecting", ovs->socket);
        return -ENOTCONN;
}

static int bridge_missing_text(const struct ovs *ovs, char *buf, size_t size)
{
        if (ovs->cfg->bridge_create)
                proto_text_printf(buf, size, "integration bridge %s does not exist in ovsdb-server at %s yet (bridge_create = true)%s%s",
                            ovs->bridge, ovs->socket, ovs->bridge_error[0] ? ": " : "", ovs->bridge_error);
        else
                proto_text_printf(buf, size,
                            "integration bridge %s does not exist in ovsdb-server at %s; create it (ovs-vsctl add-br %s) "
                            "or set bridge_create = true (config keys integration_bridge, bridge_create)",
                            ovs->bridge, ovs->socket, ovs->bridge);
        return -ENOENT;
}

/* ---- the replica ---- */

static const struct ovsrec_bridge *bridge_find(const struct ovs *ovs)
{
        const struct ovsrec_bridge *br;

        OVSREC_BRIDGE_FOR_EACH (br, ovs->idl)
                if (br->name && streq(br->name, ovs->bridge))
                        return br;
        return NULL;
}

static const struct ovsrec_port *port_by_name(const struct ovs *ovs, const char *name)
{
        struct ovsrec_port *key = ovsrec_port_index_init_row(ovs->port_by_name);
        const struct ovsrec_port *p;

        ovsrec_port_index_set_name(key, name);
        p = ovsrec_port_index_find(ovs->port_by_name, key);
        ovsrec_port_index_destroy_row(key);
        return p;
}

static const struct ovsrec_interface *iface_by_name(const struct ovs *ovs, const char *name)
{
        struct ovsrec_interface *key = ovsrec_interface_index_init_row(ovs->iface_by_name);
        const struct ovsrec_interface *i;

        ovsrec_interface_index_set_name(key, name);
        i = ovsrec_interface_index_find(ovs->iface_by_name, key);
        ovsrec_interface_index_destroy_row(key);
        return i;
}

/* Whether p is one of br's ports. The IDL parses Bridge.ports in the order of
 * its datum, whose keys (the Port UUIDs) are kept sorted: a binary search
 * answers in O(log n) rather than a scan per port on a bridge of thousands.
 * Only a port that is not found is confirmed by a scan (rare: ours are on the
 * bridge), so an unexpected order can never give a wrong answer. */
static bool port_on_bridge(const struct ovsrec_bridge *br, const struct ovsrec_port *p)
{
        size_t lo = 0, hi = br ? br->n_ports : 0;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = uuid_compare_3way(&br->ports[mid]->header_.uuid, &p->header_.uuid);

                if (c == 0)
                        return br->ports[mid] == p;
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        for (size_t i = 0; br && i < br->n_ports; i++)
                if (br->ports[i] == p)
                        return true;
        return false;
}

/* The one Interface of one of our Ports: same name as the Port. */
static const struct ovsrec_interface *port_iface(const struct ovsrec_port *p)
{
        return p->n_interfaces == 1 && p->interfaces[0]->name && streq(p->interfaces[0]->name, p->name)
                       ? p->interfaces[0]
                       : NULL;
}

/* The two names a port's OVS Port may have: the tap (plain plugging) or the
 * qvo end of the veth pair (hybrid plugging). */
static int port_names(const char *port_uuid, bool hybrid, char ret_name[IFNAME_MAX], char ret_other[IFNAME_MAX])
{
        char tap[IFNAME_MAX], qvo[IFNAME_MAX];

        if (tap_name_from_port(port_uuid, tap) < 0 || port_dev_name(QVO_PREFIX, port_uuid, qvo) < 0)
                return -EINVAL;
        memcpy(ret_name, hybrid ? qvo : tap, IFNAME_MAX);
        memcpy(ret_other, hybrid ? tap : qvo, IFNAME_MAX);
        return 0;
}

/* The port UUID a Port is marked for, when the mark is well formed and the
 * Port carries one of the names derived from it (tap or qvo); NULL for
 * anything else. */
static const char *port_owner(const struct ovsrec_port *p)
{
        const char *mark = smap_get(&p->external_ids, OVS_MARK_KEY);
        char tap[IFNAME_MAX], qvo[IFNAME_MAX];

        if (!mark || !uuid_is_valid(mark) || port_names(mark, false, tap, qvo) < 0 || !p->name ||
            !(streq(p->name, tap) || streq(p->name, qvo)))
                return NULL;
        return mark;
}

/* Our Port named name for port_uuid on the integration bridge, or NULL. */
static const struct ovsrec_port *port_ours(const struct ovs *ovs, const struct ovsrec_bridge *br, const char *name,
                                           const char *port_uuid)
{
        const struct ovsrec_port *p = port_by_name(ovs, name);
        const char *owner = p ? port_owner(p) : NULL;

        return owner && streq(owner, port_uuid) && port_on_bridge(br, p) ? p : NULL;
}

/* Our Port of s's port under either of its names (s->name first), or NULL. */
static const struct ovsrec_port *port_ours_any(const struct ovs *ovs, const struct ovsrec_bridge *br,
                                               const struct port_spec *s)
{
        const struct ovsrec_port *p = port_ours(ovs, br, s->name, s->port_uuid);

        return p ? p : port_ours(ovs, br, s->other, s->port_uuid);
}

/* A short, clean copy of an OVS string for a reply ("" for NULL). */
static void ovs_text(char *dst, size_t size, const char *s)
{
        proto_text_printf(dst, size, "%s", s ? s : "");
}

/* Whether ovn-controller has marked the Interface installed. */
static bool iface_ovn_installed(const struct ovsrec_interface *i)
{
        return i && streq_ptr(smap_get(&i->external_ids, OVN_INSTALLED_KEY), "true");
}

/* One PORT object (contract: port_uuid, instance_uuid, name, bridge, ofport,
 * mac, mtu, iface_status, link_state, error when OVS reports one). */
static void write_port(const struct ovs *ovs, struct proto_writer *w, const char *key, const struct ovsrec_port *p)
{
        const struct ovsrec_interface *i = port_iface(p);
        const char *vm = i ? smap_get(&i->external_ids, "vm-uuid") : NULL;
        const char *mac = i ? smap_get(&i->external_ids, "attached-mac") : NULL;
        int64_t mtu = i && i->n_mtu_request ? i->mtu_request[0] : 0;
        char status[40], link[16], error[OVS_TEXT_MAX];

        ovs_text(status, sizeof(status), i ? smap_get(&i->external_ids, "iface-status") : NULL);
        ovs_text(link, sizeof(link), i ? i->link_state : NULL);
        ovs_text(error, sizeof(error), i ? i->error : NULL);
        pw_obj_begin(w, key);
        pw_str(w, "port_uuid", port_owner(p));
        pw_str(w, "instance_uuid", vm && uuid_is_valid(vm) ? vm : "");
        pw_str(w, "name", p->name);
        pw_str(w, "bridge", ovs->bridge);
        pw_i64(w, "ofport", i && i->n_ofport ? i->ofport[0] : -1);
        pw_str(w, "mac", mac && mac_is_valid(mac) ? mac : "");
        pw_u64(w, "mtu", mtu > 0 && mtu <= 65535 ? (uint64_t)mtu : 0);
        pw_str(w, "iface_status", status);
        pw_str(w, "link_state", link);
        if (error[0])
                pw_str(w, "error", error);
        if (ovs->cfg->ovn)
                pw_str(w, "ovn_binding", iface_ovn_installed(i) ? "installed" : "pending");
        pw_obj_end(w);
}

/* With ovn, "chassis": this host's OVN chassis name (Open_vSwitch external_ids:system-id, the name
 * ovn-controller registers), when it is set and a valid name (ovn_chassis_name_is_valid); else
 * nothing. A live migration's prepare reports it (requested-chassis=SOURCE,DESTINATION). */
static void write_chassis(const struct ovs *ovs, struct proto_writer *w)
{
        const struct ovsrec_open_vswitch *root = ovsrec_open_vswitch_first(ovs->idl);
        const char *id = root ? smap_get(&root->external_ids, "system-id") : NULL;

        if (ovs->cfg->ovn && id && ovn_chassis_name_is_valid(id))
                pw_str(w, "chassis", id);
}

/* ---- events to the core ---- */

static void emit_connection(struct ovs *ovs, bool connected)
{
        int r;

        pw_init(ovs->ev, PROTO_EVENT, 0, 0, "ovsdb_connection");
        pw_bool(ovs->ev, "connected", connected);
        pw_str(ovs->ev, "socket", ovs->socket);
        pw_str(ovs->ev, "error", connected ? "" : ovs->last_error);
        r = modrt_send_event(ovs->rt, ovs->ev);
        if (r < 0)
                log_debug("event ovsdb_connection not sent: %s", strerror(-r));
}

/* Follow the IDL's connection: up once the replica is in sync (the monitor
 * reply always moves the seqno), down when the session drops or the first
 * attempt fails. The IDL reconnects by itself with its own backoff. */
static void conn_update(struct ovs *ovs)
{
        unsigned int seqno = ovsdb_idl_get_seqno(ovs->idl);
        int err;

        if (ovsdb_idl_is_connected(ovs->idl)) {
                if (ovs->conn != CONN_UP && seqno != ovs->seqno_down) {
                        ovs->conn = CONN_UP;
                        ovs->last_error[0] = '\0';
                        log_info("connected to ovsdb-server at %s", ovs->socket);
                        emit_connection(ovs, true);
                }
                return;
        }
        err = ovsdb_idl_get_last_error(ovs->idl);
        if (ovs->conn == CONN_UP || (ovs->conn == CONN_CONNECTING && err != 0)) {
                bool was_up = ovs->conn == CONN_UP;

                ovs->conn = CONN_DOWN;
                ovs->seqno_down = seqno;
                proto_text_printf(ovs->last_error, sizeof(ovs->last_error), "%s",
                            err ? ovs_retval_to_string(err) : "connection closed");
                if (was_up)
                        log_warn("lost ovsdb-server at %s (%s); reconnecting", ovs->socket, ovs->last_error);
                else
                        log_warn("ovsdb-server at %s is unreachable (%s); retrying in the background", ovs->socket,
                                 ovs->last_error);
                emit_connection(ovs, false);
        }
}

/* ---- the integration bridge ---- */

/* With bridge_create, create the missing integration bridge (with its internal
 * port, as ovs-vsctl add-br does) in one transaction. */
static void bridge_maintain(struct ovs *ovs)
{
        const struct ovsrec_open_vswitch *root;
        struct ovsrec_interface *iface;
        struct ovsrec_port *port;
        struct ovsrec_bridge *br;
        enum ovsdb_idl_txn_status st;

        if (ovs->bridge_txn) {
                st = ovsdb_idl_txn_commit(ovs->bridge_txn);
                if (st == TXN_INCOMPLETE)
                        return;
                if (st == TXN_SUCCESS) {
                        log_info("created integration bridge %s (datapath_type %s)", ovs->bridge,
                                 ovs->cfg->bridge_datapath_type);
                        ovs->bridge_error[0] = '\0';
                } else if (st != TXN_TRY_AGAIN) {
                        proto_text_printf(ovs->bridge_error, sizeof(ovs->bridge_error),
                                    "cannot create integration bridge %s: %s", ovs->bridge,
                                    ovsdb_idl_txn_get_error(ovs->bridge_txn));
                        log_err("%s", ovs->bridge_error);
                }
                ovsdb_idl_txn_destroy(ovs->bridge_txn);
                ovs->bridge_txn = NULL;
                ovs->bridge_blocked = st != TXN_SUCCESS;
                ovs->bridge_seqno = ovsdb_idl_get_seqno(ovs->idl);
                return;
        }
        if (!ovs->cfg->bridge_create || ovs->conn != CONN_UP || bridge_find(ovs))
                return;
        if (ovs->bridge_blocked && ovs->bridge_seqno == ovsdb_idl_get_seqno(ovs->idl))
                return;
        ovs->bridge_blocked = false;
        root = ovsrec_open_vswitch_first(ovs->idl);
        if (!root) {
                proto_text_printf(ovs->bridge_error, sizeof(ovs->bridge_error),
                            "cannot create integration bridge %s: ovsdb-server at %s has no Open_vSwitch record "
                            "(has ovs-vsctl init run?)",
                            ovs->bridge, ovs->socket);
                ovs->bridge_blocked = true;
                ovs->bridge_seqno = ovsdb_idl_get_seqno(ovs->idl);
                return;
        }
        ovs->bridge_txn = ovsdb_idl_txn_create(ovs->idl);
        ovsdb_idl_txn_add_comment(ovs->bridge_txn, "nova-hypervisor: create integration bridge %s", ovs->bridge);
        iface = ovsrec_interface_insert(ovs->bridge_txn);
        ovsrec_interface_set_name(iface, ovs->bridge);
        ovsrec_interface_set_type(iface, "internal");
        port = ovsrec_port_insert(ovs->bridge_txn);
        ovsrec_port_set_name(port, ovs->bridge);
        ovsrec_port_set_interfaces(port, &iface, 1);
        br = ovsrec_bridge_insert(ovs->bridge_txn);
        ovsrec_bridge_set_name(br, ovs->bridge);
        ovsrec_bridge_set_datapath_type(br, ovs->cfg->bridge_datapath_type);
        ovsrec_bridge_set_ports(br, &port, 1);
        ovsrec_open_vswitch_update_bridges_addvalue(root, br);
        (void)ovsdb_idl_txn_commit(ovs->bridge_txn);
        log_debug("integration bridge %s is missing; creating it", ovs->bridge);
        bridge_maintain(ovs); /* settles at once when the commit could not be sent */
}

/* ---- ports in progress ---- */

/* ovs->busy finds, by name, the port of a change in progress: a request for a
 * port that another one holds is refused at once (O(1) a port, however many
 * ports are in flight), and a committed port_add that waits for ovs-vswitchd
 * to assign its ofports learns which of its ports to look at again. The IDL
 * tracks the Interface columns that matter (ofport, error; inserts and
 * deletes come with them), so after each ovsdb_idl_run() only the waiting
 * ports whose Interface changed are looked at, not every waiting port after
 * every update. */

/* The first of q's ports that a change in progress holds, or NULL. A port
 * is held under both of its names (tap and qvo): one request at a time per
 * port, whichever way it is plugged. */
static const char *req_conflict(const struct ovs *ovs, const struct req *q)
{
        for (size_t k = 0; k < q->n; k++)
                if (shash_find(&ovs->busy, q->ports[k].name) || shash_find(&ovs->busy, q->ports[k].other))
                        return q->ports[k].name;
        return NULL;
}

/* q holds its ports (names are unique: req_conflict() and handle_add_many()
 * checked). */
static void req_hold(struct ovs *ovs, struct req *q)
{
        for (size_t k = 0; k < q->n; k++) {
                shash_add(&ovs->busy, q->ports[k].name, &q->ports[k]);
                shash_add(&ovs->busy, q->ports[k].other, &q->ports[k]);
        }
        q->named = true;
}

static void req_release(struct ovs *ovs, struct req *q)
{
        for (size_t k = 0; q->named && k < q->n; k++) {
                shash_find_and_delete(&ovs->busy, q->ports[k].name);
                shash_find_and_delete(&ovs->busy, q->ports[k].other);
        }
        q->named = false;
}

/* Mark the waiting ports whose Interface changed in the last ovsdb_idl_run().
 * The IDL keeps deleted rows readable until ovsdb_idl_track_clear(). */
static void note_iface_changes(struct ovs *ovs)
{
        const struct ovsrec_interface *i;

        if (shash_is_empty(&ovs->busy))
                return;
        OVSREC_INTERFACE_FOR_EACH_TRACKED (i, ovs->idl) {
                struct port_spec *s = i->name ? shash_find_data(&ovs->busy, i->name) : NULL;

                if (s && s->req->state == ST_WAIT) {
                        s->changed = true;
                        s->req->changed = true;
                }
        }
}

/* ---- requests ---- */

static void req_free(struct ovs *ovs, struct req *q)
{
        req_release(ovs, q);
        if (q->txn)
                ovsdb_idl_txn_destroy(q->txn);
        free(q);
}

static void fill_add(struct proto_writer *w, void *userdata);
static void fill_get(struct proto_writer *w, void *userdata);
static void fill_list(struct proto_writer *w, void *userdata);

/* The replies' fill callbacks need the module too. */
struct fill_ctx {
        const struct ovs *ovs;
        const struct req *q;
};

/* Answer the request (once): status 0 with its reply, or q->error. */
static void req_answer(struct ovs *ovs, struct req *q, int status)
{
        struct fill_ctx ctx = { ovs, q };
        void (*fill)(struct proto_writer *, void *) = NULL;

        if (!q->d)
                return;
        if (status == 0)
                fill = q->kind == REQ_ADD ? fill_add : q->kind == REQ_GET ? fill_get : q->kind == REQ_LIST ? fill_list : NULL;
        (void)modrt_complete(ovs->rt, TAKE_PTR(q->d), status, status < 0 ? q->err_text : NULL, fill, &ctx);
}

/* Record the failure being reported (the first one wins). */
_printf_(3, 4) static void req_set_error(struct req *q, int error, const char *fmt, ...)
{
        va_list ap;

        if (q->error)
                return;
        q->error = error;
        va_start(ap, fmt);
        (void)vsnprintf(q->err_text, sizeof(q->err_text), fmt, ap);
        va_end(ap);
        proto_text_sanitize(q->err_text);
}

/* Append to the failure text (cut when it does not fit). */
_printf_(2, 3) static void req_add_note(struct req *q, const char *fmt, ...)
{
        size_t used = strlen(q->err_text);
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(q->err_text + used, sizeof(q->err_text) - used, fmt, ap);
        va_end(ap);
        proto_text_sanitize(q->err_text);
}

static bool req_may_try(const struct ovs *ovs, const struct req *q)
{
        return ovs->conn == CONN_UP && !(q->blocked && q->blocked_seqno == ovsdb_idl_get_seqno(ovs->idl));
}

static void req_block(const struct ovs *ovs, struct req *q)
{
        q->blocked = true;
        q->blocked_seqno = ovsdb_idl_get_seqno(ovs->idl);
}

/* Build the port_add transaction: insert what is missing, converge what is
 * ours. 0 with *ret_txn committed (or NULL when nothing needed a change),
 * 1 when the bridge is being created, or -errno with q's error set. */
/* s's Port p exists: when it is ours and where it belongs, converge its
 * interface key by key (other keys, e.g. OVN's, stay) and its MTU; else
 * -EEXIST with q's error set, and nothing changes. */
static int add_converge(const struct ovs *ovs, const struct ovsrec_bridge *br, struct req *q,
                        const struct port_spec *s, const struct ovsrec_port *p, const char *const want[_XID_MAX])
{
        const char *owner = port_owner(p);
        const struct ovsrec_interface *i = port_iface(p);

        if (!owner || !streq(owner, s->port_uuid)) {
                req_set_error(q, -EEXIST, "a port named %s exists in ovsdb without our mark for port %s; left alone",
                              s->name, s->port_uuid);
                return -EEXIST;
        }
        if (!port_on_bridge(br, p)) {
                req_set_error(q, -EEXIST, "port %s is ours but not on the integration bridge %s; left alone", s->name,
                              ovs->bridge);
                return -EEXIST;
        }
        if (!i) {
                req_set_error(q, -EEXIST, "port %s is ours but has unexpected interfaces; left alone", s->name);
                return -EEXIST;
        }
        for (size_t x = 0; x < _XID_MAX; x++)
                if (!streq_ptr(smap_get(&i->external_ids, xid_keys[x]), want[x]))
                        ovsrec_interface_update_external_ids_setkey(i, xid_keys[x], want[x]);
        if (i->n_mtu_request != 1 || i->mtu_request[0] != s->mtu)
                ovsrec_interface_set_mtu_request(i, &s->mtu, 1);
        return 0;
}

/* A new Port with one Interface for s, carrying our mark and nova's external ids, on br. */
static void add_insert(struct ovsdb_idl_txn *txn, const struct ovsrec_bridge *br, struct port_spec *s,
                       const char *const want[_XID_MAX])
{
        struct smap ids = SMAP_INITIALIZER(&ids), mark = SMAP_INITIALIZER(&mark);
        struct ovsrec_interface *ni = ovsrec_interface_insert(txn);
        struct ovsrec_port *np = ovsrec_port_insert(txn);

        for (size_t x = 0; x < _XID_MAX; x++)
                smap_add(&ids, xid_keys[x], want[x]);
        smap_add(&mark, OVS_MARK_KEY, s->port_uuid);
        ovsrec_interface_set_name(ni, s->name);
        ovsrec_interface_set_external_ids(ni, &ids);
        ovsrec_interface_set_mtu_request(ni, &s->mtu, 1);
        ovsrec_port_set_name(np, s->name);
        ovsrec_port_set_interfaces(np, &ni, 1);
        ovsrec_port_set_external_ids(np, &mark);
        ovsrec_bridge_update_ports_addvalue(br, np);
        smap_destroy(&ids);
        smap_destroy(&mark);
        s->inserting = true;
}

static int add_build(struct ovs *ovs, struct req *q, struct ovsdb_idl_txn **ret_txn)
{
        const struct ovsrec_bridge *br = bridge_find(ovs);
        struct ovsdb_idl_txn *txn;
        char text[256];
        int r = 0;

        *ret_txn = NULL;
        if (!br) {
                if (!ovs->cfg->bridge_create) {
                        r = bridge_missing_text(ovs, text, sizeof(text));
                        req_set_error(q, r, "%s", text);
                        return r;
                }
                if (ovs->bridge_error[0] && !ovs->bridge_txn) {
                        req_set_error(q, -EIO, "%s", ovs->bridge_error);
                        return -EIO;
                }
                return 1;
        }
        txn = ovsdb_idl_txn_create(ovs->idl);
        if (q->many)
                ovsdb_idl_txn_add_comment(txn, "nova-hypervisor: port_add_many %s +%zu", q->ports[0].name, q->n - 1);
        else
                ovsdb_idl_txn_add_comment(txn, "nova-hypervisor: port_add %s", q->ports[0].name);
        for (size_t k = 0; k < q->n && r == 0; k++) {
                struct port_spec *s = &q->ports[k];
                const struct ovsrec_port *p = port_by_name(ovs, s->name);
                const char *want[_XID_MAX] = {
                        [XID_IFACE_ID] = s->port_uuid, [XID_ATTACHED_MAC] = s->mac, [XID_IFACE_STATUS] = "active",
                        [XID_VM_UUID] = s->instance_uuid, [XID_VM_ID] = s->instance_uuid, [XID_MARK] = s->port_uuid,
                };

                s->inserting = false;
                /* One OVS Port per port: ours under the other name (plain <-> hybrid) goes
                 * in this same transaction. Not restored if the call fails later: its
                 * device has been replugged by network-control anyway. */
                const struct ovsrec_port *o = port_ours(ovs, br, s->other, s->port_uuid);
                if (o)
                        ovsrec_bridge_update_ports_delvalue(br, o);
                if (p)
                        r = add_converge(ovs, br, q, s, p, want);
                else if (iface_by_name(ovs, s->name)) {
                        req_set_error(q, -EEXIST, "an interface named %s exists in another port; left alone", s->name);
                        r = -EEXIST;
                } else
                        add_insert(txn, br, s, want);
        }
        if (r < 0) {
                ovsdb_idl_txn_abort(txn);
                ovsdb_idl_txn_destroy(txn);
                return r;
        }
        (void)ovsdb_idl_txn_commit(txn);
        *ret_txn = txn;
        return 0;
}

/* Build the port_del transaction: our Port of the port under either name
 * (both, should both exist). 0 with *ret_txn committed, 1 when the port is
 * already gone after an earlier attempt of this request, or -errno. */
static int del_build(struct ovs *ovs, struct req *q, struct ovsdb_idl_txn **ret_txn)
{
        const struct ovsrec_bridge *br = bridge_find(ovs);
        const struct port_spec *s = &q->ports[0];
        const struct ovsrec_port *p = br ? port_ours(ovs, br, s->name, s->port_uuid) : NULL;
        const struct ovsrec_port *o = br ? port_ours(ovs, br, s->other, s->port_uuid) : NULL;
        char text[256];
        int r;

        *ret_txn = NULL;
        if (!p && !o) {
                if (q->sent)
                        return 1;
                if (!br) {
                        r = bridge_missing_text(ovs, text, sizeof(text));
                        req_set_error(q, r, "%s", text);
                        return r;
                }
                req_set_error(q, -ENOENT, "no port of ours for port %s on bridge %s", q->ports[0].port_uuid,
                              ovs->bridge);
                return -ENOENT;
        }
        *ret_txn = ovsdb_idl_txn_create(ovs->idl);
        ovsdb_idl_txn_add_comment(*ret_txn, "nova-hypervisor: port_del %s", p ? p->name : o->name);
        if (p)
                ovsrec_bridge_update_ports_delvalue(br, p);
        if (o)
                ovsrec_bridge_update_ports_delvalue(br, o);
        (void)ovsdb_idl_txn_commit(*ret_txn);
        return 0;
}

/* Build the removal of what this call inserted. 0 with *ret_txn committed,
 * 1 when there is nothing (left) to remove. */
static int undo_build(struct ovs *ovs, struct req *q, struct ovsdb_idl_txn **ret_txn)
{
        const struct ovsrec_bridge *br = bridge_find(ovs);
        struct ovsdb_idl_txn *txn = NULL;

        *ret_txn = NULL;
        for (size_t k = 0; br && k < q->n; k++) {
                const struct ovsrec_port *p;

                if (!q->ports[k].inserted)
                        continue;
                p = port_ours(ovs, br, q->ports[k].name, q->ports[k].port_uuid);
                if (!p)
                        continue;
                if (!txn) {
                        txn = ovsdb_idl_txn_create(ovs->idl);
                        ovsdb_idl_txn_add_comment(txn, "nova-hypervisor: undo %s %s", q->many ? "port_add_many" : "port_add",
                                                  q->ports[0].name);
                }
                ovsrec_bridge_update_ports_delvalue(br, p);
        }
        if (!txn)
                return 1;
        (void)ovsdb_idl_txn_commit(txn);
        *ret_txn = txn;
        return 0;
}

/* The names this call inserted, for messages ("tapa, tapb"). */
static void inserted_names(const struct req *q, char *buf, size_t size)
{
        size_t used = 0;

        buf[0] = '\0';
        for (size_t k = 0; k < q->n && used + IFNAME_MAX + 8 < size; k++)
                if (q->ports[k].inserted)
                        used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? ", " : "", q->ports[k].name);
}

/* A read that waited for the replica: answer it now. */
static void read_answer(struct ovs *ovs, struct req *q)
{
        const struct ovsrec_bridge *br = bridge_find(ovs);
        char text[256];

        if (!br)
                req_set_error(q, bridge_missing_text(ovs, text, sizeof(text)), "%s", text);
        else if (q->kind == REQ_GET && !port_ours_any(ovs, br, &q->ports[0]))
                req_set_error(q, -ENOENT, "no port of ours for port %s on bridge %s", q->ports[0].port_uuid,
                              ovs->bridge);
        req_answer(ovs, q, q->error);
}

/* How far a step got. */
enum step {
        STEP_IDLE,  /* wait for the replica, a reply or a deadline */
        STEP_AGAIN, /* the state changed: step again */
        STEP_DONE,  /* answered and nothing more owed: unlink and free */
};

/* Give up on the change: a port_add removes what it inserted, then answers. */
static enum step req_fail(struct ovs *ovs, struct req *q)
{
        if (q->kind != REQ_ADD) {
                req_answer(ovs, q, q->error);
                return STEP_DONE;
        }
        q->state = ST_UNDO;
        q->blocked = false;
        return STEP_AGAIN;
}

static void set_deadline_error(const struct ovs *ovs, struct req *q, const char *what)
{
        char text[256];

        if (ovs->conn != CONN_UP)
                req_set_error(q, unreachable_text(ovs, text, sizeof(text)), "%s", text);
        else
                req_set_error(q, -ETIMEDOUT, "%s within %u ms (port_timeout_ms)", what, ovs->cfg->port_timeout_ms);
}

static enum step step_build(struct ovs *ovs, struct req *q, long long now)
{
        struct ovsdb_idl_txn *txn = NULL;
        int r;

        if (!req_may_try(ovs, q)) {
                /* Taken while the first connection was pending, which then failed. */
                if (ovs->conn == CONN_DOWN && !q->sent && !q->blocked) {
                        set_deadline_error(ovs, q, "");
                        return req_fail(ovs, q);
                }
                if (now < q->deadline)
                        return STEP_IDLE;
                set_deadline_error(ovs, q,
                                   ovs->bridge_txn ? "the integration bridge was not created"
                                                   : "ovsdb-server did not take the change");
                return req_fail(ovs, q);
        }
        q->blocked = false;
        if (q->kind == REQ_GET || q->kind == REQ_LIST) {
                read_answer(ovs, q);
                return STEP_DONE;
        }
        r = q->kind == REQ_ADD ? add_build(ovs, q, &txn) : del_build(ovs, q, &txn);
        if (r < 0)
                return req_fail(ovs, q);
        if (r == 1) {
                if (q->kind == REQ_DEL) {
                        req_answer(ovs, q, 0); /* gone after an earlier attempt of this request */
                        return STEP_DONE;
                }
                req_block(ovs, q); /* the integration bridge is being created */
                return STEP_IDLE;
        }
        q->txn = txn;
        q->state = ST_COMMIT;
        return STEP_AGAIN;
}

static enum step step_undo(struct ovs *ovs, struct req *q, long long now)
{
        struct ovsdb_idl_txn *txn = NULL;
        char names[160];

        if (!req_may_try(ovs, q)) {
                if (q->d && (ovs->conn != CONN_UP || now >= q->deadline + UNDO_GRACE_MS)) {
                        inserted_names(q, names, sizeof(names));
                        req_add_note(q, "; removing %s is pending until ovsdb-server takes it", names);
                        req_answer(ovs, q, q->error);
                }
                return STEP_IDLE;
        }
        q->blocked = false;
        if (undo_build(ovs, q, &txn) == 1) {
                req_answer(ovs, q, q->error);
                return STEP_DONE;
        }
        q->txn = txn;
        q->state = ST_UNDOING;
        return STEP_AGAIN;
}

/* A transaction of the request (the change or its removal) settles. */
static enum step step_commit(struct ovs *ovs, struct req *q, long long now)
{
        bool undo = q->state == ST_UNDOING, conflict;
        enum ovsdb_idl_txn_status st = ovsdb_idl_txn_commit(q->txn);
        char names[160], why[OVS_TEXT_MAX];

        if (st == TXN_INCOMPLETE || st == TXN_SUCCESS) {
                q->sent = true;
                for (size_t k = 0; !undo && k < q->n; k++)
                        q->ports[k].inserted |= q->ports[k].inserting;
        }
        if (st == TXN_INCOMPLETE) {
                if (!undo && !q->error && now >= q->deadline)
                        set_deadline_error(ovs, q, "ovsdb-server did not confirm the change");
                if (q->d && q->error && now >= q->deadline + UNDO_GRACE_MS) {
                        req_add_note(q, "; the change is still in flight and will be undone");
                        req_answer(ovs, q, q->error);
                }
                return STEP_IDLE;
        }
        proto_text_printf(why, sizeof(why), "%s", ovsdb_idl_txn_get_error(q->txn));
        /* ovsdb-server's error object, {"details": ..., "error": "constraint violation"}: the
         * kind comes last and a long details text pushes it out of why. */
        conflict = st == TXN_ERROR && strstr(ovsdb_idl_txn_get_error(q->txn), "\"constraint violation\"");
        ovsdb_idl_txn_destroy(TAKE_PTR(q->txn));
        switch (st) {
        case TXN_TRY_AGAIN:
                /* Not sent, or the connection dropped with it in flight (it may
                 * have applied): build it again once the replica has changed. */
                req_block(ovs, q);
                if (undo) {
                        q->state = ST_UNDO;
                        return STEP_AGAIN;
                }
                q->state = ST_BUILD;
                return q->error ? req_fail(ovs, q) : STEP_AGAIN;
        case TXN_SUCCESS:
        case TXN_UNCHANGED:
                if (undo) {
                        for (size_t k = 0; k < q->n; k++)
                                q->ports[k].inserted = false;
                        req_answer(ovs, q, q->error);
                        return STEP_DONE;
                }
                if (q->error)
                        return req_fail(ovs, q);
                if (q->kind == REQ_DEL) {
                        req_answer(ovs, q, 0);
                        return STEP_DONE;
                }
                q->committed = now;
                q->state = ST_WAIT;
                q->scanned = false;
                return STEP_AGAIN;
        default:
                if (undo) {
                        inserted_names(q, names, sizeof(names));
                        log_err("cannot remove %s again: %s", names, why);
                        req_add_note(q, "; removing %s failed: %s", names, why);
                        req_answer(ovs, q, q->error);
                        return STEP_DONE;
                }
                if (conflict && q->conflicts < MAX_CONFLICTS) {
                        /* Our replica was behind: someone else created a row with one of our
                         * derived names (a foreign port) that we have not seen yet. Build again
                         * once the replica has changed; the build then sees that port and
                         * answers as it always does for it (left alone, -EEXIST). */
                        q->conflicts++;
                        log_info("ovsdb-server refused a change for a row this replica does not have yet; "
                                 "building it again once the replica has changed (%u of %u)",
                                 q->conflicts, MAX_CONFLICTS);
                        req_block(ovs, q);
                        q->state = ST_BUILD;
                        return STEP_AGAIN;
                }
                req_set_error(q, -EIO, "ovsdb-server refused the change: %s", why);
                return req_fail(ovs, q);
        }
}

/* Look at one waiting port again: 1 when its Interface has an ofport, 0 while
 * it has none (or is not there), -1 when ovs-vswitchd reports an error (q's
 * error is set). With ovn, also whether ovn-controller marked it installed. */
static int wait_check(struct ovs *ovs, const struct ovsrec_bridge *br, struct req *q, struct port_spec *s)
{
        const struct ovsrec_port *p = br ? port_ours(ovs, br, s->name, s->port_uuid) : NULL;
        const struct ovsrec_interface *i = p ? port_iface(p) : NULL;
        bool ready, installed;

        s->changed = false;
        if (i && i->error && i->error[0]) {
                req_set_error(q, -ENODEV, "ovs-vswitchd cannot add port %s: %s", s->name, i->error);
                return -1;
        }
        ready = i && i->n_ofport && i->ofport[0] > 0;
        if (ready != s->ready) {
                s->ready = ready;
                if (ready) {
                        q->n_ready++;
                        /* the switch is working through its ports, this fast */
                        ovs->progress_at = time_msec();
                        if (q->committed)
                                ovs->recent_ms = ovs_wait_recent(ovs->recent_ms, ovs->progress_at - q->committed);
                } else
                        q->n_ready--;
        }
        installed = ovs->cfg->ovn && iface_ovn_installed(i);
        if (installed != s->installed) {
                s->installed = installed;
                if (installed)
                        q->n_installed++;
                else
                        q->n_installed--;
        }
        return ready;
}

/* Every port of q is as far as the call waits for: an ofport, and with ovn
 * ovn-installed=true. */
static bool wait_done(const struct ovs *ovs, const struct req *q)
{
        return q->n_ready == q->n && (!ovs->cfg->ovn || q->n_installed == q->n);
}

/* The first port of q that ovn-controller has not marked installed yet. */
static const char *first_pending(const struct req *q)
{
        for (size_t k = 0; k < q->n; k++)
                if (!q->ports[k].installed)
                        return q->ports[k].port_uuid;
        return "";
}

/* Look at every port of q; -1 when one has an error. */
static int wait_check_all(struct ovs *ovs, const struct ovsrec_bridge *br, struct req *q)
{
        for (size_t k = 0; k < q->n; k++)
                if (wait_check(ovs, br, q, &q->ports[k]) < 0)
                        return -1;
        return 0;
}

/* Committed port_add: wait until every Interface has an ofport, or one has an
 * error. The first step looks at every port (the ofports may have come with
 * the commit's own update); later steps only at those whose Interface changed.
 * Before answering, every port is looked at once more, so the reply reflects
 * the replica as it is (a port moved or removed meanwhile is waited for). */
/* The ports of a waiting request checked again: all of them on the first pass or at the deadline,
 * else those that changed. 0, or -1 when the request failed. */
static int wait_scan(struct ovs *ovs, struct req *q, long long now)
{
        const struct ovsrec_bridge *br = bridge_find(ovs);
        int r = 0;

        if (!q->scanned || now >= q->deadline) {
                if (!q->scanned) {
                        q->scanned = true;
                        q->n_ready = 0;
                        q->n_installed = 0;
                        for (size_t k = 0; k < q->n; k++) {
                                q->ports[k].ready = false;
                                q->ports[k].installed = false;
                        }
                }
                return wait_check_all(ovs, br, q);
        }
        for (size_t k = 0; k < q->n && r == 0; k++)
                if (q->ports[k].changed && wait_check(ovs, br, q, &q->ports[k]) < 0)
                        r = -1;
        if (r == 0 && wait_done(ovs, q))
                r = wait_check_all(ovs, br, q);
        return r;
}

static void log_wait_done(const struct ovs *ovs, const struct req *q, long long now)
{
        if (ovs->cfg->ovn)
                log_info("%s %s%s: ovn-installed %lld ms after the commit (ofport after %lld ms), %lld ms after "
                         "the request",
                         q->many ? "port_add_many" : "port_add", q->ports[0].name, q->many ? " ..." : "",
                         now - q->committed, (q->ovn_waiting ? q->ofports_at : now) - q->committed, now - q->started);
        else
                log_debug("%s %s%s: ofport assigned %lld ms after the commit, %lld ms after the request",
                          q->many ? "port_add_many" : "port_add", q->ports[0].name, q->many ? " ..." : "",
                          now - q->committed, now - q->started);
}

/* The deadline of a waiting request passed for good: answered (ovn_timeout_policy continue) or failed,
 * with what it waited for. */
static enum step wait_timed_out(struct ovs *ovs, struct req *q, long long now)
{
        char what[128];

        if (q->ovn_waiting && q->n_ready == q->n && ovs->conn == CONN_UP) {
                if (streq(ovs->cfg->ovn_timeout_policy, "continue")) {
                        log_warn("%s %s%s: ovn-controller did not mark %zu of %zu port(s) installed within %u ms "
                                 "(ovn_wait_ms); continuing (ovn_timeout_policy = continue), the port shows "
                                 "ovn_binding pending",
                                 q->many ? "port_add_many" : "port_add", q->ports[0].name, q->many ? " ..." : "",
                                 q->n - q->n_installed, q->n, ovs->cfg->ovn_wait_ms);
                        req_answer(ovs, q, 0);
                        return STEP_DONE;
                }
                req_set_error(q, -ETIMEDOUT,
                              "ovn-controller did not mark logical port %s ovn-installed within %u ms (ovn_wait_ms, "
                              "ovn_timeout_policy fail): is ovn-controller running here, does the port exist in OVN NB?",
                              first_pending(q), ovs->cfg->ovn_wait_ms);
                return req_fail(ovs, q);
        }
        if (ovs->conn == CONN_UP && q->extended) {
                /* the wait was extended (ovs_wait_deadline()): say how long, and why it ended */
                req_set_error(q, -ETIMEDOUT,
                              "ovs-vswitchd assigned no ofport to %zu of %zu port(s) in %lld ms (port_timeout_ms %u, "
                              "extended while the switch was busy; its last ofport came %lld ms ago)",
                              q->n - q->n_ready, q->n, now - q->started, ovs->cfg->port_timeout_ms,
                              ovs->progress_at ? now - ovs->progress_at : now - q->started);
                return req_fail(ovs, q);
        }
        proto_text_printf(what, sizeof(what), "ovs-vswitchd assigned no ofport to %zu of %zu port(s) (is it running?)",
                          q->n - q->n_ready, q->n);
        set_deadline_error(ovs, q, what);
        return req_fail(ovs, q);
}

static enum step step_wait(struct ovs *ovs, struct req *q, long long now)
{
        int r;

        if (q->scanned && !q->changed && now < q->deadline)
                return STEP_IDLE;
        r = wait_scan(ovs, q, now);
        q->changed = false;
        if (r < 0)
                return req_fail(ovs, q);
        if (wait_done(ovs, q)) {
                log_wait_done(ovs, q, now);
                req_answer(ovs, q, 0);
                return STEP_DONE;
        }
        if (ovs->cfg->ovn && q->n_ready == q->n && !q->ovn_waiting) {
                /* Every ofport is there: now ovn-controller has ovn_wait_ms to
                 * bind the logical ports and install their flows. */
                q->ovn_waiting = true;
                q->ofports_at = now;
                q->deadline = now + ovs->cfg->ovn_wait_ms;
                return STEP_IDLE;
        }
        if (now < q->deadline)
                return STEP_IDLE;
        if (!q->ovn_waiting && ovs->conn == CONN_UP) {
                /* Still in time while ovs-vswitchd keeps assigning ofports to the
                 * ports it was given (ovs_wait_deadline()). */
                long long d = ovs_wait_deadline(q->started, ovs->progress_at, ovs->recent_ms, ovs->cfg->port_timeout_ms);

                if (now < d) {
                        q->deadline = d;
                        q->extended = true;
                        return STEP_IDLE;
                }
        }
        return wait_timed_out(ovs, q, now);
}

/* Drive a request as far as it goes now. True when it is finished: the
 * caller unlinks and frees it. */
static bool req_step(struct ovs *ovs, struct req *q)
{
        long long now = time_msec();

        for (;;) {
                enum step s = STEP_IDLE;

                switch (q->state) {
                case ST_BUILD:
                        s = step_build(ovs, q, now);
                        break;
                case ST_UNDO:
                        s = step_undo(ovs, q, now);
                        break;
                case ST_COMMIT:
                case ST_UNDOING:
                        s = step_commit(ovs, q, now);
                        break;
                case ST_WAIT:
                        s = step_wait(ovs, q, now);
                        break;
                }
                if (s != STEP_AGAIN)
                        return s == STEP_DONE;
        }
}

static void reqs_run(struct ovs *ovs)
{
        for (struct req **pq = &ovs->reqs; *pq;) {
                struct req *q = *pq;

                if (req_step(ovs, q)) {
                        *pq = q->next;
                        req_free(ovs, q);
                } else {
                        pq = &q->next;
                }
        }
}

static void reqs_wait(const struct ovs *ovs)
{
        for (const struct req *q = ovs->reqs; q; q = q->next) {
                if (!q->d)
                        continue;
                poll_timer_wait_until(q->error ? q->deadline + UNDO_GRACE_MS : q->deadline);
        }
}

/* ---- entrypoints ---- */

static struct req *req_new(struct ovs *ovs, enum req_kind kind, size_t n)
{
        struct req *q = calloc(1, sizeof(*q) + n * sizeof(q->ports[0]));

        if (!q)
                return NULL;
        q->kind = kind;
        q->state = ST_BUILD;
        q->n = n;
        for (size_t k = 0; k < n; k++)
                q->ports[k].req = q;
        q->started = time_msec();
        q->deadline = q->started + ovs->cfg->port_timeout_ms;
        return q;
}

static int spec_from(const struct proto_value *o, struct port_spec *s)
{
        if (strscpy(s->port_uuid, proto_get_str(o, "port_uuid", ""), sizeof(s->port_uuid)) < 0 ||
            strscpy(s->instance_uuid, proto_get_str(o, "instance_uuid", ""), sizeof(s->instance_uuid)) < 0 ||
            strscpy(s->mac, proto_get_str(o, "mac", ""), sizeof(s->mac)) < 0)
                return -EINVAL;
        s->mtu = (int64_t)proto_get_u64(o, "mtu", 1500);
        s->hybrid = proto_get_bool(o, "hybrid", false);
        return port_names(s->port_uuid, s->hybrid, s->name, s->other);
}

/* A port_del/port_get spec from the request's port_uuid: both names, and
 * the one of an existing Port of ours in s->name (for the audit line). */
static int spec_from_uuid(const struct ovs *ovs, const struct proto_value *req, struct port_spec *s)
{
        const struct ovsrec_bridge *br = ovs->conn == CONN_UP ? bridge_find(ovs) : NULL;
        char tmp[IFNAME_MAX];

        if (strscpy(s->port_uuid, proto_get_str(req, "port_uuid", ""), sizeof(s->port_uuid)) < 0 ||
            port_names(s->port_uuid, false, s->name, s->other) < 0)
                return -EINVAL;
        if (br && !port_ours(ovs, br, s->name, s->port_uuid) && port_ours(ovs, br, s->other, s->port_uuid)) {
                memcpy(tmp, s->name, sizeof(tmp));
                memcpy(s->name, s->other, sizeof(s->name));
                memcpy(s->other, tmp, sizeof(s->other));
        }
        return 0;
}

/* Take the request over: queue it, try it at once, answer later if it must wait. */
static int req_start(struct ovs *ovs, struct modrt_call *call, struct req *q)
{
        const char *busy = req_conflict(ovs, q);
        int r;

        if (busy) {
                r = call_fail(call, -EBUSY, "another request for port %s is in progress", busy);
                free(q);
                return r;
        }
        q->d = modrt_defer(ovs->rt, call);
        if (!q->d) {
                free(q);
                return call_fail(call, -ENOMEM, "out of memory");
        }
        q->next = ovs->reqs;
        ovs->reqs = q;
        req_hold(ovs, q);
        if (req_step(ovs, q)) {
                ovs->reqs = q->next;
                req_free(ovs, q);
        }
        return MODRT_DEFERRED;
}

/* Requests arriving while ovsdb-server is known to be unreachable fail at once. */
static int need_conn(const struct ovs *ovs, struct modrt_call *call)
{
        if (ovs->conn != CONN_DOWN)
                return 0;
        return unreachable_text(ovs, call->err, sizeof(call->err));
}

static int handle_add(void *state, struct modrt_call *call)
{
        struct ovs *ovs = state;
        struct req *q;
        int r;

        q = req_new(ovs, REQ_ADD, 1);
        if (!q)
                return call_fail(call, -ENOMEM, "out of memory");
        if (spec_from(call->req, &q->ports[0]) < 0) {
                free(q);
                return call_fail(call, -EINVAL, "port_uuid: cannot derive a port name");
        }
        proto_text_printf(call->audit, sizeof(call->audit), "port=%s bridge=%s", q->ports[0].name, ovs->bridge);
        r = need_conn(ovs, call);
        if (r < 0) {
                free(q);
                return r;
        }
        return req_start(ovs, call, q);
}

static int handle_add_many(void *state, struct modrt_call *call)
{
        struct ovs *ovs = state;
        const struct proto_value *list = proto_get(call->req, "ports");
        size_t n = list ? list->count : 0, k = 0;
        struct req *q;
        int r;

        if (n == 0)
                return call_fail(call, -EINVAL, "ports: empty");
        if (n > (ovs->cfg->ovn ? ADD_MANY_REPLY_MAX_OVN : ADD_MANY_REPLY_MAX))
                return call_fail(call, -E2BIG, "ports: at most %d ports per port_add_many fit one reply; split the batch",
                                 ovs->cfg->ovn ? ADD_MANY_REPLY_MAX_OVN : ADD_MANY_REPLY_MAX);
        q = req_new(ovs, REQ_ADD, n);
        if (!q)
                return call_fail(call, -ENOMEM, "out of memory");
        q->many = true;
        for (const struct proto_value *o = list->child; o && k < n; o = o->next, k++) {
                if (spec_from(o, &q->ports[k]) < 0) {
                        free(q);
                        return call_fail(call, -EINVAL, "ports[%zu].port_uuid: cannot derive a port name", k);
                }
                for (size_t j = 0; j < k; j++)
                        if (streq(q->ports[j].name, q->ports[k].name) || streq(q->ports[j].name, q->ports[k].other)) {
                                r = call_fail(call, -EINVAL, "ports[%zu] and ports[%zu] both derive the port name %s", j,
                                              k, q->ports[j].name);
                                free(q);
                                return r;
                        }
        }
        proto_text_printf(call->audit, sizeof(call->audit), "port=%s+%zu bridge=%s", q->ports[0].name, n - 1, ovs->bridge);
        r = need_conn(ovs, call);
        if (r < 0) {
                free(q);
                return r;
        }
        return req_start(ovs, call, q);
}

static int handle_del(void *state, struct modrt_call *call)
{
        struct ovs *ovs = state;
        struct req *q;
        int r;

        q = req_new(ovs, REQ_DEL, 1);
        if (!q)
                return call_fail(call, -ENOMEM, "out of memory");
        if (spec_from_uuid(ovs, call->req, &q->ports[0]) < 0) {
                free(q);
                return call_fail(call, -EINVAL, "port_uuid: cannot derive a port name");
        }
        proto_text_printf(call->audit, sizeof(call->audit), "port=%s bridge=%s", q->ports[0].name, ovs->bridge);
        r = need_conn(ovs, call);
        if (r < 0) {
                free(q);
                return r;
        }
        return req_start(ovs, call, q);
}

/* Reads: answered at once from the replica when it is in sync; at start,
 * before the first connection settled, they wait for it. */
static int handle_read(struct ovs *ovs, struct modrt_call *call, enum req_kind kind)
{
        struct req *q;
        int r;

        r = need_conn(ovs, call);
        if (r < 0)
                return r;
        q = req_new(ovs, kind, kind == REQ_GET ? 1 : 0);
        if (!q)
                return call_fail(call, -ENOMEM, "out of memory");
        if (kind == REQ_GET && spec_from_uuid(ovs, call->req, &q->ports[0]) < 0) {
                free(q);
                return call_fail(call, -EINVAL, "port_uuid: cannot derive a port name");
        }
        if (kind == REQ_LIST) {
                (void)strscpy(q->after, proto_get_str(call->req, "after", ""), sizeof(q->after));
                q->limit = proto_get_u64(call->req, "limit", PROTO_MAX_ITEMS);
        }
        if (ovs->conn == CONN_UP) {
                const struct ovsrec_bridge *br = bridge_find(ovs);
                struct fill_ctx ctx = { ovs, q };

                r = 0;
                if (!br)
                        r = bridge_missing_text(ovs, call->err, sizeof(call->err));
                else if (kind == REQ_GET && !port_ours_any(ovs, br, &q->ports[0]))
                        r = call_fail(call, -ENOENT, "no port of ours for port %s on bridge %s", q->ports[0].port_uuid,
                                      ovs->bridge);
                else if (kind == REQ_GET)
                        fill_get(call->reply, &ctx);
                else
                        fill_list(call->reply, &ctx);
                free(q);
                return r;
        }
        q->next = ovs->reqs;
        ovs->reqs = q;
        q->d = modrt_defer(ovs->rt, call);
        if (!q->d) {
                ovs->reqs = q->next;
                free(q);
                return call_fail(call, -ENOMEM, "out of memory");
        }
        return MODRT_DEFERRED;
}

static int handle_get(void *state, struct modrt_call *call) { return handle_read(state, call, REQ_GET); }
static int handle_list(void *state, struct modrt_call *call) { return handle_read(state, call, REQ_LIST); }

static void fill_add(struct proto_writer *w, void *userdata)
{
        const struct fill_ctx *ctx = userdata;
        const struct ovsrec_bridge *br = bridge_find(ctx->ovs);

        if (ctx->q->many)
                pw_list_begin(w, "ports");
        for (size_t k = 0; k < ctx->q->n; k++) {
                const struct port_spec *s = &ctx->q->ports[k];
                const struct ovsrec_port *p = br ? port_ours(ctx->ovs, br, s->name, s->port_uuid) : NULL;

                if (p)
                        write_port(ctx->ovs, w, ctx->q->many ? NULL : "port", p);
        }
        if (ctx->q->many)
                pw_list_end(w);
}

static void fill_get(struct proto_writer *w, void *userdata)
{
        const struct fill_ctx *ctx = userdata;
        const struct ovsrec_bridge *br = bridge_find(ctx->ovs);
        const struct ovsrec_port *p = br ? port_ours_any(ctx->ovs, br, &ctx->q->ports[0]) : NULL;

        if (p)
                write_port(ctx->ovs, w, "port", p);
}

/* Our ports on the integration bridge (by the mark): what fits one frame, and how many there are. */
/* A Port of ours, as port_list sorts them. */
struct listed_port {
        const char *port_uuid; /* its mark */
        const struct ovsrec_port *p;
};

static int listed_by_uuid(const void *a, const void *b)
{
        return strcmp(((const struct listed_port *)a)->port_uuid, ((const struct listed_port *)b)->port_uuid);
}

/* One page of our ports, by port UUID (schema_page_req). */
static void fill_list(struct proto_writer *w, void *userdata)
{
        const struct fill_ctx *ctx = userdata;
        const struct ovsrec_bridge *br = bridge_find(ctx->ovs);
        _cleanup_free_ struct listed_port *ours = NULL;
        size_t n = 0, k = 0;
        uint64_t shown = 0;

        ours = br && br->n_ports ? calloc(br->n_ports, sizeof(*ours)) : NULL;
        for (size_t i = 0; ours && i < br->n_ports; i++) {
                const char *owner = port_owner(br->ports[i]);
                if (owner)
                        ours[n++] = (struct listed_port){ owner, br->ports[i] };
        }
        /* Out of memory: an empty page that says more follow, so nothing is judged missing. */
        if (n > 1)
                qsort(ours, n, sizeof(*ours), listed_by_uuid);
        while (ctx->q->after[0] && k < n && strcmp(ours[k].port_uuid, ctx->q->after) <= 0)
                k++;
        pw_list_begin(w, "ports");
        for (; k < n && shown < ctx->q->limit; k++, shown++) {
                /* room kept for total, truncated, next and chassis (up to OVN_CHASSIS_MAX bytes) */
                if (w->n_values + PORT_VALUES_OVN + 8 > PROTO_MAX_NODES ||
                    w->len + PORT_MAX_BYTES + 128 + OVN_CHASSIS_MAX > PROTO_MAX_FRAME)
                        break;
                write_port(ctx->ovs, w, NULL, ours[k].p);
        }
        pw_list_end(w);
        pw_u64(w, "total", n);
        pw_bool(w, "truncated", k < n || (br && br->n_ports && !ours));
        write_chassis(ctx->ovs, w);
        if (k > 0 && k < n)
                pw_str(w, "next", ours[k - 1].port_uuid);
}

static const struct modrt_entry entries[_OVS_MAX] = {
        [OVS_PORT_ADD] = { &ovs_entrypoints[OVS_PORT_ADD], handle_add },
        [OVS_PORT_ADD_MANY] = { &ovs_entrypoints[OVS_PORT_ADD_MANY], handle_add_many },
        [OVS_PORT_DEL] = { &ovs_entrypoints[OVS_PORT_DEL], handle_del },
        [OVS_PORT_LIST] = { &ovs_entrypoints[OVS_PORT_LIST], handle_list },
        [OVS_PORT_GET] = { &ovs_entrypoints[OVS_PORT_GET], handle_get },
};

/* ---- module life ---- */

/* Only what the entrypoints read or write is replicated: small and quiet. */
static void monitor_columns(struct ovsdb_idl *idl)
{
        static const struct ovsdb_idl_column *const cols[] = {
                &ovsrec_open_vswitch_col_bridges,
                &ovsrec_open_vswitch_col_external_ids, /* system-id: the chassis name (write_chassis) */
                &ovsrec_bridge_col_name,
                &ovsrec_bridge_col_ports,
                &ovsrec_port_col_name,
                &ovsrec_port_col_interfaces,
                &ovsrec_port_col_external_ids,
                &ovsrec_interface_col_name,
                &ovsrec_interface_col_type,
                &ovsrec_interface_col_external_ids,
                &ovsrec_interface_col_ofport,
                &ovsrec_interface_col_error,
                &ovsrec_interface_col_mtu_request,
                &ovsrec_interface_col_link_state,
        };

        ovsdb_idl_add_table(idl, &ovsrec_table_open_vswitch);
        ovsdb_idl_add_table(idl, &ovsrec_table_bridge);
        ovsdb_idl_add_table(idl, &ovsrec_table_port);
        ovsdb_idl_add_table(idl, &ovsrec_table_interface);
        for (size_t i = 0; i < ARRAY_SIZE(cols); i++)
                ovsdb_idl_add_column(idl, cols[i]);
        /* What a waiting port_add needs to hear about (note_iface_changes()). */
        ovsdb_idl_track_add_column(idl, &ovsrec_interface_col_ofport);
        ovsdb_idl_track_add_column(idl, &ovsrec_interface_col_error);
        /* ... and, with ovn, external_ids:ovn-installed set by ovn-controller. */
        ovsdb_idl_track_add_column(idl, &ovsrec_interface_col_external_ids);
}

static int ovs_init(struct modrt *rt, void **ret_state)
{
        const struct nova_config *cfg = modrt_config(rt);
        bool debug = streq(cfg->log_level, "debug");
        struct ovs *ovs;

        /* OVS's own logging: never syslog or files; on stderr only errors (all
         * with -v), tagged so they read as this module's lines. */
        set_program_name("nova-openvswitch");
        vlog_set_syslog_method("null");
        vlog_set_levels(NULL, VLF_SYSLOG, VLL_OFF);
        vlog_set_levels(NULL, VLF_FILE, VLL_OFF);
        vlog_set_levels(NULL, VLF_CONSOLE, debug ? VLL_INFO : VLL_ERR);
        vlog_set_pattern(VLF_CONSOLE, "openvswitch: ovs-%p: %c: %m");

        ovs = calloc(1, sizeof(*ovs));
        if (!ovs)
                return -ENOMEM;
        ovs->ev = malloc(sizeof(*ovs->ev));
        if (!ovs->ev) {
                free(ovs);
                return -ENOMEM;
        }
        ovs->rt = rt;
        ovs->cfg = cfg;
        ovs->socket = cfg->ovsdb_socket;
        ovs->bridge = cfg->integration_bridge;
        ovs->conn = CONN_CONNECTING;
        shash_init(&ovs->busy);
        ovs->idl = ovsdb_idl_create(ovs->socket, &ovsrec_idl_class, false, true);
        monitor_columns(ovs->idl);
        ovs->port_by_name = ovsdb_idl_index_create1(ovs->idl, &ovsrec_port_col_name);
        ovs->iface_by_name = ovsdb_idl_index_create1(ovs->idl, &ovsrec_interface_col_name);
        log_info("using ovsdb-server at %s, integration bridge %s%s", ovs->socket, ovs->bridge,
                 cfg->bridge_create ? " (created when missing)" : "");
        if (cfg->ovn)
                log_info("ovn: port_add waits up to %u ms for ovn-controller's ovn-installed (on timeout: %s)",
                         cfg->ovn_wait_ms, cfg->ovn_timeout_policy);
        *ret_state = ovs;
        return 0;
}

/* Answer everything still pending (the module stops or the core went away). */
static void reqs_cancel(struct ovs *ovs, const char *why)
{
        for (struct req *q = ovs->reqs; q; q = q->next)
                if (q->d) {
                        req_set_error(q, -ECANCELED, "%s", why);
                        req_answer(ovs, q, q->error);
                }
}

/* Serve the frames the core sent. poll_block() does not say which descriptor
 * woke it, so one non-blocking poll() asks (about 0.5 us here); frames are
 * served while the socket has more, at most DISPATCH_BURST, so that a flood of
 * requests cannot keep the replica from being read. */
static int core_serve(struct modrt *rt, int fd)
{
        struct pollfd p = { .fd = fd, .events = POLLIN };

        for (int i = 0; i < DISPATCH_BURST && !modrt_should_exit(rt); i++) {
                int r;

                p.revents = 0;
                if (poll(&p, 1, 0) <= 0)
                        break;
                r = modrt_dispatch(rt);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int ovs_run(struct modrt *rt, void *state)
{
        struct ovs *ovs = state;
        int fd = modrt_fd(rt);

        /* A (new) core learns at once that ovsdb-server is out of reach. */
        if (ovs->conn == CONN_DOWN)
                emit_connection(ovs, false);
        while (!modrt_should_exit(rt)) {
                int r;

                /* The replica: what changed is applied, waiting ports whose
                 * Interface changed are looked at, then the tracked changes
                 * are dropped (the next run brings only new ones). */
                ovsdb_idl_run(ovs->idl);
                conn_update(ovs);
                bridge_maintain(ovs);
                note_iface_changes(ovs);
                reqs_run(ovs);
                ovsdb_idl_track_clear(ovs->idl);

                ovsdb_idl_wait(ovs->idl);
                if (ovs->bridge_txn)
                        ovsdb_idl_txn_wait(ovs->bridge_txn);
                poll_fd_wait(fd, POLLIN);
                reqs_wait(ovs);
                poll_block();

                r = core_serve(rt, fd);
                if (r < 0)
                        return r;
        }
        reqs_cancel(ovs, "the openvswitch module is stopping");
        return 0;
}

static void ovs_done(void *state)
{
        struct ovs *ovs = state;

        if (!ovs)
                return;
        reqs_cancel(ovs, "the openvswitch module is stopping");
        while (ovs->reqs) {
                struct req *q = ovs->reqs;
                ovs->reqs = q->next;
                req_free(ovs, q);
        }
        shash_destroy(&ovs->busy);
        if (ovs->bridge_txn)
                ovsdb_idl_txn_destroy(ovs->bridge_txn);
        ovsdb_idl_destroy(ovs->idl);
        free(ovs->ev);
        free(ovs);
}

static const struct modrt_module openvswitch_module = {
        .protocol = &ovs_protocol,
        .entries = entries,
        .n_entries = ARRAY_SIZE(entries),
        .init = ovs_init,
        .done = ovs_done,
        .run = ovs_run,
};

int main(int argc, char **argv) { return modrt_main(&openvswitch_module, argc, argv); }
