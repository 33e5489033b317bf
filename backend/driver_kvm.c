/*
 * driver_kvm.c - the hypervisor driver over libvirt: KVM/QEMU in production (qemu:///system,
 * qemu+ssh://host/system), libvirt's test driver (test:///PATH.xml) in tests and the demo. The
 * only file of vmrq that includes libvirt. libvirt's errors become driver errors with libvirt's
 * message kept; the connection, shared by all workers (libvirt connections are thread-safe), is
 * opened again when it drops.
 *
 * Lifecycle events: libvirt's default event loop runs on a thread of its own (started before the
 * first connection); kvm_events() subscribes to every domain's lifecycle and passes each event on
 * with readable names ("stopped"/"destroyed") and the status it implies.
 *
 * One emulation for test:// URIs only: libvirt's test driver powers a domain off at once on
 * shutdown, so a test guest that "ignores the power button" is marked in its XML with
 *   <metadata><vmrq:guest xmlns:vmrq='urn:vmrq:test'><ignore-acpi/></vmrq:guest></metadata>
 * and its polite shutdown/reboot are accepted and do nothing, as a hung real guest would.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "driver.h"

#define TEST_NS "urn:vmrq:test"

struct kvm {
    pthread_mutex_t lock; /* guards conn when it is replaced */
    virConnectPtr conn;
    char *uri;
    bool is_test;
    int event_id;         /* lifecycle subscription, -1 if none */
    pthread_mutex_t event_lock; /* guards event_fn against kvm_close() */
    pthread_cond_t event_gone;
    bool event_released;  /* libvirt called release_event(): no callback runs or will run */
    driver_event_fn event_fn;
    void *event_opaque;
};

/* libvirt's freecb of the subscription: called once the callback is removed and not running. */
static void
release_event(void *opaque)
{
    struct kvm *kvm = opaque;

    pthread_mutex_lock(&kvm->event_lock);
    kvm->event_released = true;
    pthread_cond_signal(&kvm->event_gone);
    pthread_mutex_unlock(&kvm->event_lock);
}

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

