/* placement.c - see placement.h
 *
 * One pass at a time. A pass first reads the host (hardware-observe's
 * host_inventory, statvfs of the state dir, uname) into the desired
 * provider, then repeatedly picks the one request that brings Placement
 * closer to it (next_request()): a keystone token, the provider (GET, or
 * POST when missing), its inventories (GET, then PUT if they differ), which
 * of our traits Placement knows (GET /traits), its traits (GET, then PUT if
 * they differ). What Placement holds is cached between passes, so a pass
 * with nothing changed sends nothing; the refresh timer forgets the cache
 * (two GETs) to notice changes made behind our back. One request is in
 * flight at most; its socket and timer live on the core's sd-event loop. */
#include "placement.h"
#include "placement-io.h"
#include "hw-protocol.h"
#include "libvirt-protocol.h"

#include "log.h"
#include "modules.h"
#include "placement-json.h"

#include <assert.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <time.h>

#define UUID_FILE "placement-provider-uuid"
#define MAX_CONFLICTS_PER_PASS 4      /* 409 generation conflicts before a pass gives up */
#define BACKOFF_MIN_USEC (1 * 1000000ULL)
#define BACKOFF_MAX_USEC (60 * 1000000ULL)
#define TOKEN_MAX 8192                /* bytes of an X-Subject-Token we accept */
#define TOKEN_RENEW_SEC 120           /* renew a keystone token this long before it expires */

enum step {
        STEP_NONE,
        STEP_TOKEN,           /* POST {keystone}/auth/tokens */
        STEP_GET_PROVIDER,    /* GET /resource_providers/{uuid} (1.14) */
        STEP_CREATE_PROVIDER, /* POST /resource_providers (1.20: answers the provider) */
        STEP_GET_INVENTORIES, /* GET .../inventories (1.26) */
        STEP_PUT_INVENTORIES, /* PUT .../inventories (1.26: reserved may equal total) */
        STEP_GET_KNOWN_TRAITS, /* GET /traits?name=in:... (1.6) */
        STEP_GET_TRAITS,      /* GET .../traits (1.6) */
        STEP_PUT_TRAITS,      /* PUT .../traits (1.6) */
};

static const char *const step_names[] = {
        [STEP_NONE] = "-",
        [STEP_TOKEN] = "keystone token",
        [STEP_GET_PROVIDER] = "GET provider",
        [STEP_CREATE_PROVIDER] = "create provider",
        [STEP_GET_INVENTORIES] = "GET inventories",
        [STEP_PUT_INVENTORIES] = "PUT inventories",
        [STEP_GET_KNOWN_TRAITS] = "GET traits",
        [STEP_GET_TRAITS] = "GET provider traits",
        [STEP_PUT_TRAITS] = "PUT provider traits",
};

enum counter { CNT_GET, CNT_POST, CNT_PUT, CNT_AUTH, CNT_FAILED, CNT_CONFLICTS, _CNT_MAX };
static const char *const counter_names[_CNT_MAX] = { "get", "post", "put", "auth", "failed", "conflicts" };

struct placement {
        bool started;
        struct placement_io *io;            /* the transport (owned): requests and the timer */
        struct modules *modules;            /* the registry: hardware-observe asked for the host inventory */
        const struct nova_config *cfg;      /* the core's configuration (struct core owns it) */
        bool in_flight;            /* a request is out (one at most) */
        enum step step;            /* ... and what it is */
        struct module_call *local_call;
        uint64_t pool_gb;                /* the libvirt storage pool's capacity, GiB, this pass */
        bool pool_known;                 /* pool_gb is from pool_info (else: the state dir's fs) */

        char uuid[UUID_STR_LEN + 1];
        char name[PLACEMENT_NAME_MAX + 1];
        char base_url[512];        /* placement_url, or the catalog's endpoint */

        /* local */
        struct placement_desired desired;
        bool desired_ok;
        /* remote (cache of what Placement holds) */
        bool registered;
        uint64_t generation;
        bool inv_known;
        struct placement_inventory remote_inv[_PRC_MAX];
        size_t remote_other_classes;
        bool traits_known;
        struct placement_traits remote_traits;
        bool known_traits_valid;          /* filter below computed for desired.traits */
        struct placement_traits known_for; /* the desired set the filter was computed for */
        struct placement_traits wanted;    /* desired traits Placement knows */
        struct placement_traits dropped;   /* desired traits Placement does not know */

        /* keystone */
        char token[TOKEN_MAX];
        int64_t token_expires;     /* epoch seconds */
        bool token_retry_done;     /* one re-auth per 401 */

        /* pass */
        bool pass_running, again, in_backoff;
        unsigned conflicts_in_pass;
        uint64_t backoff_usec;
        uint64_t pass_started_usec;

        /* status */
        const char *state;         /* off, waiting, syncing, synced, retrying, error */
        int64_t last_sync;         /* epoch seconds of the last successful pass, 0 never */
        int64_t last_attempt;
        uint64_t first_sync_usec;  /* CLOCK_MONOTONIC of the first success (for the start-to-visible figure) */
        uint64_t started_usec;
        char error[512];
        char fix[512];
        uint64_t next_attempt_usec;
        uint64_t refresh_due_usec; /* CLOCK_MONOTONIC of the next re-read of Placement: counted from the
                                    * last pass that read it, so kicks do not postpone it */
        uint64_t counters[_CNT_MAX];
        uint64_t passes;
        char start_error[512];     /* placement_url set but the client could not start */
        bool io_started;           /* io->ops->start() done (undone by client_stop) */
};

static void pass_continue(struct placement *pl);
static void schedule_wake(struct placement *pl, uint64_t delay_usec);

static int64_t wall_now(void) { return (int64_t)time(NULL); }

