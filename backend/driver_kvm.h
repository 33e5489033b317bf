/*
 * driver_kvm.h - what the three files of the libvirt driver share (private to them; the rest of
 * vmrqd sees only driver.h): the driver's state, the connection keeper (driver_kvm_conn.c) and
 * the event subscriptions (driver_kvm_events.c). driver_kvm.c holds the operations. These are the
 * only files of vmrq that include libvirt.
 */
#ifndef VMRQD_DRIVER_KVM_H
#define VMRQD_DRIVER_KVM_H

#include <pthread.h>
#include <stdbool.h>

#include <libvirt/libvirt.h>

#include "driver.h"

enum { KVM_SUBSCRIPTIONS = 3 }; /* lifecycle, reboot, agent lifecycle */

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

/* Turns libvirt's last error into this thread's driver error, prefixed with `what`; returns -1. */
int kvm_report(const char *what);

/* Opens the first connection (libvirt's event loop started before it) and the keeper thread:
 * -1 if the hypervisor cannot be reached now. */
int kvm_conn_open(struct kvm *kvm);
/* The connection, as a new reference the caller closes (virConnectClose); NULL with a
 * retryable error while it is lost and being reopened. */
virConnectPtr kvm_conn_get(struct kvm *kvm);
/* Stops the keeper, drops the subscriptions and closes the connection (after kvm_events_stop()). */
void kvm_conn_close(struct kvm *kvm);

/* Subscribes the sink's callbacks on `conn` (again on each new connection); nothing without a
 * sink. -1 if the lifecycle subscription failed; the others are optional. */
int kvm_events_subscribe(struct kvm *kvm, virConnectPtr conn);
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
