/*
 * driver.h - the hypervisor driver behind a vtable, after libvirt's own driver tables: one slot
 * per operation; a NULL slot means "unsupported", reported by the wrappers below as
 * "OPERATION is not supported by the NAME driver", never by callers. driver_kvm*.c fill it over
 * libvirt (KVM in production, libvirt's test driver in tests and the demo) and are the only files
 * that include libvirt.
 *
 * Errors are reported once, where they happen, into a thread-local slot (driver_error_*); every
 * function returns -1 (or NULL) on error. Handles are owned by the caller and freed with
 * driver_dom_free(). The driver and its handles may be used from several threads at once.
 */
#ifndef VMRQD_DRIVER_H
#define VMRQD_DRIVER_H

#include <stdbool.h>
#include <stddef.h>

/* What the hypervisor says of a domain (libvirt's virDomainState). */
typedef enum {
    DOM_NOSTATE,
    DOM_RUNNING,
    DOM_BLOCKED,
    DOM_PAUSED,
    DOM_SHUTTING_DOWN,
    DOM_SHUTOFF,
    DOM_CRASHED,
    DOM_PMSUSPENDED,
    DOM_STATE_LAST
} dom_state;

/* How to ask a guest to shut down or reboot. */
typedef enum { POWER_DEFAULT, POWER_ACPI, POWER_AGENT } power_mode;

struct driver;
struct driver_dom; /* a domain handle */

struct dom_info {
    char name[256];
    char uuid[37];
    dom_state state;
    bool managed_save;
};

/* The display a running domain offers: its first graphics device, as the hypervisor reports it
 * with its secrets (the password). port and tls_port 0: none. */
struct dom_display {
    char type[8];       /* "spice" or "vnc" */
    char host[256];     /* where a viewer connects: the listen address, or the host's name when
                           it listens on every address */
    int port, tls_port;
    char password[64];  /* "" if none */
};

/* A lifecycle event, as the driver reports it (names as libvirt's documentation spells them). */
struct dom_event {
    const char *name;   /* the domain */
    const char *uuid;
    const char *event;  /* "started", "suspended", "resumed", "stopped", "crashed", ...,
                           "rebooted", "agent" */
    const char *detail; /* "booted", "shutdown", "destroyed", "saved", "paused", ...,
                           "guest" (rebooted), "connected" or "disconnected" (agent) */
    const char *status; /* what domains.status becomes ("shutdown", "running", ...); NULL: unchanged */
    const char *viewer; /* graphics events: what domains.viewer becomes ("connected",
                           "disconnected"); NULL for the others */
    const char *address; /* graphics events: the viewer's address ("host:port"); else NULL */
};

/* Called on the driver's event thread for every domain event; must not block for long. */
typedef void (*driver_event_fn)(void *opaque, const struct dom_event *ev);
/* Called on a driver thread when the hypervisor connection is lost (up false; `why` says how)
 * and when the driver has reconnected and subscribed again (up true): events may have been
 * missed in between. */
typedef void (*driver_conn_fn)(void *opaque, bool up, const char *why);

/* How far a long operation has got, 0 to 1; called on the operation's thread. */
typedef void (*driver_progress_fn)(void *opaque, double done);

struct driver_ops {
    const char *name;
    int (*open)(struct driver *drv, const char *uri);
    void (*close)(struct driver *drv);
    bool (*reachable)(struct driver *drv);
    struct driver_dom *(*lookup_by_name)(struct driver *drv, const char *name);
    struct driver_dom *(*lookup_by_uuid)(struct driver *drv, const char *uuid);
    void (*dom_free)(struct driver_dom *dom);
    int (*info)(struct driver_dom *dom, struct dom_info *info);
    int (*list)(struct driver *drv, struct dom_info **out, size_t *n);
    int (*start)(struct driver_dom *dom);
    int (*shutdown)(struct driver_dom *dom, power_mode mode);
    int (*destroy)(struct driver_dom *dom);
    int (*reboot)(struct driver_dom *dom, power_mode mode);
    int (*reset)(struct driver_dom *dom);
    int (*suspend)(struct driver_dom *dom);
    int (*resume)(struct driver_dom *dom);
    int (*managed_save)(struct driver_dom *dom);
    int (*set_time)(struct driver_dom *dom);
    int (*agent_ping)(struct driver_dom *dom, long long *guest_time);
    int (*base_prepare)(struct driver_dom *dom, const char *pool, char **base_xml, driver_progress_fn fn,
                        void *opaque);
    int (*base_remove)(struct driver *drv, const char *base_xml);
    struct driver_dom *(*clone)(struct driver *drv, const char *base_xml, const char *name, const char *pool);
    int (*remove)(struct driver_dom *dom);
    int (*events)(struct driver *drv, driver_event_fn fn, driver_conn_fn conn_fn, void *opaque);
    int (*display_get)(struct driver_dom *dom, struct dom_display *out);
    int (*display_password)(struct driver_dom *dom, const char *password, bool always);
};

