/*
 * check_display.c - getting to a desktop, in-process on libvirt's test driver loaded with
 * t/display-hypervisor.xml: the display read after a start and cleared at the stop, a fresh
 * password before each start when it listens beyond the loopback, vmrq_display()'s rights and
 * the portal's lack of them on the password column; the viewer followed through graphics events
 * fed through the driver's event path (the test driver emits none); the policies:
 * shutdown_disconnected, run_timeout, start_limit.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "claim.h"
#include "dispatch.h"
#include "driver.h"
#include "driver_kvm.h"
#include "events.h"
#include "tjob.h"
#include "tutil.h"

#define DISPLAY_XML "t/display-hypervisor.xml"

enum { ALICE = 1, BOB, OLGA /* operator */ };

static struct driver *drv;
static struct events *sink;
static struct vmrqd_worker worker;
static int daemon_id;

static void
setup(void)
{
    char cwd[PATH_MAX], uri[PATH_MAX + 64];

    t_db_setup();
    ck_assert(getcwd(cwd, sizeof(cwd)) != NULL);
    snprintf(uri, sizeof(uri), "test://%s/%s", cwd, DISPLAY_XML);
    drv = driver_open(&driver_kvm_ops, uri);
    ck_assert_msg(drv != NULL, "%s", driver_error_message());
    sink = events_new(getenv("VMRQ_DB"), "lab");
    ck_assert_int_eq(driver_events(drv, events_on_domain, events_on_connection, sink), 0);
    memset(&worker, 0, sizeof(worker));
    worker.conninfo = getenv("VMRQ_DB");
    worker.drv = drv;
    worker.node = "lab";
    PQclear(t_sql(t_db, "INSERT INTO users (name, is_operator) VALUES ('alice', false), ('bob', false), ('olga', true)",
                  0, NULL));
    PQclear(t_sql(t_db, "INSERT INTO nodes (name, uri) VALUES ('lab', 'test:///lab')", 0, NULL));
    PQclear(t_sql(t_db, "INSERT INTO domains (name, id_owner, id_node, status) VALUES"
                        " ('desk-net', 1, 1, 'shutdown'), ('desk-local', 1, 1, 'shutdown'), ('desk-spice', 2, 1, 'shutdown')",
                  0, NULL));
    daemon_id = (int)t_sql_int(t_db, "INSERT INTO daemons (node, hostname, pid, version)"
                                     " VALUES ('lab', 'test', 1, 'test') RETURNING id", 0, NULL);
}

static void
teardown(void)
{
    PQfinish(worker.conn);
    driver_close(drv); /* unsubscribes before the sink goes */
    events_free(sink);
    t_db_teardown();
}

/* The request's id; its outcome is in the table (tjob.h). */
static long long
run(const char *command, const char *json)
{
    return t_job_run(&worker, daemon_id, command, json);
}

/* One text value of a query that must return one row (static buffer; "(null)" for NULL). */
static const char *
value(const char *sql)
{
    static char buf[512];
    PGresult *res = t_sql(t_db, sql, 0, NULL);

    ck_assert_msg(PQntuples(res) == 1, "%s: %d rows", sql, PQntuples(res));
    snprintf(buf, sizeof(buf), "%s", PQgetisnull(res, 0, 0) ? "(null)" : PQgetvalue(res, 0, 0));
    PQclear(res);
    return buf;
}

static const char *
hv_status(const char *name)
{
    return t_hv_status(drv, name);
}

/* A start reads the display; one listening on every address got a fresh password first, of the
 * 8 characters VNC takes, another at the next start; the stop clears it all. */
