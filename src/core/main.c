/* main.c - nova-compute, the core daemon.
 *
 * Start-up, as root: read the configuration, create the state and run dirs,
 * fork the spawner (outside a snap), bind the API socket, then drop every
 * capability and set no_new_privs before serving anything. From then on the
 * core does no privileged work itself: it asks modules. */
#include "api.h"
#include "config.h"
#include "firewall.h"
#include "instances.h"
#include "lifecycle.h"
#include "log.h"
#include "modules.h"
#include "placement.h" /* issue 18: Placement client hook */
#include "snapctl.h"
#include "health.h"
#include "spawner.h"

#include <cap-ng.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>

#define PLUGS_STATE_FILE "plugs.json"

static struct nova_config cfg;
static bool plugs_connected[_PLUG_MAX];

static void usage(void)
{
        printf("usage: nova-compute [--config FILE] [--state-dir DIR] [--run-dir DIR] [--api-socket PATH]\n"
               "                    [--module-dir DIR] [--plugs LIST] [--spawn-modules] [-v]\n"
               "The nova-hypervisor core daemon. Outside a snap it starts one module per\n"
               "connected plug (--plugs, or the config key plugs); inside a snap snapd decides.\n"
               "--spawn-modules: inside a snap too, start the modules of the connected plugs\n"
               "itself (the remove hook, after snapd stopped the services).\n");
}

static int plugs_state_path(char *buf, size_t size)
{
        return xsnprintf(buf, size, "%s/%s", cfg.state_dir, PLUGS_STATE_FILE);
}

/* Outside a snap the live plug set survives restarts, as snapd's would. */
static int save_plugs(void)
{
        struct json_object *root = json_object_new_object(), *list = json_object_new_array();
        struct module_status st;
        char path[PATH_MAX];
        const char *text;
        int r;

        for (int i = 0; i < _PLUG_MAX; i++) {
                modules_get_status((enum plug_id)i, &st);
                if (st.connected)
                        json_object_array_add(list, json_object_new_string(plug_table[i].name));
        }
        json_object_object_add(root, "connected", list);
        text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY);
        r = plugs_state_path(path, sizeof(path));
        if (r == 0)
                r = write_file_atomic(path, text, strlen(text), 0600);
        json_object_put(root);
        return r;
}

static int load_plugs(bool ret[_PLUG_MAX])
{
        _cleanup_free_ char *text = NULL;
        struct json_object *root, *list;
        bool set[_PLUG_MAX] = { false };
        char path[PATH_MAX];
        int r;

        r = plugs_state_path(path, sizeof(path));
        if (r < 0)
                return r;
        r = read_file_bounded(path, 64 * 1024, &text, NULL);
        if (r < 0)
                return r;
        root = json_tokener_parse(text);
        if (!root || !json_object_object_get_ex(root, "connected", &list) ||
            !json_object_is_type(list, json_type_array)) {
                json_object_put(root);
                return -EBADMSG;
        }
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                int id = plug_from_name(json_object_get_string(json_object_array_get_idx(list, i)));
                if (id < 0) {
                        json_object_put(root);
                        return -EBADMSG;
                }
                set[id] = true;
        }
        json_object_put(root);
        memcpy(ret, set, sizeof(set));
        return 0;
}

static int bind_unix_socket(const char *path, int type)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;
        struct stat st;

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
        {
                mode_t old = umask(0077);
                int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
                umask(old);
                if (r < 0)
                        return -errno;
        }
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

