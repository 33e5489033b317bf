/*
 * events.c - lifecycle and graphics events into the database (see events.h).
 *
 * The driver's event thread only queues: it also runs libvirt's keepalive, and a database that
 * is slow or away must not stall it. A thread of the sink takes what has queued and writes it
 * in one statement and one transaction: a classroom starting 30 desktops makes 30 events, and
 * one commit instead of 30 is what lets the events keep up with the requests (make bench,
 * domains). When the database cannot be reached the queue keeps at most EVENTS_MAX events;
 * those dropped beyond that, and those of a batch the database refused, are made up for by a
 * refresh_vms of this node, enqueued as soon as the database answers again. A domain row another
 * session holds is not waited for: its events wait in the sink, in order, and the others' go on.
 * Nor is, past LOCK_WAIT, any other lock a batch meets (another session's uncommitted insert of
 * the same domain or request): that batch waits in the sink likewise.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "clock.h"
#include "ctl.h"
#include "domain.h"
#include "events.h"
#include "log.h"
#include "stmt.h"
#include "vmrq.h"

#define EVENTS_MAX 100000  /* queued while the database is away; beyond, dropped and refreshed */
#define EVENTS_BATCH 1000  /* per statement */
#define RETRY_MS 1000      /* between attempts while the database is away */
#define LINGER_MS 5        /* after a batch, time for the next one to gather (bursts only) */
#define HELD_FIRST_MS 5    /* a held row's events are tried again after this, doubling... */
#define HELD_MAX_MS 1000   /* ...up to this; */
#define HELD_TELL_MS 1000  /* logged once they have waited this long (vmrqd's own completions
                            * hold a row for a millisecond or two: the first try again finds it free) */
#define LOCK_WAIT "100ms"  /* the sink's lock_timeout: then its batch waits in the held list */

struct pending {
    struct pending *next;
    double at;                                  /* when it arrived, epoch seconds */
    char *name, *uuid, *status, *event, *detail; /* into the same allocation; uuid, status may be NULL */
    char *viewer, *address;                      /* likewise; NULL but for graphics events */
    long long held_ms;                           /* when it first waited for a row another session
                                                  * holds (now_ms()), 0 if never */
    bool told;                                   /* that wait has been logged */
};

struct events {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct pending *head, *tail; /* guarded by lock */
    size_t queued;               /* guarded by lock */
    size_t dropped;              /* guarded by lock: over EVENTS_MAX, not yet made up for */
    bool refresh;                /* guarded by lock: a refresh_vms is owed */
    bool stopping;               /* guarded by lock */
    size_t held_n;               /* guarded by lock: how many events the held list has */
    struct pending *held, *held_tail; /* sink thread only: the events, in order, of domains whose
                                       * row another session holds, written again later */
    long long held_again_ms;     /* sink thread only: when */
    long long held_backoff_ms;   /* sink thread only: HELD_FIRST_MS, doubling to HELD_MAX_MS */
    pthread_t thread;
    PGconn *conn;                /* the sink thread's */
    char *conninfo;
    char *node;
};

/* Whether the batch's status of domain x is as new as the row's: a batch with no status for it
 * (agent events, reboots) has no time either, and leaves it. */
#define NEWER_SQL DOMAIN_STATUS_NOT_OLDER("x", "EXCLUDED.status_seen")

/* $1: the batch, as JSON rows in arrival order; $2: the node. Only rows of that node are
 * written, and rows of no node, which become its own: an event of a domain whose name another
 * node's row holds is dropped (refresh_vms records the name in domain_conflicts). Each
 * domain's row is written once
 * with its last status (an INSERT ... ON CONFLICT may touch a row only once) unless a newer
 * observation is there already (a completion's reading: sql/functions/domains.sql), its row
 * locked first in id order like every writer of several domains (see vmrq_complete()); every
 * event is kept; a domain's pending force_shutdown is moot when the batch says it stopped
 * (vmrq_moot_force_shutdowns(), sql/functions/transitions.sql). Returns the domains whose
 * force_shutdown was moot. */
