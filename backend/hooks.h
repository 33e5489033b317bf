/*
 * hooks.h - the operations handlers perform on a domain, each run between its before and after
 * hooks (Ravada's `before 'shutdown'` / `after 'shutdown'`). A before hook may veto; after hooks
 * always run and see the result. The table of hooks is in hooks.c.
 */
#ifndef VMRQD_HOOKS_H
#define VMRQD_HOOKS_H

#include "domain.h"

enum op {
    OP_START,
    OP_SHUTDOWN,
    OP_FORCE_SHUTDOWN,
    OP_REBOOT,
    OP_FORCE_REBOOT,
    OP_PAUSE,
    OP_RESUME,
    OP_HIBERNATE,
    OP_SET_TIME,
    OP_PING_AGENT,
    OP_LAST,
    OP_ANY = OP_LAST /* in the hook table: every operation */
};

struct op_ctx {
    struct vmrqd_job *job;
    struct vmrqd_worker *w;
    struct domain *d;
    enum op op;
    power_mode mode;         /* OP_SHUTDOWN, OP_REBOOT */
    int timeout;             /* OP_SHUTDOWN: seconds before a force_shutdown follows; -1: none */
    int result;              /* of the driver call: 0 or -1 (for after hooks) */
    struct json_object *ran; /* names of the hooks run, in order (the job's output shows them) */
    long long guest_time;    /* OP_PING_AGENT: the guest's clock, as its agent reported it */
    struct {                 /* OP_START: the policies, read by the hook read_start_policy */
        bool read;
        int run_timeout;     /* seconds; 0: none */
        int shutdown_disconnected; /* seconds; -1: none */
    } policy;
};

/* Runs operation ctx->op on ctx->d: before hooks (any veto stops it: -1, job failed; a hook
 * that finds nothing to do stops it too: 0, job done), the driver call (its error fails the
 * job), after hooks. Returns the driver call's result. */
int op_run(struct op_ctx *ctx);

/* The operation's name as the catalog and the messages spell it ("shutdown"). */
const char *op_name(enum op op);

#endif /* VMRQD_HOOKS_H */
