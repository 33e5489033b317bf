/*
 * handlers.h - the handlers of the catalog's commands (handlers.c, handlers_domain.c,
 * handlers_base.c). Each fills the job's
 * outcome through job_fail / job_set_output / job_follow_up and returns.
 */
#ifndef VMRQD_HANDLERS_H
#define VMRQD_HANDLERS_H

#include "job.h"

void handle_ping_backend(struct vmrqd_job *job, struct vmrqd_worker *worker);
void handle_cleanup(struct vmrqd_job *job, struct vmrqd_worker *worker);
/* handlers_domain.c: the commands that act on virtual machines. */
void handle_domain_command(struct vmrqd_job *job, struct vmrqd_worker *worker);
void handle_shutdown_start(struct vmrqd_job *job, struct vmrqd_worker *worker);
void handle_refresh_vms(struct vmrqd_job *job, struct vmrqd_worker *worker);
void handle_refresh_machine(struct vmrqd_job *job, struct vmrqd_worker *worker);
/* handlers_base.c: desktops made from a base. */
void handle_prepare_base(struct vmrqd_job *job, struct vmrqd_worker *worker);
void handle_remove_base(struct vmrqd_job *job, struct vmrqd_worker *worker);
void handle_clone(struct vmrqd_job *job, struct vmrqd_worker *worker);
void handle_provision(struct vmrqd_job *job, struct vmrqd_worker *worker);
void handle_manage_pools(struct vmrqd_job *job, struct vmrqd_worker *worker);
void handle_remove_domain(struct vmrqd_job *job, struct vmrqd_worker *worker);

#endif /* VMRQD_HANDLERS_H */
