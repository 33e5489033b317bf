/*
 * check_domain.c - the commands that act on virtual machines, in-process on libvirt's test
 * driver loaded with etc/demo-hypervisor.xml (a fresh copy per test): every command in every
 * domain state, the rights matrix, hooks (order, veto, the follow-up force_shutdown, moot
 * shutdowns), refresh_vms after changes behind vmrq's back; then, with real daemons, node
 * affinity and the whole shutdown -> force_shutdown story.
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "claim.h"
#include "dispatch.h"
#include "driver.h"
#include "events.h"
#include "tjob.h"
#include "tutil.h"

#define DEMO_XML "etc/demo-hypervisor.xml"

enum { ALICE = 1, BOB, CAROL, OLGA /* operator */, ADAM /* admin */ };

static struct driver *drv;
static struct vmrqd_worker worker;
static int daemon_id;
static char uri[PATH_MAX + 64];

/* The demo's users and the domains as refresh_vms finds them, owners set as the demo sets them. */
static void
setup(void)
{
    char cwd[PATH_MAX];

    t_db_setup();
    ck_assert(getcwd(cwd, sizeof(cwd)) != NULL);
    snprintf(uri, sizeof(uri), "test://%s/%s", cwd, DEMO_XML);
    drv = driver_open(&driver_kvm_ops, uri);
    ck_assert_msg(drv != NULL, "%s", driver_error_message());
    memset(&worker, 0, sizeof(worker));
    worker.conninfo = getenv("VMRQ_DB");
    worker.drv = drv;
    worker.node = "demo";
    PQclear(t_sql(t_db, "INSERT INTO users (name, is_operator, is_admin) VALUES ('alice', false, false),"
                        " ('bob', false, false), ('carol', false, false), ('olga', true, false),"
                        " ('adam', false, true)", 0, NULL));
    PQclear(t_sql(t_db, "INSERT INTO nodes (name, uri) VALUES ('demo', 'test:///demo')", 0, NULL));
    daemon_id = (int)t_sql_int(t_db, "INSERT INTO daemons (node, hostname, pid, version)"
                                     " VALUES ('demo', 'test', 1, 'test') RETURNING id", 0, NULL);
}

static void
teardown(void)
{
    PQfinish(worker.conn);
    driver_close(drv);
    t_db_teardown();
}

/* The job, its outcome not written yet: the caller's (tjob.h). */
static struct vmrqd_job *
run_unwritten(const char *command, const char *json)
{
    return t_job_run_unwritten(&worker, daemon_id, command, json);
}

/* The request's id; its outcome is in the table (tjob.h). */
static long long
run(const char *command, const char *json)
{
    return t_job_run(&worker, daemon_id, command, json);
}

/* Status and error of request `id` as "done" or "failed: why" (static buffer). */
static const char *
outcome(long long id)
{
    return t_outcome(t_db, id);
}

/* Powers `name` off on the hypervisor behind vmrq's back, as virsh destroy would. */
static void
virsh_destroy(const char *name)
{
    struct driver_dom *dom = driver_lookup(drv, name, NULL);

    ck_assert_ptr_nonnull(dom);
    ck_assert_int_eq(driver_destroy(drv, dom), 0);
    driver_dom_free(drv, dom);
}

