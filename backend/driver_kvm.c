/*
 * driver_kvm.c - the hypervisor driver over libvirt: KVM/QEMU in production (qemu:///system,
 * qemu+ssh://host/system), libvirt's test driver (test:///PATH.xml) in tests and the demo. The
 * operations; the connection and its keeper are in driver_kvm_conn.c, the event subscriptions in
 * driver_kvm_events.c. libvirt's errors become driver errors with libvirt's message kept; the
 * connection is shared by all workers (libvirt connections are thread-safe).
 *
 * One emulation for test:// URIs only: libvirt's test driver powers a domain off at once on
 * shutdown, so a test guest that "ignores the power button" is marked in its XML with
 *   <metadata><vmrq:guest xmlns:vmrq='urn:vmrq:test'><ignore-acpi/></vmrq:guest></metadata>
 * and its polite shutdown/reboot are accepted and do nothing, as a hung real guest would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvirt/virterror.h>

#include "clock.h"
#include "driver_kvm.h"

#define TEST_NS "urn:vmrq:test"

/* libvirt prints every error on stderr by default; vmrq reports its own way. */
static void
silent(void *opaque, virErrorPtr err)
{
    (void)opaque;
    (void)err;
}

/* libvirt's error `e` (NULL: none) as this thread's driver error, prefixed with `what`. */
static void
report_error(const char *what, virErrorPtr e)
{
    int code = e ? e->code : VIR_ERR_INTERNAL_ERROR;
    bool retryable = code == VIR_ERR_AGENT_UNRESPONSIVE || code == VIR_ERR_OPERATION_TIMEOUT ||
                     code == VIR_ERR_NO_CONNECT || code == VIR_ERR_RPC || code == VIR_ERR_AGENT_UNSYNCED ||
                     code == VIR_ERR_SYSTEM_ERROR;

    driver_error_set(retryable, code == VIR_ERR_NO_DOMAIN, "%s: %s", what,
                     e && e->message ? e->message : "unknown libvirt error");
}

int
kvm_report(const char *what)
{
    report_error(what, virGetLastError());
    virResetLastError();
    return -1;
}

static void
kvm_free(struct kvm *kvm)
{
    pthread_mutex_destroy(&kvm->lock);
    pthread_cond_destroy(&kvm->wake);
    pthread_mutex_destroy(&kvm->event_lock);
    pthread_cond_destroy(&kvm->event_gone);
    free(kvm->uri);
    free(kvm);
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
    pthread_mutex_init(&kvm->lock, NULL);
    pthread_cond_init(&kvm->wake, NULL);
    pthread_mutex_init(&kvm->event_lock, NULL);
    pthread_cond_init(&kvm->event_gone, NULL);
    for (int i = 0; i < KVM_SUBSCRIPTIONS; i++)
        kvm->event_ids[i] = -1;
    kvm->is_test = strncmp(uri, "test:", 5) == 0;
    if (virInitialize() < 0) {
        kvm_report("libvirt");
        kvm_free(kvm);
        return -1;
    }
    virSetErrorFunc(NULL, silent);
    if (kvm_conn_open(kvm) < 0) {
        kvm_free(kvm);
        return -1;
    }
    drv->priv = kvm;
    return 0;
}

static void
kvm_close(struct driver *drv)
{
    struct kvm *kvm = drv->priv;

    /* No event may reach a sink its owner is about to free, nor this struct once freed. */
    kvm_events_stop(kvm);
    kvm_conn_close(kvm);
    kvm_free(kvm);
}

static bool
kvm_reachable(struct driver *drv)
{
    return kvm_conn_up(drv->priv);
}

