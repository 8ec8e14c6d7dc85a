/* image-cmds.c - see image-cmds.h */
#include "image-cmds.h"

#include "apiclient.h"
#include "names.h"

#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_CHUNK (256u * 1024)

static const char *js(struct json_object *o, const char *key)
{
        struct json_object *v;
        return o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

static long long ji(struct json_object *o, const char *key)
{
        struct json_object *v;
        return o && json_object_object_get_ex(o, key, &v) ? (long long)json_object_get_int64(v) : 0;
}

static bool jbool_of(struct json_object *o, const char *key)
{
        struct json_object *v;
        return o && json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

/* The request's answer: 0 with *ret (status < 300), else the exit status after saying why. */
static int answer(const char *socket, bool json, int status, struct json_object *resp, struct json_object **ret)
{
        struct json_object *e, *v;

        if (status < 0) {
                fprintf(stderr, "error: cannot reach nova-compute at %s: %s\n", socket, strerror(-status));
                return 3;
        }
        if (status < 300) {
                *ret = resp;
                return 0;
        }
        e = resp && json_object_object_get_ex(resp, "error", &v) ? v : NULL;
        if (json)
                printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
        fprintf(stderr, "error: %s (HTTP %d)\n", js(e, "message") ? js(e, "message") : "request failed", status);
        if (js(e, "fix"))
                fprintf(stderr, "fix: %s\n", js(e, "fix"));
        json_object_put(resp);
        return 1;
}

static int request(const char *socket, bool json, const char *method, const char *path, struct json_object **ret)
{
        struct json_object *resp = NULL;
        int status = api_request(socket, method, path, NULL, APICLIENT_TIMEOUT_MS, &resp);

        return answer(socket, json, status, resp, ret);
}

static void print_image(struct json_object *i)
{
        printf("%-36s  %-20s  %-9s  %12lld  %.16s…\n", js(i, "uuid"), js(i, "name"), js(i, "status"), ji(i, "size"),
               js(i, "sha256") ? js(i, "sha256") : "-");
}

/* ---- import ---- */

struct copier {
        int in, out;                    /* the file (or stdin), the pipe's write end */
        uint64_t size;                  /* bytes announced */
        _Atomic uint64_t copied;
        int error;                      /* 0, or -errno of the copy */
        bool progress;                  /* stderr is a terminal */
        const char *name;
};

static void progress_line(const struct copier *cp, uint64_t done, uint64_t start_usec, bool last)
{
        uint64_t el = now_usec() - start_usec;
        double mbs = el ? (double)done / (double)el : 0; /* bytes per µs = MB/s */
        int pct = cp->size ? (int)(done * 100 / cp->size) : 100, bar = pct / 4;

        fprintf(stderr, "\rimporting %s [%.*s%*s] %3d%% %llu/%llu MiB %.1f MB/s%s", cp->name, bar,
                "#########################", 25 - bar, "", pct, (unsigned long long)(done >> 20),
                (unsigned long long)(cp->size >> 20), mbs, last ? "\n" : "");
}

static void *copy_thread(void *opaque)
{
        struct copier *cp = opaque;
        _cleanup_free_ char *buf = malloc(COPY_CHUNK);
        uint64_t done = 0, start = now_usec(), last_shown = 0;

        if (!buf)
                cp->error = -ENOMEM;
        while (buf && done < cp->size) {
                size_t want = cp->size - done < COPY_CHUNK ? (size_t)(cp->size - done) : COPY_CHUNK;
                ssize_t n = read(cp->in, buf, want);
                int r;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        cp->error = n < 0 ? -errno : -EPIPE; /* shorter than announced */
                        break;
                }
                r = write_all(cp->out, buf, (size_t)n);
                if (r < 0) {
                        cp->error = r; /* -EPIPE: the module stopped reading (it refused the image) */
                        break;
                }
                done += (size_t)n;
                atomic_store(&cp->copied, done);
                if (cp->progress && now_usec() - last_shown > 200000) {
                        progress_line(cp, done, start, false);
                        last_shown = now_usec();
                }
        }
        if (cp->progress)
                progress_line(cp, done, start, true);
        cp->out = safe_close(cp->out); /* EOF for the reader */
        return NULL;
}

/* The options and operands of `image import`: 0, or 2 (usage) with a message on stderr. */
static int import_parse_args(int argc, char **argv, const char **ret_format, uint64_t *ret_size,
                             const char **ret_name, const char **ret_path, const char **ret_id)
{
        static const struct option opts[] = {
                { "format", required_argument, NULL, 'f' }, { "size", required_argument, NULL, 's' },
                { "id", required_argument, NULL, 'i' }, { 0 },
        };
        int c;

        optind = 1;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                if (c == 'f' && (streq(optarg, "raw") || streq(optarg, "qcow2")))
                        *ret_format = optarg;
                else if (c == 's' && parse_u64(optarg, 1, 1ULL << 40, ret_size) == 0)
                        ;
                else if (c == 'i' && uuid_is_valid(optarg))
                        *ret_id = optarg; /* the same image as on another host (a migration needs it by id) */
                else {
                        fprintf(stderr, "error: --format raw|qcow2, --size BYTES (1..2^40), --id UUID\n");
                        return 2;
                }
        }
        if (optind != argc - 2 || !instance_name_is_valid(argv[optind]) || uuid_is_valid(argv[optind])) {
                fprintf(stderr, "usage: nova-hypervisor image import NAME FILE|- [--format raw|qcow2] [--size BYTES] [--id UUID]\n"
                                "NAME: 1..63 characters of A-Z a-z 0-9 . _ - (not a UUID)\n");
                return 2;
        }
        *ret_name = argv[optind];
        *ret_path = argv[optind + 1];
        return 0;
}

