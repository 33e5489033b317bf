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
};

/* Opens a connection to `conninfo` (a conninfo string or URI) that pg_stat_activity shows as
 * `name` ("vmrqd lane 0"), unless the conninfo sets application_name itself. Never NULL but when
 * out of memory, as PQconnectdb(); the caller checks PQstatus() and PQfinish()es it. */
PGconn *ctl_open(const char *conninfo, const char *name);

/* Whether the database behind cfg->database has this build's schema (vmrq_db_check()): -1 if
 * it has another (logged: one line naming what to run), 0 if it has this one or cannot be
 * reached now (ctl_connect() will say so, and check again). */
int ctl_check_schema(const struct vmrqd_config *cfg);

/* Connects (if the backoff allows), checks the schema, LISTENs, registers the daemon or
 * refreshes its row. 0 when connected; -1 otherwise (logged once per outage, retried later);
 * -2 if the database has another schema than this build's (logged; no use retrying). */
int ctl_connect(struct ctl *ctl, const struct vmrqd_config *cfg);
/* Whether the connection is up. */
bool ctl_up(const struct ctl *ctl);
/* After a failed statement: if the connection is gone, closes it and schedules a reconnect. */
void ctl_check(struct ctl *ctl);
/* Refreshes the heartbeat if a third of the lease has passed. -1 on error. */
int ctl_heartbeat(struct ctl *ctl, long long lease_ms);
/* Records a clean stop (daemons.stopped_at) and closes the connection. */
void ctl_stop(struct ctl *ctl);

#endif /* VMRQD_CTL_H */
