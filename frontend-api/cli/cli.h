/*
 * cli.h - what the `vmrq` subcommands share: exit codes, option parsing, the database
 * connection, error reporting and result printing (cli.c), and the subcommands themselves.
 */
#ifndef VMRQ_CLI_H
#define VMRQ_CLI_H

#include <getopt.h>
#include <stdbool.h>

#include <libpq-fe.h>

#include "vmrq.h"

/* Exit status of every subcommand. */
enum {
    CLI_OK = 0,    /* it worked */
    CLI_FAIL = 1,  /* the request failed or was cancelled, a wait timed out, the database failed */
    CLI_USAGE = 2, /* bad usage or invalid input (nothing was changed) */
};

/* A subcommand's options: its name for messages ("request", "db upgrade"), its --help text, and
 * its long options (without -c/--conninfo and -h/--help, which every subcommand takes). */
struct cli_sub {
    const char *name;
    const char *help;
    const struct option *options; /* terminated by a zeroed entry; NULL for none */
};

/* The -c CONNINFO given before the subcommand, or NULL. */
extern const char *cli_conninfo;
/* Set by `vmrq db`: cli_connect() then accepts a database without the vmrq schema. */
extern bool cli_schema_optional;

/* The longest name of a user, a domain or a node, in characters. */
#define CLI_NAME_MAX 100

/* Checks a name `what` ("user", "domain", "node") of a row: not empty, no control characters,
 * no space at either end, at most CLI_NAME_MAX characters. CLI_OK, or CLI_USAGE after printing
 * "vmrq SUB: ..." on stderr. */
int cli_check_name(const struct cli_sub *sub, const char *what, const char *name);

/* getopt_long over argv for `sub`, handling -c/--conninfo and -h/--help itself. Returns an
 * option's val, -1 at the end of options (non-options start at optind), 'h' after printing the
 * help (exit CLI_OK), or '?' after printing a usage error (exit CLI_USAGE). */
int cli_getopt(int argc, char **argv, const struct cli_sub *sub);

/* Prints "vmrq SUB: MESSAGE (see 'vmrq SUB --help')" on stderr; returns CLI_USAGE. */
int cli_usage(const struct cli_sub *sub, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "vmrq: MESSAGE" on stderr; returns CLI_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints libvmrq's last error as "vmrq: MESSAGE"; returns CLI_USAGE for invalid input or a
 * missing object, CLI_FAIL otherwise. */
int cli_lib_error(void);

/* Connects to -c CONNINFO, else $VMRQ_DB, else libpq's PG* defaults, and (unless
 * cli_schema_optional) checks that the database has the vmrq schema. NULL after printing why
 * ("no vmrq schema in this database: run 'vmrq db upgrade'"). The caller PQfinish()es it. */
PGconn *cli_connect(void);
/* Runs one parameterized statement. On failure prints "vmrq: SUB: MESSAGE" and returns NULL;
 * `usage_states` lists SQLSTATEs (e.g. "23505") that mean bad input, for which *code is set to
 * CLI_USAGE instead of CLI_FAIL. The caller PQclear()s the result. */
PGresult *cli_query(PGconn *conn, const struct cli_sub *sub, const char *sql, int n,
                    const char *const *params, const char *const *usage_states, int *code);

/* A positive request id, or false. */
bool cli_parse_id(const char *text, long long *id);
/* A whole decimal number within [min, max], or false. */
bool cli_parse_long(const char *text, long long min, long long max, long long *out);

/* Prints a result as an aligned table with a header line; `cols` names the columns to show
 * (NULL: all). Columns are aligned by display width (UTF-8; wide characters count two), a
 * cell but the last one's is cut at 32 columns with an ellipsis, control characters are shown
 * as spaces. Timestamps are shown to the second; NULLs as "-". */
void cli_print_table(const PGresult *res, const char *const *cols);
/* Prints a result as JSON: an array of row objects, or the first row alone if `single`. Integers,
 * booleans and json/jsonb columns keep their JSON types. */
void cli_print_json(const PGresult *res, bool single);
/* Prints the first row as "column: value" lines. */
void cli_print_vertical(const PGresult *res);

/* The subcommands: argv[0] is the subcommand's name; each returns its exit status. */
int cli_cmd_request(int argc, char **argv);
int cli_cmd_wait(int argc, char **argv);
int cli_cmd_cancel(int argc, char **argv);
int cli_cmd_list(int argc, char **argv);
int cli_cmd_show(int argc, char **argv);
int cli_cmd_commands(int argc, char **argv);
int cli_cmd_db(int argc, char **argv);
int cli_cmd_user(int argc, char **argv);
int cli_cmd_domain(int argc, char **argv);
int cli_cmd_node(int argc, char **argv);
int cli_cmd_daemons(int argc, char **argv);
int cli_cmd_display(int argc, char **argv);
/* `vmrq domain set NAME key=value...` (table "domains") and `vmrq user set` ("users"): the
 * policies of display.c's table, every pair checked before anything is changed. */
int cli_set(const struct cli_sub *sub, const char *table, const char *name, int n, char **pairs);

/* One line of `vmrq request --batch` ({"command": C, "args": {...}, "uuid": U}) into a validated
 * request the caller frees; NULL after printing why on stderr ("line N: ..."). */
vmrq_request *cli_batch_line(const char *line, size_t lineno);

#endif /* VMRQ_CLI_H */
