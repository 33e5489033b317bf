/*
 * bench.c - `make bench`: vmrq's performance figures, measured on real daemons and a PostgreSQL
 * with its default settings (t/with-pg with VMRQ_PG_DEFAULTS=1: fsync on). Each scenario runs
 * several times; the table gives median, min, max and the target, and the same goes to a JSON
 * file. Never part of `make check`.
 *
 *   vmrq-bench [--runs N] [--drain N] [--history N] [--latency N] [--rate R] [--enqueue N]
 *              [--bulk N] [--domains N] [--domain-requests N] [--domain-workers W,...] [--rss N]
 *              [--workers W] [--lanes L] [--only NAME,...] [--out FILE]
 *
 * Scenarios (NAME), in the order they run: latency, enqueue, bulk, domains, refresh, clones, fleet,
 * beat, drain, history, rss. --fleet-requests N (200) at --fleet-rate R (50/s) size the fleet's, with
 * --fleet-sizes N,... (1,10,50) vmrqd: the pickup's target is relative to the first size's, the
 * idle CPU's (< 1%) holds for 50 or more.
 * Times come from the database's own clock (started_at, finished_at), so the client's
 * scheduling does not count.
 * VMRQ_BENCH_LOG=info (or debug) makes the daemons log at that level, to
 * /tmp/vmrq-bench-daemon.log, for profiling; the figures are then slower. VMRQ_BENCH_CONF adds
 * its lines to every daemon's vmrqd.conf, to try settings: VMRQ_BENCH_CONF="claim_ahead = 7".
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmrq.h"

static struct {
    int runs, drain, history, latency, rate, enqueue, bulk, domains, domain_requests, rss, workers, lanes;
    const char *only, *out, *domain_workers;
    int fleet_requests, fleet_rate;
    const char *fleet_sizes;
} opt = { 5, 20000, 1000000, 500, 200, 5000, 100000, 1000, 20000, 1000000, 8, 2, NULL, ".build/bench/results.json",
          "8,32", 200, 50, "1,10,50" };

static PGconn *db;

/* A new connection to the bench's database ($VMRQ_DB, else libpq's defaults); the caller
 * checks its status and PQfinish()es it. */
static PGconn *
bench_connect(void)
{
    return PQconnectdb(getenv("VMRQ_DB") ? getenv("VMRQ_DB") : "");
}