START_TEST(test_display_after_start)
{
    char first[64], host[256];

    ck_assert_str_eq(t_outcome(t_db, run("start", "{\"uid\": 1, \"name\": \"desk-net\"}")), "done");
    ck_assert_str_eq(value("SELECT display_type || ' ' || display_port || ' ' || coalesce(display_tls_port::text, '-')"
                           "  FROM domains WHERE name = 'desk-net'"), "vnc 5901 -");
    ck_assert(gethostname(host, sizeof(host)) == 0);
    ck_assert_str_ne(value("SELECT display_host FROM domains WHERE name = 'desk-net'"), "0.0.0.0");
    snprintf(first, sizeof(first), "%s", value("SELECT display_password FROM domains WHERE name = 'desk-net'"));
    ck_assert_int_eq((int)strlen(first), 8);
    /* the owner reads it through vmrq_display() */
    ck_assert_str_eq(value("SELECT type || ' ' || port || ' ' || (password = d.display_password)"
                           "  FROM domains d, vmrq_display(d.id, 1) WHERE d.name = 'desk-net'"), "vnc 5901 true");

    ck_assert_str_eq(t_outcome(t_db, run("force_shutdown", "{\"uid\": 1, \"name\": \"desk-net\"}")), "done");
    ck_assert_str_eq(value("SELECT coalesce(display_type, 'none') || coalesce(display_password, '')"
                           "  FROM domains WHERE name = 'desk-net'"), "none");
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM domains d, vmrq_display(d.id, 1) WHERE d.name = 'desk-net'",
                               0, NULL), 0);
    ck_assert_str_eq(t_outcome(t_db, run("start", "{\"uid\": 1, \"name\": \"desk-net\"}")), "done");
    ck_assert_str_ne(value("SELECT display_password FROM domains WHERE name = 'desk-net'"), first);

    /* the loopback only: no password; SPICE: its TLS port, its host, a longer password */
    ck_assert_str_eq(t_outcome(t_db, run("start", "{\"uid\": 1, \"name\": \"desk-local\"}")), "done");
    ck_assert_str_eq(value("SELECT display_host || ' ' || display_port || ' ' || coalesce(display_password, 'none')"
                           "  FROM domains WHERE name = 'desk-local'"), "127.0.0.1 5902 none");
    /* ... unless the configuration asks for one always (display_password_always = 1) */
    ck_assert_str_eq(t_outcome(t_db, run("force_shutdown", "{\"uid\": 1, \"name\": \"desk-local\"}")), "done");
    worker.display_password_always = true;
    ck_assert_str_eq(t_outcome(t_db, run("start", "{\"uid\": 1, \"name\": \"desk-local\"}")), "done");
    worker.display_password_always = false;
    ck_assert_str_eq(value("SELECT length(display_password) FROM domains WHERE name = 'desk-local'"), "8");
    ck_assert_str_eq(t_outcome(t_db, run("start", "{\"uid\": 2, \"name\": \"desk-spice\"}")), "done");
    ck_assert_str_eq(value("SELECT type || ' ' || host || ' ' || port || ' ' || tls_port || ' ' || length(password)"
                           "  FROM domains d, vmrq_display(d.id, 2) WHERE d.name = 'desk-spice'"),
                     "spice 10.0.0.7 5903 5904 16");
}
END_TEST

/* vmrq_display() is for the owner and operators; the portal cannot read the password column. */
START_TEST(test_display_rights)
{
    const char *portal = getenv("VMRQ_PORTAL_DB");
    char state[6], *msg;
    PGconn *p;
    PGresult *res;

    ck_assert_str_eq(t_outcome(t_db, run("start", "{\"uid\": 1, \"name\": \"desk-net\"}")), "done");
    msg = t_sql_error(t_db, "SELECT * FROM vmrq_display(1, 2)", 0, NULL, state);
    ck_assert_str_eq(msg, "display: user bob is not allowed to display desk-net");
    free(msg);
    msg = t_sql_error(t_db, "SELECT * FROM vmrq_display(99, 2)", 0, NULL, state);
    ck_assert_str_eq(msg, "display: no domain 99");
    free(msg);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM vmrq_display(1, 3)", 0, NULL), 1); /* olga */

    ck_assert_msg(portal != NULL, "VMRQ_PORTAL_DB is not set");
    p = PQconnectdb(portal);
    ck_assert_int_eq(PQstatus(p), CONNECTION_OK);
    res = PQexec(p, "SELECT display_password FROM domains");
    ck_assert_int_eq(PQresultStatus(res), PGRES_FATAL_ERROR);
    ck_assert_str_eq(PQresultErrorField(res, PG_DIAG_SQLSTATE), "42501");
    PQclear(res);
    res = PQexec(p, "SELECT display_port, viewer FROM domains WHERE name = 'desk-net'");
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), "5901");
    PQclear(res);
    res = PQexec(p, "SELECT length(password) FROM vmrq_display(1, 1)");
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), "8");
    PQclear(res);
    PQfinish(p);
}
END_TEST

/* Graphics events, fed through the driver's callback: domains.viewer and its time and address
 * follow, each event is kept with its address. */