static const char batch_sql[] =
    "WITH ev AS (SELECT * FROM jsonb_to_recordset($1::jsonb)"
    "                 AS e(n int, name text, uuid uuid, status text, event text, detail text, at float8,"
    "                      viewer text, address text)"
    "               WHERE vmrq_name_ok(name)),"  /* a name vmrq cannot hold is left out (names.sql) */
    "     alld AS (SELECT name, (array_agg(uuid ORDER BY n DESC) FILTER (WHERE uuid IS NOT NULL))[1] AS uuid,"
    "                    (array_agg(status ORDER BY n DESC) FILTER (WHERE status IS NOT NULL))[1] AS status,"
    "                    to_timestamp(max(at) FILTER (WHERE status IS NOT NULL)) AS seen,"
    "                    (array_agg(viewer ORDER BY n DESC) FILTER (WHERE viewer IS NOT NULL))[1] AS viewer,"
    "                    (array_agg(address ORDER BY n DESC) FILTER (WHERE viewer IS NOT NULL))[1] AS viewer_address,"
    "                    to_timestamp(max(at) FILTER (WHERE viewer IS NOT NULL)) AS viewer_since,"
    "                    bool_or(event = 'stopped') AS stopped,"
    "                    (array_agg(event ORDER BY n DESC))[1] IN ('stopped', 'undefined') AS going"
    "               FROM ev GROUP BY name),"
    "     lk AS (SELECT o.id, o.name FROM domains o WHERE o.name = ANY (ARRAY(SELECT name FROM alld))"
    "             ORDER BY o.id FOR UPDATE SKIP LOCKED),"
    /* a row another session holds is not waited for: its domain's events are left out, and
     * returned, for the sink to write again later (the rows it can take, it takes) */
    "     held AS (SELECT o.name FROM domains o WHERE o.name = ANY (ARRAY(SELECT name FROM alld))"
    "                AND o.name NOT IN (SELECT name FROM lk)),"
    "     dom AS (SELECT * FROM alld WHERE name NOT IN (SELECT name FROM held)),"
    "     d AS (INSERT INTO domains AS x (name, uuid, status, status_seen, id_node, viewer, viewer_since, viewer_address)"
    "           SELECT name, CASE WHEN NOT EXISTS (SELECT 1 FROM domains o WHERE o.uuid = dom.uuid AND o.name <> dom.name)"
    "                             THEN uuid END,"  /* renamed: the old name's row keeps the uuid */
    "                  coalesce(status, 'unknown'), seen, (SELECT id FROM nodes WHERE name = $2),"
    "                  viewer, viewer_since, viewer_address"
    /* a domain the table does not know is added, but not from the last words of one going away:
     * those of a desktop remove_domain has just removed would bring its row back. Whether its
     * row is still there is asked of the rows locked (lk), not of the statement's snapshot: a
     * removal that committed while this waited for the lock has left nothing to lock */
    "             FROM dom WHERE (SELECT count(*) FROM lk) >= 0"
    "              AND (NOT going OR dom.name IN (SELECT name FROM lk)) ORDER BY name"
    "           ON CONFLICT (name) DO UPDATE"
    "              SET status = CASE WHEN " NEWER_SQL " THEN EXCLUDED.status ELSE x.status END,"
    "                  status_seen = greatest(x.status_seen, EXCLUDED.status_seen),"
    "                  uuid = coalesce(x.uuid, EXCLUDED.uuid), id_node = EXCLUDED.id_node,"
    /* the viewer: the batch's last graphics event, if it had one */
    "                  viewer = coalesce(EXCLUDED.viewer, x.viewer),"
    "                  viewer_since = CASE WHEN EXCLUDED.viewer IS DISTINCT FROM x.viewer AND EXCLUDED.viewer IS NOT NULL"
    "                                      THEN EXCLUDED.viewer_since ELSE x.viewer_since END,"
    "                  viewer_address = CASE WHEN EXCLUDED.viewer IS NULL THEN x.viewer_address"
    "                                        ELSE EXCLUDED.viewer_address END,"
    "                  date_changed = CASE WHEN " NEWER_SQL " AND x.status IS DISTINCT FROM EXCLUDED.status"
    "                                      THEN now() ELSE x.date_changed END"
    /* another node's row of that name is not this node's to write; its events are left out */
    "            WHERE x.id_node IS NULL OR x.id_node = EXCLUDED.id_node"
    "           RETURNING x.id, x.name),"
    "     e AS (INSERT INTO domain_events (id_domain, domain, event, detail, at, address)"
    "           SELECT d.id, ev.name, ev.event, ev.detail, to_timestamp(ev.at), ev.address"
    "             FROM ev JOIN d ON d.name = ev.name ORDER BY ev.n),"
    "     down AS (SELECT d.id FROM d JOIN dom ON dom.name = d.name WHERE dom.stopped),"
    "     moot AS (SELECT m.id_domain FROM vmrq_moot_force_shutdowns(ARRAY(SELECT id FROM down)) AS m(id_domain)),"
    /* a volatile desktop is removed, disks and row, as soon as it stops (no-duplicate: one removal) */
    "     gone AS (INSERT INTO requests (command, args)"
    "              SELECT 'remove_domain', jsonb_build_object('uid', v.id_owner, 'id_domain', v.id)"
    "                FROM domains v WHERE v.id = ANY (ARRAY(SELECT id FROM down)) AND v.is_volatile"
    "                 AND v.id_owner IS NOT NULL"
    "              ON CONFLICT DO NOTHING RETURNING id),"
    /* domains.shutdown_disconnected: a viewer back makes the pending shutdown moot
     * (vmrq_moot_unwatched(), sql/functions/transitions.sql); a viewer gone from a running
     * desktop enqueues one at now + that many seconds, for its owner, unless one is pending */
    "     back AS (SELECT vmrq_moot_unwatched(ARRAY(SELECT d.id FROM d JOIN dom ON dom.name = d.name"
    "                                               WHERE dom.viewer = 'connected')) AS n),"
    "     away AS (INSERT INTO requests (command, args)"
    "              SELECT 'shutdown', jsonb_build_object('uid', v.id_owner, 'id_domain', v.id, 'policy', 'unwatched',"
    "                                       'at', (now() + make_interval(secs => v.shutdown_disconnected))::text)"
    "                FROM domains v JOIN d ON d.id = v.id JOIN dom ON dom.name = d.name"
    "               WHERE dom.viewer = 'disconnected' AND NOT dom.going AND v.shutdown_disconnected IS NOT NULL"
    "                 AND v.id_owner IS NOT NULL AND v.status IN ('running', 'paused')"
    "                 AND NOT EXISTS (SELECT 1 FROM requests q WHERE q.id_domain = v.id AND q.command = 'shutdown'"
    "                                    AND q.status IN ('requested', 'waiting') AND q.args->>'policy' = 'unwatched')"
    "              RETURNING id, id_domain)"
    " SELECT DISTINCT d.name, 'its pending force_shutdown is moot', false FROM moot JOIN d ON d.id = moot.id_domain"
    " UNION ALL SELECT NULL, n || ' unwatched shutdown(s) moot: a viewer is back', false FROM back WHERE n > 0"
    " UNION ALL SELECT d.name, 'no viewer: shutdown ' || away.id || ' enqueued', false FROM away JOIN d ON d.id = away.id_domain"
    " UNION ALL SELECT name, NULL, true FROM held";

