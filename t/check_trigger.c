/*
 * check_trigger.c - the database defends itself: rows inserted with plain SQL are validated by
 * the trigger with the library's very messages, normalized, announced by NOTIFY; history is
 * immutable; the SQL API (vmrq_request, vmrq_cancel) works for any client.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tutil.h"

/* Rows a careless or malicious client might insert; "" marks valid ones. */
static const struct {
    const char *command, *args;
} cases[] = {
    { "shutdown", "{\"uid\": 1}" },
    { "shutdown", "{\"uid\": 1, \"id_domain\": 2, \"bogus\": 3}" },
    { "shutdown", "{\"uid\": 1, \"id_domain\": 2, \"timeout\": \"abc\"}" },
    { "shutdown", "{\"id_domain\": 2}" },
    { "shutdown", "{\"uid\": 1, \"id_domain\": 2, \"mode\": \"foo\"}" },
    { "shutdown", "{\"uid\": 1, \"id_domain\": 2, \"mode\": 1}" },
    { "shutdown", "{\"uid\": 1, \"id_domain\": 2, \"timeout\": -5}" },
    { "shutdown", "{\"uid\": 1, \"name\": \"\"}" },
    { "shutdown", "{\"uid\": 1, \"name\": 7}" },
    { "shutdown", "{\"uid\": \"1\", \"id_domain\": 2}" },
    { "shutdown", "{\"uid\": 1.5, \"id_domain\": 2}" },
    { "shutdown", "{\"uid\": true, \"id_domain\": 2}" },
    { "shutdown", "{\"uid\": null, \"id_domain\": 2}" },
    { "shutdown", "{\"uid\": [1], \"id_domain\": 2}" },
    { "shutdown", "{\"zzz\": 1, \"uid\": \"x\"}" },
    { "shutdown", "{\"a\": 1, \"uid\": \"x\"}" },
    { "shutdown", "[1, 2]" },
    { "shutdown", "{\"uid\": 1, \"id_domain\": 2147483648}" },
    { "start", "{\"uid\": 1, \"id_domain\": 2, \"_force\": \"yes\"}" },
    { "start", "{\"uid\": 1, \"id_domain\": 2, \"at\": true}" },
    { "start", "{\"uid\": 1, \"id_domain\": 2, \"at\": -1}" },
    { "start", "{\"uid\": 1, \"id_domain\": 2, \"retry\": 5000}" },
    { "start", "{\"uid\": 1, \"id_domain\": 0}" },
    { "nope", "{}" },
    { "ping_backend", "{\"uid\": 1}" },
    { "refresh_vms", "{\"uid\": 0}" },
    { "cleanup", "{\"older_than\": \"1d\"}" },
    { "shutdown", "{\"uid\": 1, \"id_domain\": 2, \"timeout\": 60, \"mode\": \"acpi\"}" },
    { "ping_backend", "{}" },
    { "refresh_vms", "{\"uid\": 3, \"priority\": -4}" },
    /* what a careless client sends (issue 18) */
    { "", "{}" },
    { "ping_backend", "{\"\": 1}" },
    { "start", "{\"uid\": 99999999999999999999, \"id_domain\": 2}" },
    { "start", "{\"uid\": 1, \"id_domain\": 2, \"after_request\": 9223372036854775808}" },
    { "start", "{\"uid\": -0.0, \"id_domain\": 2}" },
    { "start", "{\"uid\": {\"b\":[1,2],  \"a\":1e1}, \"id_domain\": 2}" },
    { "start", "{\"uid\": \"a\\nb\", \"id_domain\": 2}" },
    { "start", "{\"uid\": 1, \"name\": \"desk\\t12\"}" },
    { "start", "{\"uid\": 1, \"name\": \"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\"}" },
    { "start", "{\"uid\": 1, \"x\": [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}" },
    { "start", "{\"uid\": 1e2, \"id_domain\": 2}" },
};

/* The library's message for a case, "" if valid. */
static char *
library_message(const char *command, const char *args)
{
    vmrq_request *req = vmrq_request_new(command);
    char *msg;

    if (!req)
        return strdup(vmrq_error_message());
    if (vmrq_request_set_json(req, args) < 0 || vmrq_request_validate(req) < 0)
        msg = strdup(vmrq_error_message());
    else
        msg = strdup("");
    vmrq_request_free(req);
    return msg;
}

START_TEST(test_same_message_as_library)
{
    const char *params[2] = { cases[_i].command, cases[_i].args };
    char *lib = library_message(cases[_i].command, cases[_i].args), *db = NULL, state[6];
    PGresult *res;

    if (*lib) {
        db = t_sql_error(t_db, "INSERT INTO requests (command, args) VALUES ($1, $2::jsonb)", 2, params, state);
        ck_assert_msg(strcmp(lib, db) == 0, "%s %s: library says \"%s\", database says \"%s\"",
                      cases[_i].command, cases[_i].args, lib, db);
        ck_assert_str_eq(state, "22023");
        ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests", 0, NULL), 0);
    } else {
        res = t_sql(t_db, "INSERT INTO requests (command, args) VALUES ($1, $2::jsonb)", 2, params);
        PQclear(res);
        ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests", 0, NULL), 1);
    }
    free(lib);
    free(db);
}
END_TEST

