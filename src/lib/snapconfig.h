/* snapconfig.h - `snap set nova-hypervisor key=value` to the core's config
 * file. The configure hook hands the whole snap configuration
 * (`snapctl get -d`, a JSON object) to `nova-hypervisor config-check`, which
 * uses this: snap keys are the config keys with '-' for '_'
 * (libvirt-uri = libvirt_uri), validated by config.c's one table. */
#ifndef NOVA_SNAPCONFIG_H
#define NOVA_SNAPCONFIG_H

#include "config.h"

#define SNAPCONFIG_MAX_JSON (64 * 1024) /* bytes of `snapctl get -d` output we accept */

/* Decode the JSON object (at most SNAPCONFIG_MAX_JSON bytes), check every key
 * and value with config_parse(), and on success return the config file text
 * (malloc'd, one "key = value" line per set key, in sorted key order) in
 * *ret_text. Keys the snap fixes (state-dir, run-dir, api-socket, module-dir,
 * plugs), unknown keys, nested objects, arrays, non-integer numbers and
 * values spanning lines are refused. On failure err names the snap key, e.g.
 * "module-timeout-ms: must be between 100 and 600000", and *ret_text is
 * untouched. 0, -EINVAL, -EFBIG or -ENOMEM. */
int snapconfig_to_config(const char *json, size_t len, char **ret_text, char *err, size_t errlen);

/* An empty string is an unset key: real snapd refuses `snapctl get -d` without
 * keys, so the hook names every key (`config-check --keys`) and snapd answers
 * "" for those not set. */

/* Snap key for a config key ("libvirt_uri" -> "libvirt-uri") into buf. 0 or -ENAMETOOLONG. */
int snapconfig_snap_key(const char *config_key, char *buf, size_t size);

#endif
