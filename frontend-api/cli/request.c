/*
 * request.c - `vmrq request`, `vmrq wait` and `vmrq cancel`: enqueueing through libvmrq (the
 * catalog's validation first, then the database's), waiting for the outcome, withdrawing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include <json-c/json.h>

#include "cli.h"
#include "jsonb.h"

enum { OPT_AT = 256, OPT_AFTER, OPT_AFTER_OK, OPT_RETRY, OPT_PRIORITY, OPT_UUID, OPT_FORCE,
       OPT_ARGS, OPT_WAIT, OPT_TIMEOUT, OPT_WAIT_TIMEOUT, OPT_JSON, OPT_BATCH, OPT_REASON };

/* Rows per statement of a --batch; every statement is in the one transaction. */
#define BATCH_CHUNK 10000

static const struct option request_options[] = {
    { "at", required_argument, NULL, OPT_AT },
    { "after", required_argument, NULL, OPT_AFTER },
    { "after-ok", required_argument, NULL, OPT_AFTER_OK },
    { "retry", required_argument, NULL, OPT_RETRY },
    { "priority", required_argument, NULL, OPT_PRIORITY },
    { "uuid", required_argument, NULL, OPT_UUID },
    { "force", no_argument, NULL, OPT_FORCE },
    { "args", required_argument, NULL, OPT_ARGS },
    { "wait", no_argument, NULL, OPT_WAIT },
    { "wait-timeout", required_argument, NULL, OPT_WAIT_TIMEOUT },
    { "timeout", required_argument, NULL, OPT_TIMEOUT }, /* renamed: refused with a hint */
    { "json", no_argument, NULL, OPT_JSON },
    { "batch", required_argument, NULL, OPT_BATCH },
    { NULL, 0, NULL, 0 },
};

static const struct cli_sub request_sub = {
    "request",
    "usage: vmrq request COMMAND [key=value...] [options]\n"
    "       vmrq request --batch FILE|- [--json]\n"
    "\n"
    "Enqueues COMMAND with its arguments, checked against the catalog ('vmrq commands'),\n"
    "and prints the request's id. Values are converted by the argument's type (int, bool:\n"
    "true/false/yes/no/on/off/1/0, ...).\n"
    "\n"
    "Options:\n"
    "  --at TIME           run not before TIME: +SECONDS (or +Nm, +Nh, +Nd) from now,\n"
    "                      seconds since the epoch, or a timestamp ('2026-12-01 20:00+01');\n"
    "                      a time already past is refused (the SQL option runs it at once)\n"
    "  --after ID          run once request ID has finished, whatever its outcome\n"
    "  --after-ok ID       run once request ID has succeeded; fail if it fails\n"
    "  --retry N           retry a retryable failure up to N times\n"
    "  --priority N        higher runs first (default 0)\n"
    "  --uuid UUID         idempotency key: enqueueing the same UUID again returns the same request\n"
    "  --force             enqueue even if an identical request is pending\n"
    "  --args JSON         arguments as a JSON object (key=value pairs override its members)\n"
    "  --wait              wait until the request has finished; exit 1 unless it is done\n"
    "  --wait-timeout SECONDS  with --wait: give up after SECONDS (exit 1)\n"
    "  --json              print {id, uuid, created, status} instead of the id; with --wait,\n"
    "                      once finished: also error, attempts, took_ms (numbers as numbers)\n"
    "  --batch FILE|-      enqueue many: one JSON object per line, {\"command\": C, \"args\": {...}}\n"
    "                      (optional \"uuid\"); all or nothing: one invalid line, and nothing is\n"
    "                      enqueued. Prints one id per line, in order.\n"
    "  -c, --conninfo STR  database to use (default: $VMRQ_DB, then libpq's PG* variables)\n"
    "\n"
    "A key given twice is refused. An identical pending request of a no-duplicate command\n"
    "(see 'vmrq commands') is returned instead of a new one, and said on stderr. Exit status: 0 enqueued (with --wait: done), 1 failed, cancelled,\n"
    "timed out or database error, 2 invalid request (nothing was enqueued).\n",
    request_options,
};

static const struct option wait_options[] = {
    { "timeout", required_argument, NULL, OPT_TIMEOUT },
    { NULL, 0, NULL, 0 },
};

