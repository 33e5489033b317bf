/*
 * list.c - `vmrq list` and `vmrq show`: the requests table as an operator reads it.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

enum { OPT_STATUS = 256, OPT_COMMAND, OPT_DOMAIN, OPT_USER, OPT_LIMIT, OPT_JSON };

/* Everything a reader may want of a request; list and show pick from it. */
#define REQUEST_SELECT                                                                        \
    "SELECT r.id, r.status, r.command,"                                                       \
    "       coalesce(d.name, r.args->>'name', r.id_domain::text) AS domain,"                  \
    "       coalesce(u.name, r.uid::text) AS \"user\", r.priority,"                           \
    "       r.date_req AS requested, r.at_time AS \"at\", r.started_at, r.finished_at,"       \
    "       round((extract(epoch FROM r.finished_at - r.started_at) * 1000)::numeric, 1)"     \
    "         AS took_ms,"                                                                    \
    "       CASE WHEN r.progress IS NOT NULL THEN round(r.progress * 100)::int END AS progress_pct,"\
    "       r.error, r.args, r.output, r.uuid, r.retry, r.after_request, r.after_request_ok," \
    "       r.id_domain, r.uid, r.date_changed"                                               \
    "  FROM requests r LEFT JOIN domains d ON d.id = r.id_domain"                             \
    "       LEFT JOIN users u ON u.id = r.uid "

static const struct option list_options[] = {
    { "status", required_argument, NULL, OPT_STATUS },
    { "command", required_argument, NULL, OPT_COMMAND },
    { "domain", required_argument, NULL, OPT_DOMAIN },
    { "user", required_argument, NULL, OPT_USER },
    { "limit", required_argument, NULL, OPT_LIMIT },
    { "json", no_argument, NULL, OPT_JSON },
    { NULL, 0, NULL, 0 },
};

static const struct cli_sub list_sub = {
    "list",
    "usage: vmrq list [--status S[,S...]] [--command C] [--domain D] [--user U]\n"
    "                 [--limit N] [--json]\n"
    "\n"
    "Lists requests, newest first (default: the last 50; --limit 0 for all).\n"
    "  --status S    requested, waiting, working, done, failed or cancelled (comma-separated)\n"
    "  --command C   only this command\n"
    "  --domain D    domain name or id\n"
    "  --user U      user name or id\n"
    "  --json        every column, as a JSON array\n",
    list_options,
};

static const struct option show_options[] = {
    { "json", no_argument, NULL, OPT_JSON },
    { NULL, 0, NULL, 0 },
};

static const struct cli_sub show_sub = {
    "show",
    "usage: vmrq show ID [--json]\n"
    "\n"
    "Shows every column of request ID. Exit status 2 if there is no such request.\n",
    show_options,
};

/* Checks a comma-separated list of status names. */
static bool
valid_statuses(const char *list, char *bad, size_t size)
{
    char copy[256], *save = NULL;

    snprintf(copy, sizeof(copy), "%s", list);
    for (char *s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save))
        if (vmrq_status_from_name(s) < 0) {
            snprintf(bad, size, "%s", s);
            return false;
        }
    return true;
}

int
cli_cmd_list(int argc, char **argv)
{
    static const char *const table_cols[] = { "id", "status", "command", "domain", "user",
                                              "requested", "at", "took_ms", "error", NULL };
    const char *params[5] = { NULL, NULL, NULL, NULL, "50" };
    long long limit;
    bool json = false;
    char bad[64];
    PGconn *conn;
    PGresult *res;
    int c, code = CLI_OK;

    optind = 0;
    while ((c = cli_getopt(argc, argv, &list_sub)) != -1) {
        switch (c) {
        case 'h': return CLI_OK;
        case '?': return CLI_USAGE;
        case OPT_STATUS:
            if (!valid_statuses(optarg, bad, sizeof(bad)))
                return cli_usage(&list_sub, "unknown status '%s' (requested, waiting, working, done,"
                                 " failed or cancelled)", bad);
            params[0] = optarg;
            break;
        case OPT_COMMAND: params[1] = optarg; break;
        case OPT_DOMAIN: params[2] = optarg; break;
        case OPT_USER: params[3] = optarg; break;
        case OPT_LIMIT:
            if (!cli_parse_long(optarg, 0, INT32_MAX, &limit))
                return cli_usage(&list_sub, "--limit must be a number, not '%s'", optarg);
            params[4] = limit == 0 ? NULL : optarg;
            break;
        case OPT_JSON: json = true; break;
        }
    }
    if (optind != argc)
        return cli_usage(&list_sub, "unexpected argument '%s'", argv[optind]);
    if (!(conn = cli_connect()))
        return CLI_FAIL;
    res = cli_query(conn, &list_sub,
                    REQUEST_SELECT
                    " WHERE ($1::text IS NULL OR r.status::text = ANY (string_to_array($1, ',')))"
                    "   AND ($2::text IS NULL OR r.command = $2)"
                    "   AND ($3::text IS NULL OR d.name = $3 OR r.id_domain::text = $3"
                    "        OR r.args->>'name' = $3)"
                    "   AND ($4::text IS NULL OR u.name = $4 OR r.uid::text = $4)"
                    " ORDER BY r.id DESC LIMIT $5::bigint",
                    5, params, NULL, &code);
    if (res) {
        if (json)
            cli_print_json(res, false);
        else
            cli_print_table(res, table_cols);
        PQclear(res);
    }
    PQfinish(conn);
    return code;
}

int
cli_cmd_show(int argc, char **argv)
{
    const char *params[1];
    bool json = false;
    long long id;
    PGconn *conn;
    PGresult *res;
    int c, code = CLI_OK;

    optind = 0;
    while ((c = cli_getopt(argc, argv, &show_sub)) != -1) {
        switch (c) {
        case 'h': return CLI_OK;
        case '?': return CLI_USAGE;
        case OPT_JSON: json = true; break;
        }
    }
    if (optind != argc - 1)
        return cli_usage(&show_sub, "expected one request ID");
    if (!cli_parse_id(argv[optind], &id))
        return cli_usage(&show_sub, "'%s' is not a request id", argv[optind]);
    params[0] = argv[optind];
    if (!(conn = cli_connect()))
        return CLI_FAIL;
    res = cli_query(conn, &show_sub, REQUEST_SELECT " WHERE r.id = $1", 1, params, NULL, &code);
    if (res && PQntuples(res) == 0) {
        fprintf(stderr, "vmrq: no request %lld\n", id);
        code = CLI_USAGE;
    } else if (res && json) {
        cli_print_json(res, true);
    } else if (res) {
        cli_print_vertical(res);
    }
    PQclear(res);
    PQfinish(conn);
    return code;
}
