/*
 * check_privileges.c - what each of vmrq's roles may do, cell by cell: a login role in each
 * (made by the runner, check_main.c) tries SELECT, INSERT, UPDATE, DELETE and TRUNCATE on every
 * table of the schema and calls every function, and each try must be refused by PostgreSQL
 * (insufficient_privilege) exactly where the table of README.md ("Roles") says it is not
 * granted. Every table and function of the schema must have its row there, so a new one cannot
 * go in without saying who may use it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tutil.h"

#define MAX_ROWS 64
#define MAX_NAMES 256

static const char *const roles[] = { "vmrq_portal", "vmrq_operator", "vmrq_daemon" };
static const char *const role_env[] = { "VMRQ_PORTAL_DB", "VMRQ_OPERATOR_DB", "VMRQ_DAEMON_DB" };
#define NROLES 3

/* One object of README's table and what each role is said to have on it ("SELECT, INSERT"). */
struct grant_row {
    char name[64];
    bool function;
    char cell[NROLES][160];
};

/* Reads the table of README.md into rows (one per object named in it); returns how many. */
static int
read_readme_table(struct grant_row *rows, int max)
{
    FILE *f = fopen("README.md", "r");
    char line[4096];
    bool in_table = false;
    int n = 0;

    ck_assert_msg(f != NULL, "README.md not found: run the tests from the top of the tree (make check)");
    while (fgets(line, sizeof(line), f)) {
        char *cells[5], *p = line;
        int ncells = 0;

        if (strncmp(line, "| object | vmrq_portal | vmrq_operator | vmrq_daemon |", 54) == 0) {
            in_table = true;
            continue;
        }
        if (!in_table || strncmp(line, "|---", 4) == 0)
            continue;
        if (line[0] != '|')
            break;
        while (ncells < 5 && (p = strchr(p, '|'))) {
            *p++ = '\0';
            cells[ncells++] = p;
        }
        ck_assert_msg(ncells == 5, "README's table of roles: a row without four cells: %s", cells[0]);
        for (char *q = cells[0]; (q = strchr(q, '`')) && n < max; ) {
            char *end = strchr(++q, '`');
            ck_assert(end != NULL);
            snprintf(rows[n].name, sizeof(rows[n].name), "%.*s", (int)(end - q), q);
            rows[n].function = end - q > 2 && strncmp(end - 2, "()", 2) == 0;
            if (rows[n].function)
                rows[n].name[end - q - 2] = '\0';
            for (int r = 0; r < NROLES; r++)
                snprintf(rows[n].cell[r], sizeof(rows[n].cell[r]), "%.*s", (int)strcspn(cells[r + 1], "|"),
                         cells[r + 1]);
            n++;
            q = end + 1;
        }
    }
    fclose(f);
    ck_assert_msg(n > 0, "README.md has no table of roles ('| object | vmrq_portal | ...')");
    return n;
}

static const struct grant_row *
find_row(const struct grant_row *rows, int n, const char *name, bool function)
{
    for (int i = 0; i < n; i++)
        if (rows[i].function == function && strcmp(rows[i].name, name) == 0)
            return &rows[i];
    return NULL;
}

/* Whether `cell` grants `priv` ("SELECT" in "SELECT, INSERT (command, args)"). */
static bool
says(const char *cell, const char *priv)
{
    size_t len = strlen(priv);

    for (const char *p = cell; (p = strstr(p, priv)); p += len)
        if ((p == cell || p[-1] == ' ' || p[-1] == ',') && (p[len] == '\0' || strchr(" ,(", p[len])))
            return true;
    return false;
}

/* Runs `sql` in a savepoint: true unless PostgreSQL refused it for want of a privilege. */
static bool
allowed(PGconn *c, const char *sql)
{
    PGresult *res;
    const char *state;
    bool refused;

    PQclear(t_sql(c, "SAVEPOINT try", 0, NULL));
    res = PQexec(c, sql);
    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    refused = state && strcmp(state, "42501") == 0;
    PQclear(res);
    PQclear(t_sql(c, "ROLLBACK TO SAVEPOINT try", 0, NULL));
    return !refused;
}

static PGconn *
connect_as(int role)
{
    const char *info = getenv(role_env[role]);
    PGconn *c;

    ck_assert_msg(info != NULL, "%s is not set: run the tests with make check", role_env[role]);
    c = PQconnectdb(info);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "cannot connect as %s: %s", roles[role], PQerrorMessage(c));
    return c;
}

