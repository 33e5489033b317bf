/*
 * check_cli.c - the `vmrq` command as scripts and operators use it: exit codes (0 ok, 1 failed,
 * 2 invalid), one-line errors on stderr, nothing enqueued on any error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <locale.h>
#include <signal.h>
#include <wchar.h>
#include <unistd.h>

#include <json-c/json.h>

#include "tutil.h"

static long long
count_requests(void)
{
    return t_sql_int(t_db, "SELECT count(*) FROM requests", 0, NULL);
}

/* An error: the given exit status, exactly one line on stderr containing `needle`, no stdout. */
#define ck_assert_cli_error(r, code, needle)                                                   \
    do {                                                                                       \
        ck_assert_msg((r).status == (code), "exit %d, want %d; stderr: %s", (r).status, (code), \
                      (r).err);                                                                \
        ck_assert_msg(t_lines((r).err) == 1, "stderr is not one line: %s", (r).err);           \
        ck_assert_msg(strstr((r).err, (needle)) != NULL, "stderr lacks \"%s\": %s", (needle), \
                      (r).err);                                                                \
    } while (0)

/* The acceptance list of the foundation, word for word. */
START_TEST(test_acceptance_messages)
{
    struct t_cli r;

    r = t_cli_run("request", "shutdown", "uid=1", NULL);
    ck_assert_cli_error(r, 2, "'id_domain' or 'name'");
    ck_assert_str_eq(r.out, "");
    t_cli_free(&r);

    r = t_cli_run("request", "shutdown", "uid=1", "id_domain=2", "bogus=3", NULL);
    ck_assert_cli_error(r, 2, "vmrq: shutdown: unknown argument 'bogus'");
    t_cli_free(&r);

    r = t_cli_run("request", "shutdown", "uid=1", "id_domain=2", "timeout=abc", NULL);
    ck_assert_cli_error(r, 2, "vmrq: shutdown: argument 'timeout' must be an integer, not 'abc'");
    t_cli_free(&r);

    r = t_cli_run("request", "frobnicate", NULL);
    ck_assert_cli_error(r, 2, "unknown command 'frobnicate'");
    t_cli_free(&r);

    /* errors the database finds are reported the same way */
    r = t_cli_run("request", "start", "uid=1", "id_domain=2", "--after", "99", NULL);
    ck_assert_cli_error(r, 2, "vmrq: start: argument 'after_request' names no request 99");
    t_cli_free(&r);
    r = t_cli_run("request", "start", "uid=1", "id_domain=2", "--at", "soonish", NULL);
    ck_assert_cli_error(r, 2, "argument 'at' must be a time");
    t_cli_free(&r);
    r = t_cli_run("request", "start", "uid=1", "id_domain=2", "--uuid", "xyz", NULL);
    ck_assert_cli_error(r, 2, "start: 'xyz' is not a uuid");
    t_cli_free(&r);
    r = t_cli_run("request", "start", "uid=1", "id_domain=2", "--retry", "lots", NULL);
    ck_assert_cli_error(r, 2, "argument 'retry' must be an integer, not 'lots'");
    t_cli_free(&r);
    r = t_cli_run("request", "start", "uid=1", "id_domain", NULL);
    ck_assert_cli_error(r, 2, "expected key=value, got 'id_domain'");
    t_cli_free(&r);

    ck_assert_int_eq(count_requests(), 0);
}
END_TEST

START_TEST(test_request_prints_id_and_dedupes)
{
    struct t_cli a = t_cli_run("request", "refresh_vms", NULL);
    struct t_cli b = t_cli_run("request", "refresh_vms", NULL);
    struct t_cli c = t_cli_run("request", "refresh_vms", "--force", NULL);

    ck_assert_int_eq(a.status, 0);
    ck_assert_str_eq(a.out, "1\n");
    ck_assert_str_eq(a.err, "");
    ck_assert_int_eq(b.status, 0);
    ck_assert_str_eq(b.out, "1\n");
    ck_assert_str_eq(b.err, "vmrq: request 1 (refresh_vms) is already pending\n");
    ck_assert_str_eq(c.out, "2\n");
    ck_assert_str_eq(c.err, "");
    t_cli_free(&a);
    t_cli_free(&b);
    t_cli_free(&c);
}
END_TEST

