/*
 * handlers_domain.c - the commands that act on virtual machines. Each one opens its domain on
 * both sides, checks the user's rights, then, according to the table below, finds nothing to do
 * (a shutdown of a domain already off succeeds), refuses (a reboot of a domain that is off), or
 * runs its operation between the hooks (hooks.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "handlers.h"
#include "hooks.h"
#include "log.h"

#define S(state) (1u << (state))
#define UP (S(DOM_RUNNING) | S(DOM_BLOCKED))
#define ALL_BUT_OFF (UP | S(DOM_PAUSED) | S(DOM_SHUTTING_DOWN) | S(DOM_CRASHED) | S(DOM_PMSUSPENDED) | S(DOM_NOSTATE))

/* What a command does in each state of its domain. */
struct domain_cmd {
    const char *command;
    enum op op;
    unsigned noop; /* states in which there is nothing to do: success */
    unsigned runs; /* states in which the operation is attempted; in any other, the request fails */
    const char *refusal; /* "... is not running" */
};

static const struct domain_cmd domain_cmds[] = {
    /* command          operation          nothing to do       runs in                              else */
    { "start",          OP_START,          UP,                 S(DOM_SHUTOFF) | S(DOM_CRASHED) | S(DOM_NOSTATE), "cannot be started" },
    { "shutdown",       OP_SHUTDOWN,       S(DOM_SHUTOFF),     ALL_BUT_OFF,                         NULL },
    { "force_shutdown", OP_FORCE_SHUTDOWN, S(DOM_SHUTOFF),     ALL_BUT_OFF,                         NULL },
    { "reboot",         OP_REBOOT,         0,                  UP,                                  "is not running" },
    { "force_reboot",   OP_FORCE_REBOOT,   0,                  UP | S(DOM_PAUSED),                  "is not running" },
    { "pause",          OP_PAUSE,          S(DOM_PAUSED),      UP,                                  "is not running" },
    { "resume",         OP_RESUME,         UP,                 S(DOM_PAUSED) | S(DOM_PMSUSPENDED),  "is not paused" },
    { "hibernate",      OP_HIBERNATE,      0,                  UP | S(DOM_PAUSED),                  "is not running" },
    { "set_time",       OP_SET_TIME,       0,                  UP,                                  "is not running" },
    { "ping_agent",     OP_PING_AGENT,     0,                  UP,                                  "is not running" },
};

static const struct domain_cmd *
find_cmd(const char *command)
{
    for (size_t i = 0; i < sizeof(domain_cmds) / sizeof(domain_cmds[0]); i++)
        if (strcmp(domain_cmds[i].command, command) == 0)
            return &domain_cmds[i];
    return NULL;
}

static power_mode
mode_of(struct vmrqd_job *job)
{
    struct json_object *v;
    const char *m;

    if (!json_object_object_get_ex(job->args, "mode", &v) || !(m = json_object_get_string(v)))
        return POWER_DEFAULT;
    return strcmp(m, "acpi") == 0 ? POWER_ACPI : strcmp(m, "agent") == 0 ? POWER_AGENT : POWER_DEFAULT;
}

/* The request's timeout, else the domain's shutdown_timeout, else `fallback` (-1: none). */
static int
timeout_of(struct vmrqd_job *job, const struct domain *d, int fallback)
{
    struct json_object *v;

    if (json_object_object_get_ex(job->args, "timeout", &v))
        return json_object_get_int(v);
    return d->shutdown_timeout >= 0 ? d->shutdown_timeout : fallback;
}

static struct json_object *
output_of(const struct domain *d, struct json_object *ran, const char *note)
{
    struct json_object *out = json_object_new_object();

    json_object_object_add(out, "domain", json_object_new_string(d->name));
    json_object_object_add(out, "state", json_object_new_string(dom_state_status(d->info.state, d->info.managed_save)));
    if (note)
        json_object_object_add(out, "note", json_object_new_string(note));
    if (ran)
        json_object_object_add(out, "hooks", ran);
    return out;
}