static const struct cli_sub wait_sub = {
    "wait",
    "usage: vmrq wait ID [--timeout SECONDS]\n"
    "\n"
    "Waits until request ID is done, failed or cancelled (LISTEN, no polling).\n"
    "Exit status: 0 done; 1 failed, cancelled or still pending after SECONDS; 2 no such request.\n",
    wait_options,
};

static const struct option cancel_options[] = {
    { "reason", required_argument, NULL, OPT_REASON },
    { NULL, 0, NULL, 0 },
};

static const struct cli_sub cancel_sub = {
    "cancel",
    "usage: vmrq cancel ID [--reason TEXT]\n"
    "\n"
    "Cancels request ID if it has not started (status requested or waiting); TEXT becomes its\n"
    "error (default: cancelled).\n"
    "Exit status: 0 cancelled; 1 it is already working or finished; 2 no such request.\n",
    cancel_options,
};

/* "+90", "+5m", "+2h", "+1d" -> epoch seconds from now, rounded up (whole seconds from the
 * start of this one would come due up to a second early); false if not of that form. */
static bool
parse_relative(const char *text, long long *epoch)
{
    long long n, unit = 1;
    char num[32];
    size_t len;

    if (text[0] != '+' || (len = strlen(text + 1)) == 0 || len >= sizeof(num))
        return false;
    memcpy(num, text + 1, len + 1);
    switch (num[len - 1]) {
    case 's': unit = 1; num[--len] = '\0'; break;
    case 'm': unit = 60; num[--len] = '\0'; break;
    case 'h': unit = 3600; num[--len] = '\0'; break;
    case 'd': unit = 86400; num[--len] = '\0'; break;
    default: break;
    }
    if (!cli_parse_long(num, 0, 100LL * 365 * 86400, &n))
        return false;
    *epoch = (long long)time(NULL) + 1 + n * unit;
    return true;
}

/* Prints the request as it finished: {id, uuid, created, status, error, attempts, took_ms}. */
static void
print_final_json(PGconn *conn, long long id, bool created)
{
    char idtext[24];
    const char *params[2] = { idtext, created ? "true" : "false" };
    int code;
    PGresult *res;
    static const struct cli_sub sub = { "request", "", NULL };

    snprintf(idtext, sizeof(idtext), "%lld", id);
    res = cli_query(conn, &sub,
                    "SELECT id, uuid, $2::boolean AS created, status::text AS status, error, attempts,"
                    "       round((extract(epoch FROM finished_at - started_at) * 1000)::numeric, 1)"
                    "         AS took_ms"
                    "  FROM requests WHERE id = $1::bigint", 2, params, NULL, &code);
    if (res)
        cli_print_json(res, true);
    PQclear(res);
}

/* A long handler's progress, on stderr: a bar redrawn in place on a terminal, else a plain line
 * each time it changed. */
static void
show_progress(void *opaque, long long id, double done)
{
    bool *drawn = opaque;
    int pct = (int)(done * 100 + 0.5), filled = pct / 5;

    if (isatty(STDERR_FILENO)) {
        fprintf(stderr, "\rrequest %lld [%.*s%.*s] %3d%%", id, filled, "####################", 20 - filled,
                "....................", pct);
        *drawn = true;
    } else {
        fprintf(stderr, "request %lld: %d%% done\n", id, pct);
    }
}

/* Waits for `id` and turns the outcome into an exit status, with one line on stderr unless done;
 * with `json`, prints the request as it finished first. A long handler's progress is shown as it
 * goes (show_progress()). */
static int
wait_and_report(PGconn *conn, long long id, long long timeout_s, bool json, bool created)
{
    vmrq_status st;
    vmrq_request *req;
    bool drawn = false;
    int code, rc;

    rc = vmrq_request_wait_progress(conn, id, timeout_s < 0 ? -1 : (int)(timeout_s * 1000), &st, show_progress,
                                    &drawn);
    if (drawn)
        fputc('\n', stderr);
    if (rc < 0) {
        if (json && vmrq_error_code() == VMRQ_ERR_TIMEOUT)
            print_final_json(conn, id, created);
        return vmrq_error_code() == VMRQ_ERR_TIMEOUT ? cli_fail("%s", vmrq_error_message())
                                                      : cli_lib_error();
    }
    if (json)
        print_final_json(conn, id, created);
    if (st == VMRQ_STATUS_DONE)
        return CLI_OK;
    if (!(req = vmrq_request_fetch(conn, id)))
        return cli_lib_error();
    code = cli_fail("request %lld (%s) %s: %s", id, vmrq_request_command(req),
                    st == VMRQ_STATUS_CANCELLED ? "was cancelled" : "failed",
                    vmrq_request_error(req) ? vmrq_request_error(req) : "no reason given");
    vmrq_request_free(req);
    return code;
}

