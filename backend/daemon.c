/*
 * daemon.c - vmrqd's main loop (see daemon.h).
 *
 * One thread owns the control connection and every decision; workers (pool.c) only run
 * handlers. Each turn of the loop:
 *   signals -> (re)connect -> take finished jobs -> deadlines -> write completions (one batch)
 *   -> heartbeat, recovery, periodic cleanup and refresh -> claim pass if anything woke us -> poll().
 * It sleeps in poll() on the libpq socket (NOTIFY vmrq_request), a pipe the workers write when a
 * job finishes, and a timeout: the earliest of the next scheduled request (`at`), the fallback
 * poll, the heartbeat, recovery, cleanup, a handler deadline, a reconnection.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "claim.h"
#include "ctl.h"
#include "daemon.h"
#include "dispatch.h"
#include "driver.h"
#include "events.h"
#include "lanes.h"
#include "log.h"
#include "notify.h"
#include "pool.h"

#define PERIODIC_AGAIN_MS 5000LL /* a periodic request that could not be enqueued: tried again this soon */

volatile sig_atomic_t vmrqd_sig_term;
volatile sig_atomic_t vmrqd_sig_hup;

struct inflight {
    struct vmrqd_job *job; /* owned by the pool while it runs; used here only as a key */
    long long id;
    vmrq_class cls;
    long long deadline_ms;
    bool abandoned;        /* failed for its deadline; its late result is dropped */
};

struct vmrqd {
    struct vmrqd_config *cfg;
    const char *config_path;
    bool config_must_exist;
    struct ctl ctl;
    struct pool *pool;
    struct driver *drv;
    struct vmrqd_worker loop_worker; /* context of the inline handlers (no database of its own) */
    struct lanes *lanes;             /* help drain inline backlogs */
    struct events *events;           /* the hypervisor's lifecycle events, into the database */
    int wake[2];
    struct inflight *inflight; /* ninflight used of cap_inflight */
    int ninflight, cap_inflight;
    int running[VMRQ_CLASS_LAST];
    struct vmrqd_job *unwritten; /* finished, outcome not yet in the database */
    long long write_again_ms;    /* a write of them failed on a live connection: not before */
    long long write_backoff_ms;  /* 0 after a success; doubles with each failure */
    struct vmrqd_job *held;      /* finished, their domain's row held by another session */
    long long held_again_ms;     /* written again then, with the unwritten ones */
    long long held_backoff_ms;   /* 100 ms, doubling to 1 s while a row stays held */
    bool want_claim;
    bool claim_full;     /* the last claim pass filled some class (or the inline batch) */
    bool want_resolve;           /* a request finished or arrived: dependencies may be met */
    bool want_due;               /* a request arrived or was requeued: the timer may move */
    long long lost_claim;        /* tag of a claim whose answer the connection lost; 0: none */
    struct vmrqd_job *give_back; /* claimed ahead, never started, to give back (stopping) */
    long long next_due_ms;       /* -1: nothing scheduled */
    long long next_poll_ms, next_recover_ms, next_cleanup_ms;
    long long next_refresh_ms;   /* the first one at start-up: events were missed while stopped */
    long long next_pools_ms;     /* manage_pools of this node's bases with a pool */
    bool draining;
    long long drain_until_ms;
};

static void
append_unwritten(struct vmrqd *d, struct vmrqd_job *job)
{
    job->next = d->unwritten;
    d->unwritten = job;
}

/* A handler's deadline: the long class (whole disks copied) has its own. */
static long long
deadline_of(const struct vmrqd *d, vmrq_class cls)
{
    return cls == VMRQ_CLASS_LONG ? d->cfg->handler_deadline_long_ms : d->cfg->handler_deadline_ms;
}

/* Prepares a claimed job for a worker (appended to *batch, for pool_submit()); a job that
 * cannot run is failed at once.
 * The loop claims ahead: each class up to its limit times 1 + claim_ahead, all classes up to the
 * workers times as much (with 8 workers and claim_ahead 3: 32 important, 8 secondary, 4 long, 32
 * in all). Those that cannot start wait in the pool's queue, which starts each as soon as a
 * worker and a slot of its class are free, without waiting for this loop's next round trip to
 * the database; the table of jobs in flight grows to hold them. */
