/*
 * job.c - the result side of a job: what handlers call to report, and freeing.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "job.h"
#include "log.h"

void
job_fail(struct vmrqd_job *job, bool retryable, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    free(job->error);
    job->error = strdup(msg);
    job->outcome = retryable ? JOB_RETRY : JOB_FAILED;
}

void
job_put_back(struct vmrqd_job *job, const char *why)
{
    job_fail(job, true, "%s", why);
    job->outcome = JOB_UNREACHED;
}

void
job_fail_pg(struct vmrqd_job *job, PGconn *conn, const PGresult *res, const char *what)
{
    const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

    job_fail(job, true, "%s: %s", what, m ? m : PQerrorMessage(conn));
    if (PQstatus(conn) == CONNECTION_BAD)
        job->db_lost = true;
}

void
job_set_output(struct vmrqd_job *job, struct json_object *output)
{
    json_object_put(job->output);
    job->output = output;
}

void
job_follow_up(struct vmrqd_job *job, vmrq_request *req, bool chained)
{
    vmrq_request **grown = realloc(job->followups, (job->nfollowups + 1) * sizeof(*grown));
    bool *chain;

    if (grown)
        job->followups = grown;
    chain = grown ? realloc(job->chained, (job->nfollowups + 1) * sizeof(*chain)) : NULL;
    if (!chain) {
        vmrq_request_free(req);
        job_fail(job, false, "out of memory adding a follow-up");
        return;
    }
    job->chained = chain;
    job->chained[job->nfollowups] = chained && job->nfollowups > 0;
    job->followups[job->nfollowups++] = req;
}

PGconn *
job_db(struct vmrqd_job *job, struct vmrqd_worker *worker)
{
    if (worker->conn && PQstatus(worker->conn) == CONNECTION_OK)
        return worker->conn;
    if (worker->conn) {
        PQreset(worker->conn);
    } else {
        char name[32];
        snprintf(name, sizeof(name), "vmrqd worker %d", worker->index);
        worker->conn = ctl_open(worker->conninfo, name);
    }
    if (PQstatus(worker->conn) != CONNECTION_OK) {
        const char *m = PQerrorMessage(worker->conn);
        job_fail(job, true, "worker %d cannot reach the database: %.*s", worker->index,
                 (int)strcspn(m, "\n"), m);
        return NULL;
    }
    /* Workers write only caches of the hypervisor's state (domains.status) and housekeeping
     * deletes: a commit lost in a database crash is redone by the next refresh, so they need
     * not wait for the disk. Claims and completions, on the control connection, do. */
    PQclear(PQexecParams(worker->conn, "SET synchronous_commit = off", 0, NULL, NULL, NULL, NULL, 0));
    return worker->conn;
}

const char *
job_describe(const struct vmrqd_job *job, const char *where, char *buf, size_t size)
{
    char dom[24] = "-", uid[24] = "-";

    if (job->id_domain)
        snprintf(dom, sizeof(dom), "%d", job->id_domain);
    if (job->uid)
        snprintf(uid, sizeof(uid), "%d", job->uid);
    snprintf(buf, size, "request %lld (%s, domain %s, uid %s%s%s)", job->id, job->command, dom, uid,
             where ? ", " : "", where ? where : "");
    return buf;
}

void
job_log_outcome(const struct vmrqd_job *job, const char *where, long long backoff_ms)
{
    char who[192];

    if (log_get_level() < LOG_LEVEL_INFO)
        return; /* a drain runs a thousand of these per batch: format nothing that is dropped */
    job_describe(job, where, who, sizeof(who));
    if (job->outcome == JOB_DONE)
        log_info("%s: done in %.1f ms", who, job->took_us / 1000.0);
    else if (job->outcome == JOB_UNREACHED)
        log_info("%s: not run, back in the queue: %s", who, job->error);
    else if (job->outcome == JOB_RETRY && job->retry > 0)
        log_info("%s: failed in %.1f ms, retrying (%d left, backoff from %lld ms): %s", who,
                 job->took_us / 1000.0, job->retry - 1, backoff_ms, job->error);
    else
        log_info("%s: failed in %.1f ms: %s", who, job->took_us / 1000.0, job->error);
}

void
job_free(struct vmrqd_job *job)
{
    if (!job)
        return;
    free(job->command);
    free(job->dom.name);
    free(job->dom.uuid);
    free(job->dom.user);
    json_object_put(job->args);
    free(job->error);
    json_object_put(job->output);
    for (size_t i = 0; i < job->nfollowups; i++)
        vmrq_request_free(job->followups[i]);
    free(job->followups);
    free(job->chained);
    free(job);
}

void
job_free_list(struct vmrqd_job *list)
{
    while (list) {
        struct vmrqd_job *next = list->next;
        job_free(list);
        list = next;
    }
}

void
job_list_append(struct vmrqd_job **list, struct vmrqd_job *more)
{
    while (*list)
        list = &(*list)->next;
    *list = more;
}