START_TEST(test_request_options)
{
    struct t_cli r = t_cli_run("request", "shutdown", "uid=1", "name=desk1", "timeout=60", "--at", "+90",
                               "--priority", "7", "--retry", "2", "--json", NULL);
    struct json_object *obj = json_tokener_parse(r.out), *v;
    PGresult *res;

    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_ptr_nonnull(obj);
    ck_assert(json_object_object_get_ex(obj, "id", &v) && json_object_get_int(v) == 1);
    ck_assert(json_object_object_get_ex(obj, "created", &v) && json_object_get_boolean(v));
    ck_assert(json_object_object_get_ex(obj, "status", &v) && strcmp(json_object_get_string(v), "requested") == 0);
    json_object_put(obj);
    t_cli_free(&r);
    res = t_sql(t_db, "SELECT args::text, priority, retry,"
                      "       at_time BETWEEN now() + interval '80 s' AND now() + interval '100 s'"
                      "  FROM requests", 0, NULL);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), "{\"uid\": 1, \"name\": \"desk1\", \"timeout\": 60}");
    ck_assert_str_eq(PQgetvalue(res, 0, 1), "7");
    ck_assert_str_eq(PQgetvalue(res, 0, 2), "2");
    ck_assert_str_eq(PQgetvalue(res, 0, 3), "t");
    PQclear(res);

    r = t_cli_run("request", "start", "--args", "{\"uid\": 1, \"id_domain\": 5}", "id_domain=6", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT id_domain FROM requests WHERE id = 2", 0, NULL), 6);
    t_cli_free(&r);
}
END_TEST

/* --wait: 0 done, 1 failed (with the reason) or timed out. No backend runs here, so the test
 * finishes requests itself. */
