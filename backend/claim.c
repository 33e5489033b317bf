/*
 * claim.c - the queue's statements as vmrqd runs them (see claim.h). Each is a call of one SQL
 * function of sql/functions/transitions.sql, the request state machine: the claim is
 * vmrq_claim() (which says what it guarantees and why its plan holds), then the completions,
 * give-backs and dependencies, each the transition of its name (recovery rides on the daemon's
 * beat: ctl.c). What stays here
 * is what vmrqd knows and the database does not: which commands each claim lane takes, the
 * free slots of each class, the tags of its claims, the outcome of each job.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "claim.h"
#include "dispatch.h"
#include "log.h"
#include "stmt.h"

/* The claim, in one statement: inline requests ($3: their commands; $4 at most), then the
 * worker requests of each class ($5, $7, $9: the class's other commands; $6, $8, $10 at most),
 * for daemon $1 of node $2, tagged $11. Each row comes with its domain's row and its user's
 * rights, which a domain command's handler reads first. Prepared once per connection: planning
 * the call took about 2 ms, more than a claim (make bench, pickup latency). */
static const char claim_sql[] =
    "SELECT id, command, args, id_domain, uid, retry, attempts, inline, class, dom_name, dom_uuid,"
    "       dom_owner, dom_shutdown_timeout, node_enabled, user_name, user_privileged, dom_is_base"
    "  FROM vmrq_claim($1::int, $2, $3::text[], $4::int, $5::text[], $6::int, $7::text[], $8::int,"
    "                  $9::text[], $10::int, $11::bigint)";

static void
log_pg_failure(PGconn *conn, PGresult *res, const char *what)
{
    const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *e = m ? m : PQerrorMessage(conn);

    log_warnx("%s: %.*s", what, (int)strcspn(e, "\n"), e);
}

static const char next_due_sql[] =
    "SELECT ceil(extract(epoch FROM min(at_time) - clock_timestamp()) * 1000)::bigint"
    "  FROM requests WHERE status = 'requested' AND at_time > clock_timestamp()";

static const struct stmt claim_stmt = { STMT_CLAIM, "vmrq_claim", claim_sql, 11 };

/* The commands each claim lane takes, as PostgreSQL array literals of catalog names (built once,
 * from the catalog and the handler table, before any thread starts). */
static const char *
lane_commands(int lane)
{
    static char lists[CLAIM_LANES][512];

    if (!lists[0][0]) {
        for (int l = 0; l < CLAIM_LANES; l++) {
            size_t used = (size_t)snprintf(lists[l], sizeof(lists[l]), "{");
            for (size_t i = 0; i < vmrq_command_count(); i++) {
                const vmrq_command *c = vmrq_command_at(i);
                bool in = dispatch_runs_inline(c->name) ? l == CLAIM_INLINE
                                                        : l == CLAIM_IMPORTANT + (int)c->cls;
                if (in && used < sizeof(lists[l]))
                    used += (size_t)snprintf(lists[l] + used, sizeof(lists[l]) - used, "%s%s",
                                             used > 1 ? "," : "", c->name);
            }
            if (used < sizeof(lists[l]))
                snprintf(lists[l] + used, sizeof(lists[l]) - used, "}");
        }
    }
    return lists[lane];
}
static const struct stmt next_due_stmt = { STMT_NEXT_DUE, "vmrq_next_due", next_due_sql, 0 };

/* The tags of this process's claims (the loop's and the lanes'), unique within its daemon. */
static long long claim_tags;