void
handle_domain_command(struct vmrqd_job *job, struct vmrqd_worker *w)
{
    const struct domain_cmd *c = find_cmd(job->command);
    struct op_ctx ctx;
    struct domain d;
    unsigned st;
    char note[64];

    if (!c) {
        job_fail(job, false, "%s has no entry in the domain command table", job->command);
        return;
    }
    if (domain_open(job, w, &d) < 0)
        return;
    if (domain_authorize(job, &d, job->command) < 0)
        goto out;
    st = S(d.info.state);
    if ((c->noop & st) || (c->op == OP_HIBERNATE && d.info.state == DOM_SHUTOFF && d.info.managed_save)) {
        snprintf(note, sizeof(note), "already %s", dom_state_status(d.info.state, d.info.managed_save));
        domain_sync(job, w, &d);
        job_set_output(job, output_of(&d, NULL, note));
        goto out;
    }
    memset(&ctx, 0, sizeof(ctx));
    ctx.op = c->op;
    if (c->op == OP_START && d.info.state == DOM_PAUSED)
        ctx.op = OP_RESUME; /* what a user clicking "start" on a paused desktop wants */
    else if (!(c->runs & st)) {
        job_fail(job, false, "%s: %s %s (it is %s)", job->command, d.name, c->refusal,
                 dom_state_status(d.info.state, d.info.managed_save));
        goto out;
    }
    ctx.job = job;
    ctx.w = w;
    ctx.d = &d;
    ctx.mode = mode_of(job);
    ctx.timeout = c->op == OP_SHUTDOWN ? timeout_of(job, &d, -1) : -1;
    ctx.ran = json_object_new_array();
    op_run(&ctx);
    job_set_output(job, output_of(&d, ctx.ran, NULL));
    if (ctx.op == OP_PING_AGENT && job->outcome == JOB_DONE)
        json_object_object_add(job->output, "guest_time", json_object_new_int64(ctx.guest_time));

out:
    domain_close(w, &d);
}

/* shutdown, forced after `timeout` (default: the domain's, else 60 s), then start: the start is a
 * follow-up that waits for the force_shutdown follow-up when there is one. */
void
handle_shutdown_start(struct vmrqd_job *job, struct vmrqd_worker *w)
{
    struct json_object *ran = json_object_new_array();
    vmrq_request *start = NULL;
    struct op_ctx ctx;
    struct domain d;

    if (domain_open(job, w, &d) < 0) {
        json_object_put(ran);
        return;
    }
    if (domain_authorize(job, &d, "shutdown") < 0)
        goto out;
    if (d.info.state != DOM_SHUTOFF) {
        memset(&ctx, 0, sizeof(ctx));
        ctx.job = job;
        ctx.w = w;
        ctx.d = &d;
        ctx.op = OP_SHUTDOWN;
        ctx.timeout = timeout_of(job, &d, 60);
        ctx.ran = json_object_get(ran);
        op_run(&ctx);
        json_object_put(ctx.ran);
        if (job->outcome != JOB_DONE)
            goto out;
    }
    if (!(start = vmrq_request_new("start")) || vmrq_request_set_int(start, "uid", job->uid) < 0 ||
        vmrq_request_set_int(start, "id_domain", d.id) < 0) {
        job_fail(job, false, "cannot build the start follow-up: %s", vmrq_error_message());
        vmrq_request_free(start);
        goto out;
    }
    job_follow_up(job, start, true);

out:
    job_set_output(job, output_of(&d, json_object_get(ran), NULL));
    json_object_put(ran);
    domain_close(w, &d);
}

#define REFRESH_NEWER DOMAIN_STATUS_NOT_OLDER("d", "EXCLUDED.status_seen")

/* The display of a running or paused domain of the listing into its JSON row (dtype, dhost,
 * dport, dtls, dpass), so that a refresh after a lost connection sets what it can know: the
 * display, not the viewer (libvirt says who connected only as it happens). Nothing for the others,
 * or when it cannot be read. */
static void
add_display(struct vmrqd_worker *w, const struct dom_info *info, struct json_object *r)
{
    struct driver_dom *dom;
    struct dom_display disp;

    if (info->state != DOM_RUNNING && info->state != DOM_PAUSED && info->state != DOM_BLOCKED)
        return;
    if (!(dom = driver_lookup(w->drv, info->name, info->uuid)))
        return;
    if (driver_display_get(w->drv, dom, &disp) == 1) {
        json_object_object_add(r, "dtype", json_object_new_string(disp.type));
        json_object_object_add(r, "dhost", json_object_new_string(disp.host));
        json_object_object_add(r, "dport", disp.port ? json_object_new_int(disp.port) : NULL);
        json_object_object_add(r, "dtls", disp.tls_port ? json_object_new_int(disp.tls_port) : NULL);
        json_object_object_add(r, "dpass", disp.password[0] ? json_object_new_string(disp.password) : NULL);
        explicit_bzero(disp.password, sizeof(disp.password));
    }
    driver_dom_free(w->drv, dom);
}

