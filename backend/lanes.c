/*
 * lanes.c - helper lanes draining inline backlogs in parallel (see lanes.h).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "claim.h"
#include "clock.h"
#include "ctl.h"
#include "dispatch.h"
#include "lanes.h"
#include "log.h"

struct lane {
    pthread_t thread;
    int index;
    char name[32]; /* of its connection: "vmrqd lane 0" */
    char where[16]; /* in its log lines: "lane 0" */
    struct lanes *lanes;
    PGconn *conn;
    long long lost_claim; /* see claim_jobs(); given back before this lane claims again */
};

struct lanes {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    unsigned long generation; /* bumped by lanes_wake() */
    bool stopping;
    int batch;                /* claim_batch, as of the last wake */
    long long backoff_ms;     /* retry_backoff, likewise */
    char *conninfo;
    int daemon;
    const char *node;
    struct vmrqd_worker *loop_worker;
    int n;
    struct lane *lane;
};

/* Requests wait on dependencies, and this lane may have just finished their parents: the main
 * loop, which moves waiting requests on, is told the way it hears of a new request. Without it
 * such a child waited for the loop's next completion or its fallback poll. */
static void
tell_loop(struct lane *l)
{
    const char *params[1] = { l->lanes->node };
    /* its own node's channel: waking every daemon for it would make each run a claim */
    PGresult *res = PQexecParams(l->conn,
                                 "SELECT pg_notify('vmrq_request_' || (SELECT id FROM nodes WHERE name = $1), '')",
                                 1, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        log_warnx("lane %d: cannot wake the loop for waiting requests: %s", l->index, PQerrorMessage(l->conn));
    PQclear(res);
}

static bool
stopping(struct lanes *ls)
{
    bool v;

    pthread_mutex_lock(&ls->lock);
    v = ls->stopping;
    pthread_mutex_unlock(&ls->lock);
    return v;
}

/* The lane's connection, opened again if it was lost, with the claim lost with the old one
 * given back (see claim_jobs()). Those requests are 'working' under this daemon and no one else
 * frees them while it lives, so with one to give back this keeps trying, every half second,
 * until it has or the daemon stops. false: not now (the main loop wakes the lane again at the
 * next backlog). */
static bool
lane_ready(struct lane *l, int daemon)
{
    struct lanes *ls = l->lanes;

    for (;;) {
        if (!l->conn || PQstatus(l->conn) != CONNECTION_OK) {
            PQfinish(l->conn);
            l->conn = ctl_open(ls->conninfo, l->name);
        }
        if (PQstatus(l->conn) == CONNECTION_OK && claim_release_lost(l->conn, daemon, &l->lost_claim) == 0)
            return true;
        if (!l->lost_claim || stopping(ls))
            return false;
        clock_sleep_ms(500);
    }
}

/* Claims, runs and records batches until one is not full. Outcomes that cannot be written are
 * written again (after reconnecting) until they are, or until the daemon stops: a request is
 * never left behind by a lane that lives. */
static void
drain(struct lane *l, int daemon, int batch, long long backoff_ms)
{
    struct lanes *ls = l->lanes;
    int n;

    do {
        struct vmrqd_job *list = NULL;
        struct claim_more more = { false, false };
        int limit[CLAIM_LANES] = { [CLAIM_INLINE] = batch };

        if (!lane_ready(l, daemon))
            return;
        if ((n = claim_jobs(l->conn, daemon, ls->node, limit, &list, &l->lost_claim)) < 0) {
            if (!l->lost_claim)
                return;
            n = batch; /* the connection broke: give the claim back, and go on with the backlog */
            continue;
        }
        for (struct vmrqd_job *j = list; j; j = j->next) {
            j->retention_ms = 0;
            dispatch_inline(j, ls->loop_worker, l->where, backoff_ms);
        }
        while (list) {
            struct vmrqd_job *kept;
            if (claim_complete(l->conn, daemon, list, backoff_ms, &more) == 0) {
                kept = claim_take_deferred(&list); /* a domain row held by another session */
                job_free_list(list);
                if (!(list = kept))
                    break;
            }
            if (stopping(ls)) {
                log_warnx("lane %d: outcomes not written; recovery will take them back", l->index);
                break;
            }
            clock_sleep_ms(list->deferred ? 100 : 500);
            if (PQstatus(l->conn) != CONNECTION_OK)
                PQreset(l->conn);
        }
        if (more.waiting)
            tell_loop(l);
        job_free_list(list);
    } while (n == batch);
}

static void *
lane_main(void *arg)
{
    struct lane *l = arg;
    struct lanes *ls = l->lanes;
    unsigned long seen = 0;

    for (;;) {
        int batch;
        long long backoff;

        int daemon;

        pthread_mutex_lock(&ls->lock);
        while (ls->generation == seen && !ls->stopping)
            pthread_cond_wait(&ls->wake, &ls->lock);
        if (ls->stopping) {
            pthread_mutex_unlock(&ls->lock);
            break;
        }
        seen = ls->generation;
        batch = ls->batch;
        backoff = ls->backoff_ms;
        daemon = ls->daemon;
        pthread_mutex_unlock(&ls->lock);
        drain(l, daemon, batch, backoff);
    }
    PQfinish(l->conn);
    return NULL;
}

struct lanes *
lanes_new(int n, const char *conninfo, const char *node, struct vmrqd_worker *loop_worker)
{
    struct lanes *ls = calloc(1, sizeof(*ls));
    sigset_t all, old;

    if (!ls || !(ls->conninfo = strdup(conninfo)) || (n > 0 && !(ls->lane = calloc((size_t)n, sizeof(*ls->lane))))) {
        log_warnx("lanes: out of memory");
        if (ls)
            free(ls->conninfo);
        free(ls);
        return NULL;
    }
    pthread_mutex_init(&ls->lock, NULL);
    pthread_cond_init(&ls->wake, NULL);
    ls->node = node;
    ls->loop_worker = loop_worker;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 0; i < n; i++) {
        ls->lane[i].index = i;
        snprintf(ls->lane[i].name, sizeof(ls->lane[i].name), "vmrqd lane %d", i);
        snprintf(ls->lane[i].where, sizeof(ls->lane[i].where), "lane %d", i);
        ls->lane[i].lanes = ls;
        if (pthread_create(&ls->lane[i].thread, NULL, lane_main, &ls->lane[i]) != 0) {
            log_warnx("lanes: cannot start lane %d", i);
            break;
        }
        ls->n++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return ls;
}

void
lanes_wake(struct lanes *ls, const struct vmrqd_config *cfg, int daemon)
{
    if (!ls || ls->n == 0)
        return;
    pthread_mutex_lock(&ls->lock);
    ls->daemon = daemon;
    ls->batch = cfg->claim_batch;
    ls->backoff_ms = cfg->retry_backoff_ms;
    ls->generation++;
    pthread_cond_broadcast(&ls->wake);
    pthread_mutex_unlock(&ls->lock);
}

void
lanes_free(struct lanes *ls)
{
    if (!ls)
        return;
    pthread_mutex_lock(&ls->lock);
    ls->stopping = true;
    pthread_cond_broadcast(&ls->wake);
    pthread_mutex_unlock(&ls->lock);
    for (int i = 0; i < ls->n; i++)
        pthread_join(ls->lane[i].thread, NULL);
    pthread_mutex_destroy(&ls->lock);
    pthread_cond_destroy(&ls->wake);
    free(ls->lane);
    free(ls->conninfo);
    free(ls);
}
