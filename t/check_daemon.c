/*
 * check_daemon.c - vmrqd as its users rely on it, each test with real daemons on the
 * throwaway database: woken by NOTIFY, order, scheduled requests, dependencies, retry with
 * backoff, per-domain serialization and exactly-once under two daemons, recovery after kill -9,
 * a database restart, SIGTERM, SIGHUP with a broken file, and valgrind.
 *
 * The domains these requests name do not exist, so domain commands fail at once ("no domain
 * '1'"): they still go through claiming, serialization and recording like any other.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "claim.h"
#include "job.h"
#include "lanes.h"
#include "migrations.h"
#include "relay.h"
#include "tutil.h"

/* Daemons of a test; cleaned up by the teardown even when an assertion fails. */
static struct t_daemon da, db;

/* Quick timers; a poll so slow that only NOTIFY and the at-timer can explain a fast reaction. */
#define FAST "lease = 1s\npoll_interval = 1h\nretry_backoff = 100ms\nlog_level = info\n" \
             "libvirt_uri = test:///default\n"

static void
setup(void)
{
    t_db_setup();
    memset(&da, 0, sizeof(da));
    memset(&db, 0, sizeof(db));
}

static void
teardown(void)
{
    t_daemon_cleanup(&da);
    t_daemon_cleanup(&db);
    t_db_teardown();
}

static long long
count(const char *sql)
{
    return t_sql_int(t_db, sql, 0, NULL);
}

START_TEST(test_wakes_on_notify)
{
    vmrq_request *req = vmrq_request_new("ping_backend");
    vmrq_status st;

    t_daemon_start(&da, FAST, false);
    ck_assert_int_eq(vmrq_request_enqueue(t_db, req), 0);
    /* the fallback poll is an hour: only the notification can be this quick */
    ck_assert_msg(vmrq_request_wait(t_db, vmrq_request_id(req), 2000, &st) == 0, "%s", vmrq_error_message());
    ck_assert_int_eq(st, VMRQ_STATUS_DONE);
    ck_assert(t_daemon_logged(&da, "request 1 (ping_backend, domain -, uid -): done in"));
    vmrq_request_free(req);
}
END_TEST

START_TEST(test_order_priority_then_age)
{
    PGresult *res;

    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend', jsonb_build_object('priority', p))"
                        "  FROM unnest(ARRAY[0, 5, 0, 5, -1]) AS p", 0, NULL));
    /* one at a time, so that started_at shows the order of the claims; no lanes: a full claim
     * (of 1) wakes them, and a lane claiming at the same instant may stamp the next request a
     * hair before the loop stamps the one it skipped as locked */
    t_daemon_start(&da, FAST "workers = 1\nlimit_important = 1\nclaim_batch = 1\nlanes = 0\n", false);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE status = 'done'", 5, 5000), 5);
    res = t_sql(t_db, "SELECT string_agg(id::text, ',' ORDER BY started_at) FROM requests", 0, NULL);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), "2,4,1,3,5");
    PQclear(res);
}
END_TEST

/* Each class is claimed within its own limit: one worker may be handed an important, two
 * secondary and a long request at once. The extra ones wait for the worker; all run, and the
 * daemon stops cleanly (under SANITIZE=1 an overrun of the table of jobs in flight aborts it). */
START_TEST(test_classes_beyond_free_workers)
{
    PQclear(t_sql(t_db, "SELECT vmrq_request(c, jsonb_build_object('uid', 1, 'id_domain', d))"
                        "  FROM (VALUES ('start', 1), ('set_time', 2), ('refresh_machine', 3), ('hibernate', 4)) v(c, d)",
                  0, NULL));
    t_daemon_start(&da, FAST "workers = 1\nlimit_important = 1\nlimit_secondary = 2\nlimit_long = 1\n", false);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE id <= 4 AND finished_at IS NOT NULL",
                                  4, 5000), 4);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE id <= 4 AND error = format('no domain ''%s''', id_domain)"), 4);
    ck_assert_int_eq(t_daemon_wait(&da, SIGTERM, 5000), 0);
}
END_TEST

/* Four refresh_vms of node 'test' (the fourth, uid 1, no-duplicate), each waiting for the
 * advisory lock that the returned connection holds; a daemon with 2 workers, limit_secondary 1,
 * claim_ahead 3 and `extra`, which has claimed all four and started the first. */
static PGconn *
four_claimed_behind_a_lock(const char *extra)
{
    PGconn *locker = t_connect();
    char conf[512];

    PQclear(t_sql(locker, "SELECT pg_advisory_lock(hashtext('vmrq refresh_vms ' || 'test'))", 0, NULL));
    PQclear(t_sql(t_db, "SELECT vmrq_request('refresh_vms', '{\"_force\": true}') FROM generate_series(1, 3)",
                  0, NULL));
    PQclear(t_sql(t_db, "SELECT vmrq_request('refresh_vms', '{\"uid\": 1}')", 0, NULL));
    snprintf(conf, sizeof(conf), FAST "node = test\nworkers = 2\nlimit_secondary = 1\nclaim_ahead = 3\n%s", extra);
    t_daemon_start(&da, conf, false);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE status = 'working'", 4, 5000), 4);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory'",
                                  1, 5000), 1);
    return locker;
}

/* Claimed ahead (claim_ahead), a class still runs within its limit, with a worker free; and a
 * request waiting in vmrqd for its turn is not failed for handler_deadline, which counts from
 * the start of its handler. */
START_TEST(test_claim_ahead_keeps_limits_and_deadlines)
{
    PGconn *locker = four_claimed_behind_a_lock("handler_deadline = 500ms\n");

    /* the one that started overran its deadline. The three behind it were claimed before it
     * started: had their deadlines counted from the claim, they would have passed by now, and
     * been written in the same statement as its failure */
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE status = 'failed'"
                                        " AND error = 'the handler did not finish within 500 ms (handler_deadline)'",
                                  1, 10000), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory'"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE id <= 4 AND status = 'working'"), 3);
    PQclear(t_sql(locker, "SELECT pg_advisory_unlock_all()", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE id <= 4 AND status = 'done'", 3, 5000), 3);
    ck_assert_int_eq(t_daemon_wait(&da, SIGTERM, 5000), 0);
    PQfinish(locker);
}
END_TEST

/* Asked to stop, vmrqd finishes what runs and gives back what it claimed ahead and never
 * started: requested again, the attempt not counted (or cancelled, for a no-duplicate twin). */
START_TEST(test_stop_gives_back_what_did_not_start)
{
    PGconn *locker = four_claimed_behind_a_lock("");

    /* request 4's twin arrives while 4 waits in vmrqd */
    PQclear(t_sql(t_db, "SELECT vmrq_request('refresh_vms', '{\"uid\": 1}')", 0, NULL));
    ck_assert_int_eq(kill(da.pid, SIGTERM), 0);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE id IN (2, 3) AND status = 'requested'"
                                        " AND attempts = 0 AND started_at IS NULL AND id_daemon IS NULL", 2, 5000), 2);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE id = 4 AND status = 'cancelled' AND error ="
                           " 'claimed ahead when vmrqd was asked to stop, not run; request 5, the same, is pending'"), 1);
    ck_assert_int_eq(t_daemon_wait(&da, 0, 300), -1); /* request 1 still runs */
    PQclear(t_sql(locker, "SELECT pg_advisory_unlock_all()", 0, NULL));
    ck_assert_int_eq(t_daemon_wait(&da, 0, 5000), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE id = 1 AND status = 'done'"), 1);
    /* (said once or in parts, as the workers let go of them: the rows above have the count) */
    ck_assert(t_daemon_logged(&da, "claimed ahead and not started"));
    PQfinish(locker);
}
END_TEST