static void
start_job(struct vmrqd *d, struct vmrqd_job *job, vmrq_class cls, struct vmrqd_job ***batch)
{
    struct inflight *slot;
    char who[160];

    job->retention_ms = d->cfg->retention_ms;
    job_describe(job, NULL, who, sizeof(who));
    if (d->ninflight == d->cap_inflight) {
        int cap = d->cap_inflight * 2;
        struct inflight *grown = realloc(d->inflight, (size_t)cap * sizeof(*grown));
        if (!grown) {
            job_fail(job, true, "out of memory for the jobs in flight");
            log_warnx("%s: %s", who, job->error);
            append_unwritten(d, job);
            return;
        }
        d->inflight = grown;
        d->cap_inflight = cap;
    }
    if (dispatch_prepare(job) < 0) {
        log_info("%s: failed: %s", who, job->error);
        append_unwritten(d, job);
        return;
    }
    slot = &d->inflight[d->ninflight];
    log_info("%s: working (attempt %d)", who, job->attempts);
    slot->job = job;
    slot->id = job->id;
    slot->cls = cls;
    slot->deadline_ms = now_ms() + deadline_of(d, cls);
    slot->abandoned = false;
    d->ninflight++;
    d->running[cls]++;
    **batch = job;
    *batch = &job->next;
}

/* Takes `job` out of the table of jobs in flight, its entry copied to *was; false if it is not
 * there. */
static bool
inflight_remove(struct vmrqd *d, const struct vmrqd_job *job, struct inflight *was)
{
    for (int i = 0; i < d->ninflight; i++)
        if (d->inflight[i].job == job) {
            *was = d->inflight[i];
            d->running[was->cls]--;
            d->inflight[i] = d->inflight[--d->ninflight];
            return true;
        }
    return false;
}

/* Moves jobs the workers finished from the in-flight table to the unwritten list. */
static void
take_finished(struct vmrqd *d)
{
    struct vmrqd_job *job = pool_take_done(d->pool), *next;

    for (; job; job = next) {
        struct inflight was;

        next = job->next;
        if (!inflight_remove(d, job, &was)) {
            log_warnx("request %lld came back from a worker unknown to the loop", job->id);
            job_free(job);
        } else if (was.abandoned) {
            log_warnx("request %lld (%s) finished after its deadline; its outcome is dropped", job->id,
                      job->command);
            job_free(job);
        } else {
            job_log_outcome(job, NULL, d->cfg->retry_backoff_ms);
            append_unwritten(d, job);
        }
    }
}

/* Fails requests whose handler overran handler_deadline, counted from when a worker started it:
 * a claimed-ahead job waiting in the pool's queue has not started. A slot's deadline_ms is first
 * its claim's, then, once passed, its start's (or a second later while it still waits). The
 * worker stays busy until the handler returns (a thread cannot be cancelled safely), so its slot
 * is not reused before. */
static void
check_deadlines(struct vmrqd *d)
{
    long long now = now_ms();

    for (int i = 0; i < d->ninflight; i++) {
        struct inflight *s = &d->inflight[i];
        struct vmrqd_job *fail;
        long long started;

        if (s->abandoned || now < s->deadline_ms)
            continue;
        started = pool_started(d->pool, s->job);
        if (started == 0 || started + deadline_of(d, s->cls) > now) {
            s->deadline_ms = started == 0 ? now + 1000 : started + deadline_of(d, s->cls);
            continue;
        }
        s->abandoned = true;
        if (!(fail = calloc(1, sizeof(*fail)))) {
            log_warnx("request %lld overran its deadline; out of memory to record it", s->id);
            continue;
        }
        fail->id = s->id;
        job_fail(fail, false, "the handler did not finish within %lld ms (%s)", deadline_of(d, s->cls),
                 s->cls == VMRQ_CLASS_LONG ? "handler_deadline_long" : "handler_deadline");
        log_warnx("request %lld: %s", s->id, fail->error);
        append_unwritten(d, fail);
    }
}

/* Writes the outcomes. Freed workers mean a claim pass; finished parents, a look at the waiting
 * requests if any wait; the timer of scheduled requests moves only if a retry was put back with a
 * backoff (follow-ups scheduled by hooks arrive as notifications, like any new request). */