static const struct stmt batch_stmt = { STMT_EVENTS, "vmrq_events", batch_sql, 2 };

/* The sink's connection, opened again if it was lost; NULL (logged once per outage) if the
 * database does not answer. Sink thread only. */
static PGconn *
sink_db(struct events *ev, bool *warned)
{
    PGresult *res = NULL;

    if (ev->conn && PQstatus(ev->conn) == CONNECTION_OK)
        return ev->conn;
    PQfinish(ev->conn);
    ev->conn = ctl_open(ev->conninfo, "vmrqd events");
    /* Not waited for past LOCK_WAIT: a domain, or a request the batch would enqueue, that
     * another session has inserted and not committed (a unique index's twin), a request row it
     * holds, or the notification queue's lock at the commit: each would keep the sink, and
     * vmrqd's stop, until that session ends. */
    if (PQstatus(ev->conn) == CONNECTION_OK)
        res = PQexec(ev->conn, "SET lock_timeout = '" LOCK_WAIT "'");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        const char *m = PQerrorMessage(ev->conn);
        if (!*warned)
            log_warnx("domain events wait for the database: %.*s", (int)strcspn(m, "\n"), m);
        *warned = true;
        PQclear(res);
        PQfinish(ev->conn);
        ev->conn = NULL;
        return NULL;
    }
    PQclear(res);
    if (*warned)
        log_info("domain events: database reachable again");
    *warned = false;
    return ev->conn;
}