/* The daemon sleeps until the request is due: no earlier, and not a poll tick later. */
START_TEST(test_at_time_without_polling)
{
    long long late_ms;

    t_daemon_start(&da, FAST, false);
    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend', jsonb_build_object('at',"
                        " (clock_timestamp() + interval '800 ms')::text))", 0, NULL));
    ck_assert_msg(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE status = 'done'", 1, 5000) == 1,
                  "the scheduled request did not run; see %s", da.log);
    late_ms = count("SELECT (extract(epoch FROM started_at - at_time) * 1000)::bigint FROM requests");
    ck_assert_msg(late_ms >= 0 && late_ms <= 50, "started %lld ms after it was due", late_ms);
}
END_TEST

START_TEST(test_dependencies)
{
    /* 1 succeeds; 3 fails (no such domain); the children follow their parents' outcomes */
    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend')", 0, NULL));                           /* 1 */
    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend', '{\"after_request_ok\": 1}')", 0, NULL)); /* 2 */
    PQclear(t_sql(t_db, "SELECT vmrq_request('start', '{\"uid\": 1, \"id_domain\": 1}')", 0, NULL));  /* 3 */
    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend', '{\"after_request_ok\": 3}')", 0, NULL)); /* 4 */
    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend', '{\"after_request\": 3}')", 0, NULL));    /* 5 */
    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend', '{\"after_request_ok\": 4}')", 0, NULL)); /* 6 */
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE status = 'waiting'"), 4);

    t_daemon_start(&da, FAST, false);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE finished_at IS NOT NULL", 6, 5000), 6);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE status = 'done' AND id IN (1, 2, 5)"), 3);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE id = 4 AND status = 'failed'"
                           " AND error = 'request 3 it depends on (after_request_ok) failed'"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE id = 6 AND status = 'failed'"
                           " AND error = 'request 4 it depends on (after_request_ok) failed'"), 1);
    /* children never ran before their parents finished */
    ck_assert_int_eq(count("SELECT count(*) FROM requests c JOIN requests p"
                           "  ON p.id = coalesce(c.after_request, c.after_request_ok)"
                           " WHERE c.started_at < p.finished_at"), 0);
}
END_TEST

/* A retryable failure goes back to the queue with a doubling backoff until retries run out. */
START_TEST(test_retry_with_backoff)
{
    struct vmrqd_job *job = NULL;
    int daemon;

    daemon = (int)count("INSERT INTO daemons (node, hostname, pid, version) VALUES ('n', 'h', 1, 'test')"
                        " RETURNING id");
    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend', '{\"retry\": 2}')", 0, NULL));
    for (int attempt = 1; attempt <= 3; attempt++) {
        PQclear(t_sql(t_db, "UPDATE requests SET at_time = NULL", 0, NULL)); /* due now */
        ck_assert_int_eq(claim_jobs(t_db, daemon, "n", (int[CLAIM_LANES]){ [CLAIM_INLINE] = 10 }, &job, NULL), 1);
        ck_assert_int_eq(job->attempts, attempt);
        job_fail(job, true, "agent not connected yet");
        ck_assert_int_eq(claim_complete(t_db, daemon, job, 1000, NULL), 0);
        job_free(job);
        job = NULL;
        if (attempt < 3) {
            long long wait_ms = count("SELECT round(extract(epoch FROM at_time - clock_timestamp()) * 1000)"
                                      "  FROM requests");
            long long want = attempt == 1 ? 1000 : 2000;
            ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE status = 'requested'"
                                   " AND id_daemon IS NULL AND error = 'agent not connected yet'"), 1);
            ck_assert_int_eq(count("SELECT retry FROM requests"), 2 - attempt);
            ck_assert_msg(wait_ms > want - 500 && wait_ms <= want, "backoff %lld ms, want %lld", wait_ms, want);
        }
    }
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE status = 'failed'"
                           " AND error = 'agent not connected yet' AND finished_at IS NOT NULL"), 1);
}
END_TEST

/* A no-duplicate request may be enqueued again while its twin runs. If the running one then has
 * to go back to the queue (a retryable failure, or its daemon died), the two would collide in
 * requests_dedupe and the statement would fail, every other outcome or claim in it too, at every
 * try. The retry gives way instead: it fails, naming the pending twin, which does the same work. */