/* domains.status of `name`, and what the hypervisor says of it (static buffers). */
static const char *
db_status(const char *name)
{
    static char buf[64];
    const char *params[1] = { name };
    PGresult *res = t_sql(t_db, "SELECT status FROM domains WHERE name = $1", 1, params);

    snprintf(buf, sizeof(buf), "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "(no row)");
    PQclear(res);
    return buf;
}

static const char *
hv_status(const char *name)
{
    return t_hv_status(drv, name);
}

static void
refresh_and_own(void)
{
    ck_assert_str_eq(outcome(run("refresh_vms", "{\"uid\": 4}")), "done");
    PQclear(t_sql(t_db, "UPDATE domains SET id_owner = u.id FROM users u WHERE domains.name = 'desk-' || u.name",
                  0, NULL));
}

/* A lifecycle event of `name`, as the driver's event thread hands it to the sink. */
static void
event(struct events *ev, const char *name, const char *event, const char *detail, const char *status)
{
    events_on_domain(ev, &(struct dom_event){ .name = name, .uuid = "", .event = event, .detail = detail,
                                              .status = status });
}

/* Each command on a domain in each state: running (desk-alice), paused (desk-carol), shut off
 * (class-01), hibernated (class-02). "=STATE" means done, leaving that state; anything else is
 * the start of the refusal. */
static const struct {
    const char *command;
    const char *want[4];
} matrix[] = {
    /* command          running                paused                  shut off                  hibernated */
    { "start",          { "=running",          "=running",             "=running",               "=running" } },
    { "shutdown",       { "=shutdown",         "=shutdown",            "=shutdown",              "=hibernated" } },
    { "force_shutdown", { "=shutdown",         "=shutdown",            "=shutdown",              "=hibernated" } },
    { "reboot",         { "=running",          "failed: reboot: desk-carol is not running (it is paused)",
                          "failed: reboot: class-01 is not running (it is shutdown)",
                          "failed: reboot: class-02 is not running (it is hibernated)" } },
    { "force_reboot",   { "=running",          "=paused",              "failed: force_reboot: class-01 is not running",
                          "failed: force_reboot: class-02 is not running" } },
    { "pause",          { "=paused",           "=paused",              "failed: pause: class-01 is not running",
                          "failed: pause: class-02 is not running" } },
    { "resume",         { "=running",          "=running",             "failed: resume: class-01 is not paused",
                          "failed: resume: class-02 is not paused" } },
    { "hibernate",      { "=hibernated",       "=hibernated",          "failed: hibernate: class-01 is not running",
                          "=hibernated" } },
    { "set_time",       { "=running",          "failed: set_time: desk-carol is not running",
                          "failed: set_time: class-01 is not running", "failed: set_time: class-02 is not running" } },
    { "refresh_machine", { "=running",         "=paused",              "=shutdown",              "=hibernated" } },
    /* libvirt's test driver answers for a guest agent (virDomainGetTime) */
    { "ping_agent",     { "=running",          "failed: ping_agent: desk-carol is not running",
                          "failed: ping_agent: class-01 is not running", "failed: ping_agent: class-02 is not running" } },
};

static const char *const state_domain[4] = { "desk-alice", "desk-carol", "class-01", "class-02" };

START_TEST(test_every_command_in_every_state)
{
    int c = _i / 4, s = _i % 4;
    const char *dom = state_domain[s], *want = matrix[c].want[s];
    char args[128];
    long long id;

    refresh_and_own();
    snprintf(args, sizeof(args), "{\"uid\": %d, \"name\": \"%s\"}", OLGA, dom);
    id = run(matrix[c].command, args);
    if (want[0] == '=') {
        ck_assert_msg(strcmp(outcome(id), "done") == 0, "%s %s: %s", matrix[c].command, dom, outcome(id));
        ck_assert_msg(strcmp(hv_status(dom), want + 1) == 0, "%s %s: the hypervisor says %s, want %s",
                      matrix[c].command, dom, hv_status(dom), want + 1);
    } else {
        ck_assert_msg(strncmp(outcome(id), want, strlen(want)) == 0, "%s %s: got \"%s\", want \"%s...\"",
                      matrix[c].command, dom, outcome(id), want);
    }
    /* whatever happened, the table tells what the hypervisor says */
    ck_assert_str_eq(db_status(dom), hv_status(dom));
}
END_TEST

/* Who may shut alice's desktop down: alice, an operator, an admin; not bob, not carol, not a
 * user that does not exist. A refusal touches nothing. */
START_TEST(test_rights_matrix)
{
    static const struct { int uid; const char *want; } who[] = {
        { ALICE, "done" },
        { BOB, "failed: user bob is not allowed to shutdown desk-alice" },
        { CAROL, "failed: user carol is not allowed to shutdown desk-alice" },
        { OLGA, "done" },
        { ADAM, "done" },
        { 99, "failed: no user 99" },
    };
    char args[64];
    long long id;

    refresh_and_own();
    snprintf(args, sizeof(args), "{\"uid\": %d, \"name\": \"desk-alice\"}", who[_i].uid);
    id = run("shutdown", args);
    ck_assert_str_eq(outcome(id), who[_i].want);
    ck_assert_str_eq(hv_status("desk-alice"), strcmp(who[_i].want, "done") == 0 ? "shutdown" : "running");
    ck_assert_str_eq(db_status("desk-alice"), hv_status("desk-alice"));
    /* the same rule for start */
    id = run("start", "{\"uid\": 2, \"name\": \"class-01\"}");
    ck_assert_str_eq(outcome(id), "failed: user bob is not allowed to start class-01");
}
END_TEST

START_TEST(test_no_domain)
{
    refresh_and_own();
    ck_assert_str_eq(outcome(run("start", "{\"uid\": 4, \"name\": \"desk-nobody\"}")), "failed: no domain 'desk-nobody'");
    ck_assert_str_eq(outcome(run("start", "{\"uid\": 4, \"id_domain\": 99}")), "failed: no domain '99'");
    /* in the table but not on the hypervisor: missing */
    PQclear(t_sql(t_db, "INSERT INTO domains (name) VALUES ('ghost')", 0, NULL));
    ck_assert_str_eq(outcome(run("shutdown", "{\"uid\": 4, \"name\": \"ghost\"}")), "failed: no domain 'ghost'");
    ck_assert_str_eq(db_status("ghost"), "missing");
}
END_TEST

/* The worker's database session lost under a request (PostgreSQL restarted, the session
 * terminated): nothing was done, so the request goes back to the queue in its place, charged
 * neither a retry nor an attempt, and runs once the worker has connected again. */
START_TEST(test_database_lost_goes_back)
{
    static const int all[CLAIM_LANES] = { 10, 10, 10, 10 };
    struct vmrqd_job *job;
    char pid[16], sql[128];
    const char *params[1] = { pid };
    PGresult *res;
    long long id;

    refresh_and_own(); /* the worker is connected */
    snprintf(pid, sizeof(pid), "%d", PQbackendPID(worker.conn));
    ck_assert_int_eq(t_sql_int(t_db, "SELECT pg_terminate_backend($1::int)::int", 1, params), 1);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", pid);
    ck_assert_int_eq(t_wait_value(t_db, sql, 0, 10000), 0);
    job = run_unwritten("start", "{\"uid\": 4, \"name\": \"class-01\"}"); /* no retry */
    ck_assert_msg(job->outcome == JOB_UNREACHED, "outcome %d: %s", job->outcome, job->error);
    id = job->id;
    ck_assert_int_eq(claim_complete(t_db, daemon_id, job, 1000, NULL), 0);
    job_free(job);
    res = t_sql(t_db, "SELECT status || ' ' || retry || ' ' || attempts || ' ' || (started_at IS NULL),"
                      "       error LIKE 'database: %' FROM requests WHERE command = 'start'", 0, NULL);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), "requested 0 0 true");
    ck_assert_str_eq(PQgetvalue(res, 0, 1), "t");
    PQclear(res);
    ck_assert_str_eq(hv_status("class-01"), "shutdown");

    ck_assert_int_eq(claim_jobs(t_db, daemon_id, "demo", all, &job, NULL), 1);
    ck_assert_int_eq(job->id, id);
    ck_assert_int_eq(dispatch_prepare(job), 0);
    dispatch_run(job, &worker);
    ck_assert_int_eq(claim_complete(t_db, daemon_id, job, 1000, NULL), 0);
    job_free(job);
    ck_assert_str_eq(outcome(id), "done");
    ck_assert_int_eq(t_sql_int(t_db, "SELECT attempts FROM requests WHERE command = 'start'", 0, NULL), 1);
    ck_assert_str_eq(hv_status("class-01"), "running");
}
END_TEST

/* Hooks run in table order around the operation; a before hook vetoes. */
START_TEST(test_hooks_order_and_veto)
{
    PGresult *res;
    long long id;

    refresh_and_own();
    id = run("shutdown", "{\"uid\": 3, \"name\": \"desk-carol\"}");
    ck_assert_str_eq(outcome(id), "done");
    res = t_sql(t_db, "SELECT output->>'hooks' FROM requests WHERE command = 'shutdown'", 0, NULL);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), "[\"before:refuse_disabled_node\", \"before:skip_if_watched\", \"before:resume_paused\", "
                                            "\"shutdown\", \"after:sync_status\", \"after:force_after_timeout\"]");
    PQclear(res);
    ck_assert_str_eq(hv_status("desk-carol"), "shutdown"); /* resumed first, then shut down */

    PQclear(t_sql(t_db, "UPDATE nodes SET enabled = false", 0, NULL));
    id = run("pause", "{\"uid\": 1, \"name\": \"desk-alice\"}");
    ck_assert_str_eq(outcome(id), "failed: pause: the node of desk-alice is disabled");
    ck_assert_str_eq(hv_status("desk-alice"), "running");
}
END_TEST

