/* core.c - see core.h */
#include "core.h"

#include "firewall.h"
#include "health.h"
#include "image-cache.h"
#include "instances.h"
#include "lifecycle.h"
#include "log.h"
#include "modules.h"
#include "placement.h"
#include "placement-io.h"
#include "images.h"
#include "secgroups.h"
#include "snapctl.h"
#include "spawner.h"

#include <assert.h>
#include <cap-ng.h>
#include <json-c/json.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>

#define PLUGS_STATE_FILE "plugs.json"

/* ---- plug state outside a snap ---- */

static int plugs_state_path(const struct nova_config *cfg, char *buf, size_t size)
{
        return xsnprintf(buf, size, "%s/%s", cfg->state_dir, PLUGS_STATE_FILE);
}

/* Outside a snap the live plug set survives restarts, as snapd's would: the
 * set of now, with plug connected or not, written before that change is made. */
static int save_plugs(const struct nova_config *cfg, const struct modules *modules, enum plug_id plug, bool connected)
{
        struct json_object *root = json_object_new_object(), *list = json_object_new_array();
        struct module_status st;
        char path[PATH_MAX];
        const char *text;
        int r;

        for (int i = 0; i < _PLUG_MAX; i++) {
                modules_get_status(modules, (enum plug_id)i, &st);
                if (i == (int)plug ? connected : st.connected)
                        json_object_array_add(list, json_object_new_string(plug_table[i].name));
        }
        json_object_object_add(root, "connected", list);
        text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY);
        r = plugs_state_path(cfg, path, sizeof(path));
        if (r == 0)
                r = write_file_atomic(path, text, strlen(text), 0600);
        json_object_put(root);
        return r;
}

static int parse_plugs(struct json_object *root, bool ret[_PLUG_MAX])
{
        struct json_object *list;
        bool set[_PLUG_MAX] = { false };

        if (!root || !json_object_object_get_ex(root, "connected", &list) ||
            !json_object_is_type(list, json_type_array))
                return -EBADMSG;
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                int id = plug_from_name(json_object_get_string(json_object_array_get_idx(list, i)));
                if (id < 0)
                        return -EBADMSG;
                set[id] = true;
        }
        memcpy(ret, set, sizeof(set));
        return 0;
}

static int load_plugs(const struct nova_config *cfg, bool ret[_PLUG_MAX])
{
        _cleanup_free_ char *text = NULL;
        struct json_object *root;
        char path[PATH_MAX];
        int r;

        r = plugs_state_path(cfg, path, sizeof(path));
        if (r < 0)
                return r;
        r = read_file_bounded(path, 64 * 1024, &text, NULL);
        if (r < 0)
                return r;
        root = json_tokener_parse(text);
        r = parse_plugs(root, ret);
        json_object_put(root);
        return r;
}

/* ---- setup (as root) ---- */

static int bind_unix_socket(const char *path, int type)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;
        struct stat st;
        mode_t old;
        int r;

        if (strscpy(sa.sun_path, path, sizeof(sa.sun_path)) < 0)
                return -ENAMETOOLONG;
        if (lstat(path, &st) == 0) {
                _cleanup_close_ int probe = -1;
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST; /* never remove something that is not our socket */
                probe = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
                if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                        return -EADDRINUSE; /* another core is serving it */
                (void)unlink(path);
        }
        fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        old = umask(0077);
        r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        umask(old);
        if (r < 0)
                return -errno;
        if (listen(fd, 64) < 0)
                return -errno;
        return TAKE_FD(fd);
}

static int drop_all_privileges(void)
{
        struct proc_security sec;
        int r;

        capng_clear(CAPNG_SELECT_BOTH);
        if ((!bounding_set_ours() || capng_apply(CAPNG_SELECT_BOTH) < 0) && capng_apply(CAPNG_SELECT_CAPS) < 0)
                return -EPERM;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return -errno;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        r = proc_security_read(0, &sec);
        if (r < 0)
                return r;
        if (sec.cap_eff || sec.cap_prm || sec.cap_amb || !sec.no_new_privs)
                return -EPERM;
        return 0;
}

static int self_dir(char *buf, size_t size)
{
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        char *slash;

        if (n < 0)
                return -errno;
        exe[n] = '\0';
        slash = strrchr(exe, '/');
        if (!slash)
                return -EINVAL;
        *slash = '\0';
        return strscpy(buf, exe, size);
}