int
claim_jobs(PGconn *conn, int daemon, const char *node, const int limit[CLAIM_LANES], struct vmrqd_job **out,
           long long *lost)
{
    char d[16], l[CLAIM_LANES][16], t[24];
    const char *params[11] = { d, node, lane_commands(CLAIM_INLINE), l[0], lane_commands(CLAIM_IMPORTANT), l[1],
                               lane_commands(CLAIM_SECONDARY), l[2], lane_commands(CLAIM_LONG), l[3], t };
    long long tag = __atomic_add_fetch(&claim_tags, 1, __ATOMIC_RELAXED);
    struct vmrqd_job *head = NULL, **tail = &head;
    PGresult *res;
    int n;

    snprintf(d, sizeof(d), "%d", daemon);
    snprintf(t, sizeof(t), "%lld", tag);
    for (int i = 0; i < CLAIM_LANES; i++)
        snprintf(l[i], sizeof(l[i]), "%d", limit[i] > 0 ? limit[i] : 0);
    res = stmt_exec(conn, &claim_stmt, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_pg_failure(conn, res, "claim");
        if (lost && PQstatus(conn) != CONNECTION_OK)
            *lost = tag; /* it may have committed before the connection broke */
        PQclear(res);
        return -1;
    }
    n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        struct vmrqd_job *job = calloc(1, sizeof(*job));
        const char *cls;

        if (!job || !(job->command = strdup(PQgetvalue(res, i, 1)))) {
            free(job);
            log_warnx("claim: out of memory; request %s stays claimed until recovery", PQgetvalue(res, i, 0));
            continue;
        }
        job->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        job->daemon = daemon;
        job->args = json_tokener_parse(PQgetvalue(res, i, 2));
        job->id_domain = PQgetisnull(res, i, 3) ? 0 : atoi(PQgetvalue(res, i, 3));
        job->uid = PQgetisnull(res, i, 4) ? 0 : atoi(PQgetvalue(res, i, 4));
        job->retry = atoi(PQgetvalue(res, i, 5));
        job->attempts = atoi(PQgetvalue(res, i, 6));
        job->inline_run = PQgetvalue(res, i, 7)[0] == 't';
        cls = PQgetvalue(res, i, 8);
        job->cls = strcmp(cls, "secondary") == 0 ? VMRQ_CLASS_SECONDARY
                   : strcmp(cls, "long") == 0    ? VMRQ_CLASS_LONG
                                                 : VMRQ_CLASS_IMPORTANT;
        if (job->id_domain && !PQgetisnull(res, i, 9) && (job->dom.name = strdup(PQgetvalue(res, i, 9))) &&
            (job->dom.uuid = strdup(PQgetvalue(res, i, 10))) && (job->dom.user = strdup(PQgetvalue(res, i, 14)))) {
            job->dom.id_owner = atoi(PQgetvalue(res, i, 11));
            job->dom.shutdown_timeout = atoi(PQgetvalue(res, i, 12));
            job->dom.node_enabled = PQgetvalue(res, i, 13)[0] == 't';
            job->dom.user_privileged = PQgetvalue(res, i, 15)[0] == 't';
            job->dom.is_base = PQgetvalue(res, i, 16)[0] == 't';
            job->dom.known = true; /* else (no row, out of memory) the handler reads them itself */
        }
        *tail = job;
        tail = &job->next;
    }
    PQclear(res);
    *out = head;
    return n;
}

/* The completions (sql/functions/transitions.sql): $1 the requests, $2 this daemon. Each row
 * written comes back with whether any request waits on a dependency (evaluated once per
 * statement): if none does, the loop need not look for waiting requests to move on after
 * writing outcomes, a statement less per turn. A request that starts waiting later comes with
 * its notification, which calls for that look anyway. And with whether its domain has another
 * request pending, which its end may have made runnable: without one, and with no class full at
 * the last claim, the loop need not claim again (a request that arrived since has woken it). */

/* The common case, requests done without output: an array of ids, no JSON to unpack per row. */
static const struct stmt complete_done_stmt = {
    STMT_COMPLETE_DONE, "vmrq_complete_done",
    "SELECT id, waiting, queued FROM vmrq_complete_done($2::int, $1::bigint[])", 2,
};

/* Outcomes as JSON rows (completion_row()), with the status of the domains the jobs acted on as
 * the hypervisor reported it after the operation (domain_sync()), written by the same statement. */
static const struct stmt complete_stmt = {
    STMT_COMPLETE, "vmrq_complete",
    "SELECT id, waiting, queued, deferred FROM vmrq_complete($2::int, $1::jsonb)", 2,
};

/* A request the hypervisor's absence put back is due again at once, so that it keeps its place
 * before its domain's later requests: vmrqd claims no work for the hypervisor until it is back
 * (daemon.c), and another vmrqd of the node may have it. */