struct driver_dom *
kvm_wrap(struct kvm *kvm, virDomainPtr d, const char *what)
{
    struct driver_dom *dom;

    if (!d) {
        kvm_report(what);
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
    virConnectPtr c = kvm_conn_get(kvm);
    struct driver_dom *dom;

    if (!c)
        return NULL;
    dom = kvm_wrap(kvm, virDomainLookupByName(c, name), name);
    virConnectClose(c);
    return dom;
}

static struct driver_dom *
kvm_lookup_by_uuid(struct driver *drv, const char *uuid)
{
    struct kvm *kvm = drv->priv;
    virConnectPtr c = kvm_conn_get(kvm);
    struct driver_dom *dom;

    if (!c)
        return NULL;
    dom = kvm_wrap(kvm, virDomainLookupByUUIDString(c, uuid), uuid);
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
        return kvm_report(name ? name : "domain");
    if ((ms = virDomainHasManagedSaveImage(d, 0)) < 0)
        return kvm_report(name);
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
    virConnectPtr c = kvm_conn_get(drv->priv);
    virDomainPtr *doms = NULL;
    int count, ret = -1;

    *out = NULL;
    *n = 0;
    if (!c)
        return -1;
    if ((count = virConnectListAllDomains(c, &doms, 0)) < 0) {
        kvm_report("list domains");
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

/* libvirt's error `err` (a copy: every public call, virDomainGetName() too, resets the last
 * error) reported under the domain's name. */
static void
report_dom(struct driver_dom *dom, virErrorPtr err)
{
    const char *name = virDomainGetName(dom->dom);

    report_error(name ? name : "domain", err);
}

/* 0, or -1 with libvirt's error reported under the domain's name; active -1 for that alone. For
 * a start (active: 1) or a destroy (active: 0) that libvirt refused because the domain is
 * already so, 0 if it still is: done meanwhile by someone else (the same request of a vmrqd that
 * died, still in libvirtd's hands when its rerun came; an operator's virsh), and what was asked
 * holds, as a start of a running domain is a no-op; but 1 if it is no longer so (that other
 * operation was undone meanwhile too: a dead vmrqd's destroy after its start): the caller tries
 * again. */
static int
check_as(int rc, struct driver_dom *dom, int active)
{
    virError err;
    int now = -1;

    if (rc >= 0)
        return 0;
    memset(&err, 0, sizeof(err));
    virCopyLastError(&err);
    if (active >= 0 && err.code == VIR_ERR_OPERATION_INVALID)
        now = virDomainIsActive(dom->dom);
    virResetLastError();
    if (now < 0)
        report_dom(dom, &err);
    virResetError(&err);
    return now < 0 ? -1 : now == active ? 0 : 1;
}

/* A start (active: 1) or a destroy (active: 0) by `op`, tried again (a few times) while the
 * domain changes under it (check_as()). */
static int
settle(struct driver_dom *dom, int (*op)(virDomainPtr), int active)
{
    int rc = 1;

    for (int i = 0; i < 3 && rc == 1; i++)
        rc = check_as(op(dom->dom), dom, active);
    if (rc == 1)
        driver_error_set(true, false, "%s: it keeps changing under vmrq (another start or stop runs at once)",
                         virDomainGetName(dom->dom));
    return rc == 0 ? 0 : -1;
}

static int
check(int rc, struct driver_dom *dom)
{
    return check_as(rc, dom, -1);
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
    return settle(dom, virDomainCreate, 1);
}

/* Whether the domain is shutting down or off, looking for up to `within_ms`. */
static bool
went_down(struct driver_dom *dom, int within_ms)
{
    for (int waited = 0;; waited += 50) {
        int state, reason;

        if (virDomainGetState(dom->dom, &state, &reason, 0) < 0) {
            virResetLastError();
            return false;
        }
        if (state == VIR_DOMAIN_SHUTDOWN || state == VIR_DOMAIN_SHUTOFF)
            return true;
        if (waited >= within_ms)
            return false;
        clock_sleep_ms(50);
    }
}

/* A shutdown through the guest agent gets no answer: libvirt waits for QEMU to report the
 * guest's shutdown. When qemu-ga closes its socket, as the guest goes down, before that report
 * reaches libvirt, the call fails with "internal error: End of file from agent socket" though
 * the guest is on its way down (seen once in the real-guest tests, on a fresh machine). Such a
 * failure is taken back if the domain stops running within AGENT_GONE_MS. */
#define AGENT_GONE_MS 5000

static int
kvm_shutdown(struct driver_dom *dom, power_mode mode)
{
    static const unsigned flags[] = { [POWER_DEFAULT] = 0, [POWER_ACPI] = VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN,
                                      [POWER_AGENT] = VIR_DOMAIN_SHUTDOWN_GUEST_AGENT };
    int rc;

    if (ignores_acpi(dom))
        return 0;
    rc = flags[mode] ? virDomainShutdownFlags(dom->dom, flags[mode]) : virDomainShutdown(dom->dom);
    if (rc < 0 && mode == POWER_AGENT && virGetLastErrorCode() == VIR_ERR_INTERNAL_ERROR) {
        virError err;

        memset(&err, 0, sizeof(err));
        virCopyLastError(&err);
        if (went_down(dom, AGENT_GONE_MS))
            rc = 0;
        else
            report_dom(dom, &err);
        virResetError(&err);
        return rc;
    }
    return check(rc, dom);
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
    return settle(dom, virDomainDestroy, 0);
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

static int
kvm_events(struct driver *drv, driver_event_fn fn, driver_conn_fn conn_fn, void *opaque)
{
    struct kvm *kvm = drv->priv;
    virConnectPtr c;
    int rc;

    pthread_mutex_lock(&kvm->event_lock);
    kvm->event_fn = fn;
    kvm->conn_fn = conn_fn;
    kvm->event_opaque = opaque;
    pthread_mutex_unlock(&kvm->event_lock);
    if (!(c = kvm_conn_get(kvm)))
        return -1; /* the keeper subscribes when it is back */
    rc = kvm_events_subscribe(kvm, c);
    virConnectClose(c);
    return rc;
}

const struct driver_ops driver_kvm_ops = {
    .name = "kvm",
    .open = kvm_open,
    .close = kvm_close,
    .reachable = kvm_reachable,
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
    .base_prepare = kvm_base_prepare,
    .base_remove = kvm_base_remove,
    .clone = kvm_clone,
    .remove = kvm_remove,
    .events = kvm_events,
    .display_get = kvm_display_get,
    .display_password = kvm_display_password,
};
