/*
 * events.h - what vmrqd does with the hypervisor's events: domains.status follows at once, each
 * event is kept in domain_events, a domain vmrq did not know is added, and a stopped domain's
 * pending force_shutdown requests are moot: done, "domain already down". When the hypervisor
 * connection comes back after a loss, a refresh_vms makes up for the events missed. The events
 * of a domain whose row another session holds wait, in order, and are written once it is free;
 * the others' do not wait for them.
 */
#ifndef VMRQD_EVENTS_H
#define VMRQD_EVENTS_H

#include "driver.h"

struct events;

/* An event sink writing to the database `conninfo` (copied) for node `node` (copied). */
struct events *events_new(const char *conninfo, const char *node);
/* The driver_event_fn to subscribe with driver_events(drv, events_on_domain,
 * events_on_connection, events). Runs on
 * the driver's event thread; writes the event in one statement on a connection of its own. */
void events_on_domain(void *events, const struct dom_event *ev);
/* The driver_conn_fn to subscribe with it: logs a lost connection; when it is back, enqueues
 * refresh_vms for this node (events were missed meanwhile). */
void events_on_connection(void *events, bool up, const char *why);
/* Frees the sink; unsubscribe first (driver_close()). NULL is fine. */
void events_free(struct events *events);

#endif /* VMRQD_EVENTS_H */