static uint64_t mono_now(void) { return now_usec(); }

static void set_status(struct placement *pl, const char *state, const char *fix, const char *fmt, ...) _printf_(4, 5);
static void set_status(struct placement *pl, const char *state, const char *fix, const char *fmt, ...)
{
        va_list ap;

        pl->state = state;
        if (fmt) {
                va_start(ap, fmt);
                (void)vsnprintf(pl->error, sizeof(pl->error), fmt, ap);
                va_end(ap);
        } else
                pl->error[0] = '\0';
        (void)snprintf(pl->fix, sizeof(pl->fix), "%s", fix ? fix : "");
}

/* ---- the provider UUID, created once ---- */

static int load_or_create_uuid(const char *state_dir, char ret[UUID_STR_LEN + 1], bool *created)
{
        _cleanup_free_ char *text = NULL;
        char path[PATH_MAX], line[UUID_STR_LEN + 2];
        size_t len;
        int r;

        *created = false;
        r = xsnprintf(path, sizeof(path), "%s/%s", state_dir, UUID_FILE);
        if (r < 0)
                return r;
        r = read_file_bounded(path, 128, &text, &len);
        if (r == 0) {
                if (len > 0 && text[len - 1] == '\n')
                        text[--len] = '\0';
                if (!uuid_is_valid(text))
                        return -EBADMSG;
                return strscpy(ret, text, UUID_STR_LEN + 1);
        }
        if (r != -ENOENT)
                return r;
        r = uuid_new_str(ret);
        if (r < 0)
                return r;
        (void)snprintf(line, sizeof(line), "%s\n", ret);
        r = write_file_atomic(path, line, strlen(line), 0600);
        if (r == 0)
                *created = true;
        return r;
}

/* ---- requests ---- */

/* Send one request through the provider; body (owned) may be NULL. 0 or -errno (nothing in flight then). */
static int request_start(struct placement *pl, enum step step, const char *method, const char *url, const char *microversion, char *body)
{
        struct placement_http_request req = {
                .method = method,
                .url = url,
                .microversion = microversion,
                .body = body,
        };
        int r;

        assert(!pl->in_flight);
        if (step != STEP_TOKEN)
                req.token = streq(pl->cfg->placement_auth, "keystone") ? pl->token : pl->cfg->placement_noauth_token;
        r = pl->io->ops->send(pl->io, &req);
        if (body) {
                explicit_bzero(body, strlen(body)); /* a token request carries the password */
                free(body);
        }
        if (r < 0)
                return r;
        pl->in_flight = true;
        pl->step = step;
        if (step == STEP_TOKEN)
                pl->counters[CNT_AUTH]++;
        else if (streq(method, "GET"))
                pl->counters[CNT_GET]++;
        else if (streq(method, "POST"))
                pl->counters[CNT_POST]++;
        else
                pl->counters[CNT_PUT]++;
        log_debug("placement: %s %s", method, url);
        return 0;
}

/* ---- pass outcome ---- */

/* The next delay of the backoff: 1 s, doubling, at most 60 s (reset by a successful pass). */
static uint64_t next_backoff(struct placement *pl)
{
        pl->backoff_usec = pl->backoff_usec ? pl->backoff_usec * 2 : BACKOFF_MIN_USEC;
        if (pl->backoff_usec > BACKOFF_MAX_USEC)
                pl->backoff_usec = BACKOFF_MAX_USEC;
        return pl->backoff_usec;
}

static void pass_failed(struct placement *pl, const char *fix, const char *fmt, ...) _printf_(3, 4);
static void pass_failed(struct placement *pl, const char *fix, const char *fmt, ...)
{
        char msg[512];
        va_list ap;
        bool first = !streq_ptr(pl->state, "retrying") && !streq_ptr(pl->state, "error");

        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        pl->counters[CNT_FAILED]++;
        pl->pass_running = false;
        pl->in_backoff = true;
        set_status(pl, "retrying", fix, "%s", msg);
        /* log the first failure and changes, not every retry */
        if (first)
                log_warn("placement: %s (retrying with backoff; fix: %s)", msg, fix);
        else
                log_debug("placement: %s", msg);
        schedule_wake(pl, next_backoff(pl));
}

static void pass_succeeded(struct placement *pl)
{
        bool was_failing = streq_ptr(pl->state, "retrying") || streq_ptr(pl->state, "error");
        uint64_t now;

        pl->pass_running = false;
        pl->in_backoff = false;
        pl->backoff_usec = 0;
        pl->last_sync = wall_now();
        if (!pl->first_sync_usec) {
                pl->first_sync_usec = mono_now();
                log_info("placement: provider %s (%s) registered at %s with %zu traits, %.2f s after start",
                         pl->name, pl->uuid, pl->base_url, pl->wanted.n,
                         (double)(pl->first_sync_usec - pl->started_usec) / 1e6);
        } else if (was_failing)
                log_info("placement: provider %s in sync again", pl->uuid);
        set_status(pl, "synced", NULL, NULL);
        if (pl->again) {
                pl->again = false;
                placement_kick(pl, "queued");
                return;
        }
        now = mono_now();
        schedule_wake(pl, pl->refresh_due_usec > now ? pl->refresh_due_usec - now : 0);
}

/* ---- local observation ---- */

/* The host as hardware-observe's host_inventory reply (body) and the storage pool tell it;
 * ret->arch points into *un. */
static void host_from_inventory(const struct placement *pl, const struct proto_value *body, struct utsname *un,
                                struct placement_host *ret)
{
        const struct proto_value *cpu = proto_get(body, "cpu");
        struct statvfs vfs;