static void
pending_free_list(struct pending *p)
{
    while (p) {
        struct pending *next = p->next;
        free(p);
        p = next;
    }
}

/* The batch as the JSON rows batch_sql reads (the caller json_object_put()s it); NULL if out
 * of memory. */
static struct json_object *
batch_json(const struct pending *p)
{
    struct json_object *rows = json_object_new_array();
    int n = 0;

    for (; rows && p; p = p->next) {
        struct json_object *row = json_object_new_object();
        if (!row) {
            json_object_put(rows);
            return NULL;
        }
        json_object_object_add(row, "n", json_object_new_int(n++));
        json_object_object_add(row, "name", json_object_new_string(p->name));
        json_object_object_add(row, "uuid", p->uuid ? json_object_new_string(p->uuid) : NULL);
        json_object_object_add(row, "status", p->status ? json_object_new_string(p->status) : NULL);
        json_object_object_add(row, "event", json_object_new_string(p->event));
        json_object_object_add(row, "detail", json_object_new_string(p->detail));
        json_object_object_add(row, "at", json_object_new_double(p->at));
        json_object_object_add(row, "viewer", p->viewer ? json_object_new_string(p->viewer) : NULL);
        json_object_object_add(row, "address", p->address ? json_object_new_string(p->address) : NULL);
        json_object_array_add(rows, row);
    }
    return rows;
}

/* Whether an event of domain `name` waits in the held list. Sink thread only. */
static bool
held_has(const struct events *ev, const char *name)
{
    for (const struct pending *p = ev->held; p; p = p->next)
        if (strcmp(p->name, name) == 0)
            return true;
    return false;
}

/* Moves from *list to the held list's tail, order kept, the events of domain `name`, or with
 * NULL those of every domain the held list has; returns how many. Sink thread only. */
static size_t
held_take(struct events *ev, struct pending **list, const char *name)
{
    struct pending **pp = list;
    size_t n = 0;

    while (*pp) {
        struct pending *p = *pp;
        if (name ? strcmp(p->name, name) != 0 : !held_has(ev, p->name)) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        p->next = NULL;
        if (!p->held_ms)
            p->held_ms = now_ms();
        if (ev->held_tail)
            ev->held_tail->next = p;
        else
            ev->held = p;
        ev->held_tail = p;
        n++;
    }
    return n;
}

/* Moves the whole of *list to the held list: its statement waited LOCK_WAIT for a lock another
 * session holds, and cannot tell for which domain. Logged once they have waited HELD_TELL_MS.
 * Returns how many. Sink thread only. */
static size_t
held_all(struct events *ev, struct pending **list)
{
    long long now = now_ms(), since = now;
    size_t n = 0;
    bool told = true;

    for (const struct pending *p = *list; p; p = p->next) {
        if (p->held_ms && p->held_ms < since)
            since = p->held_ms;
        told = told && p->told;
    }
    if (!told && now - since >= HELD_TELL_MS) {
        log_warnx("domain events not recorded for %lld ms: they wait for a lock another session holds"
                  " (a domain or a request it has inserted and not committed, or a request row); tried"
                  " again every %d ms, later events of other domains go on", now - since, HELD_MAX_MS);
        for (struct pending *p = *list; p; p = p->next)
            p->told = true;
    }
    while (*list)
        n += held_take(ev, list, (*list)->name);
    return n;
}

/* Writes one batch, *batch. The events of domains whose row another session holds go to the
 * held list (*held_n: how many); *batch keeps those written, for the caller to free. 0 when
 * written, 1 when the database refused it (logged; a refresh is owed), -1 when the database
 * could not be reached (the caller keeps the batch and tries again). */
