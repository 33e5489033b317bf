/*
 * driver.c - the wrappers of the driver vtable and its error slot (see driver.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "driver.h"

static _Thread_local char err_msg[1024];
static _Thread_local bool err_retryable, err_not_found, err_unreached;

void
driver_error_set(bool retryable, bool not_found, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof(err_msg), fmt, ap);
    va_end(ap);
    for (char *p = err_msg; *p; p++)
        if (*p == '\n')
            *p = ' ';
    err_retryable = retryable;
    err_not_found = not_found;
    err_unreached = false;
}

void
driver_error_mark_unreached(void)
{
    err_unreached = err_retryable = true;
}

const char *driver_error_message(void) { return err_msg; }
bool driver_error_retryable(void) { return err_retryable; }
bool driver_error_not_found(void) { return err_not_found; }
bool driver_error_unreached(void) { return err_unreached; }

/* Reports that `drv` has no slot for `op`; returns -1. */
static int
unsupported(const struct driver *drv, const char *op)
{
    driver_error_set(false, false, "%s is not supported by the %s driver", op, drv->ops->name);
    return -1;
}
#define UNSUPPORTED(drv, op) unsupported(drv, op)

struct driver *
driver_open(const struct driver_ops *ops, const char *uri)
{
    struct driver *drv = calloc(1, sizeof(*drv));

    if (!drv) {
        driver_error_set(false, false, "out of memory");
        return NULL;
    }
    drv->ops = ops;
    if (ops->open && ops->open(drv, uri) < 0) {
        free(drv);
        return NULL;
    }
    return drv;
}

void
driver_close(struct driver *drv)
{
    if (!drv)
        return;
    if (drv->ops->close)
        drv->ops->close(drv);
    free(drv);
}

struct driver_dom *
driver_lookup(struct driver *drv, const char *name, const char *uuid)
{
    if (uuid && *uuid && drv->ops->lookup_by_uuid)
        return drv->ops->lookup_by_uuid(drv, uuid);
    if (name && drv->ops->lookup_by_name)
        return drv->ops->lookup_by_name(drv, name);
    UNSUPPORTED(drv, "lookup");
    return NULL;
}

void
driver_dom_free(struct driver *drv, struct driver_dom *dom)
{
    if (dom && drv->ops->dom_free)
        drv->ops->dom_free(dom);
}

int
driver_list(struct driver *drv, struct dom_info **out, size_t *n)
{
    return drv->ops->list ? drv->ops->list(drv, out, n) : UNSUPPORTED(drv, "refresh_vms");
}

bool
driver_reachable(struct driver *drv)
{
    return !drv->ops->reachable || drv->ops->reachable(drv);
}

int
driver_info(struct driver *drv, struct driver_dom *dom, struct dom_info *info)
{
    return drv->ops->info ? drv->ops->info(dom, info) : UNSUPPORTED(drv, "refresh_machine");
}

/* The operations that take a domain and nothing else. */
#define DOM_OP(fn, slot, opname)                                                       \
    int fn(struct driver *drv, struct driver_dom *dom)                                \
    {                                                                                   \
        return drv->ops->slot ? drv->ops->slot(dom) : UNSUPPORTED(drv, opname);        \
    }

DOM_OP(driver_start, start, "start")
DOM_OP(driver_destroy, destroy, "force_shutdown")
DOM_OP(driver_reset, reset, "force_reboot")
DOM_OP(driver_suspend, suspend, "pause")
DOM_OP(driver_resume, resume, "resume")
DOM_OP(driver_managed_save, managed_save, "hibernate")
DOM_OP(driver_set_time, set_time, "set_time")

int
driver_shutdown(struct driver *drv, struct driver_dom *dom, power_mode mode)
{
    return drv->ops->shutdown ? drv->ops->shutdown(dom, mode) : UNSUPPORTED(drv, "shutdown");
}

int
driver_reboot(struct driver *drv, struct driver_dom *dom, power_mode mode)
{
    return drv->ops->reboot ? drv->ops->reboot(dom, mode) : UNSUPPORTED(drv, "reboot");
}

int
driver_agent_ping(struct driver *drv, struct driver_dom *dom, long long *guest_time)
{
    return drv->ops->agent_ping ? drv->ops->agent_ping(dom, guest_time) : UNSUPPORTED(drv, "ping_agent");
}

int
driver_base_prepare(struct driver *drv, struct driver_dom *dom, const char *pool, char **base_xml,
                    driver_progress_fn fn, void *opaque)
{
    return drv->ops->base_prepare ? drv->ops->base_prepare(dom, pool, base_xml, fn, opaque)
                                  : UNSUPPORTED(drv, "prepare_base");
}

int
driver_base_remove(struct driver *drv, const char *base_xml)
{
    return drv->ops->base_remove ? drv->ops->base_remove(drv, base_xml) : UNSUPPORTED(drv, "remove_base");
}

struct driver_dom *
driver_clone(struct driver *drv, const char *base_xml, const char *name, const char *pool)
{
    if (!drv->ops->clone) {
        UNSUPPORTED(drv, "clone");
        return NULL;
    }
    return drv->ops->clone(drv, base_xml, name, pool);
}

DOM_OP(driver_remove, remove, "remove_domain")

int
driver_events(struct driver *drv, driver_event_fn fn, driver_conn_fn conn_fn, void *opaque)
{
    return drv->ops->events ? drv->ops->events(drv, fn, conn_fn, opaque) : UNSUPPORTED(drv, "events");
}

int
driver_display_get(struct driver *drv, struct driver_dom *dom, struct dom_display *out)
{
    return drv->ops->display_get ? drv->ops->display_get(dom, out) : UNSUPPORTED(drv, "display");
}

int
driver_display_password(struct driver *drv, struct driver_dom *dom, const char *password, bool always)
{
    return drv->ops->display_password ? drv->ops->display_password(dom, password, always)
                                      : UNSUPPORTED(drv, "display password");
}

const char *
dom_state_status(dom_state state, bool managed_save)
{
    static const char *const names[DOM_STATE_LAST] = {
        [DOM_NOSTATE] = "unknown",     [DOM_RUNNING] = "running",
        [DOM_BLOCKED] = "running",     [DOM_PAUSED] = "paused",
        [DOM_SHUTTING_DOWN] = "shutting_down", [DOM_SHUTOFF] = "shutdown",
        [DOM_CRASHED] = "crashed",     [DOM_PMSUSPENDED] = "pmsuspended",
    };

    if (state == DOM_SHUTOFF && managed_save)
        return "hibernated";
    return (unsigned)state < DOM_STATE_LAST ? names[state] : "unknown";
}
