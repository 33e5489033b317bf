/*
 * driver_kvm.h - what the files of the libvirt driver share (private to them; the rest of
 * vmrqd sees only driver.h): the driver's state, the connection keeper (driver_kvm_conn.c) and
 * the event subscriptions (driver_kvm_events.c), bases and clones over libvirt's storage API
 * (driver_kvm_base.c), displays (driver_kvm_display.c). driver_kvm.c holds the operations. These are the only files of vmrq that
 * include libvirt.
 */
#ifndef VMRQD_DRIVER_KVM_H
#define VMRQD_DRIVER_KVM_H

#include <pthread.h>
#include <stdbool.h>

#include <libvirt/libvirt.h>

#include "driver.h"

enum { KVM_SUBSCRIPTIONS = 4 }; /* lifecycle, reboot, agent lifecycle, graphics */

struct kvm {
    char *uri;
    bool is_test;

    /* The connection and its keeper. lock guards conn, lost, why and closing; libvirt is never
     * called with it held, except virConnectIsAlive() and virConnectRef(), which do no I/O. */
    pthread_mutex_t lock;
    pthread_cond_t wake;     /* the keeper sleeps on it */
    virConnectPtr conn;      /* NULL while the keeper reconnects */
    bool lost;               /* the connection died: the keeper replaces it */
    bool closing;
    char why[256];           /* why it was lost */
    pthread_t keeper;
    bool keeper_started;

    /* Events. event_lock guards the fields below; callbacks run with it held, so once
     * kvm_events_stop() has cleared the sink no callback reaches it. */
    pthread_mutex_t event_lock;
    pthread_cond_t event_gone;
    int event_refs;          /* subscriptions libvirt has not released yet */
    int event_ids[KVM_SUBSCRIPTIONS];
    driver_event_fn event_fn;
    driver_conn_fn conn_fn;
    void *event_opaque;
};

/* A domain handle: libvirt's, and the driver it came from. */
struct driver_dom {
    virDomainPtr dom;
    struct kvm *kvm;
};

/* Turns libvirt's last error into this thread's driver error, prefixed with `what`; returns -1. */
int kvm_report(const char *what);
/* `d` (ownership taken) as a handle of `kvm`; NULL with libvirt's error reported under `what`
 * if `d` is NULL, or when out of memory. The caller frees the handle (driver_dom_free()). */
struct driver_dom *kvm_wrap(struct kvm *kvm, virDomainPtr d, const char *what);

/* Bases and clones (driver_kvm_base.c): see the slots of the same names in driver.h. */
int kvm_base_prepare(struct driver_dom *dom, const char *pool, char **base_xml, driver_progress_fn fn,
                     void *opaque);
int kvm_base_remove(struct driver *drv, const char *base_xml);
struct driver_dom *kvm_clone(struct driver *drv, const char *base_xml, const char *name, const char *pool);
int kvm_remove(struct driver_dom *dom);

/* Displays (driver_kvm_display.c): see the slots of the same names in driver.h. */
int kvm_display_get(struct driver_dom *dom, struct dom_display *out);
int kvm_display_password(struct driver_dom *dom, const char *password, bool always);

/* Opens the first connection (libvirt's event loop started before it) and the keeper thread:
 * -1 if the hypervisor cannot be reached now. */
int kvm_conn_open(struct kvm *kvm);
/* The connection, as a new reference the caller closes (virConnectClose); NULL with a
 * retryable error while it is lost and being reopened. */
virConnectPtr kvm_conn_get(struct kvm *kvm);
/* Whether the connection is up (a dead one found is handed to the keeper); no I/O. */
bool kvm_conn_up(struct kvm *kvm);
/* Stops the keeper, drops the subscriptions and closes the connection (after kvm_events_stop()). */
void kvm_conn_close(struct kvm *kvm);

/* Subscribes the sink's callbacks on `conn` (again on each new connection); nothing without a
 * sink. -1 if the lifecycle subscription failed; the others are optional. */
int kvm_events_subscribe(struct kvm *kvm, virConnectPtr conn);
/* Feeds a graphics event of domain `name` (phase: VIR_DOMAIN_EVENT_GRAPHICS_*, from the viewer at
 * node:service) through the callback libvirt's would take, to the subscribed sink: libvirt's
 * test driver emits none, so the tests use this. 0, or -1 (reported). */
int kvm_events_feed_graphics(struct driver *drv, const char *name, int phase, const char *node, const char *service);
/* Drops the subscriptions made on `conn` (a dead connection's too). */
void kvm_events_unsubscribe(struct kvm *kvm, virConnectPtr conn);
/* No callback reaches the sink after this returns. */
void kvm_events_stop(struct kvm *kvm);
/* Waits (2 s at most) until libvirt has released every subscription: then no callback runs or
 * will run with this struct. */
void kvm_events_wait(struct kvm *kvm);
/* Tells the sink that the connection went (up false) or came back (up true). */
void kvm_events_connection(struct kvm *kvm, bool up, const char *why);

#endif /* VMRQD_DRIVER_KVM_H */