START_TEST(test_retry_gives_way_to_a_pending_twin)
{
    static const int all[CLAIM_LANES] = { 10, 10, 10, 10 };
    struct vmrqd_job *job = NULL;
    char sql[160];
    long long tag;
    int daemon;
    PGresult *res;

    daemon = (int)count("INSERT INTO daemons (node, hostname, pid, version) VALUES ('n', 'h', 1, 'test')"
                        " RETURNING id");
    PQclear(t_sql(t_db, "SELECT vmrq_request('refresh_vms', '{\"retry\": 2}')", 0, NULL));
    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend')", 0, NULL));
    ck_assert_int_eq(claim_jobs(t_db, daemon, "n", all, &job, NULL), 2);
    ck_assert_int_eq(count("SELECT vmrq_request('refresh_vms', '{\"retry\": 2}')"), 3);
    job_fail(job->id == 1 ? job : job->next, true, "hypervisor unreachable");
    (job->id == 1 ? job->next : job)->outcome = JOB_DONE;
    ck_assert_int_eq(claim_complete(t_db, daemon, job, 1000, NULL), 0);
    res = t_sql(t_db, "SELECT status || ': ' || error FROM requests WHERE id = 1", 0, NULL);
    ck_assert_str_eq(PQgetvalue(res, 0, 0),
                     "failed: hypervisor unreachable; not retried: request 3, the same, is pending");
    PQclear(res);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE id = 2 AND status = 'done'"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE id = 3 AND status = 'requested'"), 1);
    while (job) {
        struct vmrqd_job *next = job->next;
        job_free(job);
        job = next;
    }

    /* the same when a dead daemon's claim is taken back: request 3 is claimed by a daemon that
     * stops, a twin arrives, recovery ends 3 (cancelled: the twin runs again what it would have)
     * and takes back nothing else wrongly */
    ck_assert_int_eq(claim_jobs(t_db, daemon, "n", all, &job, NULL), 1);
    snprintf(sql, sizeof(sql), "SELECT vmrq_handler_started(%d, 3)::int", daemon); /* it runs */
    ck_assert_int_eq(count(sql), 1);
    ck_assert_int_eq(count("SELECT vmrq_request('refresh_vms', '{\"retry\": 2}')"), 4);
    snprintf(sql, sizeof(sql), "UPDATE daemons SET stopped_at = now() WHERE id = %d RETURNING id", daemon);
    ck_assert_int_eq(count(sql), daemon);
    ck_assert_int_eq(count("SELECT vmrq_recover('1 second')"), 1);
    res = t_sql(t_db, "SELECT status || ': ' || error FROM requests WHERE id = 3", 0, NULL);
    ck_assert_msg(strstr(PQgetvalue(res, 0, 0), "stopped while running it; not run again: request 4, the same, is pending")
                  && strncmp(PQgetvalue(res, 0, 0), "cancelled: ", 11) == 0, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE id = 4 AND status = 'requested'"), 1);
    job_free(job);

    /* and when a claim whose answer was lost is given back (request 4, its twin 5) */
    ck_assert_int_eq(claim_jobs(t_db, daemon, "n", all, &job, NULL), 1);
    ck_assert_int_eq(count("SELECT vmrq_request('refresh_vms', '{\"retry\": 2}')"), 5);
    tag = count("SELECT claim_tag FROM requests WHERE id = 4");
    ck_assert_int_eq(claim_release_lost(t_db, daemon, &tag), 0);
    ck_assert_int_eq(tag, 0);
    res = t_sql(t_db, "SELECT status || ': ' || error || ' (' || attempts || ')' FROM requests WHERE id = 4", 0, NULL);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), "cancelled: claimed when the database connection broke, not run;"
                                            " request 5, the same, is pending (0)");
    PQclear(res);
    job_free(job);
}
END_TEST

/* A request that found the hypervisor out of reach did nothing: it goes back to the queue in its
 * place (due at once, not started), charged neither a retry nor an attempt; with a twin pending,
 * it gives way to it. */
START_TEST(test_unreached_goes_back)
{
    static const int all[CLAIM_LANES] = { 10, 10, 10, 10 };
    struct vmrqd_job *job = NULL;
    int daemon;
    PGresult *res;

    daemon = (int)count("INSERT INTO daemons (node, hostname, pid, version) VALUES ('n', 'h', 1, 'test')"
                        " RETURNING id");
    PQclear(t_sql(t_db, "SELECT vmrq_request('refresh_vms')", 0, NULL)); /* 1, no retry */
    ck_assert_int_eq(claim_jobs(t_db, daemon, "n", all, &job, NULL), 1);
    job_put_back(job, "kvm1: no connection to the hypervisor (end of file); reconnecting");
    ck_assert_int_eq(claim_complete(t_db, daemon, job, 100, NULL), 0);
    job_free(job);
    job = NULL;
    res = t_sql(t_db, "SELECT status || ' ' || retry || ' ' || attempts || ' ' || (at_time <= clock_timestamp())"
                      " || ' ' || (started_at IS NULL) || ': ' || error FROM requests WHERE id = 1", 0, NULL);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), "requested 0 0 true true: kvm1: no connection to the hypervisor (end of"
                                            " file); reconnecting");
    PQclear(res);

    ck_assert_int_eq(claim_jobs(t_db, daemon, "n", all, &job, NULL), 1);
    ck_assert_int_eq(count("SELECT vmrq_request('refresh_vms')"), 2); /* a twin, while 1 works */
    job_put_back(job, "kvm1: no connection to the hypervisor (end of file); reconnecting");
    ck_assert_int_eq(claim_complete(t_db, daemon, job, 100, NULL), 0);
    job_free(job);
    res = t_sql(t_db, "SELECT status || ': ' || error FROM requests WHERE id = 1", 0, NULL);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), "cancelled: kvm1: no connection to the hypervisor (end of file);"
                                            " reconnecting; not run; request 2, the same, is pending");
    PQclear(res);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE id = 2 AND status = 'requested'"), 1);
}
END_TEST

/* A lane that finishes the parent of a waiting request tells the main loop, as a new request
 * would: the loop is the one that moves waiting requests on, and without the word the child
 * waited for the loop's next completion or its fallback poll. */
START_TEST(test_lane_tells_loop_of_waiting)
{
    struct vmrqd_worker loop_worker = { .index = -1 };
    struct vmrqd_config cfg;
    const char *conninfo = getenv("VMRQ_DB");
    struct lanes *ls;
    PGconn *listener;
    PGnotify *n = NULL;
    char channel[64];
    int daemon;

    /* the word goes to the lane's own node, not to every daemon */
    snprintf(channel, sizeof(channel), "LISTEN vmrq_request_%lld",
             count("INSERT INTO nodes (name, uri) VALUES ('n', 'test:///default') RETURNING id"));
    daemon = (int)count("INSERT INTO daemons (node, hostname, pid, version) VALUES ('n', 'h', 1, 'test')"
                        " RETURNING id");
    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend')", 0, NULL));                        /* 1 */
    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend', '{\"after_request\": 1}')", 0, NULL)); /* 2 */
    ck_assert_ptr_nonnull(conninfo);
    listener = PQconnectdb(conninfo); /* listening from now: the enqueues' own words are past */
    ck_assert_int_eq(PQstatus(listener), CONNECTION_OK);
    PQclear(PQexec(listener, channel));
    memset(&cfg, 0, sizeof(cfg));
    cfg.claim_batch = 10;
    cfg.retry_backoff_ms = 1000;
    ck_assert_ptr_nonnull(ls = lanes_new(1, conninfo, "n", &loop_worker));
    lanes_wake(ls, &cfg, daemon);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE id = 1 AND status = 'done'", 1, 5000), 1);
    for (int waited = 0; waited < 2000 && !n; waited += 20) {
        struct timespec pause = { 0, 20 * 1000000L };
        ck_assert(PQconsumeInput(listener));
        if (!(n = PQnotifies(listener)))
            nanosleep(&pause, NULL);
    }
    ck_assert_msg(n != NULL, "the lane finished request 1, which request 2 waits on, and told no one");
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE id = 2 AND status = 'waiting'"), 1);
    PQfreemem(n);
    lanes_free(ls);
    PQfinish(listener);
}
END_TEST

/* A lane whose claim committed but whose answer was lost with its connection gives those
 * requests back and goes on, without waiting for another backlog to wake it: here nothing else
 * would, and they would stay 'working' for as long as the daemon lives. */
