/*
 * error.h - libvmrq's internal error reporting: an error is reported once, where it happens,
 * into a thread-local slot that vmrq_error_code()/vmrq_error_message() read (see vmrq.h).
 */
#ifndef VMRQ_ERROR_H
#define VMRQ_ERROR_H

#include <libpq-fe.h>

#include "vmrq.h"

/* Records error `code` with a printf-style one-line message. */
void vmrq_error_set(vmrq_errcode code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records the error of a failed libpq result (or of `conn` when res is NULL): the message the
 * server raised, mapped to a code by SQLSTATE (22023 invalid, P0002 not found, 55000 state,
 * 55P03 timeout, anything else database). `what` prefixes messages that are not vmrq's own,
 * e.g. "enqueue". */
void vmrq_error_from_pg(PGconn *conn, const PGresult *res, const char *what);

/* Runs one parameterized statement; unless its status is `expect`, records the error (as
 * vmrq_error_from_pg() with `what`) and returns NULL. The caller PQclear()s the result. */
PGresult *vmrq_pg_exec(PGconn *conn, const char *what, const char *sql, int n, const char *const *params,
                       ExecStatusType expect);

#endif /* VMRQ_ERROR_H */
