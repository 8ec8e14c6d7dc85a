/* fuzz-secgroups.c - the decoder of the security-group store file
 * (<state_dir>/secgroups.json). Anything accepted must be fully valid (names,
 * ids, rules that pass secrule_check, nothing repeated) and must survive a
 * round trip through the API/store JSON form unchanged. */
#include "secgroups.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct secgroup *list = NULL;
        size_t n = 0, seen = 0;
        char why[256];

        if (size > 256 * 1024)
                return 0;
        if (secgroups_parse_stored((const char *)data, size, &list, &n, why, sizeof(why)) < 0) {
                if (list || n)
                        __builtin_trap(); /* refused input leaves the outputs alone */
                return 0;
        }
        for (const struct secgroup *g = list; g; g = g->next, seen++) {
                if (!uuid_is_valid(g->id) || !secgroup_name_is_valid(g->name) || g->n_rules > SECGROUP_MAX_RULES)
                        __builtin_trap();
                for (size_t i = 0; i < g->n_rules; i++) {
                        struct json_object *o = secrule_to_json(&g->rules[i]);
                        struct secrule back;
                        char err[160];
                        if (secrule_check(&g->rules[i], err, sizeof(err)) < 0 || !uuid_is_valid(g->rules[i].uuid) ||
                            secrule_from_json(o, &back, err, sizeof(err)) < 0 || !secrule_equal(&back, &g->rules[i]) ||
                            !streq(back.uuid, g->rules[i].uuid))
                                __builtin_trap();
                        json_object_put(o);
                        for (size_t k = 0; k < i; k++)
                                if (secrule_equal(&g->rules[k], &g->rules[i]))
                                        __builtin_trap();
                }
        }
        if (seen != n)
                __builtin_trap();
        secgroups_list_free(list);
        return 0;
}