START_TEST(test_lane_gives_back_a_lost_claim)
{
    struct vmrqd_worker loop_worker = { .index = -1 };
    struct t_relay *relay = t_relay_start();
    struct vmrqd_config cfg;
    struct lanes *ls;
    int daemon;

    ck_assert(relay != NULL);
    daemon = (int)count("INSERT INTO daemons (node, hostname, pid, version) VALUES ('n', 'h', 1, 'test')"
                        " RETURNING id");
    PQclear(t_sql(t_db, "INSERT INTO requests (command) SELECT 'ping_backend' FROM generate_series(1, 3)", 0, NULL));
    memset(&cfg, 0, sizeof(cfg));
    cfg.claim_batch = 10;
    cfg.retry_backoff_ms = 1000;
    t_relay_arm(relay);
    ck_assert_ptr_nonnull(ls = lanes_new(1, t_relay_conninfo(relay), "n", &loop_worker));
    lanes_wake(ls, &cfg, daemon); /* the only wake */
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE status = 'done'", 3, 5000), 3);
    ck_assert(t_relay_cut(relay));
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE attempts = 1"), 3); /* the lost claim not counted */
    lanes_free(ls);
    t_relay_free(relay);
}
END_TEST

/* Two daemons, three domains, many requests: per domain, each request starts after the previous
 * one (by id) has finished. */
START_TEST(test_domain_serialization_two_daemons)
{
    PQclear(t_sql(t_db, "INSERT INTO requests (command, args)"
                        " SELECT 'pause', jsonb_build_object('uid', 1, 'id_domain', 1 + i % 3)"
                        "   FROM generate_series(1, 300) AS i", 0, NULL));
    PQclear(t_sql(t_db, "INSERT INTO requests (command, args) SELECT 'ping_backend', '{}'"
                        "   FROM generate_series(1, 100)", 0, NULL));
    t_daemon_start(&da, FAST "log_level = warning\n", false);
    t_daemon_start(&db, FAST "log_level = warning\n", false);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE finished_at IS NOT NULL", 400,
                                  30000), 400);
    ck_assert_int_eq(count("SELECT count(*) FROM requests a JOIN requests b"
                           "  ON b.id_domain = a.id_domain AND b.id > a.id"
                           " WHERE b.started_at < a.finished_at"), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE command = 'pause'"
                           " AND error LIKE 'no domain ''_'''"), 300);
}
END_TEST

START_TEST(test_exactly_once_two_daemons)
{
    /* small batches, so that the two daemons' claims interleave */
    t_daemon_start(&da, FAST "log_level = warning\nclaim_batch = 50\n", false);
    t_daemon_start(&db, FAST "log_level = warning\nclaim_batch = 50\n", false);
    PQclear(t_sql(t_db, "INSERT INTO requests (command, args) SELECT 'ping_backend', '{}'"
                        "   FROM generate_series(1, 10000)", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE status = 'done'", 10000, 60000),
                     10000);
    /* each claimed once: attempts counts the claims of a request */
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE attempts = 1 AND started_at IS NOT NULL"), 10000);
    ck_assert_int_eq(count("SELECT count(DISTINCT id_daemon) FROM requests"), 2);
}
END_TEST

/* A daemon dies (kill -9) holding two claims: one it had not started, one whose handler ran.
 * The next daemon takes both back and runs them: the first as if never claimed (its retry
 * unspent, its attempt not counted), the second, rerunnable, counted as one death. */
START_TEST(test_recovery_after_kill)
{
    char id[16];
    const char *params[1] = { id };

    t_daemon_start(&da, FAST, false);
    kill(da.pid, SIGSTOP); /* frozen: it holds its claims but will not run them */
    snprintf(id, sizeof(id), "%d", da.id);
    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend', '{\"retry\": 1}')", 0, NULL));
    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend', '{\"priority\": 1}')", 0, NULL));
    PQclear(t_sql(t_db, "UPDATE requests SET status = 'working', started_at = now(), id_daemon = $1::int,"
                        " attempts = 1, handler_started_at = CASE WHEN id = 2 THEN now() END",
                  1, params));
    ck_assert_int_eq(t_daemon_wait(&da, SIGKILL, 5000), 128 + SIGKILL);

    t_daemon_start(&db, FAST, false);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE status = 'done'", 2, 10000), 2);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE id = 1 AND retry = 1 AND attempts = 1"
                           " AND recoveries = 0 AND error IS NULL"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE id = 2 AND retry = 0 AND attempts = 2"
                           " AND recoveries = 1"), 1);
    ck_assert(t_daemon_logged(&db, "took back 2 requests from daemons that stopped answering"));
}
END_TEST

/* What recovery does with each kind of claim a dead daemon held (vmrq_recover()): not started,
 * any command goes back uncounted; running and rerunnable goes back, counted apart from retry,
 * until the third death fails it; running and not rerunnable (no such command in the catalog
 * today: the flag is taken off 'start' in this test's transaction) is retried while it has
 * retries left, else failed, saying why. */
START_TEST(test_recovery_rules)
{
    static const int all[CLAIM_LANES] = { 10, 10, 10, 10 };
    struct vmrqd_job *job = NULL;
    PGresult *res;
    char sql[256];

    PQclear(t_sql(t_db, "BEGIN", 0, NULL));
    PQclear(t_sql(t_db, "UPDATE commands SET flags = array_remove(flags, 'rerunnable') WHERE name = 'start'", 0, NULL));
    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend')", 0, NULL));                                 /* 1 */
    PQclear(t_sql(t_db, "SELECT vmrq_request('start', '{\"uid\": 1, \"id_domain\": 1}')", 0, NULL));  /* 2 */
    PQclear(t_sql(t_db, "SELECT vmrq_request('start', '{\"uid\": 1, \"id_domain\": 2}')", 0, NULL));  /* 3 */
    PQclear(t_sql(t_db, "SELECT vmrq_request('start', '{\"uid\": 1, \"id_domain\": 3, \"retry\": 1}')",
                  0, NULL));                                                                              /* 4 */
    for (int death = 1; death <= 3; death++) {
        int daemon = (int)count("INSERT INTO daemons (node, hostname, pid, version) VALUES ('n', 'h', 7, 'test')"
                                " RETURNING id");
        int want = death == 1 ? 4 : 2; /* 1 and 2 come back each time */

        ck_assert_int_eq(claim_jobs(t_db, daemon, "n", all, &job, NULL), want);
        while (job) {
            struct vmrqd_job *next = job->next;
            job_free(job);
            job = next;
        }
        /* the inline ping was stamped by its claim; of the starts, 3 and 4 begin to run */
        ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE status = 'working' AND handler_started_at IS NOT NULL"), 1);
        if (death == 1) {
            snprintf(sql, sizeof(sql), "SELECT count(*) FILTER (WHERE vmrq_handler_started(%d, id))"
                                       "  FROM requests WHERE id IN (3, 4)", daemon);
            ck_assert_int_eq(count(sql), 2);
        }
        snprintf(sql, sizeof(sql), "UPDATE daemons SET stopped_at = now() WHERE id = %d RETURNING id", daemon);
        ck_assert_int_eq(count(sql), daemon);
        ck_assert_int_eq(count("SELECT vmrq_recover('1 second')"), want);
        snprintf(sql, sizeof(sql), "SELECT string_agg(id || ' ' || status || ' ' || recoveries || ' ' || attempts"
                                   " || ' ' || retry || ': ' || coalesce(error, '-'), E'\\n' ORDER BY id) FROM requests");
        res = t_sql(t_db, sql, 0, NULL);
        if (death == 1)
            ck_assert_str_eq(PQgetvalue(res, 0, 0),
                             "1 requested 1 1 0: vmrqd 1 (h, pid 7) stopped while running it; running it again (1 of 3 deaths)\n"
                             "2 requested 0 0 0: -\n"
                             "3 failed 1 1 0: vmrqd 1 (h, pid 7) stopped while running it; not run again:"
                             " start is not safe to run twice\n"
                             "4 requested 1 1 0: vmrqd 1 (h, pid 7) stopped while running it; retrying");
        else if (death == 3)
            ck_assert_str_eq(PQgetvalue(res, 0, 0),
                             "1 failed 3 3 0: vmrqd died 3 times while running it; the last was vmrqd 3 (h, pid 7)\n"
                             "2 requested 0 0 0: -\n"
                             "3 failed 1 1 0: vmrqd 1 (h, pid 7) stopped while running it; not run again:"
                             " start is not safe to run twice\n"
                             "4 requested 1 1 0: vmrqd 1 (h, pid 7) stopped while running it; retrying");
        PQclear(res);
        if (death == 1)
            PQclear(t_sql(t_db, "UPDATE requests SET at_time = 'infinity' WHERE id = 4", 0, NULL)); /* done with */
    }
    PQclear(t_sql(t_db, "ROLLBACK", 0, NULL));
}
END_TEST

