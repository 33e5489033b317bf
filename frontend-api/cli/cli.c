/*
 * cli.c - helpers shared by the `vmrq` subcommands: option parsing, connection, errors, and
 * printing query results as tables, JSON or "key: value" lines.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

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
bool cli_schema_optional;

/* What a database without the schema answers to a query of its tables or functions. */
static const char no_schema[] = "no vmrq schema in this database: run 'vmrq db upgrade'";

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
    PGresult *res;
    bool schema;

    if (PQstatus(conn) != CONNECTION_OK) {
        print_pg_message("cannot connect to the database: ", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    if (cli_schema_optional)
        return conn;
    res = PQexecParams(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL, NULL, NULL, NULL, 0);
    schema = PQresultStatus(res) != PGRES_TUPLES_OK || PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!schema) {
        fprintf(stderr, "vmrq: %s\n", no_schema);
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

/* A unique violation in the CLI's words: the table's row ("users": user) and the key, from the
 * detail "Key (name)=(alice) already exists." -> "user 'alice' already exists". False if the
 * detail is not of that form. */
static bool
table_row_exists(const PGresult *res, const char *detail, char *out, size_t size)
{
    const char *table = PQresultErrorField(res, PG_DIAG_TABLE_NAME);
    char column[64], value[512];
    size_t tlen;

    if (!table || sscanf(detail, "Key (%63[^)])=(%511[^\n]", column, value) != 2 || !strstr(value, ") already exists"))
        return false;
    *strstr(value, ") already exists") = '\0';
    tlen = strlen(table);
    if (tlen > 1 && table[tlen - 1] == 's')
        tlen--;
    if (strcmp(column, "name") == 0)
        snprintf(out, size, "%.*s '%s' already exists", (int)tlen, table, value);
    else
        snprintf(out, size, "a %.*s with %s '%s' already exists", (int)tlen, table, column, value);
    return true;
}

int
cli_check_name(const struct cli_sub *sub, const char *what, const char *name)
{
    size_t chars = 0;

    if (!*name) {
        fprintf(stderr, "vmrq %s: a %s name must not be empty\n", sub->name, what);
        return CLI_USAGE;
    }
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            fprintf(stderr, "vmrq %s: %s name '", sub->name, what);
            for (const unsigned char *q = (const unsigned char *)name; *q; q++)
                fprintf(stderr, *q < 0x20 || *q == 0x7f ? "\\x%02x" : "%c", *q);
            fprintf(stderr, "' must not contain control characters\n");
            return CLI_USAGE;
        }
        chars += (*p & 0xc0) != 0x80;
    }
    if (name[0] == ' ' || name[strlen(name) - 1] == ' ') {
        fprintf(stderr, "vmrq %s: %s name '%s' must not begin or end with a space\n", sub->name, what, name);
        return CLI_USAGE;
    }
    if (chars > CLI_NAME_MAX) {
        fprintf(stderr, "vmrq %s: %s name '%.20s...' is longer than %d characters\n", sub->name, what, name,
                CLI_NAME_MAX);
        return CLI_USAGE;
    }
    return CLI_OK;
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
    if (state && (strcmp(state, "42P01") == 0 || strcmp(state, "42883") == 0)) {
        snprintf(full, sizeof(full), "%s", no_schema); /* a table or function of the schema is missing */
    } else if (state && strcmp(state, "23505") == 0 && detail && table_row_exists(res, detail, full, sizeof(full))) {
        ; /* "user 'alice' already exists" */
    } else {
        snprintf(full, sizeof(full), "%s%s%s", msg ? msg : PQerrorMessage(conn), detail ? ": " : "",
                 detail ? detail : "");
    }
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
    for (const unsigned char *c = (const unsigned char *)v; *c; c++)
        if (*c < 0x20 || *c == 0x7f) {
            snprintf(buf, size, "%s", v);
            for (unsigned char *p = (unsigned char *)buf; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                    *p = ' ';
            return buf;
        }
    return v;
}

/* Display columns of UTF-8 text (a wide character counts 2; an undecodable byte 1), and in
 * *cut the length in bytes of its longest prefix that fits in `max` columns (SIZE_MAX: none). */
static size_t
display_width(const char *text, size_t max, size_t *cut)
{
    mbstate_t st;
    size_t cols = 0, off = 0, len = strlen(text);

    memset(&st, 0, sizeof(st));
    if (cut)
        *cut = len;
    while (off < len) {
        wchar_t wc;
        size_t n = mbrtowc(&wc, text + off, len - off, &st);
        int w = 1;

        if (n == (size_t)-1 || n == (size_t)-2) {
            memset(&st, 0, sizeof(st));
            n = 1;
        } else if ((w = wcwidth(wc)) < 0) {
            w = 1;
        }
        if (cut && cols + (size_t)w > max && *cut == len)
            *cut = off;
        cols += (size_t)w;
        off += n;
    }
    return cols;
}

/* A cell of a table column: at most CELL_MAX columns wide, a longer one cut with an ellipsis
 * (into buf). */
#define CELL_MAX 32
static const char *
fit_cell(const char *v, char *buf, size_t size)
{
    size_t cut;

    if (display_width(v, CELL_MAX - 1, &cut) <= CELL_MAX)
        return v;
    snprintf(buf, size, "%.*s\u2026", (int)cut, v);
    return buf;
}

/* Prints v padded to `width` display columns (no padding for the last column). */
static void
print_cell(const char *v, size_t width, bool last)
{
    size_t w = display_width(v, 0, NULL);

    fputs(v, stdout);
    if (last) {
        putchar('\n');
        return;
    }
    for (; w < width + 2; w++)
        putchar(' ');
}

void
cli_print_table(const PGresult *res, const char *const *cols)
{
    int ncols = PQnfields(res), nrows = PQntuples(res), show[64], nshow = 0;
    size_t width[64];
    char buf[1024], fit[1024];

    for (int c = 0; c < ncols && nshow < 64; c++) {
        bool want = !cols;
        for (const char *const *n = cols; n && *n; n++)
            want = want || strcmp(*n, PQfname(res, c)) == 0;
        if (want)
            show[nshow++] = c;
    }
    for (int i = 0; i < nshow; i++) {
        width[i] = display_width(PQfname(res, show[i]), 0, NULL);
        for (int r = 0; r < nrows && i < nshow - 1; r++) {
            size_t w = display_width(fit_cell(cell(res, r, show[i], buf, sizeof(buf)), fit, sizeof(fit)), 0, NULL);
            if (w > width[i])
                width[i] = w;
        }
    }
    for (int i = 0; i < nshow; i++)
        print_cell(PQfname(res, show[i]), width[i], i == nshow - 1);
    for (int r = 0; r < nrows; r++)
        for (int i = 0; i < nshow; i++) {
            const char *v = cell(res, r, show[i], buf, sizeof(buf));
            print_cell(i == nshow - 1 ? v : fit_cell(v, fit, sizeof(fit)), width[i], i == nshow - 1);
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