START_TEST(test_every_cell_of_the_roles_table)
{
    static struct grant_row rows[MAX_ROWS * 8];
    static const char *const privs[] = { "SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE" };
    int nrows = read_readme_table(rows, MAX_ROWS * 8), wrong = 0;
    char report[4096] = "";
    PGresult *objs;

    /* every table, view and function of the schema, with the statements that try each right */
    objs = t_sql(t_db,
                 "SELECT c.relname, false, c.relkind = 'v',"
                 "       format('SELECT count(*) FROM %I', c.relname),"
                 "       format('INSERT INTO %I DEFAULT VALUES', c.relname),"
                 "       format('UPDATE %1$I SET %2$I = %2$I WHERE false', c.relname,"
                 "              (SELECT attname FROM pg_attribute WHERE attrelid = c.oid AND attnum = 1)),"
                 "       format('DELETE FROM %I WHERE false', c.relname),"
                 "       format('TRUNCATE %I', c.relname)"
                 "  FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'v')"
                 " UNION ALL "
                 "SELECT p.proname, true, false,"
                 "       format('SELECT %I(%s)', p.proname,"
                 "              (SELECT string_agg(format('NULL::%s', format_type(t, NULL)), ', ' ORDER BY i)"
                 "                 FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY a(t, i))),"
                 "       NULL, NULL, NULL, NULL"
                 "  FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace"
                 " ORDER BY 2, 1",
                 0, NULL);

    for (int i = 0; i < PQntuples(objs); i++) {
        const char *name = PQgetvalue(objs, i, 0);
        bool function = PQgetvalue(objs, i, 1)[0] == 't';
        ck_assert_msg(find_row(rows, nrows, name, function), "%s%s has no row in README's table of roles", name,
                      function ? "()" : "");
    }
    for (int i = 0; i < nrows; i++) {
        bool found = false;
        for (int k = 0; k < PQntuples(objs) && !found; k++)
            found = strcmp(PQgetvalue(objs, k, 0), rows[i].name) == 0 &&
                    (PQgetvalue(objs, k, 1)[0] == 't') == rows[i].function;
        ck_assert_msg(found, "README's table of roles names %s%s, which the schema does not have", rows[i].name,
                      rows[i].function ? "()" : "");
    }

    for (int r = 0; r < NROLES; r++) {
        PGconn *c = connect_as(r);

        PQclear(t_sql(c, "BEGIN", 0, NULL));
        for (int i = 0; i < PQntuples(objs); i++) {
            const char *name = PQgetvalue(objs, i, 0);
            bool function = PQgetvalue(objs, i, 1)[0] == 't', view = PQgetvalue(objs, i, 2)[0] == 't';
            const struct grant_row *row = find_row(rows, nrows, name, function);

            for (int p = 0; p < (function ? 1 : view ? 1 : 5); p++) {
                const char *priv = function ? "EXECUTE" : privs[p];
                bool want = says(row->cell[r], priv), got = allowed(c, PQgetvalue(objs, i, 3 + p));
                if (want != got) {
                    wrong++;
                    snprintf(report + strlen(report), sizeof(report) - strlen(report), "\n  %s %s %s %s%s (README: %s)",
                             roles[r], got ? "may" : "may not", priv, name, function ? "()" : "",
                             want ? "granted" : "not granted");
                }
            }
        }
        PQclear(t_sql(c, "ROLLBACK", 0, NULL));
        PQfinish(c);
    }
    PQclear(objs);
    ck_assert_msg(wrong == 0, "%d cells of README's table of roles differ from the database:%s", wrong, report);
}
END_TEST

/* What a portal must never do, each refused by PostgreSQL in its own words. */
START_TEST(test_a_portal_cannot_rewrite_the_queue)
{
    static const struct { const char *sql, *refusal; } tries[] = {
        { "UPDATE requests SET status = 'done'", "permission denied for table requests" },
        { "DELETE FROM requests", "permission denied for table requests" },
        { "UPDATE users SET is_admin = true", "permission denied for table users" },
        { "UPDATE domains SET id_owner = 2", "permission denied for table domains" },
        { "INSERT INTO requests (command, status) VALUES ('ping_backend', 'done')", "permission denied for table requests" },
        { "SELECT vmrq_claim(1, 'n', '{ping_backend}', 10, '{}', 0, '{}', 0, '{}', 0, 1)",
          "permission denied for function vmrq_claim" },
        { "SELECT vmrq_recover('1 second')", "permission denied for function vmrq_recover" },
        { "SELECT vmrq_catalog_write('[]')", "permission denied for function vmrq_catalog_write" },
    };
    PGconn *c = connect_as(0);
    char state[6];

    PQclear(t_sql(t_db, "INSERT INTO users (name) VALUES ('alice'), ('bob')", 0, NULL));
    PQclear(t_sql(t_db, "INSERT INTO domains (name, id_owner) VALUES ('desk-alice', 1)", 0, NULL));
    /* what it may: enqueue and cancel */
    ck_assert_int_eq(t_sql_int(c, "SELECT vmrq_request('ping_backend')", 0, NULL), 1);
    PQclear(t_sql(c, "INSERT INTO requests (command, args) VALUES ('ping_backend', '{}')", 0, NULL));
    PQclear(t_sql(c, "SELECT vmrq_cancel(2, 'changed her mind')", 0, NULL));
    for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
        char *msg = t_sql_error(c, tries[i].sql, 0, NULL, state);
        ck_assert_msg(strcmp(state, "42501") == 0 && strcmp(msg, tries[i].refusal) == 0, "%s: %s (%s)", tries[i].sql,
                      msg, state);
        free(msg);
    }
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests WHERE status = 'requested'", 0, NULL), 1);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM users WHERE is_admin", 0, NULL), 0);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT id_owner FROM domains", 0, NULL), 1);
    PQfinish(c);
}
END_TEST