/* A vmrqd killed with thousands of requests claimed in a batch fails none of them: they go
 * back, and the next vmrqd runs every one. */
START_TEST(test_kill_with_thousands_claimed)
{
    long long held = 0;

    PQclear(t_sql(t_db, "INSERT INTO requests (command) SELECT 'ping_backend' FROM generate_series(1, 30000)", 0, NULL));
    t_daemon_start(&da, FAST "log_level = warning\nclaim_batch = 5000\nlanes = 0\n", false);
    /* freeze it when it holds a batch (a claim committed, its outcomes not yet), then kill it */
    for (int tries = 0; tries < 2000 && held < 1000; tries++) {
        if (count("SELECT count(*) FROM requests WHERE status = 'working'") < 1000)
            continue;
        kill(da.pid, SIGSTOP);
        if ((held = count("SELECT count(*) FROM requests WHERE status = 'working'")) < 1000)
            kill(da.pid, SIGCONT);
    }
    ck_assert_msg(held >= 1000, "never caught vmrqd holding 1,000 claims (%lld)", held);
    ck_assert_int_eq(t_daemon_wait(&da, SIGKILL, 5000), 128 + SIGKILL);

    t_daemon_start(&db, FAST "log_level = warning\n", false);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE finished_at IS NOT NULL", 30000, 60000),
                     30000);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE status = 'done'"), 30000);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE recoveries = 1"), held);
}
END_TEST

/* A request that its vmrqd dies running, again and again, is failed after the third death,
 * with its own message; the requests claimed ahead with it each time never started, and run
 * when the way is clear, uncounted. The "death" is a SIGKILL while the handler waits on a lock
 * the test holds. */