/* A guest that ignores the power button: the shutdown enqueues force_shutdown at now + timeout
 * for the same user and domain; the force_shutdown, when it runs, leaves the domain off. A guest
 * that went down needs no follow-up. */
START_TEST(test_force_shutdown_follows)
{
    PGresult *res;

    refresh_and_own();
    ck_assert_str_eq(outcome(run("shutdown", "{\"uid\": 2, \"name\": \"desk-bob\", \"timeout\": 30}")), "done");
    ck_assert_str_eq(hv_status("desk-bob"), "running");
    /* the whole timeout, counted from the shutdown: not from the start of its second */
    res = t_sql(t_db, "SELECT f.uid, f.args->>'id_domain', f.status, f.at_time >= s.started_at + interval '30 s',"
                      "       f.at_time < s.finished_at + interval '31 s', f.at_time::text"
                      "  FROM requests f, requests s WHERE f.command = 'force_shutdown' AND s.command = 'shutdown'",
                0, NULL);
    ck_assert_int_eq(PQntuples(res), 1);
    ck_assert_int_eq(atoi(PQgetvalue(res, 0, 0)), BOB);
    ck_assert_int_eq(atoi(PQgetvalue(res, 0, 1)), (int)t_sql_int(t_db, "SELECT id FROM domains WHERE name = 'desk-bob'", 0, NULL));
    ck_assert_str_eq(PQgetvalue(res, 0, 2), "requested");
    ck_assert_msg(PQgetvalue(res, 0, 3)[0] == 't', "force_shutdown due at %s: less than 30 s after the shutdown",
                  PQgetvalue(res, 0, 5));
    ck_assert_msg(PQgetvalue(res, 0, 4)[0] == 't', "force_shutdown due at %s: too late", PQgetvalue(res, 0, 5));
    PQclear(res);
    ck_assert_str_eq(outcome(run("force_shutdown", "{\"uid\": 2, \"name\": \"desk-bob\"}")), "done");
    ck_assert_str_eq(hv_status("desk-bob"), "shutdown");

    ck_assert_str_eq(outcome(run("shutdown", "{\"uid\": 1, \"name\": \"desk-alice\", \"timeout\": 30}")), "done");
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests WHERE command = 'force_shutdown'"
                                     " AND args->>'id_domain' = (SELECT id::text FROM domains WHERE name = 'desk-alice')",
                               0, NULL), 0);
}
END_TEST

/* A start makes the pending shutdowns of its domain moot; it cancels them. */
START_TEST(test_start_cancels_moot_shutdowns)
{
    long long force;

    refresh_and_own();
    force = t_sql_int(t_db, "SELECT vmrq_request('force_shutdown', jsonb_build_object('uid', 4, 'name', 'class-01',"
                            " 'at', extract(epoch FROM now())::bigint + 60))", 0, NULL);
    ck_assert_str_eq(outcome(run("start", "{\"uid\": 4, \"name\": \"class-01\"}")), "done");
    ck_assert_str_eq(hv_status("class-01"), "running");
    ck_assert_msg(strncmp(outcome(force), "cancelled: moot: request", 24) == 0, "%s", outcome(force));
}
END_TEST

/* shutdown_start: shutdown, force after timeout if needed, then start: as chained follow-ups. */
START_TEST(test_shutdown_start)
{
    long long id;

    refresh_and_own();
    id = run("shutdown_start", "{\"uid\": 2, \"name\": \"desk-bob\", \"timeout\": 10}");
    ck_assert_str_eq(outcome(id), "done");
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests s JOIN requests f"
                                     "  ON f.id = s.after_request AND f.command = 'force_shutdown'"
                                     " WHERE s.command = 'start' AND s.status = 'waiting'", 0, NULL), 1);
    /* a guest that obeys: the start follows directly */
    id = run("shutdown_start", "{\"uid\": 1, \"name\": \"desk-alice\"}");
    ck_assert_str_eq(outcome(id), "done");
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests WHERE command = 'start'"
                                     " AND args->>'id_domain' = (SELECT id::text FROM domains WHERE name = 'desk-alice')"
                                     " AND status = 'requested' AND after_request IS NULL", 0, NULL), 1);
    ck_assert_str_eq(hv_status("desk-alice"), "shutdown");
}
END_TEST

/* A hypervisor domain whose name vmrq cannot hold (101 characters) is not adopted: refresh_vms
 * records it as a conflict (vmrq domain list --conflicts, with why) and counts it, every time. */
START_TEST(test_refresh_vms_leaves_out_a_name_it_cannot_hold)
{
    char name[102];
    struct driver_dom *dom;
    struct t_cli r;
    PGresult *res;

    memset(name, 'x', 101);
    name[101] = '\0';
    refresh_and_own();
    dom = driver_clone(drv, "<domain type='test'><name>t</name><memory>65536</memory><os><type>hvm</type></os>"
                            "<devices/></domain>", name, "default");
    ck_assert_msg(dom != NULL, "%s", driver_error_message());
    driver_dom_free(drv, dom);
    for (int i = 0; i < 2; i++) {
        ck_assert_str_eq(outcome(run("refresh_vms", "{}")), "done");
        res = t_sql(t_db, "SELECT output->>'conflicts' FROM requests WHERE command = 'refresh_vms' ORDER BY id DESC"
                          " LIMIT 1", 0, NULL);
        ck_assert_str_eq(PQgetvalue(res, 0, 0), "1");
        PQclear(res);
    }
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM domains WHERE name LIKE 'xxxx%'", 0, NULL), 0);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM domain_conflicts WHERE char_length(name) = 101", 0, NULL), 1);
    r = t_cli_run("domain", "list", "--conflicts", NULL);
    ck_assert_msg(r.status == 0 && strstr(r.out, "name vmrq cannot hold"), "%d %s %s", r.status, r.out, r.err);
    t_cli_free(&r);
}
END_TEST

/* refresh_vms brings the table in line after changes behind vmrq's back. */
START_TEST(test_refresh_vms_after_changes_behind_our_back)
{
    PGresult *res;

    refresh_and_own();
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM domains", 0, NULL), 6);
    ck_assert_str_eq(db_status("class-02"), "hibernated");
    virsh_destroy("desk-alice");
    PQclear(t_sql(t_db, "INSERT INTO domains (name, id_node, status) VALUES ('ghost', 1, 'running')", 0, NULL));
    PQclear(t_sql(t_db, "UPDATE domains SET status = 'paused' WHERE name = 'lab-server'", 0, NULL));

    ck_assert_str_eq(outcome(run("refresh_vms", "{}")), "done");
    ck_assert_str_eq(db_status("desk-alice"), "shutdown");
    ck_assert_str_eq(db_status("lab-server"), "running");
    ck_assert_str_eq(db_status("ghost"), "missing");
    res = t_sql(t_db, "SELECT output::text FROM requests WHERE command = 'refresh_vms' ORDER BY id DESC LIMIT 1", 0, NULL);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), "{\"held\": 0, \"added\": 0, \"missing\": 1, \"conflicts\": 0,"
                                             " \"refreshed\": 6}");
    PQclear(res);
    /* owners survive a refresh */
    ck_assert_int_eq(t_sql_int(t_db, "SELECT id_owner FROM domains WHERE name = 'desk-alice'", 0, NULL), ALICE);
}
END_TEST