/* Locks, in id order, the rows refresh_vms may write ($1 the hypervisor's domains as JSON rows,
 * $2 the node): those free at once, without waiting; only if one is held, the rest waiting at
 * most 100 ms as a completion does (SQL vmrq_lock_held_domains()): vmrqd's own event sink and
 * completions hold one for a millisecond or two. If one stays held longer (another session's
 * open transaction), the statement that follows skips it. 0, or -1 with the job failed (the
 * database). */
static int
refresh_lock(struct vmrqd_job *job, PGconn *conn, const char *const *params)
{
    PGresult *res = PQexecParams(conn,
        "WITH ids AS (SELECT ARRAY(SELECT o.id FROM domains o"
        "              WHERE o.name IN (SELECT x.name FROM jsonb_to_recordset($1::jsonb) AS x(name text))"
        "                 OR o.id_node = (SELECT id FROM nodes WHERE name = $2)) AS a),"
        "     lk AS (SELECT o.id FROM domains o WHERE o.id = ANY ((SELECT a FROM ids)::int[]) ORDER BY o.id"
        "             FOR UPDATE SKIP LOCKED)"
        " SELECT CASE WHEN (SELECT count(*) FROM lk) < cardinality(a)"
        "             THEN vmrq_lock_held_domains(a, ARRAY(SELECT id FROM lk)) END FROM ids",
        2, NULL, params, NULL, NULL, 0);
    int ret = 0;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        job_fail_pg(job, conn, res, "refresh_vms");
        ret = -1;
    }
    PQclear(res);
    return ret;
}

/* Brings the domains of this node in line with the hypervisor in one statement: new ones appear
 * (without owner: operators and admins may act on them), known ones get their state, those the
 * hypervisor no longer has are marked missing; a status observed after the listing (an event)
 * is left as it is. Only rows of this node are written (and rows of no node its hypervisor has,
 * which become its own): a domain whose name another node's row holds is not adopted but kept
 * in domain_conflicts, logged the first time it is seen. A row another session holds is left
 * as it is (output "held"; logged). */
