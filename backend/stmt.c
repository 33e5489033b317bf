/*
 * stmt.c - prepared statements per connection (see stmt.h). A connection is known by its
 * backend's pid; a pid reused by a new backend after a database restart shows up as "prepared
 * statement does not exist" (26000), and the statement is prepared again on the next call.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "log.h"
#include "stmt.h"

#define SLOTS 512

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int pid;
    uint64_t prepared; /* bit i: statement i */
} slots[SLOTS];

/* The slot of `pid`, or a free (or reused) one; with the lock held. */
static int
slot_of(int pid)
{
    int free_slot = -1;

    for (int i = 0; i < SLOTS; i++) {
        if (slots[i].pid == pid)
            return i;
        if (free_slot < 0 && slots[i].pid == 0)
            free_slot = i;
    }
    if (free_slot < 0)
        free_slot = pid % SLOTS; /* full: forget someone; they will prepare again (42P05 is fine) */
    slots[free_slot].pid = pid;
    slots[free_slot].prepared = 0;
    return free_slot;
}

static void
mark(int pid, enum stmt_id id, bool prepared)
{
    int s;

    pthread_mutex_lock(&lock);
    s = slot_of(pid);
    if (prepared)
        slots[s].prepared |= UINT64_C(1) << id;
    else
        slots[s].prepared &= ~(UINT64_C(1) << id);
    pthread_mutex_unlock(&lock);
}

static bool
known(int pid, enum stmt_id id)
{
    bool yes;

    pthread_mutex_lock(&lock);
    yes = (slots[slot_of(pid)].prepared >> id) & 1;
    pthread_mutex_unlock(&lock);
    return yes;
}

PGresult *
stmt_exec(PGconn *conn, const struct stmt *st, const char *const *params)
{
    int pid = PQbackendPID(conn);
    const char *state;
    PGresult *res;

    if (!known(pid, st->id)) {
        res = PQprepare(conn, st->name, st->sql, st->nparams, NULL);
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (PQresultStatus(res) == PGRES_COMMAND_OK || (state && strcmp(state, "42P05") == 0)) {
            mark(pid, st->id, true);
        } else {
            PQclear(res); /* the plain statement will report what is wrong */
            return PQexecParams(conn, st->sql, st->nparams, NULL, params, NULL, NULL, 0);
        }
        PQclear(res);
    }
    res = PQexecPrepared(conn, st->name, st->nparams, params, NULL, NULL, 0);
    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state && strcmp(state, "26000") == 0)
        mark(pid, st->id, false);
    return res;
}
