/*
 * lanes.h - helper lanes: threads with a database connection of their own that drain a backlog
 * of inline requests (handlers that never block: ping_backend) in parallel with the main loop.
 *
 * Why: a claim of 1,000 rows and the write of their outcomes keep one PostgreSQL backend busy;
 * on a machine with more cores, a backlog drains faster on several backends at once. The main
 * loop still claims on every NOTIFY (the latency path); when its batch comes back full it wakes
 * the lanes, which claim and complete batches until none is full. Claims use FOR UPDATE SKIP
 * LOCKED like every claim, so a request still runs exactly once.
 */
#ifndef VMRQD_LANES_H
#define VMRQD_LANES_H

#include "config.h"
#include "job.h"

struct lanes;

/* Starts n lanes (0: none, lanes_wake() then does nothing) on the database `conninfo` (copied),
 * serving `node` (borrowed); `loop_worker` is the inline handlers' context (borrowed; inline
 * handlers use none of it). NULL on failure (logged). */
struct lanes *lanes_new(int n, const char *conninfo, const char *node, struct vmrqd_worker *loop_worker);
/* There is a backlog: each idle lane starts claiming for daemon `daemon`. `cfg`'s batch size and
 * backoff are read now. */
void lanes_wake(struct lanes *lanes, const struct vmrqd_config *cfg, int daemon);
/* Stops the lanes once their current batch is written, and frees them. */
void lanes_free(struct lanes *lanes);

#endif /* VMRQD_LANES_H */
