/*
 * handlers_base.c - desktops made from a base: prepare_base and remove_base (operators), clone,
 * provision (a user's clone, started) and remove_domain. The hypervisor's side is the driver's
 * (driver_base_prepare(), driver_clone(), driver_remove() over the storage pool of
 * `storage_pool`); the rows are kept here, on the worker's connection.
 *
 * Clones of one base run in parallel: a clone request is serialized on the new desktop (the row
 * trigger resolves its `name`) and, within the handler, on an advisory lock of (base, name), so
 * that two requests for one desktop (a provision clicked twice) make it once: the second finds
 * it made. Running any of these twice is safe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "domain.h"
#include "handlers.h"
#include "hooks.h"
#include "log.h"

/* A base as its row says, and the requesting user. */
struct base {
    int id, id_node;
    char name[256];
    bool is_base, is_public;
    char *xml;              /* owned; NULL if not a base */
    char user[128];         /* "" if there is no such user */
    bool user_privileged;
};

/* Runs a parameterized statement on the worker's connection; NULL (the job failed, retryable)
 * on error. The caller PQclear()s. */
static PGresult *
sql(struct vmrqd_job *job, struct vmrqd_worker *w, const char *text, int n, const char *const *params)
{
    PGconn *conn = job_db(job, w);
    PGresult *res;

    if (!conn)
        return NULL;
    res = PQexecParams(conn, text, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
        job_fail_pg(job, conn, res, job->command);
        PQclear(res);
        return NULL;
    }
    return res;
}

static const char *
arg_string(const struct vmrqd_job *job, const char *name)
{
    struct json_object *v;

    return json_object_object_get_ex(job->args, name, &v) ? json_object_get_string(v) : NULL;
}

static int
arg_int(const struct vmrqd_job *job, const char *name, int def)
{
    struct json_object *v;

    return json_object_object_get_ex(job->args, name, &v) ? json_object_get_int(v) : def;
}

static bool
arg_bool(const struct vmrqd_job *job, const char *name)
{
    struct json_object *v;

    return json_object_object_get_ex(job->args, name, &v) && json_object_get_boolean(v);
}

/* The base named by id_base or base, and the user's rights; -1 with the job failed. */
static int
base_open(struct vmrqd_job *job, struct vmrqd_worker *w, struct base *b)
{
    char id[16] = "", uid[16];
    const char *params[3] = { NULL, arg_string(job, "base"), uid };
    PGresult *res;

    memset(b, 0, sizeof(*b));
    if (arg_int(job, "id_base", 0) > 0) {
        snprintf(id, sizeof(id), "%d", arg_int(job, "id_base", 0));
        params[0] = id;
    }
    snprintf(uid, sizeof(uid), "%d", job->uid);
    if (!(res = sql(job, w,
                    "SELECT d.id, d.name, d.is_base, d.is_public, coalesce(d.id_node, 0), d.base_xml,"
                    "       coalesce(u.name, ''), coalesce(u.is_admin OR u.is_operator, false)"
                    "  FROM domains d LEFT JOIN users u ON u.id = $3::int"
                    " WHERE d.id = $1::int OR ($1 IS NULL AND d.name = $2)",
                    3, params)))
        return -1;
    if (PQntuples(res) == 0) {
        job_fail(job, false, "%s: no base '%s'", job->command, params[0] ? params[0] : params[1]);
        PQclear(res);
        return -1;
    }
    b->id = atoi(PQgetvalue(res, 0, 0));
    snprintf(b->name, sizeof(b->name), "%s", PQgetvalue(res, 0, 1));
    b->is_base = PQgetvalue(res, 0, 2)[0] == 't';
    b->is_public = PQgetvalue(res, 0, 3)[0] == 't';
    b->id_node = atoi(PQgetvalue(res, 0, 4));
    b->xml = PQgetisnull(res, 0, 5) ? NULL : strdup(PQgetvalue(res, 0, 5));
    snprintf(b->user, sizeof(b->user), "%s", PQgetvalue(res, 0, 6));
    b->user_privileged = PQgetvalue(res, 0, 7)[0] == 't';
    PQclear(res);
    if (!b->user[0]) {
        job_fail(job, false, "no user %d", job->uid);
        return -1;
    }
    if (!b->is_base || !b->xml) {
        job_fail(job, false, "%s: %s is not a base; prepare_base it first", job->command, b->name);
        return -1;
    }
    if (!b->is_public && !b->user_privileged) {
        job_fail(job, false, "%s: user %s may not clone %s (not a public base)", job->command, b->user, b->name);
        return -1;
    }
    return 0;
}

