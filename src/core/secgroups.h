/* secgroups.h - the security-group store: named lists of rules (OpenStack
 * semantics, see secrule.h) that instance ports reference by id. Kept in one
 * JSON file, <state_dir>/secgroups.json, written atomically on every change
 * next to the instance store. A store without the file starts with the group
 * "default" (allow all egress, IPv4 and IPv6; ingress denied), as neutron's.
 *
 * Every change is made on a copy, written, then made visible: a failed write
 * changes nothing. */
#ifndef NOVA_SECGROUPS_H
#define NOVA_SECGROUPS_H

#include "secrule.h"

#include <json-c/json.h>

#define SECGROUPS_MAX 256
#define SECGROUP_NAME_MAX 63
#define SECGROUP_DESC_MAX 255
#define SECGROUP_DEFAULT "default"

struct secgroup {
        struct secgroup *next;
        char id[UUID_STR_LEN + 1];
        char name[SECGROUP_NAME_MAX + 1];
        char description[SECGROUP_DESC_MAX + 1];
        struct secrule rules[SECGROUP_MAX_RULES];
        size_t n_rules;
};

/* The store: one per core. */
struct secgroup_store;

/* Load <state_dir>/secgroups.json, or create it with the default group.
 * A file that does not parse is an error (-EBADMSG, reason in why): the
 * daemon refuses to start rather than lose the operator's rules. 0 and *ret. */
int secgroups_load(const char *state_dir, struct secgroup_store **ret, char *why, size_t whylen);
/* NULL accepted. Returns NULL. */
struct secgroup_store *secgroups_free(struct secgroup_store *store);

struct secgroup *secgroups_first(const struct secgroup_store *store);
size_t secgroups_count(const struct secgroup_store *store);
/* By id, else by name. NULL when neither matches (or ref is NULL). */
struct secgroup *secgroup_find(const struct secgroup_store *store, const char *ref);
/* Resolver for instance_parse_boot_request() (store: a struct secgroup_store):
 * the id of a group named or identified by ref. 0 or -ENOENT. */
int secgroup_resolve(const void *store, const char *ref, char ret_id[UUID_STR_LEN + 1]);

/* Name syntax: 1..63 of A-Z a-z 0-9 . _ - , not starting with . or -, and not a UUID. */
bool secgroup_name_is_valid(const char *name);

/* Create a group with neutron's two default egress rules. 0, -EINVAL (bad
 * name), -EEXIST (name taken), -ENOSPC, or the write error. */
int secgroup_create(struct secgroup_store *store, const char *name, const char *description, struct secgroup **ret);
/* Delete. -EPERM for the default group; the caller checks references. */
int secgroup_delete(struct secgroup_store *store, struct secgroup *sg);
/* Add a rule (checked already). Its uuid is generated unless set.
 * -EEXIST for a rule equal to one the group has (its id in ret_dup_id),
 * -ENOSPC beyond SECGROUP_MAX_RULES, or the write error. *ret (may be NULL)
 * is the stored rule. */
int secgroup_rule_add(struct secgroup_store *store, struct secgroup *sg, const struct secrule *rule, char ret_dup_id[UUID_STR_LEN + 1],
                      const struct secrule **ret);
/* The group holding rule rule_id (and its index), or NULL. */
struct secgroup *secgroup_find_rule(const struct secgroup_store *store, const char *rule_id, size_t *ret_index);
/* Remove the rule at index. 0 or the write error (then nothing changed). */
int secgroup_rule_delete(struct secgroup_store *store, struct secgroup *sg, size_t index);

/* Would sg with rule r added / removed at index be: used to build the
 * request a change sends before it is stored. ret gets a full copy. */
void secgroup_with_rule(const struct secgroup *sg, const struct secrule *add, size_t remove_index,
                        struct secgroup *ret);

/* API view: {id, name, description, rules: [...]}. */
struct json_object *secgroup_to_json(const struct secgroup *sg);

/* Decoder of the stored file (fuzzed). On success *ret_list is a new list
 * (free with secgroups_list_free) and *ret_n its length. */
int secgroups_parse_stored(const char *text, size_t len, struct secgroup **ret_list, size_t *ret_n, char *why,
                           size_t whylen);
void secgroups_list_free(struct secgroup *list);

#endif
