/*
 * status.c - the one mapping between vmrq_status and the SQL enum request_status.
 */
#include <string.h>

#include "vmrq.h"

static const char *const status_names[VMRQ_STATUS_LAST] = {
    [VMRQ_STATUS_REQUESTED] = "requested",
    [VMRQ_STATUS_WAITING] = "waiting",
    [VMRQ_STATUS_WORKING] = "working",
    [VMRQ_STATUS_DONE] = "done",
    [VMRQ_STATUS_FAILED] = "failed",
    [VMRQ_STATUS_CANCELLED] = "cancelled",
};

const char *
vmrq_status_name(vmrq_status status)
{
    return (unsigned)status < VMRQ_STATUS_LAST ? status_names[status] : "?";
}

int
vmrq_status_from_name(const char *name)
{
    for (int i = 0; name && i < VMRQ_STATUS_LAST; i++)
        if (strcmp(status_names[i], name) == 0)
            return i;
    return -1;
}

bool
vmrq_status_is_final(vmrq_status status)
{
    return status == VMRQ_STATUS_DONE || status == VMRQ_STATUS_FAILED ||
           status == VMRQ_STATUS_CANCELLED;
}
