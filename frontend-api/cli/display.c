/*
 * display.c - `vmrq display NAME`: how to reach a running desktop (its display's type, host,
 * ports and password, as vmrqd read them after its start), as text, JSON or a remote-viewer
 * connection file; and `vmrq domain set` / `vmrq user set`: the policies of a domain and of a
 * user, key=value.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

enum { OPT_JSON = 256, OPT_VV };

static const struct option display_options[] = {
    { "json", no_argument, NULL, OPT_JSON },
    { "vv", required_argument, NULL, OPT_VV },
    { NULL, 0, NULL, 0 },
};

static const struct cli_sub display_sub = {
    "display",
    "usage: vmrq display NAME [--json] [--vv FILE]\n"
    "\n"
    "How to reach the running desktop NAME: its display's type (spice or vnc), host, port,\n"
    "TLS port and password, as vmrqd read them after its last start. --vv FILE writes a\n"
    "remote-viewer connection file (mode 0600: it holds the password; open it with\n"
    "'remote-viewer FILE'). Exit 1 if the desktop has no display (it does not run).\n",
    display_options,
};

/* Writes the remote-viewer (virt-viewer) connection file of row 0 of `res` to `path`. */
static int
write_vv(const char *path, const PGresult *res)
{
    FILE *f;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    if (fd < 0 || !(f = fdopen(fd, "w"))) {
        if (fd >= 0)
            close(fd);
        return cli_fail("display: cannot write '%s': %s", path, strerror(errno));
    }
    fprintf(f, "[virt-viewer]\ntype=%s\nhost=%s\n", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
    if (!PQgetisnull(res, 0, 2))
        fprintf(f, "port=%s\n", PQgetvalue(res, 0, 2));
    if (!PQgetisnull(res, 0, 3))
        fprintf(f, "tls-port=%s\n", PQgetvalue(res, 0, 3));
    if (!PQgetisnull(res, 0, 4))
        fprintf(f, "password=%s\n", PQgetvalue(res, 0, 4));
    fprintf(f, "title=%s\n", PQgetvalue(res, 0, 5));
    if (fclose(f) != 0)
        return cli_fail("display: cannot write '%s': %s", path, strerror(errno));
    return CLI_OK;
}

int
cli_cmd_display(int argc, char **argv)
{
    const char *vv = NULL, *name;
    const char *params[1];
    bool json = false;
    PGconn *conn = NULL;
    PGresult *res = NULL;
    int c, code = CLI_OK;

    optind = 0;
    while ((c = cli_getopt(argc, argv, &display_sub)) != -1) {
        switch (c) {
        case 'h': return CLI_OK;
        case '?': return CLI_USAGE;
        case OPT_JSON: json = true; break;
        case OPT_VV: vv = optarg; break;
        }
    }
    if (optind + 1 != argc)
        return cli_usage(&display_sub, optind >= argc ? "expected NAME" : "unexpected argument '%s'",
                         optind < argc ? argv[optind + 1] : "");
    name = params[0] = argv[optind];
    if (!(conn = cli_connect()))
        return CLI_FAIL;
    res = cli_query(conn, &display_sub,
                    "SELECT display_type AS type, display_host AS host, display_port AS port,"
                    "       display_tls_port AS tls_port, display_password AS password, name, status"
                    "  FROM domains WHERE name = $1",
                    1, params, NULL, &code);
    if (!res)
        goto cleanup;
    if (PQntuples(res) == 0) {
        fprintf(stderr, "vmrq display: no domain '%s'\n", name);
        code = CLI_USAGE;
        goto cleanup;
    }
    if (PQgetisnull(res, 0, 0)) {
        code = cli_fail("display: %s has no display (it is %s)", name, PQgetvalue(res, 0, 6));
        goto cleanup;
    }
    if (vv)
        code = write_vv(vv, res);
    else if (json)
        cli_print_json(res, true);
    else
        cli_print_vertical(res);

cleanup:
    PQclear(res);
    PQfinish(conn);
    return code;
}

/* The keys `vmrq domain set` and `vmrq user set` take: a column of a fixed table, an integer
 * within bounds, or 'none' (NULL). */
struct setting {
    const char *table, *key;
    long long min;
    const char *meaning;
};

static const struct setting settings[] = {
    { "domains", "shutdown_disconnected", 0, "seconds after the viewer leaves before a shutdown" },
    { "domains", "run_timeout", 1, "seconds after a start before a shutdown" },
    { "domains", "shutdown_timeout", 0, "seconds a shutdown waits before forcing" },
    { "users", "start_limit", 0, "desktops the user may run at once" },
};

int
cli_set(const struct cli_sub *sub, const char *table, const char *name, int n, char **pairs)
{
    char sql[1024], keys[256] = "";
    const char *params[1 + 8];
    char values[8][24];
    size_t len;
    int code = CLI_OK, np = 1;
    PGconn *conn;
    PGresult *res;

    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
        if (strcmp(settings[i].table, table) == 0)
            snprintf(keys + strlen(keys), sizeof(keys) - strlen(keys), "%s%s", keys[0] ? ", " : "", settings[i].key);
    if (n < 1)
        return cli_usage(sub, "set %s: expected key=value (keys: %s)", name, keys);
    if (n > 8)
        return cli_usage(sub, "set %s: at most 8 key=value", name);
    len = (size_t)snprintf(sql, sizeof(sql), "UPDATE %s SET ", table);
    for (int i = 0; i < n; i++) {
        const char *eq = strchr(pairs[i], '=');
        const struct setting *s = NULL;
        long long v;

        for (size_t k = 0; eq && k < sizeof(settings) / sizeof(settings[0]); k++)
            if (strcmp(settings[k].table, table) == 0 && strlen(settings[k].key) == (size_t)(eq - pairs[i]) &&
                strncmp(settings[k].key, pairs[i], (size_t)(eq - pairs[i])) == 0)
                s = &settings[k];
        if (!eq)
            return cli_usage(sub, "set: '%s' is not key=value (keys: %s)", pairs[i], keys);
        if (!s)
            return cli_usage(sub, "set: unknown key '%.*s' (keys: %s)", (int)(eq - pairs[i]), pairs[i], keys);
        if (strcmp(eq + 1, "none") == 0) {
            params[np] = NULL;
        } else if (cli_parse_long(eq + 1, s->min, 2147483647LL, &v)) {
            snprintf(values[np - 1], sizeof(values[0]), "%lld", v);
            params[np] = values[np - 1];
        } else {
            return cli_usage(sub, "set: %s (%s) must be a whole number from %lld, or 'none', not '%s'", s->key,
                             s->meaning, s->min, eq + 1);
        }
        len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s%s = $%d::int", i ? ", " : "", s->key, np + 1);
        np++;
    }
    snprintf(sql + len, sizeof(sql) - len, "%s WHERE name = $1",
             strcmp(table, "domains") == 0 ? ", date_changed = now()" : "");
    params[0] = name;
    if (!(conn = cli_connect()))
        return CLI_FAIL;
    res = cli_query(conn, sub, sql, np, params, NULL, &code);
    if (res && strcmp(PQcmdTuples(res), "1") != 0) {
        fprintf(stderr, "vmrq %s set: no %s '%s'\n", sub->name, strcmp(table, "users") == 0 ? "user" : "domain", name);
        code = CLI_USAGE;
    }
    PQclear(res);
    PQfinish(conn);
    return code;
}