#define UNREACHED_BACKOFF_MS 0

/* The status a job's outcome writes, and the backoff of a retry. */
static const char *
final_status(const struct vmrqd_job *job, long long backoff_ms, long long *wait_ms)
{
    long long wait = backoff_ms;

    if (job->outcome == JOB_DONE)
        return "done";
    if (job->outcome == JOB_UNREACHED) {
        *wait_ms = UNREACHED_BACKOFF_MS;
        return "requested";
    }
    if (job->outcome == JOB_RETRY && job->retry > 0) {
        for (int i = 1; i < job->attempts && wait < 3600000; i++)
            wait *= 2;
        *wait_ms = wait < 3600000 ? wait : 3600000;
        return "requested";
    }
    return "failed";
}

static struct json_object *
completion_row(const struct vmrqd_job *job, long long backoff_ms)
{
    struct json_object *row = json_object_new_object();
    long long wait_ms = 0;

    json_object_object_add(row, "id", json_object_new_int64(job->id));
    json_object_object_add(row, "status", json_object_new_string(final_status(job, backoff_ms, &wait_ms)));
    json_object_object_add(row, "error", job->outcome == JOB_DONE || !job->error ? NULL
                                         : json_object_new_string(job->error));
    json_object_object_add(row, "output", job->output ? json_object_get(job->output) : NULL);
    json_object_object_add(row, "backoff_ms", json_object_new_int64(wait_ms));
    if (job->outcome == JOB_UNREACHED)
        json_object_object_add(row, "unreached", json_object_new_boolean(true));
    if (job->sync.id) {
        json_object_object_add(row, "dom_id", json_object_new_int(job->sync.id));
        json_object_object_add(row, "dom_status", json_object_new_string(job->sync.status));
        json_object_object_add(row, "dom_uuid", job->sync.uuid[0] ? json_object_new_string(job->sync.uuid) : NULL);
        json_object_object_add(row, "dom_seen", json_object_new_double(job->sync.seen));
    }
    return row;
}

/* A PostgreSQL array literal of request ids, "{1,2,...}", built as they come (text owned). */
struct id_array {
    char *text;
    size_t len, cap, n;
};

/* Appends `id`; -1 (nothing appended) if out of memory. */
static int
id_array_add(struct id_array *a, long long id)
{
    if (a->len + 24 >= a->cap) { /* room for the id, its comma and the closing brace */
        size_t cap = a->cap ? a->cap * 2 : 4096;
        char *grown = realloc(a->text, cap);

        if (!grown)
            return -1;
        a->text = grown;
        a->cap = cap;
    }
    a->len += (size_t)snprintf(a->text + a->len, a->cap - a->len, "%c%lld", a->n ? ',' : '{', id);
    a->n++;
    return 0;
}

/* The literal, closed (n > 0); it lives in a->text. */
static const char *
id_array_close(struct id_array *a)
{
    snprintf(a->text + a->len, a->cap - a->len, "}");
    return a->text;
}

/* Marks deferred the job of `list` with id `id` (see vmrq_complete()), logging it the first time. */
static void
mark_deferred(struct vmrqd_job *list, long long id)
{
    for (struct vmrqd_job *j = list; j; j = j->next) {
        if (j->id != id)
            continue;
        j->deferred = true;
        if (!j->deferred_told) {
            char dom[128];
            if (j->dom.name && j->sync.id == j->id_domain)
                snprintf(dom, sizeof(dom), "%s (id %d)", j->dom.name, j->sync.id);
            else
                snprintf(dom, sizeof(dom), "id %d", j->sync.id);
            log_warnx("request %lld (%s): finished, but another session holds the row of domain %s:"
                      " its outcome is written once the row is free", j->id, j->command, dom);
        }
        j->deferred_told = true;
        return;
    }
}

/* Runs a completion statement whose first parameter is `what` (JSON rows, or an id array) for
 * `want` requests of `list`; marks those it left for later (a fourth column, vmrq_complete());
 * logs those this daemon no longer held; sets the fields of *more the rows call for. -1 on
 * error. */