/* A row another session holds (an operator's psql left in a transaction) does not keep
 * refresh_vms waiting: the rows it can take are brought in line, that one is left as it is and
 * counted, and the next refresh, once it is free, takes it. */
START_TEST(test_refresh_vms_leaves_a_held_row_to_the_next)
{
    PGconn *holder = t_connect();
    PGresult *res;

    refresh_and_own();
    virsh_destroy("desk-alice");
    virsh_destroy("desk-bob");
    PQclear(t_sql(holder, "BEGIN", 0, NULL));
    PQclear(t_sql(holder, "SELECT 1 FROM domains WHERE name = 'desk-bob' FOR UPDATE", 0, NULL));
    ck_assert_str_eq(outcome(run("refresh_vms", "{}")), "done");
    ck_assert_str_eq(db_status("desk-alice"), "shutdown");
    ck_assert_str_eq(db_status("desk-bob"), "running");
    res = t_sql(t_db, "SELECT output->>'held', output->>'refreshed' FROM requests WHERE command = 'refresh_vms'"
                      " ORDER BY id DESC LIMIT 1", 0, NULL);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), "1");
    ck_assert_str_eq(PQgetvalue(res, 0, 1), "5");
    PQclear(res);
    PQclear(t_sql(holder, "COMMIT", 0, NULL));
    ck_assert_str_eq(outcome(run("refresh_vms", "{}")), "done");
    ck_assert_str_eq(db_status("desk-bob"), "shutdown");
    ck_assert_int_eq(t_sql_int(t_db, "SELECT (output->>'held')::int FROM requests WHERE command = 'refresh_vms'"
                                     " ORDER BY id DESC LIMIT 1", 0, NULL), 0);
    PQfinish(holder);
}
END_TEST

/* The hypervisor's lifecycle events, straight into the table: a shutdown makes the pending
 * force_shutdown moot, a destroy behind vmrq's back shows at once, an unknown domain appears. */
START_TEST(test_events_follow_the_hypervisor)
{
    struct events *ev = events_new(getenv("VMRQ_DB"), "demo");
    struct driver_dom *dom;
    long long force;

    ck_assert_int_eq(driver_events(drv, events_on_domain, events_on_connection, ev), 0);
    refresh_and_own();
    force = t_sql_int(t_db, "SELECT vmrq_request('force_shutdown', jsonb_build_object('uid', 1, 'name', 'desk-alice',"
                            " 'at', extract(epoch FROM now())::bigint + 60))", 0, NULL);
    ck_assert_str_eq(outcome(run("shutdown", "{\"uid\": 1, \"name\": \"desk-alice\"}")), "done");
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domain_events WHERE domain = 'desk-alice'"
                                        " AND event = 'stopped' AND detail = 'shutdown'", 1, 2000), 1);
    ck_assert_str_eq(outcome(force), "done");
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests WHERE command = 'force_shutdown'"
                                     " AND output->>'note' = 'domain already down' AND started_at IS NULL", 0, NULL), 1);

    virsh_destroy("desk-bob");
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domains WHERE name = 'desk-bob' AND status = 'shutdown'",
                                  1, 1000), 1);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM domain_events WHERE domain = 'desk-bob'"
                                     " AND event = 'stopped' AND detail = 'destroyed'", 0, NULL), 1);

    /* a domain the table does not know (any more) comes back with its state */
    PQclear(t_sql(t_db, "DELETE FROM domains WHERE name = 'lab-server'", 0, NULL));
    dom = driver_lookup(drv, "lab-server", NULL);
    ck_assert_int_eq(driver_suspend(drv, dom), 0);
    driver_dom_free(drv, dom);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domains WHERE name = 'lab-server' AND status = 'paused'",
                                  1, 1000), 1);
    driver_close(drv); /* unsubscribes before the sink goes */
    drv = NULL;
    events_free(ev);
}
END_TEST

/* The completion writes the state its worker read, unless the event sink has meanwhile recorded
 * an event received after that reading: the events are newer, and stay. */
START_TEST(test_newer_event_wins_over_the_completion)
{
    struct events *ev = events_new(getenv("VMRQ_DB"), "demo");
    struct vmrqd_job *job;

    refresh_and_own();
    job = run_unwritten("pause", "{\"uid\": 1, \"name\": \"desk-alice\"}");
    ck_assert_str_eq(job->sync.status, "paused");
    /* before the outcome is written, desk-alice is resumed behind vmrq's back, and the sink
     * records it */
    event(ev, "desk-alice", "resumed", "unpaused", "running");
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domain_events WHERE domain = 'desk-alice'", 1, 5000), 1);
    ck_assert_int_eq(claim_complete(t_db, daemon_id, job, 1000, NULL), 0);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests WHERE command = 'pause' AND status = 'done'", 0, NULL), 1);
    ck_assert_str_eq(db_status("desk-alice"), "running");
    job_free(job);

    /* an event from before the reading does not stop it */
    event(ev, "desk-bob", "resumed", "unpaused", "running");
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domain_events WHERE domain = 'desk-bob'", 1, 5000), 1);
    job = run_unwritten("pause", "{\"uid\": 2, \"name\": \"desk-bob\"}");
    ck_assert_int_eq(claim_complete(t_db, daemon_id, job, 1000, NULL), 0);
    ck_assert_str_eq(db_status("desk-bob"), "paused");
    job_free(job);
    events_free(ev);
}
END_TEST

/* Whoever writes a status (event sink, completion, refresh_vms) leaves one observed later than
 * its own reading: here, a status observed "in an hour" outlives a refresh and a completion. */