/* Holds (or lets go of) the advisory lock of desktop `name` of base `b` on the worker's
 * connection: one maker of a desktop at a time. -1 with the job failed. */
static int
desktop_lock(struct vmrqd_job *job, struct vmrqd_worker *w, const struct base *b, const char *name, bool take)
{
    char id[16];
    const char *params[2] = { id, name };
    PGresult *res;

    snprintf(id, sizeof(id), "%d", b->id);
    res = sql(job, w, take ? "SELECT pg_advisory_lock($1::int, hashtext($2))"
                           : "SELECT pg_advisory_unlock($1::int, hashtext($2))", 2, params);
    PQclear(res);
    return res ? 0 : -1;
}

/* Starts the desktop as the start command does, between the start's hooks (the start limit, the
 * display's password and its reading, the policies' shutdowns: backend/hooks.c). -1 with the
 * job failed. */
static int
start_desktop(struct vmrqd_job *job, struct vmrqd_worker *w, const struct base *b, const char *name, int id,
              int owner, struct driver_dom *dom, const struct dom_info *info)
{
    struct op_ctx ctx;
    struct domain d;
    int rc;

    memset(&d, 0, sizeof(d));
    d.id = id;
    snprintf(d.name, sizeof(d.name), "%s", name);
    snprintf(d.uuid, sizeof(d.uuid), "%s", info->uuid);
    d.id_owner = owner;
    d.shutdown_timeout = -1;
    d.node_enabled = true; /* as before: clone and provision do not check the node's maintenance */
    snprintf(d.user, sizeof(d.user), "%s", b->user);
    d.user_privileged = b->user_privileged;
    d.dom = dom; /* borrowed: the caller frees it */
    d.info = *info;
    memset(&ctx, 0, sizeof(ctx));
    ctx.job = job;
    ctx.w = w;
    ctx.d = &d;
    ctx.op = OP_START;
    ctx.timeout = -1;
    ctx.ran = json_object_new_array();
    rc = op_run(&ctx);
    json_object_put(ctx.ran);
    return rc < 0 || job->outcome != JOB_DONE ? -1 : 0;
}

/* The desktop `name` made from base `b` for `owner` (0: nobody's, a pool's), made now if it is not there yet: its row,
 * then its definition (driver_clone()). Its id into *id_domain; *made says whether this call
 * made it. With `start`, it is started too. -1 with the job failed. */
