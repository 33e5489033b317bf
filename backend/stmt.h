/*
 * stmt.h - statements vmrqd runs many times, prepared once per connection. Planning costs more
 * than running most of them: the claim's plan alone takes about 2 ms; prepared, a request is
 * picked up in 0.2 ms (make bench, pickup latency p50). Each module keeps its SQL next to its
 * code and declares it as a `struct stmt` with an id from this enum.
 */
#ifndef VMRQD_STMT_H
#define VMRQD_STMT_H

#include <libpq-fe.h>

enum stmt_id {
    STMT_CLAIM,
    STMT_COMPLETE_DONE,
    STMT_COMPLETE,
    STMT_NEXT_DUE,
    STMT_DOMAIN_OPEN,
    STMT_CANCEL_MOOT,
    STMT_EVENTS,
    STMT_HANDLER_STARTED,
    STMT_START_POLICY,
    STMT_DISPLAY_WRITE,
    STMT_VIEWER,
    STMT_BEAT,
    STMT_RESOLVE_WAITING,
    STMT_RELEASE_LOST,
    STMT_GIVE_BACK,
    STMT_LAST /* at most 64 */
};

struct stmt {
    enum stmt_id id;
    const char *name; /* "vmrq_claim" */
    const char *sql;
    int nparams;
};

/* Runs `st` with `params` on `conn`, preparing it first if this connection's backend has not
 * seen it. The result is the caller's to check and PQclear(). Thread-safe. */
PGresult *stmt_exec(PGconn *conn, const struct stmt *st, const char *const *params);

#endif /* VMRQD_STMT_H */