START_TEST(test_crash_loop_fails_after_three_deaths)
{
    PGconn *locker = four_claimed_behind_a_lock("");
    struct t_daemon *d = &da, *next = &db;
    PGresult *res;

    for (int death = 1; death <= 3; death++) {
        char sql[256];

        ck_assert_int_eq(t_daemon_wait(d, SIGKILL, 5000), 128 + SIGKILL);
        t_daemon_cleanup(d);
        t_daemon_start(next, FAST "node = test\nworkers = 2\nlimit_secondary = 1\nclaim_ahead = 3\n", false);
        if (death < 3) { /* taken back, and running again on the next daemon */
            snprintf(sql, sizeof(sql), "SELECT count(*) FROM requests WHERE id = 1 AND recoveries = %d"
                                       " AND id_daemon = %d AND handler_started_at IS NOT NULL", death, next->id);
            ck_assert_int_eq(t_wait_value(t_db, sql, 1, 15000), 1);
        }
        d = next;
        next = d == &da ? &db : &da;
    }
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE id = 1 AND status = 'failed'", 1, 15000), 1);
    res = t_sql(t_db, "SELECT error FROM requests WHERE id = 1", 0, NULL);
    ck_assert_msg(strncmp(PQgetvalue(res, 0, 0), "vmrqd died 3 times while running it; the last was vmrqd ", 56) == 0,
                  "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    /* the killed daemons' backends still wait for the lock; they go, then the lock */
    PQclear(t_sql(t_db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'advisory'"
                        "   AND application_name LIKE 'vmrqd worker%'", 0, NULL));
    PQclear(t_sql(locker, "SELECT pg_advisory_unlock_all()", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE id IN (2, 3, 4) AND status = 'done'"
                                        " AND recoveries = 0", 3, 15000), 3);
    PQfinish(locker);
}
END_TEST

/* A claim commits, then its answer travels. If the connection breaks in between, the requests
 * are working under a daemon that never saw them, and that daemon is alive: recovery never
 * takes them back, and each would block its domain for good. The daemon gives back what that
 * claim took once it has reconnected; the request runs, and the lost attempt does not count. */
START_TEST(test_lost_claim_answer_is_given_back)
{
    struct t_relay *relay = t_relay_start();
    char through[512];

    ck_assert(relay != NULL);
    snprintf(through, sizeof(through), "%s user=vmrq_t_daemon", t_relay_conninfo(relay));
    setenv("VMRQ_DAEMON_DB", through, 1); /* the daemons' database; this test's process only */
    t_daemon_start(&da, FAST "lanes = 0\n", false);
    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend')", 0, NULL)); /* past the first claims */
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE status = 'done'", 1, 5000), 1);

    /* A claim already sent when the relay is armed may take the new request uncut (on a loaded
     * machine the server runs it after the insert has committed): then the next one is cut. */
    for (int n = 2; n <= 6 && !t_relay_cut(relay); n++) {
        char done[96];

        t_relay_arm(relay);
        PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend')", 0, NULL));
        snprintf(done, sizeof(done), "SELECT count(*) FROM requests WHERE status = 'done'");
        ck_assert_int_eq(t_wait_value(t_db, done, n, 10000), n);
    }
    ck_assert(t_relay_cut(relay));
    ck_assert(t_daemon_wait_logged(&da, "gave back 1 request claimed as the database connection broke (never run)",
                                   5000));
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE attempts <> 1"), 0);
    ck_assert_int_eq(t_daemon_wait(&da, SIGTERM, 5000), 0);
    t_relay_free(relay);
}
END_TEST

/* Every connection of vmrqd says whose it is in pg_stat_activity: when a lock waits or a
 * statement runs long, the operator sees which part of vmrqd holds it. (The event sink's,
 * "vmrqd events", opens at the first domain event; none happens here.) Each is the login role
 * the suites give vmrqd, a member of vmrq_daemon only: what vmrqd does here, it does with that
 * role's rights. */
START_TEST(test_connections_are_named)
{
    const char *names = "SELECT count(DISTINCT application_name) FROM pg_stat_activity"
                        " WHERE application_name IN ('vmrqd', 'vmrqd lane 0', 'vmrqd worker 0')"
                        "   AND usename = 'vmrq_t_daemon'";

    t_daemon_start(&da, FAST "lanes = 1\nworkers = 1\nclaim_batch = 2\n", false);
    PQclear(t_sql(t_db, "INSERT INTO requests (command) SELECT 'ping_backend' FROM generate_series(1, 50)", 0, NULL));
    PQclear(t_sql(t_db, "SELECT vmrq_request('refresh_vms', '{\"uid\": 1}')", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE status = 'done'", 51, 5000), 51);
    ck_assert_int_eq(t_wait_value(t_db, names, 3, 5000), 3);
    ck_assert_int_eq(t_daemon_wait(&da, SIGTERM, 5000), 0);
}
END_TEST

START_TEST(test_survives_database_restart)
{
    const char *restart = getenv("VMRQ_PG_RESTART");

    ck_assert_msg(restart != NULL, "VMRQ_PG_RESTART is not set: run through t/with-pg");
    t_daemon_start(&da, FAST, false);
    PQclear(t_sql(t_db, "INSERT INTO requests (command) SELECT 'ping_backend' FROM generate_series(1, 20)", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE status = 'done'", 20, 5000), 20);

    ck_assert_int_eq(system(restart), 0);
    PQreset(t_db);
    ck_assert_int_eq(PQstatus(t_db), CONNECTION_OK);
    PQclear(t_sql(t_db, "INSERT INTO requests (command) SELECT 'ping_backend' FROM generate_series(1, 20)", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE status = 'done'", 40, 20000), 40);
    ck_assert_int_eq(t_daemon_wait(&da, 0, 0), -1); /* still running */
    /* the lanes, on connections of their own, may have done the work before the main loop,
     * on a loaded machine, reads its connection's end and says so */
    ck_assert(t_daemon_wait_logged(&da, "lost the database connection", 10000));
    ck_assert(t_daemon_wait_logged(&da, "database connection is back", 10000));
}
END_TEST

START_TEST(test_sigterm_drains)
{
    t_daemon_start(&da, FAST "log_level = warning\n", false);
    PQclear(t_sql(t_db, "INSERT INTO requests (command) SELECT 'ping_backend' FROM generate_series(1, 2000)", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT sign(count(*)) FROM requests WHERE status = 'done'", 1, 5000), 1);
    ck_assert_int_eq(t_daemon_wait(&da, SIGTERM, 10000), 0);
    /* what it had claimed, it finished and recorded; nothing is left working */
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE status = 'working'"), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM daemons WHERE stopped_at IS NOT NULL"), 1);
}
END_TEST

/* CPU time (user + system, in clock ticks) that process `pid` has used. */
static long long
cpu_ticks(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long long utime = 0, stime = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    ck_assert((f = fopen(path, "r")) != NULL);
    ck_assert(fgets(buf, sizeof(buf), f) != NULL);
    fclose(f);
    ck_assert((p = strrchr(buf, ')')) != NULL); /* fields 14 and 15, after the command name */
    ck_assert_int_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime), 2);
    return (long long)(utime + stime);
}

/* A cleanup that da runs and cannot finish: `locker` holds the lock of the row it would delete
 * (request 1, finished long ago). Returns once da's worker waits for that lock: running, not
 * merely claimed (a claimed one would be given back at the stop). */
static void
start_held_cleanup(PGconn *locker)
{
    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend')", 0, NULL));
    PQclear(t_sql(t_db, "UPDATE requests SET status = 'done', finished_at = now() - interval '30 days'", 0, NULL));
    PQclear(t_sql(locker, "BEGIN", 0, NULL));
    PQclear(t_sql(locker, "SELECT * FROM requests WHERE id = 1 FOR UPDATE", 0, NULL));
    t_daemon_start(&da, FAST, false);
    PQclear(t_sql(t_db, "SELECT vmrq_request('cleanup')", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                        "   AND application_name LIKE 'vmrqd worker %'", 1, 10000), 1);
}

/* While it drains, vmrqd claims nothing; what would have asked for a claim (a new request, an
 * outcome written) must not turn the wait for a slow handler into a busy loop. */
START_TEST(test_drain_waits_without_spinning)
{
    PGconn *locker = t_connect();
    long long before;

    start_held_cleanup(locker);
    kill(da.pid, SIGTERM);
    ck_assert(t_daemon_wait_logged(&da, "stopping: no new requests", 10000));
    /* one second of drain measured, the notification of a new request and the claims it would
     * ask for inside it */
    before = cpu_ticks(da.pid);
    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend')", 0, NULL));
    usleep(1000000);
    ck_assert_msg(cpu_ticks(da.pid) - before < sysconf(_SC_CLK_TCK) / 5, "vmrqd used %lld ticks of CPU in 1 s of drain",
                  cpu_ticks(da.pid) - before);
    PQclear(t_sql(locker, "ROLLBACK", 0, NULL));
    ck_assert_int_eq(t_daemon_wait(&da, 0, 10000), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE id = 2 AND status = 'done'"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE id = 3 AND status = 'requested'"), 1);
    PQfinish(locker);
}
END_TEST

/* A draining vmrqd still beats: a handler that outlasts the lease is not taken back by another
 * daemon's recovery and run twice. */
START_TEST(test_drain_keeps_beating)
{
    PGconn *locker = t_connect();
    char sql[256];

    start_held_cleanup(locker);
    t_daemon_start(&db, FAST, false); /* recovers at each idle beat */
    kill(da.pid, SIGTERM);
    ck_assert(t_daemon_wait_logged(&da, "stopping: no new requests", 10000));
    PQclear(t_sql(t_db, "CREATE TEMP TABLE drain_began AS SELECT now() AS at", 0, NULL));
    /* two leases of drain, beaten through */
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM daemons, drain_began"
                               " WHERE pid = %d AND heartbeat_at > at + interval '2 s'", (int)da.pid);
    ck_assert_int_eq(t_wait_value(t_db, sql, 1, 10000), 1);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM requests r JOIN daemons d ON d.id = r.id_daemon"
                               " WHERE r.id = 2 AND r.status = 'working' AND d.pid = %d", (int)da.pid);
    ck_assert_int_eq(count(sql), 1);
    PQclear(t_sql(locker, "ROLLBACK", 0, NULL));
    ck_assert_int_eq(t_daemon_wait(&da, 0, 10000), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE id = 2 AND status = 'done' AND attempts = 1"), 1);
    ck_assert(!t_daemon_logged(&db, "took back"));
    PQfinish(locker);
}
END_TEST

/* An operator's psql left in a transaction after enqueueing what vmrqd enqueues itself: a
 * refresh_vms of its node, no-duplicate, so vmrqd's own insert would wait to learn whether that
 * one commits. vmrqd does not wait behind it: it says so and tries again later, beats past two
 * leases (no other vmrqd's recovery takes its requests), and runs the requests that come; once
 * the other commits, that refresh runs like any other. */
START_TEST(test_uncommitted_twin_stops_nothing)
{
    PGconn *holder = t_connect();
    char sql[256];

    t_daemon_start(&da, FAST "node = twin\nrefresh_interval = 1s\n", false);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE command = 'refresh_vms'"
                                        " AND status = 'done'", 1, 5000), 1);
    PQclear(t_sql(holder, "BEGIN", 0, NULL));
    PQclear(t_sql(holder, "SELECT vmrq_request('refresh_vms', '{\"node\": \"twin\"}')", 0, NULL));
    PQclear(t_sql(t_db, "CREATE TEMP TABLE held_since AS SELECT now() AS at", 0, NULL));
    ck_assert(t_daemon_wait_logged(&da, "cannot enqueue refresh_vms: another session has enqueued the same"
                                        " request and not committed yet; tried again in ", 5000));
    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend')", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE command = 'ping_backend'"
                                        " AND status = 'done'", 1, 5000), 1);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM daemons, held_since"
                               " WHERE pid = %d AND heartbeat_at > at + interval '2 s'", (int)da.pid);
    ck_assert_int_eq(t_wait_value(t_db, sql, 1, 10000), 1);
    PQclear(t_sql(holder, "COMMIT", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE command = 'refresh_vms'"
                                        " AND status = 'done'", 2, 10000), 2);
    PQfinish(holder);
}
END_TEST

