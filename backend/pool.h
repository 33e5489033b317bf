/*
 * pool.h - the worker threads that run handlers.
 *
 * Why threads: handlers block (a libvirt call can take seconds), so they must not run on the
 * main loop; threads share the catalog, the handler table and one process's memory, start once,
 * and cost no fork per request. Each worker keeps its own database connection for the handlers
 * that need one. The main loop keeps the only control connection: claims and completions are
 * batched there, never per thread.
 */
#ifndef VMRQD_POOL_H
#define VMRQD_POOL_H

#include "job.h"

struct pool;

/* Starts n workers. `wake_fd` is written one byte whenever a job finishes (the main loop polls
 * its read end). `conninfo` is copied; `drv` (may be NULL) and `node` are borrowed and must
 * outlive the pool. NULL on failure (logged). Free with pool_free(). */
struct pool *pool_new(int n, const char *conninfo, int wake_fd, struct driver *drv, const char *node,
                      const char *storage_pool, bool display_password_always);
/* Hands a list of jobs (linked by `next`) to the workers in one hand-over: the queue is locked
 * once for the whole list, and the workers are signalled (one per job) after it is unlocked.
 * Ownership passes to the pool until pool_take_done(). */
void pool_submit(struct pool *pool, struct vmrqd_job *list);
/* The finished jobs since the last call, as a list (ownership to the caller); NULL if none. */
struct vmrqd_job *pool_take_done(struct pool *pool);
/* The most jobs of each class that run at once (at least 1: a job claimed runs); the queue
 * holds the others, in order. Until called, any job may start. */
void pool_set_limits(struct pool *pool, const int limit[VMRQ_CLASS_LAST]);
/* When a worker started `job` (now_ms()), 0 while it waits in the queue. `job` is one submitted
 * and not yet taken back with pool_take_done(). */
long long pool_started(struct pool *pool, const struct vmrqd_job *job);
/* The jobs no worker has started, taken off the queue as a list (ownership to the caller; NULL
 * if none): a stopping daemon gives them back rather than run them. */
struct vmrqd_job *pool_take_queued(struct pool *pool);
/* Stops the workers once their current handler returns and frees everything; queued jobs that
 * never started are freed too (their requests stay claimed; recovery takes them back). */
void pool_free(struct pool *pool);

#endif /* VMRQD_POOL_H */
