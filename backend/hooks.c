/*
 * hooks.c - the table of before/after hooks and the operation runner (see hooks.h). Hooks run in
 * table order; adding one is adding a row.
 */
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "hooks.h"
#include "log.h"
#include "stmt.h"

static const struct stmt cancel_moot_stmt = {
    STMT_CANCEL_MOOT, "vmrq_cancel_moot",
    "SELECT vmrq_moot_shutdowns($1::int, $2::bigint)", /* sql/functions/transitions.sql */
    2,
};

enum when { BEFORE, AFTER };

struct hook {
    enum when when;
    enum op op; /* OP_ANY: every operation */
    int (*run)(struct op_ctx *ctx); /* before: -1 vetoes (the hook has failed the job) */
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

static const struct hook hooks[] = {
    /* when   operation    hook                    name */
    { BEFORE, OP_ANY,      refuse_disabled_node,   "refuse_disabled_node" },
    { BEFORE, OP_START,    refuse_base,            "refuse_base" },
    { BEFORE, OP_SHUTDOWN, resume_paused,          "resume_paused" },
    { AFTER,  OP_ANY,      sync_status,            "sync_status" },
    { AFTER,  OP_SHUTDOWN, force_after_timeout,    "force_after_timeout" },
    { AFTER,  OP_START,    cancel_moot_shutdowns,  "cancel_moot_shutdowns" },
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
        if (hooks[i].run(ctx) < 0)
            return -1; /* vetoed: the driver is not called, no after hook runs */
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
