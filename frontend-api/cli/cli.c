/*
 * cli.c - helpers shared by the `vmrq` subcommands: option parsing, connection, errors, and
 * printing query results as tables, JSON or "key: value" lines.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"

/* PostgreSQL type OIDs the printers care about (pg_type.dat; stable across releases). */
#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_FLOAT4 700
#define OID_FLOAT8 701
#define OID_NUMERIC 1700
#define OID_JSON 114
#define OID_TIMESTAMPTZ 1184
#define OID_JSONB 3802

const char *cli_conninfo;

int
cli_getopt(int argc, char **argv, const struct cli_sub *sub)
{
    struct option all[32];
    size_t n = 0;
    int c;

    for (const struct option *o = sub->options; o && o->name && n < 29; o++)
        all[n++] = *o;
    all[n++] = (struct option){ "conninfo", required_argument, NULL, 'c' };
    all[n++] = (struct option){ "help", no_argument, NULL, 'h' };
    all[n] = (struct option){ NULL, 0, NULL, 0 };

    opterr = 0;
    c = getopt_long(argc, argv, ":c:h", all, NULL);
    switch (c) {
    case 'c':
        cli_conninfo = optarg;
        return cli_getopt(argc, argv, sub);
    case 'h':
        fputs(sub->help, stdout);
        return 'h';
    case ':':
        cli_usage(sub, "option '%s' needs a value", argv[optind - 1]);
        return '?';
    case '?':
        cli_usage(sub, "unknown option '%s'", argv[optind - 1]);
        return '?';
    default:
        return c;
    }
}

int
cli_usage(const struct cli_sub *sub, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "vmrq %s: ", sub->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'vmrq %s --help')\n", sub->name);
    return CLI_USAGE;
}

