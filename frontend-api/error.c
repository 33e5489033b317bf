/*
 * error.c - the thread-local "last error" of libvmrq (code + one-line message).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

static _Thread_local vmrq_errcode last_code;
static _Thread_local char last_message[1024];

vmrq_errcode
vmrq_error_code(void)
{
    return last_code;
}

const char *
vmrq_error_message(void)
{
    return last_message;
}

void
vmrq_error_reset(void)
{
    last_code = VMRQ_OK;
    last_message[0] = '\0';
}

/* Keeps a message on one line: newlines (libpq ends its messages with one) become spaces and
 * trailing blanks go. */
static void
one_line(char *s)
{
    size_t n;

    for (char *p = s; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    n = strlen(s);
    while (n > 0 && s[n - 1] == ' ')
        s[--n] = '\0';
}

void
vmrq_error_set(vmrq_errcode code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(last_message, sizeof(last_message), fmt, ap);
    va_end(ap);
    one_line(last_message);
    last_code = code;
}

PGresult *
vmrq_pg_exec(PGconn *conn, const char *what, const char *sql, int n, const char *const *params,
             ExecStatusType expect)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != expect) {
        vmrq_error_from_pg(conn, res, what);
        PQclear(res);
        return NULL;
    }
    return res;
}

void
vmrq_error_from_pg(PGconn *conn, const PGresult *res, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    vmrq_errcode code = VMRQ_ERR_DB;

    if (state && strcmp(state, "22023") == 0)
        code = VMRQ_ERR_INVALID;
    else if (state && strcmp(state, "P0002") == 0)
        code = VMRQ_ERR_NOT_FOUND;
    else if (state && strcmp(state, "55000") == 0)
        code = VMRQ_ERR_STATE;
    else if (state && strcmp(state, "55P03") == 0)
        code = VMRQ_ERR_TIMEOUT; /* the session's lock_timeout: what it waited for, another holds */

    if (code != VMRQ_ERR_DB && code != VMRQ_ERR_TIMEOUT && primary)
        vmrq_error_set(code, "%s", primary); /* vmrq's own message, as the catalog words it */
    else if (primary)
        vmrq_error_set(code, "%s: %s", what, primary);
    else
        vmrq_error_set(code, "%s: %s", what, conn ? PQerrorMessage(conn) : "unknown database error");
}