        ret->vcpus = proto_get_u64(cpu, "threads", 0);
        ret->cores = proto_get_u64(cpu, "cores", 0);
        ret->cpu_flags = proto_get_str(cpu, "flags", NULL);
        ret->memory_mb = proto_get_u64(proto_get(body, "memory"), "total_kb", 0) / 1024;
        /* as `nova-hypervisor host` computes DISK_GB (observe.c): the instances' disks live in
         * the libvirt module's storage pool, its size when the module tells it, else the
         * state directory's file system */
        if (pl->pool_known)
                ret->disk_gb = pl->pool_gb;
        else if (statvfs(pl->cfg->state_dir, &vfs) == 0)
                ret->disk_gb = (uint64_t)vfs.f_blocks * vfs.f_frsize / (1024ULL * 1024 * 1024);
        if (uname(un) == 0)
                ret->arch = un->machine;
}

static void on_local_inventory(const struct module_result *res, void *userdata)
{
        struct placement *pl = userdata;
        struct placement_host host = {};
        struct placement_policy pol = {
                .reserved_host_cpus = pl->cfg->reserved_host_cpus,
                .reserved_host_memory_mb = pl->cfg->reserved_host_memory_mb,
                .reserved_host_disk_mb = pl->cfg->reserved_host_disk_mb,
                .cpu_ratio_milli = pl->cfg->cpu_allocation_ratio_milli,
                .ram_ratio_milli = pl->cfg->ram_allocation_ratio_milli,
                .disk_ratio_milli = pl->cfg->disk_allocation_ratio_milli,
        };
        struct utsname un;
        char why[256];
        int r;

        pl->local_call = NULL;
        if (res->status < 0) {
                char fix[160] = "";
                if (plug_fix_text(PLUG_HARDWARE_OBSERVE, fix, sizeof(fix)) < 0)
                        fix[0] = '\0';
                pl->pass_running = false;
                set_status(pl, "waiting", fix, "waiting for hardware-observe's host inventory: %s",
                           res->error ? res->error : strerror(-res->status));
                /* placement_kick() from the module's ready hook resumes at once; a module that is
                 * running but failed to answer is asked again with the backoff (local calls only) */
                pl->in_backoff = true;
                schedule_wake(pl, next_backoff(pl));
                return;
        }
        host_from_inventory(pl, res->body, &un, &host);
        r = placement_desired_build(&host, &pol, &pl->desired, why, sizeof(why));
        if (r < 0) {
                pl->pass_running = false;
                pl->desired_ok = false;
                set_status(pl, "error", "change the reserved_host_* setting named above", "%s", why);
                log_err("placement: %s", why);
                return;
        }
        pl->desired_ok = true;
        if (!placement_traits_equal(&pl->known_for, &pl->desired.traits))
                pl->known_traits_valid = false;
        pass_continue(pl);
}

/* ---- deciding the next request ---- */

static bool token_needed(const struct placement *pl)
{
        if (!streq(pl->cfg->placement_auth, "keystone"))
                return false;
        return !pl->token[0] || pl->token_expires - TOKEN_RENEW_SEC <= wall_now();
}

static int url_of(const struct placement *pl, char *buf, size_t size, const char *fmt, ...) _printf_(4, 5);
static int url_of(const struct placement *pl, char *buf, size_t size, const char *fmt, ...)
{
        char path[4096];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(path, sizeof(path), fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= sizeof(path))
                return -ENAMETOOLONG;
        return xsnprintf(buf, size, "%s%s", pl->base_url, path);
}

/* POST {keystone}/auth/tokens with the configured credentials. 0 or -errno. */
static int token_request(struct placement *pl)
{
        const struct nova_config *cfg = pl->cfg;
        struct keystone_auth a = {
                .application_credential = cfg->keystone_app_cred_id[0] != '\0',
                .user_id = cfg->keystone_user_id,
                .username = cfg->keystone_username,
                .user_domain = cfg->keystone_user_domain,
                .password = cfg->keystone_password,
                .project_id = cfg->keystone_project_id,
                .project_name = cfg->keystone_project_name,
                .project_domain = cfg->keystone_project_domain,
                .app_cred_id = cfg->keystone_app_cred_id,
                .app_cred_secret = cfg->keystone_app_cred_secret,
        };
        char url[512], *body = keystone_token_body(&a);
        int r = body ? xsnprintf(url, sizeof(url), "%s/auth/tokens", cfg->keystone_auth_url) : -ENOMEM;

        if (r < 0) {
                free(body);
                return r;
        }
        return request_start(pl, STEP_TOKEN, "POST", url, NULL, body);
}

