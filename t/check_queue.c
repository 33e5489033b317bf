/*
 * check_queue.c - libvmrq against the real database: enqueue (options, idempotency by uuid, the
 * no-duplicate policy), fetch, cancel and wait.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tutil.h"

/* Enqueues `command` with `json` arguments; returns the request (caller frees). */
static vmrq_request *
enqueue(const char *command, const char *json)
{
    vmrq_request *req = vmrq_request_new(command);

    ck_assert_ptr_nonnull(req);
    ck_assert_int_eq(vmrq_request_set_json(req, json), 0);
    ck_assert_msg(vmrq_request_enqueue(t_db, req) == 0, "%s", vmrq_error_message());
    return req;
}

static long long
count_requests(void)
{
    return t_sql_int(t_db, "SELECT count(*) FROM requests", 0, NULL);
}

START_TEST(test_enqueue_and_fetch)
{
    vmrq_request *req = enqueue("shutdown", "{\"uid\": 1, \"id_domain\": 2, \"timeout\": 60}"), *back;

    ck_assert_int_eq(vmrq_request_id(req), 1);
    ck_assert(vmrq_request_is_new(req));
    ck_assert_int_eq(vmrq_request_status(req), VMRQ_STATUS_REQUESTED);
    back = vmrq_request_fetch(t_db, 1);
    ck_assert_ptr_nonnull(back);
    ck_assert_str_eq(vmrq_request_command(back), "shutdown");
    ck_assert_str_eq(vmrq_request_uuid(back), vmrq_request_uuid(req));
    ck_assert_str_eq(vmrq_request_args_json(back), "{\"uid\":1,\"timeout\":60,\"id_domain\":2}");
    ck_assert_ptr_null(vmrq_request_error(back));
    ck_assert_ptr_null(vmrq_request_output_json(back));
    ck_assert_int_eq(t_sql_int(t_db, "SELECT uid * 1000 + id_domain FROM requests WHERE id = 1", 0, NULL), 1002);
    vmrq_request_free(back);
    vmrq_request_free(req);

    ck_assert_ptr_null(vmrq_request_fetch(t_db, 99));
    ck_assert_int_eq(vmrq_error_code(), VMRQ_ERR_NOT_FOUND);
    ck_assert_str_eq(vmrq_error_message(), "no request 99");
}
END_TEST

/* at, after_request(_ok), retry, priority leave args for their columns; _force disappears. */
START_TEST(test_options_move_to_columns)
{
    vmrq_request *first = enqueue("ping_backend", "{}");
    vmrq_request *req = enqueue("start", "{\"uid\": 1, \"id_domain\": 3, \"at\": 4102444800,"
                                         " \"after_request\": 1, \"retry\": 2, \"priority\": 5,"
                                         " \"_force\": true}");
    PGresult *res = t_sql(t_db, "SELECT args::text, extract(epoch FROM at_time)::bigint, after_request,"
                                "       retry, priority, status FROM requests WHERE id = 2", 0, NULL);

    ck_assert_str_eq(PQgetvalue(res, 0, 0), "{\"uid\": 1, \"id_domain\": 3}");
    ck_assert_str_eq(PQgetvalue(res, 0, 1), "4102444800");
    ck_assert_str_eq(PQgetvalue(res, 0, 2), "1");
    ck_assert_str_eq(PQgetvalue(res, 0, 3), "2");
    ck_assert_str_eq(PQgetvalue(res, 0, 4), "5");
    ck_assert_str_eq(PQgetvalue(res, 0, 5), "waiting"); /* it depends on request 1 */
    ck_assert_int_eq(vmrq_request_status(req), VMRQ_STATUS_WAITING);
    PQclear(res);
    vmrq_request_free(req);
    vmrq_request_free(first);

    req = enqueue("start", "{\"uid\": 1, \"id_domain\": 3, \"at\": \"2100-01-01 00:00:00+00\"}");
    ck_assert_int_eq(t_sql_int(t_db, "SELECT extract(epoch FROM at_time)::bigint FROM requests WHERE id = 3",
                               0, NULL), 4102444800LL);
    vmrq_request_free(req);
}
END_TEST