static int apply_snap_defaults(struct nova_config *cfg)
{
        const char *common = getenv("SNAP_COMMON"), *data = getenv("SNAP_DATA");
        char buf[PATH_MAX], err[256];

        if (!common || !data)
                return -EINVAL;
        if (xsnprintf(buf, sizeof(buf), "%s/state", common) < 0 || config_set(cfg, "state_dir", buf, err, sizeof(err)) < 0)
                return -EINVAL;
        if (xsnprintf(buf, sizeof(buf), "%s/run", data) < 0 || config_set(cfg, "run_dir", buf, err, sizeof(err)) < 0)
                return -EINVAL;
        return 0;
}

static void apply_log_level(const struct nova_config *cfg, bool verbose)
{
        if (verbose || streq(cfg->log_level, "debug"))
                log_set_level(LOG_LVL_DEBUG);
        else if (streq(cfg->log_level, "warning"))
                log_set_level(LOG_LVL_WARN);
        else if (streq(cfg->log_level, "error"))
                log_set_level(LOG_LVL_ERR);
}

/* Defaults, the snap's paths, the file, the command line; then the directories. */
static int load_config(struct core *c, const struct core_options *opt)
{
        char err[512];
        int r;

        config_defaults(&c->cfg);
        if (c->snap && apply_snap_defaults(&c->cfg) < 0)
                return log_err("SNAP is set but SNAP_COMMON/SNAP_DATA are not usable"), -EINVAL;
        if (opt->config_path && config_load_file(opt->config_path, &c->cfg, err, sizeof(err)) < 0)
                return log_err("%s", err), -EINVAL;
        for (size_t i = 0; i < opt->n_overrides; i++)
                if (config_set(&c->cfg, opt->overrides[i].key, opt->overrides[i].value, err, sizeof(err)) < 0)
                        return log_err("command line: %s", err), -EINVAL;
        config_finish(&c->cfg);
        apply_log_level(&c->cfg, opt->verbose);
        if (c->supervise && opt->config_path && !realpath(opt->config_path, c->config_path))
                return log_err("%s: %s", opt->config_path, strerror(errno)), -errno;
        r = c->cfg.module_dir[0] ? strscpy(c->module_dir, c->cfg.module_dir, sizeof(c->module_dir))
                                 : self_dir(c->module_dir, sizeof(c->module_dir));
        if (r < 0)
                return log_err("cannot determine the module directory: %s", strerror(-r)), r;
        r = mkdir_p(c->cfg.state_dir, 0700);
        if (r == 0)
                r = mkdir_p(c->cfg.run_dir, 0755);
        if (r < 0)
                return log_err("cannot create %s or %s: %s", c->cfg.state_dir, c->cfg.run_dir, strerror(-r)), r;
        return 0;
}

/* Which plugs are connected: snapd's word inside a snap, else our state file, else the config. */
static int load_plug_state(struct core *c)
{
        int r;

        if (c->snap) {
                r = snapctl_connected_plugs(c->plugs_connected);
                if (r < 0)
                        log_warn("snapctl is-connected failed (%s); assuming no plug is connected", strerror(-r));
                return 0;
        }
        r = load_plugs(&c->cfg, c->plugs_connected);
        if (r == -ENOENT)
                memcpy(c->plugs_connected, c->cfg.plugs, sizeof(c->plugs_connected));
        else if (r < 0)
                return log_err("%s/%s is unreadable (%s); refusing to guess the plug state", c->cfg.state_dir,
                               PLUGS_STATE_FILE, strerror(-r)), r;
        return 0;
}

/* The API socket, and inside a snap the socket module apps connect to. */
static int open_sockets(struct core *c)
{
        c->api_fd = bind_unix_socket(c->cfg.api_socket, SOCK_STREAM);
        if (c->api_fd < 0)
                return log_err("cannot serve %s: %s", c->cfg.api_socket,
                               c->api_fd == -EADDRINUSE ? "another nova-compute is already serving it"
                               : c->api_fd == -EEXIST   ? "the path exists and is not a socket"
                                                        : strerror(-c->api_fd)), c->api_fd;
        if (c->supervise)
                return 0;
        if (xsnprintf(c->module_socket, sizeof(c->module_socket), "%s/modules.socket", c->cfg.run_dir) < 0)
                return log_err("run_dir too long for the module socket"), -ENAMETOOLONG;
        c->module_fd = bind_unix_socket(c->module_socket, SOCK_SEQPACKET);
        if (c->module_fd < 0)
                return log_err("cannot serve %s: %s", c->module_socket, strerror(-c->module_fd)), c->module_fd;
        return 0;
}

