/*
 * check_log.c - vmrqd's log: a message repeated at once is said once and then counted, control
 * characters never reach the log raw, libpq's notices come with time and level, and a database
 * restart leaves no line of the daemon's log without them.
 */
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "tutil.h"

START_TEST(test_repeats_said_once_then_counted)
{
    char *all;

    t_log_capture_start();
    log_set_repeat_window(3600 * 1000);
    for (int i = 0; i < 250; i++)
        log_warnx("database: could not connect to server");
    all = t_log_captured();
    ck_assert_msg(t_lines(all) == 2, "got: %s", all);
    ck_assert_int_eq(t_count_of(all, "vmrqd warning: database: could not connect to server\n"), 1);
    ck_assert_msg(strstr(all, "vmrqd warning: database: could not connect to server (repeated 249 times in 0 s)\n"),
                  "got: %s", all);
    free(all);
    /* another message ends the count; it is told first */
    log_info("first");
    log_info("first");
    log_info("second");
    all = t_log_captured();
    ck_assert_msg(strstr(all, "first\n") && strstr(all, "first (repeated 1 time in 0 s)\n") &&
                  strstr(all, "(repeated 1 time in 0 s)\n") < strstr(all, "second\n"), "got: %s", all);
    free(all);
    t_log_capture_stop();
}
END_TEST

/* A message that keeps coming is counted out loud once per window, not only when it stops. */
START_TEST(test_repeats_told_every_window)
{
    char *all = NULL;
    bool told = false;

    t_log_capture_start();
    log_set_repeat_window(20);
    log_warnx("lane 0: claim failed");
    for (int i = 0; i < 200000 && !told; i++) {
        log_warnx("lane 0: claim failed");
        if (i % 1000 == 0) {
            free(all);
            fflush(stderr);
            all = t_log_captured(); /* t_log_captured() flushes: look before it does */
            told = t_count_of(all, "(repeated") > 0;
        }
    }
    ck_assert_msg(told, "never counted");
    free(all);
    t_log_capture_stop();
}
END_TEST

START_TEST(test_control_characters_escaped)
{
    char *all;

    t_log_capture_start();
    log_warnx("user '%s' refused", "eve\n2026-01-01 00:00:00.000 vmrqd info: forged\t\x1b[31m\x7f");
    all = t_log_captured();
    ck_assert_msg(t_lines(all) == 1, "got: %s", all);
    ck_assert_msg(strstr(all, "user 'eve\\n2026-01-01 00:00:00.000 vmrqd info: forged\\t\\x1b[31m\\x7f' refused\n"),
                  "got: %s", all);
    free(all);
    t_log_capture_stop();
}
END_TEST

START_TEST(test_libpq_notices_logged)
{
    char *all;

    t_log_capture_start();
    log_libpq_notice(NULL, "FATAL:  terminating connection due to administrator command\n");
    log_libpq_notice(NULL, "NOTICE:  relation \"x\" already exists, skipping\n");
    all = t_log_captured();
    ck_assert_msg(t_lines(all) == 2, "got: %s", all);
    ck_assert_msg(strstr(all, " vmrqd warning: database: FATAL:  terminating connection due to administrator command\n"),
                  "got: %s", all);
    ck_assert_msg(strstr(all, " vmrqd info: database: NOTICE:  relation \"x\" already exists, skipping\n"), "got: %s", all);
    free(all);
    t_log_capture_stop();
}
END_TEST

/* What libpq tells of a server that stops (FATAL: terminating connection ...) reaches the
 * daemon's log as its own lines: every line has a time and a level. */