static int apply_snap_defaults(struct nova_config *c)
{
        const char *common = getenv("SNAP_COMMON"), *data = getenv("SNAP_DATA");
        char buf[PATH_MAX], err[256];

        if (!common || !data)
                return -EINVAL;
        if (xsnprintf(buf, sizeof(buf), "%s/state", common) < 0 || config_set(c, "state_dir", buf, err, sizeof(err)) < 0)
                return -EINVAL;
        if (xsnprintf(buf, sizeof(buf), "%s/run", data) < 0 || config_set(c, "run_dir", buf, err, sizeof(err)) < 0)
                return -EINVAL;
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "state-dir", required_argument, NULL, 's' },
                { "run-dir", required_argument, NULL, 'r' },
                { "api-socket", required_argument, NULL, 'a' },
                { "module-dir", required_argument, NULL, 'm' },
                { "plugs", required_argument, NULL, 'p' },
                { "spawn-modules", no_argument, NULL, 'S' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        static const char *const opt_keys[] = { ['s'] = "state_dir", ['r'] = "run_dir", ['a'] = "api_socket",
                                                ['m'] = "module_dir", ['p'] = "plugs" };
        const char *overrides[128] = { NULL };
        const char *config_path = NULL;
        struct spawner_config scfg = { 0 };
        struct api_context actx = { 0 };
        char err[512], module_dir[PATH_MAX];
        sd_event *event = NULL;
        bool snap = in_snap(), verbose = false, spawn_modules = false, supervise;
        int sv[2] = { -1, -1 }, listen_fd, module_fd = -1, c, r, exit_code = 1;
        char module_socket[PATH_MAX] = "";
        pid_t spawner_pid = 0;
        sigset_t mask;

        log_init("core", LOG_LVL_INFO);
        while ((c = getopt_long(argc, argv, "c:vh", opts, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case 's':
                case 'r':
                case 'a':
                case 'm':
                case 'p':
                        overrides[c] = optarg;
                        break;
                case 'S':
                        spawn_modules = true;
                        break;
                case 'v':
                        verbose = true;
                        break;
                case 'h':
                        usage();
                        return 0;
                default:
                        usage();
                        return 2;
                }
        }
        if (optind != argc) {
                usage();
                return 2;
        }
        /* Outside a snap, or asked to (the snap's remove hook: its services are
         * stopped, so the core runs the modules itself to undo what is ours). */
        supervise = !snap || spawn_modules;
        config_defaults(&cfg);
        if (snap && apply_snap_defaults(&cfg) < 0) {
                log_err("SNAP is set but SNAP_COMMON/SNAP_DATA are not usable");
                return 1;
        }
        if (config_path && config_load_file(config_path, &cfg, err, sizeof(err)) < 0) {
                log_err("%s", err);
                return 1;
        }
        for (size_t i = 0; i < ARRAY_SIZE(opt_keys); i++)
                if (opt_keys[i] && overrides[i] && config_set(&cfg, opt_keys[i], overrides[i], err, sizeof(err)) < 0) {
                        log_err("command line: %s", err);
                        return 1;
                }
        config_finish(&cfg);
        if (verbose || streq(cfg.log_level, "debug"))
                log_set_level(LOG_LVL_DEBUG);
        else if (streq(cfg.log_level, "warning"))
                log_set_level(LOG_LVL_WARN);
        else if (streq(cfg.log_level, "error"))
                log_set_level(LOG_LVL_ERR);
        if (cfg.module_dir[0])
                r = strscpy(module_dir, cfg.module_dir, sizeof(module_dir));
        else
                r = self_dir(module_dir, sizeof(module_dir));
        if (r < 0) {
                log_err("cannot determine the module directory: %s", strerror(-r));
                return 1;
        }
        r = mkdir_p(cfg.state_dir, 0700);
        if (r == 0)
                r = mkdir_p(cfg.run_dir, 0755);
        if (r < 0) {
                log_err("cannot create %s or %s: %s", cfg.state_dir, cfg.run_dir, strerror(-r));
                return 1;
        }

        /* Which plugs are connected. */
        if (snap) {
                r = snapctl_connected_plugs(plugs_connected);
                if (r < 0)
                        log_warn("snapctl is-connected failed (%s); assuming no plug is connected",
                                 strerror(-r));
        } else {
                r = load_plugs(plugs_connected);
                if (r == -ENOENT)
                        memcpy(plugs_connected, cfg.plugs, sizeof(plugs_connected));
                else if (r < 0) {
                        log_err("%s/%s is unreadable (%s); refusing to guess the plug state", cfg.state_dir,
                                PLUGS_STATE_FILE, strerror(-r));
                        return 1;
                }
        }

        listen_fd = bind_unix_socket(cfg.api_socket, SOCK_STREAM);
        if (listen_fd < 0) {
                log_err("cannot serve %s: %s", cfg.api_socket,
                        listen_fd == -EADDRINUSE ? "another nova-compute is already serving it"
                        : listen_fd == -EEXIST   ? "the path exists and is not a socket"
                                                 : strerror(-listen_fd));
                return 1;
        }

        /* Inside a snap systemd starts the module apps; they connect to us here. */
        if (!supervise) {
                if (xsnprintf(module_socket, sizeof(module_socket), "%s/modules.socket", cfg.run_dir) < 0) {
                        log_err("run_dir too long for the module socket");
                        return 1;
                }
                module_fd = bind_unix_socket(module_socket, SOCK_SEQPACKET);
                if (module_fd < 0) {
                        log_err("cannot serve %s: %s", module_socket, strerror(-module_fd));
                        return 1;
                }
        }

        /* Outside a snap: the spawner keeps the module capabilities, we keep none. */
        if (supervise) {
                if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
                        log_err("socketpair: %s", strerror(errno));
                        return 1;
                }
                if (strscpy(scfg.module_dir, module_dir, sizeof(scfg.module_dir)) < 0)
                        return 1;
                scfg.stop_timeout_ms = cfg.stop_timeout_ms;
                if (config_path && !realpath(config_path, scfg.config_path)) {
                        log_err("%s: %s", config_path, strerror(errno));
                        return 1;
                }
                spawner_pid = fork();
                if (spawner_pid < 0) {
                        log_err("fork: %s", strerror(errno));
                        return 1;
                }
                if (spawner_pid == 0) {
                        safe_close(sv[0]);
                        safe_close(listen_fd);
                        spawner_main(sv[1], &scfg);
                }
                sv[1] = safe_close(sv[1]);
        }
        r = drop_all_privileges();
        if (r < 0) {
                log_err("cannot drop privileges: %s", strerror(-r));
                goto out;
        }

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGCHLD);
        (void)sigprocmask(SIG_BLOCK, &mask, NULL);
        (void)signal(SIGPIPE, SIG_IGN);
        r = sd_event_default(&event);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
        if (r < 0) {
                log_err("cannot set up the event loop: %s", strerror(-r));
                goto out;
        }
        {
                unsigned skipped = 0;
                r = instances_load(cfg.state_dir, &skipped);
                if (r < 0) {
                        log_err("cannot load the instance store under %s: %s", cfg.state_dir, strerror(-r));
                        goto out;
                }
                log_info("instance store: %zu instances%s", instances_count(),
                         skipped ? " (some files were unusable: see above)" : "");
        }
        {
                char why[256] = "";
                r = secgroups_load(cfg.state_dir, why, sizeof(why));
                if (r < 0) {
                        /* Starting without the operator's rules would apply the wrong ones: refuse. */
                        log_err("cannot load the security groups under %s: %s", cfg.state_dir,
                                why[0] ? why : strerror(-r));
                        goto out;
                }
                log_info("security groups: %zu", secgroups_count());
        }
        r = firewall_init(event);
        if (r < 0)
                goto out;
        r = lifecycle_init(event, &cfg);
        if (r < 0) {
                log_err("cannot set up the lifecycle engine: %s", strerror(-r));
                goto out;
        }
        r = modules_new(event, &cfg, sv[0], plugs_connected, module_dir);
        if (r < 0) {
                log_err("cannot set up the module registry: %s", strerror(-r));
                goto out;
        }
        if (module_fd >= 0) {
                r = modules_listen(module_fd);
                if (r < 0) {
                        log_err("cannot accept modules: %s", strerror(-r));
                        goto out;
                }
                module_fd = -1;
        }
        actx.cfg = &cfg;
        actx.snap = !supervise;
        actx.spawner_pid = spawner_pid;
        actx.started_usec = now_usec();
        actx.save_plugs = snap ? NULL : save_plugs;
        r = api_start(event, listen_fd, &actx);
        if (r < 0) {
                log_err("cannot serve the API: %s", strerror(-r));
                goto out;
        }
        /* ---- issue 18 hook: register in OpenStack Placement (no-op when placement_url is empty).
         * A failure here leaves everything local working; status shows the error. ---- */
        /* not in the remove hook's run (--spawn-modules): it only undoes local state */
        if (!spawn_modules && placement_start(event, &cfg) < 0)
                log_warn("the Placement client is not running (see above); everything local keeps working");
        /* ---- end of issue 18 hook ---- */
        if (!supervise) {
                r = health_start(event, streq(cfg.vif_type, "ovs"));
                if (r < 0)
                        log_warn("cannot report health to snapd: %s", strerror(-r));
        }
        log_info("serving %s (state %s, modules from %s, %s)", cfg.api_socket, cfg.state_dir, module_dir,
                 !supervise ? "inside a snap" : "supervising modules");
        (void)sd_notify(0, "READY=1");
        r = sd_event_loop(event);
        exit_code = r == 0 ? 0 : 1;
        log_info("shutting down");
out:
        health_stop();
        placement_stop(); /* issue 18 hook */
        api_stop();
        (void)unlink(cfg.api_socket);
        if (module_socket[0])
                (void)unlink(module_socket);
        safe_close(module_fd);
        modules_free();
        firewall_free();
        secgroups_free();
        sv[0] = safe_close(sv[0]); /* the spawner stops the modules and exits */
        if (spawner_pid > 0)
                while (waitpid(spawner_pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        sd_event_unref(event);
        return exit_code;
}