static int
write_batch(struct events *ev, struct pending **batch, size_t n, size_t *held_n, bool *warned)
{
    const char *params[2] = { NULL, ev->node };
    PGconn *conn = sink_db(ev, warned);
    struct json_object *rows;
    PGresult *res;

    *held_n = 0;
    if (!conn)
        return -1;
    if (!(rows = batch_json(*batch))) {
        log_warnx("%zu domain events not recorded: out of memory; refresh_vms will make up for them", n);
        return 1;
    }
    params[0] = json_object_to_json_string_ext(rows, JSON_C_TO_STRING_PLAIN);
    res = stmt_exec(conn, &batch_stmt, params);
    json_object_put(rows);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        bool lost = PQstatus(conn) != CONNECTION_OK;
        if (!lost && state && strcmp(state, "55P03") == 0) { /* lock_timeout: nothing written */
            PQclear(res);
            *held_n = held_all(ev, batch);
            return 0;
        }
        if (!lost)
            log_warnx("%zu domain events not recorded: %s; refresh_vms will make up for them", n,
                      m ? m : PQerrorMessage(conn));
        PQclear(res);
        return lost ? -1 : 1;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        const char *name = PQgetvalue(res, i, 0);
        long long since = 0;
        bool told = false;
        size_t k;

        if (strcmp(PQgetvalue(res, i, 2), "t") != 0)
            continue;
        for (const struct pending *p = *batch; p; p = p->next)
            if (strcmp(p->name, name) == 0) {
                if (p->held_ms && (!since || p->held_ms < since))
                    since = p->held_ms;
                told = told || p->told;
            }
        k = held_take(ev, batch, name);
        *held_n += k;
        log_debug("domain %s: %zu event(s) wait for its row", name, k);
        if (told || !since || now_ms() - since < HELD_TELL_MS)
            continue;
        log_warnx("domain %s: %zu event(s) not recorded for %lld ms: another session holds its row;"
                  " tried again every %d ms, the other domains' go on", name, k, now_ms() - since, HELD_MAX_MS);
        for (struct pending *p = ev->held; p; p = p->next)
            p->told = p->told || strcmp(p->name, name) == 0;
    }
    if (log_get_level() >= LOG_LEVEL_INFO) {
        for (const struct pending *p = *batch; p; p = p->next)
            log_info("domain %s%s: %s/%s", p->name, p->told ? " (its row free again)" : "", p->event, p->detail);
        for (int i = 0; i < PQntuples(res); i++)
            if (strcmp(PQgetvalue(res, i, 2), "t") != 0)
                log_info("domain %s: %s", PQgetisnull(res, i, 0) ? "events" : PQgetvalue(res, i, 0),
                         PQgetvalue(res, i, 1));
    }
    PQclear(res);
    return 0;
}

/* Enqueues refresh_vms for this node through libvmrq, as the daemon's periodic one is: events
 * were missed (hypervisor reconnection, events dropped or refused). 0, or -1 if the database
 * could not be reached or another session has enqueued the same and not committed (still owed:
 * its transaction may roll back). */
static int
write_refresh(struct events *ev, bool *warned)
{
    PGconn *conn = sink_db(ev, warned);
    vmrq_request *req;
    int ret = 0;

    if (!conn)
        return -1;
    if (!(req = vmrq_request_new("refresh_vms")) || vmrq_request_set_string(req, "node", ev->node) < 0 ||
        vmrq_request_enqueue(conn, req) < 0) {
        if (vmrq_error_code() == VMRQ_ERR_TIMEOUT) { /* its twin, not committed: owed still */
            log_info("refresh_vms for the missed events waits: another session has enqueued the same"
                     " and not committed yet");
            ret = -1;
        } else {
            log_warnx("no refresh_vms enqueued for the missed events: %s", vmrq_error_message());
            ret = PQstatus(conn) != CONNECTION_OK ? -1 : 0;
        }
    } else {
        log_info("events were missed: refresh_vms is request %lld", vmrq_request_id(req));
    }
    vmrq_request_free(req);
    return ret;
}

/* Sleeps `ms`, or until stopped or (with `for_events`) until a full batch has queued; with
 * ev->lock held. */
static void
wait_ms(struct events *ev, long ms, bool for_events)
{
    struct timespec until;

    clock_deadline(&until, ms);
    while (!ev->stopping && !(for_events && ev->queued >= EVENTS_BATCH) &&
           pthread_cond_timedwait(&ev->wake, &ev->lock, &until) == 0)
        ;
}

/* Whether the held list is to be tried again now (when stopping, once more). With ev->lock held. */
static bool
held_due(const struct events *ev)
{
    return ev->held && (ev->stopping || now_ms() >= ev->held_again_ms);
}

