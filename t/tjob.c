/*
 * tjob.c - one request's handler run inside a test (see tjob.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "claim.h"
#include "dispatch.h"
#include "tjob.h"
#include "tutil.h"

struct vmrqd_job *
t_job_run_unwritten(struct vmrqd_worker *worker, int daemon_id, const char *command, const char *json)
{
    const char *params[2] = { command, json };
    long long id = t_sql_int(t_db, "SELECT vmrq_request($1, $2::jsonb)", 2, params);
    char idbuf[24], dbuf[16];
    const char *claim[2] = { idbuf, dbuf };
    struct vmrqd_job *job = calloc(1, sizeof(*job));
    PGresult *res;

    ck_assert_ptr_nonnull(job);
    snprintf(idbuf, sizeof(idbuf), "%lld", id);
    snprintf(dbuf, sizeof(dbuf), "%d", daemon_id);
    res = t_sql(t_db, "UPDATE requests SET status = 'working', id_daemon = $2::int, started_at = now(),"
                      "       attempts = attempts + 1"
                      " WHERE id = $1::bigint RETURNING args::text, coalesce(uid, 0), coalesce(id_domain, 0)",
                2, claim);
    ck_assert_int_eq(PQntuples(res), 1);
    job->id = id;
    job->command = strdup(command);
    job->args = json_tokener_parse(PQgetvalue(res, 0, 0));
    job->uid = atoi(PQgetvalue(res, 0, 1));
    job->id_domain = atoi(PQgetvalue(res, 0, 2));
    PQclear(res);
    if (dispatch_prepare(job) == 0)
        dispatch_run(job, worker);
    return job;
}

long long
t_job_run(struct vmrqd_worker *worker, int daemon_id, const char *command, const char *json)
{
    struct vmrqd_job *job = t_job_run_unwritten(worker, daemon_id, command, json);
    long long id = job->id;

    ck_assert_int_eq(claim_complete(t_db, daemon_id, job, 1000, NULL), 0);
    job_free(job);
    return id;
}

const char *
t_hv_status(struct driver *drv, const char *name)
{
    struct driver_dom *dom = driver_lookup(drv, name, NULL);
    struct dom_info info;

    ck_assert_msg(dom && driver_info(drv, dom, &info) == 0, "%s", driver_error_message());
    driver_dom_free(drv, dom);
    return dom_state_status(info.state, info.managed_save);
}