static void
start_event_loop(void)
{
    pthread_t thread;
    sigset_t all, old;

    if (virEventRegisterDefaultImpl() < 0)
        return;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* signals are the main loop's */
    if (pthread_create(&thread, NULL, event_loop, NULL) == 0)
        pthread_detach(thread);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

struct driver_dom {
    virDomainPtr dom;
    struct kvm *kvm;
};

/* libvirt prints every error on stderr by default; vmrq reports its own way. */
static void
silent(void *opaque, virErrorPtr err)
{
    (void)opaque;
    (void)err;
}

/* Turns libvirt's last error into this thread's driver error; returns -1. */
static int
report(const char *what)
{
    virErrorPtr e = virGetLastError();
    int code = e ? e->code : VIR_ERR_INTERNAL_ERROR;
    bool retryable = code == VIR_ERR_AGENT_UNRESPONSIVE || code == VIR_ERR_OPERATION_TIMEOUT ||
                     code == VIR_ERR_NO_CONNECT || code == VIR_ERR_RPC || code == VIR_ERR_AGENT_UNSYNCED ||
                     code == VIR_ERR_SYSTEM_ERROR;

    driver_error_set(retryable, code == VIR_ERR_NO_DOMAIN, "%s: %s", what,
                     e && e->message ? e->message : "unknown libvirt error");
    virResetLastError();
    return -1;
}

static int
kvm_open(struct driver *drv, const char *uri)
{
    struct kvm *kvm = calloc(1, sizeof(*kvm));

    if (!kvm || !(kvm->uri = strdup(uri))) {
        free(kvm);
        driver_error_set(false, false, "out of memory");
        return -1;
    }
    if (virInitialize() < 0) {
        free(kvm->uri);
        free(kvm);
        return report("libvirt");
    }
    virSetErrorFunc(NULL, silent);
    pthread_once(&loop_once, start_event_loop);
    kvm->event_id = -1;
    if (!(kvm->conn = virConnectOpen(uri))) {
        report(uri);
        free(kvm->uri);
        free(kvm);
        return -1;
    }
    pthread_mutex_init(&kvm->lock, NULL);
    pthread_mutex_init(&kvm->event_lock, NULL);
    pthread_cond_init(&kvm->event_gone, NULL);
    kvm->is_test = strncmp(uri, "test:", 5) == 0;
    drv->priv = kvm;
    return 0;
}

static void
kvm_close(struct driver *drv)
{
    struct kvm *kvm = drv->priv;

    /* No event may reach a sink its owner is about to free, nor this struct once freed: stop
     * passing events on, unsubscribe, and wait (a little) for libvirt to let go of us. */
    pthread_mutex_lock(&kvm->event_lock);
    kvm->event_fn = NULL;
    pthread_mutex_unlock(&kvm->event_lock);
    if (kvm->conn && kvm->event_id >= 0 && virConnectDomainEventDeregisterAny(kvm->conn, kvm->event_id) == 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 2;
        pthread_mutex_lock(&kvm->event_lock);
        while (!kvm->event_released && pthread_cond_timedwait(&kvm->event_gone, &kvm->event_lock, &until) == 0)
            ;
        pthread_mutex_unlock(&kvm->event_lock);
    }
    if (kvm->conn)
        virConnectClose(kvm->conn);
    pthread_mutex_destroy(&kvm->lock);
    pthread_mutex_destroy(&kvm->event_lock);
    pthread_cond_destroy(&kvm->event_gone);
    free(kvm->uri);
    free(kvm);
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque);
static void release_event(void *opaque);

/* The connection, opened again if it died (libvirtd restarted). A new reference: the caller
 * closes it. NULL on error. */
static virConnectPtr
conn_get(struct kvm *kvm)
{
    virConnectPtr c;

    pthread_mutex_lock(&kvm->lock);
    if (kvm->conn && virConnectIsAlive(kvm->conn) != 1) {
        virConnectClose(kvm->conn);
        kvm->conn = NULL;
    }
    if (!kvm->conn && (kvm->conn = virConnectOpen(kvm->uri)) && kvm->event_fn) {
        /* a new connection: subscribe again (events lost meanwhile: the caller refreshes) */
        kvm->event_released = false;
        kvm->event_id = virConnectDomainEventRegisterAny(kvm->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                         VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), kvm, release_event);
    } else if (!kvm->conn) {
        report(kvm->uri);
    }
    c = kvm->conn;
    if (c)
        virConnectRef(c);
    pthread_mutex_unlock(&kvm->lock);
    return c;
}

static struct driver_dom *
wrap(struct kvm *kvm, virDomainPtr d, const char *what)
{
    struct driver_dom *dom;

    if (!d) {
        report(what);
        return NULL;
    }
    if (!(dom = malloc(sizeof(*dom)))) {
        virDomainFree(d);
        driver_error_set(false, false, "out of memory");
        return NULL;
    }
    dom->dom = d;
    dom->kvm = kvm;
    return dom;
}

static struct driver_dom *
kvm_lookup_by_name(struct driver *drv, const char *name)
{
    struct kvm *kvm = drv->priv;
    virConnectPtr c = conn_get(kvm);
    struct driver_dom *dom;

    if (!c)
        return NULL;
    dom = wrap(kvm, virDomainLookupByName(c, name), name);
    virConnectClose(c);
    return dom;
}

static struct driver_dom *
kvm_lookup_by_uuid(struct driver *drv, const char *uuid)
{
    struct kvm *kvm = drv->priv;
    virConnectPtr c = conn_get(kvm);
    struct driver_dom *dom;

    if (!c)
        return NULL;
    dom = wrap(kvm, virDomainLookupByUUIDString(c, uuid), uuid);
    virConnectClose(c);
    return dom;
}

static void
kvm_dom_free(struct driver_dom *dom)
{
    virDomainFree(dom->dom);
    free(dom);
}

static int
fill_info(virDomainPtr d, struct dom_info *info)
{
    const char *name = virDomainGetName(d);
    int state, reason, ms;

    if (!name || virDomainGetUUIDString(d, info->uuid) < 0 || virDomainGetState(d, &state, &reason, 0) < 0)
        return report(name ? name : "domain");
    if ((ms = virDomainHasManagedSaveImage(d, 0)) < 0)
        return report(name);
    snprintf(info->name, sizeof(info->name), "%s", name);
    info->state = state >= 0 && state < DOM_STATE_LAST ? (dom_state)state : DOM_NOSTATE;
    info->managed_save = ms == 1;
    return 0;
}