static void __attribute__((format(printf, 1, 2), noreturn))
die(const char *fmt, ...)
{
    va_list ap;

    fputs("vmrq-bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* A statement that must succeed; returns the first value as a double (0 if none). */
static double
sql(const char *q)
{
    PGresult *res = PQexecParams(db, q, 0, NULL, NULL, NULL, NULL, 0);
    double v = 0;

    if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
        die("%s: %s", q, PQerrorMessage(db));
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        v = atof(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* Sleeps until now_s() reaches `t`. Asleep, not spinning: on 2 cores a client's spin takes a
 * core from vmrqd and PostgreSQL, and the pickup p99 measured that. */
static void
sleep_until(double t)
{
    struct timespec ts = { (time_t)t, (long)((t - (double)(time_t)t) * 1e9) };

    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* ---------------------------------------------------------------- daemons */

struct daemon {
    pid_t pid;
    char conf[64];
};

/* Starts a vmrqd with `extra` in its configuration (NULL: node `bench` on test:///default) and
 * returns at once. Node `bench` is added if missing: vmrqd refuses a node not in table nodes. */
static void
daemon_spawn(struct daemon *d, const char *extra, int workers)
{
    const char *vmrqd = getenv("VMRQD");
    FILE *f;
    int fd;

    if (!vmrqd)
        die("VMRQD is not set (run through make bench)");
    snprintf(d->conf, sizeof(d->conf), "/tmp/vmrq-bench-conf.XXXXXX");
    if ((fd = mkstemp(d->conf)) < 0 || !(f = fdopen(fd, "w")))
        die("config: %s", strerror(errno));
    fprintf(f, "pidfile =\ncleanup_interval = 0\nlog_level = %s\nworkers = %d\nlimit_important = %d\n"
               "lanes = %d\n%s\n%s\n", getenv("VMRQ_BENCH_LOG") ? getenv("VMRQ_BENCH_LOG") : "warning",
            workers, workers, opt.lanes, extra ? extra : "libvirt_uri = test:///default\nnode = bench\n",
            getenv("VMRQ_BENCH_CONF") ? getenv("VMRQ_BENCH_CONF") : "");
    fclose(f);
    sql("INSERT INTO nodes (name, uri) VALUES ('bench', 'test:///default') ON CONFLICT (name) DO NOTHING");
    if ((d->pid = fork()) < 0)
        die("fork: %s", strerror(errno));
    if (d->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getenv("VMRQ_BENCH_LOG")) freopen("/tmp/vmrq-bench-daemon.log", "a", stderr);
        execl(vmrqd, vmrqd, "-d", "-f", d->conf, (char *)NULL);
        _exit(127);
    }
}

/* The one vmrqd of a scenario: started, and registered (at most 10 s). */
static void
daemon_start(struct daemon *d, const char *extra, int workers)
{
    sql("TRUNCATE daemons");
    daemon_spawn(d, extra, workers);
    for (int i = 0; i < 1000 && sql("SELECT count(*) FROM daemons WHERE stopped_at IS NULL") < 1; i++)
        sleep_ms(10);
}

/* A line of /proc/PID/status, in KiB: "VmRSS" (all resident pages, shared library code
 * included) or "RssAnon" (the process's own memory: heap, stacks). */
static long
status_kib(pid_t pid, const char *key)
{
    char path[64], line[256];
    size_t klen = strlen(key);
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            kib = atol(line + klen + 1);
            break;
        }
    fclose(f);
    return kib;
}

static void
daemon_stop(struct daemon *d)
{
    int status;

    kill(d->pid, SIGTERM);
    waitpid(d->pid, &status, 0);
    unlink(d->conf);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("vmrqd did not stop cleanly (status %d)", status);
}

/* Waits until no request is pending or working (at most 10 minutes). One EXISTS per status, each
 * answered by its partial index: a count over `status IN (...)` scans the whole table, and with a
 * million finished rows that scan (112 ms, every 10 ms) took a core from the daemon it watched. */
static void
wait_idle(void)
{
    for (int i = 0; i < 30000; i++) {
        if (sql("SELECT (EXISTS (SELECT 1 FROM requests WHERE status = 'requested')"
                "     OR EXISTS (SELECT 1 FROM requests WHERE status = 'working')"
                "     OR EXISTS (SELECT 1 FROM requests WHERE status = 'waiting'))::int") == 0)
            return;
        sleep_ms(20);
    }
    die("the queue did not drain within 10 minutes");
}

/* ---------------------------------------------------------------- results */

struct figure {
    const char *name, *unit, *target_text;
    double target;
    int higher_better; /* 1: value >= target passes; 0: value <= target passes */
    struct figure *relative_to; /* if set, the target is relative_factor times its median */
    double relative_factor;
    double v[64];
    int n;
};

static struct figure figures[128];
static int nfigures;

/* The comma-separated counts of option `name` (1 to `max` each, at most `max_n` of them) into
 * out[]; dies naming the option and the item otherwise. Returns how many. */
static int
parse_counts(const char *name, const char *text, int max, int *out, int max_n)
{
    char list[256], *tok, *save = NULL;
    int n = 0;

    snprintf(list, sizeof(list), "%s", text);
    for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == max_n || (out[n] = atoi(tok)) < 1 || out[n] > max)
            die("%s: '%s' is not a count from 1 to %d (at most %d of them)", name, tok, max, max_n);
        n++;
    }
    return n;
}

static struct figure *
figure(const char *name, const char *unit, double target, int higher_better, const char *target_text)
{
    struct figure *f;

    if (nfigures == (int)(sizeof(figures) / sizeof(figures[0])))
        die("more figures than the table holds");
    f = &figures[nfigures++];
    f->name = name;
    f->unit = unit;
    f->target = target;
    f->higher_better = higher_better;
    f->target_text = target_text;
    return f;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void
add(struct figure *f, double v)
{
    if (f->n < 64)
        f->v[f->n++] = v;
    printf("  %-34s %12.2f %s\n", f->name, v, f->unit);
    fflush(stdout);
}

static bool
wanted(const char *name)
{
    char list[256], *save, *tok;

    if (!opt.only)
        return true;
    snprintf(list, sizeof(list), "%s", opt.only);
    for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (strcmp(tok, name) == 0)
            return true;
    return false;
}

/* ---------------------------------------------------------------- scenarios */

/* The statistics of table requests a scenario runs with. A queue's are always stale: never taken
 * (a new installation), taken while it was full (autovacuum during a backlog, read once it is
 * empty again or by the next burst), or taken while it was empty (read during a burst). Plans
 * that depend on them would change by an order of magnitude between the three; make bench
 * measures the drain and the pickup in each. Autovacuum is off for requests during the bench
 * (main()), so that a state holds while it is measured. */
enum stats { STATS_NEVER, STATS_FULL, STATS_EMPTY, STATS_LAST };
static const char *const stats_name[STATS_LAST] = { "never analyzed", "analyzed while full", "analyzed while empty" };

/* Empties requests and sets its statistics to `st`, for a queue about to hold `pending`
 * ping_backend: never analyzed (TRUNCATE resets the size, and the column statistics are
 * deleted, as in a new table), analyzed empty, or analyzed with the requests queued (which are
 * then left queued). Returns whether the requests are queued. */
static bool
stats_set(enum stats st, int pending)
{
    char q[256];

    sql("TRUNCATE requests");
    sql("DELETE FROM pg_statistic WHERE starelid = 'requests'::regclass");
    if (st == STATS_EMPTY)
        sql("ANALYZE requests");
    if (st != STATS_FULL)
        return false;
    snprintf(q, sizeof(q), "INSERT INTO requests (command) SELECT 'ping_backend' FROM generate_series(1, %d)", pending);
    sql(q);
    sql("ANALYZE requests");
    return true;
}

/* Drains `n` queued ping_backend; requests/s between the first claim and the last finish.
 * Unless `queued`, they are queued first. */
static double
drain_once(int n, bool queued)
{
    char q[256];
    struct daemon d;
    double rate;

    snprintf(q, sizeof(q), "INSERT INTO requests (command) SELECT 'ping_backend' FROM generate_series(1, %d)", n);
    if (!queued)
        sql(q);
    sql("CHECKPOINT");
    daemon_start(&d, NULL, opt.workers);
    wait_idle();
    /* ping_backend only: the daemon's own start-up refresh_vms is not part of the drain (and
     * survives from one history run to the next) */
    rate = n / sql("SELECT extract(epoch FROM max(finished_at) - min(started_at)) FROM requests"
                   " WHERE id_daemon IS NOT NULL AND command = 'ping_backend'");
    daemon_stop(&d);
    return rate;
}

/* The drain in each statistics state, the states in turn (a different first one each run). The
 * first figure is the drain of the README's table since the beginning (never analyzed); the
 * other two must be within 10% of the best of the three (report()). */
static void
scenario_drain(void)
{
    struct figure *f[STATS_LAST] = {
        figure("drain ping_backend", "req/s", 35000, 1, ">= 35000"),
        figure("drain, analyzed while full", "req/s", 0, 1, "within 10% of best"),
        figure("drain, analyzed while empty", "req/s", 0, 1, "within 10% of best"),
    };

    printf("drain: %d queued ping_backend, one vmrqd, %d workers; requests %s, %s, %s\n", opt.drain,
           opt.workers, stats_name[0], stats_name[1], stats_name[2]);
    for (int r = 0; r < opt.runs; r++)
        for (int k = 0; k < STATS_LAST; k++) {
            enum stats st = (enum stats)((r + k) % STATS_LAST);
            add(f[st], drain_once(opt.drain, stats_set(st, opt.drain)));
        }
}

/* The same drain with `history` finished rows in the table. */
static void
scenario_history(void)
{
    struct figure *f = figure("drain with history", "req/s", 0, 1, "within 10% of drain");
    char q[512];

    printf("history: %d finished rows, then the drain of %d\n", opt.history, opt.drain);
    sql("TRUNCATE requests");
    /* the history is set up without the validation trigger: it is what the queue leaves behind */
    sql("ALTER TABLE requests DISABLE TRIGGER USER");
    snprintf(q, sizeof(q),
             "INSERT INTO requests (command, args, status, started_at, finished_at, date_req, date_changed)"
             " SELECT 'shutdown', jsonb_build_object('uid', 1, 'id_domain', i %% 1000 + 1), 'done',"
             "        now() - interval '1 day', now() - interval '1 day', now() - interval '1 day', now()"
             "   FROM generate_series(1, %d) i", opt.history);
    sql(q);
    sql("ALTER TABLE requests ENABLE TRIGGER USER");
    sql("VACUUM ANALYZE requests");
    for (int r = 0; r < opt.runs; r++) {
        add(f, drain_once(opt.drain, false));
        sql("DELETE FROM requests WHERE command = 'ping_backend'");
    }
}

/* Commit of the enqueue -> handler start, for requests sent one by one at `rate` per second to
 * an idle daemon. The commit is taken as the moment the client's enqueue returned. */
/* In each statistics state, in turn; analyzed while full: with `drain` requests queued, which
 * the daemon drains before the measurement, and the table vacuumed (not analyzed) after: the
 * statistics then say the opposite of the queue. */
static void
scenario_latency(void)
{
    struct figure *p50[STATS_LAST] = {
        figure("pickup latency p50", "ms", 1.0, 0, "<= 1.0"),
        figure("  p50, analyzed while full", "ms", 0, 0, "within 20% of best"),
        figure("  p50, analyzed while empty", "ms", 0, 0, "within 20% of best"),
    };
    struct figure *p99[STATS_LAST] = {
        figure("pickup latency p99", "ms", 3.0, 0, "<= 3.0"),
        figure("  p99, analyzed while full", "ms", 3.0, 0, "<= 3.0"),
        figure("  p99, analyzed while empty", "ms", 3.0, 0, "<= 3.0"),
    };
    double *lat = calloc((size_t)opt.latency, sizeof(*lat)), *acked = calloc((size_t)opt.latency, sizeof(*acked));
    long long *ids = calloc((size_t)opt.latency, sizeof(*ids));
    struct daemon d;

    printf("latency: %d ping_backend at %d/s to an idle vmrqd; requests %s, %s, %s\n", opt.latency, opt.rate,
           stats_name[0], stats_name[1], stats_name[2]);
    for (int r = 0; r < opt.runs * STATS_LAST; r++) {
        enum stats st = (enum stats)((r + r / STATS_LAST) % STATS_LAST);
        if (stats_set(st, opt.drain)) {
            daemon_start(&d, NULL, opt.workers);
            wait_idle();
            /* what autovacuum's vacuum would do after the burst, its analyze not yet */
            sql("VACUUM requests");
        } else {
            daemon_start(&d, NULL, opt.workers);
        }
        sleep_ms(200);
        for (int i = 0; i < opt.latency; i++) {
            vmrq_request *req = vmrq_request_new("ping_backend");
            double due = now_s() + 1.0 / opt.rate;
            if (vmrq_request_enqueue(db, req) < 0)
                die("enqueue: %s", vmrq_error_message());
            acked[i] = now_s();
            ids[i] = vmrq_request_id(req);
            vmrq_request_free(req);
            sleep_until(due);
        }
        wait_idle();
        for (int i = 0; i < opt.latency; i++) {
            char q[128];
            snprintf(q, sizeof(q), "SELECT extract(epoch FROM started_at) FROM requests WHERE id = %lld", ids[i]);
            lat[i] = (sql(q) - acked[i]) * 1000;
        }
        daemon_stop(&d);
        qsort(lat, (size_t)opt.latency, sizeof(*lat), cmp_double);
        add(p50[st], lat[opt.latency / 2]);
        add(p99[st], lat[(int)(opt.latency * 0.99)]);
    }
    free(lat);
    free(acked);
    free(ids);
}

static vmrq_request *
shutdown_request(int i)
{
    vmrq_request *req = vmrq_request_new("shutdown");

    vmrq_request_set_int(req, "uid", 1);
    vmrq_request_set_int(req, "id_domain", 1 + i % 1000);
    vmrq_request_set_int(req, "timeout", 60);
    return req;
}

/* libvmrq, one request per transaction on one connection. */
static void
scenario_enqueue(void)
{
    struct figure *f = figure("enqueue one per transaction", "req/s", 1500, 1, ">= 1500");

    printf("enqueue: %d shutdown requests through vmrq_request_enqueue(), one per transaction\n", opt.enqueue);
    for (int r = 0; r < opt.runs; r++) {
        double t0;
        sql("TRUNCATE requests");
        t0 = now_s();
        for (int i = 0; i < opt.enqueue; i++) {
            vmrq_request *req = shutdown_request(i);
            if (vmrq_request_enqueue(db, req) < 0)
                die("enqueue: %s", vmrq_error_message());
            vmrq_request_free(req);
        }
        add(f, opt.enqueue / (now_s() - t0));
    }
}

/* One run of vmrq_request_enqueue_batch(), 10,000 per statement, in one transaction: requests/s.
 * With `checks` false the row trigger that validates each row is off for that transaction
 * (back on before it commits; if the run dies, the rollback keeps it on): what the rows cost
 * without the database's checks, the floor under the bulk figure. */
static double
bulk_once(vmrq_request **reqs, bool checks)
{
    double t0, t;

    sql("TRUNCATE requests");
    for (int i = 0; i < opt.bulk; i++)
        reqs[i] = shutdown_request(i);
    t0 = now_s();
    sql("BEGIN");
    if (!checks)
        sql("ALTER TABLE requests DISABLE TRIGGER requests_before_insert");
    for (int i = 0; i < opt.bulk; i += 10000)
        if (vmrq_request_enqueue_batch(db, reqs + i, opt.bulk - i < 10000 ? (size_t)(opt.bulk - i) : 10000) < 0)
            die("enqueue batch: %s", vmrq_error_message());
    if (!checks)
        sql("ALTER TABLE requests ENABLE TRIGGER requests_before_insert");
    sql("COMMIT");
    t = now_s() - t0;
    for (int i = 0; i < opt.bulk; i++)
        vmrq_request_free(reqs[i]);
    return opt.bulk / t;
}

/* Bulk enqueue, and the same without the row checks (reference), in alternating runs. */
static void
scenario_bulk(void)
{
    struct figure *f = figure("enqueue bulk", "req/s", 100000, 1, ">= 100000");
    struct figure *floor = figure("  floor: without the row checks", "req/s", 0, 1, "(reference)");
    vmrq_request **reqs = calloc((size_t)opt.bulk, sizeof(*reqs));

    printf("bulk: %d shutdown requests through vmrq_request_enqueue_batch()\n", opt.bulk);
    for (int r = 0; r < opt.runs; r++) {
        add(f, bulk_once(reqs, true));
        add(floor, bulk_once(reqs, false));
    }
    free(reqs);
}

/* One run of the domain scenario with a daemon of `workers` configured by `conf`: requests/s
 * between the first start and the last finish. Dies if a domain ran two requests at once or a
 * request did not end done. */
static double
domains_once(const char *conf, int workers)
{
    struct daemon d;
    char q[512];
    double rate;
    long long overlaps, failed;

    sql("TRUNCATE requests, domains, domain_events, users, nodes RESTART IDENTITY CASCADE");
    sql("INSERT INTO users (name, is_operator) VALUES ('bench', true)");
    sql("INSERT INTO nodes (name, uri) VALUES ('bench', 'test:///bench')");
    daemon_start(&d, conf, workers);
    sql("SELECT vmrq_request('refresh_vms')");
    wait_idle();
    snprintf(q, sizeof(q),
             "INSERT INTO requests (command, args)"
             " SELECT CASE WHEN (i / %d) %% 2 = 0 THEN 'pause' ELSE 'resume' END,"
             "        jsonb_build_object('uid', 1, 'id_domain', 1 + i %% %d)"
             "   FROM generate_series(0, %d) i",
             opt.domains, opt.domains, opt.domain_requests - 1);
    sql("CHECKPOINT"); /* not during the run: the bulk scenario before leaves a lot to write */
    sql(q);
    wait_idle();
    rate = opt.domain_requests / sql("SELECT extract(epoch FROM max(finished_at) - min(started_at))"
                                     "  FROM requests WHERE command IN ('pause', 'resume')");
    overlaps = (long long)sql("SELECT count(*) FROM requests a JOIN requests b ON b.id_domain = a.id_domain"
                              " AND b.id > a.id WHERE b.started_at < a.finished_at");
    failed = (long long)sql("SELECT count(*) FROM requests WHERE status <> 'done'");
    daemon_stop(&d);
    if (overlaps || failed) {
        PGresult *res = PQexec(db, "SELECT command || ': ' || coalesce(error, status::text) FROM requests"
                                   " WHERE status <> 'done' ORDER BY id LIMIT 1");
        die("domains: %lld overlapping and %lld failed requests; the first: %s", overlaps, failed,
            PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) ? PQgetvalue(res, 0, 0) : "?");
    }
    return rate;
}

/* Domain commands on libvirt's test driver, spread over `domains` domains: pause and resume in
 * turn on each, so every request really changes its domain. Once per worker count of
 * --domain-workers: a domain command's cost is mostly the claim and the completion of its
 * batch, and the batch is as large as the workers free to take it. */
/* A test-driver hypervisor of `n` running domains, bench-0000 ..., written to the file that
 * mkstemp() makes of `xml` (the caller unlinks it); its vmrqd configuration (node `bench`) goes
 * to conf[size]. */
static void
bench_hypervisor(char *xml, int n, char *conf, size_t size)
{
    FILE *x;
    int fd;

    if ((fd = mkstemp(xml)) < 0 || !(x = fdopen(fd, "w")))
        die("%s: %s", xml, strerror(errno));
    fprintf(x, "<node>\n");
    for (int i = 0; i < n; i++)
        fprintf(x, "<domain type='test'><name>bench-%04d</name><memory>65536</memory><vcpu>1</vcpu>"
                   "<os><type>hvm</type></os></domain>\n", i);
    fprintf(x, "</node>\n");
    fclose(x);
    snprintf(conf, size, "libvirt_uri = test://%s\nnode = bench\n", xml);
}

static void
scenario_domains(void)
{
    char xml[] = "/tmp/vmrq-bench-xml.XXXXXX", conf[PATH_MAX + 128];
    int workers[16], nw = parse_counts("--domain-workers", opt.domain_workers, 1024, workers, 16);

    printf("domains: %d pause/resume over %d domains of libvirt's test driver, with %s workers\n",
           opt.domain_requests, opt.domains, opt.domain_workers);
    bench_hypervisor(xml, opt.domains, conf, sizeof(conf));
    for (int w = 0; w < nw; w++) {
        char *name = malloc(64); /* lives as long as the figure table */
        struct figure *f;

        if (!name)
            die("domains: out of memory");
        snprintf(name, 64, "domain commands, %d workers", workers[w]);
        f = figure(name, "req/s", 5000, 1, ">= 5000");
        for (int r = 0; r < opt.runs; r++)
            add(f, domains_once(conf, workers[w]));
    }
    unlink(xml);
}

/* refresh_vms on a node of --domains domains of libvirt's test driver, all known already (the
 * periodic refresh, and every start but the first): the time of one, started -> finished on the
 * database's clock, the listing and the display of each domain included. Dies unless each ends
 * done with the node's rows all there. */
static void
scenario_refresh(void)
{
    char xml[] = "/tmp/vmrq-bench-refresh.XXXXXX", conf[PATH_MAX + 128];
    static char name[64]; /* lives as long as the figure table */
    struct figure *f;
    struct daemon d;

    printf("refresh: refresh_vms of a node with %d domains of libvirt's test driver\n", opt.domains);
    bench_hypervisor(xml, opt.domains, conf, sizeof(conf));
    snprintf(name, sizeof(name), "refresh_vms, %d domains", opt.domains);
    f = figure(name, "ms", 0, 0, "(reference)");
    sql("TRUNCATE requests, domains, domain_conflicts, domain_events, users, nodes RESTART IDENTITY CASCADE");
    sql("INSERT INTO nodes (name, uri) VALUES ('bench', 'test:///bench')");
    daemon_start(&d, conf, 1);
    for (int r = -1; r < opt.runs; r++) { /* the first adopts the domains: not measured */
        double id = sql("SELECT vmrq_request('refresh_vms')"), ms;
        char q[256];

        wait_idle();
        snprintf(q, sizeof(q), "SELECT CASE WHEN status = 'done' THEN extract(epoch FROM finished_at - started_at)"
                               " * 1000 ELSE -1 END FROM requests WHERE id = %.0f", id);
        if ((ms = sql(q)) < 0 || sql("SELECT count(*) FROM domains WHERE id_node IS NOT NULL") != opt.domains)
            die("refresh: refresh_vms %.0f did not end done with %d domains", id, opt.domains);
        if (r >= 0)
            add(f, ms);
    }
    daemon_stop(&d);
    unlink(xml);
}

/* One run of the clone scenario: a base prepared on the hypervisor of `conf` (its desktop
 * bench-base, disk in pool `default`), then `n` clones of it, enqueued in one statement, or one
 * after another (`one_by_one`: each the only one at work, so that its time is its own, not a
 * queue's). Adds the clones per second (first start to last finish) to `rate` and the median
 * time from enqueue to defined (the request done) to `ms`. Dies if a clone did not end done. */
static void
clones_once(const char *conf, int n, bool one_by_one, struct figure *rate, struct figure *ms)
{
    struct daemon d;
    char q[512];

    sql("TRUNCATE requests, domains, domain_events, users, nodes RESTART IDENTITY CASCADE");
    sql("INSERT INTO users (name, is_operator) VALUES ('bench', true)");
    sql("INSERT INTO nodes (name, uri) VALUES ('bench', 'test:///bench')");
    daemon_start(&d, conf, opt.workers);
    sql("SELECT vmrq_request('refresh_vms')");
    wait_idle();
    sql("SELECT vmrq_request('prepare_base', '{\"uid\": 1, \"name\": \"bench-base\"}')");
    wait_idle();
    if (sql("SELECT count(*) FROM domains WHERE is_base") != 1)
        die("clones: prepare_base failed");
    for (int i = 0; i < (one_by_one ? n : 1); i++) {
        snprintf(q, sizeof(q), "SELECT count(vmrq_request('clone', jsonb_build_object('uid', 1, 'base', 'bench-base',"
                               " 'name', format('bench-clone-%%s', i)))) FROM generate_series(%d, %d) i",
                 one_by_one ? i + 1 : 1, one_by_one ? i + 1 : n);
        sql(q);
        wait_idle();
    }
    if (sql("SELECT count(*) FROM requests WHERE command = 'clone' AND status = 'done'") != n) {
        PGresult *res = PQexec(db, "SELECT coalesce(error, status::text) FROM requests WHERE command = 'clone'"
                                   " AND status <> 'done' LIMIT 1");
        die("clones: not every clone was made: %s",
            PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) ? PQgetvalue(res, 0, 0) : "?");
    }
    add(rate, n / sql("SELECT extract(epoch FROM max(finished_at) - min(started_at)) FROM requests"
                      " WHERE command = 'clone'"));
    add(ms, sql("SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - date_req))"
                "       * 1000 FROM requests WHERE command = 'clone'"));
    daemon_stop(&d);
}