/* --batch: JSON lines, all or nothing, one id per line. */
START_TEST(test_request_batch)
{
    char name[] = "/tmp/vmrq-batch.XXXXXX";
    struct t_cli r;
    FILE *f;
    int fd;

    ck_assert((fd = mkstemp(name)) >= 0);
    ck_assert((f = fdopen(fd, "w")) != NULL);
    fputs("{\"command\": \"refresh_vms\"}\n"
          "{\"command\": \"shutdown\", \"args\": {\"uid\": 1, \"id_domain\": 2}}\n"
          "\n"
          "{\"command\": \"refresh_vms\"}\n", f);
    fclose(f);
    r = t_cli_run("request", "--batch", name, NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_str_eq(r.out, "1\n2\n1\n");
    t_cli_free(&r);

    ck_assert((f = fopen(name, "w")) != NULL);
    fputs("{\"command\": \"ping_backend\"}\n{\"command\": \"shutdown\", \"args\": {\"uid\": 1}}\n", f);
    fclose(f);
    r = t_cli_run("request", "--batch", name, NULL);
    ck_assert_cli_error(r, 2, "vmrq request: line 2: shutdown: needs argument 'id_domain' or 'name'");
    t_cli_free(&r);
    ck_assert_int_eq(count_requests(), 2);

    /* lines are read as the database reads JSON: the number given, no trailing text */
    ck_assert((f = fopen(name, "w")) != NULL);
    fputs("{\"command\": \"start\", \"args\": {\"uid\": 99999999999999999999, \"id_domain\": 2}}\n", f);
    fclose(f);
    r = t_cli_run("request", "--batch", name, NULL);
    ck_assert_cli_error(r, 2, "vmrq request: line 1: start: argument 'uid' must be between 1 and 2147483647,"
                              " not '99999999999999999999'");
    t_cli_free(&r);
    ck_assert((f = fopen(name, "w")) != NULL);
    fputs("{\"command\": \"ping_backend\"} x\n", f);
    fclose(f);
    r = t_cli_run("request", "--batch", name, NULL);
    ck_assert_cli_error(r, 2, "vmrq request: line 1: expected a JSON object: invalid input syntax for type json");
    t_cli_free(&r);
    ck_assert_int_eq(count_requests(), 2);

    r = t_cli_run("request", "--batch", name, "ping_backend", NULL);
    ck_assert_cli_error(r, 2, "--batch takes its requests from the file");
    t_cli_free(&r);
    unlink(name);
}
END_TEST

START_TEST(test_wait_exit_codes)
{
    struct t_cli r;

    r = t_cli_run("request", "ping_backend", "--wait", "--wait-timeout", "1", NULL);
    ck_assert_str_eq(r.out, "1\n");
    ck_assert_cli_error(r, 1, "vmrq: request 1 is still requested after 1000 ms");
    t_cli_free(&r);

    PQclear(t_sql(t_db, "UPDATE requests SET status = 'done' WHERE id = 1", 0, NULL));
    r = t_cli_run("wait", "1", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.err, "");
    t_cli_free(&r);

    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend')", 0, NULL));
    PQclear(t_sql(t_db, "UPDATE requests SET status = 'failed', error = 'no domain ''x''' WHERE id = 2", 0, NULL));
    r = t_cli_run("wait", "2", "--timeout", "5", NULL);
    ck_assert_cli_error(r, 1, "vmrq: request 2 (ping_backend) failed: no domain 'x'");
    t_cli_free(&r);

    r = t_cli_run("wait", "42", NULL);
    ck_assert_cli_error(r, 2, "no request 42");
    t_cli_free(&r);
    r = t_cli_run("wait", "x", NULL);
    ck_assert_cli_error(r, 2, "'x' is not a request id");
    t_cli_free(&r);
}
END_TEST

START_TEST(test_cancel_exit_codes)
{
    struct t_cli r;

    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend')", 0, NULL));
    r = t_cli_run("cancel", "1", NULL);
    ck_assert_int_eq(r.status, 0);
    t_cli_free(&r);
    r = t_cli_run("cancel", "1", NULL);
    ck_assert_cli_error(r, 1, "request 1 (ping_backend) is cancelled");
    t_cli_free(&r);
    r = t_cli_run("cancel", "9", NULL);
    ck_assert_cli_error(r, 2, "no request 9");
    t_cli_free(&r);
}
END_TEST

START_TEST(test_list_and_show)
{
    struct t_cli r;
    struct json_object *arr;

    PQclear(t_sql(t_db, "INSERT INTO users (name) VALUES ('alice')", 0, NULL));
    PQclear(t_sql(t_db, "INSERT INTO domains (name, id_owner) VALUES ('desk1', 1)", 0, NULL));
    PQclear(t_sql(t_db, "SELECT vmrq_request('start', '{\"uid\": 1, \"id_domain\": 1}')", 0, NULL));
    PQclear(t_sql(t_db, "SELECT vmrq_request('refresh_vms')", 0, NULL));
    PQclear(t_sql(t_db, "UPDATE requests SET status = 'failed', error = 'boom' WHERE id = 1", 0, NULL));

    r = t_cli_run("list", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(t_lines(r.out), 3);
    ck_assert_ptr_nonnull(strstr(r.out, "refresh_vms"));
    ck_assert(strstr(r.out, "refresh_vms") < strstr(r.out, "start")); /* newest first */
    ck_assert_ptr_nonnull(strstr(r.out, "desk1"));
    ck_assert_ptr_nonnull(strstr(r.out, "alice"));
    t_cli_free(&r);

    r = t_cli_run("list", "--status", "failed", "--domain", "desk1", "--user", "alice", "--json", NULL);
    ck_assert_int_eq(r.status, 0);
    arr = json_tokener_parse(r.out);
    ck_assert_msg(arr && json_object_array_length(arr) == 1, "%s", r.out);
    json_object_put(arr);
    t_cli_free(&r);

    r = t_cli_run("list", "--status", "finished", NULL);
    ck_assert_cli_error(r, 2, "unknown status 'finished'");
    t_cli_free(&r);

    r = t_cli_run("show", "1", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "error:"));
    ck_assert_ptr_nonnull(strstr(r.out, "boom"));
    t_cli_free(&r);
    r = t_cli_run("show", "3", NULL);
    ck_assert_cli_error(r, 2, "no request 3");
    t_cli_free(&r);
}
END_TEST

START_TEST(test_admin_subcommands)
{
    struct t_cli r;

    r = t_cli_run("user", "add", "alice", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.out, "1\n");
    t_cli_free(&r);
    r = t_cli_run("user", "add", "olga", "--operator", NULL);
    ck_assert_str_eq(r.out, "2\n");
    t_cli_free(&r);
    r = t_cli_run("user", "add", "alice", NULL);
    ck_assert_cli_error(r, 2, "already exists");
    t_cli_free(&r);
    r = t_cli_run("node", "add", "kvm1", "--uri", "test:///default", NULL);
    ck_assert_int_eq(r.status, 0);
    t_cli_free(&r);
    r = t_cli_run("domain", "add", "desk1", "--owner", "alice", "--node", "kvm1", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    t_cli_free(&r);
    r = t_cli_run("domain", "add", "desk2", "--owner", "bob", NULL);
    ck_assert_cli_error(r, 2, "no user 'bob'");
    t_cli_free(&r);
    r = t_cli_run("domain", "add", "desk2", NULL);
    ck_assert_cli_error(r, 2, "add needs --owner USER");
    t_cli_free(&r);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM users WHERE is_operator", 0, NULL), 1);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM domains d JOIN nodes n ON n.id = d.id_node"
                                     " WHERE d.name = 'desk1' AND n.name = 'kvm1'", 0, NULL), 1);
    r = t_cli_run("domain", "list", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "desk1"));
    t_cli_free(&r);
}
END_TEST