void
handle_refresh_vms(struct vmrqd_job *job, struct vmrqd_worker *w)
{
    struct json_object *rows = json_object_new_array(), *out;
    const char *params[3];
    char seen[32];
    struct dom_info *doms = NULL;
    size_t n = 0;
    PGconn *conn;
    PGresult *res;

    if (!w->drv) {
        job_fail(job, true, "no hypervisor connection");
        goto cleanup;
    }
    if (!(conn = job_db(job, w)))
        goto cleanup;
    /* One refresh of a node at a time (the periodic one may meet one asked for): two would
     * insert the same new domains at once, and the second would fail on their uuids. */
    params[0] = w->node;
    res = PQexecParams(conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
    PQclear(res);
    res = PQexecParams(conn, "SELECT pg_advisory_xact_lock(hashtext('vmrq refresh_vms ' || $1))", 1, NULL,
                       params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        job_fail_pg(job, conn, res, "refresh_vms");
        PQclear(res);
        goto rollback;
    }
    PQclear(res);
    snprintf(seen, sizeof(seen), "%.6f", clock_epoch()); /* before the listing, as domain_sync() */
    if (driver_list(w->drv, &doms, &n) < 0) {
        job_fail(job, driver_error_retryable(), "%s", driver_error_message());
        goto rollback;
    }
    for (size_t i = 0; i < n; i++) {
        struct json_object *r = json_object_new_object();
        json_object_object_add(r, "name", json_object_new_string(doms[i].name));
        json_object_object_add(r, "uuid", json_object_new_string(doms[i].uuid));
        json_object_object_add(r, "status", json_object_new_string(dom_state_status(doms[i].state, doms[i].managed_save)));
        add_display(w, &doms[i], r);
        json_object_array_add(rows, r);
    }
    params[0] = json_object_to_json_string_ext(rows, JSON_C_TO_STRING_PLAIN);
    params[1] = w->node;
    params[2] = seen;
    if (refresh_lock(job, conn, params) < 0)
        goto rollback;
    res = PQexecParams(conn,
        "WITH hv AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(name text, uuid uuid, status text,"
        "                       dtype text, dhost text, dport int, dtls int, dpass text)),"
        /* a name vmrq cannot hold (names.sql) is left out, and recorded as a conflict */
        "     h AS (SELECT * FROM hv WHERE vmrq_name_ok(name)),"
        "     bad AS (SELECT name, uuid FROM hv WHERE NOT vmrq_name_ok(name)),"
        "     node AS (SELECT id FROM nodes WHERE name = $2),"  /* none: nothing below is written */
        /* locked first, in id order, as every writer of several domains does (claim.c); a row
         * another session holds past refresh_lock()'s wait is not waited for (an operator's psql
         * left in a transaction would keep this worker, and every later refresh of the node): it
         * is left as it is, counted, and the next refresh takes it */
        "     lk AS (SELECT o.id FROM domains o"
        "             WHERE o.name IN (SELECT name FROM h) OR o.id_node = (SELECT id FROM node)"
        "             ORDER BY o.id FOR UPDATE SKIP LOCKED),"
        "     held AS (SELECT o.id, o.name FROM domains o"
        "               WHERE (o.name IN (SELECT name FROM h) OR o.id_node = (SELECT id FROM node))"
        "                 AND (o.id_node IS NULL OR o.id_node = (SELECT id FROM node))"  /* ours to write */
        "                 AND o.id NOT IN (SELECT id FROM lk)),"
        /* a name another node's row holds is that node's: not adopted, recorded */
        "     other AS (SELECT h.name, h.uuid FROM h JOIN domains o ON o.name = h.name"
        "                WHERE (SELECT count(*) FROM lk) >= 0 AND o.id_node <> (SELECT id FROM node)),"
        /* a status observed after the listing (an event) stays: vmrq_status_not_older(); a row
         * of no node is this node's from now on; a uuid another row holds stays there */
        "     up AS (INSERT INTO domains AS d (name, uuid, status, status_seen, id_node, display_type, display_host,"
        "                                      display_port, display_tls_port, display_password)"
        "            SELECT h.name, CASE WHEN NOT EXISTS (SELECT 1 FROM domains o WHERE o.uuid = h.uuid AND o.name <> h.name)"
        "                                THEN h.uuid END,"
        "                   h.status, to_timestamp($3::float8), node.id, h.dtype, h.dhost, h.dport, h.dtls, h.dpass"
        "              FROM h, node"
        "             WHERE (SELECT count(*) FROM lk) >= 0 AND h.name NOT IN (SELECT name FROM other)"
        "               AND h.name NOT IN (SELECT name FROM held)"
        "            ON CONFLICT (name) DO UPDATE"
        "               SET status = CASE WHEN " REFRESH_NEWER " THEN EXCLUDED.status ELSE d.status END,"
        "                   status_seen = greatest(d.status_seen, EXCLUDED.status_seen),"
        "                   uuid = coalesce(EXCLUDED.uuid, d.uuid), id_node = EXCLUDED.id_node,"
        /* the display of a running domain, read again (a stopped one's goes: display.sql) */
        "                   display_type = coalesce(EXCLUDED.display_type, d.display_type),"
        "                   display_host = CASE WHEN EXCLUDED.display_type IS NULL THEN d.display_host"
        "                                       ELSE EXCLUDED.display_host END,"
        "                   display_port = CASE WHEN EXCLUDED.display_type IS NULL THEN d.display_port"
        "                                       ELSE EXCLUDED.display_port END,"
        "                   display_tls_port = CASE WHEN EXCLUDED.display_type IS NULL THEN d.display_tls_port"
        "                                           ELSE EXCLUDED.display_tls_port END,"
        "                   display_password = CASE WHEN EXCLUDED.display_type IS NULL THEN d.display_password"
        "                                           ELSE EXCLUDED.display_password END,"
        "                   date_changed = CASE WHEN " REFRESH_NEWER " AND d.status IS DISTINCT FROM EXCLUDED.status"
        "                                       THEN now() ELSE d.date_changed END"
        "             WHERE d.id_node IS NULL OR d.id_node = EXCLUDED.id_node"
        "            RETURNING (xmax = 0) AS added),"
        /* only this node's rows go missing: a row of no node may live on any */
        "     gone AS (UPDATE domains d SET status = 'missing', status_seen = to_timestamp($3::float8),"
        "                                   date_changed = now()"
        "               WHERE (SELECT count(*) FROM lk) >= 0"
        "                 AND d.status <> 'missing' AND d.name NOT IN (SELECT name FROM h)"
        "                 AND d.id NOT IN (SELECT id FROM held)"
        "                 AND d.id_node = (SELECT id FROM node)"
        "                 AND " DOMAIN_STATUS_NOT_OLDER("d", "to_timestamp($3::float8)")
        "              RETURNING 1),"
        "     seen AS (INSERT INTO domain_conflicts AS c (id_node, name, uuid)"
        "              SELECT node.id, x.name, x.uuid FROM (SELECT * FROM other UNION ALL SELECT * FROM bad) x, node"
        "              ON CONFLICT (id_node, name) DO UPDATE SET last_seen = now(), uuid = EXCLUDED.uuid"
        "              RETURNING c.name, (xmax = 0) AS first),"
        "     over AS (DELETE FROM domain_conflicts c"
        "               WHERE c.id_node = (SELECT id FROM node) AND c.name NOT IN (SELECT name FROM other)"
        "                 AND c.name NOT IN (SELECT name FROM bad)"
        "              RETURNING 1)"
        " SELECT (SELECT count(*) FROM up WHERE added), (SELECT count(*) FROM up WHERE NOT added),"
        "        (SELECT count(*) FROM gone), (SELECT count(*) FROM seen),"
        "        (SELECT string_agg(format('''%s'' (node %s)', s.name, n.name), ', ' ORDER BY s.name)"
        "           FROM seen s JOIN domains o ON o.name = s.name JOIN nodes n ON n.id = o.id_node WHERE s.first),"
        "        (SELECT count(*) FROM over), (SELECT count(*) FROM node),"
        "        (SELECT string_agg(format('%L', s.name), ', ' ORDER BY s.name) FROM seen s"
        "          WHERE s.first AND NOT vmrq_name_ok(s.name)),"
        "        (SELECT count(*) FROM held), (SELECT string_agg(format('%L', name), ', ' ORDER BY name) FROM held)",
        3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        job_fail_pg(job, conn, res, "refresh_vms");
        PQclear(res);
        goto rollback;
    }
    if (strcmp(PQgetvalue(res, 0, 6), "0") == 0) { /* vmrqd checks at start; removed since */
        job_fail(job, false, "node '%s' is not in table nodes", w->node);
        PQclear(res);
        goto rollback;
    }
    /* each name once, when it is first seen taken (vmrq domain list --conflicts lists them all) */
    if (!PQgetisnull(res, 0, 4))
        log_warnx("refresh_vms: not adopted, the name is another node's: %s", PQgetvalue(res, 0, 4));
    if (!PQgetisnull(res, 0, 7))
        log_warnx("refresh_vms: not adopted, a name vmrq cannot hold (1 to 100 characters, no control"
                  " character, no space at either end): %s", PQgetvalue(res, 0, 7));
    if (!PQgetisnull(res, 0, 9))
        log_warnx("refresh_vms: left as they are, another session holds their rows: %s; the next"
                  " refresh takes them", PQgetvalue(res, 0, 9));
    out = json_object_new_object();
    json_object_object_add(out, "added", json_object_new_int(atoi(PQgetvalue(res, 0, 0))));
    json_object_object_add(out, "refreshed", json_object_new_int(atoi(PQgetvalue(res, 0, 1))));
    json_object_object_add(out, "missing", json_object_new_int(atoi(PQgetvalue(res, 0, 2))));
    json_object_object_add(out, "conflicts", json_object_new_int(atoi(PQgetvalue(res, 0, 3))));
    json_object_object_add(out, "held", json_object_new_int(atoi(PQgetvalue(res, 0, 8))));
    PQclear(res);
    res = PQexecParams(conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        job_fail_pg(job, conn, res, "refresh_vms");
        json_object_put(out);
    } else {
        job_set_output(job, out);
    }
    PQclear(res);
    goto cleanup;

rollback:
    PQclear(PQexecParams(conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0));
cleanup:
    free(doms);
    json_object_put(rows);
}

/* One domain's row in line with the hypervisor (missing if the hypervisor lost it). */
void
handle_refresh_machine(struct vmrqd_job *job, struct vmrqd_worker *w)
{
    struct domain d;

    if (domain_open(job, w, &d) < 0)
        return; /* domain_open marked it missing if the hypervisor does not have it */
    if (domain_authorize(job, &d, "refresh") == 0 && domain_sync(job, w, &d) == 0)
        job_set_output(job, output_of(&d, NULL, NULL));
    domain_close(w, &d);
}