START_TEST(test_domain_name_resolves_to_id)
{
    vmrq_request *req;

    PQclear(t_sql(t_db, "INSERT INTO users (name) VALUES ('alice')", 0, NULL));
    PQclear(t_sql(t_db, "INSERT INTO domains (name, id_owner) VALUES ('desk1', 1), ('desk2', 1)", 0, NULL));
    req = enqueue("shutdown", "{\"uid\": 1, \"name\": \"desk2\"}");
    ck_assert_int_eq(t_sql_int(t_db, "SELECT id_domain FROM requests", 0, NULL), 2);
    vmrq_request_free(req);
}
END_TEST

/* A client retrying after a lost answer sends the same uuid and gets the same request. */
START_TEST(test_uuid_is_an_idempotency_key)
{
    const char *u = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    vmrq_request *a = vmrq_request_new("start"), *b = vmrq_request_new("start"), *c;

    vmrq_request_set_json(a, "{\"uid\": 1, \"id_domain\": 2}");
    vmrq_request_set_json(b, "{\"uid\": 1, \"id_domain\": 2}");
    ck_assert_int_eq(vmrq_request_set_uuid(a, u), 0);
    ck_assert_int_eq(vmrq_request_set_uuid(b, u), 0);
    ck_assert_int_eq(vmrq_request_enqueue(t_db, a), 0);
    ck_assert_int_eq(vmrq_request_enqueue(t_db, b), 0);
    ck_assert_int_eq(vmrq_request_id(a), vmrq_request_id(b));
    ck_assert(vmrq_request_is_new(a));
    ck_assert(!vmrq_request_is_new(b));
    ck_assert_int_eq(count_requests(), 1);

    c = vmrq_request_new("pause"); /* the same key for another command is a client bug */
    vmrq_request_set_json(c, "{\"uid\": 1, \"id_domain\": 2}");
    vmrq_request_set_uuid(c, u);
    ck_assert_int_eq(vmrq_request_enqueue(t_db, c), -1);
    ck_assert_int_eq(vmrq_error_code(), VMRQ_ERR_INVALID);
    ck_assert_str_eq(vmrq_error_message(),
                     "pause: uuid 7c9e6679-7425-40de-944b-e07fc1f90ae7 is already used by request 1 (start)");
    ck_assert_int_eq(count_requests(), 1);
    vmrq_request_free(a);
    vmrq_request_free(b);
    vmrq_request_free(c);
}
END_TEST

/* Uuids, made by libvmrq or by the database, begin with the time (version 7): the index on them
 * then grows at its end, however much history the table keeps (vmrq_uuid_v7(), sql/functions/enqueue.sql). */
START_TEST(test_uuids_follow_time)
{
    vmrq_request *a = vmrq_request_new("ping_backend"), *b;
    struct timespec ms = { 0, 2000000 };
    PGresult *res;
    char first[40];

    nanosleep(&ms, NULL);
    b = vmrq_request_new("ping_backend");
    ck_assert_int_eq(vmrq_request_uuid(a)[14], '7');
    ck_assert_msg(strchr("89ab", vmrq_request_uuid(a)[19]) != NULL, "variant of %s", vmrq_request_uuid(a));
    ck_assert_msg(strcmp(vmrq_request_uuid(a), vmrq_request_uuid(b)) < 0, "%s then %s", vmrq_request_uuid(a),
                  vmrq_request_uuid(b));
    /* the first 12 digits are the Unix milliseconds */
    snprintf(first, sizeof(first), "%.8s%.4s", vmrq_request_uuid(a), vmrq_request_uuid(a) + 9);
    ck_assert_int_le(llabs(strtoll(first, NULL, 16) - (long long)time(NULL) * 1000), 5000);

    PQclear(t_sql(t_db, "INSERT INTO requests (command) VALUES ('ping_backend')", 0, NULL));
    nanosleep(&ms, NULL);
    PQclear(t_sql(t_db, "INSERT INTO requests (command) VALUES ('ping_backend')", 0, NULL));
    res = t_sql(t_db, "SELECT string_agg(substr(uuid::text, 15, 1) || substr(uuid::text, 20, 1), ' ' ORDER BY id),"
                      "       bool_and(uuid > coalesce(prev, uuid) OR prev IS NULL),"
                      "       max(abs(('x' || lpad(replace(left(uuid::text, 13), '-', ''), 16, '0'))::bit(64)::bigint"
                      "               - (extract(epoch FROM now()) * 1000)::bigint))"
                      "  FROM (SELECT id, uuid, lag(uuid) OVER (ORDER BY id) AS prev FROM requests) r", 0, NULL);
    ck_assert_int_eq(PQgetvalue(res, 0, 0)[0], '7');
    ck_assert_int_eq(PQgetvalue(res, 0, 0)[3], '7');
    ck_assert_str_eq(PQgetvalue(res, 0, 1), "t");
    ck_assert_int_le(atoll(PQgetvalue(res, 0, 2)), 5000);
    PQclear(res);
    vmrq_request_free(a);
    vmrq_request_free(b);
}
END_TEST