/* The file to import (path, or "-" for stdin) into *ret_fd, and its length into *size (a
 * regular file's own, which --size must match; a stream's from --size): 0, or 1 or 2 with a
 * message on stderr. */
static int import_open_source(const char *path, uint64_t *size, int *ret_fd)
{
        _cleanup_close_ int file = -EBADF;
        struct stat st;

        file = streq(path, "-") ? fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3) : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (file < 0 || fstat(file, &st) < 0) {
                fprintf(stderr, "error: %s: %s\n", path, strerror(errno));
                return 1;
        }
        if (S_ISREG(st.st_mode) && *size == 0)
                *size = (uint64_t)st.st_size;
        else if (S_ISREG(st.st_mode) && *size != (uint64_t)st.st_size) {
                fprintf(stderr, "error: --size %llu differs from the file's %lld bytes\n", (unsigned long long)*size,
                        (long long)st.st_size);
                return 2;
        }
        if (*size == 0) {
                fprintf(stderr, "error: %s: %s; give its length with --size BYTES\n", path,
                        S_ISREG(st.st_mode) ? "the file is empty" : "a stream's length is not known");
                return 2;
        }
        *ret_fd = TAKE_FD(file);
        return 0;
}

/* POST /v1/images with the pipe's read end rd (closed here: the core has its own copy
 * then; the module reads it): the connection to read the answer on, or -errno. */
static int import_send_request(const char *socket, const char *name, uint64_t size, const char *format, const char *id,
                               int rd)
{
        struct json_object *body = json_object_new_object();
        int c;

        json_object_object_add(body, "name", json_object_new_string(name));
        json_object_object_add(body, "size", json_object_new_int64((int64_t)size));
        if (format)
                json_object_object_add(body, "format", json_object_new_string(format));
        if (id)
                json_object_object_add(body, "id", json_object_new_string(id));
        c = api_send_request_fd(socket, "POST", "/v1/images", json_object_to_json_string(body), rd);
        json_object_put(body);
        (void)safe_close(rd);
        return c;
}

/* Copy file into the pipe's write end wr on a thread while waiting for the answer on the
 * connection c; c and wr are closed. 1 (with a message) if the copy cannot start, else 0 with
 * the answer's *ret_status and *resp, and the copy's *ret_copy_error (0 or -errno). */
static int import_transfer(int c, int file, int wr, uint64_t size, const char *name, bool progress,
                           int *ret_status, struct json_object **resp, int *ret_copy_error)
{
        struct copier cp;
        pthread_t thread;
        long long timeout_ms;

        (void)signal(SIGPIPE, SIG_IGN); /* a refused image: the reader is gone, write() says EPIPE */
        cp = (struct copier){ .in = file, .out = wr, .size = size, .progress = progress, .name = name };
        if (pthread_create(&thread, NULL, copy_thread, &cp) != 0) {
                safe_close(wr);
                safe_close(c);
                fprintf(stderr, "error: cannot start the copy\n");
                return 1;
        }
        /* the module's own timeout allows 4 MB/s plus two minutes; wait a little longer */
        timeout_ms = (long long)(size / 4000000 + 180) * 1000;
        *ret_status = api_read_response(c, timeout_ms > INT32_MAX ? INT32_MAX : (int)timeout_ms, resp);
        safe_close(c);
        (void)pthread_join(thread, NULL); /* a refused image: the copy ends on EPIPE once the reader is gone */
        safe_close(cp.out);
        *ret_copy_error = cp.error;
        return 0;
}

static int image_import(const char *socket, bool json, int argc, char **argv)
{
        _cleanup_close_ int file = -EBADF;
        struct json_object *resp = NULL;
        const char *format = NULL, *name, *path, *id = NULL;
        uint64_t size = 0;
        int c, fds[2], status, copy_error, r;

        r = import_parse_args(argc, argv, &format, &size, &name, &path, &id);
        if (r != 0)
                return r;
        r = import_open_source(path, &size, &file);
        if (r != 0)
                return r;
        if (pipe2(fds, O_CLOEXEC) < 0) {
                fprintf(stderr, "error: pipe: %s\n", strerror(errno));
                return 1;
        }
        (void)fcntl(fds[1], F_SETPIPE_SZ, 1024 * 1024); /* fewer wake-ups; the default 64 KiB works too */
        c = import_send_request(socket, name, size, format, id, fds[0]);
        if (c < 0) {
                safe_close(fds[1]);
                return answer(socket, json, c, NULL, &resp);
        }
        r = import_transfer(c, file, fds[1], size, name, !json && isatty(STDERR_FILENO), &status, &resp,
                            &copy_error);
        if (r != 0)
                return r;
        r = answer(socket, json, status, resp, &resp);
        if (r != 0)
                return r;
        if (copy_error < 0)
                fprintf(stderr, "warning: the copy ended with %s\n", strerror(-copy_error));
        if (json)
                printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
        else
                printf("imported %s (%s): %lld bytes, sha256 %s\n", js(resp, "name"), js(resp, "uuid"), ji(resp, "size"),
                       js(resp, "sha256") ? js(resp, "sha256") : "-");
        json_object_put(resp);
        return 0;
}