static int
make_desktop(struct vmrqd_job *job, struct vmrqd_worker *w, const struct base *b, const char *name, int owner,
             bool is_volatile, bool start, int *id_domain, bool *made)
{
    char bid[16], own[16], node[16];
    const char *params[5] = { name, bid, own, node, is_volatile ? "true" : "false" };
    struct driver_dom *dom = NULL;
    struct dom_info info;
    PGresult *res;
    int ret = -1;

    snprintf(bid, sizeof(bid), "%d", b->id);
    snprintf(own, sizeof(own), "%d", owner);
    snprintf(node, sizeof(node), "%d", b->id_node);
    *made = false;
    if (desktop_lock(job, w, b, name, true) < 0)
        return -1;
    if (!(res = sql(job, w, "SELECT id, id_base IS NOT DISTINCT FROM $2::int"
                            "       AND id_owner IS NOT DISTINCT FROM nullif($3::int, 0),"
                            "       uuid IS NOT NULL"
                            "  FROM domains WHERE name = $1", 3, params)))
        goto cleanup;
    if (PQntuples(res) > 0 && PQgetvalue(res, 0, 1)[0] != 't') {
        job_fail(job, false, "%s: a desktop named %s exists already, and is not %s's clone of %s", job->command,
                 name, own, b->name);
        PQclear(res);
        goto cleanup;
    }
    if (PQntuples(res) > 0 && PQgetvalue(res, 0, 2)[0] == 't') { /* made before: not again */
        *id_domain = atoi(PQgetvalue(res, 0, 0));
        PQclear(res);
        if (!(dom = driver_lookup(w->drv, name, NULL))) {
            job_fail(job, driver_error_retryable(), "%s", driver_error_message());
            goto cleanup;
        }
    } else {
        PQclear(res);
        if (!(res = sql(job, w,
                        "INSERT INTO domains (name, id_base, id_owner, id_node, is_volatile, status)"
                        " VALUES ($1, $2::int, nullif($3::int, 0), nullif($4::int, 0), $5::boolean, 'unknown')"
                        " ON CONFLICT (name) DO UPDATE SET date_changed = now() RETURNING id",
                        5, params)))
            goto cleanup;
        *id_domain = atoi(PQgetvalue(res, 0, 0));
        PQclear(res);
        if (!(dom = driver_clone(w->drv, b->xml, name, w->storage_pool)) || driver_info(w->drv, dom, &info) < 0) {
            char idbuf[16];
            const char *p[1] = { idbuf };
            job_fail(job, driver_error_retryable(), "%s", driver_error_message());
            snprintf(idbuf, sizeof(idbuf), "%d", *id_domain);
            PQclear(sql(job, w, "DELETE FROM domains WHERE id = $1::int AND uuid IS NULL", 1, p));
            goto cleanup;
        }
        {
            char idbuf[16];
            const char *p[2] = { idbuf, info.uuid };
            snprintf(idbuf, sizeof(idbuf), "%d", *id_domain);
            if (!(res = sql(job, w, "UPDATE domains SET uuid = $2::uuid WHERE id = $1::int", 2, p)))
                goto cleanup;
            PQclear(res);
        }
        *made = true;
        log_info("request %lld (%s): made %s from base %s", job->id, job->command, name, b->name);
    }
    if (start && driver_info(w->drv, dom, &info) == 0 && info.state != DOM_RUNNING &&
        start_desktop(job, w, b, name, *id_domain, owner, dom, &info) < 0)
        goto cleanup;
    if (driver_info(w->drv, dom, &info) == 0) { /* domains.status, written with the outcome */
        job->sync.id = *id_domain;
        job->sync.status = dom_state_status(info.state, info.managed_save);
        snprintf(job->sync.uuid, sizeof(job->sync.uuid), "%s", info.uuid);
        job->sync.seen = clock_epoch();
    }
    ret = 0;

cleanup:
    driver_dom_free(w->drv, dom);
    desktop_lock(job, w, b, name, false);
    return ret;
}

/* {"id_domain": N, "name": ..., "made": true|false} */
static void
set_desktop_output(struct vmrqd_job *job, int id, const char *name, bool made)
{
    struct json_object *out = json_object_new_object();

    json_object_object_add(out, "id_domain", json_object_new_int(id));
    json_object_object_add(out, "name", json_object_new_string(name));
    json_object_object_add(out, "made", json_object_new_boolean(made));
    job_set_output(job, out);
}

