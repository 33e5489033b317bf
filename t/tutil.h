/*
 * tutil.h - what the Check suites share: the suite constructors, a connection to the throwaway
 * database that t/with-pg started ($VMRQ_DB), SQL shortcuts that fail the test on error, and a
 * runner for the `vmrq` CLI ($VMRQ_CLI) that captures its output.
 */
#ifndef VMRQ_TUTIL_H
#define VMRQ_TUTIL_H

#include <check.h>
#include <stdbool.h>
#include <libpq-fe.h>

#include "vmrq.h"

Suite *catalog_suite(void);
Suite *validate_suite(void);
Suite *migrate_suite(void);
Suite *queue_suite(void);
Suite *trigger_suite(void);
Suite *differential_suite(void);
Suite *cli_suite(void);
Suite *config_suite(void);
Suite *daemon_suite(void);
Suite *service_suite(void);
Suite *log_suite(void);
Suite *domain_suite(void);
Suite *guest_suite(void);
Suite *chaos_suite(void);
Suite *failover_suite(void);
Suite *privileges_suite(void);
Suite *bases_suite(void);
Suite *display_suite(void);
Suite *fleet_suite(void);

/* A new connection to $VMRQ_DB with notices silenced; fails the test if it cannot connect. */
PGconn *t_connect(void);
/* The connection of the current test, made by the checked fixture t_db_setup (which also
 * empties the tables) and closed by t_db_teardown. */
extern PGconn *t_db;
void t_db_setup(void);
void t_db_teardown(void);
/* Empties the tables (ids restart at 1). */
void t_reset(PGconn *conn);
/* Runs a statement that must succeed; returns the result (caller PQclear()s). */
PGresult *t_sql(PGconn *conn, const char *sql, int n, const char *const *params);
/* The first column of the first row of a statement that must succeed, as a long long. */
long long t_sql_int(PGconn *conn, const char *sql, int n, const char *const *params);
/* Runs a statement that must fail; returns its primary message (caller free()s) and stores the
 * SQLSTATE in state[6]. */
char *t_sql_error(PGconn *conn, const char *sql, int n, const char *const *params, char state[6]);

/* Output of a CLI run; free with t_cli_free(). */
struct t_cli {
    int status;  /* exit status, or 128 + signal */
    char *out;   /* stdout, NUL-terminated */
    char *err;   /* stderr, NUL-terminated */
};
/* Runs $VMRQ_CLI with the NULL-terminated arguments, as an operator ($VMRQ_OPERATOR_DB, set by
 * the runner), but `vmrq db upgrade` and `vmrq db grant` as the schema's owner ($VMRQ_DB). */
struct t_cli t_cli_run(const char *arg, ...) __attribute__((sentinel));
void t_cli_free(struct t_cli *r);
/* Number of lines in s (a final line without newline counts). */
int t_lines(const char *s);
/* How many times `text` occurs in `all`. */
int t_count_of(const char *all, const char *text);

/* vmrqd's log of this test process (log.h), at level info: to a temporary file from
 * t_log_capture_start() until t_log_capture_stop(); t_log_captured() returns what it got so
 * far, counts of repeated messages said (the caller frees it); t_log_wait_captured() waits
 * until it has `text`, false if it has not after timeout_ms. */
void t_log_capture_start(void);
char *t_log_captured(void);
bool t_log_wait_captured(const char *text, int timeout_ms);
void t_log_capture_stop(void);

/* A vmrqd started by a test ($VMRQD -d -f CONF), killed if the test process dies. */
struct t_daemon {
    int pid;
    int id;          /* its daemons.id */
    char conf[64];
    char log[64];
};
/* Adds to table nodes, through conn, the node a daemon with `config` serves (its `node = NAME`
 * line, else the host name), unless it is there: vmrqd refuses to start for a node not in it. */
void t_node_ensure(PGconn *conn, const char *config);
/* Starts a daemon with `config` (as t_daemon_start()) on `database` (NULL: $VMRQ_DAEMON_DB, a
 * login role of vmrq_daemon only, set by the runner), and returns at once. Its node is added
 * first (t_node_ensure(), on the test database: another database's caller adds it there). */
void t_daemon_spawn(struct t_daemon *d, const char *config, bool valgrind, const char *database);
/* Starts a daemon with `config` (key = value lines; nothing about the pidfile: under -d the
 * default writes none) and waits until it has registered in table daemons. With `valgrind`,
 * runs it under valgrind (errors and leaks make it exit 99). */
void t_daemon_start(struct t_daemon *d, const char *config, bool valgrind);
/* Sends `sig` (0: none) and waits up to timeout_ms for the exit; returns the exit status
 * (128 + signal if killed, -1 if still running). A daemon still running after SIGTERM has its
 * threads' backtraces and the end of its log printed on stderr. */
int t_daemon_wait(struct t_daemon *d, int sig, int timeout_ms);
/* Kills the daemon if it still runs and removes its files. */
void t_daemon_cleanup(struct t_daemon *d);
/* The daemon's log so far (caller frees). */
char *t_daemon_log(const struct t_daemon *d);
/* Whether the daemon's log contains `text`. */
bool t_daemon_logged(const struct t_daemon *d, const char *text);
/* Status and error of request `id` as "done" or "failed: why" (static buffer, overwritten by
 * the next call). */
const char *t_outcome(PGconn *conn, long long id);
/* Whether it does within timeout_ms, looking every 10 ms. */
bool t_daemon_wait_logged(const struct t_daemon *d, const char *text, int timeout_ms);
/* Polls a one-integer query every 10 ms until it returns `want` or timeout_ms passes; returns
 * the last value. */
long long t_wait_value(PGconn *conn, const char *sql, long long want, int timeout_ms);

#endif /* VMRQ_TUTIL_H */