static int
write_completion(PGconn *conn, int daemon, const struct stmt *st, const char *what, size_t want, struct vmrqd_job *list,
                 struct claim_more *more)
{
    char d[16];
    const char *params[2] = { what, d };
    PGresult *res;

    snprintf(d, sizeof(d), "%d", daemon);
    res = stmt_exec(conn, st, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_pg_failure(conn, res, "complete");
        PQclear(res);
        return -1;
    }
    if (PQntuples(res) > 0 && PQgetvalue(res, 0, 1)[0] == 't')
        more->waiting = true;
    for (int i = 0; i < PQntuples(res); i++) {
        if (PQnfields(res) > 3 && PQgetvalue(res, i, 3)[0] == 't')
            mark_deferred(list, strtoll(PQgetvalue(res, i, 0), NULL, 10));
        else if (PQgetvalue(res, i, 2)[0] == 't')
            more->queued = true;
    }
    if ((size_t)PQntuples(res) != want)
        log_warnx("complete: %zu of %zu finished requests were no longer held by this vmrqd"
                  " (taken back by recovery or cancelled by hand); their outcome is dropped",
                  want - (size_t)PQntuples(res), want);
    PQclear(res);
    return 0;
}

/* Writes JSON completion rows (see completion_row()) of the jobs of `list`. */
static int
write_rows(PGconn *conn, int daemon, struct json_object *rows, struct vmrqd_job *list, struct claim_more *more)
{
    return write_completion(conn, daemon, &complete_stmt,
                            json_object_to_json_string_ext(rows, JSON_C_TO_STRING_PLAIN),
                            json_object_array_length(rows), list, more);
}

static int
run_simple(PGconn *conn, const char *sql)
{
    PGresult *res = PQexecParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

    if (!ok)
        log_pg_failure(conn, res, sql);
    PQclear(res);
    return ok ? 0 : -1;
}

int
claim_enqueue_nowait(PGconn *conn, vmrq_request *req)
{
    bool own = PQtransactionStatus(conn) == PQTRANS_IDLE;

    if (own && run_simple(conn, "BEGIN") < 0)
        return -1;
    if (run_simple(conn, "SET LOCAL lock_timeout = '100ms'") < 0 || vmrq_request_enqueue(conn, req) < 0) {
        if (own && PQstatus(conn) == CONNECTION_OK)
            run_simple(conn, "ROLLBACK");
        return -1;
    }
    /* not for the COMMIT: it waits for the notification queue's lock, another committer's */
    if (run_simple(conn, "SET LOCAL lock_timeout TO DEFAULT") < 0 || (own && run_simple(conn, "COMMIT") < 0))
        return -1;
    return 0;
}

/* One job with follow-ups: enqueue them and complete it in one transaction. A follow-up the
 * catalog refuses is a handler bug: the job fails naming it, and nothing is enqueued. One whose
 * twin another session has enqueued and not committed is left for later, as a held domain row
 * is (deferred): neither waits for that session. */
