/*
 * ctl.c - the control connection of vmrqd (see ctl.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"
#include "notify.h"
#include "stmt.h"

#define BACKOFF_MAX_MS 30000

static void
first_line(const char *msg, char *buf, size_t size)
{
    snprintf(buf, size, "%.*s", (int)strcspn(msg, "\n"), msg);
}

/* Runs a statement; false (logged) if it did not return `expect`. */
static bool
exec_ok(PGconn *conn, const char *sql, int n, const char *const *params, ExecStatusType expect,
        PGresult **out)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    char msg[512];

    if (PQresultStatus(res) != expect) {
        first_line(PQerrorMessage(conn), msg, sizeof(msg));
        log_warnx("database: %s", msg);
        PQclear(res);
        return false;
    }
    if (out)
        *out = res;
    else
        PQclear(res);
    return true;
}

static void
schedule_retry(struct ctl *ctl)
{
    ctl->backoff_ms = ctl->backoff_ms ? ctl->backoff_ms * 2 : 500;
    if (ctl->backoff_ms > BACKOFF_MAX_MS)
        ctl->backoff_ms = BACKOFF_MAX_MS;
    ctl->next_try_ms = now_ms() + ctl->backoff_ms;
}

/* Closes the connection and schedules the next try; says so unless this outage was told. */
static int
fail(struct ctl *ctl, bool quiet)
{
    PQfinish(ctl->conn);
    ctl->conn = NULL;
    schedule_retry(ctl);
    if (!quiet)
        log_warnx("database: retrying in %lld ms, then with growing pauses up to %d s",
                  ctl->backoff_ms, BACKOFF_MAX_MS / 1000);
    return -1;
}

/* Registers this daemon, or refreshes its row after a reconnection (a database restart keeps
 * our claims: the lease, not the session, decides when they are taken back). */
static bool
register_daemon(struct ctl *ctl, const struct vmrqd_config *cfg)
{
    char host[256], pid[16], id[16];
    const char *reg[4] = { cfg->node, host, pid, vmrq_version() };
    const char *beat[1] = { id };
    PGresult *res;

    if (ctl->daemon) {
        snprintf(id, sizeof(id), "%d", ctl->daemon);
        if (!exec_ok(ctl->conn, "UPDATE daemons SET heartbeat_at = now(), stopped_at = NULL WHERE id = $1",
                     1, beat, PGRES_COMMAND_OK, &res))
            return false;
        if (strcmp(PQcmdTuples(res), "1") == 0) {
            PQclear(res);
            return true;
        }
        PQclear(res);
        log_warnx("daemon %d vanished from table daemons; registering again", ctl->daemon);
    }
    if (gethostname(host, sizeof(host)) < 0)
        snprintf(host, sizeof(host), "unknown");
    host[sizeof(host) - 1] = '\0';
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    if (!exec_ok(ctl->conn, "INSERT INTO daemons (node, hostname, pid, version) VALUES ($1, $2, $3, $4)"
                            " RETURNING id", 4, reg, PGRES_TUPLES_OK, &res))
        return false;
    ctl->daemon = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    log_info("registered as daemon %d of node '%s'", ctl->daemon, cfg->node);
    return true;
}

int
ctl_node(PGconn *conn, const char *node, int *id, char **uri, char *msg, size_t len)
{
    const char *params[1] = { node };
    PGresult *res = PQexecParams(conn, "SELECT id, uri FROM nodes WHERE name = $1", 1, NULL, params,
                                 NULL, NULL, 0);
    char why[256];
    int ret = -1;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        first_line(PQerrorMessage(conn), why, sizeof(why));
        snprintf(msg, len, "database: cannot read table nodes: %s", why);
        goto cleanup;
    }
    if (PQntuples(res) == 0) {
        snprintf(msg, len, "node '%s' is not in table nodes: add it with 'vmrq node add %s --uri URI'"
                 " or set node (VMRQ_NODE)", node, node);
        goto cleanup;
    }
    *id = atoi(PQgetvalue(res, 0, 0));
    if (uri && !(*uri = strdup(PQgetvalue(res, 0, 1)))) {
        snprintf(msg, len, "out of memory");
        goto cleanup;
    }
    ret = 0;
cleanup:
    PQclear(res);
    return ret;
}

int
ctl_check_start(const struct vmrqd_config *cfg, char **uri)
{
    PGconn *conn = ctl_open(cfg->database, "vmrqd");
    char msg[512];
    int id, ret = -1;

    *uri = NULL;
    if (!conn || PQstatus(conn) != CONNECTION_OK) {
        if (!*cfg->libvirt_uri) {
            first_line(conn ? PQerrorMessage(conn) : "out of memory", msg, sizeof(msg));
            log_warnx("libvirt_uri is not set and nodes.uri cannot be read: cannot connect to the database: %s",
                      msg);
            goto cleanup;
        }
    } else {
        if (vmrq_db_check(conn) < 0 && vmrq_error_code() == VMRQ_ERR_STATE) {
            log_warnx("%s", vmrq_error_message());
            goto cleanup;
        }
        if (ctl_node(conn, cfg->node, &id, *cfg->libvirt_uri ? NULL : uri, msg, sizeof(msg)) < 0) {
            log_warnx("%s", msg);
            goto cleanup;
        }
    }
    if (!*uri && !(*uri = strdup(cfg->libvirt_uri))) {
        log_warnx("out of memory");
        goto cleanup;
    }
    ret = 0;
cleanup:
    PQfinish(conn);
    return ret;
}