START_TEST(test_older_reading_leaves_a_newer_status)
{
    refresh_and_own();
    PQclear(t_sql(t_db, "UPDATE domains SET status = 'crashed', status_seen = now() + interval '1 hour'"
                        " WHERE name IN ('desk-alice', 'desk-bob')", 0, NULL));
    ck_assert_str_eq(outcome(run("refresh_vms", "{\"uid\": 4}")), "done");
    ck_assert_str_eq(db_status("desk-alice"), "crashed");
    ck_assert_str_eq(outcome(run("pause", "{\"uid\": 2, \"name\": \"desk-bob\"}")), "done");
    ck_assert_str_eq(db_status("desk-bob"), "crashed");
    ck_assert_str_eq(hv_status("desk-bob"), "paused");
    /* and once the hour has passed, the next reading is written */
    PQclear(t_sql(t_db, "UPDATE domains SET status_seen = now() - interval '1 hour' WHERE name = 'desk-alice'", 0, NULL));
    ck_assert_str_eq(outcome(run("refresh_vms", "{\"uid\": 4}")), "done");
    ck_assert_str_eq(db_status("desk-alice"), "running");
}
END_TEST

/* Waits until `n` backends wait for a lock. */
static void
wait_lock_waiters(int n)
{
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
                                  n, 5000), n);
}

static long long
count(const char *sql)
{
    return t_sql_int(t_db, sql, 0, NULL);
}

/* Waits until the event sink has written a batch and is idle: not waiting for a row. */
static void
wait_sink_idle(void)
{
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'vmrqd events'"
                                        " AND state = 'idle' AND query LIKE 'WITH ev AS%'", 1, 5000), 1);
}

/* The same when the two meet on the domain's row: another session holds it. Neither the sink
 * nor the completion waits behind it (vmrqd's loop would stop): the sink keeps its event, the
 * completion leaves the request working, deferred, and writes nothing of it. Once the row is
 * free, whichever is written first, the completion's older reading must not go over the event.
 * (A guest shut down through its agent stayed 'shutting_down': the sink wrote "stopped" while
 * the shutdown's completion waited for the row.) */
START_TEST(test_event_committed_while_the_completion_is_deferred_wins)
{
    struct events *ev = events_new(getenv("VMRQ_DB"), "demo");
    PGconn *holder = t_connect();
    struct vmrqd_job *job;

    refresh_and_own();
    job = run_unwritten("pause", "{\"uid\": 1, \"name\": \"desk-alice\"}");
    ck_assert_str_eq(job->sync.status, "paused");
    /* someone holds the row; desk-alice is resumed behind vmrq's back after the worker's
     * reading, and the sink keeps the event for later */
    PQclear(t_sql(holder, "BEGIN", 0, NULL));
    PQclear(t_sql(holder, "SELECT 1 FROM domains WHERE name = 'desk-alice' FOR UPDATE", 0, NULL));
    event(ev, "desk-alice", "resumed", "unpaused", "running");
    wait_sink_idle();
    ck_assert_int_eq(claim_complete(t_db, daemon_id, job, 1000, NULL), 0);
    ck_assert(job->deferred);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE command = 'pause' AND status = 'working'"), 1);
    /* still held, still deferred; and nothing of either is written */
    ck_assert_int_eq(claim_complete(t_db, daemon_id, job, 1000, NULL), 0);
    ck_assert(job->deferred);
    ck_assert_int_eq(count("SELECT count(*) FROM domain_events WHERE domain = 'desk-alice'"), 0);
    wait_lock_waiters(0);
    PQclear(t_sql(holder, "COMMIT", 0, NULL));
    ck_assert_int_eq(claim_complete(t_db, daemon_id, job, 1000, NULL), 0);
    ck_assert(!job->deferred);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domain_events WHERE domain = 'desk-alice'"
                                        " AND detail = 'unpaused'", 1, 5000), 1);
    events_free(ev);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE command = 'pause' AND status = 'done'"), 1);
    ck_assert_str_eq(db_status("desk-alice"), "running");
    job_free(job);
    PQfinish(holder);
}
END_TEST

/* An operator's psql holds desk-bob's row (SELECT ... FOR UPDATE, left in a transaction). The
 * event sink does not queue behind it: the other domains' events are written as they come;
 * desk-bob's wait, with those of desk-bob that come after them, and are written in the order
 * they came once the row is free. A sink stopping while a row is held does not hang on it. */
START_TEST(test_held_domain_row_holds_up_only_its_events)
{
    struct events *ev = events_new(getenv("VMRQ_DB"), "demo");
    PGconn *holder = t_connect();
    PGresult *res;
    char *log;

    refresh_and_own();
    PQclear(t_sql(holder, "BEGIN", 0, NULL));
    PQclear(t_sql(holder, "SELECT 1 FROM domains WHERE name = 'desk-bob' FOR UPDATE", 0, NULL));
    event(ev, "desk-bob", "suspended", "paused", "paused");
    event(ev, "desk-alice", "suspended", "paused", "paused");
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domain_events WHERE domain = 'desk-alice'", 1, 5000), 1);
    event(ev, "desk-bob", "resumed", "unpaused", "running");
    event(ev, "desk-carol", "resumed", "unpaused", "running");
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domain_events WHERE domain = 'desk-carol'", 1, 5000), 1);
    ck_assert_str_eq(db_status("desk-alice"), "paused");
    ck_assert_str_eq(db_status("desk-carol"), "running");
    ck_assert_int_eq(count("SELECT count(*) FROM domain_events WHERE domain = 'desk-bob'"), 0);
    wait_lock_waiters(0);

    PQclear(t_sql(holder, "COMMIT", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domain_events WHERE domain = 'desk-bob'", 2, 5000), 2);
    res = t_sql(t_db, "SELECT string_agg(detail, ',' ORDER BY id) FROM domain_events WHERE domain = 'desk-bob'", 0, NULL);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), "paused,unpaused");
    PQclear(res);
    ck_assert_str_eq(db_status("desk-bob"), "running");

    /* held again, for longer than vmrqd's own completions hold a row: said once, whatever the
     * tries; and the sink stops: it returns, its event not written (the next start's refresh
     * makes up for it) */
    t_log_capture_start();
    PQclear(t_sql(holder, "BEGIN", 0, NULL));
    PQclear(t_sql(holder, "SELECT 1 FROM domains WHERE name = 'desk-bob' FOR UPDATE", 0, NULL));
    event(ev, "desk-bob", "suspended", "paused", "paused");
    ck_assert(t_log_wait_captured("domain desk-bob: 1 event(s) not recorded for ", 10000));
    events_free(ev);
    log = t_log_captured();
    t_log_capture_stop();
    ck_assert_msg(t_count_of(log, "not recorded for ") == 1, "%s", log);
    ck_assert_msg(strstr(log, "another session holds its row; tried again every 1000 ms, the other domains' go on\n"),
                  "%s", log);
    ck_assert_msg(strstr(log, "stopping with 1 domain events not recorded (another session holds their rows)"), "%s", log);
    free(log);
    ck_assert_int_eq(count("SELECT count(*) FROM domain_events WHERE domain = 'desk-bob'"), 2);
    PQclear(t_sql(holder, "ROLLBACK", 0, NULL));
    PQfinish(holder);
}
END_TEST