/* Clones of one base: 100 at once on libvirt's test driver (what vmrq itself costs per clone:
 * the request, the row, the definition; the median includes the wait behind the other 99); and,
 * when a session libvirtd is at hand ($VMRQ_GUEST_URI, make bench runs under t/with-libvirtd),
 * 10 one after another in a dir pool with qcow2 overlays, which libvirt makes with qemu-img: an
 * overlay is metadata, not a copy. */
static void
scenario_clones(void)
{
    char xml[] = "/tmp/vmrq-bench-clones.XXXXXX", conf[PATH_MAX + 128];
    const char *uri = getenv("VMRQ_GUEST_URI"), *dir = getenv("VMRQ_GUEST_DIR");
    struct figure *rate, *ms;
    FILE *x;
    int fd;

    printf("clones: 100 of one base on libvirt's test driver%s\n",
           uri ? ", 10 in a dir pool with qcow2 overlays (session libvirtd)" : "");
    if ((fd = mkstemp(xml)) < 0 || !(x = fdopen(fd, "w")))
        die("%s: %s", xml, strerror(errno));
    fprintf(x, "<node><pool type='dir'><name>default</name><target><path>/bench</path></target>"
               "<volume type='file'><name>bench-base.qcow2</name><capacity unit='MiB'>16</capacity>"
               "<target><path>/bench/bench-base.qcow2</path><format type='qcow2'/></target></volume></pool>"
               "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'><name>bench-base</name>"
               "<memory>65536</memory><os><type>hvm</type></os><devices><disk type='file' device='disk'>"
               "<driver name='qemu' type='qcow2'/><source file='/bench/bench-base.qcow2'/>"
               "<target dev='vda' bus='virtio'/></disk></devices><test:runstate>5</test:runstate></domain></node>\n");
    fclose(x);
    snprintf(conf, sizeof(conf), "libvirt_uri = test://%s\nnode = bench\n", xml);
    rate = figure("clones, test driver", "clones/s", 0, 1, "(reference)");
    ms = figure("clone enqueue -> defined, test driver", "ms", 0, 0, "(reference)");
    for (int r = 0; r < opt.runs; r++)
        clones_once(conf, 100, false, rate, ms);
    unlink(xml);
    if (!uri || !dir || getenv("VMRQ_GUEST_SKIP"))
        return;
    {
        char cmd[16384], pool[1024];

        snprintf(pool, sizeof(pool), "%s/bench-pool", dir);
        snprintf(cmd, sizeof(cmd),
                 "virsh -q -c '%1$s' pool-info default >/dev/null 2>&1 ||"
                 " { virsh -q -c '%1$s' pool-define-as default dir --target '%2$s' && virsh -q -c '%1$s' pool-build default"
                 "   && virsh -q -c '%1$s' pool-start default; } >/dev/null 2>&1;"
                 " virsh -q -c '%1$s' vol-create-as default bench-base.qcow2 64M --format qcow2 >/dev/null 2>&1;"
                 " printf \"<domain type='qemu'><name>bench-base</name><memory unit='MiB'>64</memory>"
                 "<os><type arch='x86_64'>hvm</type></os><devices><disk type='file' device='disk'>"
                 "<driver name='qemu' type='qcow2'/><source file='%2$s/bench-base.qcow2'/><target dev='vda' bus='virtio'/>"
                 "</disk></devices></domain>\" > '%3$s/bench-base.xml' && virsh -q -c '%1$s' define '%3$s/bench-base.xml'"
                 " >/dev/null", uri, pool, dir);
        if (system(cmd) != 0)
            die("clones: cannot make the dir pool and its base desktop in %s", uri);
        snprintf(conf, sizeof(conf), "libvirt_uri = %s\nnode = bench\n", uri);
        rate = figure("clones one by one, dir pool, qcow2", "clones/s", 0, 1, "(reference)");
        ms = figure("clone enqueue -> defined, dir pool", "ms", 100, 0, "<= 100");
        for (int r = 0; r < opt.runs; r++) {
            clones_once(conf, 10, true, rate, ms);
            snprintf(cmd, sizeof(cmd), "for n in $(virsh -q -c '%1$s' list --all --name | grep '^bench-clone-'); do"
                                       " virsh -q -c '%1$s' undefine \"$n\" --remove-all-storage >/dev/null 2>&1; done;"
                                       " virsh -q -c '%1$s' vol-delete bench-base-vda.base.qcow2 --pool default"
                                       " >/dev/null 2>&1", uri);
            if (system(cmd) != 0)
                die("clones: cannot remove the clones of run %d", r + 1);
        }
    }
}