/* Whether `at` (epoch seconds or a timestamp, read by the database in its time zone) is in the
 * past; false when it is not a time (the enqueue then says why, in the usual words). */
static bool
at_in_past(PGconn *conn, const char *at)
{
    const char *params[1] = { at };
    PGresult *res = PQexecParams(conn,
                                 "SELECT CASE WHEN $1 ~ '^[0-9]+(\\.[0-9]*)?$' THEN to_timestamp($1::float8)"
                                 "            ELSE $1::timestamptz END < now()",
                                 1, NULL, params, NULL, NULL, 0);
    bool past = PQresultStatus(res) == PGRES_TUPLES_OK && PQgetvalue(res, 0, 0)[0] == 't';

    PQclear(res);
    return past;
}

vmrq_request *
cli_batch_line(const char *line, size_t lineno)
{
    struct json_object *obj = NULL, *v;
    vmrq_request *req = NULL;
    char why[128];

    /* read as the database reads JSON (frontend-api/jsonb.h): numbers exact, strict syntax */
    if (vmrq_json_utf8_check(line, strlen(line), why, sizeof(why)) < 0 ||
        vmrq_json_parse(line, &obj, why, sizeof(why)) < 0) {
        fprintf(stderr, "vmrq request: line %zu: expected a JSON object: %s\n", lineno, why);
        goto out;
    }
    if (!json_object_is_type(obj, json_type_object)) {
        fprintf(stderr, "vmrq request: line %zu: expected a JSON object\n", lineno);
        goto out;
    }
    if (!json_object_object_get_ex(obj, "command", &v) || !json_object_is_type(v, json_type_string)) {
        fprintf(stderr, "vmrq request: line %zu: missing \"command\"\n", lineno);
        goto out;
    }
    if (!(req = vmrq_request_new(json_object_get_string(v))))
        goto invalid;
    if (json_object_object_get_ex(obj, "args", &v) &&
        vmrq_request_set_json(req, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN)) < 0)
        goto invalid;
    if (json_object_object_get_ex(obj, "uuid", &v) &&
        vmrq_request_set_uuid(req, json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL) < 0)
        goto invalid;
    if (vmrq_request_validate(req) < 0)
        goto invalid;
    json_object_put(obj);
    return req;

invalid:
    fprintf(stderr, "vmrq request: line %zu: %s\n", lineno, vmrq_error_message());
    vmrq_request_free(req);
    req = NULL;
out:
    json_object_put(obj);
    return req;
}

