/*
 * request.h - the inside of a vmrq_request, shared by request.c (building) and queue.c
 * (enqueue, fetch). Clients see only the opaque type of vmrq.h.
 */
#ifndef VMRQ_REQUEST_H
#define VMRQ_REQUEST_H

#include <json-c/json.h>

#include "vmrq.h"

struct vmrq_request {
    const vmrq_command *cmd;  /* NULL for a fetched row whose command this build does not know */
    char *command;            /* owned */
    struct json_object *args; /* owned (one reference) */
    char uuid[37];
    long long id;             /* 0 until enqueued or fetched */
    vmrq_status status;
    bool is_new;              /* the enqueue created the row */
    char *error;              /* owned, fetched rows only */
    char *output;             /* owned JSON text, fetched rows only */
};

/* An empty request for `command` (which may be unknown to the catalog), with `args` (a new
 * reference is taken; NULL for {}). NULL on out of memory. */
vmrq_request *vmrq_request_alloc(const char *command, struct json_object *args);

#endif /* VMRQ_REQUEST_H */