/* ---------------------------------------------------------------- fleet */

/* The fields of /proc/PID/stat after the command's name, from the state on, read into buf
 * (`size` bytes); NULL if the process is gone. */
static const char *
proc_stat(int pid, char *buf, int size)
{
    char path[64], *p = NULL;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    if (!(f = fopen(path, "r")))
        return NULL;
    if (fgets(buf, size, f) && (p = strrchr(buf, ')')))
        p += 2;
    fclose(f);
    return p;
}

/* The CPU ticks of process `pid` (/proc/PID/stat): t[0], t[1] its own user and system time,
 * t[2], t[3] those of the children it has reaped. False if it is gone. */
static bool
proc_ticks(int pid, long long t[4])
{
    char buf[1024];
    const char *p = proc_stat(pid, buf, sizeof(buf));

    return p && sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld %lld %lld", &t[0], &t[1], &t[2],
                       &t[3]) == 4;
}

/* The CPU time of process `pid` in ns, or -1 if it is gone: the scheduler's own count
 * (/proc/PID/schedstat), exact, where the ticks of /proc/PID/stat are sampled at the timer's
 * rate (an idle fleet's backends each run a few ms a minute: about one tick, or none). */
static long long
proc_cpu_ns(int pid)
{
    char path[64];
    long long ns, t[4];
    FILE *f;
    int ok;

    snprintf(path, sizeof(path), "/proc/%d/schedstat", pid);
    if ((f = fopen(path, "r"))) {
        ok = fscanf(f, "%lld", &ns) == 1;
        fclose(f);
        return ok ? ns : -1;
    }
    /* a kernel without CONFIG_SCHED_INFO */
    return proc_ticks(pid, t) ? (t[0] + t[1]) * (1000000000LL / sysconf(_SC_CLK_TCK)) : -1;
}