static void
write_completions(struct vmrqd *d)
{
    struct claim_more more = { false, false };
    struct vmrqd_job *kept;

    if (claim_complete(d->ctl.conn, d->ctl.daemon, d->unwritten, d->cfg->retry_backoff_ms, &more) < 0) {
        ctl_check(&d->ctl); /* kept: written again once the database answers */
        if (ctl_up(&d->ctl)) { /* refused, not lost: asking again at once would spin */
            d->write_backoff_ms = clock_backoff(d->write_backoff_ms, 100, 30000);
            d->write_again_ms = now_ms() + d->write_backoff_ms;
        }
        return;
    }
    kept = claim_take_deferred(&d->unwritten);
    for (struct vmrqd_job *j = d->unwritten; j; j = j->next)
        if ((j->outcome == JOB_RETRY && j->retry > 0) || j->outcome == JOB_UNREACHED)
            d->want_due = true;
    job_free_list(d->unwritten);
    d->unwritten = NULL;
    d->write_backoff_ms = 0;
    /* A domain row another session holds: its jobs are tried again on a clock of their own, so
     * that neither the loop nor the outcomes that finish meanwhile wait for it. */
    if (kept && !d->held) {
        d->held_backoff_ms = clock_backoff(d->held_backoff_ms, 100, 1000);
        d->held_again_ms = now_ms() + d->held_backoff_ms;
    } else if (!kept && !d->held) {
        d->held_backoff_ms = 0;
    }
    job_list_append(&d->held, kept);
    /* Claim again only if something may have become runnable for us: a class was full at the
     * last claim (a slot is free now), a finished request's domain has another pending, or
     * requests wait on dependencies (the claim pass resolves them). A request that arrived
     * since has notified us; claiming anyway made two claims a request. */
    if (d->claim_full || more.queued || more.waiting)
        d->want_claim = true;
    if (more.waiting)
        d->want_resolve = true;
}

/* Gives back what a claim whose answer the connection lost took, once connected again: nobody
 * here runs those requests, and this daemon lives, so recovery would never take them back. */
static void
give_back_lost_claim(struct vmrqd *d)
{
    if (claim_release_lost(d->ctl.conn, d->ctl.daemon, &d->lost_claim) < 0) {
        d->want_claim = false; /* no claim before this; tried again at the next wake-up */
        ctl_check(&d->ctl);
        return;
    }
    d->want_claim = d->want_resolve = d->want_due = !d->draining;
}

/* A stop does not run what was claimed ahead: the jobs no worker has started leave the pool and
 * the table of jobs in flight, to be given back to the queue. */
static void
take_back_queued(struct vmrqd *d)
{
    struct vmrqd_job *job = pool_take_queued(d->pool), *next;

    for (; job; job = next) {
        struct inflight was;

        next = job->next;
        inflight_remove(d, job, &was);
        job->next = d->give_back;
        d->give_back = job;
    }
}

static void
give_back_queued(struct vmrqd *d)
{
    if (claim_give_back(d->ctl.conn, d->ctl.daemon, d->give_back) < 0) {
        ctl_check(&d->ctl);
        if (!ctl_up(&d->ctl))
            return; /* again once reconnected, unless drain_timeout passes first */
        log_warnx("requests claimed ahead are left for recovery");
    }
    job_free_list(d->give_back);
    d->give_back = NULL;
}

/* Runs an inline job here, at once; its outcome joins the next completion batch. */
static void
run_inline(struct vmrqd *d, struct vmrqd_job *job)
{
    job->retention_ms = d->cfg->retention_ms;
    dispatch_inline(job, &d->loop_worker, NULL, d->cfg->retry_backoff_ms);
    append_unwritten(d, job);
}

/* Claims what may run now in one statement and hands it out: inline requests run here (a
 * thousand at most), the others go to workers within their class's free slots. Dependencies are
 * resolved, and the next scheduled time re-read, only when a request arrived or finished since
 * the last pass: an idle wake-up costs one round trip. */