PGconn *
ctl_open(const char *conninfo, const char *name)
{
    const char *keys[] = { "dbname", "fallback_application_name", NULL };
    const char *values[] = { conninfo, name, NULL };
    PGconn *conn = PQconnectdbParams(keys, values, 1);

    if (conn)
        PQsetNoticeProcessor(conn, log_libpq_notice, NULL); /* not raw on stderr: logged */
    return conn;
}

int
ctl_connect(struct ctl *ctl, const struct vmrqd_config *cfg)
{
    bool outage = ctl->backoff_ms > 0;
    char msg[512], listen_node[48];

    if (ctl->conn)
        return 0;
    if (now_ms() < ctl->next_try_ms)
        return -1;
    ctl->conn = ctl_open(cfg->database, "vmrqd");
    if (PQstatus(ctl->conn) != CONNECTION_OK) {
        first_line(PQerrorMessage(ctl->conn), msg, sizeof(msg));
        notify_status("waiting for the database: %s", msg);
        if (!outage)
            log_warnx("cannot connect to the database: %s", msg);
        return fail(ctl, outage);
    }
    if (vmrq_db_check(ctl->conn) < 0) {
        log_warnx("%s", vmrq_error_message());
        if (vmrq_error_code() != VMRQ_ERR_STATE)
            return fail(ctl, false);
        PQfinish(ctl->conn);
        ctl->conn = NULL;
        return -2; /* another schema than this build's: nothing to retry */
    }
    if (ctl_node(ctl->conn, cfg->node, &ctl->node, NULL, msg, sizeof(msg)) < 0) {
        log_warnx("%s", msg);
        PQfinish(ctl->conn);
        ctl->conn = NULL;
        return -2; /* removed while we ran (or never added): the operator's to fix */
    }
    /* LISTEN takes no parameter; the channel is made of the node's id, an integer */
    snprintf(listen_node, sizeof(listen_node), "LISTEN vmrq_request_%d", ctl->node);
    if (!exec_ok(ctl->conn, "LISTEN vmrq_request", 0, NULL, PGRES_COMMAND_OK, NULL) ||
        !exec_ok(ctl->conn, listen_node, 0, NULL, PGRES_COMMAND_OK, NULL) ||
        !register_daemon(ctl, cfg))
        return fail(ctl, false);
    if (outage)
        log_info("database connection is back");
    ctl->backoff_ms = 0;
    ctl->up_since_ms = ctl->last_beat_ms = now_ms();
    return 0;
}

bool
ctl_up(const struct ctl *ctl)
{
    return ctl->conn != NULL;
}

void
ctl_check(struct ctl *ctl)
{
    if (ctl->conn && PQstatus(ctl->conn) != CONNECTION_OK) {
        log_warnx("lost the database connection; reconnecting");
        notify_status("lost the database connection; reconnecting");
        PQfinish(ctl->conn);
        ctl->conn = NULL;
        ctl->backoff_ms = 0;
        schedule_retry(ctl);
    }
}

/* Prepared: the one statement an idle daemon runs. */
static const struct stmt beat_stmt = {
    STMT_BEAT, "vmrq_beat",
    "SELECT b.alive, b.recovered, b.pending, b.waiting"
    "  FROM vmrq_beat($1::int, $2::bigint * interval '1 millisecond', $3::boolean, $4::boolean, $5) b",
    5,
};

int
ctl_beat(struct ctl *ctl, const struct vmrqd_config *cfg, struct ctl_beat *b)
{
    char id[16], lease[24], msg[512];
    const char *params[5] = { id, lease, b->recover ? "t" : "f", b->poll ? "t" : "f", b->pools_node };
    PGresult *res;
    bool alive;

    b->recovered = 0;
    b->pending = b->waiting = false;
    if (!ctl->conn)
        return -1;
    snprintf(id, sizeof(id), "%d", ctl->daemon);
    snprintf(lease, sizeof(lease), "%lld", cfg->lease_ms);
    res = stmt_exec(ctl->conn, &beat_stmt, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        first_line(PQerrorMessage(ctl->conn), msg, sizeof(msg));
        log_warnx("database: beat: %s", msg);
        PQclear(res);
        return -1;
    }
    alive = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    b->recovered = atoi(PQgetvalue(res, 0, 1));
    b->pending = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
    b->waiting = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
    PQclear(res);
    if (!alive && !register_daemon(ctl, cfg)) /* deleted meanwhile: a row again, a new id */
        return -1;
    ctl->last_beat_ms = now_ms();
    return 0;
}

void
ctl_stop(struct ctl *ctl)
{
    char id[16];
    const char *params[1] = { id };

    if (ctl->conn && ctl->daemon) {
        snprintf(id, sizeof(id), "%d", ctl->daemon);
        exec_ok(ctl->conn, "UPDATE daemons SET stopped_at = now() WHERE id = $1", 1, params,
                PGRES_COMMAND_OK, NULL);
    }
    PQfinish(ctl->conn);
    ctl->conn = NULL;
}
