/*
 * claim.h - vmrqd's statements on the queue: claiming, completing, resolving dependencies,
 * taking back the claims of dead daemons, and finding the next scheduled request. Each is one
 * round trip on the control connection, batched where it can be.
 */
#ifndef VMRQD_CLAIM_H
#define VMRQD_CLAIM_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "job.h"

/* The admission lanes of a claim: the inline requests, then the classes' worker requests. */
enum { CLAIM_INLINE, CLAIM_IMPORTANT, CLAIM_SECONDARY, CLAIM_LONG, CLAIM_LANES };

/* Claims, in one statement, up to limit[CLAIM_INLINE] runnable requests whose handlers run
 * inline (dispatch_inline_commands()) and up to limit[CLAIM_<class>] of each class's other
 * requests, for daemon `daemon` serving `node`. Returns them as a list in priority-then-age
 * order (*out, caller owns; each job's cls and inline_run set) and how many; -1 on error
 * (logged). Each claim carries a tag of its own; if the connection broke during the claim, it
 * may have committed unseen, and its tag is stored in *lost (if not NULL): the caller gives it
 * back with claim_release_lost() once connected again, before it claims anew. */
int claim_jobs(PGconn *conn, int daemon, const char *node, const int limit[CLAIM_LANES], struct vmrqd_job **out,
               long long *lost);

/* Gives back to the queue what claim *lost of daemon `daemon` took (SQL vmrq_release_claim()),
 * requests nobody here received, and clears *lost; 0 if there was none to give back (*lost 0).
 * Logs how many. -1 on error (logged; *lost kept, to try again once connected). */
int claim_release_lost(PGconn *conn, int daemon, long long *lost);

/* Gives back to the queue the requests of `list` (borrowed) that daemon `daemon` claimed and
 * never started (SQL vmrq_release()): requested again, the attempt not counted. Logs and returns
 * how many, -1 on error (logged). */
int claim_give_back(PGconn *conn, int daemon, const struct vmrqd_job *list);

/* What written outcomes say may now be runnable (claim_complete() sets a field, never clears it). */
struct claim_more {
    bool waiting; /* requests wait on a dependency: some may now be free to move on */
    bool queued;  /* a finished request's domain has another request pending: it may run now */
};

/* Records the outcome of the finished jobs of `list`: done, failed, or back to requested with a
 * backoff (`backoff_ms` times 2^(attempts-1), at most an hour) when a retryable failure has
 * retries left. Jobs with follow-ups are written one transaction each, follow-ups included;
 * the rest in one statement. Returns 0, or -1 if the database failed (nothing of the failed
 * statement is written; the caller keeps the list and tries again). Sets the fields of *more
 * (if not NULL) that the outcomes call for. */
int claim_complete(PGconn *conn, int daemon, struct vmrqd_job *list, long long backoff_ms, struct claim_more *more);

/* After claim_complete(): a job whose domain row another session held (past a short wait) is
 * not written, and marked `deferred` (logged once): it is still `working`, and the caller
 * completes it again later, so that beats and claims go on meanwhile (vmrq_complete()). Unlinks
 * those from *list and returns them, in order (NULL if none); the list's owner owns both. */
struct vmrqd_job *claim_take_deferred(struct vmrqd_job **list);

/* Enqueues `req` (the caller's) as vmrqd enqueues its own requests: in the caller's open
 * transaction on `conn`, or in one of its own if none is open, waiting at most 100 ms for a
 * lock. A no-duplicate twin another session has inserted and not committed would otherwise
 * hold vmrqd until that session ends (the insert must learn whether it commits): -1 then with
 * VMRQ_ERR_TIMEOUT, for the caller to try again later (the caller's transaction aborted, its
 * own rolled back). 0, or -1 as vmrq_request_enqueue(). */
int claim_enqueue_nowait(PGconn *conn, vmrq_request *req);

/* Stamps, on worker w's connection, that the handler of `job` (a worker's, not an inline one,
 * which its claim stamps) starts now (SQL vmrq_handler_started()): recovery then knows that
 * its vmrqd died running it, not merely holding it. 0 if the handler may run; -1 if not, the
 * job failed with why (the database did not answer: retryable; the request is no longer this
 * daemon's: its outcome will not be written). */
int claim_handler_started(struct vmrqd_job *job, struct vmrqd_worker *w);

/* Moves waiting requests whose parents have finished (SQL vmrq_resolve_waiting()); returns how
 * many moved, -1 on error. */
int claim_resolve_waiting(PGconn *conn);

/* Milliseconds until the earliest request scheduled in the future is due, -1 if none, -2 on
 * error. (Requests already due but blocked -- class full, domain busy -- become runnable when a
 * request finishes, which triggers a claim pass; they need no timer.) */
long long claim_next_due(PGconn *conn);

#endif /* VMRQD_CLAIM_H */