START_TEST(test_viewer_follows_graphics_events)
{
    ck_assert_str_eq(t_outcome(t_db, run("start", "{\"uid\": 1, \"name\": \"desk-local\"}")), "done");
    ck_assert_str_eq(value("SELECT coalesce(viewer, 'none') FROM domains WHERE name = 'desk-local'"), "none");
    ck_assert_int_eq(kvm_events_feed_graphics(drv, "desk-local", VIR_DOMAIN_EVENT_GRAPHICS_CONNECT, "10.1.2.3", "40000"), 0);
    ck_assert_int_eq(kvm_events_feed_graphics(drv, "desk-local", VIR_DOMAIN_EVENT_GRAPHICS_INITIALIZE, "10.1.2.3", "40000"), 0);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domain_events WHERE domain = 'desk-local'"
                                        " AND event = 'graphics' AND detail = 'initialize'", 1, 2000), 1);
    ck_assert_str_eq(value("SELECT viewer || ' ' || viewer_address || ' ' || (viewer_since <= now())"
                           "  FROM domains WHERE name = 'desk-local'"), "connected 10.1.2.3:40000 true");
    ck_assert_str_eq(value("SELECT string_agg(detail || '@' || address, ',' ORDER BY id) FROM domain_events"
                           " WHERE domain = 'desk-local' AND event = 'graphics'"),
                     "connect@10.1.2.3:40000,initialize@10.1.2.3:40000");
    ck_assert_int_eq(kvm_events_feed_graphics(drv, "desk-local", VIR_DOMAIN_EVENT_GRAPHICS_DISCONNECT, "10.1.2.3", "40000"), 0);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domains WHERE name = 'desk-local' AND viewer = 'disconnected'",
                                  1, 2000), 1);
    /* no policy set: nothing enqueued */
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests WHERE command = 'shutdown'", 0, NULL), 0);
}
END_TEST

/* shutdown_disconnected: a start nobody connects to is followed by a shutdown at start + N; a
 * viewer connecting makes it moot; the viewer leaving enqueues another at now + N; coming back
 * makes that one moot too; the policy's shutdown finding a viewer back does nothing. */
START_TEST(test_shutdown_disconnected)
{
    long long first, second, late;

    PQclear(t_sql(t_db, "UPDATE domains SET shutdown_disconnected = 30 WHERE name = 'desk-local'", 0, NULL));
    ck_assert_str_eq(t_outcome(t_db, run("start", "{\"uid\": 1, \"name\": \"desk-local\"}")), "done");
    first = t_sql_int(t_db, "SELECT id FROM requests WHERE command = 'shutdown' AND status = 'requested'"
                            " AND args->>'policy' = 'unwatched'"
                            " AND at_time BETWEEN now() + interval '25 s' AND now() + interval '31 s'", 0, NULL);
    kvm_events_feed_graphics(drv, "desk-local", VIR_DOMAIN_EVENT_GRAPHICS_CONNECT, "10.1.2.3", "40000");
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE command = 'shutdown' AND status = 'cancelled'",
                                  1, 2000), 1);
    ck_assert_str_eq(t_outcome(t_db, first), "cancelled: moot: the viewer connected again");

    kvm_events_feed_graphics(drv, "desk-local", VIR_DOMAIN_EVENT_GRAPHICS_DISCONNECT, "10.1.2.3", "40000");
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE command = 'shutdown' AND status = 'requested'",
                                  1, 2000), 1);
    second = t_sql_int(t_db, "SELECT id FROM requests WHERE command = 'shutdown' AND status = 'requested'"
                             " AND args->>'policy' = 'unwatched' AND uid = 1"
                             " AND at_time BETWEEN now() + interval '25 s' AND now() + interval '31 s'", 0, NULL);
    kvm_events_feed_graphics(drv, "desk-local", VIR_DOMAIN_EVENT_GRAPHICS_CONNECT, "10.1.2.3", "40001");
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE command = 'shutdown' AND status = 'cancelled'",
                                  2, 2000), 2);
    ck_assert_str_eq(t_outcome(t_db, second), "cancelled: moot: the viewer connected again");

    /* the viewer came back before the policy's shutdown was in the table: it does nothing */
    late = run("shutdown", "{\"uid\": 1, \"name\": \"desk-local\", \"policy\": \"unwatched\"}");
    ck_assert_str_eq(t_outcome(t_db, late), "done");
    ck_assert_str_eq(hv_status("desk-local"), "running");
    /* and an ordinary shutdown is not moot for a viewer */
    ck_assert_str_eq(t_outcome(t_db, run("shutdown", "{\"uid\": 1, \"name\": \"desk-local\"}")), "done");
    ck_assert_str_eq(hv_status("desk-local"), "shutdown");
}
END_TEST

