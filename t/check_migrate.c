/*
 * check_migrate.c - `vmrq db upgrade` and the schema check: an upgrade twice is a no-op that
 * writes nothing; a database upgraded from each earlier migration step, or whose functions were
 * changed by hand, equals a fresh one; the check names what to run; the catalog copy follows
 * the build.
 */
#include <stdlib.h>
#include <string.h>

#include "migrations.h"
#include "tutil.h"

static PGconn *conn;

/* Each test works in a schema of its own, as an operator may (search_path). */
static void
setup(void)
{
    conn = t_connect();
    PQclear(t_sql(conn, "DROP SCHEMA IF EXISTS mtest CASCADE", 0, NULL));
    PQclear(t_sql(conn, "CREATE SCHEMA mtest", 0, NULL));
    PQclear(t_sql(conn, "SET search_path = mtest", 0, NULL));
}

static void
teardown(void)
{
    PQclear(t_sql(conn, "RESET search_path", 0, NULL));
    PQclear(t_sql(conn, "DROP SCHEMA IF EXISTS mtest CASCADE", 0, NULL));
    PQfinish(conn);
}

START_TEST(test_upgrade_twice_is_a_noop)
{
    long long objects;

    ck_assert_int_eq(vmrq_db_version(conn), 0);
    ck_assert_int_eq(vmrq_db_upgrade(conn), (int)vmrq_db_migration_count());
    ck_assert_int_eq(vmrq_db_version(conn), atoi(vmrq_db_migration_name(vmrq_db_migration_count() - 1)));
    PQclear(t_sql(conn, "SELECT vmrq_request('ping_backend')", 0, NULL));
    objects = t_sql_int(conn, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                              " WHERE n.nspname = 'mtest'", 0, NULL);

    ck_assert_int_eq(vmrq_db_upgrade(conn), 0);
    ck_assert_int_eq(t_sql_int(conn, "SELECT count(*) FROM schema_migrations", 0, NULL),
                     (long long)vmrq_db_migration_count());
    ck_assert_int_eq(t_sql_int(conn, "SELECT count(*) FROM requests", 0, NULL), 1);
    ck_assert_int_eq(t_sql_int(conn, "SELECT count(*) FROM pg_class c JOIN pg_namespace n"
                                     " ON n.oid = c.relnamespace WHERE n.nspname = 'mtest'", 0, NULL),
                     objects);
    /* nothing leaked into public's copy */
    ck_assert_int_eq(t_sql_int(conn, "SELECT count(*) FROM public.requests", 0, NULL), 0);
}
END_TEST

/* The functions keep the schema they were made in, whatever the caller's search_path. */
START_TEST(test_functions_pin_their_schema)
{
    ck_assert_int_ge(vmrq_db_upgrade(conn), 0);
    PQclear(t_sql(conn, "SET search_path = public", 0, NULL));
    PQclear(t_sql(conn, "SELECT mtest.vmrq_request('ping_backend')", 0, NULL));
    PQclear(t_sql(conn, "INSERT INTO mtest.requests (command) VALUES ('ping_backend')", 0, NULL));
    ck_assert_int_eq(t_sql_int(conn, "SELECT count(*) FROM mtest.requests", 0, NULL), 2);
}
END_TEST

START_TEST(test_catalog_follows_the_build)
{
    ck_assert_int_ge(vmrq_db_upgrade(conn), 0);
    PQclear(t_sql(conn, "INSERT INTO commands (name, class, summary) VALUES ('retired', 'long', 'x')", 0, NULL));
    PQclear(t_sql(conn, "UPDATE commands SET args = '{}' WHERE name = 'shutdown'", 0, NULL));
    ck_assert_int_eq(vmrq_db_upgrade(conn), 0);
    ck_assert_int_eq(t_sql_int(conn, "SELECT count(*) FROM commands", 0, NULL), (long long)vmrq_command_count());
    ck_assert_int_eq(t_sql_int(conn, "SELECT count(*) FROM commands WHERE name = 'shutdown'"
                                     " AND args ? 'uid'", 0, NULL), 1);
}
END_TEST

/* A pending request for a command the new catalog lacks would never run: the upgrade cancels
 * it and says why; finished ones stay as they were. */