static int
kvm_info(struct driver_dom *dom, struct dom_info *info)
{
    return fill_info(dom->dom, info);
}

static int
kvm_list(struct driver *drv, struct dom_info **out, size_t *n)
{
    virConnectPtr c = conn_get(drv->priv);
    virDomainPtr *doms = NULL;
    int count, ret = -1;

    *out = NULL;
    *n = 0;
    if (!c)
        return -1;
    if ((count = virConnectListAllDomains(c, &doms, 0)) < 0) {
        report("list domains");
        goto cleanup;
    }
    if (count > 0 && !(*out = calloc((size_t)count, sizeof(**out)))) {
        driver_error_set(false, false, "out of memory");
        goto cleanup;
    }
    for (int i = 0; i < count; i++)
        if (fill_info(doms[i], &(*out)[*n]) == 0)
            (*n)++; /* a domain that vanished meanwhile is simply not listed */
    ret = 0;

cleanup:
    for (int i = 0; i < count; i++)
        virDomainFree(doms[i]);
    free(doms);
    virConnectClose(c);
    if (ret < 0) {
        free(*out);
        *out = NULL;
    }
    return ret;
}

static int
check(int rc, struct driver_dom *dom)
{
    return rc < 0 ? report(virDomainGetName(dom->dom)) : 0;
}

/* The test-driver emulation of a guest that ignores the power button (see the top). */
static bool
ignores_acpi(struct driver_dom *dom)
{
    char *meta;
    bool ignores;

    if (!dom->kvm->is_test)
        return false;
    meta = virDomainGetMetadata(dom->dom, VIR_DOMAIN_METADATA_ELEMENT, TEST_NS, 0);
    virResetLastError();
    ignores = meta && strstr(meta, "<ignore-acpi/>");
    free(meta);
    return ignores;
}

static int
kvm_start(struct driver_dom *dom)
{
    return check(virDomainCreate(dom->dom), dom);
}

static int
kvm_shutdown(struct driver_dom *dom, power_mode mode)
{
    static const unsigned flags[] = { [POWER_DEFAULT] = 0, [POWER_ACPI] = VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN,
                                      [POWER_AGENT] = VIR_DOMAIN_SHUTDOWN_GUEST_AGENT };

    if (ignores_acpi(dom))
        return 0;
    return check(flags[mode] ? virDomainShutdownFlags(dom->dom, flags[mode]) : virDomainShutdown(dom->dom), dom);
}

static int
kvm_reboot(struct driver_dom *dom, power_mode mode)
{
    static const unsigned flags[] = { [POWER_DEFAULT] = 0, [POWER_ACPI] = VIR_DOMAIN_REBOOT_ACPI_POWER_BTN,
                                      [POWER_AGENT] = VIR_DOMAIN_REBOOT_GUEST_AGENT };

    if (ignores_acpi(dom))
        return 0;
    return check(virDomainReboot(dom->dom, flags[mode]), dom);
}

static int
kvm_destroy(struct driver_dom *dom)
{
    return check(virDomainDestroy(dom->dom), dom);
}

static int
kvm_reset(struct driver_dom *dom)
{
    return check(virDomainReset(dom->dom, 0), dom);
}

static int
kvm_suspend(struct driver_dom *dom)
{
    return check(virDomainSuspend(dom->dom), dom);
}

static int
kvm_resume(struct driver_dom *dom)
{
    return check(virDomainResume(dom->dom), dom);
}

static int
kvm_managed_save(struct driver_dom *dom)
{
    return check(virDomainManagedSave(dom->dom, 0), dom);
}

static int
kvm_set_time(struct driver_dom *dom)
{
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    return check(virDomainSetTime(dom->dom, (long long)now.tv_sec, (unsigned)now.tv_nsec, 0), dom);
}

/* The agent answers if it can tell the guest's time (virDomainGetTime goes through it). */
static int
kvm_agent_ping(struct driver_dom *dom, long long *guest_time)
{
    unsigned int nsec;

    return check(virDomainGetTime(dom->dom, guest_time, &nsec, 0), dom);
}

