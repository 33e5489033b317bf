/*
 * check_failover.c - vmrq on a replicated PostgreSQL: a primary and its synchronous streaming
 * standby (t/pg-pair: two throwaway clusters of their own, apart from the suites' server),
 * vmrqd and the test connected with libpq's multi-host conninfo (both hosts,
 * target_session_attrs=read-write). Under load the primary is killed with SIGKILL and the
 * standby promoted: vmrqd finds the new primary within seconds, every request whose enqueue
 * was acknowledged ends terminal, and none ran twice unless a death of its vmrqd allowed it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tutil.h"

static char pair[64];
static struct t_daemon dm;

static long long
ms_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int
pair_run(const char *what)
{
    char cmd[256];

    snprintf(cmd, sizeof(cmd), "t/pg-pair %s %s >/dev/null", what, pair);
    return system(cmd);
}

static void
setup(void)
{
    memset(&dm, 0, sizeof(dm));
    snprintf(pair, sizeof(pair), "/tmp/vmrq-pair.XXXXXX");
    ck_assert(mkdtemp(pair) != NULL);
    ck_assert_msg(pair_run("start") == 0, "t/pg-pair could not start a primary and a standby");
}

static void
teardown(void)
{
    t_daemon_cleanup(&dm);
    pair_run("stop");
}

/* A connection to whichever of the pair accepts writes, as `user`; NULL if none does yet. */
static PGconn *
connect_rw(const char *user)
{
    char info[512];
    PGconn *c;

    snprintf(info, sizeof(info), "host=%s/primary,%s/standby dbname=vmrq user=%s target_session_attrs=read-write",
             pair, pair, user);
    c = PQconnectdb(info);
    if (PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, NULL, NULL);
    return c;
}

START_TEST(test_failover_to_the_standby)
{
    PGconn *c = connect_rw("vmrq");
    char info[512], conf[] = "lease = 1s\npoll_interval = 1s\nlog_level = info\nlibvirt_uri = test:///default\n";
    long long acked = 0, promoted_ms, back_ms, first_after = 0;
    PGresult *res;

    ck_assert_ptr_nonnull(c);
    ck_assert_int_ge(vmrq_db_upgrade(c), 0);
    PQclear(t_sql(c, "CREATE ROLE vmrq_t_daemon LOGIN IN ROLE vmrq_daemon", 0, NULL));
    snprintf(info, sizeof(info), "host=%s/primary,%s/standby dbname=vmrq user=vmrq_t_daemon"
                                 " target_session_attrs=read-write", pair, pair);
    t_node_ensure(c, conf);
    t_daemon_spawn(&dm, conf, false, info);
    ck_assert_msg(t_wait_value(c, "SELECT count(*) FROM daemons WHERE stopped_at IS NULL", 1, 30000) == 1,
                  "vmrqd did not register; see %s", dm.log);

    /* load: batches of 200, each acknowledged by its commit (which waited for the standby) */
    for (int batch = 0; batch < 20; batch++) {
        res = t_sql(c, "WITH x AS (INSERT INTO requests (command) SELECT 'ping_backend'"
                       "  FROM generate_series(1, 200) RETURNING id) SELECT max(id) FROM x", 0, NULL);
        acked = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
    }
    /* a backlog that vmrqd is draining when the primary dies */
    res = t_sql(c, "WITH x AS (INSERT INTO requests (command) SELECT 'ping_backend'"
                   "  FROM generate_series(1, 20000) RETURNING id) SELECT max(id) FROM x", 0, NULL);
    acked = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    ck_assert_int_eq(pair_run("kill-primary"), 0);
    PQfinish(c);
    ck_assert_int_eq(pair_run("promote"), 0);
    promoted_ms = ms_now();
    ck_assert_ptr_nonnull(c = connect_rw("vmrq"));
    {
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM requests WHERE id <= %lld AND status <> 'done'", acked);
        printf("failover: the standby promoted, %lld of the %lld acknowledged requests not yet done\n",
               t_sql_int(c, sql, 0, NULL), acked);
    }
    /* more load on the new primary; the first of it tells when vmrqd is back */
    for (int batch = 0; batch < 20; batch++) {
        res = t_sql(c, "WITH x AS (INSERT INTO requests (command) SELECT 'ping_backend'"
                       "  FROM generate_series(1, 200) RETURNING id) SELECT min(id), max(id) FROM x", 0, NULL);
        if (batch == 0)
            first_after = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        acked = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        PQclear(res);
    }
    {
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM requests WHERE id = %lld AND status = 'done'", first_after);
        ck_assert_msg(t_wait_value(c, sql, 1, 15000) == 1, "vmrqd did not come back within 15 s of the promotion;"
                      " see %s", dm.log);
    }
    back_ms = ms_now() - promoted_ms;
    printf("failover: vmrqd ran a request on the promoted standby %lld ms after the promotion\n", back_ms);

    /* every acknowledged request ends terminal, done; none ran more often than allowed */
    {
        char sql[160];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM requests WHERE id <= %lld AND status = 'done'", acked);
        ck_assert_int_eq(t_wait_value(c, sql, 28000, 60000), 28000);
    }
    ck_assert_int_eq(t_sql_int(c, "SELECT count(*) FROM requests WHERE attempts > recoveries + 1", 0, NULL), 0);

    /* the CLI takes the same multi-host conninfo, and finds the new primary too */
    {
        char owner[512];
        struct t_cli r;

        snprintf(owner, sizeof(owner), "host=%s/primary,%s/standby dbname=vmrq user=vmrq"
                                       " target_session_attrs=read-write", pair, pair);
        r = t_cli_run("request", "ping_backend", "--wait", "--wait-timeout", "10", "-c", owner, NULL);
        ck_assert_msg(r.status == 0, "vmrq request through the multi-host conninfo: %d %s", r.status, r.err);
        t_cli_free(&r);
    }
    ck_assert(t_daemon_wait_logged(&dm, "lost the database connection", 10000));
    ck_assert(t_daemon_wait_logged(&dm, "database connection is back", 10000));
    ck_assert_int_eq(t_daemon_wait(&dm, SIGTERM, 10000), 0);
    PQfinish(c);
}
END_TEST

Suite *
failover_suite(void)
{
    Suite *s = suite_create("failover");
    TCase *tc = tcase_create("failover");

    tcase_set_tags(tc, "db daemon failover");
    tcase_set_timeout(tc, 240);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_failover_to_the_standby);
    suite_add_tcase(s, tc);
    return s;
}