/* The CPU time in ns of the children process `pid` has reaped, or 0 if it is gone. */
static long long
proc_reaped_ns(int pid)
{
    long long t[4];

    return proc_ticks(pid, t) ? (t[2] + t[3]) * (1000000000LL / sysconf(_SC_CLK_TCK)) : 0;
}

/* The CPU time (ns) of the database's processes: every backend and auxiliary process
 * pg_stat_activity lists, and their parent, the postmaster, with the children it has reaped:
 * the autovacuum workers, which come and go between two readings (analyzing what changed,
 * or finding nothing to do), and are the database's CPU all the same. Each pid's goes into ns[]
 * beside pids[] (at most 512). Returns how many. */
static int
pg_cpu(int *pids, long long *ns)
{
    PGresult *res = PQexec(db, "SELECT pid FROM pg_stat_activity");
    int n = 0;

    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        die("pg_stat_activity: %s", PQerrorMessage(db));
    for (int i = 0; i <= PQntuples(res) && n < 512; i++) {
        char buf[1024];
        const char *p;
        int ppid, pid = i < PQntuples(res) ? atoi(PQgetvalue(res, i, 0)) : -1;
        long long v;

        if (pid < 0) { /* the postmaster: the parent of the first */
            if (n == 0)
                break;
            if (!(p = proc_stat(pids[0], buf, sizeof(buf))) || sscanf(p, "%*c %d", &ppid) != 1)
                die("/proc/%d/stat: cannot read the parent", pids[0]);
            pid = ppid;
        }
        if ((v = proc_cpu_ns(pid)) >= 0) { /* else gone meanwhile */
            if (i == PQntuples(res))
                v += proc_reaped_ns(pid);
            pids[n] = pid;
            ns[n++] = v;
        }
    }
    PQclear(res);
    return n;
}

/* The database's processes' CPU time at a mark, for pg_cpu_since(). */
static struct {
    int pids[512], n;
    long long ns[512];
    double t;
} cpu_mark;

static void
pg_cpu_mark(void)
{
    cpu_mark.n = pg_cpu(cpu_mark.pids, cpu_mark.ns);
    cpu_mark.t = now_s();
}

/* The CPU seconds the database's processes used since pg_cpu_mark() (processes present at both
 * ends only); the wall-clock seconds go to *elapsed. */
static double
pg_cpu_since(double *elapsed)
{
    static int pb[512];
    static long long tb[512];
    long long used = 0;
    int nb = pg_cpu(pb, tb);

    *elapsed = now_s() - cpu_mark.t;
    for (int i = 0; i < nb; i++)
        for (int k = 0; k < cpu_mark.n; k++)
            if (cpu_mark.pids[k] == pb[i])
                used += tb[i] - cpu_mark.ns[k];
    return (double)used / 1e9;
}

/* The share of one core the database's processes used over `ms` milliseconds, in percent. */
static double
pg_cpu_percent(int ms)
{
    double t, used;

    pg_cpu_mark();
    sleep_ms(ms);
    used = pg_cpu_since(&t);
    return 100.0 * used / t;
}

/* The calls of vmrq_claim() PostgreSQL has counted, once settled: a backend reports its counts
 * when it goes idle, at most once a second and otherwise within 10 s, so the sum is read until
 * it has not moved for 11 s. */
static double
settled_claims(void)
{
    const char *q = "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions WHERE funcname = 'vmrq_claim'";
    double last = -1, v;
    int still_ms = 0;

    for (int waited = 0; waited < 120000; waited += 250) {
        sql("SELECT pg_stat_clear_snapshot()");
        v = sql(q);
        still_ms = v == last ? still_ms + 250 : 0;
        if (still_ms >= 11000)
            return v;
        last = v;
        sleep_ms(250);
    }
    die("fleet: the count of vmrq_claim() calls did not settle within 2 minutes");
}

/* PostgreSQL's own share of a pickup: `n` NOTIFYs at 50/s to a session of the bench's that
 * listens, each timed from the statement's start to its arrival (the client's clock), while the
 * fleet's daemons listen on their channels. PostgreSQL 15 signals every backend that listens in
 * the database at each notification, whatever its channel, and each wakes to read it: the
 * database's CPU per NOTIFY (ms) goes to *cpu_ms. Returns the median latency in ms. */
static double
notify_floor_ms(int n, double *cpu_ms)
{
    PGconn *l = bench_connect();
    double *lat = calloc((size_t)n, sizeof(*lat)), t0, m;
    PGresult *res;

    if (!lat || PQstatus(l) != CONNECTION_OK)
        die("notify floor: %s", lat ? PQerrorMessage(l) : "out of memory");
    res = PQexec(l, "LISTEN vmrq_bench_floor");
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        die("notify floor: LISTEN: %s", PQerrorMessage(l));
    PQclear(res);
    pg_cpu_mark();
    for (int i = 0; i < n; i++) {
        PGnotify *got = NULL;

        t0 = now_s();
        sql("SELECT pg_notify('vmrq_bench_floor', '')");
        while (!got) {
            struct pollfd pfd = { PQsocket(l), POLLIN, 0 };

            if (!PQconsumeInput(l))
                die("notify floor: %s", PQerrorMessage(l));
            if ((got = PQnotifies(l)))
                break;
            if (poll(&pfd, 1, 10000) == 0)
                die("notify floor: no notification within 10 s");
        }
        PQfreemem(got);
        lat[i] = (now_s() - t0) * 1000;
        sleep_until(t0 + 0.02);
    }
    *cpu_ms = pg_cpu_since(&t0) * 1000 / n;
    m = median(lat, n);
    free(lat);
    PQfinish(l);
    return m;
}

/* `n` vmrqd, one node each (fleet1 .. fleetN, each its own test:///default); `opt.fleet_requests`
 * pause/resume of node fleet1's domains at `opt.fleet_rate` per second: claims per request
 * (counted by PostgreSQL: track_functions; the idle rate of the fallback polls taken out),
 * pickup (commit -> claimed) p50 and p99, the database's CPU while all are idle, the same with
 * only as many bare sessions as the daemons held (idle_sessions_floor()), and the claims the idle
 * daemons make (their polls). */
#define FLEET_DOMAINS 50 /* node fleet1's, taken in turn: no request waits behind its domain's last */

/* The figures of one fleet size, in the order they print. */
enum { FLEET_CLAIMS, FLEET_P50, FLEET_HERD, FLEET_P99, FLEET_IDLE_CPU, FLEET_IDLE_FLOOR, FLEET_IDLE_CLAIMS, FLEET_NOTIFY,
       FLEET_NOTIFY_CPU, FLEET_LAST };

/* The i-th request: pause, then on the next round resume, domain fleet-(i % FLEET_DOMAINS + 1). */
static void
fleet_request(int i, long long *id)
{
    vmrq_request *req = vmrq_request_new((i / FLEET_DOMAINS) % 2 ? "resume" : "pause");
    char name[32];

    snprintf(name, sizeof(name), "fleet-%d", i % FLEET_DOMAINS + 1);
    vmrq_request_set_int(req, "uid", 1);
    vmrq_request_set_string(req, "name", name);
    if (vmrq_request_enqueue(db, req) < 0)
        die("fleet: enqueue: %s", vmrq_error_message());
    *id = vmrq_request_id(req);
    vmrq_request_free(req);
}

/* opt.fleet_requests requests for node fleet1 at opt.fleet_rate a second, the `pass`-th time
 * (1 or more: all of node fleet1's so far must have run on it); their pickups, insert -> claim
 * on the database's clock, sorted into lat[]. On the client's clock its own answer comes late
 * with many listeners (its commit signals each of them), and would flatter the figure. */