static void
claim_pass(struct vmrqd *d)
{
    int depth = 1 + d->cfg->claim_ahead, limit[CLAIM_LANES], ninline = 0, got[VMRQ_CLASS_LAST] = { 0 };
    int free_workers = d->cfg->workers * depth - d->ninflight;
    struct vmrqd_job *list = NULL, *next, *batch = NULL, **batch_tail = &batch;
    long long due;
    int moved;

    d->want_claim = false;
    limit[CLAIM_INLINE] = d->cfg->claim_batch;
    for (int c = 0; c < VMRQ_CLASS_LAST; c++) {
        int free_slots = d->cfg->limit[c] * depth - d->running[c];
        limit[CLAIM_IMPORTANT + c] = free_slots < free_workers ? free_slots : free_workers;
        /* while the hypervisor is away, its work waits in the queue, in order (the connection
         * coming back enqueues a refresh_vms, whose notification wakes this loop) */
        if (!driver_reachable(d->drv))
            limit[CLAIM_IMPORTANT + c] = 0;
    }
    if (claim_jobs(d->ctl.conn, d->ctl.daemon, d->cfg->node, limit, &list, &d->lost_claim) < 0) {
        ctl_check(&d->ctl);
        return;
    }
    for (; list; list = next) {
        next = list->next;
        list->next = NULL;
        if (list->inline_run) {
            run_inline(d, list);
            ninline++;
        } else {
            got[list->cls]++;
            start_job(d, list, list->cls, &batch_tail);
        }
    }
    pool_submit(d->pool, batch);
    d->claim_full = ninline >= limit[CLAIM_INLINE];
    for (int c = 0; c < VMRQ_CLASS_LAST; c++)
        d->claim_full = d->claim_full || got[c] >= limit[CLAIM_IMPORTANT + c];
    if (ninline == d->cfg->claim_batch) {
        d->want_claim = true; /* written, then claimed again at once */
        lanes_wake(d->lanes, d->cfg, d->ctl.daemon); /* and the lanes help */
    }
    if (d->want_resolve && ctl_up(&d->ctl)) {
        d->want_resolve = false;
        for (int i = 0; i < 10 && (moved = claim_resolve_waiting(d->ctl.conn)) > 0; i++) {
            log_debug("%d waiting request%s may now run", moved, moved == 1 ? "" : "s");
            d->want_claim = true;
        }
    }
    if (d->want_due && ctl_up(&d->ctl)) {
        d->want_due = false;
        if ((due = claim_next_due(d->ctl.conn)) == -2)
            ctl_check(&d->ctl);
        /* 2 ms late rather than early: the database rounds against its own clock, and a claim
         * that ran a hair early would skip the request, which the next query (due in the
         * future only) would then miss too, leaving it to the fallback poll. */
        d->next_due_ms = due >= 0 ? now_ms() + due + 2 : -1;
    }
    d->next_poll_ms = now_ms() + d->cfg->poll_interval_ms;
}

/* The daemon's own periodic requests: cleanup (with the configured retention) and refresh_vms
 * of this node. A pending identical one is reused (both are NODUP); one another session has
 * enqueued and not committed is not waited for (claim_enqueue_nowait()). Returns when the next
 * is due: `interval_ms` from now, or at most PERIODIC_AGAIN_MS if this one could not be enqueued. */
static long long
enqueue_periodic(struct vmrqd *d, const char *command, long long interval_ms)
{
    vmrq_request *req = vmrq_request_new(command);
    int rc = req ? 0 : -1;

    if (rc == 0 && strcmp(command, "cleanup") == 0)
        rc = vmrq_request_set_int(req, "older_than", d->cfg->retention_ms / 1000);
    else if (rc == 0)
        rc = vmrq_request_set_string(req, "node", d->cfg->node);
    if (rc == 0 && claim_enqueue_nowait(d->ctl.conn, req) == 0) {
        log_debug("enqueued %s as request %lld", command, vmrq_request_id(req));
    } else {
        if (rc == 0 && vmrq_error_code() == VMRQ_ERR_TIMEOUT)
            log_warnx("cannot enqueue %s: another session has enqueued the same request and not"
                      " committed yet; tried again in %lld s", command, PERIODIC_AGAIN_MS / 1000);
        else
            log_warnx("cannot enqueue %s: %s", command, vmrq_error_message());
        ctl_check(&d->ctl);
        if (interval_ms > PERIODIC_AGAIN_MS)
            interval_ms = PERIODIC_AGAIN_MS;
    }
    vmrq_request_free(req);
    return now_ms() + interval_ms;
}

/* The time from one beat to the next. A daemon that holds requests (claimed, running, or their
 * outcomes not yet written) or is about to claim beats every third of its lease: two beats may
 * be late before recovery takes them. An idle one holds nothing recovery could take: it beats
 * every two thirds of its lease, which leaves a third for a late beat before its row looks
 * dead (to `vmrq daemons`; recovery takes back only working requests). A claim after an idle
 * spell comes after a beat (housekeeping() runs before the claim pass), so nothing is ever
 * claimed on a heartbeat older than a third of the lease. With 50 idle vmrqd that is 3 round
 * trips a minute each, where a beat every half lease made 4 and every third 6 (make bench,
 * fleet: idle database CPU). */