/* Outside a snap: the spawner keeps the module capabilities, we keep none. */
static int fork_spawner(struct core *c)
{
        struct spawner_config scfg = { .stop_timeout_ms = c->cfg.stop_timeout_ms };
        int sv[2];

        if (strscpy(scfg.module_dir, c->module_dir, sizeof(scfg.module_dir)) < 0 ||
            strscpy(scfg.config_path, c->config_path, sizeof(scfg.config_path)) < 0)
                return -ENAMETOOLONG;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return log_err("socketpair: %s", strerror(errno)), -errno;
        c->spawner_pid = fork();
        if (c->spawner_pid < 0) {
                int r = -errno;
                log_err("fork: %s", strerror(errno));
                safe_close(sv[0]);
                safe_close(sv[1]);
                c->spawner_pid = 0;
                return r;
        }
        if (c->spawner_pid == 0) {
                safe_close(sv[0]);
                safe_close(c->api_fd);
                spawner_main(sv[1], &scfg);
        }
        safe_close(sv[1]);
        c->spawner_fd = sv[0];
        return 0;
}

int core_setup(const struct core_options *opt, struct core **ret)
{
        struct core *c;
        int r;

        assert(opt && ret);
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->api_fd = c->module_fd = c->spawner_fd = -1;
        c->snap = in_snap();
        /* Outside a snap, or asked to (the snap's remove hook: its services are
         * stopped, so the core runs the modules itself to undo what is ours). */
        c->supervise = !c->snap || opt->spawn_modules;
        c->startup = opt->startup;
        r = load_config(c, opt);
        if (r >= 0)
                r = load_plug_state(c);
        startup_mark(&c->startup, "configuration and plug state");
        if (r >= 0)
                r = open_sockets(c);
        startup_mark(&c->startup, "sockets bound");
        if (r >= 0 && c->supervise) {
                r = fork_spawner(c);
                startup_mark(&c->startup, "spawner forked");
        }
        if (r >= 0) {
                r = drop_all_privileges();
                if (r < 0)
                        log_err("cannot drop privileges: %s", strerror(-r));
        }
        startup_mark(&c->startup, "privileges dropped");
        if (r < 0) {
                core_free(c);
                return r;
        }
        c->started_usec = now_usec();
        *ret = c;
        return 0;
}

/* ---- start, run, stop ---- */

static int event_new(struct core *c)
{
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGCHLD);
        (void)sigprocmask(SIG_BLOCK, &mask, NULL);
        (void)signal(SIGPIPE, SIG_IGN);
        r = sd_event_default(&c->event);
        if (r >= 0)
                r = sd_event_add_signal(c->event, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(c->event, NULL, SIGINT, NULL, NULL);
        if (r < 0)
                log_err("cannot set up the event loop: %s", strerror(-r));
        return r;
}

static int load_stores(struct core *c)
{
        char why[256] = "";
        unsigned skipped = 0;
        int r;

        r = instances_load(c->cfg.state_dir, &c->instances, &skipped);
        if (r < 0)
                return log_err("cannot load the instance store under %s: %s", c->cfg.state_dir, strerror(-r)), r;
        log_info("instance store: %zu instances%s", instances_count(c->instances),
                 skipped ? " (some files were unusable: see above)" : "");
        r = secgroups_load(c->cfg.state_dir, &c->groups, why, sizeof(why));
        if (r < 0)
                /* Starting without the operator's rules would apply the wrong ones: refuse. */
                return log_err("cannot load the security groups under %s: %s", c->cfg.state_dir,
                               why[0] ? why : strerror(-r)), r;
        log_info("security groups: %zu", secgroups_count(c->groups));
        r = images_load(c->cfg.state_dir, &c->images, why, sizeof(why));
        if (r < 0)
                return log_err("cannot load the image store under %s: %s", c->cfg.state_dir, why[0] ? why : strerror(-r)),
                       r;
        return 0;
}

static int start_api(struct core *c)
{
        struct api_context actx = {
                .cfg = &c->cfg,
                .lifecycle = c->lifecycle,
                .firewall = c->firewall,
                .instances = c->instances,
                .groups = c->groups,
                .images = c->images,
                .modules = c->modules,
                .placement = c->placement,
                .snap = !c->supervise,
                .spawner_pid = c->spawner_pid,
                .started_usec = c->started_usec,
                .startup = &c->startup,
                .save_plugs = c->snap ? NULL : save_plugs,
        };
        int r;

        r = api_start(c->event, TAKE_FD(c->api_fd), &actx, &c->api);
        if (r < 0)
                log_err("cannot serve the API: %s", strerror(-r));
        return r;
}

/* The lifecycle engine's capacity hook (a boot or delete done, a module ready, hardware
 * changed): tell the Placement client, and the image cache (which images instances use). */
static void on_capacity_changed(void *userdata, const char *why)
{
        struct core *c = userdata;

        placement_kick(c->placement, why);
        image_cache_update(c->image_cache, why);
}

