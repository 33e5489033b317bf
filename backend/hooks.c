/*
 * hooks.c - the table of before/after hooks and the operation runner (see hooks.h). Hooks run in
 * table order; adding one is adding a row.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "clock.h"
#include "hooks.h"
#include "log.h"
#include "stmt.h"

static const struct stmt cancel_moot_stmt = {
    STMT_CANCEL_MOOT, "vmrq_cancel_moot",
    "SELECT vmrq_moot_shutdowns($1::int, $2::bigint)", /* sql/functions/transitions.sql */
    2,
};

/* $1 the requesting user, $2 the domain, $3 the start request: the user's start_limit (NULL:
 * none), name and rights, how many other desktops of hers run or are being started by an earlier
 * request (two starts at once: the later one counts the earlier, so both cannot pass), and the
 * domain's policies. */
static const struct stmt start_policy_stmt = {
    STMT_START_POLICY, "vmrq_start_policy",
    "SELECT u.start_limit, coalesce(u.name, ''), coalesce(u.is_operator OR u.is_admin, false),"
    "       (SELECT count(*) FROM domains o WHERE o.id_owner = $1::int AND o.id <> $2::int"
    "           AND (o.status IN ('running', 'paused', 'shutting_down', 'pmsuspended')"
    "                OR EXISTS (SELECT 1 FROM requests r WHERE r.id_domain = o.id AND r.status = 'working'"
    "                              AND r.command = 'start' AND r.id < $3::bigint))),"
    "       coalesce(d.run_timeout, 0), coalesce(d.shutdown_disconnected, -1)"
    "  FROM domains d LEFT JOIN users u ON u.id = $1::int WHERE d.id = $2::int",
    3,
};

/* The display read after a start; cleared again when the domain stops (sql/functions/display.sql). */
static const struct stmt display_write_stmt = {
    STMT_DISPLAY_WRITE, "vmrq_display_write",
    "UPDATE domains SET display_type = nullif($2, ''), display_host = nullif($3, ''),"
    "       display_port = nullif($4::int, 0), display_tls_port = nullif($5::int, 0),"
    "       display_password = nullif($6, '')"
    " WHERE id = $1::int",
    6,
};

static const struct stmt viewer_stmt = {
    STMT_VIEWER, "vmrq_viewer", "SELECT coalesce(viewer = 'connected', false) FROM domains WHERE id = $1::int", 1,
};

enum when { BEFORE, AFTER };

struct hook {
    enum when when;
    enum op op; /* OP_ANY: every operation */
    int (*run)(struct op_ctx *ctx); /* before: -1 vetoes (the hook has failed the job), 1 says
                                       there is nothing to do (the job is done) */
    const char *name;
};

const char *
op_name(enum op op)
{
    static const char *const names[OP_LAST] = {
        [OP_START] = "start",         [OP_SHUTDOWN] = "shutdown", [OP_FORCE_SHUTDOWN] = "force_shutdown",
        [OP_REBOOT] = "reboot",       [OP_FORCE_REBOOT] = "force_reboot", [OP_PAUSE] = "pause",
        [OP_RESUME] = "resume",       [OP_HIBERNATE] = "hibernate", [OP_SET_TIME] = "set_time",
        [OP_PING_AGENT] = "ping_agent",
    };

    return (unsigned)op < OP_LAST ? names[op] : "?";
}

/* An operator puts a node in maintenance with `nodes.enabled = false`: nothing touches it. */
static int
refuse_disabled_node(struct op_ctx *ctx)
{
    if (ctx->d->node_enabled)
        return 0;
    job_fail(ctx->job, false, "%s: the node of %s is disabled", op_name(ctx->op), ctx->d->name);
    return -1;
}

/* A base is what its clones are made from: started, its disks would drift from theirs. */
static int
refuse_base(struct op_ctx *ctx)
{
    if (!ctx->d->is_base)
        return 0;
    job_fail(ctx->job, false, "%s: %s is a base; clone it", op_name(ctx->op), ctx->d->name);
    return -1;
}

/* A paused guest cannot hear the power button: resume it first. */
static int
resume_paused(struct op_ctx *ctx)
{
    if (ctx->d->info.state != DOM_PAUSED)
        return 0;
    if (driver_resume(ctx->w->drv, ctx->d->dom) < 0) {
        job_fail(ctx->job, driver_error_retryable(), "%s", driver_error_message());
        return -1;
    }
    return 0;
}