/* An idle vmrqd beats every two thirds of its lease: fewer round trips than every half lease
 * (make bench, fleet: idle database CPU), yet a third of the lease left before its row looks
 * dead. Four heartbeats on the database's clock; none early (each timer counts from the last
 * beat's answer), none a lease apart. */
START_TEST(test_idle_beats_every_two_thirds_of_the_lease)
{
    const char *q = "SELECT (extract(epoch FROM heartbeat_at) * 1000)::bigint FROM daemons WHERE stopped_at IS NULL";
    long long beat[4];
    int n = 0;

    t_daemon_start(&da, "lease = 4500ms\npoll_interval = 1h\nrefresh_interval = 0\ncleanup_interval = 0\n"
                        "pool_interval = 0\nlibvirt_uri = test:///default\n", false);
    for (int waited = 0; n < 4 && waited < 20000; waited += 20) {
        long long at = count(q);

        if (n == 0 || at != beat[n - 1])
            beat[n++] = at;
        else
            usleep(20000);
    }
    ck_assert_msg(n == 4, "only %d heartbeats in 20 s", n);
    for (int i = 1; i < 4; i++)
        ck_assert_msg(beat[i] - beat[i - 1] >= 2700 && beat[i] - beat[i - 1] < 4500,
                      "heartbeat %d came %lld ms after the one before, not about 3000 (lease 4500 ms)", i,
                      beat[i] - beat[i - 1]);
}
END_TEST

START_TEST(test_sighup_keeps_running_on_a_broken_file)
{
    FILE *f;

    t_daemon_start(&da, FAST, false);
    ck_assert((f = fopen(da.conf, "w")) != NULL);
    fputs("workers = lots\n", f);
    fclose(f);
    kill(da.pid, SIGHUP);
    ck_assert(t_daemon_wait_logged(&da, "reload failed, keeping the running configuration", 10000));
    ck_assert(t_daemon_logged(&da, "workers must be a whole number from 1 to 256, not 'lots'"));
    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend')", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE status = 'done'", 1, 5000), 1);

    ck_assert((f = fopen(da.conf, "w")) != NULL);
    fputs("pidfile =\ncleanup_interval = 0\nrefresh_interval = 0\nlease = 1s\nlog_level = debug\n", f);
    fclose(f);
    kill(da.pid, SIGHUP);
    ck_assert(t_daemon_wait_logged(&da, "configuration reloaded", 10000));
    ck_assert_int_eq(t_daemon_wait(&da, SIGTERM, 5000), 0);
}
END_TEST

/* No leak grows with the number of requests, no invalid access: valgrind exits 99 otherwise.
 * A sanitized build (make check SANITIZE=1) cannot run under valgrind; there AddressSanitizer
 * and LeakSanitizer watch the same run and fail the exit status instead. */
START_TEST(test_valgrind_clean)
{
    t_daemon_start(&da, FAST "log_level = warning\nworkers = 4\n", getenv("VMRQ_SANITIZED") == NULL);
    PQclear(t_sql(t_db, "INSERT INTO requests (command) SELECT 'ping_backend' FROM generate_series(1, 1000)", 0, NULL));
    PQclear(t_sql(t_db, "SELECT vmrq_request('pause', '{\"uid\": 1, \"id_domain\": 1}')", 0, NULL));
    PQclear(t_sql(t_db, "SELECT vmrq_request('cleanup', '{\"older_than\": 3600}')", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE finished_at IS NOT NULL", 1002,
                                  60000), 1002);
    ck_assert_msg(t_daemon_wait(&da, SIGTERM, 30000) == 0, "valgrind found errors; see %s", da.log);
}
END_TEST

/* Old finished rows and old domain events go, in batches; recent and pending ones stay. */
START_TEST(test_cleanup_in_batches)
{
    PQclear(t_sql(t_db, "INSERT INTO requests (command) SELECT 'ping_backend' FROM generate_series(1, 25010)", 0, NULL));
    PQclear(t_sql(t_db, "UPDATE requests SET status = 'done', finished_at = now() - interval '8 days' WHERE id <= 25000",
                  0, NULL));
    PQclear(t_sql(t_db, "UPDATE requests SET status = 'failed', finished_at = now() WHERE id > 25000 AND id <= 25005",
                  0, NULL));
    PQclear(t_sql(t_db, "INSERT INTO domain_events (domain, event, detail, at)"
                        " VALUES ('d', 'started', 'booted', now() - interval '9 days'),"
                        "        ('d', 'stopped', 'shutdown', now() - interval '8 days'),"
                        "        ('d', 'started', 'booted', now())", 0, NULL));
    t_daemon_start(&da, FAST "log_level = warning\nretention = 7d\n", false);
    PQclear(t_sql(t_db, "SELECT vmrq_request('cleanup')", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE command = 'cleanup'"
                                        " AND status = 'done'", 1, 20000), 1);
    ck_assert_int_eq(count("SELECT (output->>'deleted')::int FROM requests WHERE command = 'cleanup'"), 25000);
    /* 5 recent failures, and the pings the daemon ran meanwhile, and the cleanup itself */
    ck_assert_int_eq(count("SELECT count(*) FROM requests"), 11);
    /* old domain events go too; the recent one stays */
    ck_assert_int_eq(count("SELECT (output->>'events_deleted')::int FROM requests WHERE command = 'cleanup'"), 2);
    ck_assert_int_eq(count("SELECT count(*) FROM domain_events"), 1);
}
END_TEST

