/*
 * driver_kvm_events.c - libvirt's domain events for the event sink (see driver_kvm.h):
 * lifecycle (with the cause of each transition), guest reboot, the guest agent connecting
 * or going away, and a viewer connecting to the display or leaving it, each passed on with readable names ("stopped"/"destroyed", "agent"/"connected")
 * and the status it implies. Callbacks run on libvirt's event loop thread.
 */
#include <stdio.h>
#include <time.h>

#include <libvirt/virterror.h>

#include "driver_kvm.h"

/* Names of libvirt's lifecycle events and details (virDomainEventType and its detail enums). */
static void
lifecycle_names(int event, int detail, struct dom_event *ev)
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
    static const char *const defined[] = { "added", "updated", "renamed", "from_snapshot" };
    static const char *const undefined[] = { "removed", "renamed" };
#define NAME(table, i) ((i) >= 0 && (size_t)(i) < sizeof(table) / sizeof(table[0]) ? table[i] : "unknown")
    ev->event = NAME(events, event);
    ev->status = NULL;
    switch (event) {
    case VIR_DOMAIN_EVENT_STARTED: ev->detail = NAME(started, detail); ev->status = "running"; break;
    case VIR_DOMAIN_EVENT_SUSPENDED: ev->detail = NAME(suspended, detail); ev->status = "paused"; break;
    case VIR_DOMAIN_EVENT_RESUMED: ev->detail = NAME(resumed, detail); ev->status = "running"; break;
    case VIR_DOMAIN_EVENT_STOPPED:
        ev->detail = NAME(stopped, detail);
        ev->status = detail == VIR_DOMAIN_EVENT_STOPPED_SAVED     ? "hibernated"
                     : detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED ? "crashed"
                                                                  : "shutdown";
        break;
    case VIR_DOMAIN_EVENT_SHUTDOWN: ev->detail = NAME(shutdown, detail); ev->status = "shutting_down"; break;
    case VIR_DOMAIN_EVENT_PMSUSPENDED: ev->detail = "memory"; ev->status = "pmsuspended"; break;
    case VIR_DOMAIN_EVENT_CRASHED: ev->detail = detail == 0 ? "panicked" : "crashloaded"; ev->status = "crashed"; break;
    case VIR_DOMAIN_EVENT_DEFINED: ev->detail = NAME(defined, detail); break;
    case VIR_DOMAIN_EVENT_UNDEFINED: ev->detail = NAME(undefined, detail); ev->status = "missing"; break;
    default: ev->detail = "unknown";
    }
#undef NAME
}

/* Passes one event on, if a sink still wants it (kvm_events_stop() waits for us). */
static void
deliver(struct kvm *kvm, virDomainPtr dom, struct dom_event *ev)
{
    char uuid[VIR_UUID_STRING_BUFLEN] = "";

    virDomainGetUUIDString(dom, uuid);
    ev->name = virDomainGetName(dom);
    ev->uuid = uuid;
    virResetLastError();
    pthread_mutex_lock(&kvm->event_lock);
    if (ev->name && kvm->event_fn)
        kvm->event_fn(kvm->event_opaque, ev);
    pthread_mutex_unlock(&kvm->event_lock);
}

static int
on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
    struct dom_event ev = { 0 };

    (void)conn;
    lifecycle_names(event, detail, &ev);
    deliver(opaque, dom, &ev);
    return 0;
}

/* The guest rebooted (on its own or asked to); the domain stays up. */
static void
on_reboot(virConnectPtr conn, virDomainPtr dom, void *opaque)
{
    struct dom_event ev = { .event = "rebooted", .detail = "guest" };

    (void)conn;
    deliver(opaque, dom, &ev);
}

/* The guest agent connected or went away (the domain's state does not change). */
static void
on_agent(virConnectPtr conn, virDomainPtr dom, int state, int reason, void *opaque)
{
    struct dom_event ev = { .event = "agent" };

    (void)conn;
    (void)reason;
    ev.detail = state == VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_CONNECTED      ? "connected"
                : state == VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_DISCONNECTED ? "disconnected"
                                                                                      : "unknown";
    deliver(opaque, dom, &ev);
}

/* A viewer connected to the display (connect: the TCP connection; initialize: authenticated)
 * or left it (disconnect). */