static void pass_continue(struct placement *pl)
{
        char url[8192];
        int r = 0;

        if (!pl->desired_ok)
                return;
        if (token_needed(pl))
                r = token_request(pl);
        else if (!pl->registered) {
                r = url_of(pl, url, sizeof(url), "/resource_providers/%s", pl->uuid);
                if (r == 0)
                        r = request_start(pl, STEP_GET_PROVIDER, "GET", url, "1.14", NULL);
        } else if (!pl->inv_known) {
                r = url_of(pl, url, sizeof(url), "/resource_providers/%s/inventories", pl->uuid);
                if (r == 0)
                        r = request_start(pl, STEP_GET_INVENTORIES, "GET", url, "1.26", NULL);
        } else if (!placement_inventories_equal(pl->remote_inv, pl->desired.inv) || pl->remote_other_classes) {
                char *body = placement_inventories_body(pl->desired.inv, pl->generation);
                r = url_of(pl, url, sizeof(url), "/resource_providers/%s/inventories", pl->uuid);
                if (r == 0 && body)
                        r = request_start(pl, STEP_PUT_INVENTORIES, "PUT", url, "1.26", body);
                else {
                        free(body);
                        r = r < 0 ? r : -ENOMEM;
                }
        } else if (!pl->known_traits_valid) {
                char list[4096] = "";
                size_t n = 0;
                for (size_t i = 0; i < pl->desired.traits.n && n < sizeof(list); i++)
                        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? "," : "",
                                              pl->desired.traits.names[i]);
                r = n < sizeof(list) ? url_of(pl, url, sizeof(url), "/traits?name=in:%s", list) : -ENAMETOOLONG;
                if (r == 0)
                        r = request_start(pl, STEP_GET_KNOWN_TRAITS, "GET", url, "1.6", NULL);
        } else if (!pl->traits_known) {
                r = url_of(pl, url, sizeof(url), "/resource_providers/%s/traits", pl->uuid);
                if (r == 0)
                        r = request_start(pl, STEP_GET_TRAITS, "GET", url, "1.6", NULL);
        } else if (!placement_traits_equal(&pl->remote_traits, &pl->wanted)) {
                char *body = placement_traits_body(&pl->wanted, pl->generation);
                r = url_of(pl, url, sizeof(url), "/resource_providers/%s/traits", pl->uuid);
                if (r == 0 && body)
                        r = request_start(pl, STEP_PUT_TRAITS, "PUT", url, "1.6", body);
                else {
                        free(body);
                        r = r < 0 ? r : -ENOMEM;
                }
        } else {
                pass_succeeded(pl);
                return;
        }
        if (r < 0)
                pass_failed(pl, "this is a bug or the core is out of memory; see the core's log",
                            "cannot send a Placement request: %s", strerror(-r));
}

/* ---- answers ---- */

static void describe_error(const struct placement_http_answer *a, long status, char *buf, size_t size)
{
        struct placement_error e;

        if (a->body_len && placement_decode_error(a->body, a->body_len, &e) == 0 && e.detail[0])
                (void)snprintf(buf, size, "%s", e.detail);
        else
                (void)snprintf(buf, size, "HTTP %ld", status);
}

static const char *auth_fix(const struct placement *pl, long status)
{
        if (streq(pl->cfg->placement_auth, "keystone"))
                return status == 401 ? "check keystone-auth-url and the credentials (keystone-username/-password/"
                                       "-project-name, or keystone-app-cred-id/-secret): snap set nova-hypervisor ..."
                                     : "the keystone user needs Placement's admin role (openstack role add --user "
                                       "<user> --project <project> admin)";
        return status == 401 ? "Placement does not run with auth_strategy = noauth2: set placement-auth=keystone "
                               "and the keystone-* keys, or set placement-noauth-token"
                             : "with noauth2 Placement needs the token 'admin': snap set nova-hypervisor "
                               "placement-noauth-token=admin";
}

/* The transfer itself failed (no HTTP answer, or one too big). */
static void transfer_failed(struct placement *pl, const struct placement_http_answer *a)
{
        if (a->body_too_big)
                pass_failed(pl, "check that placement_url points at the Placement API",
                            "%s: the answer exceeds %d bytes", step_names[pl->step], PLACEMENT_MAX_BODY);
        else
                pass_failed(pl, pl->step == STEP_TOKEN
                                    ? "check keystone-auth-url and that Keystone is reachable from this host"
                                    : "check placement-url (snap set nova-hypervisor placement-url=http://"
                                      "<host>:8778) and that Placement runs and is reachable from this host",
                            "cannot reach %s for %s: %s", pl->step == STEP_TOKEN ? "Keystone" : pl->base_url,
                            step_names[pl->step], a->error_text ? a->error_text : strerror(-a->error));
}

/* Keystone's answer to the token request: keep the token (and, with
 * placement_url "catalog", the endpoint), then go on. */
static void answer_token(struct placement *pl, const struct placement_http_answer *a, long status)
{
        char detail[300];
        int64_t expires;

        if (status != 201 && status != 200) {
                describe_error(a, status, detail, sizeof(detail));
                pass_failed(pl, auth_fix(pl, 401), "Keystone refused the token request (%ld): %s", status, detail);
                return;
        }
        if (!a->subject_token[0] || keystone_decode_token(a->body, a->body_len, &expires) < 0) {
                pass_failed(pl, "check keystone-auth-url (it must be the identity v3 endpoint, e.g. "
                            "http://<host>:5000/v3)", "Keystone's token answer was not understood");
                return;
        }
        if (streq(pl->cfg->placement_url, "catalog") &&
            keystone_catalog_endpoint(a->body, a->body_len, pl->cfg->placement_region, pl->base_url,
                                      sizeof(pl->base_url)) < 0) {
                pass_failed(pl, "register Placement's endpoint in Keystone, set placement-region to its "
                            "region, or set placement-url explicitly",
                            "the token's catalog has no placement endpoint%s%s",
                            pl->cfg->placement_region[0] ? " in region " : "", pl->cfg->placement_region);
                return;
        }
        (void)strscpy(pl->token, a->subject_token, sizeof(pl->token));
        pl->token_expires = expires;
        pass_continue(pl);
}

/* Placement's answers that end the request the same way whatever it was:
 * 401 (one fresh keystone token, then the same request again), 401/403, 5xx.
 * True when handled. */
