/*
 * handlers.c - the commands that need no hypervisor: ping_backend and cleanup. Those that act
 * on virtual machines are in handlers_domain.c.
 */
#include <stdio.h>
#include <stdlib.h>

#include "handlers.h"

void
handle_ping_backend(struct vmrqd_job *job, struct vmrqd_worker *worker)
{
    (void)job;
    (void)worker;
}

/* Rows deleted per statement: keeps each transaction, and its locks, short. */
#define CLEANUP_BATCH "10000"

/* Runs a batch deleting function ($1 age in ms, $2 batch: sql/functions/history.sql) until a
 * batch comes back short; returns the rows deleted, or -1 with the job failed. */
static long long
delete_batches(struct vmrqd_job *job, PGconn *conn, const char *sql, const char *const *params)
{
    long long total = 0, n;

    do {
        PGresult *res = PQexecParams(conn, sql, 2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            job_fail_pg(job, conn, res, "cleanup");
            PQclear(res);
            return -1;
        }
        n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        total += n;
        PQclear(res);
    } while (n == atoll(CLEANUP_BATCH));
    return total;
}

void
handle_cleanup(struct vmrqd_job *job, struct vmrqd_worker *worker)
{
    struct json_object *older, *out;
    long long older_ms = job->retention_ms, deleted, events;
    char ms[32];
    const char *params[2] = { ms, CLEANUP_BATCH };
    PGconn *conn;

    if (json_object_object_get_ex(job->args, "older_than", &older))
        older_ms = json_object_get_int64(older) * 1000;
    snprintf(ms, sizeof(ms), "%lld", older_ms);
    if (!(conn = job_db(job, worker)))
        return;
    deleted = delete_batches(job, conn, "SELECT vmrq_forget_requests($1::bigint, $2::int)", params);
    if (deleted < 0)
        return;
    /* Domain events age the same way (they are appended in time order: oldest ids first). */
    events = delete_batches(job, conn, "SELECT vmrq_forget_events($1::bigint, $2::int)", params);
    if (events < 0)
        return;
    out = json_object_new_object();
    json_object_object_add(out, "deleted", json_object_new_int64(deleted));
    json_object_object_add(out, "events_deleted", json_object_new_int64(events));
    job_set_output(job, out);
}
