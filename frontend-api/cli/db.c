/*
 * db.c - `vmrq db upgrade` and `vmrq db status`: the schema's migrations and the catalog copy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const struct cli_sub db_sub = {
    "db",
    "usage: vmrq db upgrade | vmrq db status\n"
    "\n"
    "  upgrade   apply the migrations the database lacks (each once, in a transaction),\n"
    "            then write this build's catalog into the table `commands`\n"
    "  status    list the migrations and whether they are applied, and whether the\n"
    "            catalog in the database matches this build; exit 1 if an upgrade is due\n",
    NULL,
};

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
    return CLI_OK;
}

int
cli_cmd_db(int argc, char **argv)
{
    PGconn *conn;
    int c, code;

    optind = 0;
    while ((c = cli_getopt(argc, argv, &db_sub)) != -1)
        return c == 'h' ? CLI_OK : CLI_USAGE;
    if (optind != argc - 1 || (strcmp(argv[optind], "upgrade") != 0 && strcmp(argv[optind], "status") != 0))
        return cli_usage(&db_sub, "expected 'upgrade' or 'status'");
    cli_schema_optional = true; /* this is where a database gets its schema */
    if (!(conn = cli_connect()))
        return CLI_FAIL;
    code = strcmp(argv[optind], "upgrade") == 0 ? db_upgrade(conn) : db_status(conn);
    PQfinish(conn);
    return code;
}
