/*
 * check_chaos.c - several vmrqd on one database while things break at random moments: daemons
 * killed with SIGKILL and started again, PostgreSQL restarted once, claims' answers cut by the
 * relay (t/relay.c). Then what must hold whatever happened: every request terminal, none lost,
 * none run more often than its recoveries allow, the requests of one domain never overlapping
 * and in order, and domains.status what the hypervisor says.
 *
 * Seeded: the seed is printed first; VMRQ_CHAOS_SEED=N runs the same schedule again (the
 * moments are the schedule's, what the daemons do in between is theirs). Bounded: about 30 s of
 * storm, then at most a minute for the queue to settle. The libvirt test driver lives inside
 * each vmrqd, so one vmrqd at a time serves the node of the domains (etc/demo-hypervisor.xml;
 * killed, its successor reads the file afresh and its start-up refresh_vms brings the table in
 * line); two more, on another node and through the relay, share the no-ops. Where the private
 * libvirtd of the real-guest tier is there (t/with-libvirtd), a fourth serves node lv, two QEMU
 * domains of that libvirtd (no disk, no kernel: the firmware finds nothing to boot, which is all
 * a start, pause or force_shutdown needs), and libvirtd itself is killed once and started again:
 * what vmrqd claims meanwhile goes back to the queue, charged nothing, and runs once it is back.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "relay.h"
#include "tutil.h"

#define NDAEMONS 4     /* [0] serves node hv (the domains), [1] and [2] node other, through the relay,
                        * [3] node lv (the private libvirtd), if there is one */
#define STORM_MS 30000

static struct t_daemon d[NDAEMONS];
static struct t_relay *relay;
static char conf_hv[512], conf_lv[512], through[512];
static const char *lv_uri, *lv_ctl; /* the private libvirtd, and its stop/start script; NULL: none */
static int ndaemons;
static const char conf_other[] = "lease = 1s\npoll_interval = 5s\nretry_backoff = 100ms\nlog_level = info\n"
                                 "node = other\nlibvirt_uri = test:///default\nclaim_batch = 200\n";

static void
setup(void)
{
    char cwd[256];

    t_db_setup();
    memset(d, 0, sizeof(d));
    ck_assert(getcwd(cwd, sizeof(cwd)) != NULL);
    snprintf(conf_hv, sizeof(conf_hv),
             "lease = 1s\npoll_interval = 5s\nretry_backoff = 100ms\nlog_level = warning\nnode = hv\n"
             "libvirt_uri = test://%s/etc/demo-hypervisor.xml\nclaim_batch = 200\n"
             /* as in production, a refresh at start-up: its test hypervisor is the file afresh */
             "refresh_interval = 10m\n", cwd);
    lv_uri = getenv("VMRQ_GUEST_SKIP") ? NULL : getenv("VMRQ_GUEST_URI");
    lv_ctl = getenv("VMRQ_GUEST_LIBVIRTD");
    if (!lv_ctl)
        lv_uri = NULL;
    ndaemons = lv_uri ? NDAEMONS : NDAEMONS - 1;
    snprintf(conf_lv, sizeof(conf_lv), "lease = 1s\npoll_interval = 5s\nretry_backoff = 100ms\nlog_level = info\n"
                                       "node = lv\nlibvirt_uri = %s\nclaim_batch = 200\n", lv_uri ? lv_uri : "");
    ck_assert((relay = t_relay_start()) != NULL);
    snprintf(through, sizeof(through), "%s user=vmrq_t_daemon", t_relay_conninfo(relay));
}

/* Runs a shell command line (printf-style) with its output dropped; its exit status. */
static int __attribute__((format(printf, 1, 2)))
run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    int rc;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* Defines the QEMU domains lv-1 and lv-2 in the private libvirtd, or (gone) destroys and
 * undefines them. */
static void
lv_domains(bool gone)
{
    for (int i = 1; i <= 2; i++) {
        if (gone) {
            run("virsh -q -c '%s' destroy lv-%d >/dev/null 2>&1; virsh -q -c '%s' undefine lv-%d >/dev/null 2>&1",
                lv_uri, i, lv_uri, i);
            continue;
        }
        ck_assert_int_eq(run("echo \"<domain type='qemu'><name>lv-%d</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>"
                             "<os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features>"
                             "<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>"
                             "<controller type='usb' model='none'/><memballoon model='none'/></devices></domain>\""
                             " | virsh -q -c '%s' define /dev/stdin >/dev/null", i, lv_uri), 0);
    }
}