START_TEST(test_no_duplicate_while_pending)
{
    vmrq_request *a = enqueue("refresh_vms", "{}"), *b = enqueue("refresh_vms", "{}"), *c, *d;

    ck_assert_int_eq(vmrq_request_id(a), vmrq_request_id(b));
    ck_assert(!vmrq_request_is_new(b));
    c = enqueue("refresh_vms", "{\"_force\": true}");
    ck_assert_int_ne(vmrq_request_id(c), vmrq_request_id(a));
    /* once it is no longer pending, a new one is enqueued */
    ck_assert_int_eq(vmrq_request_cancel(t_db, vmrq_request_id(a)), 0);
    d = enqueue("refresh_vms", "{}");
    ck_assert_int_ne(vmrq_request_id(d), vmrq_request_id(a));
    ck_assert(vmrq_request_is_new(d));
    vmrq_request_free(a);
    vmrq_request_free(b);
    vmrq_request_free(c);
    vmrq_request_free(d);
}
END_TEST

/* The duplicate test ignores `at` and `timeout` (a second escalation is the same escalation)
 * but not the other arguments; toggles are never coalesced. */
START_TEST(test_duplicate_rules)
{
    vmrq_request *a = enqueue("force_shutdown", "{\"uid\": 1, \"id_domain\": 2, \"at\": 4102444800}");
    vmrq_request *b = enqueue("force_shutdown", "{\"uid\": 1, \"id_domain\": 2, \"at\": 4102444900}");
    vmrq_request *c = enqueue("force_shutdown", "{\"uid\": 1, \"id_domain\": 3}");
    vmrq_request *d = enqueue("pause", "{\"uid\": 1, \"id_domain\": 2}");
    vmrq_request *e = enqueue("pause", "{\"uid\": 1, \"id_domain\": 2}");

    ck_assert_int_eq(vmrq_request_id(a), vmrq_request_id(b));
    ck_assert_int_ne(vmrq_request_id(a), vmrq_request_id(c));
    ck_assert_int_ne(vmrq_request_id(d), vmrq_request_id(e));
    ck_assert_int_eq(count_requests(), 4);
    vmrq_request_free(a);
    vmrq_request_free(b);
    vmrq_request_free(c);
    vmrq_request_free(d);
    vmrq_request_free(e);
}
END_TEST

START_TEST(test_invalid_changes_nothing)
{
    vmrq_request *req = vmrq_request_new("shutdown");

    vmrq_request_set_json(req, "{\"uid\": 1, \"id_domain\": 2, \"bogus\": 3}");
    ck_assert_int_eq(vmrq_request_enqueue(t_db, req), -1);
    ck_assert_int_eq(vmrq_error_code(), VMRQ_ERR_INVALID);
    ck_assert_str_eq(vmrq_error_message(), "shutdown: unknown argument 'bogus'");
    vmrq_request_free(req);

    /* what only the database can tell: the parent does not exist */
    req = vmrq_request_new("start");
    vmrq_request_set_json(req, "{\"uid\": 1, \"id_domain\": 2, \"after_request_ok\": 42}");
    ck_assert_int_eq(vmrq_request_enqueue(t_db, req), -1);
    ck_assert_int_eq(vmrq_error_code(), VMRQ_ERR_INVALID);
    ck_assert_str_eq(vmrq_error_message(), "start: argument 'after_request_ok' names no request 42");
    vmrq_request_free(req);
    ck_assert_int_eq(count_requests(), 0);
}
END_TEST

