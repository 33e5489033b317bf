/*
 * queue.c - a client's operations on the queue: enqueue, fetch, wait, cancel.
 * Each is one parameterized statement (plus LISTEN/UNLISTEN for wait); the rules live in the
 * SQL functions vmrq_enqueue() and vmrq_cancel() so that every client shares them.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "jsonb.h"
#include "request.h"

int
vmrq_request_enqueue(PGconn *conn, vmrq_request *req)
{
    const char *params[3];
    PGresult *res;
    int st;

    if (vmrq_request_validate(req) < 0)
        return -1;
    params[0] = req->command;
    params[1] = vmrq_request_args_json(req);
    params[2] = req->uuid[0] ? req->uuid : NULL;
    res = vmrq_pg_exec(conn, req->command,
                      "SELECT id, uuid, created, status FROM vmrq_enqueue($1, $2::jsonb, $3::uuid)",
                      3, params, PGRES_TUPLES_OK);
    if (!res)
        return -1;
    req->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    snprintf(req->uuid, sizeof(req->uuid), "%s", PQgetvalue(res, 0, 1));
    req->is_new = PQgetvalue(res, 0, 2)[0] == 't';
    st = vmrq_status_from_name(PQgetvalue(res, 0, 3));
    req->status = st < 0 ? VMRQ_STATUS_REQUESTED : (vmrq_status)st;
    PQclear(res);
    return 0;
}

/* One statement for a whole batch. Rows that were not inserted (ON CONFLICT) are matched to the
 * request that holds them: the same uuid, else the pending twin with the same duplicate key,
 * inserted by this statement or before it. */
static const char batch_sql[] =
    "WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(k int, command text, args jsonb, uuid uuid)),"
    "     ins AS (INSERT INTO requests (command, args, uuid)"
    "             SELECT command, args, uuid FROM x ORDER BY k"
    "             ON CONFLICT DO NOTHING RETURNING id, uuid, status, dedupe_key),"
    "     keyed AS (SELECT x.*, vmrq_dedupe_key(x.command, x.args, 'nodup' = ANY (c.flags)) AS dkey"
    "                 FROM x JOIN commands c ON c.name = x.command)"
    " SELECT x.k, coalesce(i.id, u.id, di.id, dr.id), i.id IS NOT NULL,"
    "        coalesce(i.status, u.status, di.status, dr.status), coalesce(i.uuid, u.uuid, di.uuid, dr.uuid)"
    "   FROM keyed x"
    "   LEFT JOIN ins i ON i.uuid = x.uuid"
    "   LEFT JOIN requests u ON u.uuid = x.uuid"
    "   LEFT JOIN ins di ON i.id IS NULL AND u.id IS NULL AND di.dedupe_key = x.dkey"
    "   LEFT JOIN requests dr ON i.id IS NULL AND u.id IS NULL AND di.id IS NULL"
    "        AND dr.dedupe_key = x.dkey AND dr.status IN ('requested', 'waiting')"
    "  ORDER BY x.k";

