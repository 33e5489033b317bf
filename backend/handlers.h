/*
 * handlers.h - the handlers of the catalog's commands (handlers.c). Each fills the job's
 * outcome through job_fail / job_set_output / job_follow_up and returns.
 */
#ifndef VMRQD_HANDLERS_H
#define VMRQD_HANDLERS_H

#include "job.h"

void handle_ping_backend(struct vmrqd_job *job, struct vmrqd_worker *worker);
void handle_cleanup(struct vmrqd_job *job, struct vmrqd_worker *worker);
/* Commands that need the hypervisor driver, which vmrqd does not have yet. */
void handle_needs_driver(struct vmrqd_job *job, struct vmrqd_worker *worker);

#endif /* VMRQD_HANDLERS_H */