/* run_timeout: the start enqueues its shutdown at start + run_timeout, and the start's own moot
 * hook does not cancel it; the next start does (and enqueues its own). */
START_TEST(test_run_timeout)
{
    long long first;

    PQclear(t_sql(t_db, "UPDATE domains SET run_timeout = 3600 WHERE name = 'desk-net'", 0, NULL));
    ck_assert_str_eq(t_outcome(t_db, run("start", "{\"uid\": 1, \"name\": \"desk-net\"}")), "done");
    first = t_sql_int(t_db, "SELECT id FROM requests WHERE command = 'shutdown' AND status = 'requested'"
                            " AND args->>'policy' = 'run_timeout'"
                            " AND at_time BETWEEN now() + interval '3590 s' AND now() + interval '3601 s'", 0, NULL);
    ck_assert_str_eq(value("SELECT output->>'hooks' FROM requests WHERE command = 'start'"),
                     "[\"before:refuse_disabled_node\", \"before:refuse_base\", \"before:read_start_policy\", "
                     "\"before:set_display_password\", \"start\", \"after:sync_status\", "
                     "\"after:cancel_moot_shutdowns\", \"after:read_display\", \"after:run_timeout\", "
                     "\"after:shutdown_unwatched\"]");
    ck_assert_str_eq(t_outcome(t_db, run("force_shutdown", "{\"uid\": 1, \"name\": \"desk-net\"}")), "done");
    ck_assert_str_eq(t_outcome(t_db, run("start", "{\"uid\": 1, \"name\": \"desk-net\"}")), "done");
    ck_assert_int_eq(strncmp(t_outcome(t_db, first), "cancelled: moot: request", 24), 0);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests WHERE command = 'shutdown' AND status = 'requested'"
                                     " AND args->>'policy' = 'run_timeout'", 0, NULL), 1);
}
END_TEST

/* users.start_limit: a start beyond it is refused before the hypervisor is touched; operators
 * are exempt. */
START_TEST(test_start_limit)
{
    PQclear(t_sql(t_db, "UPDATE users SET start_limit = 1 WHERE name = 'alice'", 0, NULL));
    ck_assert_str_eq(t_outcome(t_db, run("start", "{\"uid\": 1, \"name\": \"desk-net\"}")), "done");
    ck_assert_str_eq(t_outcome(t_db, run("start", "{\"uid\": 1, \"name\": \"desk-local\"}")),
                     "failed: start: alice already runs 1 desktop, her limit");
    ck_assert_str_eq(hv_status("desk-local"), "shutdown");
    PQclear(t_sql(t_db, "UPDATE users SET start_limit = 2 WHERE name = 'alice'", 0, NULL));
    ck_assert_str_eq(t_outcome(t_db, run("start", "{\"uid\": 1, \"name\": \"desk-local\"}")), "done");
    ck_assert_str_eq(t_outcome(t_db, run("force_shutdown", "{\"uid\": 1, \"name\": \"desk-local\"}")), "done");
    /* two starts at once: an earlier start of desk-net (none runs now) still in a worker's
     * hands counts, so the later one is refused; once it is done, desk-net runs and counts */
    ck_assert_str_eq(t_outcome(t_db, run("force_shutdown", "{\"uid\": 1, \"name\": \"desk-net\"}")), "done");
    PQclear(t_sql(t_db, "UPDATE users SET start_limit = 1 WHERE name = 'alice'", 0, NULL));
    PQclear(t_sql(t_db, "SELECT vmrq_request('start', jsonb_build_object('uid', 1, 'name', 'desk-net'))", 0, NULL));
    PQclear(t_sql(t_db, "UPDATE requests SET status = 'working', started_at = now()"
                        " WHERE command = 'start' AND status = 'requested'", 0, NULL));
    ck_assert_str_eq(t_outcome(t_db, run("start", "{\"uid\": 1, \"name\": \"desk-local\"}")),
                     "failed: start: alice already runs 1 desktop, her limit");
    PQclear(t_sql(t_db, "UPDATE requests SET status = 'cancelled' WHERE status = 'working'", 0, NULL));
    ck_assert_str_eq(t_outcome(t_db, run("start", "{\"uid\": 1, \"name\": \"desk-local\"}")), "done");
    PQclear(t_sql(t_db, "UPDATE users SET start_limit = 0 WHERE name = 'olga'", 0, NULL));
    ck_assert_str_eq(t_outcome(t_db, run("start", "{\"uid\": 3, \"name\": \"desk-local\"}")), "done");
}
END_TEST