START_TEST(test_cancel)
{
    vmrq_request *a = enqueue("start", "{\"uid\": 1, \"id_domain\": 2}");
    vmrq_request *b = enqueue("start", "{\"uid\": 1, \"id_domain\": 3}");

    ck_assert_int_eq(vmrq_request_cancel(t_db, 1), 0);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests WHERE id = 1 AND status = 'cancelled'"
                                     " AND finished_at IS NOT NULL", 0, NULL), 1);
    ck_assert_int_eq(vmrq_request_cancel(t_db, 1), -1);
    ck_assert_int_eq(vmrq_error_code(), VMRQ_ERR_STATE);
    ck_assert_str_eq(vmrq_error_message(),
                     "request 1 (start) is cancelled: only a requested or waiting request can be cancelled");
    PQclear(t_sql(t_db, "UPDATE requests SET status = 'working' WHERE id = 2", 0, NULL));
    ck_assert_int_eq(vmrq_request_cancel(t_db, 2), -1);
    ck_assert_int_eq(vmrq_error_code(), VMRQ_ERR_STATE);
    ck_assert_int_eq(vmrq_request_cancel(t_db, 77), -1);
    ck_assert_int_eq(vmrq_error_code(), VMRQ_ERR_NOT_FOUND);
    ck_assert_str_eq(vmrq_error_message(), "no request 77");
    vmrq_request_free(a);
    vmrq_request_free(b);
}
END_TEST

/* Plays the backend: finishes request 1 with `status` after a short delay, on its own connection. */
static void *
finish_later(void *status)
{
    PGconn *c = t_connect();
    const char *params[1] = { status };
    struct timespec ts = { 0, 150 * 1000000 };

    nanosleep(&ts, NULL);
    PQclear(t_sql(c, "UPDATE requests SET status = $1::request_status, error = 'boom' WHERE id = 1",
                  1, params));
    PQfinish(c);
    return NULL;
}

static long long
ms_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

START_TEST(test_wait_wakes_on_completion)
{
    vmrq_request *req = enqueue("ping_backend", "{}");
    vmrq_status st = VMRQ_STATUS_LAST;
    struct timespec t0;
    pthread_t th;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(pthread_create(&th, NULL, finish_later, (void *)"failed"), 0);
    ck_assert_msg(vmrq_request_wait(t_db, 1, 4000, &st) == 0, "%s", vmrq_error_message());
    pthread_join(th, NULL);
    ck_assert_int_eq(st, VMRQ_STATUS_FAILED);
    /* woken by the notification, not by the 5-second re-check */
    ck_assert_int_lt(ms_since(&t0), 2000);
    /* already final: returns at once */
    ck_assert_int_eq(vmrq_request_wait(t_db, 1, 0, &st), 0);
    ck_assert_int_eq(st, VMRQ_STATUS_FAILED);
    vmrq_request_free(req);
}
END_TEST

/* A no-duplicate request whose twin another session has inserted and not committed waits to
 * learn whether that one commits; with a lock_timeout, the wait that runs out is
 * VMRQ_ERR_TIMEOUT (vmrqd's own enqueues rely on it), and nothing is enqueued. */
