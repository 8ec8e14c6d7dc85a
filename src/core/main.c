/* main.c - nova-compute, the core daemon.
 *
 * Start-up, as root: read the configuration, create the state and run dirs,
 * fork the spawner (outside a snap), bind the API socket, then drop every
 * capability and set no_new_privs before serving anything. From then on the
 * core does no privileged work itself: it asks modules. core.h has the order. */
#include "core.h"
#include "log.h"

#include <getopt.h>
#include <malloc.h>

static void usage(void)
{
        printf("usage: nova-compute [--config FILE] [--state-dir DIR] [--run-dir DIR] [--api-socket PATH]\n"
               "                    [--module-dir DIR] [--plugs LIST] [--spawn-modules] [-v]\n"
               "The nova-hypervisor core daemon. Outside a snap it starts one module per\n"
               "connected plug (--plugs, or the config key plugs); inside a snap snapd decides.\n"
               "--spawn-modules: inside a snap too, start the modules of the connected plugs\n"
               "itself (the remove hook, after snapd stopped the services).\n");
}

/* 0 and *opt filled, 1 for --help, or 2 for a usage error. */
static int parse_args(int argc, char **argv, struct core_options *opt)
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
        /* the config key each path option sets, in the order they are applied */
        static const struct { int opt; const char *key; } keys[] = {
                { 'a', "api_socket" }, { 'm', "module_dir" }, { 'p', "plugs" }, { 'r', "run_dir" }, { 's', "state_dir" },
        };
        const char *given[128] = { NULL };
        int c;

        while ((c = getopt_long(argc, argv, "c:vh", opts, NULL)) >= 0) {
                if (c == 'c')
                        opt->config_path = optarg;
                else if (c == 's' || c == 'r' || c == 'a' || c == 'm' || c == 'p')
                        given[c] = optarg;
                else if (c == 'S')
                        opt->spawn_modules = true;
                else if (c == 'v')
                        opt->verbose = true;
                else
                        return c == 'h' ? 1 : 2;
        }
        if (optind != argc)
                return 2;
        for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
                if (given[keys[i].opt]) {
                        opt->overrides[opt->n_overrides].key = keys[i].key;
                        opt->overrides[opt->n_overrides++].value = given[keys[i].opt];
                }
        return 0;
}

static int run(const struct core_options *opt)
{
        struct core *c = NULL;
        int r;

        r = core_setup(opt, &c);
        if (r < 0)
                return 1;
        r = core_start(c);
        if (r >= 0)
                r = core_run(c);
        core_free(c);
        return r == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
        struct core_options opt = { 0 };
        int r;

        startup_begin(&opt.startup);
        /* Large transients (a listing's response text, a long module reply) are mmap'd and go back
         * to the system when freed. A fixed threshold stops glibc raising it to the size of the
         * first such block freed, after which the next ones would come from the heap and its top
         * could stay mapped (the core's RSS after listing 1000 instances). */
        (void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
        log_init("core", LOG_LVL_INFO);
        r = parse_args(argc, argv, &opt);
        if (r > 0) {
                usage();
                return r == 1 ? 0 : 2;
        }
        return run(&opt);
}