/* domains.status follows every operation, whatever its result. */
static int
sync_status(struct op_ctx *ctx)
{
    return domain_sync(ctx->job, ctx->w, ctx->d);
}

/* Still up after a shutdown with a timeout: enqueue force_shutdown at now + timeout, for the
 * requesting user (Ravada's _post_shutdown). */
static int
force_after_timeout(struct op_ctx *ctx)
{
    dom_state s = ctx->d->info.state;
    vmrq_request *req = NULL;
    char at[40];

    if (ctx->result < 0 || ctx->timeout <= 0 || s == DOM_SHUTOFF || s == DOM_CRASHED || s == DOM_NOSTATE)
        return 0;
    if (clock_utc_after((long long)ctx->timeout * 1000, at, sizeof(at)) < 0 ||
        !(req = vmrq_request_new("force_shutdown")) || vmrq_request_set_int(req, "uid", ctx->job->uid) < 0 ||
        vmrq_request_set_int(req, "id_domain", ctx->d->id) < 0 || vmrq_request_set_string(req, "at", at) < 0) {
        log_warnx("request %lld: cannot build the force_shutdown follow-up: %s", ctx->job->id, vmrq_error_message());
        vmrq_request_free(req);
        return -1;
    }
    job_follow_up(ctx->job, req, false);
    return 0;
}

/* A domain just started: the shutdowns of it that were still pending are moot. */
static int
cancel_moot_shutdowns(struct op_ctx *ctx)
{
    char dom[16], id[24];
    const char *params[2] = { dom, id };
    PGconn *conn;
    PGresult *res;

    if (ctx->result < 0 || !(conn = job_db(ctx->job, ctx->w)))
        return 0;
    snprintf(dom, sizeof(dom), "%d", ctx->d->id);
    snprintf(id, sizeof(id), "%lld", ctx->job->id);
    res = stmt_exec(conn, &cancel_moot_stmt, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        log_warnx("request %lld: cannot cancel moot shutdowns: %s", ctx->job->id, PQerrorMessage(conn));
    else if (atoi(PQgetvalue(res, 0, 0)) > 0)
        log_info("request %lld: cancelled %s pending shutdown(s) of %s, now moot", ctx->job->id,
                 PQgetvalue(res, 0, 0), ctx->d->name);
    PQclear(res);
    return 0;
}

/* The user's start_limit and the domain's policies, read once for the hooks of a start. */
static int
read_start_policy(struct op_ctx *ctx)
{
    char uid[16], dom[16], id[24];
    const char *params[3] = { uid, dom, id };
    PGconn *conn = job_db(ctx->job, ctx->w);
    PGresult *res;
    int ret = 0;

    if (!conn)
        return -1; /* job_db failed the job (retryable) */
    snprintf(uid, sizeof(uid), "%d", ctx->job->uid);
    snprintf(dom, sizeof(dom), "%d", ctx->d->id);
    snprintf(id, sizeof(id), "%lld", ctx->job->id);
    res = stmt_exec(conn, &start_policy_stmt, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        job_fail_pg(ctx->job, conn, res, "start policy");
        ret = -1;
        goto cleanup;
    }
    ctx->policy.read = true;
    ctx->policy.run_timeout = atoi(PQgetvalue(res, 0, 4));
    ctx->policy.shutdown_disconnected = atoi(PQgetvalue(res, 0, 5));
    /* users.start_limit: operators and admins are exempt */
    if (!PQgetisnull(res, 0, 0) && strcmp(PQgetvalue(res, 0, 2), "t") != 0 &&
        atoll(PQgetvalue(res, 0, 3)) >= atoll(PQgetvalue(res, 0, 0))) {
        job_fail(ctx->job, false, "start: %s already runs %s desktop%s, her limit", PQgetvalue(res, 0, 1),
                 PQgetvalue(res, 0, 3), strcmp(PQgetvalue(res, 0, 3), "1") == 0 ? "" : "s");
        ret = -1;
    }

cleanup:
    PQclear(res);
    return ret;
}

/* A fresh random password for the display before each start, when it listens beyond the
 * loopback or the configuration asks (display_password_always): a display reachable from the
 * network without one is never the default. */
static int
set_display_password(struct op_ctx *ctx)
{
    static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    unsigned char raw[16];
    char pw[sizeof(raw) + 1];

    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        job_fail(ctx->job, true, "start: no random bytes for the display's password");
        return -1;
    }
    for (size_t i = 0; i < sizeof(raw); i++)
        pw[i] = alphabet[raw[i] % (sizeof(alphabet) - 1)];
    pw[sizeof(raw)] = '\0';
    if (driver_display_password(ctx->w->drv, ctx->d->dom, pw, ctx->w->display_password_always) < 0) {
        job_fail(ctx->job, driver_error_retryable(), "%s", driver_error_message());
        return -1;
    }
    return 0;
}