START_TEST(test_lock_timeout_is_a_timeout)
{
    PGconn *holder = t_connect();
    vmrq_request *req = vmrq_request_new("cleanup");

    PQclear(t_sql(holder, "BEGIN", 0, NULL));
    PQclear(t_sql(holder, "SELECT vmrq_request('cleanup')", 0, NULL));
    PQclear(t_sql(t_db, "SET lock_timeout = '50ms'", 0, NULL));
    ck_assert_int_eq(vmrq_request_enqueue(t_db, req), -1);
    ck_assert_int_eq(vmrq_error_code(), VMRQ_ERR_TIMEOUT);
    ck_assert_str_eq(vmrq_error_message(), "cleanup: canceling statement due to lock timeout");
    PQclear(t_sql(t_db, "RESET lock_timeout", 0, NULL));
    PQclear(t_sql(holder, "ROLLBACK", 0, NULL));
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests", 0, NULL), 0);
    vmrq_request_free(req);
    PQfinish(holder);
}
END_TEST

START_TEST(test_wait_times_out)
{
    vmrq_request *req = enqueue("ping_backend", "{}");
    vmrq_status st;

    ck_assert_int_eq(vmrq_request_wait(t_db, 1, 200, &st), -1);
    ck_assert_int_eq(vmrq_error_code(), VMRQ_ERR_TIMEOUT);
    ck_assert_str_eq(vmrq_error_message(), "request 1 is still requested after 200 ms");
    ck_assert_int_eq(vmrq_request_wait(t_db, 5, 200, &st), -1);
    ck_assert_int_eq(vmrq_error_code(), VMRQ_ERR_NOT_FOUND);
    /* the connection is left as found: no longer listening */
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM pg_listening_channels()", 0, NULL), 0);
    vmrq_request_free(req);
}
END_TEST

/* A batch is one statement: validated row by row first, all or nothing, with the same duplicate
 * and idempotency rules as single requests, inside the batch too. */
/* Every way into the queue gives a version-7 uuid: the library one at a time and in a batch,
 * the CLI (one and --batch), vmrq_request(), vmrq_enqueue() and a plain INSERT. */
START_TEST(test_every_path_gives_uuid_v7)
{
    vmrq_request *one = vmrq_request_new("ping_backend"), *batch[2] = { vmrq_request_new("ping_backend"),
                                                                       vmrq_request_new("ping_backend") };
    char path[] = "/tmp/vmrq-batch.XXXXXX";
    struct t_cli r;
    FILE *f;
    int fd;

    ck_assert_int_eq(vmrq_request_enqueue(t_db, one), 0);
    ck_assert_int_eq(vmrq_request_enqueue_batch(t_db, batch, 2), 0);
    r = t_cli_run("request", "ping_backend", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    t_cli_free(&r);
    ck_assert((fd = mkstemp(path)) >= 0);
    ck_assert((f = fdopen(fd, "w")) != NULL);
    fputs("{\"command\": \"ping_backend\"}\n", f);
    fclose(f);
    r = t_cli_run("request", "--batch", path, NULL);
    unlink(path);
    ck_assert_msg(r.status == 0, "%s", r.err);
    t_cli_free(&r);
    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend')", 0, NULL));
    PQclear(t_sql(t_db, "SELECT * FROM vmrq_enqueue('ping_backend')", 0, NULL));
    PQclear(t_sql(t_db, "INSERT INTO requests (command) VALUES ('ping_backend')", 0, NULL));
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests", 0, NULL), 8);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests WHERE substr(uuid::text, 15, 1) <> '7'"
                                     " OR substr(uuid::text, 20, 1) NOT IN ('8', '9', 'a', 'b')", 0, NULL), 0);
    vmrq_request_free(one);
    vmrq_request_free(batch[0]);
    vmrq_request_free(batch[1]);
}
END_TEST

/* C's status enum is the SQL enum, value for value and in order. */
START_TEST(test_status_enum_matches_sql)
{
    char want[256] = "{";
    PGresult *res;

    for (int i = 0; i < VMRQ_STATUS_LAST; i++) {
        strcat(want, vmrq_status_name((vmrq_status)i));
        strcat(want, i + 1 < VMRQ_STATUS_LAST ? "," : "}");
    }
    res = t_sql(t_db, "SELECT enum_range(NULL::request_status)::text", 0, NULL);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), want);
    PQclear(res);
}
END_TEST