/* --batch: read and check every line, then enqueue them all in one transaction. */
static int
request_batch(const char *path, bool json)
{
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    vmrq_request **reqs = NULL;
    size_t n = 0, cap = 0, lineno = 0, len = 0;
    char *line = NULL;
    PGconn *conn = NULL;
    PGresult *res;
    int code = CLI_USAGE;

    if (!in) {
        fprintf(stderr, "vmrq request: %s: %s\n", path, strerror(errno));
        return CLI_USAGE;
    }
    while (getline(&line, &len, in) >= 0) {
        vmrq_request *req;
        lineno++;
        if (strspn(line, " \t\r\n") == strlen(line))
            continue;
        if (!(req = cli_batch_line(line, lineno)))
            goto cleanup;
        if (n == cap) {
            vmrq_request **grown = realloc(reqs, (cap = cap ? cap * 2 : 1024) * sizeof(*reqs));
            if (!grown) {
                vmrq_request_free(req);
                code = cli_fail("request: out of memory");
                goto cleanup;
            }
            reqs = grown;
        }
        reqs[n++] = req;
    }
    if (!(conn = cli_connect())) {
        code = CLI_FAIL;
        goto cleanup;
    }
    res = PQexecParams(conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
    PQclear(res);
    for (size_t i = 0; i < n; i += BATCH_CHUNK)
        if (vmrq_request_enqueue_batch(conn, reqs + i, n - i < BATCH_CHUNK ? n - i : BATCH_CHUNK) < 0) {
            code = cli_lib_error();
            goto cleanup;
        }
    res = PQexecParams(conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        PQclear(res);
        code = cli_fail("request: commit failed: %s", PQerrorMessage(conn));
        goto cleanup;
    }
    PQclear(res);
    for (size_t i = 0; i < n; i++)
        if (json)
            printf("{\"id\": %lld, \"uuid\": \"%s\", \"created\": %s, \"status\": \"%s\"}\n",
                   vmrq_request_id(reqs[i]), vmrq_request_uuid(reqs[i]),
                   vmrq_request_is_new(reqs[i]) ? "true" : "false", vmrq_status_name(vmrq_request_status(reqs[i])));
        else
            printf("%lld\n", vmrq_request_id(reqs[i]));
    code = CLI_OK;

cleanup:
    PQfinish(conn); /* an open transaction ends with the connection: nothing enqueued */
    for (size_t i = 0; i < n; i++)
        vmrq_request_free(reqs[i]);
    free(reqs);
    free(line);
    if (in != stdin)
        fclose(in);
    return code;
}

int
cli_cmd_request(int argc, char **argv)
{
    const char *at = NULL, *after = NULL, *after_ok = NULL, *retry = NULL, *priority = NULL;
    const char *uuid = NULL, *json_args = NULL, *batch = NULL;
    bool force = false, wait = false, json = false;
    long long timeout = -1, epoch;
    vmrq_request *req = NULL;
    PGconn *conn = NULL;
    int c, code = CLI_USAGE;

    optind = 0;
    while ((c = cli_getopt(argc, argv, &request_sub)) != -1) {
        switch (c) {
        case 'h': return CLI_OK;
        case '?': return CLI_USAGE;
        case OPT_AT: at = optarg; break;
        case OPT_AFTER: after = optarg; break;
        case OPT_AFTER_OK: after_ok = optarg; break;
        case OPT_RETRY: retry = optarg; break;
        case OPT_PRIORITY: priority = optarg; break;
        case OPT_UUID: uuid = optarg; break;
        case OPT_FORCE: force = true; break;
        case OPT_ARGS: json_args = optarg; break;
        case OPT_WAIT: wait = true; break;
        case OPT_JSON: json = true; break;
        case OPT_BATCH: batch = optarg; break;
        case OPT_TIMEOUT:
            return cli_usage(&request_sub, "--timeout is now --wait-timeout (a command's own timeout is"
                             " an argument: timeout=%s)", optarg);
        case OPT_WAIT_TIMEOUT:
            if (!cli_parse_long(optarg, 0, 86400 * 365, &timeout))
                return cli_usage(&request_sub, "--wait-timeout must be a number of seconds, not '%s'", optarg);
            break;
        }
    }
    if (batch) {
        if (optind < argc || at || after || after_ok || retry || priority || uuid || force || json_args || wait)
            return cli_usage(&request_sub, "--batch takes its requests from the file: no COMMAND, no other option");
        return request_batch(batch, json);
    }
    if (optind >= argc)
        return cli_usage(&request_sub, "missing COMMAND");
    if (!(req = vmrq_request_new(argv[optind])))
        return cli_lib_error();

    if (json_args && vmrq_request_set_json(req, json_args) < 0)
        goto lib_error;
    for (int i = optind + 1; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq || eq == argv[i]) {
            code = cli_usage(&request_sub, "expected key=value, got '%s'", argv[i]);
            goto cleanup;
        }
        for (int j = optind + 1; j < i; j++)
            if (strncmp(argv[j], argv[i], (size_t)(eq - argv[i])) == 0 && argv[j][eq - argv[i]] == '\0') {
                fprintf(stderr, "vmrq: %s: argument '%.*s' given twice\n", argv[optind], (int)(eq - argv[i]),
                        argv[i]);
                goto cleanup;
            }
        *eq = '\0'; /* argv[j] < i are cut so too: compared above as whole keys */
        if (vmrq_request_set_text(req, argv[i], eq + 1) < 0)
            goto lib_error;
    }
    if (at) {
        if (parse_relative(at, &epoch) ? vmrq_request_set_int(req, "at", epoch) < 0
                                       : vmrq_request_set_text(req, "at", at) < 0)
            goto lib_error;
    }
    if ((after && vmrq_request_set_text(req, "after_request", after) < 0) ||
        (after_ok && vmrq_request_set_text(req, "after_request_ok", after_ok) < 0) ||
        (retry && vmrq_request_set_text(req, "retry", retry) < 0) ||
        (priority && vmrq_request_set_text(req, "priority", priority) < 0) ||
        (force && vmrq_request_set_bool(req, "_force", true) < 0) ||
        (uuid && vmrq_request_set_uuid(req, uuid) < 0))
        goto lib_error;

    /* refuse bad input before touching the database */
    if (vmrq_request_validate(req) < 0)
        goto lib_error;
    if (!(conn = cli_connect())) {
        code = CLI_FAIL;
        goto cleanup;
    }
    if (at && !parse_relative(at, &epoch) && at_in_past(conn, at)) {
        fprintf(stderr, "vmrq: %s: --at '%s' is in the past\n", argv[optind], at);
        goto cleanup;
    }
    if (vmrq_request_enqueue(conn, req) < 0)
        goto lib_error;
    if (!vmrq_request_is_new(req))
        fprintf(stderr, "vmrq: request %lld (%s) is already pending\n", vmrq_request_id(req), argv[optind]);

    if (json && wait)
        ; /* printed once it has finished */
    else if (json)
        printf("{\"id\": %lld, \"uuid\": \"%s\", \"created\": %s, \"status\": \"%s\"}\n",
               vmrq_request_id(req), vmrq_request_uuid(req),
               vmrq_request_is_new(req) ? "true" : "false",
               vmrq_status_name(vmrq_request_status(req)));
    else
        printf("%lld\n", vmrq_request_id(req));
    fflush(stdout);
    code = wait ? wait_and_report(conn, vmrq_request_id(req), timeout, json, vmrq_request_is_new(req)) : CLI_OK;
    goto cleanup;

lib_error:
    code = cli_lib_error();
cleanup:
    vmrq_request_free(req);
    PQfinish(conn);
    return code;
}