/* After a start: the display it offers, kept in the domain's row for vmrq_display(). */
static int
read_display(struct op_ctx *ctx)
{
    struct dom_display disp;
    char id[16], port[16], tls[16];
    const char *params[6] = { id, disp.type, disp.host, port, tls, disp.password };
    PGconn *conn;
    PGresult *res;
    int rc;

    if (ctx->result < 0)
        return 0;
    if ((rc = driver_display_get(ctx->w->drv, ctx->d->dom, &disp)) < 0) {
        log_warnx("request %lld: %s has no display recorded: %s", ctx->job->id, ctx->d->name, driver_error_message());
        return 0;
    }
    if (rc == 0 || !(conn = job_db(ctx->job, ctx->w)))
        return 0;
    snprintf(id, sizeof(id), "%d", ctx->d->id);
    snprintf(port, sizeof(port), "%d", disp.port);
    snprintf(tls, sizeof(tls), "%d", disp.tls_port);
    res = stmt_exec(conn, &display_write_stmt, params);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        log_warnx("request %lld: cannot record the display of %s: %s", ctx->job->id, ctx->d->name,
                  PQerrorMessage(conn));
    PQclear(res);
    explicit_bzero(disp.password, sizeof(disp.password));
    return 0;
}

/* A shutdown of the started domain at now + `seconds`, for its policy, as a follow-up. */
static int
shutdown_later(struct op_ctx *ctx, int seconds, const char *policy)
{
    vmrq_request *req = NULL;
    char at[40];

    if (clock_utc_after((long long)seconds * 1000, at, sizeof(at)) < 0 || !(req = vmrq_request_new("shutdown")) ||
        vmrq_request_set_int(req, "uid", ctx->d->id_owner > 0 ? ctx->d->id_owner : ctx->job->uid) < 0 ||
        vmrq_request_set_int(req, "id_domain", ctx->d->id) < 0 || vmrq_request_set_string(req, "at", at) < 0 ||
        vmrq_request_set_string(req, "policy", policy) < 0) {
        log_warnx("request %lld: cannot build the %s shutdown: %s", ctx->job->id, policy, vmrq_error_message());
        vmrq_request_free(req);
        return -1;
    }
    job_follow_up(ctx->job, req, false);
    return 0;
}

/* domains.run_timeout: a start is followed by a shutdown at start + run_timeout. (Enqueued
 * with the completion, after cancel_moot_shutdowns has run: this start's own shutdown is never
 * taken for a moot one; the next start makes it moot.) */
static int
run_timeout(struct op_ctx *ctx)
{
    if (ctx->result < 0 || !ctx->policy.read || ctx->policy.run_timeout <= 0)
        return 0;
    return shutdown_later(ctx, ctx->policy.run_timeout, "run_timeout");
}

/* domains.shutdown_disconnected: a desktop started and never connected to within that time is
 * shut down too; the viewer connecting makes this shutdown moot (vmrq_moot_unwatched()), as its
 * disconnecting enqueues the next (backend/events.c). */
static int
shutdown_unwatched(struct op_ctx *ctx)
{
    if (ctx->result < 0 || !ctx->policy.read || ctx->policy.shutdown_disconnected < 0)
        return 0;
    return shutdown_later(ctx, ctx->policy.shutdown_disconnected, "unwatched");
}

/* The shutdown of the shutdown_disconnected policy finds its viewer back (connected after the
 * start that enqueued it, before the shutdown was in the table for the event to make moot):
 * nothing to do. */