static bool answer_refused(struct placement *pl, const struct placement_http_answer *a, long status)
{
        char detail[300];

        if (status == 401 && streq(pl->cfg->placement_auth, "keystone") && !pl->token_retry_done) {
                /* the token expired or was revoked: one fresh token, then the same request again */
                explicit_bzero(pl->token, sizeof(pl->token));
                pl->token_retry_done = true;
                pass_continue(pl);
                return true;
        }
        if (status == 401 || status == 403) {
                describe_error(a, status, detail, sizeof(detail));
                pass_failed(pl, auth_fix(pl, status), "Placement refused %s with %ld (%s)", step_names[pl->step], status,
                            status == 401 ? "not authenticated" : detail);
                return true;
        }
        pl->token_retry_done = false;
        if (status >= 500) {
                describe_error(a, status, detail, sizeof(detail));
                pass_failed(pl, "see Placement's own log; nova-hypervisor retries by itself",
                            "Placement failed %s with %ld: %s", step_names[pl->step], status, detail);
                return true;
        }
        return false;
}

/* GET or POST of the provider. True: go on with the pass. */
static bool answer_provider(struct placement *pl, const struct placement_http_answer *a, long status)
{
        struct placement_provider p;
        char detail[300];

        if (pl->step == STEP_GET_PROVIDER && status == 404) {
                char url[1024], *body = placement_provider_body(pl->uuid, pl->name);
                int r = body ? url_of(pl, url, sizeof(url), "/resource_providers") : -ENOMEM;
                if (r == 0)
                        r = request_start(pl, STEP_CREATE_PROVIDER, "POST", url, "1.20", body);
                else
                        free(body);
                if (r < 0)
                        pass_failed(pl, "see the core's log", "cannot create the provider: %s", strerror(-r));
                return false;
        }
        if (pl->step == STEP_CREATE_PROVIDER && status == 409) {
                describe_error(a, status, detail, sizeof(detail));
                if (strstr(detail, "Conflicting resource provider name")) {
                        char fix[512];
                        (void)snprintf(fix, sizeof(fix),
                                       "another provider (not %s) already has the name '%s': set provider-name "
                                       "to another name, or, if it is this host's from a lost state directory, "
                                       "delete it (openstack resource provider delete <uuid>)", pl->uuid, pl->name);
                        pass_failed(pl, fix, "cannot register: provider name '%s' is taken", pl->name);
                        return false;
                }
                /* our uuid exists (created concurrently): read it, as nova does */
                pl->registered = false;
                return true;
        }
        if (status != 200 || placement_decode_provider(a->body, a->body_len, &p) < 0 || !streq(p.uuid, pl->uuid)) {
                describe_error(a, status, detail, sizeof(detail));
                pass_failed(pl, "check that placement-url points at the Placement API",
                            "unexpected answer to %s (%ld): %s", step_names[pl->step], status, detail);
                return false;
        }
        if (pl->step == STEP_CREATE_PROVIDER)
                log_info("placement: created provider %s (%s)", p.name, p.uuid);
        else if (!streq(p.name, pl->name))
                log_warn("placement: provider %s is named '%s' in Placement, not '%s' (left as it is)", p.uuid,
                         p.name, pl->name);
        pl->registered = true;
        pl->generation = p.generation;
        pl->inv_known = pl->traits_known = false;
        return true;
}

/* A 409 on the provider's inventories or traits: a stale generation is
 * re-read (bounded per pass); anything else is reported. True: go on. */
static bool answer_conflict(struct placement *pl, const struct placement_http_answer *a)
{
        struct placement_error e = {};

        pl->counters[CNT_CONFLICTS]++;
        (void)placement_decode_error(a->body, a->body_len, &e);
        /* what we hold is stale whatever happens next: the retry (now or after the backoff) reads first */
        pl->inv_known = pl->traits_known = false;
        if (++pl->conflicts_in_pass > MAX_CONFLICTS_PER_PASS) {
                pass_failed(pl, "another client keeps changing this provider: make sure only one "
                            "nova-hypervisor (or nova-compute) uses this provider name and uuid",
                            "%u generation conflicts in one pass on provider %s (%s)", pl->conflicts_in_pass,
                            pl->uuid, e.code[0] ? e.code : "409");
                return false;
        }
        if (e.code[0] && !streq(e.code, "placement.concurrent_update")) {
                pass_failed(pl, "see the detail; e.g. inventory in use by allocations cannot shrink below them",
                            "Placement refused %s: %s", step_names[pl->step], e.detail);
                return false;
        }
        log_info("placement: generation %" PRIu64 " of %s is stale; re-reading", pl->generation, pl->uuid);
        return true;
}

/* GET or PUT of the provider's inventories or traits: cache what Placement
 * holds now (any write moves the generation: the other half's cached
 * generation is this one). True: go on. */
static bool answer_inventories_or_traits(struct placement *pl, const struct placement_http_answer *a, long status)
{
        bool inv = pl->step == STEP_GET_INVENTORIES || pl->step == STEP_PUT_INVENTORIES;
        char detail[300];

        if (status == 404) {
                /* deleted behind our back: register again */
                log_warn("placement: provider %s is gone from Placement; registering it again", pl->uuid);
                pl->registered = false;
                return true;
        }
        if (status == 409)
                return answer_conflict(pl, a);
        if (status != 200) {
                describe_error(a, status, detail, sizeof(detail));
                pass_failed(pl, "see the detail; this is usually a bug in what we sent",
                            "Placement refused %s (%ld): %s", step_names[pl->step], status, detail);
                return false;
        }
        if (inv) {
                struct placement_remote_inventories ri;
                if (placement_decode_inventories(a->body, a->body_len, &ri) < 0) {
                        pass_failed(pl, "check that placement-url points at the Placement API",
                                    "Placement's answer to %s was not understood", step_names[pl->step]);
                        return false;
                }
                memcpy(pl->remote_inv, ri.inv, sizeof(ri.inv));
                pl->remote_other_classes = ri.n_other;
                pl->generation = ri.generation;
                pl->inv_known = true;
                if (pl->step == STEP_PUT_INVENTORIES)
                        log_info("placement: inventories of %s written (generation %" PRIu64 ")", pl->uuid,
                                 pl->generation);
        } else {
                uint64_t gen;
                if (placement_decode_traits(a->body, a->body_len, &pl->remote_traits, &gen) < 0) {
                        pass_failed(pl, "check that placement-url points at the Placement API",
                                    "Placement's answer to %s was not understood", step_names[pl->step]);
                        return false;
                }
                pl->generation = gen;
                pl->traits_known = true;
                if (pl->step == STEP_PUT_TRAITS)
                        log_info("placement: %zu traits of %s written (generation %" PRIu64 ")", pl->remote_traits.n,
                                 pl->uuid, pl->generation);
        }
        return true;
}