/* A timestamp string is parsed by the database only; it refuses nonsense with the same words. */
START_TEST(test_time_strings)
{
    const char *bad[2] = { "start", "{\"uid\": 1, \"id_domain\": 2, \"at\": \"next tuesday\"}" };
    const char *inf[2] = { "start", "{\"uid\": 1, \"id_domain\": 2, \"at\": \"infinity\"}" };
    const char *good[2] = { "start", "{\"uid\": 1, \"id_domain\": 2, \"at\": \"2030-01-01T10:00:00+02\"}" };
    char state[6], *msg;

    msg = t_sql_error(t_db, "INSERT INTO requests (command, args) VALUES ($1, $2::jsonb)", 2, bad, state);
    ck_assert_str_eq(msg, "start: argument 'at' must be a time (epoch seconds or a timestamp), not 'next tuesday'");
    free(msg);
    msg = t_sql_error(t_db, "INSERT INTO requests (command, args) VALUES ($1, $2::jsonb)", 2, inf, state);
    ck_assert_str_eq(msg, "start: argument 'at' must be a time (epoch seconds or a timestamp), not 'infinity'");
    free(msg);
    PQclear(t_sql(t_db, "INSERT INTO requests (command, args) VALUES ($1, $2::jsonb)", 2, good));
    ck_assert_int_eq(t_sql_int(t_db, "SELECT extract(epoch FROM at_time)::bigint FROM requests", 0, NULL),
                     1893484800LL);
}
END_TEST

/* Waits up to 2 s for a notification on `c`; returns its payload (caller frees) or NULL. */
static char *
next_notification(PGconn *c, const char *channel)
{
    for (int i = 0; i < 20; i++) {
        PGnotify *n;
        struct pollfd pfd = { PQsocket(c), POLLIN, 0 };

        PQconsumeInput(c);
        while ((n = PQnotifies(c))) {
            char *payload = strcmp(n->relname, channel) == 0 ? strdup(n->extra) : NULL;
            PQfreemem(n);
            if (payload)
                return payload;
        }
        poll(&pfd, 1, 100);
    }
    return NULL;
}

START_TEST(test_notify_on_insert_and_completion)
{
    PGconn *listener = t_connect();
    const char *valid[2] = { "ping_backend", "{}" };
    char *payload;

    PQclear(t_sql(listener, "LISTEN vmrq_request", 0, NULL));
    PQclear(t_sql(listener, "LISTEN vmrq_done", 0, NULL));
    PQclear(t_sql(t_db, "INSERT INTO requests (command, args) VALUES ($1, $2::jsonb)", 2, valid));
    payload = next_notification(listener, "vmrq_request");
    ck_assert_msg(payload != NULL, "no NOTIFY vmrq_request after an INSERT");
    free(payload);

    PQclear(t_sql(t_db, "UPDATE requests SET status = 'working' WHERE id = 1", 0, NULL));
    PQclear(t_sql(t_db, "UPDATE requests SET status = 'done' WHERE id = 1", 0, NULL));
    payload = next_notification(listener, "vmrq_done");
    ck_assert_ptr_nonnull(payload);
    ck_assert_str_eq(payload, "1 done");
    free(payload);
    PQfinish(listener);
}
END_TEST

/* A direct INSERT cannot forge history: the row starts fresh whatever it says. */
START_TEST(test_insert_starts_fresh)
{
    PGresult *res;

    PQclear(t_sql(t_db, "INSERT INTO requests (command, args, status, error, started_at, finished_at)"
                        " VALUES ('ping_backend', '{}', 'done', 'forged', now(), now())", 0, NULL));
    res = t_sql(t_db, "SELECT status, error IS NULL, started_at IS NULL, finished_at IS NULL FROM requests",
                0, NULL);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), "requested");
    ck_assert_str_eq(PQgetvalue(res, 0, 1), "t");
    ck_assert_str_eq(PQgetvalue(res, 0, 2), "t");
    ck_assert_str_eq(PQgetvalue(res, 0, 3), "t");
    PQclear(res);
}
END_TEST

START_TEST(test_history_is_immutable)
{
    char state[6], *msg;

    PQclear(t_sql(t_db, "SELECT vmrq_request('start', '{\"uid\": 1, \"id_domain\": 2}')", 0, NULL));
    msg = t_sql_error(t_db, "UPDATE requests SET args = '{\"uid\": 2, \"id_domain\": 2}'", 0, NULL, state);
    ck_assert_str_eq(msg, "request 1: command, args and uuid cannot change");
    ck_assert_str_eq(state, "55000");
    free(msg);
    msg = t_sql_error(t_db, "UPDATE requests SET command = 'shutdown'", 0, NULL, state);
    ck_assert_str_eq(msg, "request 1: command, args and uuid cannot change");
    free(msg);
    /* date_changed follows every update that does not set it itself */
    PQclear(t_sql(t_db, "UPDATE requests SET date_changed = '2000-01-01'", 0, NULL));
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests WHERE date_changed < '2001-01-01'",
                               0, NULL), 1);
    PQclear(t_sql(t_db, "UPDATE requests SET priority = 3", 0, NULL));
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests WHERE date_changed > '2001-01-01'",
                               0, NULL), 1);
}
END_TEST

