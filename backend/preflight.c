/*
 * preflight.c - the checks of `vmrqd -n` (see preflight.h). Each check is one function that
 * returns 0, or -1 with its problem in one line; preflight() stops at the first problem.
 */
#include <bsd/libutil.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "ctl.h"
#include "driver.h"
#include "log.h"
#include "preflight.h"

static void
first_line(const char *text, char *buf, size_t len)
{
    snprintf(buf, len, "%.*s", (int)strcspn(text, "\n"), text);
}

/* The pidfile can be locked (no other vmrqd holds it) and written where it is. A file that was
 * not there is removed again; one that was is left as found. */
static int
check_pidfile(const char *path, char *msg, size_t len)
{
    struct pidfh *pfh;
    pid_t other = 0;
    bool existed;

    if (!path)
        return 0;
    if (strcmp(path, VMRQD_DEFAULT_PIDFILE) == 0)
        mkdir(VMRQD_DEFAULT_PIDDIR, 0755); /* as a start would */
    existed = access(path, F_OK) == 0;
    if (!(pfh = pidfile_open(path, 0644, &other))) {
        if (errno == EEXIST)
            snprintf(msg, len, "pidfile %s: vmrqd is already running as pid %ld", path, (long)other);
        else
            snprintf(msg, len, "pidfile %s: %s (set pidfile to a place this user can write, or"
                     " to none)", path, strerror(errno));
        return -1;
    }
    if (existed)
        pidfile_close(pfh);
    else
        pidfile_remove(pfh);
    return 0;
}

/* The database's schema is this build's (vmrq_db_check(): derived from the embedded migrations
 * and sources, the check vmrqd itself makes at start); *version is its migration. */
static int
check_schema_version(PGconn *conn, int *version, char *msg, size_t len)
{
    if ((*version = vmrq_db_version(conn)) < 0 || vmrq_db_check(conn) < 0) {
        snprintf(msg, len, "database: %s", vmrq_error_message());
        return -1;
    }
    return 0;
}

/* The node this daemon serves is in table nodes (ctl_node()); *enabled tells whether it takes
 * requests, *uri (malloc'd) is its nodes.uri. */
static int
check_node(PGconn *conn, const char *node, bool *enabled, char **uri, char *msg, size_t len)
{
    const char *params[1] = { node };
    PGresult *res;
    int id;

    if (ctl_node(conn, node, &id, uri, msg, len) < 0)
        return -1;
    res = PQexecParams(conn, "SELECT enabled FROM nodes WHERE name = $1", 1, NULL, params, NULL, NULL, 0);
    *enabled = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
               strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return 0;
}

/* libvirt_uri opens, and is closed again. */
static int
check_hypervisor(const char *uri, char *msg, size_t len)
{
    struct driver *drv = driver_open(&driver_kvm_ops, uri);

    if (!drv) {
        snprintf(msg, len, "libvirt_uri '%s': %s", uri, driver_error_message());
        return -1;
    }
    driver_close(drv);
    return 0;
}

int
preflight(const struct vmrqd_config *cfg, const char *pidfile, char *msg, size_t len)
{
    /* connect_timeout first: a conninfo that sets its own wins */
    const char *keys[] = { "connect_timeout", "dbname", "fallback_application_name", NULL };
    const char *values[] = { "10", cfg->database, "vmrqd -n", NULL };
    PGconn *conn = NULL;
    bool enabled = false;
    char why[512], *node_uri = NULL;
    const char *uri;
    int version, ret = -1;

    if (check_pidfile(pidfile, msg, len) < 0)
        goto cleanup;
    conn = PQconnectdbParams(keys, values, 1);
    if (conn)
        PQsetNoticeProcessor(conn, log_libpq_notice, NULL);
    if (PQstatus(conn) != CONNECTION_OK) {
        first_line(PQerrorMessage(conn), why, sizeof(why));
        snprintf(msg, len, "database: cannot connect: %s", why);
        goto cleanup;
    }
    if (check_schema_version(conn, &version, msg, len) < 0 ||
        check_node(conn, cfg->node, &enabled, &node_uri, msg, len) < 0)
        goto cleanup;
    uri = *cfg->libvirt_uri ? cfg->libvirt_uri : node_uri; /* the node's when the file names none */
    if (check_hypervisor(uri, msg, len) < 0)
        goto cleanup;
    snprintf(msg, len, "database reachable, schema at version %d; node '%s'%s; %s opens%s",
             version, cfg->node, enabled ? "" : " (disabled: it takes no domain requests)",
             uri, *cfg->libvirt_uri ? "" : " (the node's uri)");
    ret = 0;
cleanup:
    free(node_uri);
    PQfinish(conn);
    return ret;
}