static void
teardown(void)
{
    for (int i = 0; i < NDAEMONS; i++)
        t_daemon_cleanup(&d[i]);
    if (lv_uri)
        lv_domains(true);
    t_relay_free(relay);
    t_db_teardown();
}

static void
start(int i)
{
    memset(&d[i], 0, sizeof(d[i]));
    if (i == 0)
        t_daemon_start(&d[i], conf_hv, false);
    else if (i == 3)
        t_daemon_start(&d[i], conf_lv, false);
    else {
        t_daemon_spawn(&d[i], conf_other, false, through);
        /* registered: as t_daemon_start(), on the daemon's own database */
        char pid[16], sql[128];
        snprintf(pid, sizeof(pid), "%d", d[i].pid);
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM daemons WHERE pid = %s AND stopped_at IS NULL", pid);
        ck_assert_msg(t_wait_value(t_db, sql, 1, 30000) == 1, "vmrqd did not register; see %s", d[i].log);
        snprintf(sql, sizeof(sql), "SELECT id FROM daemons WHERE pid = %s AND stopped_at IS NULL", pid);
        d[i].id = (int)t_sql_int(t_db, sql, 0, NULL);
    }
}

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* The rows of a query that lists what broke an invariant, one per line, or NULL if none. */
static char *
violations(const char *sql)
{
    PGresult *res = t_sql(t_db, sql, 0, NULL);
    char *out = NULL;

    if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        out = strndup(PQgetvalue(res, 0, 0), 1500); /* the first lines: a test's message has a limit */
    PQclear(res);
    return out;
}

#define CHECK(what, sql)                                                              \
    do {                                                                              \
        char *v_ = violations(sql);                                                   \
        ck_assert_msg(v_ == NULL, "seed %u: %s:\n%s", seed, what, v_ ? v_ : "");      \
    } while (0)