/* Sleeps until something is to be written, or until stopped; with ev->lock held. */
static void
wait_work(struct events *ev)
{
    while (!ev->head && !ev->refresh && !ev->stopping && !held_due(ev)) {
        struct timespec until;

        if (!ev->held) {
            pthread_cond_wait(&ev->wake, &ev->lock);
            continue;
        }
        clock_deadline(&until, (long)(ev->held_again_ms - now_ms()) + 1);
        pthread_cond_timedwait(&ev->wake, &ev->lock, &until);
    }
}

static struct pending *
list_last(struct pending *p)
{
    while (p && p->next)
        p = p->next;
    return p;
}

/* The sink thread: takes at most EVENTS_BATCH events at a time, writes them, and owes a
 * refresh for what could not be written. The events of a domain whose row another session
 * holds wait in the held list, with those of that domain that come after them (order kept),
 * and are tried again on a clock of their own, in a statement of their own, while the others'
 * go on; so do those of a batch that timed out on another lock. When stopping, it
 * writes what is queued (one attempt if the database is away or a row still held) and returns. */
static void *
sink_loop(void *opaque)
{
    struct events *ev = opaque;
    bool warned = false;

    pthread_mutex_lock(&ev->lock);
    for (;;) {
        struct pending *batch, *last;
        size_t n = 1, held_n = 0;
        bool refresh, had_held = ev->held != NULL;
        int rc;

        wait_work(ev);
        if (!ev->head && !ev->refresh && !ev->held)
            break; /* stopping, nothing left */
        if (held_due(ev)) {
            /* alone: their statement may wait again for another session's lock, and time out
             * (write_batch()); the events queued meanwhile go in the next */
            batch = ev->held;
            n = ev->held_n;
            ev->held = ev->held_tail = NULL;
            ev->held_n = 0;
        } else if ((batch = ev->head)) {
            size_t k;

            for (last = batch; last->next && n < EVENTS_BATCH; last = last->next)
                n++;
            ev->head = last->next;
            if (!ev->head)
                ev->tail = NULL;
            last->next = NULL;
            ev->queued -= n;
            k = held_take(ev, &batch, NULL); /* behind those of their domain held */
            n -= k;
            ev->held_n += k;
        } else {
            n = 0;
        }
        refresh = (ev->refresh || ev->dropped > 0) && !ev->stopping; /* a start refreshes anyway */
        if (ev->dropped > 0)
            log_warnx("%zu domain events dropped while the database was away (more than %d queued);"
                      " refresh_vms will make up for them", ev->dropped, EVENTS_MAX);
        ev->dropped = 0;
        ev->refresh = false;
        pthread_mutex_unlock(&ev->lock);

        rc = batch ? write_batch(ev, &batch, n, &held_n, &warned) : 0;
        if (rc > 0)
            refresh = true;
        if (rc >= 0 && refresh && write_refresh(ev, &warned) == 0)
            refresh = false;

        pthread_mutex_lock(&ev->lock);
        ev->refresh = ev->refresh || refresh;
        ev->held_n += held_n;
        if (held_n > 0) {
            ev->held_backoff_ms = clock_backoff(had_held ? ev->held_backoff_ms : 0, HELD_FIRST_MS, HELD_MAX_MS);
            ev->held_again_ms = now_ms() + ev->held_backoff_ms;
        } else if (had_held && !ev->held) {
            ev->held_backoff_ms = 0;
        }
        if (ev->stopping && ev->held && rc >= 0) {
            log_warnx("stopping with %zu domain events not recorded (another session holds their"
                      " rows); the next start's refresh makes up for them", ev->held_n);
            pending_free_list(ev->held);
            ev->held = ev->held_tail = NULL;
            ev->held_n = 0;
        }
        if (rc < 0) {
            if (ev->stopping) {
                log_warnx("stopping with %zu domain events not recorded (no database); the next"
                          " start's refresh makes up for them", n + ev->queued + ev->held_n);
                pending_free_list(batch);
                break;
            }
            if (batch) { /* back to the front, order kept */
                last = list_last(batch);
                last->next = ev->head;
                ev->head = batch;
                if (!ev->tail)
                    ev->tail = last;
                ev->queued += n;
            }
            wait_ms(ev, RETRY_MS, false);
        } else {
            pending_free_list(batch);
            if (ev->refresh && !ev->head && !ev->stopping)
                wait_ms(ev, RETRY_MS, false); /* the refresh failed: not in a busy loop */
            else if (batch)
                /* An event alone is written at once; in a burst (a classroom starting), the
                 * events that come while a batch is written and in the next few milliseconds
                 * go in one statement: each costs the database about a third of a
                 * millisecond whatever its size (make bench, domains). */
                wait_ms(ev, LINGER_MS, true);
        }
    }
    pending_free_list(ev->head);
    pending_free_list(ev->held);
    ev->head = ev->tail = ev->held = ev->held_tail = NULL;
    ev->queued = ev->held_n = 0;
    pthread_mutex_unlock(&ev->lock);
    return NULL;
}

