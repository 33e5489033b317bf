/*
 * validate.h - checks a request's arguments against the catalog.
 *
 * The messages, and the order in which problems are found, are the ones of the SQL function
 * vmrq_check_args() (sql/functions/catalog.sql), so that a client hears the same thing whether the library
 * or the database refused its request. Order: each given key in jsonb's key order (shorter keys
 * first, then bytewise) is checked for being known, then for its type; then mandatory arguments
 * (in the same order); then the needs-one-of group.
 */
#ifndef VMRQ_VALIDATE_H
#define VMRQ_VALIDATE_H

#include <json-c/json.h>

#include "vmrq.h"

/* 0 if `args` (a JSON object, borrowed) is valid for `cmd`; else -1 with VMRQ_ERR_INVALID. */
int vmrq_validate_args(const vmrq_command *cmd, struct json_object *args);

/* Compares two keys as jsonb orders object keys (length first, then bytes). */
int vmrq_validate_keycmp(const char *a, const char *b);

#endif /* VMRQ_VALIDATE_H */