/* The portal's one call, as the README shows it. */
START_TEST(test_sql_api)
{
    char state[6], *msg;

    ck_assert_int_eq(t_sql_int(t_db, "SELECT vmrq_request('shutdown', '{\"uid\": 1, \"id_domain\": 2,"
                                     " \"timeout\": 60}')", 0, NULL), 1);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT vmrq_request('refresh_vms')", 0, NULL), 2);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT vmrq_request('refresh_vms', '{}')", 0, NULL), 2);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT vmrq_request('refresh_vms', '{\"_force\": true}')", 0, NULL), 3);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT vmrq_request('ping_backend', '{}',"
                                     " request_uuid => '7c9e6679-7425-40de-944b-e07fc1f90ae7')", 0, NULL), 4);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT vmrq_request('ping_backend', '{}',"
                                     " request_uuid => '7c9e6679-7425-40de-944b-e07fc1f90ae7')", 0, NULL), 4);
    msg = t_sql_error(t_db, "SELECT vmrq_request('shutdown', '{\"uid\": 1}')", 0, NULL, state);
    ck_assert_str_eq(msg, "shutdown: needs argument 'id_domain' or 'name'");
    ck_assert_str_eq(state, "22023");
    free(msg);
    PQclear(t_sql(t_db, "SELECT vmrq_cancel(1, 'changed my mind')", 0, NULL));
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests WHERE id = 1 AND status = 'cancelled'"
                                     " AND error = 'changed my mind'", 0, NULL), 1);
    msg = t_sql_error(t_db, "SELECT vmrq_cancel(99)", 0, NULL, state);
    ck_assert_str_eq(msg, "no request 99");
    ck_assert_str_eq(state, "P0002");
    free(msg);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests", 0, NULL), 4);
}
END_TEST

/* Operators read the catalog from the database too. */
START_TEST(test_catalog_in_database)
{
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM commands", 0, NULL), (long long)vmrq_command_count());
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM command_args WHERE command = 'shutdown'"
                                     " AND arg = 'uid' AND mandatory AND type = 'int'", 0, NULL), 1);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM command_args WHERE command = 'shutdown'"
                                     " AND arg = 'mode' AND enum_values = '{acpi,agent,default}'", 0, NULL), 1);
}
END_TEST

/* Names of users, domains and nodes are held to one rule by the database too, whoever writes. */
START_TEST(test_names_held_by_the_database)
{
    static const char *const bad[] = { "", " alice", "alice ", "al\nice", "al\tice", NULL };
    static const char *const tables[] = { "users (name)", "nodes (name, uri)", "domains (name)" };
    char state[6], sql[256], long_name[102];

    memset(long_name, 'x', 101);
    long_name[101] = '\0';
    for (size_t t = 0; t < 3; t++) {
        for (const char *const *b = bad; ; b++) {
            const char *name = *b ? *b : long_name;
            const char *params[1] = { name };
            char *msg;
            snprintf(sql, sizeof(sql), "INSERT INTO %s VALUES ($1%s)", tables[t], t == 1 ? ", 'test:///x'" : "");
            msg = t_sql_error(t_db, sql, 1, params, state);
            ck_assert_msg(strcmp(state, "23514") == 0, "%s '%s': %s (%s)", tables[t], name, msg, state);
            free(msg);
            if (!*b)
                break;
        }
        snprintf(sql, sizeof(sql), "INSERT INTO %s VALUES ('Zoë 2nd-floor desk'%s)", tables[t],
                 t == 1 ? ", 'test:///x'" : "");
        PQclear(t_sql(t_db, sql, 0, NULL));
    }
}
END_TEST

Suite *
trigger_suite(void)
{
    Suite *s = suite_create("trigger");
    TCase *tc = tcase_create("trigger");

    tcase_set_tags(tc, "db");
    tcase_set_timeout(tc, 20);
    tcase_add_checked_fixture(tc, t_db_setup, t_db_teardown);
    tcase_add_loop_test(tc, test_same_message_as_library, 0, (int)(sizeof(cases) / sizeof(cases[0])));
    tcase_add_test(tc, test_time_strings);
    tcase_add_test(tc, test_notify_on_insert_and_completion);
    tcase_add_test(tc, test_insert_starts_fresh);
    tcase_add_test(tc, test_history_is_immutable);
    tcase_add_test(tc, test_sql_api);
    tcase_add_test(tc, test_catalog_in_database);
    tcase_add_test(tc, test_names_held_by_the_database);
    suite_add_tcase(s, tc);
    return s;
}
