/*
 * db.c - `vmrq db upgrade`, `vmrq db status` and `vmrq db grant`: the schema (its migrations,
 * functions and catalog copy) and who may use it.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { OPT_PORTAL = 1000, OPT_OPERATOR, OPT_DAEMON };

static const struct option db_options[] = {
    { "portal", no_argument, NULL, OPT_PORTAL },
    { "operator", no_argument, NULL, OPT_OPERATOR },
    { "daemon", no_argument, NULL, OPT_DAEMON },
    { NULL, 0, NULL, 0 },
};

static const struct cli_sub db_sub = {
    "db",
    "usage: vmrq db upgrade | vmrq db status | vmrq db grant LOGINROLE --portal|--operator|--daemon\n"
    "\n"
    "  upgrade   bring the schema to this build's, in one transaction: apply the migrations\n"
    "            the database lacks, write the functions again if any changed, create the\n"
    "            roles vmrq_portal, vmrq_operator and vmrq_daemon if they are missing (or say\n"
    "            what a superuser runs), write this build's catalog; run it as the schema's owner\n"
    "  status    list the migrations and whether they are applied, and whether the functions\n"
    "            and the catalog in the database are this build's; exit 1 if an upgrade is due\n"
    "  grant     make the login role LOGINROLE a member of vmrq_portal (a web portal),\n"
    "            vmrq_operator (this command line) or vmrq_daemon (vmrqd)\n",
    db_options,
};

static const char *const db_roles[] = {
    [OPT_PORTAL - OPT_PORTAL] = "vmrq_portal",
    [OPT_OPERATOR - OPT_PORTAL] = "vmrq_operator",
    [OPT_DAEMON - OPT_PORTAL] = "vmrq_daemon",
};

/* GRANT role TO login: names, not values, so quoted by the server (format %I) and then run. */
static int
db_grant(PGconn *conn, const char *login, const char *role)
{
    static const struct cli_sub sub = { "db grant", "", NULL };
    const char *params[2] = { role, login };
    PGresult *res;
    int code = CLI_OK;

    if (!(res = cli_query(conn, &sub,
                          "SELECT format('GRANT %I TO %I', $1::text, $2::text),"
                          "       EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1),"
                          "       EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2)",
                          2, params, NULL, &code)))
        return code;
    /* a missing role is a missing object: bad input, exit 2, nothing changed */
    if (PQgetvalue(res, 0, 1)[0] != 't') {
        cli_fail("db grant: no role %s in this cluster: run 'vmrq db upgrade' first", role);
        code = CLI_USAGE;
    } else if (PQgetvalue(res, 0, 2)[0] != 't') {
        cli_fail("db grant: no role '%s' in this cluster: create it first (CREATE ROLE %s LOGIN)", login, login);
        code = CLI_USAGE;
    }
    if (code == CLI_OK) {
        PGresult *g = PQexec(conn, PQgetvalue(res, 0, 0));
        if (PQresultStatus(g) != PGRES_COMMAND_OK)
            code = cli_fail("db grant: %s", PQresultErrorField(g, PG_DIAG_MESSAGE_PRIMARY));
        else
            printf("%s is now a member of %s\n", login, role);
        PQclear(g);
    }
    PQclear(res);
    return code;
}

static int
db_upgrade(PGconn *conn)
{
    int applied = vmrq_db_upgrade(conn), version;

    if (applied < 0)
        return cli_lib_error();
    if ((version = vmrq_db_version(conn)) < 0)
        return cli_lib_error();
    printf("applied %d migration%s; schema version %d; catalog of %zu commands written\n", applied,
           applied == 1 ? "" : "s", version, vmrq_command_count());
    return CLI_OK;
}