/* Session `holder` inserts domain `name` and leaves it uncommitted; then the sink gets an event
 * of that name, and waits in its insert for the holder's to commit. The log's capture starts. */
static void
twin_uncommitted_event(struct events *ev, PGconn *holder, const char *name)
{
    const char *params[1] = { name };

    PQclear(t_sql(holder, "BEGIN", 0, NULL));
    PQclear(t_sql(holder, "INSERT INTO domains (name) VALUES ($1)", 1, params));
    t_log_capture_start();
    event(ev, name, "defined", "added", "shutdown");
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                        " AND application_name = 'vmrqd events'", 1, 5000), 1);
}

/* An operator's psql has inserted desk-new's row and not committed (a unique index's twin: the
 * sink's insert of that name would wait to learn whether it commits). The sink does not wait
 * past its lock_timeout: desk-new's event waits in the sink, the other domains' are written as
 * they come; once the other session rolls back, desk-new's row is the sink's, with its status.
 * Held so again, the sink stops without waiting for that session. */
START_TEST(test_uncommitted_domain_twin_holds_up_only_its_events)
{
    struct events *ev = events_new(getenv("VMRQ_DB"), "demo");
    PGconn *holder = t_connect();
    char *log;

    refresh_and_own();
    twin_uncommitted_event(ev, holder, "desk-new");
    event(ev, "desk-alice", "suspended", "paused", "paused");
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domain_events WHERE domain = 'desk-alice'", 1, 5000), 1);
    ck_assert_str_eq(db_status("desk-alice"), "paused");
    ck_assert_int_eq(count("SELECT count(*) FROM domain_events WHERE domain = 'desk-new'"), 0);
    ck_assert(t_log_wait_captured("domain events not recorded for ", 10000));
    log = t_log_captured();
    t_log_capture_stop();
    ck_assert_msg(strstr(log, "they wait for a lock another session holds (a domain or a request it has inserted and"
                              " not committed, or a request row)"), "%s", log);
    free(log);

    PQclear(t_sql(holder, "ROLLBACK", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domain_events WHERE domain = 'desk-new'", 1, 5000), 1);
    ck_assert_str_eq(db_status("desk-new"), "shutdown");
    ck_assert_int_eq(count("SELECT count(*) FROM domains d JOIN nodes n ON n.id = d.id_node"
                           " WHERE d.name = 'desk-new' AND n.name = 'demo'"), 1);

    /* held so again: the sink stops at once, its event not written */
    twin_uncommitted_event(ev, holder, "desk-newer");
    events_free(ev);
    log = t_log_captured();
    t_log_capture_stop();
    ck_assert_msg(strstr(log, "stopping with 1 domain events not recorded"), "%s", log);
    free(log);
    PQclear(t_sql(holder, "ROLLBACK", 0, NULL));
    ck_assert_int_eq(count("SELECT count(*) FROM domains WHERE name = 'desk-newer'"), 0);
    PQfinish(holder);
}
END_TEST

/* For the two tests below: a vmrqd of node demo with a 1 s lease, its desktops refreshed and
 * owned by their users (desk-bob by bob). */
static void
held_start(struct t_daemon *d)
{
    char conf[PATH_MAX + 128];

    memset(d, 0, sizeof(*d));
    snprintf(conf, sizeof(conf), "lease = 1s\nlibvirt_uri = %s\nnode = demo\n", uri);
    t_daemon_start(d, conf, false);
    PQclear(t_sql(t_db, "SELECT vmrq_request('refresh_vms')", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE command = 'refresh_vms'"
                                        " AND status = 'done'", 1, 5000), 1);
    PQclear(t_sql(t_db, "UPDATE domains SET id_owner = u.id FROM users u WHERE domains.name = 'desk-' || u.name", 0, NULL));
}

/* While another session holds what one request needs, the daemon goes on: it claims and
 * completes the requests that come (a ping, alice's pause), and beats past two leases from
 * now, so no other vmrqd's recovery would take its requests. */
static void
held_others_go_on(struct t_daemon *d)
{
    char sql[256];

    PQclear(t_sql(t_db, "CREATE TEMP TABLE held_since AS SELECT now() AS at", 0, NULL));
    PQclear(t_sql(t_db, "SELECT vmrq_request('ping_backend'), vmrq_request('pause', '{\"uid\": 1, \"name\": \"desk-alice\"}')",
                  0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE command IN ('ping_backend', 'pause')"
                                        " AND status = 'done'", 2, 5000), 2);
    ck_assert_str_eq(db_status("desk-alice"), "paused");
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM daemons, held_since"
                               " WHERE pid = %d AND heartbeat_at > at + interval '2 s'", (int)d->pid);
    ck_assert_int_eq(t_wait_value(t_db, sql, 1, 10000), 1);
}

/* What another session holds of a domain's row, through a real vmrqd: an operator's psql left
 * in a transaction after SELECT ... FOR UPDATE on desk-bob, while bob's shutdown (whose guest
 * ignores the power button) runs. The daemon goes on: it beats past two leases (no other
 * vmrqd's recovery takes its requests), claims and completes the requests that come, and
 * leaves the shutdown working with no force_shutdown enqueued, the two written together once
 * the row is free: one follow-up, not one per try. */
START_TEST(test_held_domain_row_stops_nothing_else)
{
    struct t_daemon d;
    PGconn *holder = t_connect();

    held_start(&d);

    PQclear(t_sql(holder, "BEGIN", 0, NULL));
    PQclear(t_sql(holder, "SELECT 1 FROM domains WHERE name = 'desk-bob' FOR UPDATE", 0, NULL));
    PQclear(t_sql(t_db, "SELECT vmrq_request('shutdown', '{\"uid\": 2, \"name\": \"desk-bob\", \"timeout\": 1}')",
                  0, NULL));
    ck_assert(t_daemon_wait_logged(&d, "another session holds the row of domain desk-bob (id ", 5000));
    held_others_go_on(&d);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE command = 'shutdown' AND status = 'working'"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE command = 'force_shutdown'"), 0);

    PQclear(t_sql(holder, "ROLLBACK", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE command = 'force_shutdown'"
                                        " AND status = 'done'", 1, 10000), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE command = 'shutdown' AND status = 'done'"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE command = 'force_shutdown'"), 1);
    ck_assert_str_eq(db_status("desk-bob"), "shutdown");
    ck_assert_int_eq(t_daemon_wait(&d, SIGTERM, 5000), 0);
    t_daemon_cleanup(&d);
    PQfinish(holder);
}
END_TEST