START_TEST(test_enqueue_batch)
{
    vmrq_request *r[5];
    const char *cmds[5] = { "refresh_vms", "shutdown", "refresh_vms", "ping_backend", "ping_backend" };

    for (int i = 0; i < 5; i++)
        r[i] = vmrq_request_new(cmds[i]);
    vmrq_request_set_json(r[1], "{\"uid\": 1, \"id_domain\": 2}");
    vmrq_request_set_uuid(r[3], "7c9e6679-7425-40de-944b-e07fc1f90ae7");
    vmrq_request_set_uuid(r[4], "7c9e6679-7425-40de-944b-e07fc1f90ae7");
    ck_assert_msg(vmrq_request_enqueue_batch(t_db, r, 5) == 0, "%s", vmrq_error_message());
    ck_assert_int_eq(vmrq_request_id(r[0]), vmrq_request_id(r[2])); /* a pending twin in the batch */
    ck_assert(vmrq_request_is_new(r[0]) && !vmrq_request_is_new(r[2]));
    ck_assert_int_eq(vmrq_request_id(r[3]), vmrq_request_id(r[4])); /* the same uuid */
    ck_assert_int_eq(count_requests(), 3);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT id_domain FROM requests WHERE command = 'shutdown'", 0, NULL), 2);

    /* again: everything exists already */
    ck_assert_int_eq(vmrq_request_enqueue_batch(t_db, r + 3, 1), 0);
    ck_assert(!vmrq_request_is_new(r[3]));
    ck_assert_int_eq(count_requests(), 3);

    /* one invalid request: nothing */
    vmrq_request_free(r[1]);
    r[1] = vmrq_request_new("shutdown");
    vmrq_request_set_json(r[1], "{\"uid\": 1}");
    ck_assert_int_eq(vmrq_request_enqueue_batch(t_db, r, 2), -1);
    ck_assert_int_eq(vmrq_error_code(), VMRQ_ERR_INVALID);
    ck_assert_str_eq(vmrq_error_message(), "request 2 of 2: shutdown: needs argument 'id_domain' or 'name'");
    ck_assert_int_eq(count_requests(), 3);
    for (int i = 0; i < 5; i++)
        vmrq_request_free(r[i]);
}
END_TEST

START_TEST(test_database_gone)
{
    vmrq_request *req = vmrq_request_new("ping_backend");
    PGconn *dead = PQconnectdb("host=/nonexistent-vmrq-dir connect_timeout=1");

    ck_assert_int_eq(vmrq_request_enqueue(dead, req), -1);
    ck_assert_int_eq(vmrq_error_code(), VMRQ_ERR_DB);
    ck_assert_ptr_null(strchr(vmrq_error_message(), '\n'));
    PQfinish(dead);
    vmrq_request_free(req);
}
END_TEST

Suite *
queue_suite(void)
{
    Suite *s = suite_create("queue");
    TCase *tc = tcase_create("queue");

    tcase_set_tags(tc, "db");
    tcase_set_timeout(tc, 20);
    tcase_add_checked_fixture(tc, t_db_setup, t_db_teardown);
    tcase_add_test(tc, test_enqueue_and_fetch);
    tcase_add_test(tc, test_options_move_to_columns);
    tcase_add_test(tc, test_domain_name_resolves_to_id);
    tcase_add_test(tc, test_uuid_is_an_idempotency_key);
    tcase_add_test(tc, test_uuids_follow_time);
    tcase_add_test(tc, test_no_duplicate_while_pending);
    tcase_add_test(tc, test_duplicate_rules);
    tcase_add_test(tc, test_invalid_changes_nothing);
    tcase_add_test(tc, test_cancel);
    tcase_add_test(tc, test_wait_wakes_on_completion);
    tcase_add_test(tc, test_wait_times_out);
    tcase_add_test(tc, test_enqueue_batch);
    tcase_add_test(tc, test_every_path_gives_uuid_v7);
    tcase_add_test(tc, test_status_enum_matches_sql);
    tcase_add_test(tc, test_database_gone);
    tcase_add_test(tc, test_lock_timeout_is_a_timeout);
    suite_add_tcase(s, tc);
    return s;
}