START_TEST(test_chaos)
{
    static const char *const cmds[] = { "start", "force_shutdown", "pause", "resume", "reboot" };
    const char *restart = getenv("VMRQ_PG_RESTART"), *s = getenv("VMRQ_CHAOS_SEED");
    unsigned seed = s ? (unsigned)strtoul(s, NULL, 10) : (unsigned)time(NULL) ^ (unsigned)getpid();
    long long t0, next_chaos, pg_restart_at, lv_stop_at, lv_start_at = 0, enqueued_pings = 0, enqueued_dom = 0;
    int kills = 0, cuts = 0, restarts = 0, seen_n;
    bool pg_restarted = false, lv_stopped = false, lv_back = !lv_uri;

    printf("chaos: seed %u (VMRQ_CHAOS_SEED=%u runs this schedule again)\n", seed, seed);
    fflush(stdout);
    srand(seed);
    ck_assert_msg(restart != NULL, "VMRQ_PG_RESTART is not set: run through t/with-pg");
    PQclear(t_sql(t_db, "INSERT INTO users (name, is_admin) VALUES ('admin', true)", 0, NULL));
    PQclear(t_sql(t_db, "INSERT INTO nodes (name, uri) VALUES ('hv', 'test:///'), ('other', 'test:///default'),"
                        " ('lv', 'qemu:///session')", 0, NULL));
    PQclear(t_sql(t_db, "INSERT INTO domains (name, id_node, id_owner) SELECT n, 1, 1 FROM unnest(ARRAY["
                        "'desk-alice', 'desk-bob', 'desk-carol', 'class-01', 'class-02', 'lab-server']) n",
                  0, NULL));
    if (lv_uri) {
        ck_assert_int_eq(run("virsh -q -c '%s' uri >/dev/null 2>&1 || '%s' start", lv_uri, lv_ctl), 0);
        lv_domains(true); /* a run stopped half-way may have left them */
        lv_domains(false);
        PQclear(t_sql(t_db, "INSERT INTO domains (name, id_node, id_owner) VALUES ('lv-1', 3, 1), ('lv-2', 3, 1)",
                      0, NULL));
    } else {
        printf("chaos: no private libvirtd (%s): no libvirtd restart in this run\n",
               getenv("VMRQ_GUEST_SKIP") ? getenv("VMRQ_GUEST_SKIP") : "not run through t/with-libvirtd");
    }
    for (int i = 0; i < ndaemons; i++)
        start(i);

    t0 = now_ms();
    next_chaos = t0 + 1000 + rand() % 2000;
    pg_restart_at = t0 + 5000 + rand() % (STORM_MS - 10000);
    lv_stop_at = t0 + 5000 + rand() % (STORM_MS - 12000);
    while (now_ms() - t0 < STORM_MS) {
        struct timespec tick = { 0, 50 * 1000000L };
        char sql[256];

        /* the load: a domain command every tick, a bulk of no-ops every fourth */
        snprintf(sql, sizeof(sql), "SELECT vmrq_request('%s', jsonb_build_object('uid', 1, 'id_domain', %d))",
                 cmds[rand() % 5], 1 + rand() % 6);
        PQclear(t_sql(t_db, sql, 0, NULL));
        enqueued_dom++;
        if (lv_uri && rand() % 4 == 0) {
            /* the QEMU domains, at a quarter of the pace */
            snprintf(sql, sizeof(sql), "SELECT vmrq_request('%s', jsonb_build_object('uid', 1, 'name', 'lv-%d'))",
                     cmds[rand() % 4], 1 + rand() % 2);
            PQclear(t_sql(t_db, sql, 0, NULL));
            enqueued_dom++;
        }
        if (lv_uri && !lv_stopped && now_ms() >= lv_stop_at) {
            printf("chaos: %lld ms: libvirtd killed\n", now_ms() - t0);
            ck_assert_int_eq(run("'%s' stop", lv_ctl), 0);
            lv_stopped = true;
            lv_start_at = now_ms() + 1000 + rand() % 2000; /* the outage, as the schedule says */
        }
        if (lv_stopped && !lv_back && now_ms() >= lv_start_at) {
            printf("chaos: %lld ms: libvirtd started again\n", now_ms() - t0);
            ck_assert_int_eq(run("'%s' start", lv_ctl), 0);
            lv_back = true;
        }
        if (rand() % 4 == 0) {
            PQclear(t_sql(t_db, "INSERT INTO requests (command) SELECT 'ping_backend' FROM generate_series(1, 300)",
                          0, NULL));
            enqueued_pings += 300;
        }
        if (!pg_restarted && now_ms() >= pg_restart_at) {
            printf("chaos: %lld ms: PostgreSQL restarts\n", now_ms() - t0);
            ck_assert_int_eq(system(restart), 0);
            PQreset(t_db);
            ck_assert_int_eq(PQstatus(t_db), CONNECTION_OK);
            pg_restarted = true;
        }
        if (now_ms() >= next_chaos) {
            int what = rand() % 3, who = rand() % ndaemons;

            /* vmrqd does not start while its hypervisor is away (systemd starts it again): the
             * lv node's is not killed during libvirtd's outage */
            if (who == 3 && lv_stopped && !lv_back)
                who = rand() % (NDAEMONS - 1);
            if (what < 2) { /* a daemon dies, and a new one takes its place */
                printf("chaos: %lld ms: SIGKILL of vmrqd %d (pid %d)\n", now_ms() - t0, d[who].id, d[who].pid);
                ck_assert_int_eq(t_daemon_wait(&d[who], SIGKILL, 5000), 128 + SIGKILL);
                t_daemon_cleanup(&d[who]);
                start(who);
                kills++;
                restarts++;
            } else { /* the answer of the next claim through the relay is lost */
                printf("chaos: %lld ms: the relay cuts the next claim's answer\n", now_ms() - t0);
                t_relay_arm(relay);
                cuts++;
            }
            fflush(stdout);
            next_chaos = now_ms() + 1000 + rand() % 3000;
        }
        nanosleep(&tick, NULL); /* the pace of the load, not a wait for anything */
    }
    if (!lv_back) { /* a storm cut short by nothing still ends with libvirtd up */
        ck_assert_int_eq(run("'%s' start", lv_ctl), 0);
        lv_back = true;
    }
    printf("chaos: storm over: %lld domain commands, %lld no-ops, %d kills, %d cuts armed, PostgreSQL restarted%s\n",
           enqueued_dom, enqueued_pings, kills, cuts, lv_uri ? ", libvirtd restarted" : "");
    fflush(stdout);

    /* every request terminal, within a minute */
    ck_assert_msg(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE status NOT IN ('done', 'failed', 'cancelled')",
                               0, 60000) == 0,
                  "seed %u: requests still pending a minute after the storm: %s", seed,
                  violations("SELECT string_agg(id || ' ' || command || ' ' || status, ', ') FROM"
                             " (SELECT * FROM requests WHERE status NOT IN ('done', 'failed', 'cancelled')"
                             "   ORDER BY id LIMIT 20) x"));
    /* none lost: what was asked is all there (duplicates of a pending force_shutdown were the same row) */
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests WHERE command = 'ping_backend'", 0, NULL),
                     enqueued_pings);
    ck_assert_int_le(t_sql_int(t_db, "SELECT count(*) FROM requests WHERE command IN"
                                     " ('start', 'force_shutdown', 'pause', 'resume', 'reboot')", 0, NULL),
                     enqueued_dom);
    CHECK("a no-op that did not succeed",
          "SELECT string_agg(id || ' ' || status || ': ' || coalesce(error, ''), E'\\n') FROM requests"
          " WHERE command = 'ping_backend' AND status <> 'done'");
    /* nothing failed but for the state table's refusals; the moot ones end cancelled or done */
    CHECK("a failure that is not a refusal of the state table",
          "SELECT string_agg(id || ' ' || command || ': ' || coalesce(error, ''), E'\\n') FROM requests"
          " WHERE status = 'failed' AND id_domain IS NOT NULL"
          "   AND coalesce(error, '') !~ ' (is not running|is not paused|cannot be started) \\(it is '");
    /* a twin pending when it went back: released unrun ("..., not run; "), taken back unrun from a
     * daemon that stopped ("which stopped before running it, not run; "), found unreached by its
     * completion ("; not run; ") or taken back from a daemon that stopped while running it */
    CHECK("a request cancelled for another reason than a start, or than a twin pending when it went back",
          "SELECT string_agg(id || ' ' || command || ': ' || coalesce(error, ''), E'\\n') FROM requests"
          " WHERE status = 'cancelled' AND coalesce(error, '') NOT LIKE 'moot: request % started the domain'"
          "   AND coalesce(error, '') !~ '([;,] not run; |stopped while running it; not run again: )request [0-9]+,"
          " the same, is pending$'");
    /* none run more often than allowed: a claim that ran is counted in attempts, and only a death
     * while it ran (recoveries) earns another (one put back for libvirtd's absence is not counted) */
    CHECK("a request claimed and run more often than its recoveries allow",
          "SELECT string_agg(id || ' ' || command || ': attempts ' || attempts || ', recoveries ' || recoveries, E'\\n')"
          "  FROM requests WHERE attempts > recoveries + 1");
    CHECK("a request that died 3 times with its daemon",
          "SELECT string_agg(id || ' ' || command, E'\\n') FROM requests WHERE recoveries >= 3");
    /* one domain's requests one at a time, in order */
    CHECK("two requests of one domain overlapping or out of order",
          "SELECT string_agg(a.id || ' then ' || b.id || ' on domain ' || a.id_domain, E'\\n')"
          "  FROM requests a JOIN requests b ON b.id_domain = a.id_domain AND b.id > a.id"
          " WHERE a.started_at IS NOT NULL AND b.started_at IS NOT NULL AND b.started_at < a.finished_at");

    /* domains.status is what the hypervisor says: read it afresh, once the queue is still */
    PQclear(t_sql(t_db, "CREATE TEMP TABLE seen AS SELECT id, status FROM domains"
                        " WHERE id_node = 1 OR name IN ('lv-1', 'lv-2')", 0, NULL));
    seen_n = lv_uri ? 8 : 6;
    PQclear(t_sql(t_db, "SELECT vmrq_request('refresh_machine', jsonb_build_object('uid', 1, 'id_domain', id))"
                        "  FROM seen", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE command = 'refresh_machine'"
                                        " AND status = 'done'", seen_n, 30000), seen_n);
    CHECK("domains.status differs from the hypervisor's",
          "SELECT string_agg(s.id || ': table says ' || s.status || ', hypervisor ' || coalesce(r.output ->> 'state', '?'),"
          "                  E'\\n')"
          "  FROM seen s JOIN requests r ON r.command = 'refresh_machine' AND r.id_domain = s.id"
          " WHERE s.status IS DISTINCT FROM r.output ->> 'state'");
    printf("chaos: seed %u: every invariant held (%d daemons restarted)\n", seed, restarts);
    for (int i = 0; i < ndaemons; i++)
        ck_assert_msg(t_daemon_wait(&d[i], SIGTERM, 10000) == 0, "seed %u: vmrqd %d did not stop cleanly; see %s; %s",
                      seed, d[i].id, d[i].log,
                      violations("SELECT string_agg(pid || ' ' || application_name || ' ' || state || ' '"
                                 " || coalesce(wait_event, '-') || ' ' || left(query, 60), E'\n')"
                                 " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                                 " AND state <> 'idle'"));
}
END_TEST

Suite *
chaos_suite(void)
{
    Suite *s = suite_create("chaos");
    TCase *tc = tcase_create("chaos");

    tcase_set_tags(tc, "db daemon chaos");
    tcase_set_timeout(tc, 240);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_chaos);
    suite_add_tcase(s, tc);
    return s;
}