int
vmrq_request_enqueue_batch(PGconn *conn, vmrq_request *const *reqs, size_t n)
{
    struct json_object *rows = json_object_new_array();
    const char *params[1];
    PGresult *res = NULL;
    int ret = -1, st;

    for (size_t i = 0; i < n; i++) {
        struct json_object *row = json_object_new_object();
        if (vmrq_request_validate(reqs[i]) < 0) {
            char why[1024];
            snprintf(why, sizeof(why), "%s", vmrq_error_message());
            vmrq_error_set(VMRQ_ERR_INVALID, "request %zu of %zu: %s", i + 1, n, why);
            json_object_put(row);
            goto cleanup;
        }
        json_object_object_add(row, "k", json_object_new_int64((int64_t)i));
        json_object_object_add(row, "command", json_object_new_string(reqs[i]->command));
        json_object_object_add(row, "args", json_object_get(reqs[i]->args));
        json_object_object_add(row, "uuid", json_object_new_string(reqs[i]->uuid));
        json_object_array_add(rows, row);
    }
    if (n == 0) {
        ret = 0;
        goto cleanup;
    }
    params[0] = json_object_to_json_string_ext(rows, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!(res = vmrq_pg_exec(conn, "enqueue batch", batch_sql, 1, params, PGRES_TUPLES_OK)))
        goto cleanup;
    if ((size_t)PQntuples(res) != n) {
        vmrq_error_set(VMRQ_ERR_DB, "enqueue batch: %d answers for %zu requests", PQntuples(res), n);
        goto cleanup;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        vmrq_request *req = reqs[atoi(PQgetvalue(res, r, 0))];
        if (PQgetisnull(res, r, 1)) {
            vmrq_error_set(VMRQ_ERR_DB, "enqueue batch: request %d of %zu collided with a request that"
                           " changed state meanwhile; enqueue it again", atoi(PQgetvalue(res, r, 0)) + 1, n);
            goto cleanup;
        }
        req->id = strtoll(PQgetvalue(res, r, 1), NULL, 10);
        req->is_new = PQgetvalue(res, r, 2)[0] == 't';
        st = vmrq_status_from_name(PQgetvalue(res, r, 3));
        req->status = st < 0 ? VMRQ_STATUS_REQUESTED : (vmrq_status)st;
        snprintf(req->uuid, sizeof(req->uuid), "%s", PQgetvalue(res, r, 4));
    }
    ret = 0;

cleanup:
    PQclear(res);
    json_object_put(rows);
    return ret;
}

vmrq_request *
vmrq_request_fetch(PGconn *conn, long long id)
{
    char idbuf[24];
    const char *params[1] = { idbuf };
    struct json_object *args = NULL;
    vmrq_request *req = NULL;
    PGresult *res;
    char why[128];
    int st;

    snprintf(idbuf, sizeof(idbuf), "%lld", id);
    res = vmrq_pg_exec(conn, "fetch",
                      "SELECT id, uuid, command, args::text, status, error, output::text"
                      "  FROM requests WHERE id = $1",
                      1, params, PGRES_TUPLES_OK);
    if (!res)
        return NULL;
    if (PQntuples(res) == 0) {
        vmrq_error_set(VMRQ_ERR_NOT_FOUND, "no request %lld", id);
        goto cleanup;
    }
    /* the database's own text: read its way, so that numbers stay the ones it holds */
    if (vmrq_json_parse(PQgetvalue(res, 0, 3), &args, why, sizeof(why)) < 0)
        args = NULL;
    if (!(req = vmrq_request_alloc(PQgetvalue(res, 0, 2), args)))
        goto cleanup;
    req->id = id;
    snprintf(req->uuid, sizeof(req->uuid), "%s", PQgetvalue(res, 0, 1));
    st = vmrq_status_from_name(PQgetvalue(res, 0, 4));
    req->status = st < 0 ? VMRQ_STATUS_REQUESTED : (vmrq_status)st;
    if ((!PQgetisnull(res, 0, 5) && !(req->error = strdup(PQgetvalue(res, 0, 5)))) ||
        (!PQgetisnull(res, 0, 6) && !(req->output = strdup(PQgetvalue(res, 0, 6))))) {
        vmrq_error_set(VMRQ_ERR_SYSTEM, "fetch: out of memory");
        vmrq_request_free(req);
        req = NULL;
    }

cleanup:
    json_object_put(args);
    PQclear(res);
    return req;
}

/* The status of request `id` into *status: 1 found, 0 not found, -1 error. */
static int
read_status(PGconn *conn, long long id, vmrq_status *status, double *progress)
{
    char idbuf[24];
    const char *params[1] = { idbuf };
    PGresult *res;
    int found, st;

    snprintf(idbuf, sizeof(idbuf), "%lld", id);
    res = vmrq_pg_exec(conn, "wait", "SELECT status, progress FROM requests WHERE id = $1", 1, params,
                      PGRES_TUPLES_OK);
    if (!res)
        return -1;
    found = PQntuples(res) > 0;
    if (found) {
        st = vmrq_status_from_name(PQgetvalue(res, 0, 0));
        *status = st < 0 ? VMRQ_STATUS_REQUESTED : (vmrq_status)st;
        *progress = PQgetisnull(res, 0, 1) ? -1 : strtod(PQgetvalue(res, 0, 1), NULL);
    }
    PQclear(res);
    return found;
}

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Consumes pending notifications; true if one names request `id`. A vmrq_done payload lists
 * "ID STATUS" pairs separated by commas. */