static void
fleet_pickups(double *lat, long long *ids, int pass)
{
    char q[256];

    for (int i = 0; i < opt.fleet_requests; i++) {
        double due = now_s() + 1.0 / opt.fleet_rate;
        fleet_request(i, &ids[i]);
        sleep_until(due);
    }
    wait_idle();
    if (sql("SELECT count(*) FROM requests r JOIN daemons m ON m.id = r.id_daemon"
            " WHERE r.command IN ('pause', 'resume') AND r.status = 'done' AND m.node = 'fleet1'")
        != pass * opt.fleet_requests + 2)
        die("fleet: not every request ran, and ran on node fleet1");
    for (int i = 0; i < opt.fleet_requests; i++) {
        snprintf(q, sizeof(q), "SELECT extract(epoch FROM started_at - date_req) FROM requests WHERE id = %lld", ids[i]);
        lat[i] = sql(q) * 1000;
    }
    qsort(lat, (size_t)opt.fleet_requests, sizeof(*lat), cmp_double);
}

/* PostgreSQL's own share of the idle figure: `n` sessions that only sit connected (as many as
 * the fleet's daemons held), the database's CPU over 60 s once they have settled (15 s). What the
 * server spends on its connected backends whatever they run is under vmrq's figure. */
static double
idle_sessions_floor(int n)
{
    PGconn **c = calloc((size_t)n, sizeof(*c));
    double pct;

    if (!c)
        die("idle floor: out of memory");
    for (int i = 0; i < n; i++)
        if (PQstatus(c[i] = bench_connect()) != CONNECTION_OK)
            die("idle floor: %s", PQerrorMessage(c[i]));
    sleep_ms(15000);
    pct = pg_cpu_percent(60000);
    printf("  (%d bare sessions, as many as the daemons held)\n", n);
    for (int i = 0; i < n; i++)
        PQfinish(c[i]);
    free(c);
    return pct;
}

static void
fleet_once(int n, struct figure *const f[FLEET_LAST])
{
    struct daemon *d = calloc((size_t)n, sizeof(*d));
    double *lat = calloc((size_t)opt.fleet_requests, sizeof(*lat));
    long long *ids = calloc((size_t)opt.fleet_requests, sizeof(*ids));
    double idle0, before, after, t_idle0, t_before, t_after, rate, t_registered, notify_cpu, sessions;
    char q[256], xml[] = "/tmp/vmrq-bench-fleet.XXXXXX";
    FILE *x;
    int fd;

    if (!d || !lat || !ids)
        die("fleet: out of memory");
    sql("TRUNCATE requests, domains, domain_events, users, nodes, daemons RESTART IDENTITY CASCADE");
    sql("INSERT INTO users (name, is_operator) VALUES ('bench', true)");
    snprintf(q, sizeof(q), "INSERT INTO nodes (name, uri) SELECT 'fleet' || i, 'test:///default'"
                           " FROM generate_series(1, %d) i", n);
    sql(q);
    /* node fleet1's hypervisor: FLEET_DOMAINS running desktops; the others: test:///default */
    if ((fd = mkstemp(xml)) < 0 || !(x = fdopen(fd, "w")))
        die("%s: %s", xml, strerror(errno));
    fprintf(x, "<node>\n");
    for (int i = 1; i <= FLEET_DOMAINS; i++)
        fprintf(x, "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'><name>fleet-%d</name>"
                   "<memory>65536</memory><os><type>hvm</type></os><test:runstate>1</test:runstate></domain>\n", i);
    fprintf(x, "</node>\n");
    fclose(x);
    snprintf(q, sizeof(q), "INSERT INTO domains (name, id_node, id_owner) SELECT 'fleet-' || i, 1, 1"
                           " FROM generate_series(1, %d) i", FLEET_DOMAINS);
    sql(q);
    for (int i = 0; i < n; i++) {
        char extra[PATH_MAX + 128];
        snprintf(extra, sizeof(extra), "libvirt_uri = test://%s\nnode = fleet%d\nrefresh_interval = 0\nlanes = 0\n",
                 i == 0 ? xml : "/default", i + 1);
        daemon_spawn(&d[i], extra, 2);
    }
    for (int i = 0; i < 3000 && sql("SELECT count(*) FROM daemons WHERE stopped_at IS NULL") < n; i++)
        sleep_ms(10);
    if (sql("SELECT count(*) FROM daemons WHERE stopped_at IS NULL") < n)
        die("fleet: %d vmrqd did not all register within 30 s", n);
    t_registered = now_s();
    /* warm-up: the workers' and the event sink's connections open at their first use (the
     * pause and resume of one domain) */
    for (int i = 0; i < 2; i++) {
        fleet_request(i * FLEET_DOMAINS, &ids[0]);
        wait_idle();
    }
    /* idle: the database's CPU over 60 s (two poll_intervals: three beats of each daemon, every
     * two thirds of a lease, each with a recovery pass and a fallback poll), and the claims of those
     * polls, which the claims per request leave out. Measured once every daemon is past its first
     * lease: an idle fleet runs for hours, and its first minute (the first plans of each session,
     * the first recovery, a lease after the start) is not what it costs then. */
    sleep_until(t_registered + 45);
    idle0 = settled_claims();
    t_idle0 = now_s();
    add(f[FLEET_IDLE_CPU], pg_cpu_percent(60000));
    sessions = sql("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'vmrqd%'");
    before = settled_claims();
    t_before = now_s();
    rate = (before - idle0) / (t_before - t_idle0);
    add(f[FLEET_IDLE_CLAIMS], rate);
    add(f[FLEET_NOTIFY], notify_floor_ms(500, &notify_cpu));
    add(f[FLEET_NOTIFY_CPU], notify_cpu);
    before = settled_claims(); /* the floor's notifications woke no daemon; still, count from here */
    t_before = now_s();
    fleet_pickups(lat, ids, 1);
    after = settled_claims();
    t_after = now_s();
    for (int i = 1; i < n; i++)
        daemon_stop(&d[i]);
    if (n > 1) { /* PostgreSQL's share: node fleet1's vmrqd, the others' listening sessions bare */
        PGconn **l = calloc((size_t)n - 1, sizeof(*l));
        double *herd = calloc((size_t)opt.fleet_requests, sizeof(*herd));

        if (!l || !herd)
            die("fleet: out of memory");
        for (int i = 0; i < n - 1; i++) {
            PGresult *res;

            if (PQstatus(l[i] = bench_connect()) != CONNECTION_OK)
                die("fleet: %s", PQerrorMessage(l[i]));
            snprintf(q, sizeof(q), "LISTEN vmrq_bench_herd_%d", i);
            if (PQresultStatus(res = PQexec(l[i], q)) != PGRES_COMMAND_OK)
                die("fleet: LISTEN: %s", PQerrorMessage(l[i]));
            PQclear(res);
        }
        fleet_pickups(herd, ids, 2);
        for (int i = 0; i < n - 1; i++)
            PQfinish(l[i]);
        add(f[FLEET_HERD], herd[opt.fleet_requests / 2]);
        free(l);
        free(herd);
    }
    daemon_stop(&d[0]);
    unlink(xml);
    add(f[FLEET_IDLE_FLOOR], idle_sessions_floor((int)sessions));
    add(f[FLEET_CLAIMS], (after - before - rate * (t_after - t_before)) / opt.fleet_requests);
    add(f[FLEET_P50], lat[opt.fleet_requests / 2]);
    add(f[FLEET_P99], lat[(int)(opt.fleet_requests * 0.99)]);
    free(d);
    free(lat);
    free(ids);
}