/* Which of our traits this Placement knows (older os-traits lack some). True: go on. */
static bool answer_known_traits(struct placement *pl, const struct placement_http_answer *a, long status)
{
        struct placement_traits known = {};
        char detail[300];

        if (status != 200 || placement_decode_traits(a->body, a->body_len, &known, NULL) < 0) {
                describe_error(a, status, detail, sizeof(detail));
                pass_failed(pl, "check that placement-url points at the Placement API",
                            "unexpected answer to %s (%ld): %s", step_names[pl->step], status, detail);
                return false;
        }
        placement_traits_clear(&pl->wanted);
        placement_traits_clear(&pl->dropped);
        for (size_t i = 0; i < pl->desired.traits.n; i++)
                (void)placement_traits_add(placement_traits_has(&known, pl->desired.traits.names[i]) ? &pl->wanted
                                                                                                   : &pl->dropped,
                                           pl->desired.traits.names[i]);
        placement_traits_clear(&known);
        if (pl->dropped.n)
                log_info("placement: %zu traits of this host are unknown to this Placement (older "
                         "os-traits) and left out, e.g. %s", pl->dropped.n, pl->dropped.names[0]);
        if (placement_traits_copy(&pl->known_for, &pl->desired.traits) < 0) {
                pass_failed(pl, "see the core's log", "out of memory");
                return false;
        }
        pl->known_traits_valid = true;
        return true;
}

/* One request finished (the transport's callback): take in its answer, then the next request (or end the pass). */
static void on_answer(void *userdata, const struct placement_http_answer *a)
{
        struct placement *pl = userdata;
        long status = a->status;
        bool go_on = true;

        assert(pl->in_flight);
        pl->in_flight = false;
        if (a->error < 0)
                return transfer_failed(pl, a);
        if (pl->step == STEP_TOKEN)
                return answer_token(pl, a, status);
        if (answer_refused(pl, a, status))
                return;
        switch (pl->step) {
        case STEP_GET_PROVIDER:
        case STEP_CREATE_PROVIDER:
                go_on = answer_provider(pl, a, status);
                break;
        case STEP_GET_INVENTORIES:
        case STEP_PUT_INVENTORIES:
        case STEP_GET_TRAITS:
        case STEP_PUT_TRAITS:
                go_on = answer_inventories_or_traits(pl, a, status);
                break;
        case STEP_GET_KNOWN_TRAITS:
                go_on = answer_known_traits(pl, a, status);
                break;
        default:
                break;
        }
        if (go_on)
                pass_continue(pl);
}

/* ---- passes and timers ---- */


/* The second local call of a pass: hardware-observe's host inventory. */
static void local_inventory_call(struct placement *pl)
{
        struct proto_writer *w = malloc(sizeof(*w));
        char err[256];
        int r;

        if (!w) {
                pass_failed(pl, "see the core's log", "out of memory");
                return;
        }
        module_request_init(w, (struct module_ep)EP_HW(HOST_INVENTORY));
        r = modules_call(pl->modules, PLUG_HARDWARE_OBSERVE, w, 0, on_local_inventory, pl, &pl->local_call, err, sizeof(err));
        free(w);
        if (r < 0) {
                struct module_result res = { .status = r, .error = err };
                on_local_inventory(&res, pl);
        }
}

static void on_local_pool(const struct module_result *res, void *userdata)
{
        struct placement *pl = userdata;
        const struct proto_value *cap = res->status == 0 ? proto_get(res->body, "capacity") : NULL;

        pl->local_call = NULL;
        if (cap) {
                pl->pool_gb = proto_get_u64(res->body, "capacity", 0) / (1024ULL * 1024 * 1024);
                pl->pool_known = true;
        } else if (res->status < 0)
                log_debug("placement: storage pool size unknown (%s); DISK_GB from the state directory",
                          res->error ? res->error : strerror(-res->status));
        local_inventory_call(pl);
}

static void pass_begin(struct placement *pl)
{
        struct proto_writer *w;
        char err[512];
        int r;

        pl->pass_running = true;
        pl->in_backoff = false;
        pl->conflicts_in_pass = 0;
        pl->pass_started_usec = mono_now();
        if (!pl->inv_known && !pl->traits_known)
                /* this pass reads what Placement holds: the next re-read is due one interval on */
                pl->refresh_due_usec = pl->pass_started_usec + (uint64_t)pl->cfg->placement_refresh_s * 1000000ULL;
        pl->last_attempt = wall_now();
        pl->passes++;
        if (!streq_ptr(pl->state, "retrying") && !streq_ptr(pl->state, "error"))
                pl->state = pl->first_sync_usec ? "syncing" : "registering";
        w = malloc(sizeof(*w));
        if (!w) {
                pass_failed(pl, "see the core's log", "out of memory");
                return;
        }
        /* First the storage pool's size (DISK_GB), when the libvirt module runs; then the host's
         * inventory. A pool that cannot be told is not an error: the state dir's fs counts. */
        pl->pool_known = false;
        pl->pool_gb = 0;
        if (modules_check_ready(pl->modules, PLUG_LIBVIRT, err, sizeof(err)) == 0) {
                module_request_init(w, (struct module_ep)EP_LIBVIRT(POOL_INFO));
                r = modules_call(pl->modules, PLUG_LIBVIRT, w, 0, on_local_pool, pl, &pl->local_call, err, sizeof(err));
                free(w);
                if (r < 0)
                        local_inventory_call(pl);
                return;
        }
        free(w);
        local_inventory_call(pl);
}