static int
skip_if_watched(struct op_ctx *ctx)
{
    struct json_object *v;
    char dom[16];
    const char *params[1] = { dom };
    PGconn *conn;
    PGresult *res;
    bool watched;

    if (!json_object_object_get_ex(ctx->job->args, "policy", &v) ||
        strcmp(json_object_get_string(v), "unwatched") != 0)
        return 0;
    if (!(conn = job_db(ctx->job, ctx->w)))
        return -1;
    snprintf(dom, sizeof(dom), "%d", ctx->d->id);
    res = stmt_exec(conn, &viewer_stmt, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        job_fail_pg(ctx->job, conn, res, "shutdown");
        PQclear(res);
        return -1;
    }
    watched = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (watched)
        log_info("request %lld: %s has a viewer again: not shut down", ctx->job->id, ctx->d->name);
    return watched ? 1 : 0;
}

static const struct hook hooks[] = {
    /* when   operation    hook                    name */
    { BEFORE, OP_ANY,      refuse_disabled_node,   "refuse_disabled_node" },
    { BEFORE, OP_START,    refuse_base,            "refuse_base" },
    { BEFORE, OP_START,    read_start_policy,      "read_start_policy" },  /* users.start_limit */
    { BEFORE, OP_START,    set_display_password,   "set_display_password" },
    { BEFORE, OP_SHUTDOWN, skip_if_watched,        "skip_if_watched" },  /* shutdown_disconnected */
    { BEFORE, OP_SHUTDOWN, resume_paused,          "resume_paused" },
    { AFTER,  OP_ANY,      sync_status,            "sync_status" },
    { AFTER,  OP_SHUTDOWN, force_after_timeout,    "force_after_timeout" },
    { AFTER,  OP_START,    cancel_moot_shutdowns,  "cancel_moot_shutdowns" },
    { AFTER,  OP_START,    read_display,           "read_display" },
    { AFTER,  OP_START,    run_timeout,            "run_timeout" },
    { AFTER,  OP_START,    shutdown_unwatched,     "shutdown_unwatched" },
};

#define NHOOKS (sizeof(hooks) / sizeof(hooks[0]))

static int
call_driver(struct op_ctx *c)
{
    struct driver *drv = c->w->drv;
    struct driver_dom *dom = c->d->dom;

    switch (c->op) {
    case OP_START: return driver_start(drv, dom);
    case OP_SHUTDOWN: return driver_shutdown(drv, dom, c->mode);
    case OP_FORCE_SHUTDOWN: return driver_destroy(drv, dom);
    case OP_REBOOT: return driver_reboot(drv, dom, c->mode);
    case OP_FORCE_REBOOT: return driver_reset(drv, dom);
    case OP_PAUSE: return driver_suspend(drv, dom);
    case OP_RESUME: return driver_resume(drv, dom);
    case OP_HIBERNATE: return driver_managed_save(drv, dom);
    case OP_SET_TIME: return driver_set_time(drv, dom);
    case OP_PING_AGENT: return driver_agent_ping(drv, dom, &c->guest_time);
    case OP_LAST: break;
    }
    driver_error_set(false, false, "no such operation");
    return -1;
}

static bool
applies(const struct hook *h, enum when when, enum op op)
{
    return h->when == when && (h->op == OP_ANY || h->op == op);
}

int
op_run(struct op_ctx *ctx)
{
    char tag[64];

    for (size_t i = 0; i < NHOOKS; i++) {
        if (!applies(&hooks[i], BEFORE, ctx->op))
            continue;
        snprintf(tag, sizeof(tag), "before:%s", hooks[i].name);
        json_object_array_add(ctx->ran, json_object_new_string(tag));
        switch (hooks[i].run(ctx)) {
        case 0: break;
        case 1: return 0; /* nothing to do: done, the driver is not called, no after hook runs */
        default: return -1; /* vetoed: likewise, and the job has failed */
        }
    }
    if ((ctx->result = call_driver(ctx)) < 0)
        job_fail(ctx->job, driver_error_retryable(), "%s", driver_error_message());
    json_object_array_add(ctx->ran, json_object_new_string(op_name(ctx->op)));
    for (size_t i = 0; i < NHOOKS; i++) {
        if (!applies(&hooks[i], AFTER, ctx->op))
            continue;
        snprintf(tag, sizeof(tag), "after:%s", hooks[i].name);
        json_object_array_add(ctx->ran, json_object_new_string(tag));
        hooks[i].run(ctx);
    }
    return ctx->result;
}