START_TEST(test_removed_command_cancels_its_requests)
{
    ck_assert_int_ge(vmrq_db_upgrade(conn), 0);
    PQclear(t_sql(conn, "INSERT INTO commands (name, class, summary) VALUES ('retired', 'long', 'x')", 0, NULL));
    PQclear(t_sql(conn, "SELECT vmrq_request('retired'), vmrq_request('retired')", 0, NULL));
    PQclear(t_sql(conn, "UPDATE requests SET status = 'done' WHERE id = 2", 0, NULL));
    ck_assert_int_eq(vmrq_db_upgrade(conn), 0);
    ck_assert_int_eq(t_sql_int(conn, "SELECT count(*) FROM requests WHERE id = 1 AND status = 'cancelled'"
                                     " AND error = 'command retired was removed from the catalog by vmrq db upgrade'",
                               0, NULL), 1);
    ck_assert_int_eq(t_sql_int(conn, "SELECT count(*) FROM requests WHERE id = 2 AND status = 'done'", 0, NULL), 1);
}
END_TEST

/* ---------------------------------------------------------------- upgrade equals fresh */

/* Every object of schema `nm` that an upgrade makes, one line each, sorted, with the schema's
 * name written S: columns, indexes, constraints, triggers, functions' definitions, views,
 * types, comments, grants. Caller frees. */
static char *
schema_dump(PGconn *c, const char *nm)
{
    static const char sql[] =
        "WITH s AS (SELECT $1::regnamespace AS ns, $1::text AS nm),"
        " lines AS ("
        "  SELECT format('column %s.%s %s%s%s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod),"
        "                CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,"
        "                coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')) AS line"
        "    FROM s, pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
        "    LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum"
        "   WHERE c.relnamespace = s.ns AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'v')"
        "  UNION ALL SELECT format('relation %s %s acl %s comment %s', c.relname, c.relkind, c.relacl,"
        "                         obj_description(c.oid, 'pg_class'))"
        "    FROM s, pg_class c WHERE c.relnamespace = s.ns"
        "  UNION ALL SELECT 'index ' || indexdef FROM s, pg_indexes WHERE schemaname = s.nm"
        "  UNION ALL SELECT format('constraint %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))"
        "    FROM s, pg_constraint WHERE connamespace = s.ns"
        "  UNION ALL SELECT 'trigger ' || pg_get_triggerdef(t.oid)"
        "    FROM s, pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = s.ns AND NOT t.tgisinternal"
        "  UNION ALL SELECT format('function %s acl %s comment %s', pg_get_functiondef(p.oid), p.proacl,"
        "                         obj_description(p.oid, 'pg_proc'))"
        "    FROM s, pg_proc p WHERE p.pronamespace = s.ns"
        "  UNION ALL SELECT format('view %s %s', c.relname, pg_get_viewdef(c.oid))"
        "    FROM s, pg_class c WHERE c.relnamespace = s.ns AND c.relkind = 'v'"
        "  UNION ALL SELECT format('type %s %s acl %s', t.typname,"
        "                         (SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid),"
        "                         t.typacl)"
        "    FROM s, pg_type t WHERE t.typnamespace = s.ns AND t.typtype IN ('e', 'c', 'd')"
        "      AND NOT EXISTS (SELECT 1 FROM pg_class r WHERE r.reltype = t.oid))"
        " SELECT string_agg(replace(line, (SELECT nm FROM s), 'S'), E'\\n' ORDER BY line) FROM lines";
    const char *params[1] = { nm };
    PGresult *res;
    char *text;

    PQclear(t_sql(c, "SELECT set_config('search_path', $1, false)", 1, params));
    res = t_sql(c, sql, 1, params);
    text = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return text;
}

/* Fails naming the first line where the two dumps differ. */
static void
assert_same_schema(const char *what, char *want, char *got)
{
    char *w = want, *g = got;

    while (*w && *g) {
        size_t wl = strcspn(w, "\n"), gl = strcspn(g, "\n");
        if (wl != gl || strncmp(w, g, wl) != 0)
            break;
        w += wl + (w[wl] == '\n');
        g += gl + (g[gl] == '\n');
    }
    ck_assert_msg(!*w && !*g, "%s differs from a fresh database: fresh has '%.*s', upgraded has '%.*s'", what,
                  (int)strcspn(w, "\n"), *w ? w : "(nothing more)", (int)strcspn(g, "\n"), *g ? g : "(nothing more)");
    free(want);
    free(got);
}

