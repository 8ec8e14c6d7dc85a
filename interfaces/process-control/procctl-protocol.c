/* procctl-protocol.c - request schemas of the process-control entrypoints:
 * an instance UUID, a cpu list and a priority, nothing that names a process. */
#include "procctl-protocol.h"

#include "plugs.h"
#include "procfs.h"

bool procctl_cpus_text_ok(const char *s)
{
        struct cpuset set;
        size_t n = strlen(s);

        return n > 0 && n <= PROCCTL_CPUS_MAX_LEN && s[n - 1] != '\n' && cpuset_parse(s, n, &set) == 0 &&
               cpuset_count(&set) > 0;
}

bool procctl_priority_text_ok(const char *s)
{
        uint32_t v;
        bool neg = s[0] == '-';
        const char *digits = neg ? s + 1 : s;

        if (digits[0] == '\0' || (digits[0] == '0' && digits[1] != '\0') || (neg && streq(digits, "0")))
                return false;
        if (parse_u32(digits, 0, neg ? 20 : 19, &v) < 0)
                return false;
        return true;
}

int procctl_priority_value(const char *s)
{
        uint32_t v = 0;

        if (!procctl_priority_text_ok(s))
                return 0;
        (void)!parse_u32(s[0] == '-' ? s + 1 : s, 0, 20, &v);
        return s[0] == '-' ? -(int)v : (int)v;
}

static const struct schema_field pin_req[] = {
        { .name = "instance_uuid", .kind = SCH_UUID, .required = true },
        { .name = "cpus", .kind = SCH_STR, .required = true, .min = 1, .max = PROCCTL_CPUS_MAX_LEN,
          .str_ok = procctl_cpus_text_ok },
        { .name = "priority", .kind = SCH_STR, .required = false, .min = 1, .max = 3,
          .str_ok = procctl_priority_text_ok },
        { .name = NULL },
};

const struct proto_entrypoint procctl_entrypoints[_PROCCTL_MAX] = {
        [PROCCTL_INSTANCE_PIN] = { "instance_pin", pin_req, true },
        [PROCCTL_INSTANCE_AFFINITY] = { "instance_affinity", schema_instance_only_req, false },
};

const struct module_protocol procctl_protocol = {
        .plug = PLUG_PROCESS_CONTROL,
        .entrypoints = procctl_entrypoints,
        .n_entrypoints = _PROCCTL_MAX,
};