static bool ref_ok(const char *ref) { return uuid_is_valid(ref) || instance_name_is_valid(ref); }

int cmd_image(const char *socket, bool json, int argc, char **argv)
{
        struct json_object *resp = NULL, *list, *users;
        char path[160];
        int r;

        if (argc >= 1 && streq(argv[0], "import"))
                return image_import(socket, json, argc, argv);
        if (argc == 1 && streq(argv[0], "list")) {
                r = request(socket, json, "GET", "/v1/images", &resp);
                if (r)
                        return r;
                if (json)
                        printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
                else if (json_object_object_get_ex(resp, "images", &list)) {
                        printf("%-36s  %-20s  %-9s  %12s  %s\n", "UUID", "NAME", "STATUS", "BYTES", "SHA256");
                        for (size_t i = 0; i < json_object_array_length(list); i++)
                                print_image(json_object_array_get_idx(list, i));
                }
                json_object_put(resp);
                return 0;
        }
        if (argc == 2 && (streq(argv[0], "show") || streq(argv[0], "delete")) && ref_ok(argv[1])) {
                bool show = streq(argv[0], "show");
                (void)snprintf(path, sizeof(path), "/v1/images/%s", argv[1]);
                r = request(socket, json, show ? "GET" : "DELETE", path, &resp);
                if (r)
                        return r;
                if (json)
                        printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
                else if (show) {
                        printf("uuid:          %s\nname:          %s\nstatus:        %s\nformat:        %s\n"
                               "size:          %lld bytes\nvirtual size:  %lld bytes\nsha256:        %s\n",
                               js(resp, "uuid"), js(resp, "name"), js(resp, "status"), js(resp, "format"),
                               ji(resp, "size"), ji(resp, "virtual_size"), js(resp, "sha256") ? js(resp, "sha256") : "-");
                        if (json_object_object_get_ex(resp, "instances", &users) && json_object_array_length(users)) {
                                printf("used by:      ");
                                for (size_t i = 0; i < json_object_array_length(users); i++)
                                        printf(" %s", json_object_get_string(json_object_array_get_idx(users, i)));
                                printf("\n");
                        }
                } else
                        printf("deleted image %s\n", argv[1]);
                json_object_put(resp);
                return 0;
        }
        if (argc == 1 && streq(argv[0], "purge")) {
                r = request(socket, json, "POST", "/v1/volumes/purge", &resp);
                if (r)
                        return r;
                if (json)
                        printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
                else
                        printf("volumes deleted: %lld, kept (an instance's domain still uses them): %lld, failed: %lld%s%s; "
                               "images forgotten: %lld; storage pool %s\n",
                               ji(resp, "deleted"), ji(resp, "kept"), ji(resp, "failed"), ji(resp, "failed") ? ": " : "",
                               ji(resp, "failed") ? js(resp, "error") : "", ji(resp, "images_removed"),
                               jbool_of(resp, "pool_removed") ? "removed" : "kept");
                r = ji(resp, "failed") || ji(resp, "kept") ? 1 : 0;
                json_object_put(resp);
                return r;
        }
        fprintf(stderr, "usage: nova-hypervisor image import NAME FILE|- [--format raw|qcow2] [--size BYTES]\n"
                        "       nova-hypervisor image list | show NAME|UUID | delete NAME|UUID\n"
                        "       nova-hypervisor image purge   (the remove hook: every volume of ours, every image)\n");
        return 2;
}

int cmd_console(const char *socket, bool json, int argc, char **argv)
{
        struct json_object *resp = NULL;
        uint64_t tail = 16 * 1024;
        char path[200];
        const char *text;
        int r;

        if (argc == 3 && streq(argv[1], "--tail") && parse_u64(argv[2], 1, 49152, &tail) == 0)
                argc = 1;
        if (argc != 1 || !ref_ok(argv[0])) {
                fprintf(stderr, "usage: nova-hypervisor console NAME|UUID [--tail BYTES]   (BYTES: 1..49152, default 16384)\n");
                return 2;
        }
        (void)snprintf(path, sizeof(path), "/v1/instances/%s/console?tail=%llu", argv[0], (unsigned long long)tail);
        r = request(socket, json, "GET", path, &resp);
        if (r)
                return r;
        text = js(resp, "text");
        if (json)
                printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
        else if (text)
                fputs(text, stdout);
        json_object_put(resp);
        return 0;
}
