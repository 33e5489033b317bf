/*
 * driver_kvm_conn.c - the libvirt driver's connection (see driver_kvm.h): libvirt's event loop
 * on a thread of its own, and a keeper thread that replaces a connection that died.
 *
 * libvirt tells us a connection died through its close callback (libvirtd restarted: end of
 * file; a remote host gone quiet: keepalive time-out) or a worker finds it dead. The keeper then
 * drops it, tells the event sink (which logs it), and opens a new one with backoff (1 s, doubling
 * up to 60 s), subscribes the events again and tells the sink, which asks for a refresh: events
 * missed meanwhile are made up for. Meanwhile operations fail with a retryable error. No libvirt
 * call is made under kvm->lock, and the event loop thread only flags and signals.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <libvirt/virterror.h>

#include "clock.h"
#include "driver_kvm.h"

#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS 60000

/* libvirt's event loop: registered once per process, before the first connection, and run by
 * one thread for the life of the process. */
static pthread_once_t loop_once = PTHREAD_ONCE_INIT;

static void *
event_loop(void *arg)
{
    (void)arg;
    for (;;)
        if (virEventRunDefaultImpl() < 0)
            virResetLastError();
    return NULL;
}

/* Threads of the driver take no signal: signals are the main loop's. */
static int
thread_start(pthread_t *thread, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    int rc;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(thread, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

static void
start_event_loop(void)
{
    pthread_t thread;

    if (virEventRegisterDefaultImpl() < 0)
        return;
    if (thread_start(&thread, event_loop, NULL) == 0)
        pthread_detach(thread);
}

/* libvirt's close callback, on the event loop thread: flag and wake the keeper. */
static void
on_close(virConnectPtr conn, int reason, void *opaque)
{
    static const char *const reasons[] = { "connection error", "end of file from the hypervisor",
                                           "keepalive time-out", "closed" };
    struct kvm *kvm = opaque;

    pthread_mutex_lock(&kvm->lock);
    if (kvm->conn == conn && !kvm->lost) {
        kvm->lost = true;
        snprintf(kvm->why, sizeof(kvm->why), "%s",
                 reason >= 0 && (size_t)reason < sizeof(reasons) / sizeof(reasons[0]) ? reasons[reason] : "closed");
        pthread_cond_signal(&kvm->wake);
    }
    pthread_mutex_unlock(&kvm->lock);
}

/* A new connection with its close callback, keepalive and event subscriptions; NULL on error
 * (the driver error says why). */
static virConnectPtr
connect_once(struct kvm *kvm)
{
    virConnectPtr c = virConnectOpen(kvm->uri);

    if (!c) {
        kvm_report(kvm->uri);
        return NULL;
    }
    /* Local drivers have neither: only remote connections die on their own. */
    if (virConnectRegisterCloseCallback(c, on_close, kvm, NULL) < 0 || virConnectSetKeepAlive(c, 5, 3) < 0)
        virResetLastError();
    if (kvm_events_subscribe(kvm, c) < 0)
        virResetLastError(); /* the refresh that follows still puts the domains right */
    return c;
}

static void
disconnect(struct kvm *kvm, virConnectPtr c)
{
    kvm_events_unsubscribe(kvm, c);
    virConnectUnregisterCloseCallback(c, on_close);
    virConnectClose(c);
    virResetLastError();
}

/* Sleeps up to ms or until kvm_conn_close(); called with kvm->lock held. */
static void
nap(struct kvm *kvm, long ms)
{
    struct timespec until;

    clock_deadline(&until, ms);
    while (!kvm->closing && pthread_cond_timedwait(&kvm->wake, &kvm->lock, &until) == 0)
        ;
}

static void *
keeper(void *arg)
{
    struct kvm *kvm = arg;
    char why[sizeof(kvm->why)];

    pthread_mutex_lock(&kvm->lock);
    while (!kvm->closing) {
        virConnectPtr old, c = NULL;
        long backoff = BACKOFF_FIRST_MS;

        if (!kvm->lost) {
            pthread_cond_wait(&kvm->wake, &kvm->lock);
            continue;
        }
        old = kvm->conn;
        kvm->conn = NULL;
        snprintf(why, sizeof(why), "%s", kvm->why);
        pthread_mutex_unlock(&kvm->lock);
        if (old)
            disconnect(kvm, old);
        kvm_events_connection(kvm, false, why);
        pthread_mutex_lock(&kvm->lock);
        while (!kvm->closing) {
            pthread_mutex_unlock(&kvm->lock);
            c = connect_once(kvm);
            pthread_mutex_lock(&kvm->lock);
            if (c)
                break;
            snprintf(kvm->why, sizeof(kvm->why), "%s", driver_error_message());
            nap(kvm, backoff);
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
        }
        if (!c)
            break; /* closing */
        if (kvm->closing) {
            pthread_mutex_unlock(&kvm->lock);
            disconnect(kvm, c);
            pthread_mutex_lock(&kvm->lock);
            break;
        }
        kvm->conn = c;
        kvm->lost = false;
        pthread_mutex_unlock(&kvm->lock);
        kvm_events_connection(kvm, true, NULL);
        pthread_mutex_lock(&kvm->lock);
    }
    pthread_mutex_unlock(&kvm->lock);
    return NULL;
}

int
kvm_conn_open(struct kvm *kvm)
{
    pthread_once(&loop_once, start_event_loop);
    if (!(kvm->conn = connect_once(kvm)))
        return -1;
    if (thread_start(&kvm->keeper, keeper, kvm) != 0) {
        disconnect(kvm, kvm->conn);
        kvm->conn = NULL;
        driver_error_set(false, false, "cannot start the connection keeper thread");
        return -1;
    }
    kvm->keeper_started = true;
    return 0;
}

/* Marks a connection found dead as lost, waking the keeper. Called with kvm->lock held. */
static void
conn_check_locked(struct kvm *kvm)
{
    if (kvm->conn && !kvm->lost && virConnectIsAlive(kvm->conn) != 1) {
        kvm->lost = true;
        snprintf(kvm->why, sizeof(kvm->why), "connection found dead");
        pthread_cond_signal(&kvm->wake);
    }
}

bool
kvm_conn_up(struct kvm *kvm)
{
    bool up;

    pthread_mutex_lock(&kvm->lock);
    conn_check_locked(kvm);
    up = kvm->conn && !kvm->lost;
    pthread_mutex_unlock(&kvm->lock);
    return up;
}

virConnectPtr
kvm_conn_get(struct kvm *kvm)
{
    virConnectPtr c = NULL;

    pthread_mutex_lock(&kvm->lock);
    conn_check_locked(kvm);
    if (kvm->conn && !kvm->lost)
        virConnectRef(c = kvm->conn);
    else
    {
        driver_error_set(true, false, "%s: no connection to the hypervisor (%s); reconnecting", kvm->uri, kvm->why);
        driver_error_mark_unreached();
    }
    pthread_mutex_unlock(&kvm->lock);
    return c;
}

void
kvm_conn_close(struct kvm *kvm)
{
    pthread_mutex_lock(&kvm->lock);
    kvm->closing = true;
    pthread_cond_signal(&kvm->wake);
    pthread_mutex_unlock(&kvm->lock);
    if (kvm->keeper_started)
        pthread_join(kvm->keeper, NULL);
    if (kvm->conn) {
        kvm_events_unsubscribe(kvm, kvm->conn);
        kvm_events_wait(kvm);
        virConnectUnregisterCloseCallback(kvm->conn, on_close);
        virConnectClose(kvm->conn);
        kvm->conn = NULL;
    }
    virResetLastError();
}
