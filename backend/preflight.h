/*
 * preflight.h - what `vmrqd -n` checks before a start: the pidfile, the database, its schema,
 * the node, the hypervisor.
 */
#ifndef VMRQD_PREFLIGHT_H
#define VMRQD_PREFLIGHT_H

#include <stddef.h>

#include "config.h"

/* Checks, in this order, what starting with `cfg` needs: `pidfile` (NULL: none) can be locked
 * and written, the database answers, its schema is at the version vmrqd needs, the node is in
 * table nodes, libvirt_uri opens. 0 with a one-line summary in msg; -1 with the first problem
 * in msg ("database: cannot connect: ..."). Nothing is left open or allocated. */
int preflight(const struct vmrqd_config *cfg, const char *pidfile, char *msg, size_t len);

#endif /* VMRQD_PREFLIGHT_H */
