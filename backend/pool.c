/*
 * pool.c - worker threads: take a job, run it through dispatch_run(), hand it back (pool.h).
 * A job waits in the queue while its class runs as many as its limit allows (the loop claims
 * ahead, claim_ahead in vmrqd.conf); the first queued job that may start, starts.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "claim.h"
#include "clock.h"
#include "dispatch.h"
#include "log.h"
#include "pool.h"

struct pool {
    pthread_mutex_t lock;
    pthread_cond_t work;
    struct vmrqd_job *queue, *queue_tail; /* submitted, not started */
    int limit[VMRQ_CLASS_LAST];           /* most jobs of each class running at once */
    int running[VMRQ_CLASS_LAST];
    struct vmrqd_job *done;               /* finished, not taken */
    bool stopping;
    int wake_fd;
    char *conninfo;                       /* the workers' (a restart changes it, not a reload) */
    int n;
    pthread_t *threads;
    struct vmrqd_worker *workers;
};

/* The pool a worker belongs to travels with it through this wrapper. */
struct worker_arg {
    struct pool *pool;
    struct vmrqd_worker *worker;
};

/* Takes off the queue the first job whose class has a free slot, and starts its clock; NULL if
 * none may start. Called with the lock held. */
static struct vmrqd_job *
take_runnable(struct pool *pool)
{
    struct vmrqd_job *prev = NULL;

    for (struct vmrqd_job **pp = &pool->queue; *pp; prev = *pp, pp = &(*pp)->next) {
        struct vmrqd_job *job = *pp;

        if (pool->running[job->cls] >= pool->limit[job->cls])
            continue;
        *pp = job->next;
        if (pool->queue_tail == job)
            pool->queue_tail = prev;
        job->next = NULL;
        pool->running[job->cls]++;
        job->started_ms = now_ms();
        return job;
    }
    return NULL;
}

static void *
worker_loop(void *p)
{
    struct worker_arg *arg = p;
    struct pool *pool = arg->pool;
    struct vmrqd_worker *w = arg->worker;
    struct vmrqd_job *job = NULL;
    char byte = 1;

    free(arg);
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!job && !pool->stopping && !(job = take_runnable(pool)))
            pthread_cond_wait(&pool->work, &pool->lock);
        if (!job)
            break;
        pthread_mutex_unlock(&pool->lock);

        if (claim_handler_started(job, w) == 0) /* else failed, never run */
            dispatch_run(job, w);

        pthread_mutex_lock(&pool->lock);
        pool->running[job->cls]--;
        job->next = pool->done;
        pool->done = job;
        /* The next job is taken before the loop hears of this one: the loop then finds it
         * started (its deadline counts from now), and a claimed-ahead job waits for no one. A
         * class slot freed may also let an idle worker start a job that waited for it. */
        job = pool->stopping ? NULL : take_runnable(pool);
        if (pool->queue)
            pthread_cond_signal(&pool->work);
        pthread_mutex_unlock(&pool->lock);
        while (write(pool->wake_fd, &byte, 1) < 0 && errno == EINTR)
            ;
        pthread_mutex_lock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    PQfinish(w->conn);
    return NULL;
}

struct pool *
pool_new(int n, const char *conninfo, int wake_fd, struct driver *drv, const char *node, const char *storage_pool,
         bool display_password_always)
{
    struct pool *pool = calloc(1, sizeof(*pool));
    sigset_t all, old;

    if (!pool || !(pool->threads = calloc((size_t)n, sizeof(*pool->threads))) ||
        !(pool->workers = calloc((size_t)n, sizeof(*pool->workers))) ||
        !(pool->conninfo = strdup(conninfo))) {
        log_warnx("worker pool: out of memory");
        goto fail;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work, NULL);
    pool->wake_fd = wake_fd;
    for (int c = 0; c < VMRQ_CLASS_LAST; c++)
        pool->limit[c] = n;

    /* signals are for the main loop only */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 0; i < n; i++) {
        struct worker_arg *arg = malloc(sizeof(*arg));
        int err;

        pool->workers[i].index = i;
        pool->workers[i].conninfo = pool->conninfo;
        pool->workers[i].drv = drv;
        pool->workers[i].node = node;
        pool->workers[i].storage_pool = storage_pool;
        pool->workers[i].display_password_always = display_password_always;
        if (!arg) {
            log_warnx("worker pool: out of memory");
            break;
        }
        arg->pool = pool;
        arg->worker = &pool->workers[i];
        if ((err = pthread_create(&pool->threads[i], NULL, worker_loop, arg)) != 0) {
            free(arg);
            log_warnx("worker pool: cannot start thread %d: %s", i, strerror(err));
            break;
        }
        pool->n++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pool->n != n) {
        pool_free(pool);
        return NULL;
    }
    return pool;

fail:
    if (pool) {
        free(pool->threads);
        free(pool->workers);
        free(pool->conninfo);
        free(pool);
    }
    return NULL;
}

void
pool_submit(struct pool *pool, struct vmrqd_job *list)
{
    struct vmrqd_job *tail = list;
    int n = 1;

    if (!list)
        return;
    for (; tail->next; tail = tail->next)
        n++;
    pthread_mutex_lock(&pool->lock);
    if (pool->queue_tail)
        pool->queue_tail->next = list;
    else
        pool->queue = list;
    pool->queue_tail = tail;
    pthread_mutex_unlock(&pool->lock);
    /* after the unlock: a woken worker does not wait at once for the lock the loop holds; one
     * wake-up per job, no more than there are workers */
    for (int i = 0; i < n && i < pool->n; i++)
        pthread_cond_signal(&pool->work);
}

struct vmrqd_job *
pool_take_done(struct pool *pool)
{
    struct vmrqd_job *done;

    pthread_mutex_lock(&pool->lock);
    done = pool->done;
    pool->done = NULL;
    pthread_mutex_unlock(&pool->lock);
    return done;
}

void
pool_set_limits(struct pool *pool, const int limit[VMRQ_CLASS_LAST])
{
    pthread_mutex_lock(&pool->lock);
    for (int c = 0; c < VMRQ_CLASS_LAST; c++)
        pool->limit[c] = limit[c] > 0 ? limit[c] : 1; /* what is claimed runs, even after a reload to 0 */
    pthread_cond_broadcast(&pool->work);
    pthread_mutex_unlock(&pool->lock);
}

struct vmrqd_job *
pool_take_queued(struct pool *pool)
{
    struct vmrqd_job *queued;

    pthread_mutex_lock(&pool->lock);
    queued = pool->queue;
    pool->queue = pool->queue_tail = NULL;
    pthread_mutex_unlock(&pool->lock);
    return queued;
}

long long
pool_started(struct pool *pool, const struct vmrqd_job *job)
{
    long long started;

    pthread_mutex_lock(&pool->lock);
    started = job->started_ms;
    pthread_mutex_unlock(&pool->lock);
    return started;
}

void
pool_free(struct pool *pool)
{
    struct vmrqd_job *j, *next;

    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->work);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->n; i++)
        pthread_join(pool->threads[i], NULL);
    for (j = pool->queue; j; j = next) {
        next = j->next;
        job_free(j);
    }
    for (j = pool->done; j; j = next) {
        next = j->next;
        job_free(j);
    }
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->work);
    free(pool->conninfo);
    free(pool->threads);
    free(pool->workers);
    free(pool);
}