static int
complete_with_followups(PGconn *conn, int daemon, struct vmrqd_job *job, long long backoff_ms, struct claim_more *more)
{
    struct json_object *rows = json_object_new_array();
    int ret = -1;

    if (run_simple(conn, "BEGIN") < 0)
        goto cleanup;
    for (size_t i = 0; i < job->nfollowups; i++) {
        if (job->chained[i] &&
            vmrq_request_set_int(job->followups[i], "after_request", vmrq_request_id(job->followups[i - 1])) < 0)
            goto cleanup;
        if (claim_enqueue_nowait(conn, job->followups[i]) < 0) {
            char why[1024];
            snprintf(why, sizeof(why), "%s", vmrq_error_message());
            if (PQstatus(conn) != CONNECTION_OK || run_simple(conn, "ROLLBACK") < 0)
                goto cleanup;
            if (vmrq_error_code() == VMRQ_ERR_TIMEOUT) {
                if (!job->deferred_told)
                    log_warnx("request %lld (%s): finished, but another session has enqueued the same %s"
                              " and not committed yet: its outcome is written once it has", job->id,
                              job->command, vmrq_request_command(job->followups[i]));
                job->deferred = job->deferred_told = true;
                ret = 0;
                goto cleanup;
            }
            job_fail(job, false, "follow-up %s refused: %s", vmrq_request_command(job->followups[i]), why);
            for (size_t k = 0; k < job->nfollowups; k++)
                vmrq_request_free(job->followups[k]);
            job->nfollowups = 0;
            json_object_array_add(rows, completion_row(job, backoff_ms));
            ret = write_rows(conn, daemon, rows, job, more);
            goto cleanup;
        }
    }
    json_object_array_add(rows, completion_row(job, backoff_ms));
    if (write_rows(conn, daemon, rows, job, more) < 0) {
        run_simple(conn, "ROLLBACK");
        goto cleanup;
    }
    /* left for later: its follow-ups are enqueued with it, then (under the same uuids) */
    if ((ret = run_simple(conn, job->deferred ? "ROLLBACK" : "COMMIT")) < 0 || job->deferred)
        goto cleanup;
    for (size_t i = 0; i < job->nfollowups; i++)
        log_info("request %lld (%s) enqueued follow-up %lld (%s)", job->id, job->command,
                 vmrq_request_id(job->followups[i]), vmrq_request_command(job->followups[i]));

cleanup:
    json_object_put(rows);
    return ret;
}

int
claim_complete(PGconn *conn, int daemon, struct vmrqd_job *list, long long backoff_ms, struct claim_more *more)
{
    struct json_object *rows = json_object_new_array();
    struct id_array done = { 0 };
    struct claim_more ignored = { false, false }, *w = more ? more : &ignored;
    int ret = 0;

    for (struct vmrqd_job *j = list; j; j = j->next)
        j->deferred = false;
    for (struct vmrqd_job *j = list; j && ret == 0; j = j->next) {
        if (j->nfollowups > 0)
            ret = complete_with_followups(conn, daemon, j, backoff_ms, w);
        else if (!(j->outcome == JOB_DONE && !j->output && !j->sync.id) || id_array_add(&done, j->id) < 0)
            json_object_array_add(rows, completion_row(j, backoff_ms));
    }
    if (ret == 0 && done.n > 0)
        ret = write_completion(conn, daemon, &complete_done_stmt, id_array_close(&done), done.n, list, w);
    if (ret == 0 && json_object_array_length(rows) > 0)
        ret = write_rows(conn, daemon, rows, list, w);
    free(done.text);
    json_object_put(rows);
    return ret;
}

struct vmrqd_job *
claim_take_deferred(struct vmrqd_job **list)
{
    struct vmrqd_job *taken = NULL, **tail = &taken;

    for (struct vmrqd_job **p = list; *p;) {
        struct vmrqd_job *j = *p;
        if (!j->deferred) {
            p = &j->next;
            continue;
        }
        *p = j->next;
        j->next = NULL;
        *tail = j;
        tail = &j->next;
    }
    return taken;
}

/* The integer of a one-value prepared statement (`if_null` for NULL), or a negative value
 * (logged). */
static long long
query_int(PGconn *conn, const struct stmt *st, const char *const *params, long long if_null)
{
    PGresult *res = stmt_exec(conn, st, params);
    long long v;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        log_pg_failure(conn, res, st->sql);
        PQclear(res);
        return -2;
    }
    v = PQgetisnull(res, 0, 0) ? if_null : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

/* The stamp of a worker's handler start ($1 the daemon, $2 the request), on the worker's own
 * connection: prepared, as it runs once per request. */
static const struct stmt handler_started_stmt = {
    STMT_HANDLER_STARTED, "vmrq_handler_started", "SELECT vmrq_handler_started($1::int, $2::bigint)", 2,
};