static void
on_graphics(virConnectPtr conn, virDomainPtr dom, int phase, const virDomainEventGraphicsAddress *local,
            const virDomainEventGraphicsAddress *remote, const char *scheme,
            const virDomainEventGraphicsSubject *subject, void *opaque)
{
    struct dom_event ev = { .event = "graphics" };
    char addr[320] = "";

    (void)conn;
    (void)local;
    (void)scheme;
    (void)subject;
    ev.detail = phase == VIR_DOMAIN_EVENT_GRAPHICS_CONNECT      ? "connect"
                : phase == VIR_DOMAIN_EVENT_GRAPHICS_INITIALIZE ? "initialize"
                : phase == VIR_DOMAIN_EVENT_GRAPHICS_DISCONNECT ? "disconnect"
                                                                : "unknown";
    ev.viewer = phase == VIR_DOMAIN_EVENT_GRAPHICS_DISCONNECT ? "disconnected" : "connected";
    if (remote && remote->node)
        snprintf(addr, sizeof(addr), remote->family == VIR_DOMAIN_EVENT_GRAPHICS_ADDRESS_IPV6 ? "[%s]:%s" : "%s:%s",
                 remote->node, remote->service ? remote->service : "");
    ev.address = addr[0] ? addr : NULL;
    deliver(opaque, dom, &ev);
}

int
kvm_events_feed_graphics(struct driver *drv, const char *name, int phase, const char *node, const char *service)
{
    struct kvm *kvm = drv->priv;
    virDomainEventGraphicsAddress remote = { VIR_DOMAIN_EVENT_GRAPHICS_ADDRESS_IPV4, (char *)node, (char *)service };
    virConnectPtr c = kvm_conn_get(kvm);
    virDomainPtr dom;

    if (!c)
        return -1;
    if (!(dom = virDomainLookupByName(c, name))) {
        virConnectClose(c);
        return kvm_report(name);
    }
    on_graphics(c, dom, phase, NULL, &remote, "none", NULL, kvm);
    virDomainFree(dom);
    virConnectClose(c);
    return 0;
}

/* libvirt's freecb of a subscription: called once its callback is removed and not running. */
static void
release(void *opaque)
{
    struct kvm *kvm = opaque;

    pthread_mutex_lock(&kvm->event_lock);
    kvm->event_refs--;
    pthread_cond_broadcast(&kvm->event_gone);
    pthread_mutex_unlock(&kvm->event_lock);
}

int
kvm_events_subscribe(struct kvm *kvm, virConnectPtr conn)
{
    static const struct { int id; virConnectDomainEventGenericCallback cb; } subs[KVM_SUBSCRIPTIONS] = {
        { VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle) },
        { VIR_DOMAIN_EVENT_ID_REBOOT, VIR_DOMAIN_EVENT_CALLBACK(on_reboot) },
        { VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(on_agent) },
        { VIR_DOMAIN_EVENT_ID_GRAPHICS, VIR_DOMAIN_EVENT_CALLBACK(on_graphics) },
    };
    int ret = 0;

    pthread_mutex_lock(&kvm->event_lock);
    for (int i = 0; kvm->event_fn && i < KVM_SUBSCRIPTIONS; i++) {
        /* counted before: libvirt may release a failed subscription at once */
        kvm->event_refs++;
        kvm->event_ids[i] = virConnectDomainEventRegisterAny(conn, NULL, subs[i].id, subs[i].cb, kvm, release);
        if (kvm->event_ids[i] < 0) {
            kvm->event_refs--;
            if (i == 0)
                ret = kvm_report("events");
            else
                virResetLastError();
        }
    }
    pthread_mutex_unlock(&kvm->event_lock);
    return ret;
}

void
kvm_events_unsubscribe(struct kvm *kvm, virConnectPtr conn)
{
    int ids[KVM_SUBSCRIPTIONS];

    pthread_mutex_lock(&kvm->event_lock);
    for (int i = 0; i < KVM_SUBSCRIPTIONS; i++) {
        ids[i] = kvm->event_ids[i];
        kvm->event_ids[i] = -1;
    }
    pthread_mutex_unlock(&kvm->event_lock); /* the freecb takes it */
    for (int i = 0; i < KVM_SUBSCRIPTIONS; i++)
        if (ids[i] >= 0 && virConnectDomainEventDeregisterAny(conn, ids[i]) < 0)
            virResetLastError(); /* a dead connection: libvirt releases it with the connection */
}

void
kvm_events_stop(struct kvm *kvm)
{
    pthread_mutex_lock(&kvm->event_lock);
    kvm->event_fn = NULL;
    kvm->conn_fn = NULL;
    pthread_mutex_unlock(&kvm->event_lock);
}

void
kvm_events_wait(struct kvm *kvm)
{
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 2;
    pthread_mutex_lock(&kvm->event_lock);
    while (kvm->event_refs > 0 && pthread_cond_timedwait(&kvm->event_gone, &kvm->event_lock, &until) == 0)
        ;
    pthread_mutex_unlock(&kvm->event_lock);
}

void
kvm_events_connection(struct kvm *kvm, bool up, const char *why)
{
    pthread_mutex_lock(&kvm->event_lock);
    if (kvm->conn_fn)
        kvm->conn_fn(kvm->event_opaque, up, why);
    pthread_mutex_unlock(&kvm->event_lock);
}