/* A refresh (as after a lost hypervisor connection) sets what it can know: the display of a
 * running domain, read again; a stopped one's is gone. */
START_TEST(test_refresh_sets_the_display)
{
    struct driver_dom *dom;

    ck_assert_str_eq(t_outcome(t_db, run("start", "{\"uid\": 1, \"name\": \"desk-net\"}")), "done");
    ck_assert_str_eq(t_outcome(t_db, run("start", "{\"uid\": 1, \"name\": \"desk-local\"}")), "done");
    PQclear(t_sql(t_db, "UPDATE domains SET display_type = NULL, display_port = NULL WHERE name = 'desk-net'", 0, NULL));
    dom = driver_lookup(drv, "desk-local", NULL);
    ck_assert_int_eq(driver_destroy(drv, dom), 0); /* behind vmrq's back, its event missed */
    driver_dom_free(drv, dom);
    PQclear(t_sql(t_db, "UPDATE domains SET status = 'running', status_seen = NULL WHERE name = 'desk-local'", 0, NULL));
    ck_assert_str_eq(t_outcome(t_db, run("refresh_vms", "{\"uid\": 3}")), "done");
    ck_assert_str_eq(value("SELECT display_type || ' ' || display_port || ' ' || length(display_password)"
                           "  FROM domains WHERE name = 'desk-net'"), "vnc 5901 8");
    ck_assert_str_eq(value("SELECT status || ' ' || coalesce(display_type, 'none') FROM domains WHERE name = 'desk-local'"),
                     "shutdown none");
}
END_TEST

/* The notifications of `conn` since the last call with `fresh`, one payload a line prefixed with
 * its channel (static), once they include `want` or timeout_ms have passed: a notification
 * reaches the listener a moment after the commit that a test's query already sees. */
static const char *
notifications(PGconn *conn, bool fresh, const char *want, int timeout_ms)
{
    static char buf[8192];
    static size_t len;
    PGnotify *n;

    if (fresh)
        len = 0, buf[0] = '\0';
    for (int waited = 0;; waited += 10) {
        ck_assert_int_eq(PQconsumeInput(conn), 1);
        while ((n = PQnotifies(conn))) {
            len += (size_t)snprintf(buf + len, len < sizeof(buf) ? sizeof(buf) - len : 0, "%s %s\n", n->relname,
                                    n->extra);
            if (len >= sizeof(buf))
                len = sizeof(buf) - 1;
            PQfreemem(n);
        }
        if (strstr(buf, want) || waited >= timeout_ms)
            return buf;
        struct timespec ts = { 0, 10 * 1000000L };
        nanosleep(&ts, NULL);
    }
}

/* Live updates: each transition of a request on vmrq_requests, each change of a domain's
 * status or viewer on vmrq_domains, as JSON; a portal's role may LISTEN. */
START_TEST(test_live_channels)
{
    PGconn *l = PQconnectdb(getenv("VMRQ_PORTAL_DB"));
    const char *got;
    char want[256];
    long long id;

    ck_assert_int_eq(PQstatus(l), CONNECTION_OK);
    PQclear(t_sql(l, "LISTEN vmrq_requests", 0, NULL));
    PQclear(t_sql(l, "LISTEN vmrq_domains", 0, NULL));
    id = run("start", "{\"uid\": 1, \"name\": \"desk-local\"}");
    ck_assert_str_eq(t_outcome(t_db, id), "done");
    /* the sink writes the started event on its own connection: wait for it */
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domain_events WHERE domain = 'desk-local'"
                                        " AND event = 'started'", 1, 2000), 1);
    for (int i = 0; i < 3; i++) {
        static const char *const st[] = { "requested", "working", "done" };
        snprintf(want, sizeof(want), "vmrq_requests {\"id\" : %lld, \"status\" : \"%s\", \"command\" : \"start\","
                                     " \"id_domain\" : 2, \"uid\" : 1}\n", id, st[i]);
        got = notifications(l, i == 0, want, 5000);
        ck_assert_msg(strstr(got, want), "no '%s' in:\n%s", want, got);
    }
    snprintf(want, sizeof(want), "vmrq_domains {\"id\" : 2, \"name\" : \"desk-local\", \"status\" : \"running\","
                                 " \"viewer\" : null, \"id_owner\" : 1}\n");
    got = notifications(l, false, want, 5000);
    ck_assert_msg(strstr(got, want), "%s", got);
    kvm_events_feed_graphics(drv, "desk-local", VIR_DOMAIN_EVENT_GRAPHICS_CONNECT, "10.1.2.3", "40000");
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domains WHERE viewer = 'connected'", 1, 2000), 1);
    snprintf(want, sizeof(want), "vmrq_domains {\"id\" : 2, \"name\" : \"desk-local\", \"status\" : \"running\","
                                 " \"viewer\" : \"connected\", \"id_owner\" : 1}\n");
    got = notifications(l, true, want, 5000);
    ck_assert_msg(strstr(got, want), "%s", got);
    PQfinish(l);
}
END_TEST