struct driver {
    const struct driver_ops *ops;
    void *priv;
};

/* The KVM/libvirt driver (driver_kvm.c). */
extern const struct driver_ops driver_kvm_ops;

/* Opens a driver for `uri` with `ops`. NULL on error (driver_error_message()). The caller
 * closes it with driver_close(), after every handle is freed. */
struct driver *driver_open(const struct driver_ops *ops, const char *uri);
void driver_close(struct driver *drv);

/* Wrappers: each checks its slot and reports an unsupported one. */
struct driver_dom *driver_lookup(struct driver *drv, const char *name, const char *uuid);
void driver_dom_free(struct driver *drv, struct driver_dom *dom);
int driver_info(struct driver *drv, struct driver_dom *dom, struct dom_info *info);
int driver_list(struct driver *drv, struct dom_info **out, size_t *n); /* *out: free() */
int driver_start(struct driver *drv, struct driver_dom *dom);
int driver_shutdown(struct driver *drv, struct driver_dom *dom, power_mode mode);
int driver_destroy(struct driver *drv, struct driver_dom *dom);
int driver_reboot(struct driver *drv, struct driver_dom *dom, power_mode mode);
int driver_reset(struct driver *drv, struct driver_dom *dom);
int driver_suspend(struct driver *drv, struct driver_dom *dom);
int driver_resume(struct driver *drv, struct driver_dom *dom);
int driver_managed_save(struct driver *drv, struct driver_dom *dom);
int driver_set_time(struct driver *drv, struct driver_dom *dom);
/* Whether the guest agent answers; its clock (seconds since the epoch) into *guest_time. */
int driver_agent_ping(struct driver *drv, struct driver_dom *dom, long long *guest_time);
/* Bases and clones, over the hypervisor's storage pools. A base volume is named
 * DOMAIN-TARGET.base.qcow2 and never deleted but by driver_base_remove().
 * driver_base_prepare: copies each writable disk of `dom` (shut off; each disk a volume of a
 * storage pool) into a read-only base volume in `pool`, and returns the base's definition, its
 * disks on those volumes, in *base_xml (caller frees). A base volume already there is kept.
 * `fn` (may be NULL) hears how far it has got, after each disk.
 * driver_base_remove: deletes the base volumes `base_xml` names.
 * driver_clone: defines `name` from `base_xml` with a fresh uuid and MACs, each disk a new qcow2
 * overlay in `pool` whose backing store is the base volume; its handle (caller frees).
 * driver_remove: stops `dom` if it runs, undefines it (managed save, snapshots' metadata,
 * NVRAM) and deletes its disks' volumes, never a base volume. */
int driver_base_prepare(struct driver *drv, struct driver_dom *dom, const char *pool, char **base_xml,
                        driver_progress_fn fn, void *opaque);
int driver_base_remove(struct driver *drv, const char *base_xml);
struct driver_dom *driver_clone(struct driver *drv, const char *base_xml, const char *name, const char *pool);
int driver_remove(struct driver *drv, struct driver_dom *dom);
/* Displays. driver_display_get: the display of running `dom` into *out: 1, or 0 if it has no
 * graphics device (or no port yet), -1 on error.
 * driver_display_password: sets `password` (the caller's, fresh) on the first graphics device of
 * shut-off `dom`'s definition, for its next start, when that device listens beyond the loopback
 * or `always`: 1 if set, 0 if not needed (no graphics, or loopback only), -1 on error. */
int driver_display_get(struct driver *drv, struct driver_dom *dom, struct dom_display *out);
int driver_display_password(struct driver *drv, struct driver_dom *dom, const char *password, bool always);
/* Subscribes `fn` to the events of every domain (lifecycle, reboot, guest agent, graphics) and `conn_fn`
 * (may be NULL) to the connection going and coming back, from now until driver_close().
 * A driver that loses its connection reconnects by itself, with backoff. */
int driver_events(struct driver *drv, driver_event_fn fn, driver_conn_fn conn_fn, void *opaque);

/* Whether the hypervisor can be reached now: false while the driver reconnects (a driver without
 * the slot always can). Cheap: no I/O. */
bool driver_reachable(struct driver *drv);

/* This thread's last driver error: a one-line message (libvirt's own words kept), whether
 * trying again later may work (connection lost, agent not answering, time-out), whether the
 * domain was not found, and whether the hypervisor was not reached at all (no connection: nothing
 * was asked of it; driver_error_mark_unreached() says so of the error just set). */
void driver_error_set(bool retryable, bool not_found, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *driver_error_message(void);
bool driver_error_retryable(void);
bool driver_error_not_found(void);
void driver_error_mark_unreached(void);
bool driver_error_unreached(void);

/* "running", "paused", ... as domains.status spells them. */
const char *dom_state_status(dom_state state, bool managed_save);

#endif /* VMRQD_DRIVER_H */