START_TEST(test_database_restart_log_lines)
{
    struct t_daemon d = { 0 };
    const char *restart = getenv("VMRQ_PG_RESTART");
    char line[4096];
    regex_t re;
    FILE *f;
    int lines = 0;

    ck_assert_msg(restart != NULL, "VMRQ_PG_RESTART is not set: run the tests with make check");
    t_db_setup();
    t_daemon_start(&d, "lease = 1s\npoll_interval = 1h\nlibvirt_uri = test:///default\nlanes = 1\n", false);
    PQfinish(t_db);
    t_db = NULL;
    ck_assert_int_eq(system(restart), 0);
    for (int i = 0; i < 3000 && !t_daemon_logged(&d, "database connection is back"); i++) {
        struct timespec ts = { 0, 10 * 1000000 };
        nanosleep(&ts, NULL);
    }
    ck_assert(t_daemon_logged(&d, "database connection is back"));
    ck_assert_int_eq(t_daemon_wait(&d, SIGTERM, 20000), 0);
    ck_assert(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} vmrqd "
                           "(error|warning|info|debug): ", REG_EXTENDED | REG_NOSUB) == 0);
    ck_assert((f = fopen(d.log, "r")) != NULL);
    while (fgets(line, sizeof(line), f)) {
        lines++;
        ck_assert_msg(regexec(&re, line, 0, NULL, 0) == 0, "a line without time and level: %s", line);
    }
    fclose(f);
    regfree(&re);
    ck_assert_int_gt(lines, 3);
    t_daemon_cleanup(&d);
}
END_TEST

/* A completion the database keeps refusing (here a trigger, on a connection that stays up) is
 * tried again with growing pauses, not in a loop that spins, and its warning is counted. */
START_TEST(test_refused_completion_backs_off)
{
    struct t_daemon d = { 0 };
    long long attempts;

    t_db_setup();
    PQclear(t_sql(t_db, "CREATE SEQUENCE t_refusals", 0, NULL));
    PQclear(t_sql(t_db, "CREATE FUNCTION t_refuse_done() RETURNS trigger LANGUAGE plpgsql AS $$"
                        " BEGIN IF NEW.status = 'done' THEN PERFORM nextval('t_refusals');"
                        " RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$", 0, NULL));
    PQclear(t_sql(t_db, "CREATE TRIGGER t_refuse BEFORE UPDATE ON requests FOR EACH ROW"
                        " EXECUTE FUNCTION t_refuse_done()", 0, NULL));
    t_daemon_start(&d, "lease = 30s\npoll_interval = 1h\nlibvirt_uri = test:///default\nlanes = 0\n", false);
    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend', '{}')", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT CASE WHEN is_called THEN 1 ELSE 0 END FROM t_refusals", 1, 5000), 1);
    /* a second and a half: 100, 200, 400, 800 ms pauses make five tries; a spin, thousands */
    clock_nanosleep(CLOCK_MONOTONIC, 0, &(struct timespec){ 1, 500 * 1000000 }, NULL);
    attempts = t_sql_int(t_db, "SELECT last_value FROM t_refusals", 0, NULL);
    ck_assert_msg(attempts >= 2 && attempts <= 10, "%lld attempts in 1.5 s", attempts);
    PQclear(t_sql(t_db, "DROP TRIGGER t_refuse ON requests", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE status = 'done'", 1, 10000), 1);
    ck_assert_int_eq(t_daemon_wait(&d, SIGTERM, 20000), 0);
    ck_assert_msg(t_daemon_logged(&d, "refused by the test") && t_daemon_logged(&d, "(repeated "),
                  "the refusal was not logged once and counted; see %s", d.log);
    t_daemon_cleanup(&d);
    t_db_teardown();
}
END_TEST

/* Whatever a test of this case left in the shared database, even after a failure. */
static void
drop_test_objects(void)
{
    PGconn *conn = t_connect();

    PQclear(t_sql(conn, "DROP TRIGGER IF EXISTS t_refuse ON requests", 0, NULL));
    PQclear(t_sql(conn, "DROP FUNCTION IF EXISTS t_refuse_done()", 0, NULL));
    PQclear(t_sql(conn, "DROP SEQUENCE IF EXISTS t_refusals", 0, NULL));
    PQfinish(conn);
}

Suite *
log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");
    TCase *db = tcase_create("log_db");

    tcase_add_test(tc, test_repeats_said_once_then_counted);
    tcase_add_test(tc, test_repeats_told_every_window);
    tcase_add_test(tc, test_control_characters_escaped);
    tcase_add_test(tc, test_libpq_notices_logged);
    suite_add_tcase(s, tc);
    tcase_set_tags(db, "db daemon");
    tcase_set_timeout(db, 60);
    tcase_add_unchecked_fixture(db, drop_test_objects, drop_test_objects);
    tcase_add_test(db, test_database_restart_log_lines);
    tcase_add_test(db, test_refused_completion_backs_off);
    suite_add_tcase(s, db);
    return s;
}