struct events *
events_new(const char *conninfo, const char *node)
{
    struct events *ev = calloc(1, sizeof(*ev));
    sigset_t all, old;
    int err;

    if (!ev || !(ev->conninfo = strdup(conninfo)) || !(ev->node = strdup(node))) {
        log_warnx("events: out of memory");
        goto fail;
    }
    pthread_mutex_init(&ev->lock, NULL);
    pthread_cond_init(&ev->wake, NULL);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* signals are for the main loop only */
    err = pthread_create(&ev->thread, NULL, sink_loop, ev);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        log_warnx("events: cannot start the sink thread: %s", strerror(err));
        pthread_cond_destroy(&ev->wake);
        pthread_mutex_destroy(&ev->lock);
        goto fail;
    }
    return ev;

fail:
    if (ev) {
        free(ev->conninfo);
        free(ev->node);
    }
    free(ev);
    return NULL;
}

/* Copies `s` into *at, advancing it; NULL stays NULL. */
static char *
put(char **at, const char *s)
{
    char *p = *at;
    size_t len;

    if (!s)
        return NULL;
    len = strlen(s) + 1;
    memcpy(p, s, len);
    *at += len;
    return p;
}

void
events_on_domain(void *opaque, const struct dom_event *e)
{
    struct events *ev = opaque;
    const char *uuid = e->uuid && e->uuid[0] ? e->uuid : NULL;
    size_t size = sizeof(struct pending) + strlen(e->name) + strlen(e->event) + strlen(e->detail) + 3 +
                  (uuid ? strlen(uuid) + 1 : 0) + (e->status ? strlen(e->status) + 1 : 0) +
                  (e->viewer ? strlen(e->viewer) + 1 : 0) + (e->address ? strlen(e->address) + 1 : 0);
    struct pending *p = malloc(size);
    char *at;

    pthread_mutex_lock(&ev->lock);
    if (!p || ev->queued + ev->held_n >= EVENTS_MAX) {
        ev->dropped++;
        pthread_mutex_unlock(&ev->lock);
        free(p);
        return;
    }
    at = (char *)(p + 1);
    p->next = NULL;
    p->held_ms = 0;
    p->told = false;
    p->at = clock_epoch();
    p->name = put(&at, e->name);
    p->uuid = put(&at, uuid);
    p->status = put(&at, e->status);
    p->event = put(&at, e->event);
    p->detail = put(&at, e->detail);
    p->viewer = put(&at, e->viewer);
    p->address = put(&at, e->address);
    if (ev->tail)
        ev->tail->next = p;
    else
        ev->head = p;
    ev->tail = p;
    ev->queued++;
    pthread_cond_signal(&ev->wake);
    pthread_mutex_unlock(&ev->lock);
}

void
events_on_connection(void *opaque, bool up, const char *why)
{
    struct events *ev = opaque;

    if (!up) {
        log_warnx("hypervisor connection lost (%s): reconnecting; domain events wait until then", why);
        return;
    }
    /* Events were missed while the connection was down: refresh this node's domains. The
     * refresh is a request like any other, so it is in the history. */
    log_info("hypervisor connection back: events subscribed again; a refresh_vms follows");
    pthread_mutex_lock(&ev->lock);
    ev->refresh = true;
    pthread_cond_signal(&ev->wake);
    pthread_mutex_unlock(&ev->lock);
}

void
events_free(struct events *ev)
{
    if (!ev)
        return;
    pthread_mutex_lock(&ev->lock);
    ev->stopping = true;
    pthread_cond_signal(&ev->wake);
    pthread_mutex_unlock(&ev->lock);
    pthread_join(ev->thread, NULL);
    PQfinish(ev->conn);
    pthread_cond_destroy(&ev->wake);
    pthread_mutex_destroy(&ev->lock);
    free(ev->conninfo);
    free(ev->node);
    free(ev);
}
