/* migrate-xml.h - the text work of a live migration's destination XML, kept pure
 * (no libvirt call) so that it is unit-tested and fuzzed.
 *
 * The destination XML is the source domain's migratable XML with every path of
 * ours moved from the source's pool directory to the destination's: the volume
 * names are derived from UUIDs on both hosts (libvirt.c), only the directory differs. */
#ifndef NOVA_MIGRATE_XML_H
#define NOVA_MIGRATE_XML_H

#include <stddef.h>

#define MIGRATE_XML_MAX (1u << 20)   /* a domain XML larger than this is refused */
#define MIGRATE_DIR_MAX 256          /* a pool directory, with its terminating NUL */

/* The target directory of a dir pool's XML (<pool type='dir'> ... <target><path>DIR</path>):
 * 0 and ret (absolute, no "..", no quote or '<' '&'; at most MIGRATE_DIR_MAX - 1 bytes), or
 * -EINVAL when the XML is not a dir pool's or its path is not one we can use. */
int migrate_pool_dir_from_xml(const char *xml, char ret[MIGRATE_DIR_MAX]);

/* xml with every attribute value that starts with "SRC_DIR/" rewritten to start with
 * "DST_DIR/" (values quoted with ' as libvirt writes them, or "), into a new string
 * *ret (the caller frees it). *ret_count: how many were rewritten. 0, -EINVAL (a
 * directory that is not absolute or holds a quote, '<' or '&'; xml larger than
 * MIGRATE_XML_MAX; SRC_DIR still found anywhere in the result), -ENOMEM. */
int migrate_rewrite_dirs(const char *xml, const char *src_dir, const char *dst_dir, char **ret, size_t *ret_count);

#endif
