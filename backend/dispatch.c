/*
 * dispatch.c - the handler table and the dispatch pipeline (see dispatch.h).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dispatch.h"
#include "driver.h"
#include "handlers.h"
#include "validate.h"

/* One row per catalog command, same names; dispatch_check() proves the two tables agree.
 * Handlers marked inline never block: the main loop runs them itself, a thousand per claim. */
static const struct vmrqd_handler handlers[] = {
    { "ping_backend",    handle_ping_backend, true },
    { "start",           handle_domain_command, false },
    { "shutdown",        handle_domain_command, false },
    { "force_shutdown",  handle_domain_command, false },
    { "reboot",          handle_domain_command, false },
    { "force_reboot",    handle_domain_command, false },
    { "pause",           handle_domain_command, false },
    { "resume",          handle_domain_command, false },
    { "hibernate",       handle_domain_command, false },
    { "shutdown_start",  handle_shutdown_start, false },
    { "refresh_vms",     handle_refresh_vms, false },
    { "refresh_machine", handle_refresh_machine, false },
    { "set_time",        handle_domain_command, false },
    { "ping_agent",      handle_domain_command, false },
    { "cleanup",         handle_cleanup, false },
    { "prepare_base",    handle_prepare_base, false },
    { "remove_base",     handle_remove_base, false },
    { "clone",           handle_clone, false },
    { "provision",       handle_provision, false },
    { "manage_pools",    handle_manage_pools, false },
    { "remove_domain",   handle_remove_domain, false },
};

#define NHANDLERS (sizeof(handlers) / sizeof(handlers[0]))

static const struct vmrqd_handler *
lookup(const char *name)
{
    for (size_t i = 0; i < NHANDLERS; i++)
        if (strcmp(handlers[i].name, name) == 0)
            return &handlers[i];
    return NULL;
}

bool
dispatch_runs_inline(const char *command)
{
    const struct vmrqd_handler *h = lookup(command);

    return h && h->inline_ok;
}

int
dispatch_check(char *err, size_t errlen)
{
    for (size_t i = 0; i < vmrq_command_count(); i++)
        if (!lookup(vmrq_command_at(i)->name)) {
            snprintf(err, errlen, "command '%s' has no handler", vmrq_command_at(i)->name);
            return -1;
        }
    for (size_t i = 0; i < NHANDLERS; i++)
        if (!vmrq_command_lookup(handlers[i].name)) {
            snprintf(err, errlen, "handler '%s' names no catalog command", handlers[i].name);
            return -1;
        }
    return 0;
}

int
dispatch_prepare(struct vmrqd_job *job)
{
    job->cmd = vmrq_command_lookup(job->command);
    job->handler = lookup(job->command);
    if (!job->cmd || !job->handler) {
        job_fail(job, false, "unknown command '%s' (this vmrqd is %s)", job->command, vmrq_version());
        return -1;
    }
    if (!job->args || vmrq_validate_args(job->cmd, job->args) < 0) {
        job_fail(job, false, "%s", job->args ? vmrq_error_message() : "arguments are not JSON");
        return -1;
    }
    return 0;
}

void
dispatch_inline(struct vmrqd_job *job, struct vmrqd_worker *worker, const char *where, long long backoff_ms)
{
    if (dispatch_prepare(job) == 0)
        dispatch_run(job, worker);
    job_log_outcome(job, where, backoff_ms);
}

void
dispatch_run(struct vmrqd_job *job, struct vmrqd_worker *worker)
{
    struct timespec t0, t1;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    job->outcome = JOB_DONE;
    job->db_lost = false;
    job->handler->run(job, worker);
    /* The hypervisor (inline commands need none) or the database went away during the call:
     * whether it acted is unknown, and a command safe to run twice goes back to the queue, in its
     * place, rather than failing for an outage. */
    if ((job->outcome == JOB_FAILED || job->outcome == JOB_RETRY) && job->cmd && (job->cmd->flags & VMRQ_CMD_RERUN)
        && (job->db_lost || (!job->inline_run && worker->drv && !driver_reachable(worker->drv))))
        job->outcome = JOB_UNREACHED;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    job->took_us = (t1.tv_sec - t0.tv_sec) * 1000000LL + (t1.tv_nsec - t0.tv_nsec) / 1000;
}