/* The same with a follow-up: an operator's psql left in a transaction after enqueueing
 * force_shutdown for desk-bob (no-duplicate: the follow-up of bob's shutdown is its twin, and
 * its insert would wait to learn whether that one commits). The daemon goes on as above, the
 * shutdown left working; once the other commits, the shutdown is done and its follow-up is that
 * force_shutdown, not a second one. */
START_TEST(test_uncommitted_follow_up_twin_stops_nothing_else)
{
    struct t_daemon d;
    PGconn *holder = t_connect();

    held_start(&d);

    PQclear(t_sql(holder, "BEGIN", 0, NULL));
    PQclear(t_sql(holder, "SELECT vmrq_request('force_shutdown', jsonb_build_object('uid', 2, 'id_domain', id,"
                          " 'at', (now() + interval '1 hour')::text)) FROM domains WHERE name = 'desk-bob'", 0, NULL));
    PQclear(t_sql(t_db, "SELECT vmrq_request('shutdown', '{\"uid\": 2, \"name\": \"desk-bob\", \"timeout\": 1}')",
                  0, NULL));
    ck_assert(t_daemon_wait_logged(&d, "(shutdown): finished, but another session has enqueued the same force_shutdown"
                                       " and not committed yet", 5000));
    held_others_go_on(&d);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE command = 'shutdown' AND status = 'working'"), 1);

    PQclear(t_sql(holder, "COMMIT", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE command = 'shutdown' AND status = 'done'",
                                  1, 10000), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE command = 'force_shutdown' AND status = 'requested'"
                           " AND at_time > now() + interval '50 minutes'"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE command = 'force_shutdown'"), 1);
    ck_assert_int_eq(t_daemon_wait(&d, SIGTERM, 5000), 0);
    t_daemon_cleanup(&d);
    PQfinish(holder);
}
END_TEST

/* A burst of events (a classroom's desktops changing at once) is written in batches: every
 * event kept, in the order it came, each domain ending with the status of its last lifecycle
 * event (a reboot leaves it alone), and what is queued when the sink stops is written, not lost. */
START_TEST(test_event_bursts_keep_order_and_last_status)
{
    struct events *ev = events_new(getenv("VMRQ_DB"), "demo");
    char detail[16], *want = calloc(1, 8192);
    size_t len = 0;
    PGresult *res;

    for (int i = 0; i < 300; i++) {
        struct dom_event e = { .uuid = "", .event = i % 2 ? "resumed" : "suspended", .detail = detail,
                               .status = i % 2 ? "running" : "paused" };
        e.name = i % 3 == 0 ? "burst-0" : i % 3 == 1 ? "burst-1" : "burst-2";
        snprintf(detail, sizeof(detail), "e%d", i);
        events_on_domain(ev, &e);
        len += (size_t)snprintf(want + len, 8192 - len, "%s%s", i ? "," : "", detail);
    }
    events_on_domain(ev, &(struct dom_event){ .name = "burst-1", .uuid = "", .event = "rebooted", .detail = "guest" });
    /* renamed behind our back: the new name's row must not take the uuid (nor fail the batch) */
    PQclear(t_sql(t_db, "INSERT INTO domains (name, uuid) VALUES ('burst-old', '6b2a5f0e-3c1d-4e8f-9a7b-0c1d2e3f4a5b')", 0, NULL));
    events_on_domain(ev, &(struct dom_event){ .name = "burst-new", .uuid = "6b2a5f0e-3c1d-4e8f-9a7b-0c1d2e3f4a5b",
                                              .event = "defined", .detail = "renamed", .status = "shutdown" });
    snprintf(want + len, 8192 - len, ",guest,renamed");
    events_free(ev); /* writes what is still queued */

    res = t_sql(t_db, "SELECT string_agg(detail, ',' ORDER BY id) FROM domain_events WHERE domain LIKE 'burst-%'", 0, NULL);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), want);
    PQclear(res);
    /* the last of burst-0 is e297 (resumed), of burst-1 e298 (paused; then the reboot), of burst-2 e299 */
    res = t_sql(t_db, "SELECT string_agg(name || '=' || status, ' ' ORDER BY name) FROM domains"
                      " WHERE name LIKE 'burst-%'", 0, NULL);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), "burst-0=running burst-1=paused burst-2=running burst-new=shutdown"
                                            " burst-old=unknown");
    PQclear(res);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM domain_events e JOIN domains d ON d.id = e.id_domain"
                                     " WHERE e.domain LIKE 'burst-%' AND d.name = e.domain", 0, NULL), 302);
    free(want);
}
END_TEST

/* ping_agent tells whether the guest agent answers, with the guest's clock. */
START_TEST(test_ping_agent_reports_the_guest_clock)
{
    long long id;
    char q[128];

    refresh_and_own();
    id = run("ping_agent", "{\"uid\": 1, \"name\": \"desk-alice\"}");
    ck_assert_str_eq(outcome(id), "done");
    snprintf(q, sizeof(q), "SELECT (output->>'guest_time')::bigint FROM requests WHERE id = %lld", id);
    ck_assert_int_gt(t_sql_int(t_db, q, 0, NULL), 0);
}
END_TEST