int
cli_cmd_wait(int argc, char **argv)
{
    long long id, timeout = -1;
    PGconn *conn;
    int c, code;

    optind = 0;
    while ((c = cli_getopt(argc, argv, &wait_sub)) != -1) {
        switch (c) {
        case 'h': return CLI_OK;
        case '?': return CLI_USAGE;
        case OPT_TIMEOUT:
            if (!cli_parse_long(optarg, 0, 86400 * 365, &timeout))
                return cli_usage(&wait_sub, "--timeout must be a number of seconds, not '%s'", optarg);
            break;
        }
    }
    if (optind != argc - 1)
        return cli_usage(&wait_sub, "expected one request ID");
    if (!cli_parse_id(argv[optind], &id))
        return cli_usage(&wait_sub, "'%s' is not a request id", argv[optind]);
    if (!(conn = cli_connect()))
        return CLI_FAIL;
    code = wait_and_report(conn, id, timeout, false, false);
    PQfinish(conn);
    return code;
}

int
cli_cmd_cancel(int argc, char **argv)
{
    static const char *const no_request[] = { "P0002", NULL };
    const char *params[2] = { NULL, NULL };
    long long id;
    PGconn *conn;
    PGresult *res;
    int c, code = CLI_OK;

    optind = 0;
    while ((c = cli_getopt(argc, argv, &cancel_sub)) != -1) {
        if (c != OPT_REASON)
            return c == 'h' ? CLI_OK : CLI_USAGE;
        params[1] = optarg;
    }
    if (optind != argc - 1)
        return cli_usage(&cancel_sub, "expected one request ID");
    if (!cli_parse_id(argv[optind], &id))
        return cli_usage(&cancel_sub, "'%s' is not a request id", argv[optind]);
    if (!(conn = cli_connect()))
        return CLI_FAIL;
    params[0] = argv[optind];
    /* no such request: bad input (2); one that started or finished: refused (1) */
    res = cli_query(conn, &cancel_sub, "SELECT vmrq_cancel($1::bigint, $2)", 2, params, no_request, &code);
    PQclear(res);
    PQfinish(conn);
    return code;
}
