/*
 * domain.c - opening a domain, checking rights, keeping its status (see domain.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "domain.h"
#include "log.h"
#include "stmt.h"

static const struct stmt open_stmt = {
    STMT_DOMAIN_OPEN, "vmrq_domain_open",
    "SELECT d.id, d.name, coalesce(d.uuid::text, ''), coalesce(d.id_owner, 0),"
    "       coalesce(d.shutdown_timeout, -1), coalesce(n.enabled, true),"
    "       coalesce(u.name, ''), coalesce(u.is_admin OR u.is_operator, false), d.is_base"
    "  FROM domains d LEFT JOIN nodes n ON n.id = d.id_node"
    "       LEFT JOIN users u ON u.id = $3::int"
    " WHERE d.id = $1::int OR ($1 IS NULL AND d.name = $2)",
    3,
};

/* Runs a statement on the worker's connection; NULL (job failed, retryable) on error. */
static PGresult *
query(struct vmrqd_job *job, struct vmrqd_worker *w, const struct stmt *st, const char *const *params)
{
    PGconn *conn = job_db(job, w);
    PGresult *res;

    if (!conn)
        return NULL;
    res = stmt_exec(conn, st, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
        job_fail_pg(job, conn, res, "database");
        PQclear(res);
        return NULL;
    }
    return res;
}

/* The domain's row and the user's rights as the claim read them. */
static void
from_claim(const struct vmrqd_job *job, struct domain *d)
{
    d->id = job->id_domain;
    snprintf(d->name, sizeof(d->name), "%s", job->dom.name);
    snprintf(d->uuid, sizeof(d->uuid), "%s", job->dom.uuid);
    d->id_owner = job->dom.id_owner;
    d->shutdown_timeout = job->dom.shutdown_timeout;
    d->node_enabled = job->dom.node_enabled;
    snprintf(d->user, sizeof(d->user), "%s", job->dom.user);
    d->user_privileged = job->dom.user_privileged;
    d->is_base = job->dom.is_base;
}

/* The domain's row and the user's rights, read here: the job did not come from a claim that
 * read them (a request naming its domain by a name unknown at insert, or a test). */
static int
from_database(struct vmrqd_job *job, struct vmrqd_worker *w, struct domain *d)
{
    struct json_object *v;
    char idbuf[16] = "", uid[16];
    const char *params[3] = { NULL, NULL, uid };
    const char *label;
    PGresult *res;

    if (json_object_object_get_ex(job->args, "id_domain", &v)) {
        snprintf(idbuf, sizeof(idbuf), "%d", json_object_get_int(v));
        params[0] = idbuf;
        label = idbuf;
    } else {
        json_object_object_get_ex(job->args, "name", &v);
        params[1] = json_object_get_string(v);
        label = params[1];
    }
    snprintf(uid, sizeof(uid), "%d", job->uid);
    res = query(job, w, &open_stmt, params);
    if (!res)
        return -1;
    if (PQntuples(res) == 0) {
        PQclear(res);
        job_fail(job, false, "no domain '%s'", label);
        return -1;
    }
    d->id = atoi(PQgetvalue(res, 0, 0));
    snprintf(d->name, sizeof(d->name), "%s", PQgetvalue(res, 0, 1));
    snprintf(d->uuid, sizeof(d->uuid), "%s", PQgetvalue(res, 0, 2));
    d->id_owner = atoi(PQgetvalue(res, 0, 3));
    d->shutdown_timeout = atoi(PQgetvalue(res, 0, 4));
    d->node_enabled = PQgetvalue(res, 0, 5)[0] == 't';
    snprintf(d->user, sizeof(d->user), "%s", PQgetvalue(res, 0, 6));
    d->user_privileged = PQgetvalue(res, 0, 7)[0] == 't';
    d->is_base = PQgetvalue(res, 0, 8)[0] == 't';
    PQclear(res);
    return 0;
}

int
domain_open(struct vmrqd_job *job, struct vmrqd_worker *w, struct domain *d)
{
    double seen;

    memset(d, 0, sizeof(*d));
    if (job->dom.known)
        from_claim(job, d);
    else if (from_database(job, w, d) < 0)
        return -1;
    if (!w->drv) {
        job_put_back(job, "no hypervisor connection");
        return -1;
    }
    seen = clock_epoch();
    if (!(d->dom = driver_lookup(w->drv, d->name, d->uuid)) ||
        driver_info(w->drv, d->dom, &d->info) < 0) {
        if (driver_error_not_found()) {
            job_fail(job, false, "no domain '%s'", d->name);
            job->sync.id = d->id; /* written with the outcome, as domain_sync() would */
            job->sync.seen = seen;
            job->sync.status = "missing";
        } else if (driver_error_unreached()) {
            job_put_back(job, driver_error_message());
        } else {
            job_fail(job, driver_error_retryable(), "%s", driver_error_message());
        }
        domain_close(w, d);
        return -1;
    }
    return 0;
}

void
domain_close(struct vmrqd_worker *w, struct domain *d)
{
    if (d->dom)
        driver_dom_free(w->drv, d->dom);
    d->dom = NULL;
}

int
domain_authorize(struct vmrqd_job *job, const struct domain *d, const char *action)
{
    if (!d->user[0]) {
        job_fail(job, false, "no user %d", job->uid);
        return -1;
    }
    if (d->user_privileged || (d->id_owner && d->id_owner == job->uid))
        return 0;
    job_fail(job, false, "user %s is not allowed to %s %s", d->user, action, d->name);
    return -1;
}

int
domain_sync(struct vmrqd_job *job, struct vmrqd_worker *w, struct domain *d)
{
    double seen = clock_epoch(); /* before the read: an event that arrives during it is newer */

    if (driver_info(w->drv, d->dom, &d->info) < 0) {
        log_warnx("domain %s: %s", d->name, driver_error_message());
        return -1;
    }
    job->sync.id = d->id;
    job->sync.seen = seen;
    job->sync.status = dom_state_status(d->info.state, d->info.managed_save);
    snprintf(job->sync.uuid, sizeof(job->sync.uuid), "%s", d->info.uuid);
    return 0;
}