static void
scenario_fleet(void)
{
    static const char *const what[FLEET_LAST] = { "claims per request", "pickup p50",
                                                  "p50, 1 vmrqd + bare listeners", "pickup p99", "idle database CPU",
                                                  "idle DB CPU, bare sessions", "idle claims (polls)", "NOTIFY alone, p50",
                                                  "NOTIFY alone, database CPU" };
    static char names[8][FLEET_LAST][48]; /* live as long as the figure table */
    struct figure *f[8][FLEET_LAST];
    int sizes[8], n = parse_counts("--fleet-sizes", opt.fleet_sizes, 100, sizes, 8);

    printf("fleet: %s vmrqd (one node each); %d pause/resume of one node's %d domains at %d/s\n", opt.fleet_sizes,
           opt.fleet_requests, FLEET_DOMAINS, opt.fleet_rate);
    for (int s = 0; s < n; s++) {
        bool big = sizes[s] >= 50;

        for (int k = 0; k < FLEET_LAST; k++)
            snprintf(names[s][k], sizeof(names[s][k]), k ? "  %d: %s" : "fleet %d: %s", sizes[s], what[k]);
        f[s][FLEET_CLAIMS] = figure(names[s][FLEET_CLAIMS], "claims", 1.5, 0, "< 1.5");
        f[s][FLEET_P50] = figure(names[s][FLEET_P50], "ms", 0, 0, s ? "within 20% of the 1st" : "(reference)");
        /* the others' listening sessions bare: what PostgreSQL's signals cost node fleet1's pickup */
        f[s][FLEET_HERD] = sizes[s] > 1 ? figure(names[s][FLEET_HERD], "ms", 0, 0, "(reference: PostgreSQL's)") : NULL;
        f[s][FLEET_P99] = figure(names[s][FLEET_P99], "ms", 0, 0, "(reference)");
        f[s][FLEET_IDLE_CPU] = figure(names[s][FLEET_IDLE_CPU], "% core", big ? 1.0 : 0, 0, big ? "< 1" : "(reference)");
        f[s][FLEET_IDLE_FLOOR] = figure(names[s][FLEET_IDLE_FLOOR], "% core", 0, 0, "(reference: PostgreSQL's)");
        f[s][FLEET_IDLE_CLAIMS] = figure(names[s][FLEET_IDLE_CLAIMS], "claims/s", 0, 0, "(reference)");
        f[s][FLEET_NOTIFY] = figure(names[s][FLEET_NOTIFY], "ms", 0, 0, "(reference: PostgreSQL's)");
        f[s][FLEET_NOTIFY_CPU] = figure(names[s][FLEET_NOTIFY_CPU], "ms", 0, 0, "(reference: PostgreSQL's)");
        if (s > 0) {
            f[s][FLEET_P50]->relative_to = f[0][FLEET_P50];
            f[s][FLEET_P50]->relative_factor = 1.2;
        }
    }
    sql("ALTER ROLE CURRENT_USER SET track_functions = 'all'"); /* the daemons' sessions count calls */
    for (int r = 0; r < opt.runs; r++)
        for (int s = 0; s < n; s++)
            fleet_once(sizes[s], f[s]);
    sql("ALTER ROLE CURRENT_USER RESET track_functions");
    sql("TRUNCATE requests, domains, domain_events, users, nodes, daemons RESTART IDENTITY CASCADE");
}

/* ---------------------------------------------------------------- beat */

#define BEAT_SLEEP_MS 20000 /* an idle vmrqd's beat period with the default lease (30 s) */
#define BEAT_SAMPLES 3      /* asleep and woken, per run */
#define BEAT_WARM 20        /* back to back, per run */

enum { BEAT_COLD, BEAT_WARM_FIG, BEAT_UPDATE, BEAT_SELECT, BEAT_LAST };

/* One session of the beat scenario: its statement, prepared, and its backend's pid. */
struct beat_session {
    PGconn *c;
    int pid;
};