static bool
notified(PGconn *conn, long long id)
{
    PGnotify *n;
    bool hit = false;

    while ((n = PQnotifies(conn))) {
        for (const char *p = n->extra; p && *p && !hit; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
            hit = strtoll(p, NULL, 10) == id;
        PQfreemem(n);
    }
    return hit;
}

/* Re-reads the status at least this often even without a notification: a cheap guard, since
 * NOTIFY is not delivered to a session that was reconnected behind our back. A caller that
 * follows the progress reads it once a second, as often as a handler may write it. */
#define WAIT_RECHECK_MS 5000
#define WAIT_PROGRESS_MS 1000

int
vmrq_request_wait(PGconn *conn, long long id, int timeout_ms, vmrq_status *status)
{
    return vmrq_request_wait_progress(conn, id, timeout_ms, status, NULL, NULL);
}

int
vmrq_request_wait_progress(PGconn *conn, long long id, int timeout_ms, vmrq_status *status,
                           vmrq_progress_fn fn, void *opaque)
{
    int recheck = fn ? WAIT_PROGRESS_MS : WAIT_RECHECK_MS;
    double progress = -1, told = -1;
    long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    vmrq_status st = VMRQ_STATUS_REQUESTED;
    PGresult *res;
    int found, ret = -1;

    if (!(res = vmrq_pg_exec(conn, "wait", "LISTEN vmrq_done", 0, NULL, PGRES_COMMAND_OK)))
        return -1;
    PQclear(res);

    for (;;) {
        long long left, slice;
        struct pollfd pfd;

        if ((found = read_status(conn, id, &st, &progress)) < 0)
            goto cleanup;
        if (!found) {
            vmrq_error_set(VMRQ_ERR_NOT_FOUND, "no request %lld", id);
            goto cleanup;
        }
        if (fn && progress >= 0 && progress != told && (st == VMRQ_STATUS_WORKING || vmrq_status_is_final(st)))
            fn(opaque, id, told = progress);
        if (vmrq_status_is_final(st))
            break;
        for (;;) {
            if (notified(conn, id))
                break;
            left = deadline < 0 ? recheck : deadline - now_ms();
            if (left <= 0) {
                vmrq_error_set(VMRQ_ERR_TIMEOUT, "request %lld is still %s after %d ms", id,
                               vmrq_status_name(st), timeout_ms);
                goto cleanup;
            }
            slice = left < recheck ? left : recheck;
            pfd.fd = PQsocket(conn);
            pfd.events = POLLIN;
            pfd.revents = 0;
            if (poll(&pfd, 1, (int)slice) < 0) {
                if (errno == EINTR)
                    continue;
                vmrq_error_set(VMRQ_ERR_SYSTEM, "wait: poll: %s", strerror(errno));
                goto cleanup;
            }
            if (pfd.revents == 0)
                break; /* slice over: re-read the status */
            if (!PQconsumeInput(conn)) {
                vmrq_error_from_pg(conn, NULL, "wait");
                goto cleanup;
            }
        }
    }
    *status = st;
    ret = 0;

cleanup:
    res = PQexecParams(conn, "UNLISTEN vmrq_done", 0, NULL, NULL, NULL, NULL, 0);
    PQclear(res);
    return ret;
}

int
vmrq_request_cancel(PGconn *conn, long long id)
{
    char idbuf[24];
    const char *params[1] = { idbuf };
    PGresult *res;

    snprintf(idbuf, sizeof(idbuf), "%lld", id);
    res = vmrq_pg_exec(conn, "cancel", "SELECT vmrq_cancel($1)", 1, params, PGRES_TUPLES_OK);
    if (!res)
        return -1;
    PQclear(res);
    return 0;
}
