/*
 * job.h - a claimed request on its way through vmrqd: what the claim read, what the handler
 * produced. Created by claim.c, run by a worker (pool.c) through dispatch.c, written back and
 * freed by the main loop.
 */
#ifndef VMRQD_JOB_H
#define VMRQD_JOB_H

#include <stdbool.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "vmrq.h"

/* JOB_UNREACHED: the hypervisor could not be reached (nothing was done), or it or the worker's
 * database connection went away during a rerunnable command; the request goes back to the queue,
 * neither retry nor attempt charged. */
enum job_outcome { JOB_DONE, JOB_FAILED, JOB_RETRY, JOB_UNREACHED };

struct vmrqd_handler;

struct vmrqd_job {
    /* from the claim */
    long long id;
    char *command;                 /* owned */
    const vmrq_command *cmd;       /* NULL if this build does not know the command */
    const struct vmrqd_handler *handler;
    struct json_object *args;      /* owned */
    int id_domain, uid;            /* 0 when NULL */
    int retry, attempts;
    int daemon;                    /* daemons.id of the vmrqd that claimed it */
    vmrq_class cls;                /* its class, as the claim admitted it */
    bool inline_run;               /* its handler runs on the main loop (or a lane) */
    struct job_domain {            /* its domain's row and its user's rights, read by the claim */
        bool known;                /* false: the handler reads them itself (domain_open) */
        char *name, *uuid, *user;  /* owned; uuid and user "" when unknown */
        int id_owner, shutdown_timeout;
        bool node_enabled, user_privileged, is_base;
    } dom;
    long long retention_ms;        /* config snapshot for the cleanup handler */
    long long started_ms;          /* now_ms() when a worker started it, 0 before; under the
                                    * pool's lock (pool_started()) */

    /* from the handler (job_fail, job_set_output, job_follow_up) */
    enum job_outcome outcome;
    char *error;                   /* owned */
    struct json_object *output;    /* owned */
    vmrq_request **followups;      /* owned, enqueued with the completion */
    bool *chained;                 /* followups[i] runs after followups[i-1] (after_request) */
    size_t nfollowups;
    long long took_us;
    bool db_lost;                  /* a statement of the handler lost the worker's connection
                                    * (job_fail_pg): an outage, not the request's fault */
    struct {                       /* domains.status to write with the completion (domain_sync) */
        int id;                    /* 0: nothing to write */
        const char *status;        /* static (dom_state_status) */
        char uuid[37];
        double seen;               /* when it was read (clock_epoch()): an event received later wins */
    } sync;
    bool deferred;                 /* its outcome not written: its domain's row held by another
                                    * session (claim_complete()); written again later */
    bool deferred_told;            /* and logged once */
    struct vmrqd_job *next;        /* list link (pool queues, completion batches) */
};

struct driver;

/* Context a handler runs in: the worker's own database connection (connected on first use by
 * job_db()), the hypervisor driver (shared, thread-safe; NULL if none) and the node served. */
struct vmrqd_worker {
    int index;
    PGconn *conn;
    const char *conninfo;          /* borrowed: the pool's */
    struct driver *drv;
    const char *node;
    const char *storage_pool;      /* borrowed: where bases' and clones' volumes go */
    bool display_password_always;  /* a fresh display password before every start, the
                                      loopback's too (display_password_always) */
};

/* Marks the job failed with a one-line reason; retryable failures go back to the queue while
 * the request has retries left. */
void job_fail(struct vmrqd_job *job, bool retryable, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The job did nothing, the hypervisor being out of reach (`why`, copied): see JOB_UNREACHED. */
void job_put_back(struct vmrqd_job *job, const char *why);
/* job_fail() with the message of a failed libpq result (or of `conn`), prefixed by `what`;
 * database failures are retryable, and one that lost the connection sets job->db_lost. */
void job_fail_pg(struct vmrqd_job *job, PGconn *conn, const PGresult *res, const char *what);
/* Sets the job's output (JSON object, ownership taken). */
void job_set_output(struct vmrqd_job *job, struct json_object *output);
/* Adds a follow-up request, enqueued in the same transaction as the job's completion
 * (ownership taken). With `chained`, it waits for the previous follow-up of this job to finish
 * (its after_request is set once that one has an id). */
void job_follow_up(struct vmrqd_job *job, vmrq_request *req, bool chained);
/* The worker's database connection, connecting or reconnecting as needed; NULL after job_fail. */
PGconn *job_db(struct vmrqd_job *job, struct vmrqd_worker *worker);
/* "request 42 (shutdown, domain 7, uid 1)" into buf, with ", lane 0" before the parenthesis
 * closes if `where` (borrowed) is not NULL; returns buf. */
const char *job_describe(const struct vmrqd_job *job, const char *where, char *buf, size_t size);
/* The one log line of a finished job: done, failed, or failed and retried (with `backoff_ms`,
 * the configured first backoff); `where` as for job_describe(). Formats nothing below info. */
void job_log_outcome(const struct vmrqd_job *job, const char *where, long long backoff_ms);
/* Frees a job and what it owns; NULL is fine. */
void job_free(struct vmrqd_job *job);
/* Frees every job of a list linked by `next` (job_free()); NULL is fine. */
void job_free_list(struct vmrqd_job *list);
/* Links the list `more` (NULL is fine) at the end of *list, which then owns it. */
void job_list_append(struct vmrqd_job **list, struct vmrqd_job *more);

#endif /* VMRQD_JOB_H */