START_TEST(test_db_and_commands)
{
    struct json_object *catalog;
    struct t_cli r;

    r = t_cli_run("db", "status", NULL);
    ck_assert_msg(r.status == 0, "%s%s", r.out, r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "0001_baseline"));
    t_cli_free(&r);
    r = t_cli_run("db", "upgrade", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "applied 0 migrations"));
    t_cli_free(&r);

    r = t_cli_run("commands", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "uid (id_domain|name) [timeout] [mode]"));
    t_cli_free(&r);
    r = t_cli_run("commands", "shutdown", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "one of acpi agent default"));
    t_cli_free(&r);
    r = t_cli_run("commands", "--json", NULL);
    catalog = json_tokener_parse(r.out);
    ck_assert_int_eq(json_object_array_length(catalog), (int)vmrq_command_count());
    json_object_put(catalog);
    t_cli_free(&r);
    r = t_cli_run("commands", "nope", NULL);
    ck_assert_cli_error(r, 2, "unknown command 'nope'");
    t_cli_free(&r);
}
END_TEST

/* --help on every subcommand, --version, and the usage errors. */
START_TEST(test_usage)
{
    static const char *const subs[] = { "request", "list", "show", "wait", "cancel", "commands", "db",
                                        "user", "domain", "node", "daemons", NULL };
    struct t_cli r;

    for (const char *const *s = subs; *s; s++) {
        r = t_cli_run(*s, "--help", NULL);
        ck_assert_msg(r.status == 0 && strncmp(r.out, "usage: vmrq ", 12) == 0, "%s --help: %s", *s, r.out);
        t_cli_free(&r);
    }
    r = t_cli_run("--version", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.out, "vmrq 0.1.0\n");
    t_cli_free(&r);
    r = t_cli_run("--help", NULL);
    ck_assert_int_eq(r.status, 0);
    t_cli_free(&r);
    r = t_cli_run("frob", NULL);
    ck_assert_cli_error(r, 2, "unknown subcommand 'frob'");
    t_cli_free(&r);
    r = t_cli_run("list", "--frob", NULL);
    ck_assert_cli_error(r, 2, "vmrq list: unknown option '--frob'");
    t_cli_free(&r);
    r = t_cli_run("request", "start", "--at", NULL);
    ck_assert_cli_error(r, 2, "option '--at' needs a value");
    t_cli_free(&r);
    r = t_cli_run(NULL, NULL); /* no subcommand at all */
    ck_assert_int_eq(r.status, 2);
    t_cli_free(&r);
}
END_TEST

START_TEST(test_unreachable_database)
{
    struct t_cli r = t_cli_run("-c", "host=/nonexistent-vmrq-dir", "list", NULL);

    ck_assert_cli_error(r, 1, "vmrq: cannot connect to the database: ");
    t_cli_free(&r);
    r = t_cli_run("request", "ping_backend", "-c", "host=/nonexistent-vmrq-dir", NULL);
    ck_assert_cli_error(r, 1, "cannot connect");
    t_cli_free(&r);
}
END_TEST

/* Where a new user tripped: --at in the past, a key given twice, the old --timeout. Nothing is
 * enqueued by any of them. */