/* The transport's timer fired: the backoff's retry, or the refresh. */
static void on_wake(void *userdata)
{
        struct placement *pl = userdata;

        pl->next_attempt_usec = 0;
        if (pl->pass_running)
                return;
        if (!pl->in_backoff) {
                /* the refresh: forget what Placement held, read it again (nova's association refresh) */
                pl->inv_known = pl->traits_known = false;
        }
        pass_begin(pl);
}

static void schedule_wake(struct placement *pl, uint64_t delay_usec)
{
        pl->next_attempt_usec = mono_now() + delay_usec;
        pl->io->ops->schedule(pl->io, delay_usec);
}

void placement_kick(struct placement *pl, const char *why)
{
        if (!pl || !pl->started)
                return;
        log_debug("placement: kick (%s)", why ? why : "-");
        if (pl->pass_running) {
                pl->again = true;
                return;
        }
        if (pl->in_backoff && !streq_ptr(pl->state, "waiting"))
                return; /* Placement is failing: the retry reads the host afresh anyway */
        pl->next_attempt_usec = 0;
        pl->io->ops->schedule(pl->io, UINT64_MAX);
        pass_begin(pl);
}

int placement_new(const struct nova_config *cfg, struct modules *modules, struct placement_io *io,
                  struct placement **ret)
{
        struct placement *pl;

        assert(cfg && modules && io && io->ops && ret);
        pl = calloc(1, sizeof(*pl));
        if (!pl) {
                io->ops->free(io);
                return -ENOMEM;
        }
        pl->io = io;
        io->on_answer = on_answer;
        io->on_wake = on_wake;
        io->userdata = pl;
        pl->modules = modules;
        pl->cfg = cfg;
        *ret = pl;
        return 0;
}

/* Undo what placement_start() set up (the object stays, for status). */
static void client_stop(struct placement *pl)
{
        module_call_cancel(pl->local_call);
        pl->local_call = NULL;
        if (pl->io_started)
                pl->io->ops->stop(pl->io); /* the request in flight is dropped, the timer disarmed */
        pl->io_started = false;
        pl->in_flight = false;
        placement_desired_clear(&pl->desired);
        placement_traits_clear(&pl->remote_traits);
        placement_traits_clear(&pl->known_for);
        placement_traits_clear(&pl->wanted);
        placement_traits_clear(&pl->dropped);
        explicit_bzero(pl->token, sizeof(pl->token));
        pl->started = false;
}

/* The provider's uuid (created once) and name. 0, or -errno with start_error set and logged. */
static int load_identity(struct placement *pl, bool *created)
{
        const struct nova_config *cfg = pl->cfg;
        int r;

        r = load_or_create_uuid(cfg->state_dir, pl->uuid, created);
        if (r < 0) {
                (void)snprintf(pl->start_error, sizeof(pl->start_error),
                               "%s/%s: %s; not registering (a new uuid would duplicate this host in Placement): "
                               "restore the file, or remove it to register as a new provider", cfg->state_dir,
                               UUID_FILE, r == -EBADMSG ? "not a UUID" : strerror(-r));
                log_err("placement: %s", pl->start_error);
                return r;
        }
        if (cfg->provider_name[0])
                r = strscpy(pl->name, cfg->provider_name, sizeof(pl->name));
        else if (gethostname(pl->name, sizeof(pl->name) - 1) < 0)
                r = -errno;
        else if (!pl->name[0])
                r = -EINVAL;
        if (r < 0) {
                (void)snprintf(pl->start_error, sizeof(pl->start_error), "no provider name (%s): set provider_name",
                               strerror(-r));
                log_err("placement: %s", pl->start_error);
        }
        return r;
}

int placement_start(struct placement *pl)
{
        const struct nova_config *cfg;
        bool created;
        int r;

        assert(pl && !pl->started);
        cfg = pl->cfg;
        if (!cfg->placement_url[0])
                return 0;
        pl->started_usec = now_usec();
        r = load_identity(pl, &created);
        if (r < 0)
                return r;
        if (!streq(cfg->placement_url, "catalog"))
                (void)strscpy(pl->base_url, cfg->placement_url, sizeof(pl->base_url));
        r = pl->io->ops->start(pl->io, pl->start_error, sizeof(pl->start_error));
        if (r < 0) {
                log_err("placement: %s", pl->start_error);
                return r;
        }
        pl->io_started = true;
        pl->started = true;
        log_info("placement: provider %s (%s, %s) at %s, %s auth, refresh every %u s", pl->name, pl->uuid,
                 created ? "new uuid" : "uuid from the state dir", pl->base_url[0] ? pl->base_url : "the keystone catalog",
                 cfg->placement_auth, cfg->placement_refresh_s);
        pass_begin(pl);
        return 0;
}

struct placement *placement_free(struct placement *pl)
{
        if (!pl)
                return NULL;
        client_stop(pl);
        pl->io->ops->free(pl->io);
        free(pl);
        return NULL;
}

/* ---- status ---- */

static struct json_object *time_json(int64_t t)
{
        char buf[32];
        struct tm tm;
        time_t tt = (time_t)t;