/* No function of the schema may be run by PUBLIC: each is granted to the roles that need it. */
START_TEST(test_no_function_is_public)
{
    PGresult *res = t_sql(t_db,
                          "SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p"
                          " WHERE p.pronamespace = current_schema()::regnamespace AND EXISTS ("
                          "   SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a"
                          "    WHERE a.grantee = 0)",
                          0, NULL);

    ck_assert_msg(PQgetisnull(res, 0, 0), "PUBLIC may run: %s", PQgetvalue(res, 0, 0));
    PQclear(res);
}
END_TEST

/* vmrq db grant makes a login role a member of one role, naming what is wrong otherwise. */
START_TEST(test_db_grant)
{
    struct t_cli r;

    PQclear(t_sql(t_db, "DROP ROLE IF EXISTS vmrq_t_web", 0, NULL));
    r = t_cli_run("db", "grant", "vmrq_t_web", "--portal", NULL);
    ck_assert_int_eq(r.status, 2);
    ck_assert_str_eq(r.err, "vmrq: db grant: no role 'vmrq_t_web' in this cluster: create it first"
                            " (CREATE ROLE vmrq_t_web LOGIN)\n");
    t_cli_free(&r);
    PQclear(t_sql(t_db, "CREATE ROLE vmrq_t_web LOGIN", 0, NULL));
    r = t_cli_run("db", "grant", "vmrq_t_web", "--portal", "--daemon", NULL);
    ck_assert_int_eq(r.status, 2);
    t_cli_free(&r);
    r = t_cli_run("db", "grant", "vmrq_t_web", "--portal", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_str_eq(r.out, "vmrq_t_web is now a member of vmrq_portal\n");
    t_cli_free(&r);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT pg_has_role('vmrq_t_web', 'vmrq_portal', 'MEMBER')::int", 0, NULL), 1);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT pg_has_role('vmrq_t_web', 'vmrq_daemon', 'MEMBER')::int", 0, NULL), 0);
    PQclear(t_sql(t_db, "DROP ROLE vmrq_t_web", 0, NULL));
}
END_TEST

/* An upgrader that may not create the roles is told what a superuser runs, and nothing changes. */
START_TEST(test_upgrade_without_the_roles)
{
    PGconn *c;
    char info[1024];

    PQclear(t_sql(t_db, "DROP SCHEMA IF EXISTS vmrq_norole_s CASCADE", 0, NULL));
    PQclear(t_sql(t_db, "DROP ROLE IF EXISTS vmrq_t_owner", 0, NULL));
    PQclear(t_sql(t_db, "CREATE ROLE vmrq_t_owner LOGIN", 0, NULL));
    PQclear(t_sql(t_db, "CREATE SCHEMA vmrq_norole_s AUTHORIZATION vmrq_t_owner", 0, NULL));
    snprintf(info, sizeof(info), "%s user=vmrq_t_owner options='-csearch_path=vmrq_norole_s'", getenv("VMRQ_DB"));
    c = PQconnectdb(info);
    ck_assert(PQstatus(c) == CONNECTION_OK);
    /* a role missing, and an owner who may not create roles: refused, naming the statement */
    PQclear(t_sql(t_db, "ALTER ROLE vmrq_daemon RENAME TO vmrq_daemon_away", 0, NULL));
    ck_assert_int_eq(vmrq_db_upgrade(c), -1);
    PQclear(t_sql(t_db, "ALTER ROLE vmrq_daemon_away RENAME TO vmrq_daemon", 0, NULL));
    ck_assert_str_eq(vmrq_error_message(), "db upgrade: the roles the schema grants to are missing and vmrq_t_owner"
                                           " may not create them; as a superuser run: CREATE ROLE vmrq_daemon NOLOGIN;");
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'vmrq_norole_s'", 0, NULL), 0);
    /* with the roles there, the owner needs no right of its own to grant them its objects */
    ck_assert_msg(vmrq_db_upgrade(c) == (int)vmrq_db_migration_count(), "%s", vmrq_error_message());
    ck_assert_int_eq(vmrq_db_check(c), 0);
    PQfinish(c);
    PQclear(t_sql(t_db, "DROP SCHEMA vmrq_norole_s CASCADE", 0, NULL));
    PQclear(t_sql(t_db, "DROP ROLE vmrq_t_owner", 0, NULL));
}
END_TEST

Suite *
privileges_suite(void)
{
    Suite *s = suite_create("privileges");
    TCase *tc = tcase_create("privileges");

    tcase_set_tags(tc, "db");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, t_db_setup, t_db_teardown);
    tcase_add_test(tc, test_every_cell_of_the_roles_table);
    tcase_add_test(tc, test_a_portal_cannot_rewrite_the_queue);
    tcase_add_test(tc, test_no_function_is_public);
    tcase_add_test(tc, test_db_grant);
    tcase_add_test(tc, test_upgrade_without_the_roles);
    suite_add_tcase(s, tc);
    return s;
}