int
claim_handler_started(struct vmrqd_job *job, struct vmrqd_worker *w)
{
    char d[16], id[24];
    const char *params[2] = { d, id };
    struct timespec pause = { 0, 100 * 1000000L };
    int ret = -1;

    snprintf(d, sizeof(d), "%d", job->daemon);
    snprintf(id, sizeof(id), "%lld", job->id);
    /* A database that restarts is back within seconds: wait for it (100 ms doubling to 1 s, 10 s
     * in all) rather than fail a request that has not even started. */
    for (long long waited = 0;; waited += pause.tv_sec * 1000 + pause.tv_nsec / 1000000) {
        PGconn *conn = job_db(job, w);
        PGresult *res = conn ? stmt_exec(conn, &handler_started_stmt, params) : NULL;

        if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
            if (PQgetvalue(res, 0, 0)[0] != 't') {
                job_fail(job, false, "taken back by recovery before it started: this vmrqd was silent longer"
                                     " than its lease");
            } else {
                free(job->error); /* a failure to connect of an earlier round */
                job->error = NULL;
                job->outcome = JOB_DONE;
                ret = 0;
            }
            PQclear(res);
            return ret;
        }
        if (conn && PQstatus(conn) == CONNECTION_OK) { /* an error, not an outage */
            job_fail_pg(job, conn, res, "cannot record that its handler starts");
            PQclear(res);
            return -1;
        }
        if (conn)
            job_fail_pg(job, conn, res, "cannot record that its handler starts");
        PQclear(res);
        if (waited >= 10000)
            return -1; /* failed, retryable: it never started */
        nanosleep(&pause, NULL);
        if (pause.tv_nsec < 500 * 1000000L)
            pause.tv_nsec *= 2;
        else
            pause = (struct timespec){ 1, 0 };
    }
}

/* Prepared: after every completion that leaves a request waiting. */
static const struct stmt resolve_stmt = {
    STMT_RESOLVE_WAITING, "vmrq_resolve_waiting", "SELECT vmrq_resolve_waiting()", 0,
};

int
claim_resolve_waiting(PGconn *conn)
{
    long long n = query_int(conn, &resolve_stmt, NULL, 0);

    return n < 0 ? -1 : (int)n;
}

/* Prepared like every statement of the loop: run only after an outage or at a stop. */
static const struct stmt release_lost_stmt = {
    STMT_RELEASE_LOST, "vmrq_release_claim", "SELECT vmrq_release_claim($1::int, $2::bigint)", 2,
};
static const struct stmt give_back_stmt = {
    STMT_GIVE_BACK, "vmrq_give_back",
    "SELECT vmrq_release($1::int, $2::bigint[], 'claimed ahead when vmrqd was asked to stop')", 2,
};

int
claim_release_lost(PGconn *conn, int daemon, long long *lost)
{
    char d[16], t[24];
    const char *params[2] = { d, t };
    long long n;

    if (!*lost)
        return 0;
    snprintf(d, sizeof(d), "%d", daemon);
    snprintf(t, sizeof(t), "%lld", *lost);
    if ((n = query_int(conn, &release_lost_stmt, params, 0)) < 0)
        return -1;
    if (n > 0)
        log_warnx("gave back %lld request%s claimed as the database connection broke (never run)", n,
                  n == 1 ? "" : "s");
    *lost = 0;
    return 0;
}

int
claim_give_back(PGconn *conn, int daemon, const struct vmrqd_job *list)
{
    struct id_array ids = { 0 };
    char d[16];
    const char *params[2] = { d, NULL };
    long long n = -1;

    for (const struct vmrqd_job *j = list; j; j = j->next)
        if (id_array_add(&ids, j->id) < 0) {
            log_warnx("giving back requests: out of memory");
            goto cleanup;
        }
    if (ids.n == 0)
        return 0;
    snprintf(d, sizeof(d), "%d", daemon);
    params[1] = id_array_close(&ids);
    n = query_int(conn, &give_back_stmt, params, 0);
    if (n > 0)
        log_info("gave back %lld request%s claimed ahead and not started", n, n == 1 ? "" : "s");
cleanup:
    free(ids.text);
    return n < 0 ? -1 : (int)n;
}

long long
claim_next_due(PGconn *conn)
{
    PGresult *res = stmt_exec(conn, &next_due_stmt, NULL);
    long long ms;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        log_pg_failure(conn, res, "next due");
        PQclear(res);
        return -2;
    }
    ms = PQgetisnull(res, 0, 0) ? -1 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return ms;
}