START_TEST(test_refusals_a_new_user_meets)
{
    struct t_cli r;

    r = t_cli_run("request", "shutdown", "uid=1", "id_domain=2", "--at", "yesterday", NULL);
    ck_assert_cli_error(r, 2, "vmrq: shutdown: --at 'yesterday' is in the past");
    t_cli_free(&r);
    r = t_cli_run("request", "shutdown", "uid=1", "id_domain=2", "--at", "1000", NULL);
    ck_assert_cli_error(r, 2, "vmrq: shutdown: --at '1000' is in the past");
    t_cli_free(&r);
    r = t_cli_run("request", "shutdown", "uid=1", "name=a", "name=b", NULL);
    ck_assert_cli_error(r, 2, "vmrq: shutdown: argument 'name' given twice");
    t_cli_free(&r);
    r = t_cli_run("request", "ping_backend", "--wait", "--timeout", "5", NULL);
    ck_assert_cli_error(r, 2, "--timeout is now --wait-timeout");
    t_cli_free(&r);
    ck_assert_int_eq(count_requests(), 0);
    /* the future and a relative time still go */
    r = t_cli_run("request", "shutdown", "uid=1", "id_domain=2", "--at", "2999-01-01 00:00+00", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    t_cli_free(&r);
    r = t_cli_run("request", "shutdown", "uid=1", "id_domain=3", "--at", "+5m", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    t_cli_free(&r);
}
END_TEST

/* --wait --json prints the request as it finished, its figures JSON numbers. */
START_TEST(test_wait_json_is_the_outcome)
{
    struct t_daemon d = { 0 };
    struct t_cli r;
    struct json_object *obj, *v;

    t_daemon_start(&d, "libvirt_uri = test:///default\n", false);
    r = t_cli_run("request", "ping_backend", "--wait", "--wait-timeout", "20", "--json", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_msg((obj = json_tokener_parse(r.out)) != NULL, "not JSON: %s", r.out);
    ck_assert(json_object_object_get_ex(obj, "status", &v) && strcmp(json_object_get_string(v), "done") == 0);
    ck_assert(json_object_object_get_ex(obj, "id", &v) && json_object_is_type(v, json_type_int));
    ck_assert(json_object_object_get_ex(obj, "attempts", &v) && json_object_is_type(v, json_type_int));
    ck_assert(json_object_object_get_ex(obj, "created", &v) && json_object_get_boolean(v));
    ck_assert_msg(json_object_object_get_ex(obj, "took_ms", &v) && json_object_is_type(v, json_type_double),
                  "took_ms is not a number: %s", r.out);
    json_object_put(obj);
    t_cli_free(&r);
    t_daemon_cleanup(&d);
}
END_TEST

/* Database errors in the CLI's words: an existing user, an empty name, a bad uuid, a database
 * without the schema. */
START_TEST(test_errors_in_own_words)
{
    struct t_cli r;

    PQclear(t_sql(t_db, "INSERT INTO users (name) VALUES ('alice')", 0, NULL));
    r = t_cli_run("user", "add", "alice", NULL);
    ck_assert_cli_error(r, 2, "user 'alice' already exists");
    ck_assert_msg(!strstr(r.err, "duplicate key") && !strstr(r.err, "Key ("), "raw: %s", r.err);
    t_cli_free(&r);
    r = t_cli_run("user", "add", "", NULL);
    ck_assert_cli_error(r, 2, "vmrq user: a user name must not be empty");
    t_cli_free(&r);
    r = t_cli_run("domain", "add", "desk1", "--owner", "alice", "--uuid", "xyz", NULL);
    ck_assert_cli_error(r, 2, "--uuid: 'xyz' is not a uuid");
    t_cli_free(&r);

    PQclear(t_sql(t_db, "DROP DATABASE IF EXISTS vmrq_bare", 0, NULL));
    PQclear(t_sql(t_db, "CREATE DATABASE vmrq_bare", 0, NULL));
    r = t_cli_run("-c", "dbname=vmrq_bare", "list", NULL);
    ck_assert_cli_error(r, 1, "vmrq: no vmrq schema in this database: run 'vmrq db upgrade'");
    t_cli_free(&r);
    r = t_cli_run("-c", "dbname=vmrq_bare", "request", "ping_backend", NULL);
    ck_assert_cli_error(r, 1, "vmrq: no vmrq schema in this database: run 'vmrq db upgrade'");
    t_cli_free(&r);
    r = t_cli_run("-c", "dbname=vmrq_bare", "db", "status", NULL);
    ck_assert_msg(!strstr(r.err, "no vmrq schema"), "db status refused: %s", r.err);
    t_cli_free(&r);
    PQclear(t_sql(t_db, "DROP DATABASE vmrq_bare", 0, NULL));
}
END_TEST

/* Names of users, domains and nodes: bounded, no control characters, no surrounding spaces. */
START_TEST(test_names_checked)
{
    static const struct { const char *sub, *name, *want; } bad[] = {
        { "user", " bob", "user name ' bob' must not begin or end with a space" },
        { "user", "bob ", "user name 'bob ' must not begin or end with a space" },
        { "user", "eve\nroot", "user name 'eve\\x0aroot' must not contain control characters" },
        { "node", "kvm\t1", "node name 'kvm\\x091' must not contain control characters" },
        { "domain", "", "a domain name must not be empty" },
        { "domain", "d\x1b[31m", "must not contain control characters" },
    };
    char longname[256];
    struct t_cli r;

    PQclear(t_sql(t_db, "INSERT INTO users (name) VALUES ('alice')", 0, NULL));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = strcmp(bad[i].sub, "domain") == 0 ? t_cli_run("domain", "add", bad[i].name, "--owner", "alice", NULL)
            : strcmp(bad[i].sub, "node") == 0 ? t_cli_run("node", "add", bad[i].name, "--uri", "test:///default", NULL)
                                              : t_cli_run("user", "add", bad[i].name, NULL);
        ck_assert_cli_error(r, 2, bad[i].want);
        t_cli_free(&r);
    }
    memset(longname, 'x', 101);
    longname[101] = '\0';
    r = t_cli_run("user", "add", longname, NULL);
    ck_assert_cli_error(r, 2, "is longer than 100 characters");
    t_cli_free(&r);
    /* 100 characters, not bytes: a hundred two-byte letters pass */
    longname[0] = '\0';
    for (int i = 0; i < 100; i++)
        strcat(longname, "\xc3\xab");
    r = t_cli_run("user", "add", longname, NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    t_cli_free(&r);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM users", 0, NULL), 2);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM nodes", 0, NULL) + t_sql_int(t_db, "SELECT count(*) FROM domains", 0, NULL), 0);
}
END_TEST

/* Display columns of a UTF-8 string. */
static int
columns(const char *s, size_t bytes)
{
    wchar_t w[512];
    char part[1024];
    size_t n;

    snprintf(part, sizeof(part), "%.*s", (int)bytes, s);
    n = mbstowcs(w, part, 511);
    ck_assert(n != (size_t)-1);
    return wcswidth(w, n);
}

/* Tables stay aligned with long and non-ASCII names: every row's third column starts at the
 * header's display column, and a long name is cut with an ellipsis. */
START_TEST(test_tables_aligned)
{
    struct t_cli r;
    char *line, *save = NULL;
    int want = -1, rows = 0;

    ck_assert(setlocale(LC_CTYPE, "C.UTF-8") != NULL);
    PQclear(t_sql(t_db, "INSERT INTO users (name, is_operator) VALUES ('a', false), ('Zo\xc3\xab', false),"
                        " ('\xe6\x95\x99\xe5\xae\xa4', true), (repeat('long', 20), false)", 0, NULL));
    r = t_cli_run("user", "list", NULL);
    ck_assert_int_eq(r.status, 0);
    for (line = strtok_r(r.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        const char *third;
        if (rows == 0) {
            third = strstr(line, "is_operator");
        } else { /* a row: its third column, is_operator, is the first t or f between paddings */
            const char *f = strstr(line, "  f  "), *t = strstr(line, "  t  ");
            third = f && (!t || f < t) ? f : t;
            ck_assert_msg(third != NULL, "no is_operator value: %s", line);
            third += 2;
        }
        ck_assert_msg(third != NULL, "no header: %s", line);
        if (want < 0)
            want = columns(line, (size_t)(third - line));
        else
            ck_assert_msg(columns(line, (size_t)(third - line)) == want, "misaligned: %s", line);
        rows++;
    }
    ck_assert_int_eq(rows, 5);
    r.out[0] = '\0';
    t_cli_free(&r);
    r = t_cli_run("user", "list", NULL);
    ck_assert_msg(strstr(r.out, "longlonglong") && strstr(r.out, "\xe2\x80\xa6") && !strstr(r.out, "longlonglonglonglonglonglonglonglonglong"),
                  "a long name not cut: %s", r.out);
    t_cli_free(&r);
}
END_TEST

/* --owner takes a name (a user named "2" is a name), --owner-id an id; set-owner changes it. */
START_TEST(test_owner_and_owner_id)
{
    struct t_cli r;

    PQclear(t_sql(t_db, "INSERT INTO users (name) VALUES ('alice'), ('1')", 0, NULL));
    r = t_cli_run("domain", "add", "d1", "--owner", "1", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    t_cli_free(&r);
    r = t_cli_run("domain", "add", "d2", "--owner-id", "1", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    t_cli_free(&r);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT id_owner FROM domains WHERE name = 'd1'", 0, NULL), 2);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT id_owner FROM domains WHERE name = 'd2'", 0, NULL), 1);
    r = t_cli_run("domain", "add", "d3", "--owner-id", "alice", NULL);
    ck_assert_cli_error(r, 2, "--owner-id takes a user's id, not 'alice'");
    t_cli_free(&r);
    r = t_cli_run("domain", "add", "d3", "--owner-id", "9", NULL);
    ck_assert_cli_error(r, 2, "no user with id '9'");
    t_cli_free(&r);
    r = t_cli_run("domain", "set-owner", "d1", "--owner", "alice", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    t_cli_free(&r);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT id_owner FROM domains WHERE name = 'd1'", 0, NULL), 1);
    r = t_cli_run("domain", "set-owner", "nope", "--owner", "alice", NULL);
    ck_assert_cli_error(r, 2, "no domain 'nope'");
    t_cli_free(&r);
}
END_TEST

/* Removing a user, a domain or a node: refused while something depends on it or requests are
 * pending, unless --force (which cancels those not started); disable and enable a node;
 * cancel --reason. */
START_TEST(test_operator_verbs)
{
    struct t_cli r;

    PQclear(t_sql(t_db, "INSERT INTO users (name) VALUES ('alice'), ('bob')", 0, NULL));
    PQclear(t_sql(t_db, "INSERT INTO nodes (name, uri) VALUES ('kvm1', 'test:///default')", 0, NULL));
    PQclear(t_sql(t_db, "INSERT INTO domains (name, id_owner, id_node) VALUES ('desk1', 1, 1)", 0, NULL));
    PQclear(t_sql(t_db, "SELECT vmrq_request('shutdown', '{\"uid\": 1, \"name\": \"desk1\"}')", 0, NULL));

    r = t_cli_run("user", "remove", "alice", NULL);
    ck_assert_cli_error(r, 1, "user 'alice' owns 1 domain: give them another owner first");
    t_cli_free(&r);
    r = t_cli_run("node", "remove", "kvm1", NULL);
    ck_assert_cli_error(r, 1, "node 'kvm1' still has 1 domain");
    t_cli_free(&r);
    r = t_cli_run("domain", "remove", "desk1", NULL);
    ck_assert_cli_error(r, 1, "domain 'desk1' has 1 request pending: cancel them, or --force");
    t_cli_free(&r);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM domains", 0, NULL), 1);
    PQclear(t_sql(t_db, "UPDATE requests SET status = 'working' WHERE id = 1", 0, NULL));
    r = t_cli_run("domain", "remove", "desk1", "--force", NULL);
    ck_assert_cli_error(r, 1, "domain 'desk1' has 1 request running: try again once they have finished");
    t_cli_free(&r);
    PQclear(t_sql(t_db, "UPDATE requests SET status = 'requested' WHERE id = 1", 0, NULL));
    r = t_cli_run("domain", "remove", "desk1", "--force", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_str_eq(r.out, "cancelled 1 pending request\n");
    t_cli_free(&r);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests WHERE status = 'cancelled'"
                                     " AND error = 'domain ''desk1'' removed'", 0, NULL), 1);
    r = t_cli_run("domain", "remove", "desk1", NULL);
    ck_assert_cli_error(r, 2, "no domain 'desk1'");
    t_cli_free(&r);

    r = t_cli_run("node", "disable", "kvm1", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    t_cli_free(&r);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM nodes WHERE NOT enabled", 0, NULL), 1);
    r = t_cli_run("node", "enable", "kvm1", NULL);
    t_cli_free(&r);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM nodes WHERE enabled", 0, NULL), 1);
    r = t_cli_run("node", "enable", "kvm9", NULL);
    ck_assert_cli_error(r, 2, "no node 'kvm9'");
    t_cli_free(&r);

    PQclear(t_sql(t_db, "SELECT vmrq_request('refresh_vms', '{\"node\": \"kvm1\"}')", 0, NULL));
    r = t_cli_run("node", "remove", "kvm1", NULL);
    ck_assert_cli_error(r, 1, "node 'kvm1' has 1 request pending");
    t_cli_free(&r);
    r = t_cli_run("node", "remove", "kvm1", "--force", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    t_cli_free(&r);
    r = t_cli_run("user", "remove", "alice", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    t_cli_free(&r);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM users", 0, NULL), 1);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM nodes", 0, NULL), 0);

    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend')", 0, NULL));
    r = t_cli_run("cancel", "3", "--reason", "not today", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    t_cli_free(&r);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests WHERE id = 3 AND status = 'cancelled'"
                                     " AND error = 'not today'", 0, NULL), 1);
}
END_TEST

/* vmrq daemons: a live vmrqd with its node, host, pid, heartbeat age and running requests. */
START_TEST(test_daemons)
{
    struct t_daemon d = { 0 };
    struct t_cli r;
    struct json_object *arr, *obj, *v;
    char pid[16];

    t_daemon_start(&d, "libvirt_uri = test:///default\nnode = n1\n", false);
    snprintf(pid, sizeof(pid), "%d", d.pid);
    r = t_cli_run("daemons", NULL);
    ck_assert_msg(r.status == 0 && strstr(r.out, "heartbeat_age_s") && strstr(r.out, " n1 ") && strstr(r.out, pid),
                  "%s%s", r.out, r.err);
    t_cli_free(&r);
    r = t_cli_run("daemons", "--json", NULL);
    ck_assert_ptr_nonnull(arr = json_tokener_parse(r.out));
    ck_assert_int_eq(json_object_array_length(arr), 1);
    obj = json_object_array_get_idx(arr, 0);
    ck_assert(json_object_object_get_ex(obj, "pid", &v) && json_object_get_int(v) == d.pid);
    ck_assert(json_object_object_get_ex(obj, "running", &v) && json_object_get_int(v) == 0);
    ck_assert(json_object_object_get_ex(obj, "heartbeat_age_s", &v) && json_object_is_type(v, json_type_int));
    json_object_put(arr);
    t_cli_free(&r);
    ck_assert_int_eq(t_daemon_wait(&d, SIGTERM, 20000), 0);
    r = t_cli_run("daemons", NULL);
    ck_assert_msg(!strstr(r.out, pid), "a stopped daemon listed: %s", r.out);
    t_cli_free(&r);
    r = t_cli_run("daemons", "--all", NULL);
    ck_assert_msg(strstr(r.out, pid), "--all lacks the stopped daemon: %s", r.out);
    t_cli_free(&r);
    t_daemon_cleanup(&d);
}
END_TEST

Suite *
cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");

    tcase_set_tags(tc, "db cli");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, t_db_setup, t_db_teardown);
    tcase_add_test(tc, test_acceptance_messages);
    tcase_add_test(tc, test_request_prints_id_and_dedupes);
    tcase_add_test(tc, test_request_options);
    tcase_add_test(tc, test_request_batch);
    tcase_add_test(tc, test_wait_exit_codes);
    tcase_add_test(tc, test_cancel_exit_codes);
    tcase_add_test(tc, test_list_and_show);
    tcase_add_test(tc, test_admin_subcommands);
    tcase_add_test(tc, test_db_and_commands);
    tcase_add_test(tc, test_usage);
    tcase_add_test(tc, test_unreachable_database);
    tcase_add_test(tc, test_refusals_a_new_user_meets);
    tcase_add_test(tc, test_wait_json_is_the_outcome);
    tcase_add_test(tc, test_errors_in_own_words);
    tcase_add_test(tc, test_names_checked);
    tcase_add_test(tc, test_tables_aligned);
    tcase_add_test(tc, test_owner_and_owner_id);
    tcase_add_test(tc, test_operator_verbs);
    tcase_add_test(tc, test_daemons);
    suite_add_tcase(s, tc);
    return s;
}