static long long
beat_period_ms(const struct vmrqd *d)
{
    bool holds = d->ninflight > 0 || d->unwritten || d->held || d->give_back || d->lost_claim || d->want_claim;

    return holds ? d->cfg->lease_ms / 3 : d->cfg->lease_ms * 2 / 3;
}

/* Heartbeat, recovery of dead daemons' claims, the fallback poll, pools, periodic cleanup and
 * refresh. The first four are one statement, the beat (ctl_beat()), when the heartbeat, the
 * poll or the pools are due; recovery comes with the first beat after its time. While draining,
 * the heartbeat only. */
static void
housekeeping(struct vmrqd *d)
{
    long long now = now_ms(), period = beat_period_ms(d), soon = now + period; /* the next beat's time */
    bool live = !d->draining, pools = live && d->cfg->pool_interval_ms > 0;
    struct ctl_beat b = { 0 };

    if (now - d->ctl.last_beat_ms >= period || (live && now >= d->next_poll_ms) ||
        (pools && now >= d->next_pools_ms)) {
        /* what falls due before the next beat comes with this one: one round trip, not two.
         * After a (re)connection every live daemon gets one lease to beat again before its
         * claims may be taken back: a database restart must not look like a crash. A draining
         * daemon only beats: its running requests are its own until it stops. */
        b.poll = live && soon >= d->next_poll_ms;
        b.pools_node = pools && soon >= d->next_pools_ms ? d->cfg->node : NULL;
        b.recover = live && now >= d->next_recover_ms && now - d->ctl.up_since_ms >= d->cfg->lease_ms;
        if (ctl_beat(&d->ctl, d->cfg, &b) < 0) {
            ctl_check(&d->ctl);
            return;
        }
        if (b.recover)
            d->next_recover_ms = now + d->cfg->lease_ms / 2;
        if (b.recovered > 0) {
            log_warnx("took back %d request%s from daemons that stopped answering", b.recovered,
                      b.recovered == 1 ? "" : "s");
            d->want_claim = d->want_resolve = d->want_due = true;
        }
        if (b.poll) { /* a lost notification would leave these waiting: claim, resolve */
            d->next_poll_ms = now + d->cfg->poll_interval_ms;
            d->want_claim = d->want_claim || b.pending;
            d->want_due = d->want_due || b.pending;
            d->want_resolve = d->want_resolve || b.waiting;
        }
        if (b.pools_node)
            d->next_pools_ms = now + d->cfg->pool_interval_ms;
    }
    if (!live)
        return;
    if (d->cfg->cleanup_interval_ms > 0 && now >= d->next_cleanup_ms) {
        d->next_cleanup_ms = enqueue_periodic(d, "cleanup", d->cfg->cleanup_interval_ms);
    }
    if (d->cfg->refresh_interval_ms > 0 && now >= d->next_refresh_ms) {
        d->next_refresh_ms = enqueue_periodic(d, "refresh_vms", d->cfg->refresh_interval_ms);
    }
}

static void
reload(struct vmrqd *d, int verbose_floor)
{
    struct vmrqd_config next;
    char err[512];

    memset(&next, 0, sizeof(next));
    if (config_load(&next, d->config_path, d->config_must_exist, err, sizeof(err)) < 0) {
        log_warnx("reload failed, keeping the running configuration: %s", err);
        return;
    }
    config_keep_fixed(&next, d->cfg);
    config_free(d->cfg);
    *d->cfg = next;
    log_set_level(d->cfg->log_level > verbose_floor ? d->cfg->log_level : verbose_floor);
    pool_set_limits(d->pool, d->cfg->limit);
    d->want_claim = d->want_resolve = d->want_due = true;
    log_info("configuration reloaded");
}

/* Reads notifications (each means: new requests) and the workers' wake-up bytes. */
static void
read_events(struct vmrqd *d, const struct pollfd *fds)
{
    char buf[256];
    PGnotify *n;

    if (fds[0].revents)
        while (read(d->wake[0], buf, sizeof(buf)) > 0)
            ;
    if (fds[1].fd >= 0 && fds[1].revents && ctl_up(&d->ctl)) {
        if (!PQconsumeInput(d->ctl.conn)) {
            ctl_check(&d->ctl);
            return;
        }
        while ((n = PQnotifies(d->ctl.conn))) {
            d->want_claim = d->want_resolve = d->want_due = true;
            PQfreemem(n);
        }
    }
}