static int
db_status(PGconn *conn)
{
    static const struct cli_sub sub = { "db status", "", NULL };
    const char *params[1] = { NULL };
    PGresult *res = NULL;
    int code = CLI_OK, pending = 0, differ;
    char *catalog = NULL;

    if (vmrq_db_version(conn) < 0)
        return cli_lib_error();
    if (vmrq_db_version(conn) > 0 &&
        !(res = cli_query(conn, &sub, "SELECT version, name, applied_at FROM schema_migrations"
                                      " ORDER BY version", 0, NULL, NULL, &code)))
        return code;
    for (size_t i = 0; i < vmrq_db_migration_count(); i++) {
        const char *name = vmrq_db_migration_name(i), *when = NULL;
        for (int r = 0; res && r < PQntuples(res); r++)
            if (strcmp(PQgetvalue(res, r, 1), name) == 0)
                when = PQgetvalue(res, r, 2);
        printf("%-24s %s\n", name, when ? when : "pending");
        pending += !when;
    }
    for (int r = 0; res && r < PQntuples(res); r++) {
        bool known = false;
        for (size_t i = 0; i < vmrq_db_migration_count(); i++)
            known = known || strcmp(PQgetvalue(res, r, 1), vmrq_db_migration_name(i)) == 0;
        if (!known)
            printf("%-24s %s (unknown to vmrq %s: a newer vmrq upgraded this database)\n",
                   PQgetvalue(res, r, 1), PQgetvalue(res, r, 2), vmrq_version());
    }
    PQclear(res);
    res = NULL;
    if (pending) {
        printf("%d migration%s pending: run 'vmrq db upgrade'\n", pending, pending == 1 ? "" : "s");
        return CLI_FAIL;
    }

    if (!(catalog = vmrq_catalog_json()))
        return cli_lib_error();
    params[0] = catalog;
    res = cli_query(conn, &sub,
                    "SELECT count(*) FROM jsonb_to_recordset($1::jsonb) AS x(name text, class text,"
                    "       flags text[], args jsonb, needs_one_of text[], summary text)"
                    "  FULL JOIN commands c USING (name)"
                    " WHERE x.name IS NULL OR c.name IS NULL OR x.class <> c.class"
                    "    OR x.flags <> c.flags OR x.args <> c.args"
                    "    OR x.needs_one_of IS DISTINCT FROM c.needs_one_of OR x.summary <> c.summary",
                    1, params, NULL, &code);
    free(catalog);
    if (!res)
        return code;
    differ = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (differ) {
        printf("catalog: %d command%s differ from this build: run 'vmrq db upgrade'\n", differ,
               differ == 1 ? "" : "s");
        return CLI_FAIL;
    }
    printf("catalog: %zu commands, as in this build\n", vmrq_command_count());
    if (vmrq_db_check(conn) < 0) {
        printf("functions: %s\n", vmrq_error_message());
        return CLI_FAIL;
    }
    printf("functions: as in this build\n");
    return CLI_OK;
}

int
cli_cmd_db(int argc, char **argv)
{
    const char *role = NULL, *what;
    PGconn *conn;
    int c, code;

    optind = 0;
    while ((c = cli_getopt(argc, argv, &db_sub)) != -1) {
        if (c < OPT_PORTAL || c > OPT_DAEMON)
            return c == 'h' ? CLI_OK : CLI_USAGE;
        if (role)
            return cli_usage(&db_sub, "grant: give one of --portal, --operator, --daemon");
        role = db_roles[c - OPT_PORTAL];
    }
    if (optind >= argc)
        return cli_usage(&db_sub, "expected 'upgrade', 'status' or 'grant'");
    what = argv[optind];
    if (strcmp(what, "grant") == 0) {
        if (optind + 2 != argc || !argv[optind + 1][0])
            return cli_usage(&db_sub, "grant: expected one login role");
        if (!role)
            return cli_usage(&db_sub, "grant: give one of --portal, --operator, --daemon");
    } else if (strcmp(what, "upgrade") != 0 && strcmp(what, "status") != 0) {
        return cli_usage(&db_sub, "expected 'upgrade', 'status' or 'grant', not '%s'", what);
    } else if (optind + 1 != argc || role) {
        return cli_usage(&db_sub, "%s takes no %s", what, role ? "role" : "argument");
    }
    cli_schema_optional = true; /* this is where a database gets its schema */
    if (!(conn = cli_connect()))
        return CLI_FAIL;
    code = strcmp(what, "upgrade") == 0  ? db_upgrade(conn)
           : strcmp(what, "status") == 0 ? db_status(conn)
                                         : db_grant(conn, argv[optind + 1], role);
    PQfinish(conn);
    return code;
}