/* Names of libvirt's lifecycle events and details (virDomainEventType and its detail enums). */
static void
event_names(int event, int detail, struct dom_event *ev, bool managed_save)
{
    static const char *const events[] = { "defined", "undefined", "started", "suspended", "resumed",
                                          "stopped", "shutdown", "pmsuspended", "crashed" };
    static const char *const started[] = { "booted", "migrated", "restored", "from_snapshot", "wakeup" };
    static const char *const suspended[] = { "paused", "migrated", "ioerror", "watchdog", "restored",
                                             "from_snapshot", "api_error", "postcopy", "postcopy_failed" };
    static const char *const resumed[] = { "unpaused", "migrated", "from_snapshot", "postcopy", "postcopy_failed" };
    static const char *const stopped[] = { "shutdown", "destroyed", "crashed", "migrated", "saved", "failed",
                                           "from_snapshot" };
    static const char *const shutdown[] = { "finished", "guest", "host" };
#define NAME(table, i) ((i) >= 0 && (size_t)(i) < sizeof(table) / sizeof(table[0]) ? table[i] : "unknown")
    ev->event = NAME(events, event);
    ev->status = NULL;
    switch (event) {
    case VIR_DOMAIN_EVENT_STARTED: ev->detail = NAME(started, detail); ev->status = "running"; break;
    case VIR_DOMAIN_EVENT_SUSPENDED: ev->detail = NAME(suspended, detail); ev->status = "paused"; break;
    case VIR_DOMAIN_EVENT_RESUMED: ev->detail = NAME(resumed, detail); ev->status = "running"; break;
    case VIR_DOMAIN_EVENT_STOPPED:
        ev->detail = NAME(stopped, detail);
        ev->status = detail == VIR_DOMAIN_EVENT_STOPPED_SAVED || managed_save ? "hibernated"
                     : detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED         ? "crashed"
                                                                         : "shutdown";
        break;
    case VIR_DOMAIN_EVENT_SHUTDOWN: ev->detail = NAME(shutdown, detail); ev->status = "shutting_down"; break;
    case VIR_DOMAIN_EVENT_PMSUSPENDED: ev->detail = "memory"; ev->status = "pmsuspended"; break;
    case VIR_DOMAIN_EVENT_CRASHED: ev->detail = detail == 0 ? "panicked" : "crashloaded"; ev->status = "crashed"; break;
    case VIR_DOMAIN_EVENT_UNDEFINED: ev->detail = "removed"; ev->status = "missing"; break;
    default: ev->detail = "unknown";
    }
#undef NAME
}

static int
on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
    struct kvm *kvm = opaque;
    struct dom_event ev;
    char uuid[VIR_UUID_STRING_BUFLEN] = "";

    (void)conn;
    virDomainGetUUIDString(dom, uuid);
    ev.name = virDomainGetName(dom);
    ev.uuid = uuid;
    event_names(event, detail, &ev, false);
    virResetLastError();
    pthread_mutex_lock(&kvm->event_lock); /* kvm_close() waits for us */
    if (ev.name && kvm->event_fn)
        kvm->event_fn(kvm->event_opaque, &ev);
    pthread_mutex_unlock(&kvm->event_lock);
    return 0;
}

static int
kvm_events(struct driver *drv, driver_event_fn fn, void *opaque)
{
    struct kvm *kvm = drv->priv;

    pthread_mutex_lock(&kvm->event_lock);
    kvm->event_fn = fn;
    kvm->event_opaque = opaque;
    kvm->event_released = false;
    pthread_mutex_unlock(&kvm->event_lock);
    kvm->event_id = virConnectDomainEventRegisterAny(kvm->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                     VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), kvm, release_event);
    return kvm->event_id < 0 ? report("events") : 0;
}

const struct driver_ops driver_kvm_ops = {
    .name = "kvm",
    .open = kvm_open,
    .close = kvm_close,
    .lookup_by_name = kvm_lookup_by_name,
    .lookup_by_uuid = kvm_lookup_by_uuid,
    .dom_free = kvm_dom_free,
    .info = kvm_info,
    .list = kvm_list,
    .start = kvm_start,
    .shutdown = kvm_shutdown,
    .destroy = kvm_destroy,
    .reboot = kvm_reboot,
    .reset = kvm_reset,
    .suspend = kvm_suspend,
    .resume = kvm_resume,
    .managed_save = kvm_managed_save,
    .set_time = kvm_set_time,
    .agent_ping = kvm_agent_ping,
    .events = kvm_events,
};
