/*
 * events.c - lifecycle events into the database (see events.h), one statement per event.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "events.h"
#include "log.h"

struct events {
    pthread_mutex_t lock;
    PGconn *conn;
    char *conninfo;
    char *node;
};

/* $1 name, $2 uuid, $3 status (or NULL), $4 node, $5 event, $6 detail. */
static const char event_sql[] =
    "WITH d AS (INSERT INTO domains AS x (name, uuid, status, id_node)"
    "           VALUES ($1, $2::uuid, coalesce($3, 'unknown'), (SELECT id FROM nodes WHERE name = $4))"
    "           ON CONFLICT (name) DO UPDATE"
    "              SET status = coalesce($3, x.status), uuid = coalesce(x.uuid, EXCLUDED.uuid),"
    "                  date_changed = CASE WHEN x.status IS DISTINCT FROM coalesce($3, x.status)"
    "                                      THEN now() ELSE x.date_changed END"
    "           RETURNING x.id),"
    "     e AS (INSERT INTO domain_events (id_domain, domain, event, detail)"
    "           SELECT d.id, $1, $5, $6 FROM d),"
    "     moot AS (UPDATE requests r SET status = 'done', finished_at = now(), date_changed = now(),"
    "                     output = '{\"note\": \"domain already down\"}'"
    "                FROM d"
    "               WHERE $5 = 'stopped' AND r.id_domain = d.id AND r.command = 'force_shutdown'"
    "                 AND r.status IN ('requested', 'waiting')"
    "              RETURNING r.id)"
    " SELECT count(*) FROM moot";

/* The sink's connection, opened again if it was lost; called with ev->lock held. */
static void
reconnect(struct events *ev)
{
    if (!ev->conn || PQstatus(ev->conn) != CONNECTION_OK) {
        PQfinish(ev->conn);
        ev->conn = PQconnectdb(ev->conninfo);
    }
}

struct events *
events_new(const char *conninfo, const char *node)
{
    struct events *ev = calloc(1, sizeof(*ev));

    if (!ev || !(ev->conninfo = strdup(conninfo)) || !(ev->node = strdup(node))) {
        if (ev)
            free(ev->conninfo);
        free(ev);
        return NULL;
    }
    pthread_mutex_init(&ev->lock, NULL);
    return ev;
}

void
events_on_domain(void *opaque, const struct dom_event *e)
{
    struct events *ev = opaque;
    const char *params[6] = { e->name, e->uuid[0] ? e->uuid : NULL, e->status, ev->node, e->event, e->detail };
    PGresult *res;

    pthread_mutex_lock(&ev->lock);
    reconnect(ev);
    res = PQexecParams(ev->conn, event_sql, 6, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        log_warnx("event %s/%s of %s not recorded: %s", e->event, e->detail, e->name,
                  m ? m : PQerrorMessage(ev->conn));
    } else {
        log_info("domain %s: %s/%s%s", e->name, e->event, e->detail,
                 atoi(PQgetvalue(res, 0, 0)) > 0 ? "; its pending force_shutdown is moot" : "");
    }
    PQclear(res);
    pthread_mutex_unlock(&ev->lock);
}

void
events_on_connection(void *opaque, bool up, const char *why)
{
    struct events *ev = opaque;
    const char *params[1] = { ev->node };
    PGresult *res;

    if (!up) {
        log_warnx("hypervisor connection lost (%s): reconnecting; domain events wait until then", why);
        return;
    }
    /* Events were missed while the connection was down: refresh this node's domains. The
     * refresh is a request like any other, so it is in the history. */
    pthread_mutex_lock(&ev->lock);
    reconnect(ev);
    res = PQexecParams(ev->conn, "SELECT vmrq_request('refresh_vms', jsonb_build_object('node', $1::text))",
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        log_warnx("hypervisor connection back, but no refresh_vms enqueued: %s", m ? m : PQerrorMessage(ev->conn));
    } else {
        log_info("hypervisor connection back: events subscribed again; refresh_vms is request %s",
                 PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    pthread_mutex_unlock(&ev->lock);
}

void
events_free(struct events *ev)
{
    if (!ev)
        return;
    PQfinish(ev->conn);
    pthread_mutex_destroy(&ev->lock);
    free(ev->conninfo);
    free(ev->node);
    free(ev);
}