static void
fresh_schema(const char *nm)
{
    const char *params[1] = { nm };

    PQclear(t_sql(conn, "SELECT set_config('search_path', '', false)", 0, NULL));
    {
        PGresult *r = t_sql(conn, "SELECT format('DROP SCHEMA IF EXISTS %I CASCADE', $1::text),"
                                  "       format('CREATE SCHEMA %I', $1::text)", 1, params);
        PQclear(t_sql(conn, PQgetvalue(r, 0, 0), 0, NULL));
        PQclear(t_sql(conn, PQgetvalue(r, 0, 1), 0, NULL));
        PQclear(r);
    }
    PQclear(t_sql(conn, "SELECT set_config('search_path', $1, false)", 1, params));
}

/* A database at each earlier migration step (its functions as that step left them: none of
 * this build's), upgraded, equals a fresh one. */
START_TEST(test_upgrade_equals_fresh)
{
    char *fresh;

    fresh_schema("vmrq_fresh_s");
    ck_assert_int_eq(vmrq_db_upgrade(conn), (int)vmrq_db_migration_count());
    fresh = schema_dump(conn, "vmrq_fresh_s");
    for (size_t k = 0; k < vmrq_db_migration_count(); k++) {
        int version = k == 0 ? 0 : atoi(vmrq_db_migration_name(k - 1));
        char what[64];

        fresh_schema("vmrq_step_s");
        ck_assert_int_eq(vmrq_db_migrate_to(conn, version, false), (int)k);
        ck_assert_int_eq(vmrq_db_upgrade(conn), (int)(vmrq_db_migration_count() - k));
        ck_assert_int_eq(vmrq_db_check(conn), 0);
        snprintf(what, sizeof(what), "a database upgraded from migration %d", version);
        assert_same_schema(what, strdup(fresh), schema_dump(conn, "vmrq_step_s"));
    }
    free(fresh);
    PQclear(t_sql(conn, "RESET search_path", 0, NULL));
    PQclear(t_sql(conn, "DROP SCHEMA vmrq_fresh_s CASCADE", 0, NULL));
    PQclear(t_sql(conn, "DROP SCHEMA vmrq_step_s CASCADE", 0, NULL));
}
END_TEST

/* Functions changed by hand, and functions and triggers the sources no longer define, are put
 * back as the sources say: the upgraded database equals a fresh one again. */
START_TEST(test_upgrade_restores_the_sources)
{
    char *fresh;

    fresh_schema("vmrq_fresh_s");
    ck_assert_int_ge(vmrq_db_upgrade(conn), 0);
    fresh = schema_dump(conn, "vmrq_fresh_s");
    fresh_schema("vmrq_step_s");
    ck_assert_int_ge(vmrq_db_upgrade(conn), 0);
    PQclear(t_sql(conn, "CREATE OR REPLACE FUNCTION vmrq_cancel(request_id bigint, reason text DEFAULT NULL)"
                        " RETURNS void LANGUAGE sql AS 'SELECT NULL'", 0, NULL));
    PQclear(t_sql(conn, "CREATE FUNCTION vmrq_retired(int) RETURNS int LANGUAGE sql AS 'SELECT $1'", 0, NULL));
    PQclear(t_sql(conn, "CREATE FUNCTION vmrq_retired_trigger() RETURNS trigger LANGUAGE plpgsql"
                        " AS 'BEGIN RETURN NEW; END'", 0, NULL));
    PQclear(t_sql(conn, "CREATE TRIGGER requests_retired BEFORE UPDATE ON requests FOR EACH ROW"
                        " EXECUTE FUNCTION vmrq_retired_trigger()", 0, NULL));
    /* a portal's own function in the same schema is not vmrq's to drop */
    PQclear(t_sql(conn, "CREATE FUNCTION portal_helper() RETURNS int LANGUAGE sql AS 'SELECT 1'", 0, NULL));
    ck_assert_int_eq(vmrq_db_check(conn), -1);
    ck_assert_ptr_nonnull(strstr(vmrq_error_message(), "changed by hand"));
    ck_assert_int_eq(vmrq_db_upgrade(conn), 0);
    ck_assert_int_eq(vmrq_db_check(conn), 0);
    PQclear(t_sql(conn, "DROP FUNCTION portal_helper()", 0, NULL));
    assert_same_schema("a database with functions changed by hand", fresh, schema_dump(conn, "vmrq_step_s"));
    PQclear(t_sql(conn, "RESET search_path", 0, NULL));
    PQclear(t_sql(conn, "DROP SCHEMA vmrq_fresh_s CASCADE", 0, NULL));
    PQclear(t_sql(conn, "DROP SCHEMA vmrq_step_s CASCADE", 0, NULL));
}
END_TEST