static long long
min_positive(long long a, long long b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

/* How long poll() may sleep: until the earliest timer (-1: no timer at all). */
static int
poll_timeout(const struct vmrqd *d)
{
    long long now = now_ms(), t = -1;
    bool write_wait = d->unwritten && ctl_up(&d->ctl) && d->write_again_ms > now;

    if ((d->want_claim && !d->draining) || (d->unwritten && !write_wait)) /* a drain claims nothing */
        return d->unwritten && !ctl_up(&d->ctl) ? 100 : 0;
    if (!ctl_up(&d->ctl)) {
        t = d->ctl.next_try_ms;
    } else if (!d->draining) {
        t = min_positive(d->next_due_ms, d->next_poll_ms);
        if (d->cfg->cleanup_interval_ms > 0)
            t = min_positive(t, d->next_cleanup_ms);
        if (d->cfg->refresh_interval_ms > 0)
            t = min_positive(t, d->next_refresh_ms);
        if (d->cfg->pool_interval_ms > 0)
            t = min_positive(t, d->next_pools_ms);
    }
    for (int i = 0; i < d->ninflight; i++)
        if (!d->inflight[i].abandoned)
            t = min_positive(t, d->inflight[i].deadline_ms);
    if (ctl_up(&d->ctl)) /* the beat, draining or not; recovery rides on it */
        t = min_positive(t, d->ctl.last_beat_ms + beat_period_ms(d));
    if (d->draining)
        t = min_positive(t, d->drain_until_ms);
    if (write_wait)
        t = min_positive(t, d->write_again_ms);
    if (d->held)
        t = min_positive(t, d->held_again_ms);
    if (t < 0)
        return -1;
    t -= now;
    return t <= 0 ? 0 : t > 60000 ? 60000 : (int)t;
}

int
vmrqd_run(struct vmrqd_config *cfg, const char *config_path, bool config_must_exist, bool verbose)
{
    int verbose_floor = verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR;
    struct vmrqd d;
    char *uri = NULL; /* the hypervisor: libvirt_uri, or the node's nodes.uri */
    int status = 0;

    /* A database at another schema than this build's, or without this daemon's node, is the
     * operator's to fix: one line, exit 1, before anything else is opened or said. */
    if (ctl_check_start(cfg, &uri) < 0) {
        config_free(cfg);
        return 1;
    }
    memset(&d, 0, sizeof(d));
    d.cfg = cfg;
    d.config_path = config_path;
    d.config_must_exist = config_must_exist;
    d.next_due_ms = -1;
    d.next_cleanup_ms = now_ms() + cfg->cleanup_interval_ms;
    log_set_level(cfg->log_level > verbose_floor ? cfg->log_level : verbose_floor);
    if (pipe2(d.wake, O_NONBLOCK | O_CLOEXEC) < 0)
        fatal("pipe");
    if (!(d.drv = driver_open(&driver_kvm_ops, uri)))
        fatalx("hypervisor: %s", driver_error_message());
    if (!(d.events = events_new(cfg->database, cfg->node)))
        fatalx("events: out of memory");
    if (driver_events(d.drv, events_on_domain, events_on_connection, d.events) < 0)
        log_warnx("no lifecycle events from the hypervisor (%s): domains.status follows vmrq's own"
                  " operations and refreshes only", driver_error_message());
    d.loop_worker.index = -1;
    d.loop_worker.drv = d.drv;
    d.loop_worker.node = cfg->node;
    d.cap_inflight = cfg->workers;
    if (!(d.inflight = calloc((size_t)d.cap_inflight, sizeof(*d.inflight))) ||
        !(d.pool = pool_new(cfg->workers, cfg->database, d.wake[1], d.drv, cfg->node, cfg->storage_pool,
                            cfg->display_password_always != 0)) ||
        !(d.lanes = lanes_new(cfg->lanes, cfg->database, cfg->node, &d.loop_worker)))
        fatalx("cannot start %d workers and %d lanes", cfg->workers, cfg->lanes);
    pool_set_limits(d.pool, cfg->limit);
    log_info("vmrqd %s started: node '%s' (%s), %d workers (important %d, secondary %d, long %d)",
             vmrq_version(), cfg->node, uri, cfg->workers, cfg->limit[VMRQ_CLASS_IMPORTANT],
             cfg->limit[VMRQ_CLASS_SECONDARY], cfg->limit[VMRQ_CLASS_LONG]);

    for (;;) {
        struct pollfd fds[2];

        if (vmrqd_sig_term >= 2) {
            log_warnx("second signal: stopping now; %d running request%s left for recovery",
                      d.ninflight, d.ninflight == 1 ? " is" : "s are");
            exit(1);
        }
        if (vmrqd_sig_term && !d.draining) {
            d.draining = true;
            d.drain_until_ms = now_ms() + d.cfg->drain_timeout_ms;
            take_back_queued(&d);
            notify_stopping(d.ninflight);
            log_info("stopping: no new requests; waiting up to %lld ms for %d running",
                     d.cfg->drain_timeout_ms, d.ninflight);
        }
        if (vmrqd_sig_hup) {
            vmrqd_sig_hup = 0;
            reload(&d, verbose_floor);
        }
        if (!ctl_up(&d.ctl)) {
            int rc = ctl_connect(&d.ctl, d.cfg);
            if (rc == -2) {
                log_warnx("stopping: this vmrqd cannot work on that database; %d running request%s left"
                          " for recovery", d.ninflight, d.ninflight == 1 ? " is" : "s are");
                exit(1);
            }
            if (rc == 0) {
                notify_ready(d.ctl.daemon, d.cfg->node);
                d.want_claim = d.want_resolve = d.want_due = true;
                d.next_recover_ms = d.ctl.up_since_ms + d.cfg->lease_ms;
                /* this claim pass is what the poll would start: no beat for it right after the
                 * registration's heartbeat */
                d.next_poll_ms = d.ctl.up_since_ms + d.cfg->poll_interval_ms;
            }
        }
        if (ctl_up(&d.ctl) && d.lost_claim)
            give_back_lost_claim(&d);
        take_finished(&d);
        check_deadlines(&d);
        if (d.held && now_ms() >= d.held_again_ms) {
            job_list_append(&d.unwritten, d.held);
            d.held = NULL;
        }
        if (ctl_up(&d.ctl) && d.unwritten && now_ms() >= d.write_again_ms)
            write_completions(&d);
        if (ctl_up(&d.ctl) && d.give_back)
            give_back_queued(&d);
        if (ctl_up(&d.ctl))
            housekeeping(&d); /* while draining, the beat only */
        if (d.draining) {
            if (d.ninflight == 0 && !d.unwritten && !d.held && !d.give_back)
                break;
            if (now_ms() >= d.drain_until_ms) {
                log_warnx("drain_timeout passed with %d request%s still running%s; they are left"
                          " for recovery", d.ninflight, d.ninflight == 1 ? "" : "s",
                          d.held ? " and finished ones whose domain row another session holds" : "");
                status = 0;
                goto out_abandon;
            }
        } else if (ctl_up(&d.ctl)) {
            if (d.next_due_ms >= 0 && now_ms() >= d.next_due_ms)
                d.want_claim = d.want_due = true;
            if (d.want_claim && ctl_up(&d.ctl) && !d.lost_claim)
                claim_pass(&d);
        }

        /* A NOTIFY that arrived during one of our queries sits in libpq's buffer, and the
         * socket will not wake poll() for it: look before sleeping. */
        if (ctl_up(&d.ctl))
            for (PGnotify *n; (n = PQnotifies(d.ctl.conn)); PQfreemem(n))
                d.want_claim = d.want_resolve = d.want_due = true;
        fds[0] = (struct pollfd){ d.wake[0], POLLIN, 0 };
        fds[1] = (struct pollfd){ ctl_up(&d.ctl) ? PQsocket(d.ctl.conn) : -1, POLLIN, 0 };
        if (poll(fds, 2, notify_alive(poll_timeout(&d))) < 0 && errno != EINTR)
            fatal("poll");
        read_events(&d, fds);
    }

    log_info("stopped cleanly");
    lanes_free(d.lanes);
    ctl_stop(&d.ctl);
    pool_free(d.pool);
    driver_close(d.drv);
    events_free(d.events);
    free(d.inflight);
    job_free_list(d.unwritten);
    job_free_list(d.held);
    job_free_list(d.give_back);
    close(d.wake[0]);
    close(d.wake[1]);
    config_free(d.cfg);
    free(uri);
    return status;

out_abandon:
    /* workers still run handlers: do not wait for them */
    ctl_stop(&d.ctl);
    exit(status);
}