/* The Placement client with its real transport (libcurl on the loop, loaded when it starts). */
static int new_placement(struct core *c)
{
        struct placement_io *io;
        int r;

        r = placement_curl_new(c->event, &io);
        if (r >= 0)
                r = placement_new(&c->cfg, c->modules, io, &c->placement); /* owns io, also on failure */
        if (r < 0)
                log_err("cannot set up the Placement client: %s", strerror(-r));
        return r;
}

int core_start(struct core *c)
{
        int r;

        assert(c && !c->event);
        r = event_new(c);
        startup_mark(&c->startup, "event loop");
        /* The registry first (everyone sends through it), and before the stores: the
         * modules start (exec, libraries, their own set-up) while the stores load and
         * the units are made. Nothing is heard from them before the loop runs, when
         * every handler is in place. */
        if (r >= 0 && (r = modules_new(c->event, &c->cfg, c->spawner_fd, c->plugs_connected, c->module_dir,
                                       &c->modules)) < 0)
                log_err("cannot set up the module registry: %s", strerror(-r));
        startup_mark(&c->startup, "module registry (modules spawned)");
        if (r >= 0)
                r = load_stores(c);
        startup_mark(&c->startup, "stores loaded");
        if (r >= 0 && (r = lifecycle_new(c->event, &c->cfg, c->modules, c->instances, &c->lifecycle)) < 0)
                log_err("cannot set up the lifecycle engine: %s", strerror(-r));
        if (r >= 0 &&
            (r = firewall_new(c->event, c->modules, c->lifecycle, c->instances, c->groups, &c->firewall)) >= 0)
                lifecycle_set_firewall(c->lifecycle, c->firewall);
        if (r >= 0)
                r = new_placement(c);
        if (r >= 0)
                lifecycle_set_capacity_hook(c->lifecycle, on_capacity_changed, c);
        /* not in the remove hook's run (--spawn-modules inside a snap): it only undoes local state */
        if (r >= 0 && !(c->snap && c->supervise) &&
            (r = image_cache_new(c->event, &c->cfg, c->modules, c->images, c->instances, &c->image_cache)) < 0)
                log_err("cannot set up the image cache: %s", strerror(-r));
        if (r >= 0 && c->module_fd >= 0 && (r = modules_listen(c->modules, TAKE_FD(c->module_fd))) < 0)
                log_err("cannot accept modules: %s", strerror(-r));
        if (r >= 0)
                r = start_api(c);
        if (r < 0)
                return r;
        /* issue 18: register in OpenStack Placement (nothing when placement_url is empty); not in the
         * remove hook's run (--spawn-modules), which only undoes local state. A failure leaves
         * everything local working; status shows the error. */
        if (!(c->snap && c->supervise) && placement_start(c->placement) < 0)
                log_warn("the Placement client is not running (see above); everything local keeps working");
        if (!c->supervise) {
                r = health_start(c->event, c->modules, streq(c->cfg.vif_type, "ovs"), &c->health);
                if (r < 0)
                        log_warn("cannot report health to snapd: %s", strerror(-r));
        }
        startup_mark(&c->startup, "units, API and health");
        log_info("serving %s (state %s, modules from %s, %s)", c->cfg.api_socket, c->cfg.state_dir, c->module_dir,
                 !c->supervise ? "inside a snap" : "supervising modules");
        return 0;
}

int core_run(struct core *c)
{
        int r;

        assert(c && c->event);
        (void)sd_notify(0, "READY=1");
        r = sd_event_loop(c->event);
        log_info("shutting down");
        return r;
}

struct core *core_free(struct core *c)
{
        if (!c)
                return NULL;
        c->health = health_stop(c->health);
        c->api = api_stop(c->api);
        if (c->api_fd >= 0 || c->started_usec)
                (void)unlink(c->cfg.api_socket);
        safe_close(c->api_fd);
        if (c->module_socket[0])
                (void)unlink(c->module_socket);
        safe_close(c->module_fd);
        if (c->event) {
                /* In-flight calls fail now (their callbacks still find the engine and
                 * the firewall); then nothing refers to the registry any more. */
                c->placement = placement_free(c->placement); /* cancels its module call first */
                c->image_cache = image_cache_free(c->image_cache); /* likewise */
                c->modules = modules_free(c->modules);
                c->lifecycle = lifecycle_free(c->lifecycle);
                c->firewall = firewall_free(c->firewall);
                c->groups = secgroups_free(c->groups);
        }
        c->instances = instances_free(c->instances);
        c->images = images_free(c->images);
        safe_close(c->spawner_fd); /* the spawner stops the modules and exits */
        if (c->spawner_pid > 0)
                while (waitpid(c->spawner_pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        sd_event_unref(c->event);
        free(c);
        return NULL;
}