/* The row versions of every object an upgrade writes: on an up-to-date database, none changes. */
static long long
xmin_digest(void)
{
    return t_sql_int(conn,
                     "SELECT ('x' || substr(md5(string_agg(x, ',' ORDER BY x)), 1, 15))::bit(60)::bigint FROM ("
                     " SELECT p.oid || ':' || p.xmin AS x FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace"
                     " UNION ALL SELECT t.oid || ':' || t.xmin FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
                     "  WHERE c.relnamespace = current_schema()::regnamespace"
                     " UNION ALL SELECT c.oid || ':' || c.xmin FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace"
                     " UNION ALL SELECT name || ':' || xmin FROM commands"
                     " UNION ALL SELECT name || ':' || xmin FROM schema_sources"
                     " UNION ALL SELECT version || ':' || xmin FROM schema_migrations) a",
                     0, NULL);
}

START_TEST(test_upgrade_of_an_up_to_date_database_writes_nothing)
{
    long long before;

    ck_assert_int_ge(vmrq_db_upgrade(conn), 0);
    before = xmin_digest();
    ck_assert_int_eq(vmrq_db_upgrade(conn), 0);
    ck_assert_int_eq(xmin_digest(), before);
    /* and a changed source is written again */
    PQclear(t_sql(conn, "UPDATE schema_sources SET md5 = 'x' WHERE name = (SELECT max(name) FROM schema_sources)", 0, NULL));
    ck_assert_int_eq(vmrq_db_upgrade(conn), 0);
    ck_assert_int_ne(xmin_digest(), before);
    ck_assert_int_eq(vmrq_db_check(conn), 0);
}
END_TEST

/* What vmrqd is told about a database that is not at its schema, each in one line. */
START_TEST(test_check_names_what_to_run)
{
    ck_assert_int_eq(vmrq_db_check(conn), -1);
    ck_assert_int_eq(vmrq_error_code(), VMRQ_ERR_STATE);
    ck_assert_str_eq(vmrq_error_message(), "no vmrq schema in this database: run 'vmrq db upgrade'");

    ck_assert_int_ge(vmrq_db_upgrade(conn), 0);
    ck_assert_int_eq(vmrq_db_check(conn), 0);

    PQclear(t_sql(conn, "DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)",
                  0, NULL));
    ck_assert_int_eq(vmrq_db_check(conn), -1);
    ck_assert_ptr_nonnull(strstr(vmrq_error_message(), "behind"));
    ck_assert_ptr_nonnull(strstr(vmrq_error_message(), "run 'vmrq db upgrade'"));
    ck_assert_ptr_null(strchr(vmrq_error_message(), '\n'));

    PQclear(t_sql(conn, "TRUNCATE schema_migrations", 0, NULL));
    ck_assert_int_ge(vmrq_db_migrate_to(conn, 0, false), 0);
    PQclear(t_sql(conn, "INSERT INTO schema_migrations (version, name) SELECT version, name FROM"
                        " (VALUES (1, '0001_baseline'), (9999, '9999_from_the_future')) v(version, name)"
                        " WHERE NOT EXISTS (SELECT 1 FROM schema_migrations m WHERE m.version = v.version)", 0, NULL));
    ck_assert_int_eq(vmrq_db_check(conn), -1);
    ck_assert_str_eq(vmrq_error_message(), "the database has migration 9999_from_the_future, which this vmrq "
                                           VMRQ_VERSION " does not know: it was upgraded by a newer vmrq");
    /* and an upgrade refuses it, changing nothing */
    ck_assert_int_eq(vmrq_db_upgrade(conn), -1);
    ck_assert_int_eq(vmrq_error_code(), VMRQ_ERR_STATE);
}
END_TEST

