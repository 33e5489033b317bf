/*
 * ctl.h - vmrqd's control connection: connecting with backoff, LISTEN vmrq_request, the
 * daemon's row in `daemons` (registration, heartbeat, stop), and noticing that it was lost.
 * Also how each of vmrqd's connections is opened: named, so that an operator can tell them
 * apart in pg_stat_activity.
 */
#ifndef VMRQD_CTL_H
#define VMRQD_CTL_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "clock.h"

#include "config.h"

struct ctl {
    PGconn *conn;          /* NULL while disconnected */
    int daemon;            /* daemons.id, 0 until registered */
    long long up_since_ms; /* monotonic time of the last successful connection */
    long long next_try_ms; /* while disconnected: when to try again */
    long long backoff_ms;
    long long last_beat_ms;
    int node;              /* nodes.id of cfg->node, as of the last connection */
};

/* Opens a connection to `conninfo` (a conninfo string or URI) that pg_stat_activity shows as
 * `name` ("vmrqd lane 0"), unless the conninfo sets application_name itself. Never NULL but when
 * out of memory, as PQconnectdb(); the caller checks PQstatus() and PQfinish()es it. */
PGconn *ctl_open(const char *conninfo, const char *name);

/* Node `node` in table nodes: its id into *id and, if uri is not NULL, its uri into *uri
 * (malloc'd, the caller's to free). 0 if found; -1 with one line in msg if it is not there
 * (naming `vmrq node add`) or the table cannot be read. */
int ctl_node(PGconn *conn, const char *node, int *id, char **uri, char *msg, size_t len);

/* What vmrqd checks before it opens anything: the database behind cfg->database has this
 * build's schema (vmrq_db_check()) and cfg->node is in table nodes. *uri gets the hypervisor to
 * open (malloc'd, the caller's): cfg->libvirt_uri, or the node's nodes.uri when that is empty.
 * -1 (logged: one line naming what to run) if the schema is another, the node is not there, or
 * the uri must come from a database that cannot be reached; 0 otherwise (a database that cannot
 * be reached now is ctl_connect()'s to wait for). */
int ctl_check_start(const struct vmrqd_config *cfg, char **uri);

/* Connects (if the backoff allows), checks the schema and the node, LISTENs (vmrq_request, for
 * requests any node may run, and vmrq_request_<nodes.id>, for this node's), registers the daemon
 * or refreshes its row. 0 when connected; -1 otherwise (logged once per outage, retried later);
 * -2 if the database has another schema than this build's or no row of this node (logged; no use
 * retrying). */
int ctl_connect(struct ctl *ctl, const struct vmrqd_config *cfg);
/* Whether the connection is up. */
bool ctl_up(const struct ctl *ctl);
/* After a failed statement: if the connection is gone, closes it and schedules a reconnect. */
void ctl_check(struct ctl *ctl);
/* What a beat asks for besides the heartbeat, and what it answers (see ctl_beat()). */
struct ctl_beat {
    bool recover;           /* take back the claims of daemons whose lease passed */
    bool poll;              /* the fallback poll: is anything pending, or waiting? */
    const char *pools_node; /* not NULL: manage_pools for that node's bases with a pool */
    int recovered;          /* answers: claims taken back */
    bool pending, waiting;  /* the poll's (false unless asked) */
};
/* The daemon's beat, one statement (vmrq_beat(), sql/functions/daemons.sql): the heartbeat and
 * what `b` asks for; the answers go into `b`. A daemon whose row was deleted registers again
 * (a new id). 0, or -1 on error (logged). */
int ctl_beat(struct ctl *ctl, const struct vmrqd_config *cfg, struct ctl_beat *b);
/* Records a clean stop (daemons.stopped_at) and closes the connection. */
void ctl_stop(struct ctl *ctl);

#endif /* VMRQD_CTL_H */