/* The owner's name, for the default name of a clone (BASE-OWNER); -1 with the job failed. */
static int
owner_name(struct vmrqd_job *job, struct vmrqd_worker *w, int owner, char *buf, size_t size)
{
    char id[16];
    const char *params[1] = { id };
    PGresult *res;

    snprintf(id, sizeof(id), "%d", owner);
    if (!(res = sql(job, w, "SELECT name FROM users WHERE id = $1::int", 1, params)))
        return -1;
    if (PQntuples(res) == 0) {
        job_fail(job, false, "%s: no user %d to own it", job->command, owner);
        PQclear(res);
        return -1;
    }
    snprintf(buf, size, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

void
handle_clone(struct vmrqd_job *job, struct vmrqd_worker *w)
{
    int owner = arg_int(job, "id_owner", job->uid), id = 0;
    char name[400], owner_buf[128];
    struct base b;
    bool made;

    if (base_open(job, w, &b) < 0)
        goto out;
    if (owner != job->uid && !b.user_privileged) {
        job_fail(job, false, "clone: user %s may not make a desktop for another user", b.user);
        goto out;
    }
    if (arg_string(job, "name"))
        snprintf(name, sizeof(name), "%s", arg_string(job, "name"));
    else if (owner_name(job, w, owner, owner_buf, sizeof(owner_buf)) == 0)
        snprintf(name, sizeof(name), "%s-%s", b.name, owner_buf);
    else
        goto out;
    if (make_desktop(job, w, &b, name, owner, arg_bool(job, "volatile"), arg_bool(job, "start"), &id, &made) == 0)
        set_desktop_output(job, id, name, made);
out:
    free(b.xml);
}

/* The hand-out of a pool's clone to user $2 (pool_hand_out()), with LOCK as its row lock. */
#define POOL_HAND_OUT_SQL(LOCK)                                                                              \
    "WITH mine AS (SELECT name FROM domains WHERE id_base = $1::int AND is_pool AND id_owner = $2::int"      \
    "               AND status <> 'missing' ORDER BY id LIMIT 1),"                                           \
    "     free AS (UPDATE domains SET id_owner = $2::int, date_changed = now()"                              \
    "               WHERE id = (SELECT id FROM domains WHERE id_base = $1::int AND is_pool"                  \
    "                              AND id_owner IS NULL AND viewer IS DISTINCT FROM 'connected'"             \
    "                              AND status <> 'missing' AND NOT EXISTS (SELECT 1 FROM mine)"              \
    "                            ORDER BY status = 'running' DESC, id LIMIT 1 " LOCK ")"                     \
    "              RETURNING name)"                                                                          \
    " SELECT name FROM mine UNION ALL SELECT name FROM free"

/* A base with a pool (pool_clones > 0) hands the user a clone of it instead: the one of its
 * pool she was handed before and still has, else a free one (no owner, no viewer), taken
 * atomically: five users at once get five different ones, or the refusal. First without
 * waiting (SKIP LOCKED); if that finds none, once more waiting for the rows' locks: a free
 * clone whose row another statement holds (its start's status being written, manage_pools) is
 * still free, and refusing the user for it was wrong. Its name into `name`; 0 (name unchanged)
 * for a base without a pool; -1 with the job failed. */
static int
pool_hand_out(struct vmrqd_job *job, struct vmrqd_worker *w, const struct base *b, char *name, size_t size)
{
    static const char *const hand_out[2] = { POOL_HAND_OUT_SQL("FOR UPDATE SKIP LOCKED"),
                                             POOL_HAND_OUT_SQL("FOR UPDATE") };
    char bid[16], uid[16];
    const char *params[2] = { bid, uid };
    PGresult *res;

    snprintf(bid, sizeof(bid), "%d", b->id);
    snprintf(uid, sizeof(uid), "%d", job->uid);
    if (!(res = sql(job, w, "SELECT coalesce(pool_clones, 0) > 0 FROM domains WHERE id = $1::int", 1, params)))
        return -1;
    if (PQntuples(res) == 0 || PQgetvalue(res, 0, 0)[0] != 't') {
        PQclear(res);
        return 0;
    }
    PQclear(res);
    res = NULL;
    for (int i = 0; i < 2 && (!res || PQntuples(res) == 0); i++) {
        PQclear(res);
        if (!(res = sql(job, w, hand_out[i], 2, params)))
            return -1;
    }
    if (PQntuples(res) == 0) {
        job_fail(job, false, "%s: no free desktop in pool '%s'", job->command, b->name);
        PQclear(res);
        return -1;
    }
    snprintf(name, size, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

/* The user's clone of the base, started: the one she has, else one made now (BASE-USER), or
 * one of the base's pool (pool_hand_out()). */
void
handle_provision(struct vmrqd_job *job, struct vmrqd_worker *w)
{
    char bid[16], uid[16], name[400];
    const char *params[2] = { bid, uid };
    PGresult *res;
    struct base b;
    bool made;
    int id = 0;

    if (base_open(job, w, &b) < 0)
        goto out;
    snprintf(bid, sizeof(bid), "%d", b.id);
    snprintf(uid, sizeof(uid), "%d", job->uid);
    if (!(res = sql(job, w, "SELECT name FROM domains WHERE id_base = $1::int AND id_owner = $2::int"
                            " AND NOT is_volatile ORDER BY id LIMIT 1", 2, params)))
        goto out;
    if (PQntuples(res) > 0)
        snprintf(name, sizeof(name), "%s", PQgetvalue(res, 0, 0));
    else
        snprintf(name, sizeof(name), "%s-%s", b.name, b.user);
    PQclear(res);
    if (pool_hand_out(job, w, &b, name, sizeof(name)) < 0)
        goto out;
    if (make_desktop(job, w, &b, name, job->uid, false, true, &id, &made) == 0)
        set_desktop_output(job, id, name, made);
out:
    free(b.xml);
}

/* Writes the status the start's sync_status hook read (job->sync), now: a job starting several
 * desktops has one sync slot, written with the completion. The newer-observation rule as
 * everywhere (domains.sql). -1 with the job failed. */
static int
write_sync(struct vmrqd_job *job, struct vmrqd_worker *w)
{
    char id[16], seen[32];
    const char *params[3] = { id, job->sync.status, seen };
    PGresult *res;

    if (job->sync.id == 0)
        return 0;
    snprintf(id, sizeof(id), "%d", job->sync.id);
    snprintf(seen, sizeof(seen), "%.6f", job->sync.seen);
    res = sql(job, w, "UPDATE domains d SET status = $2, status_seen = to_timestamp($3::float8), date_changed = now()"
                      " WHERE id = $1::int AND " DOMAIN_STATUS_NOT_OLDER("d", "to_timestamp($3::float8)"),
              3, params);
    job->sync.id = 0;
    PQclear(res);
    return res ? 0 : -1;
}

/* manage_pools: base `b`'s pool kept up: pool_clones clones made (BASE-N, nobody's until
 * provision hands one out; volatile ones with pool_volatile, removed when they stop and made
 * again here), and pool_start of the free ones running, started through the start's hooks. The
 * periodic one is vmrqd's (pool_interval), one per base with a pool of its node. */
void
handle_manage_pools(struct vmrqd_job *job, struct vmrqd_worker *w)
{
    char id[16] = "", name[300];
    const char *params[2] = { NULL, arg_string(job, "base") };
    struct json_object *out;
    int clones, starts, have, made = 0, started = 0, running;
    bool is_volatile, was_made;
    struct base b;
    PGresult *res;

    memset(&b, 0, sizeof(b));
    if (arg_int(job, "id_base", 0) > 0) {
        snprintf(id, sizeof(id), "%d", arg_int(job, "id_base", 0));
        params[0] = id;
    }
    if (!(res = sql(job, w,
                    "SELECT id, name, is_base, coalesce(id_node, 0), base_xml, coalesce(pool_clones, 0),"
                    "       coalesce(pool_start, 0), pool_volatile,"
                    "       (SELECT count(*) FROM domains c WHERE c.id_base = d.id AND c.is_pool)"
                    "  FROM domains d WHERE d.id = $1::int OR ($1 IS NULL AND d.name = $2)",
                    2, params)))
        return;
    if (PQntuples(res) == 0 || PQgetvalue(res, 0, 2)[0] != 't' || PQgetisnull(res, 0, 4)) {
        job_fail(job, false, "manage_pools: no base '%s'", params[0] ? params[0] : params[1]);
        PQclear(res);
        return;
    }
    b.id = atoi(PQgetvalue(res, 0, 0));
    snprintf(b.name, sizeof(b.name), "%s", PQgetvalue(res, 0, 1));
    b.is_base = true;
    b.id_node = atoi(PQgetvalue(res, 0, 3));
    b.xml = strdup(PQgetvalue(res, 0, 4));
    b.user_privileged = true; /* vmrqd's own work */
    clones = atoi(PQgetvalue(res, 0, 5));
    starts = atoi(PQgetvalue(res, 0, 6));
    is_volatile = PQgetvalue(res, 0, 7)[0] == 't';
    have = atoi(PQgetvalue(res, 0, 8));
    PQclear(res);
    if (!b.xml) {
        job_fail(job, false, "manage_pools: out of memory");
        return;
    }
    /* the missing ones, under the first free names BASE-1, BASE-2, ... */
    for (int n = 1; have < clones && n <= clones + have + 1000; n++) {
        const char *p[2] = { name, id };
        int did;
        snprintf(name, sizeof(name), "%s-%d", b.name, n);
        if (!(res = sql(job, w, "SELECT 1 FROM domains WHERE name = $1", 1, p)))
            goto out;
        if (PQntuples(res) > 0) {
            PQclear(res);
            continue;
        }
        PQclear(res);
        if (make_desktop(job, w, &b, name, 0, is_volatile, false, &did, &was_made) < 0)
            goto out;
        snprintf(id, sizeof(id), "%d", did);
        p[0] = id;
        if (!(res = sql(job, w, "UPDATE domains SET is_pool = true WHERE id = $1::int", 1, p)))
            goto out;
        PQclear(res);
        have++;
        made++;
    }
    /* pool_start of the free ones running */
    snprintf(id, sizeof(id), "%d", b.id);
    params[0] = id;
    if (!(res = sql(job, w, "SELECT name, id, status = 'running' FROM domains"
                            " WHERE id_base = $1::int AND is_pool AND id_owner IS NULL ORDER BY id", 1, params)))
        goto out;
    running = 0;
    for (int i = 0; i < PQntuples(res); i++)
        running += PQgetvalue(res, i, 2)[0] == 't';
    for (int i = 0; i < PQntuples(res) && running < starts; i++) {
        struct driver_dom *dom;
        struct dom_info info;
        if (PQgetvalue(res, i, 2)[0] == 't')
            continue;
        if (!(dom = driver_lookup(w->drv, PQgetvalue(res, i, 0), NULL)) || driver_info(w->drv, dom, &info) < 0) {
            log_warnx("request %lld (manage_pools): %s", job->id, driver_error_message());
            driver_dom_free(w->drv, dom);
            continue;
        }
        if (info.state != DOM_RUNNING &&
            start_desktop(job, w, &b, PQgetvalue(res, i, 0), atoi(PQgetvalue(res, i, 1)), 0, dom, &info) < 0) {
            driver_dom_free(w->drv, dom);
            break;
        }
        driver_dom_free(w->drv, dom);
        if (write_sync(job, w) < 0)
            break;
        running++;
        started++;
    }
    PQclear(res);
    if (job->outcome == JOB_DONE) {
        out = json_object_new_object();
        json_object_object_add(out, "made", json_object_new_int(made));
        json_object_object_add(out, "started", json_object_new_int(started));
        job_set_output(job, out);
    }
out:
    free(b.xml);
}

/* How many clones base `id` has; -1 with the job failed. */
static int
clones_of(struct vmrqd_job *job, struct vmrqd_worker *w, int id)
{
    char idbuf[16];
    const char *params[1] = { idbuf };
    PGresult *res;
    int n;

    snprintf(idbuf, sizeof(idbuf), "%d", id);
    if (!(res = sql(job, w, "SELECT count(*) FROM domains WHERE id_base = $1::int", 1, params)))
        return -1;
    n = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}

/* A base's definition as its row keeps it (caller frees); NULL with the job failed. */
static char *
base_xml_of(struct vmrqd_job *job, struct vmrqd_worker *w, int id)
{
    char idbuf[16];
    const char *params[1] = { idbuf };
    PGresult *res;
    char *xml = NULL;

    snprintf(idbuf, sizeof(idbuf), "%d", id);
    if (!(res = sql(job, w, "SELECT base_xml FROM domains WHERE id = $1::int", 1, params)))
        return NULL;
    if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        xml = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (!xml)
        job_fail(job, false, "%s: the definition of base %d is gone", job->command, id);
    return xml;
}

static int
require_operator(struct vmrqd_job *job, const struct domain *d)
{
    if (!d->user[0]) {
        job_fail(job, false, "no user %d", job->uid);
        return -1;
    }
    if (d->user_privileged)
        return 0;
    job_fail(job, false, "user %s is not allowed to %s %s (operators only)", d->user, job->command, d->name);
    return -1;
}

/* Writes a long handler's progress to its request (vmrq_progress()), at most once a second but
 * for the end; a failure to write it is logged, not the job's. */
struct progress {
    struct vmrqd_job *job;
    struct vmrqd_worker *w;
    long long last_ms;
};

static void
write_progress(void *opaque, double done)
{
    struct progress *p = opaque;
    char daemon[16], id[24], value[32];
    const char *params[3] = { daemon, id, value };
    PGconn *conn;
    PGresult *res;

    if (p->last_ms && now_ms() - p->last_ms < 1000 && done < 1)
        return;
    p->last_ms = now_ms();
    snprintf(daemon, sizeof(daemon), "%d", p->job->daemon);
    snprintf(id, sizeof(id), "%lld", p->job->id);
    snprintf(value, sizeof(value), "%.3f", done);
    if (!(conn = p->w->conn) || PQstatus(conn) != CONNECTION_OK)
        return;
    res = PQexecParams(conn, "SELECT vmrq_progress($1::int, $2::bigint, $3::real)", 3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        log_warnx("request %lld: cannot write its progress: %s", p->job->id, PQerrorMessage(conn));
    PQclear(res);
}

/* -1 with the job failed if base `d` has clones ("remove_base: D has 2 clones; remove them
 * first"; `is` words the relation: "has", "is a base with"), or if they cannot be counted. */
static int
refuse_with_clones(struct vmrqd_job *job, struct vmrqd_worker *w, const struct domain *d, const char *is)
{
    int n = clones_of(job, w, d->id);

    if (n > 0)
        job_fail(job, false, "%s: %s %s %d clone%s; remove %s first", job->command, d->name, is, n,
                 n == 1 ? "" : "s", n == 1 ? "it" : "them");
    return n == 0 ? 0 : -1;
}

/* Deletes the base volumes of base `d` (driver_base_remove() on its kept definition); -1 with
 * the job failed. */
static int
drop_base_volumes(struct vmrqd_job *job, struct vmrqd_worker *w, const struct domain *d)
{
    char *xml = base_xml_of(job, w, d->id);
    int ret = -1;

    if (xml && (ret = driver_base_remove(w->drv, xml)) < 0)
        job_fail(job, driver_error_retryable(), "%s", driver_error_message());
    free(xml);
    return ret;
}

void
handle_prepare_base(struct vmrqd_job *job, struct vmrqd_worker *w)
{
    struct progress progress = { job, w, 0 };
    struct domain d;
    char *xml = NULL, idbuf[16];
    const char *params[2] = { idbuf, NULL };
    PGresult *res;

    if (domain_open(job, w, &d) < 0)
        return;
    if (require_operator(job, &d) < 0)
        goto out;
    if (d.is_base) {
        job_set_output(job, json_tokener_parse("{\"note\": \"already a base\"}"));
        goto out;
    }
    if (d.info.state != DOM_SHUTOFF) {
        job_fail(job, false, "prepare_base: %s is %s; shut it down first", d.name,
                 dom_state_status(d.info.state, d.info.managed_save));
        goto out;
    }
    if (!job_db(job, w))
        goto out;
    if (driver_base_prepare(w->drv, d.dom, w->storage_pool, &xml, write_progress, &progress) < 0) {
        job_fail(job, driver_error_retryable(), "%s", driver_error_message());
        goto out;
    }
    snprintf(idbuf, sizeof(idbuf), "%d", d.id);
    params[1] = xml;
    if ((res = sql(job, w, "UPDATE domains SET is_base = true, base_xml = $2 WHERE id = $1::int", 2, params)))
        PQclear(res);
    log_info("request %lld (prepare_base): %s is a base", job->id, d.name);
out:
    free(xml);
    domain_close(w, &d);
}

void
handle_remove_base(struct vmrqd_job *job, struct vmrqd_worker *w)
{
    struct domain d;
    char idbuf[16];
    const char *params[1] = { idbuf };
    PGresult *res;

    if (domain_open(job, w, &d) < 0)
        return;
    if (require_operator(job, &d) < 0)
        goto out;
    if (!d.is_base) {
        job_set_output(job, json_tokener_parse("{\"note\": \"not a base\"}"));
        goto out;
    }
    if (refuse_with_clones(job, w, &d, "has") < 0 || drop_base_volumes(job, w, &d) < 0)
        goto out;
    snprintf(idbuf, sizeof(idbuf), "%d", d.id);
    if ((res = sql(job, w, "UPDATE domains SET is_base = false, base_xml = NULL WHERE id = $1::int", 1, params)))
        PQclear(res);
out:
    domain_close(w, &d);
}

void
handle_remove_domain(struct vmrqd_job *job, struct vmrqd_worker *w)
{
    struct domain d;
    char idbuf[16];
    const char *params[1] = { idbuf };
    PGresult *res;

    if (domain_open(job, w, &d) < 0)
        return;
    if (domain_authorize(job, &d, "remove") < 0)
        goto out;
    if (d.is_base && (refuse_with_clones(job, w, &d, "is a base with") < 0 || drop_base_volumes(job, w, &d) < 0))
        goto out;
    if (driver_remove(w->drv, d.dom) < 0) {
        job_fail(job, driver_error_retryable(), "%s", driver_error_message());
        goto out;
    }
    snprintf(idbuf, sizeof(idbuf), "%d", d.id);
    if ((res = sql(job, w, "DELETE FROM domains WHERE id = $1::int", 1, params)))
        PQclear(res);
    log_info("request %lld (remove_domain): %s removed", job->id, d.name);
out:
    domain_close(w, &d);
}