/* Two daemons, two nodes: each runs only the requests of its node's domains. */
START_TEST(test_node_affinity)
{
    struct t_daemon a, b;
    const char *conf = "lease = 1s\npoll_interval = 1h\nlog_level = warning\nlibvirt_uri = test:///default\n";
    char ca[256], cb[256];

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    PQclear(t_sql(t_db, "INSERT INTO nodes (name, uri) VALUES ('n1', 'test:///default'), ('n2', 'test:///default')",
                  0, NULL));
    PQclear(t_sql(t_db, "INSERT INTO domains (name, id_node) SELECT 'on-' || n.name || '-' || i, n.id"
                        "  FROM nodes n, generate_series(1, 3) i WHERE n.name IN ('n1', 'n2')", 0, NULL));
    snprintf(ca, sizeof(ca), "%snode = n1\n", conf);
    snprintf(cb, sizeof(cb), "%snode = n2\n", conf);
    t_daemon_start(&a, ca, false);
    t_daemon_start(&b, cb, false);
    PQclear(t_sql(t_db, "INSERT INTO requests (command, args)"
                        " SELECT 'pause', jsonb_build_object('uid', 4, 'id_domain', d.id)"
                        "   FROM domains d, generate_series(1, 10) WHERE d.name LIKE 'on-%'", 0, NULL));
    /* a refresh naming its node runs on that node's daemon only */
    PQclear(t_sql(t_db, "SELECT vmrq_request('refresh_vms', jsonb_build_object('node', n, '_force', true))"
                        "  FROM (VALUES ('n1'), ('n2'), ('n2'), ('n1')) v(n)", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE finished_at IS NOT NULL", 64, 20000), 64);
    /* the 64 finished may count each daemon's own start-up cleanup: wait for ours themselves */
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests r JOIN domains d ON d.id = r.id_domain"
                                        " JOIN nodes n ON n.id = d.id_node JOIN daemons m ON m.id = r.id_daemon"
                                        " WHERE m.node = n.name AND r.finished_at IS NOT NULL", 60, 20000), 60);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests r JOIN daemons m ON m.id = r.id_daemon"
                                        " WHERE r.command = 'refresh_vms' AND r.status = 'done'"
                                        "   AND m.node = r.args->>'node'", 4, 20000), 4);
    t_daemon_cleanup(&a);
    t_daemon_cleanup(&b);
}
END_TEST

/* vmrqd refreshes its own node at start-up and every refresh_interval, by itself; refreshes
 * running at once (here: three, on an empty table) do not trip over each other. */
START_TEST(test_periodic_refresh)
{
    struct t_daemon d;
    char conf[PATH_MAX + 256];

    memset(&d, 0, sizeof(d));
    PQclear(t_sql(t_db, "SELECT vmrq_request('refresh_vms'), vmrq_request('refresh_vms', '{\"uid\": 4}')", 0, NULL));
    snprintf(conf, sizeof(conf), "lease = 1s\nlibvirt_uri = %s\nnode = demo\nrefresh_interval = 1s\n"
                                 "limit_secondary = 3\n", uri);
    t_daemon_start(&d, conf, false);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domains", 6, 5000), 6); /* at start-up */
    ck_assert_int_eq(t_wait_value(t_db, "SELECT least(count(*), 2) FROM requests WHERE command = 'refresh_vms'"
                                        " AND args->>'node' = 'demo' AND status = 'done'", 2, 5000), 2);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests WHERE status <> 'done'"
                                     " AND finished_at IS NOT NULL", 0, NULL), 0);
    ck_assert_int_eq(t_daemon_wait(&d, SIGTERM, 5000), 0);
    t_daemon_cleanup(&d);
}
END_TEST

/* The acceptance story, end to end through a real vmrqd on the demo hypervisor: bob's guest
 * ignores the power button; after `timeout` the force_shutdown row runs and the domain is off,
 * as `vmrq list` shows. A non-owner's shutdown fails clearly and the domain keeps running. */
START_TEST(test_shutdown_then_force_through_the_daemon)
{
    struct t_daemon d;
    char conf[PATH_MAX + 128];
    struct t_cli r;

    memset(&d, 0, sizeof(d));
    snprintf(conf, sizeof(conf), "lease = 1s\nlibvirt_uri = %s\nnode = demo\n", uri);
    t_daemon_start(&d, conf, false);
    PQclear(t_sql(t_db, "SELECT vmrq_request('refresh_vms')", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domains", 6, 5000), 6);
    PQclear(t_sql(t_db, "UPDATE domains SET id_owner = u.id FROM users u WHERE domains.name = 'desk-' || u.name", 0, NULL));

    r = t_cli_run("request", "shutdown", "uid=2", "name=desk-bob", "timeout=1", "--wait", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    t_cli_free(&r);
    r = t_cli_run("request", "shutdown", "uid=2", "name=desk-alice", "--wait", NULL);
    ck_assert_int_eq(r.status, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "user bob is not allowed to shutdown desk-alice"));
    t_cli_free(&r);

    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE command = 'force_shutdown'"
                                        " AND status = 'done'", 1, 5000), 1);
    ck_assert_str_eq(db_status("desk-bob"), "shutdown");
    ck_assert_str_eq(db_status("desk-alice"), "running");
    r = t_cli_run("list", "--command", "force_shutdown", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "done    force_shutdown  desk-bob"));
    t_cli_free(&r);
    ck_assert_int_eq(t_daemon_wait(&d, SIGTERM, 5000), 0);
    t_daemon_cleanup(&d);
}
END_TEST

Suite *
domain_suite(void)
{
    Suite *s = suite_create("domain");
    TCase *tc = tcase_create("domain");
    int cells = (int)(sizeof(matrix) / sizeof(matrix[0])) * 4;

    tcase_set_tags(tc, "db libvirt");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_every_command_in_every_state, 0, cells);
    tcase_add_loop_test(tc, test_rights_matrix, 0, 6);
    tcase_add_test(tc, test_no_domain);
    tcase_add_test(tc, test_database_lost_goes_back);
    tcase_add_test(tc, test_hooks_order_and_veto);
    tcase_add_test(tc, test_force_shutdown_follows);
    tcase_add_test(tc, test_start_cancels_moot_shutdowns);
    tcase_add_test(tc, test_shutdown_start);
    tcase_add_test(tc, test_refresh_vms_after_changes_behind_our_back);
    tcase_add_test(tc, test_refresh_vms_leaves_out_a_name_it_cannot_hold);
    tcase_add_test(tc, test_refresh_vms_leaves_a_held_row_to_the_next);
    tcase_add_test(tc, test_events_follow_the_hypervisor);
    tcase_add_test(tc, test_event_bursts_keep_order_and_last_status);
    tcase_add_test(tc, test_newer_event_wins_over_the_completion);
    tcase_add_test(tc, test_event_committed_while_the_completion_is_deferred_wins);
    tcase_add_test(tc, test_held_domain_row_stops_nothing_else);
    tcase_add_test(tc, test_held_domain_row_holds_up_only_its_events);
    tcase_add_test(tc, test_uncommitted_domain_twin_holds_up_only_its_events);
    tcase_add_test(tc, test_uncommitted_follow_up_twin_stops_nothing_else);
    tcase_add_test(tc, test_older_reading_leaves_a_newer_status);
    tcase_add_test(tc, test_ping_agent_reports_the_guest_clock);
    tcase_add_test(tc, test_node_affinity);
    tcase_add_test(tc, test_periodic_refresh);
    tcase_add_test(tc, test_shutdown_then_force_through_the_daemon);
    suite_add_tcase(s, tc);
    return s;
}
