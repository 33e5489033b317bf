/*
 * check_migrate.c - `vmrq db upgrade` on an empty schema, twice: the second run is a no-op that
 * keeps the data; the catalog copy follows the build.
 */
#include <stdlib.h>

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
    suite_add_tcase(s, tc);
    return s;
}