        if (!t || !gmtime_r(&tt, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return NULL;
        return json_object_new_string(buf);
}

static struct json_object *inventory_json(const struct placement_inventory inv[_PRC_MAX])
{
        struct json_object *o = json_object_new_object();

        for (int i = 0; i < _PRC_MAX; i++) {
                struct json_object *c;
                if (!inv[i].present)
                        continue;
                c = json_object_new_object();
                json_object_object_add(c, "total", json_object_new_uint64(inv[i].total));
                json_object_object_add(c, "reserved", json_object_new_uint64(inv[i].reserved));
                json_object_object_add(c, "min_unit", json_object_new_uint64(inv[i].min_unit));
                json_object_object_add(c, "max_unit", json_object_new_uint64(inv[i].max_unit));
                json_object_object_add(c, "step_size", json_object_new_uint64(inv[i].step_size));
                json_object_object_add(c, "allocation_ratio", json_object_new_double(inv[i].allocation_ratio_milli / 1000.0));
                json_object_object_add(o, placement_rc_names[i], c);
        }
        return o;
}

static struct json_object *traits_json(const struct placement_traits *t)
{
        struct json_object *a = json_object_new_array();
        for (size_t i = 0; i < t->n; i++)
                json_object_array_add(a, json_object_new_string(t->names[i]));
        return a;
}

struct json_object *placement_status_json(const struct placement *pl)
{
        static const struct placement off; /* no client (a unit test's API): as placement_url = "" */
        struct json_object *o = json_object_new_object(), *req;

        if (!pl)
                pl = &off;
        json_object_object_add(o, "enabled", json_object_new_boolean(pl->started || pl->start_error[0]));
        if (!pl->started && pl->start_error[0]) {
                json_object_object_add(o, "state", json_object_new_string("error"));
                json_object_object_add(o, "error", json_object_new_string(pl->start_error));
                json_object_object_add(o, "fix", json_object_new_string("see the error; restart nova-compute after"));
                return o;
        }
        if (!pl->started) {
                json_object_object_add(o, "state", json_object_new_string("off"));
                json_object_object_add(o, "fix", json_object_new_string(
                                                          "to register this host in OpenStack Placement: snap set "
                                                          "nova-hypervisor placement-url=http://<placement>:8778"));
                return o;
        }
        json_object_object_add(o, "state", json_object_new_string(pl->state ? pl->state : "registering"));
        json_object_object_add(o, "url", json_object_new_string(pl->base_url));
        json_object_object_add(o, "auth", json_object_new_string(pl->cfg->placement_auth));
        json_object_object_add(o, "provider_uuid", json_object_new_string(pl->uuid));
        json_object_object_add(o, "provider_name", json_object_new_string(pl->name));
        json_object_object_add(o, "generation", pl->registered ? json_object_new_uint64(pl->generation) : NULL);
        json_object_object_add(o, "last_sync", time_json(pl->last_sync));
        json_object_object_add(o, "last_attempt", time_json(pl->last_attempt));
        json_object_object_add(o, "last_result", json_object_new_string(pl->error[0] ? "error" : pl->last_sync ? "ok" : "none"));
        if (pl->error[0]) {
                json_object_object_add(o, "error", json_object_new_string(pl->error));
                json_object_object_add(o, "fix", json_object_new_string(pl->fix));
        }
        if (pl->next_attempt_usec) {
                uint64_t now = mono_now();
                json_object_object_add(o, "next_attempt_in_s", json_object_new_double(
                                                                       pl->next_attempt_usec > now
                                                                               ? (double)(pl->next_attempt_usec - now) / 1e6
                                                                               : 0.0));
        }
        if (pl->first_sync_usec)
                json_object_object_add(o, "first_sync_after_start_s",
                                       json_object_new_double((double)(pl->first_sync_usec - pl->started_usec) / 1e6));
        req = json_object_new_object();
        for (int i = 0; i < _CNT_MAX; i++)
                json_object_object_add(req, counter_names[i], json_object_new_uint64(pl->counters[i]));
        json_object_object_add(req, "passes", json_object_new_uint64(pl->passes));
        json_object_object_add(o, "requests", req);
        if (pl->desired_ok) {
                json_object_object_add(o, "inventories", inventory_json(pl->desired.inv));
                json_object_object_add(o, "traits", traits_json(pl->known_traits_valid ? &pl->wanted : &pl->desired.traits));
                if (pl->dropped.n)
                        json_object_object_add(o, "traits_unknown_to_placement", traits_json(&pl->dropped));
        }
        return o;
}

char *placement_metrics_text(const struct placement *pl)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        if (!pl || !pl->started)
                return strdup("");
        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        fprintf(f, "# HELP nova_placement_sync_ok 1 when the provider in Placement matches this host (last pass succeeded)\n"
                   "# TYPE nova_placement_sync_ok gauge\nnova_placement_sync_ok %d\n",
                streq_ptr(pl->state, "synced") ? 1 : 0);
        fprintf(f, "# HELP nova_placement_last_sync_timestamp_seconds end of the last successful pass (0: never)\n"
                   "# TYPE nova_placement_last_sync_timestamp_seconds gauge\n"
                   "nova_placement_last_sync_timestamp_seconds %" PRId64 "\n", pl->last_sync);
        fprintf(f, "# HELP nova_placement_requests_total requests sent to Placement and Keystone, by kind\n"
                   "# TYPE nova_placement_requests_total counter\n");
        for (int i = 0; i < _CNT_MAX; i++)
                fprintf(f, "nova_placement_requests_total{kind=\"%s\"} %" PRIu64 "\n", counter_names[i], pl->counters[i]);
        fprintf(f, "# HELP nova_placement_provider_generation the provider's generation as last seen\n"
                   "# TYPE nova_placement_provider_generation gauge\nnova_placement_provider_generation %" PRIu64 "\n",
                pl->generation);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}