/* The command line: vmrq domain set, vmrq user set, vmrq display (text, JSON, --vv); each bad
 * input one line, exit 2, nothing changed. */
START_TEST(test_cli)
{
    char vv[] = "/tmp/vmrq-test-vv.XXXXXX", buf[512];
    struct t_cli r;
    FILE *f;
    size_t n;
    int fd;

    r = t_cli_run("domain", "set", "desk-net", "shutdown_disconnected=2", "run_timeout=none", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    t_cli_free(&r);
    ck_assert_str_eq(value("SELECT shutdown_disconnected || ' ' || coalesce(run_timeout::text, '-') FROM domains"
                           " WHERE name = 'desk-net'"), "2 -");
    r = t_cli_run("domain", "set", "desk-net", "shutdown_disconnected=1", "bogus=1", NULL);
    ck_assert_int_eq(r.status, 2);
    ck_assert_int_eq(t_lines(r.err), 1);
    ck_assert_ptr_nonnull(strstr(r.err, "unknown key 'bogus'"));
    t_cli_free(&r);
    r = t_cli_run("domain", "set", "desk-net", "run_timeout=0", NULL);
    ck_assert_int_eq(r.status, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "run_timeout"));
    t_cli_free(&r);
    ck_assert_str_eq(value("SELECT shutdown_disconnected FROM domains WHERE name = 'desk-net'"), "2");
    r = t_cli_run("user", "set", "alice", "start_limit=3", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    t_cli_free(&r);
    ck_assert_str_eq(value("SELECT start_limit FROM users WHERE name = 'alice'"), "3");
    r = t_cli_run("user", "set", "nobody", "start_limit=3", NULL);
    ck_assert_int_eq(r.status, 2);
    ck_assert_str_eq(r.err, "vmrq user set: no user 'nobody'\n");
    t_cli_free(&r);

    r = t_cli_run("display", "desk-net", NULL);
    ck_assert_int_eq(r.status, 1);
    ck_assert_str_eq(r.err, "vmrq: display: desk-net has no display (it is shutdown)\n");
    t_cli_free(&r);
    ck_assert_str_eq(t_outcome(t_db, run("start", "{\"uid\": 1, \"name\": \"desk-net\"}")), "done");
    r = t_cli_run("display", "desk-net", "--json", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "\"port\": 5901"));
    t_cli_free(&r);
    ck_assert((fd = mkstemp(vv)) >= 0);
    close(fd);
    r = t_cli_run("display", "desk-net", "--vv", vv, NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    t_cli_free(&r);
    ck_assert_ptr_nonnull(f = fopen(vv, "r"));
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    unlink(vv);
    snprintf(vv, sizeof(vv), "password=%s\n", value("SELECT display_password FROM domains WHERE name = 'desk-net'"));
    ck_assert_msg(strncmp(buf, "[virt-viewer]\ntype=vnc\n", 23) == 0 && strstr(buf, "port=5901\n") && strstr(buf, vv),
                  "%s", buf);
}
END_TEST

Suite *
display_suite(void)
{
    Suite *s = suite_create("display");
    TCase *tc = tcase_create("display");

    tcase_set_tags(tc, "db libvirt");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_display_after_start);
    tcase_add_test(tc, test_display_rights);
    tcase_add_test(tc, test_viewer_follows_graphics_events);
    tcase_add_test(tc, test_shutdown_disconnected);
    tcase_add_test(tc, test_run_timeout);
    tcase_add_test(tc, test_start_limit);
    tcase_add_test(tc, test_cli);
    tcase_add_test(tc, test_live_channels);
    tcase_add_test(tc, test_refresh_sets_the_display);
    suite_add_tcase(s, tc);
    return s;
}