/* A handler that overruns handler_deadline fails its request; its late result is dropped. */
START_TEST(test_handler_deadline)
{
    PGconn *locker = t_connect();

    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend')", 0, NULL));
    PQclear(t_sql(t_db, "UPDATE requests SET status = 'done', finished_at = now() - interval '30 days'", 0, NULL));
    /* the cleanup's DELETE will wait for this row lock */
    PQclear(t_sql(locker, "BEGIN", 0, NULL));
    PQclear(t_sql(locker, "SELECT * FROM requests WHERE id = 1 FOR UPDATE", 0, NULL));
    t_daemon_start(&da, FAST "handler_deadline = 500ms\n", false);
    PQclear(t_sql(t_db, "SELECT vmrq_request('cleanup')", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE id = 2 AND status = 'failed'", 1, 5000), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE id = 2"
                           " AND error = 'the handler did not finish within 500 ms (handler_deadline)'"), 1);
    PQclear(t_sql(locker, "ROLLBACK", 0, NULL));
    ck_assert(t_daemon_wait_logged(&da, "request 2 (cleanup) finished after its deadline; its outcome is dropped",
                                   10000));
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE id = 2 AND status = 'failed'"), 1);
    PQfinish(locker);
}
END_TEST

/* A vmrqd started on a database one migration behind its own, or upgraded by a newer vmrq, stops
 * at once with one line naming what to run, and says nothing else. */
START_TEST(test_refuses_another_schema)
{
    static const struct { const char *how, *says; } cases[] = {
        { "behind", "run 'vmrq db upgrade'" },
        { "ahead", "upgraded by a newer vmrq" },
    };
    size_t n = vmrq_db_migration_count();
    int behind = n > 1 ? atoi(vmrq_db_migration_name(n - 2)) : 0;
    char conninfo[512];

    snprintf(conninfo, sizeof(conninfo), "%s options='-csearch_path=vmrq_other_s'", getenv("VMRQ_DAEMON_DB"));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct timespec t0, t1;
        long long ms;
        char *log;
        int status;

        PQclear(t_sql(t_db, "DROP SCHEMA IF EXISTS vmrq_other_s CASCADE", 0, NULL));
        PQclear(t_sql(t_db, "CREATE SCHEMA vmrq_other_s", 0, NULL));
        PQclear(t_sql(t_db, "SET search_path = vmrq_other_s", 0, NULL));
        if (i == 0) {
            ck_assert_int_eq(vmrq_db_migrate_to(t_db, behind, false), (int)n - 1);
        } else {
            ck_assert_int_ge(vmrq_db_upgrade(t_db), 0);
            PQclear(t_sql(t_db, "INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_next')", 0, NULL));
        }
        PQclear(t_sql(t_db, "RESET search_path", 0, NULL));
        clock_gettime(CLOCK_MONOTONIC, &t0);
        t_daemon_spawn(&da, FAST, false, conninfo);
        status = t_daemon_wait(&da, 0, 10000);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        log = t_daemon_log(&da);
        ck_assert_msg(status == 1, "%s: vmrqd exited %d, log: %s", cases[i].how, status, log);
        ck_assert_msg(ms < 1000 * (getenv("VMRQ_SANITIZED") ? 3 : 1), "%s: vmrqd took %lld ms to stop",
                      cases[i].how, ms);
        ck_assert_msg(t_lines(log) == 1 && strstr(log, cases[i].says), "%s: the log says: %s", cases[i].how, log);
        free(log);
        t_daemon_cleanup(&da);
        memset(&da, 0, sizeof(da));
    }
    PQclear(t_sql(t_db, "DROP SCHEMA vmrq_other_s CASCADE", 0, NULL));
}
END_TEST

START_TEST(test_command_line)
{
    char cmd[512];
    const char *vmrqd = getenv("VMRQD");

    snprintf(cmd, sizeof(cmd), "%s -n -f /nonexistent/vmrqd.conf 2>/dev/null", vmrqd);
    ck_assert_int_eq(WEXITSTATUS(system(cmd)), 1);
    snprintf(cmd, sizeof(cmd), "%s -x 2>/dev/null", vmrqd);
    ck_assert_int_eq(WEXITSTATUS(system(cmd)), 2);
}
END_TEST

Suite *
daemon_suite(void)
{
    Suite *s = suite_create("daemon");
    TCase *tc = tcase_create("daemon");

    tcase_set_tags(tc, "db daemon");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_wakes_on_notify);
    tcase_add_test(tc, test_lane_tells_loop_of_waiting);
    tcase_add_test(tc, test_lane_gives_back_a_lost_claim);
    tcase_add_test(tc, test_order_priority_then_age);
    tcase_add_test(tc, test_classes_beyond_free_workers);
    tcase_add_test(tc, test_at_time_without_polling);
    tcase_add_test(tc, test_dependencies);
    tcase_add_test(tc, test_retry_with_backoff);
    tcase_add_test(tc, test_retry_gives_way_to_a_pending_twin);
    tcase_add_test(tc, test_unreached_goes_back);
    tcase_add_test(tc, test_domain_serialization_two_daemons);
    tcase_add_test(tc, test_exactly_once_two_daemons);
    tcase_add_test(tc, test_recovery_after_kill);
    tcase_add_test(tc, test_recovery_rules);
    tcase_add_test(tc, test_kill_with_thousands_claimed);
    tcase_add_test(tc, test_crash_loop_fails_after_three_deaths);
    tcase_add_test(tc, test_survives_database_restart);
    tcase_add_test(tc, test_lost_claim_answer_is_given_back);
    tcase_add_test(tc, test_connections_are_named);
    tcase_add_test(tc, test_sigterm_drains);
    tcase_add_test(tc, test_drain_waits_without_spinning);
    tcase_add_test(tc, test_drain_keeps_beating);
    tcase_add_test(tc, test_idle_beats_every_two_thirds_of_the_lease);
    tcase_add_test(tc, test_uncommitted_twin_stops_nothing);
    tcase_add_test(tc, test_sighup_keeps_running_on_a_broken_file);
    tcase_add_test(tc, test_valgrind_clean);
    tcase_add_test(tc, test_cleanup_in_batches);
    tcase_add_test(tc, test_handler_deadline);
    tcase_add_test(tc, test_claim_ahead_keeps_limits_and_deadlines);
    tcase_add_test(tc, test_stop_gives_back_what_did_not_start);
    tcase_add_test(tc, test_command_line);
    tcase_add_test(tc, test_refuses_another_schema);
    suite_add_tcase(s, tc);
    return s;
}