/* A database made by a build before the squash (0001_init ... 0011_release) is refused by name. */
START_TEST(test_another_build_is_refused)
{
    ck_assert_int_ge(vmrq_db_migrate_to(conn, 0, false), 0);
    PQclear(t_sql(conn, "INSERT INTO schema_migrations (version, name) VALUES (1, '0001_init')", 0, NULL));
    ck_assert_int_eq(vmrq_db_upgrade(conn), -1);
    ck_assert_str_eq(vmrq_error_message(), "db upgrade: the database's migration 1 is '0001_init', this vmrq's is"
                                           " '0001_baseline': it was made by another build of vmrq");
    ck_assert_int_eq(t_sql_int(conn, "SELECT count(*) FROM pg_class WHERE relname = 'requests'"
                                     " AND relnamespace = current_schema()::regnamespace", 0, NULL), 0);
}
END_TEST

/* Migrations hold no function, trigger or view; each function is defined in one source. */
START_TEST(test_each_function_has_one_source)
{
    static const char *const forbidden[] = { "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", "CREATE TRIGGER",
                                             "CREATE OR REPLACE TRIGGER", "CREATE VIEW", "CREATE OR REPLACE VIEW",
                                             NULL };
    char seen[8192] = " ";

    for (size_t i = 0; i < vmrq_migrations_count; i++)
        for (const char *const *f = forbidden; *f; f++)
            ck_assert_msg(!strcasestr(vmrq_migrations[i].sql, *f), "migration %s has '%s': it belongs in sql/functions/",
                          vmrq_migrations[i].name, *f);
    for (size_t i = 0; i < vmrq_sources_count; i++)
        for (const char *p = vmrq_sources[i].sql; (p = strcasestr(p, "CREATE OR REPLACE FUNCTION ")); ) {
            char name[80], key[96];
            p += strlen("CREATE OR REPLACE FUNCTION ");
            snprintf(name, sizeof(name), "%.*s", (int)strcspn(p, "( "), p);
            snprintf(key, sizeof(key), " %s ", name);
            ck_assert_msg(!strstr(seen, key), "function %s is defined twice (again in %s)", name, vmrq_sources[i].name);
            ck_assert(strlen(seen) + strlen(key) < sizeof(seen));
            strcat(seen, key + 1);
        }
    ck_assert_ptr_nonnull(strstr(seen, " vmrq_claim "));
}
END_TEST

START_TEST(test_upgrade_error_is_reported)
{
    PGconn *dead = PQconnectdb("host=/nonexistent-vmrq-dir connect_timeout=1");

    ck_assert_int_eq(vmrq_db_upgrade(dead), -1);
    ck_assert_int_eq(vmrq_error_code(), VMRQ_ERR_DB);
    ck_assert_int_eq(vmrq_db_version(dead), -1);
    PQfinish(dead);
}
END_TEST

Suite *
migrate_suite(void)
{
    Suite *s = suite_create("migrate");
    TCase *tc = tcase_create("migrate");

    tcase_set_tags(tc, "db");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_upgrade_twice_is_a_noop);
    tcase_add_test(tc, test_functions_pin_their_schema);
    tcase_add_test(tc, test_catalog_follows_the_build);
    tcase_add_test(tc, test_removed_command_cancels_its_requests);
    tcase_add_test(tc, test_upgrade_error_is_reported);
    tcase_add_test(tc, test_upgrade_equals_fresh);
    tcase_add_test(tc, test_upgrade_restores_the_sources);
    tcase_add_test(tc, test_upgrade_of_an_up_to_date_database_writes_nothing);
    tcase_add_test(tc, test_check_names_what_to_run);
    tcase_add_test(tc, test_another_build_is_refused);
    tcase_add_test(tc, test_each_function_has_one_source);
    suite_add_tcase(s, tc);
    return s;
}