static void
beat_open(struct beat_session *b, const char *stmt)
{
    PGresult *res;

    if (PQstatus(b->c = bench_connect()) != CONNECTION_OK)
        die("beat: %s", PQerrorMessage(b->c));
    res = PQexec(b->c, "SELECT pg_backend_pid()");
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        die("beat: %s", PQerrorMessage(b->c));
    b->pid = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    res = PQprepare(b->c, "s", stmt, 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        die("beat: %s: %s", stmt, PQerrorMessage(b->c));
    PQclear(res);
}

/* The CPU (ms) session b's backend spends on one execution of its statement. */
static double
beat_once(struct beat_session *b)
{
    long long t0 = proc_cpu_ns(b->pid), t1;
    PGresult *res = PQexecPrepared(b->c, "s", 0, NULL, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
        die("beat: %s", PQerrorMessage(b->c));
    PQclear(res);
    if (t0 < 0 || (t1 = proc_cpu_ns(b->pid)) < 0)
        die("beat: cannot read the CPU time of backend %d", b->pid);
    return (t1 - t0) / 1e6;
}

/* What one beat costs its backend, the unit of the fleet's idle CPU (beats a second times
 * this, beside the floor of its sessions): vmrq_beat() as an idle vmrqd calls it (recovery and
 * poll due, no pools), woken after BEAT_SLEEP_MS asleep, and called back to back; beside it,
 * after the same sleep, its heartbeat's UPDATE alone and a SELECT 1 (PostgreSQL's own share of
 * a wake-up). Each is the backend's own CPU (/proc/PID/schedstat), in a session of its own. */
static void
scenario_beat(void)
{
    static const char *const stmt[BEAT_LAST] = {
        "SELECT * FROM vmrq_beat(1, 30000 * interval '1 millisecond', true, true, NULL)",
        "SELECT * FROM vmrq_beat(2, 30000 * interval '1 millisecond', true, true, NULL)",
        "UPDATE daemons SET heartbeat_at = now() WHERE id = 3",
        "SELECT 1",
    };
    struct figure *f[BEAT_LAST] = {
        figure("beat, woken after 20 s asleep", "ms", 0, 0, "(reference)"),
        figure("  the same beat, back to back", "ms", 0, 0, "(reference)"),
        figure("  its UPDATE alone, after 20 s", "ms", 0, 0, "(reference: PostgreSQL's)"),
        figure("  a SELECT 1, after 20 s", "ms", 0, 0, "(reference: PostgreSQL's)"),
    };
    struct beat_session b[BEAT_LAST];
    double v[BEAT_LAST][BEAT_WARM];

    printf("beat: one session's backend CPU per statement, %d woken after %d s asleep and %d back to back\n",
           BEAT_SAMPLES, BEAT_SLEEP_MS / 1000, BEAT_WARM);
    sql("TRUNCATE requests, domains, domain_events, users, nodes, daemons RESTART IDENTITY CASCADE");
    sql("INSERT INTO nodes (name, uri) VALUES ('beat', 'test:///default')");
    sql("INSERT INTO daemons (node, hostname, pid, version) SELECT 'beat', 'bench', i, 'bench'"
        " FROM generate_series(1, 3) i");
    for (int k = 0; k < BEAT_LAST; k++) {
        beat_open(&b[k], stmt[k]);
        beat_once(&b[k]); /* the session's first plans are not what a beat costs */
        beat_once(&b[k]);
    }
    for (int r = 0; r < opt.runs; r++) {
        for (int i = 0; i < BEAT_SAMPLES; i++) {
            sleep_ms(BEAT_SLEEP_MS);
            for (int k = 0; k < BEAT_LAST; k++)
                if (k != BEAT_WARM_FIG)
                    v[k][i] = beat_once(&b[k]);
        }
        for (int i = 0; i < BEAT_WARM; i++)
            v[BEAT_WARM_FIG][i] = beat_once(&b[BEAT_WARM_FIG]);
        for (int k = 0; k < BEAT_LAST; k++)
            add(f[k], median(v[k], k == BEAT_WARM_FIG ? BEAT_WARM : BEAT_SAMPLES));
    }
    for (int k = 0; k < BEAT_LAST; k++)
        PQfinish(b[k].c);
    sql("TRUNCATE nodes, daemons RESTART IDENTITY CASCADE");
}

/* What the libraries alone take: $VMRQ_RSS_FLOOR (t/bench/rss_floor.c) opens one libvirt and
 * one libpq connection, as vmrqd does first, and waits. No target: it is the floor under
 * vmrqd's figure. */
static void
rss_floor(void)
{
    const char *prog = getenv("VMRQ_RSS_FLOOR");
    struct figure *f;
    char cmd[PATH_MAX + 64];
    long rss = -1;
    int pid = -1;
    FILE *p;

    if (!prog) {
        printf("rss: no floor figure ($VMRQ_RSS_FLOOR is not set; make bench sets it)\n");
        return;
    }
    f = figure("floor: libvirt + libpq, nothing else", "MiB", 0, 0, "(reference)");
    snprintf(cmd, sizeof(cmd), "'%s' test:///default", prog);
    if (!(p = popen(cmd, "r")) || fscanf(p, "ready %d", &pid) != 1 || (rss = status_kib(pid, "VmRSS")) < 0)
        die("%s did not start", prog);
    kill(pid, SIGTERM);
    if (pclose(p) != 0)
        die("%s failed", prog);
    add(f, rss / 1024.0);
}

/* vmrqd's resident memory with its workers, early and after `rss` requests. */
static void
scenario_rss(void)
{
    struct figure *early = figure("vmrqd RSS after 5% of the requests", "MiB", 16, 0, "<= 16");
    struct figure *late = figure("vmrqd RSS after all the requests", "MiB", 16, 0, "<= 16, flat");
    struct figure *anon = figure("  of which its own (RssAnon)", "MiB", 16, 0, "<= 16");
    int chunk = opt.rss / 20 > 0 ? opt.rss / 20 : 1;
    struct daemon d;
    char q[256];

    printf("rss: %d ping_backend through one vmrqd with %d workers, in 20 chunks\n", opt.rss, opt.workers);
    sql("TRUNCATE requests");
    daemon_start(&d, NULL, opt.workers);
    for (int c = 0; c < 20; c++) {
        snprintf(q, sizeof(q), "INSERT INTO requests (command) SELECT 'ping_backend' FROM generate_series(1, %d)", chunk);
        sql(q);
        wait_idle();
        if (c == 0)
            add(early, status_kib(d.pid, "VmRSS") / 1024.0);
    }
    add(late, status_kib(d.pid, "VmRSS") / 1024.0);
    add(anon, status_kib(d.pid, "RssAnon") / 1024.0);
    daemon_stop(&d);
    rss_floor();
}

/* ---------------------------------------------------------------- main */

static struct figure *
find_figure(const char *name)
{
    for (int i = 0; i < nfigures; i++)
        if (strcmp(figures[i].name, name) == 0)
            return &figures[i];
    return NULL;
}

/* Of three figures, the second and third must be within `factor` of the best median of the three
 * (higher_better: at least factor times it; else at most). */
static void
relative_targets(const char *const names[3], bool higher_better, double factor)
{
    struct figure *f[3];
    double best = 0;

    for (int i = 0; i < 3; i++)
        if (!(f[i] = find_figure(names[i])))
            return;
    for (int i = 0; i < 3; i++) {
        double m = median(f[i]->v, f[i]->n);
        best = i == 0 ? m : higher_better ? (m > best ? m : best) : (m < best ? m : best);
    }
    for (int i = 1; i < 3; i++)
        f[i]->target = factor * best;
}

static void
report(void)
{
    struct figure *drain = find_figure("drain ping_backend"), *hist = find_figure("drain with history");
    FILE *out;

    /* the history figure's target is relative: within 10% of the empty-table drain */
    if (drain && hist) {
        hist->relative_to = drain;
        hist->relative_factor = 0.9;
    }
    relative_targets((const char *const[]){ "drain ping_backend", "drain, analyzed while full",
                                            "drain, analyzed while empty" }, true, 0.9);
    relative_targets((const char *const[]){ "pickup latency p50", "  p50, analyzed while full",
                                            "  p50, analyzed while empty" }, false, 1.2);
    for (int i = 0; i < nfigures; i++)
        if (figures[i].relative_to)
            figures[i].target = figures[i].relative_factor * median(figures[i].relative_to->v, figures[i].relative_to->n);

    printf("\n%-36s %10s %10s %10s %-22s %s\n", "figure", "median", "min", "max", "target", "result");
    for (int i = 0; i < nfigures; i++) {
        struct figure *f = &figures[i];
        double med = median(f->v, f->n);
        bool pass = f->higher_better ? med >= f->target : med <= f->target;
        printf("%-36s %10.2f %10.2f %10.2f %-22s %s\n", f->name, med, f->v[0], f->v[f->n - 1], f->target_text,
               f->target == 0 ? "-" : pass ? "pass" : "FAIL");
    }
    if (!(out = fopen(opt.out, "w")))
        die("%s: %s", opt.out, strerror(errno));
    fprintf(out, "{\"runs\": %d, \"figures\": [\n", opt.runs);
    for (int i = 0; i < nfigures; i++) {
        struct figure *f = &figures[i];
        double med = median(f->v, f->n);
        fprintf(out, "  {\"name\": \"%s\", \"unit\": \"%s\", \"median\": %.3f, \"min\": %.3f, \"max\": %.3f,"
                     " \"target\": \"%s\", \"values\": [", f->name, f->unit, med, f->v[0], f->v[f->n - 1],
                f->target_text);
        for (int k = 0; k < f->n; k++)
            fprintf(out, "%s%.3f", k ? ", " : "", f->v[k]);
        fprintf(out, "]}%s\n", i + 1 < nfigures ? "," : "");
    }
    fprintf(out, "]}\n");
    fclose(out);
    printf("\n(written to %s)\n", opt.out);
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "runs", required_argument, NULL, 'r' },    { "drain", required_argument, NULL, 'd' },
        { "history", required_argument, NULL, 'H' }, { "latency", required_argument, NULL, 'l' },
        { "rate", required_argument, NULL, 'R' },    { "enqueue", required_argument, NULL, 'e' },
        { "bulk", required_argument, NULL, 'b' },    { "domains", required_argument, NULL, 'D' },
        { "domain-requests", required_argument, NULL, 'q' }, { "rss", required_argument, NULL, 'm' },
        { "workers", required_argument, NULL, 'w' }, { "lanes", required_argument, NULL, 'L' },
        { "only", required_argument, NULL, 'o' },    { "domain-workers", required_argument, NULL, 'W' },
        { "out", required_argument, NULL, 'O' },     { "fleet-requests", required_argument, NULL, 'F' },
        { "fleet-rate", required_argument, NULL, 'T' }, { "fleet-sizes", required_argument, NULL, 'S' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'r': opt.runs = atoi(optarg); break;
        case 'd': opt.drain = atoi(optarg); break;
        case 'H': opt.history = atoi(optarg); break;
        case 'l': opt.latency = atoi(optarg); break;
        case 'R': opt.rate = atoi(optarg); break;
        case 'e': opt.enqueue = atoi(optarg); break;
        case 'b': opt.bulk = atoi(optarg); break;
        case 'D': opt.domains = atoi(optarg); break;
        case 'q': opt.domain_requests = atoi(optarg); break;
        case 'm': opt.rss = atoi(optarg); break;
        case 'w': opt.workers = atoi(optarg); break;
        case 'L': opt.lanes = atoi(optarg); break;
        case 'o': opt.only = optarg; break;
        case 'W': opt.domain_workers = optarg; break;
        case 'O': opt.out = optarg; break;
        case 'F': opt.fleet_requests = atoi(optarg); break;
        case 'T': opt.fleet_rate = atoi(optarg); break;
        case 'S': opt.fleet_sizes = optarg; break;
        default: die("unknown option; see the comment at the top of t/bench/bench.c");
        }
    }
    if (opt.runs < 1 || opt.runs > 64 || opt.drain < 1 || opt.latency < 1 || opt.rate < 1 || opt.workers < 1 ||
        opt.fleet_requests < 1 || opt.fleet_rate < 1)
        die("--runs from 1 to 64; counts, rate and workers at least 1");
    db = bench_connect();
    if (PQstatus(db) != CONNECTION_OK)
        die("database: %s", PQerrorMessage(db));
    if (vmrq_db_upgrade(db) < 0)
        die("db upgrade: %s", vmrq_error_message());
    /* the statistics of requests are what each scenario sets (stats_set()), not autovacuum's */
    sql("ALTER TABLE requests SET (autovacuum_enabled = false)");
    printf("vmrq %s bench: %d runs per figure; PostgreSQL %s with its default settings\n\n", vmrq_version(),
           opt.runs, PQparameterStatus(db, "server_version"));
    /* The history figure is a ratio to the drain's: the two are measured back to back, on the
     * cluster in the same state (apart, the history ran 69% to 106% of a drain measured
     * minutes before). They come last but for the memory: the million rows the history writes
     * slow every commit for half a minute after (pickup p99 0.9 -> 3.9 ms right after it). */
    if (wanted("latency"))
        scenario_latency();
    if (wanted("enqueue"))
        scenario_enqueue();
    if (wanted("bulk"))
        scenario_bulk();
    if (wanted("domains"))
        scenario_domains();
    if (wanted("refresh"))
        scenario_refresh();
    if (wanted("clones"))
        scenario_clones();
    if (wanted("fleet"))
        scenario_fleet();
    if (wanted("beat"))
        scenario_beat();
    if (wanted("drain"))
        scenario_drain();
    if (wanted("history"))
        scenario_history();
    if (wanted("rss"))
        scenario_rss();
    report();
    PQfinish(db);
    return 0;
}