int
cli_fail(const char *fmt, ...)
{
    va_list ap;

    fputs("vmrq: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_FAIL;
}

int
cli_lib_error(void)
{
    vmrq_errcode code = vmrq_error_code();

    fprintf(stderr, "vmrq: %s\n", vmrq_error_message());
    return code == VMRQ_ERR_INVALID || code == VMRQ_ERR_NOT_FOUND ? CLI_USAGE : CLI_FAIL;
}

/* First line of a libpq message, without its newline. */
static void
print_pg_message(const char *prefix, const char *msg)
{
    size_t len = strcspn(msg, "\n");

    fprintf(stderr, "vmrq: %s%.*s\n", prefix, (int)len, msg);
}

PGconn *
cli_connect(void)
{
    const char *info = cli_conninfo ? cli_conninfo : getenv("VMRQ_DB");
    const char *keys[] = { "dbname", "fallback_application_name", NULL };
    const char *values[] = { info ? info : "", "vmrq", NULL };
    PGconn *conn = PQconnectdbParams(keys, values, 1);

    if (PQstatus(conn) != CONNECTION_OK) {
        print_pg_message("cannot connect to the database: ", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

PGresult *
cli_query(PGconn *conn, const struct cli_sub *sub, const char *sql, int n,
          const char *const *params, const char *const *usage_states, int *code)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    const char *state, *msg, *detail;
    char prefix[64], full[1024];

    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return res;
    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    *code = CLI_FAIL;
    for (const char *const *s = usage_states; s && *s && state; s++)
        if (strcmp(*s, state) == 0)
            *code = CLI_USAGE;
    detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    snprintf(prefix, sizeof(prefix), "%s: ", sub->name);
    snprintf(full, sizeof(full), "%s%s%s", msg ? msg : PQerrorMessage(conn), detail ? ": " : "",
             detail ? detail : "");
    print_pg_message(prefix, full);
    PQclear(res);
    return NULL;
}

bool
cli_parse_long(const char *text, long long min, long long max, long long *out)
{
    char *end;

    if (!text || !*text || (*text != '-' && (*text < '0' || *text > '9')))
        return false;
    errno = 0;
    *out = strtoll(text, &end, 10);
    return errno == 0 && *end == '\0' && *out >= min && *out <= max;
}

bool
cli_parse_id(const char *text, long long *id)
{
    return cli_parse_long(text, 1, INT64_MAX, id);
}

/* The text to show for a cell in a table: "-" for NULL, timestamps to the second, and
 * control characters (a multi-line error) flattened so that a row stays one line. */
static const char *
cell(const PGresult *res, int row, int col, char *buf, size_t size)
{
    const char *v;

    if (PQgetisnull(res, row, col))
        return "-";
    v = PQgetvalue(res, row, col);
    if (PQftype(res, col) == OID_TIMESTAMPTZ && strlen(v) > 19) {
        snprintf(buf, size, "%.19s", v);
        return buf;
    }
    if (strpbrk(v, "\n\r\t")) {
        snprintf(buf, size, "%s", v);
        for (char *p = buf; *p; p++)
            if (*p == '\n' || *p == '\r' || *p == '\t')
                *p = ' ';
        return buf;
    }
    return v;
}

void
cli_print_table(const PGresult *res, const char *const *cols)
{
    int ncols = PQnfields(res), nrows = PQntuples(res), show[64], nshow = 0;
    size_t width[64];
    char buf[1024];

    for (int c = 0; c < ncols && nshow < 64; c++) {
        bool want = !cols;
        for (const char *const *n = cols; n && *n; n++)
            want = want || strcmp(*n, PQfname(res, c)) == 0;
        if (want)
            show[nshow++] = c;
    }
    for (int i = 0; i < nshow; i++) {
        width[i] = strlen(PQfname(res, show[i]));
        for (int r = 0; r < nrows; r++) {
            size_t w = strlen(cell(res, r, show[i], buf, sizeof(buf)));
            if (w > width[i])
                width[i] = w;
        }
    }
    for (int i = 0; i < nshow; i++) {
        const char *name = PQfname(res, show[i]);
        if (i == nshow - 1)
            printf("%s\n", name);
        else
            printf("%-*s  ", (int)width[i], name);
    }
    for (int r = 0; r < nrows; r++)
        for (int i = 0; i < nshow; i++) {
            const char *v = cell(res, r, show[i], buf, sizeof(buf));
            if (i == nshow - 1)
                printf("%s\n", v);
            else
                printf("%-*s  ", (int)width[i], v);
        }
}

/* One row as a JSON object (new reference). */
static struct json_object *
row_json(const PGresult *res, int row)
{
    struct json_object *obj = json_object_new_object();

    for (int c = 0; c < PQnfields(res); c++) {
        const char *v = PQgetvalue(res, row, c);
        struct json_object *jv = NULL;

        if (!PQgetisnull(res, row, c)) {
            switch (PQftype(res, c)) {
            case OID_INT2:
            case OID_INT4:
            case OID_INT8:
                jv = json_object_new_int64(strtoll(v, NULL, 10));
                break;
            case OID_FLOAT4:
            case OID_FLOAT8:
            case OID_NUMERIC: /* a figure such as took_ms: a number, as the database wrote it */
                jv = strspn(v, "-0123456789.e+") == strlen(v) ? json_object_new_double_s(strtod(v, NULL), v)
                                                              : json_object_new_string(v);
                break;
            case OID_BOOL:
                jv = json_object_new_boolean(v[0] == 't');
                break;
            case OID_JSON:
            case OID_JSONB:
                jv = json_tokener_parse(v);
                break;
            default:
                jv = json_object_new_string(v);
            }
        }
        json_object_object_add(obj, PQfname(res, c), jv);
    }
    return obj;
}

void
cli_print_json(const PGresult *res, bool single)
{
    struct json_object *out;
    int flags = JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE;

    if (single) {
        out = PQntuples(res) > 0 ? row_json(res, 0) : NULL;
    } else {
        out = json_object_new_array();
        for (int r = 0; r < PQntuples(res); r++)
            json_object_array_add(out, row_json(res, r));
    }
    printf("%s\n", out ? json_object_to_json_string_ext(out, flags) : "null");
    json_object_put(out);
}

void
cli_print_vertical(const PGresult *res)
{
    size_t width = 0;

    for (int c = 0; c < PQnfields(res); c++)
        if (strlen(PQfname(res, c)) > width)
            width = strlen(PQfname(res, c));
    for (int c = 0; c < PQnfields(res) && PQntuples(res) > 0; c++) {
        char key[80];
        snprintf(key, sizeof(key), "%s:", PQfname(res, c));
        printf("%-*s %s\n", (int)width + 1, key, PQgetisnull(res, 0, c) ? "-" : PQgetvalue(res, 0, c));
    }
}
