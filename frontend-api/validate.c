/*
 * validate.c - argument validation against the catalog (pure: no database, no I/O).
 * Mirrors vmrq_check_args() in sql/functions/catalog.sql message for message; see validate.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "jsonb.h"
#include "validate.h"

int
vmrq_validate_keycmp(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    if (la != lb)
        return la < lb ? -1 : 1;
    return memcmp(a, b, la);
}

static int
keycmp_indirect(const void *a, const void *b)
{
    return vmrq_validate_keycmp(*(const char *const *)a, *(const char *const *)b);
}

/* "acpi, agent or default" into buf. */
static void
enum_list(const char *const *values, char *buf, size_t size)
{
    size_t n = 0, used = 0;

    while (values[n])
        n++;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++) {
        const char *sep = i == 0 ? "" : (i == n - 1 ? " or " : ", ");
        int w = snprintf(buf + used, size - used, "%s%s", sep, values[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* The latest epoch second to_timestamp() takes (294277-01-01 is beyond it). */
#define EPOCH_END 9224318016000LL

/* Sets the error "CMD: argument 'NAME' WHAT, not 'VALUE'", VALUE quoted as the database does. */
static int
refuse(const vmrq_command *cmd, const vmrq_arg *arg, struct json_object *v, const char *what)
{
    char *q = vmrq_json_quote_value(v);

    if (!q) {
        vmrq_error_set(VMRQ_ERR_SYSTEM, "%s: out of memory", cmd->name);
        return -1;
    }
    vmrq_error_set(VMRQ_ERR_INVALID, "%s: argument '%s' %s, not '%s'", cmd->name, arg->name, what, q);
    free(q);
    return -1;
}

/* Checks one given value against its spec, in the order of vmrq_check_args(). */
static int
check_value(const vmrq_command *cmd, const vmrq_arg *arg, struct json_object *v)
{
    char what[300];
    long long x = 0;
    bool fits = false;

    switch (arg->type) {
    case VMRQ_ARG_INT:
        if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
            return refuse(cmd, arg, v, "must be an integer");
        if (!vmrq_json_is_integer(v, &x, &fits))
            return refuse(cmd, arg, v, "must be an integer");
        if (!fits || x < arg->min || x > arg->max) {
            snprintf(what, sizeof(what), "must be between %lld and %lld", arg->min, arg->max);
            return refuse(cmd, arg, v, what);
        }
        return 0;
    case VMRQ_ARG_STRING:
        if (!json_object_is_type(v, json_type_string))
            return refuse(cmd, arg, v, "must be a string");
        if (json_object_get_string_len(v) == 0) {
            vmrq_error_set(VMRQ_ERR_INVALID, "%s: argument '%s' must not be empty", cmd->name, arg->name);
            return -1;
        }
        if ((long long)vmrq_json_utf8_length(json_object_get_string(v)) > arg->max) {
            snprintf(what, sizeof(what), "must be at most %lld characters long", arg->max);
            return refuse(cmd, arg, v, what);
        }
        if (vmrq_json_has_control(json_object_get_string(v)))
            return refuse(cmd, arg, v, "must not contain control characters");
        return 0;
    case VMRQ_ARG_BOOL:
        if (!json_object_is_type(v, json_type_boolean))
            return refuse(cmd, arg, v, "must be true or false");
        return 0;
    case VMRQ_ARG_ENUM:
        if (json_object_is_type(v, json_type_string))
            for (const char *const *e = arg->values; *e; e++)
                if (strcmp(*e, json_object_get_string(v)) == 0)
                    return 0;
        enum_list(arg->values, what + 8, sizeof(what) - 8);
        memcpy(what, "must be ", 8);
        return refuse(cmd, arg, v, what);
    case VMRQ_ARG_TIME:
        /* a string is parsed by the database, which words its refusal the same way; a number
         * must be whole epoch seconds that to_timestamp() takes */
        if (json_object_is_type(v, json_type_string) ||
            ((json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) &&
             vmrq_json_is_integer(v, &x, &fits) && fits && x >= 0 && x < EPOCH_END))
            return 0;
        return refuse(cmd, arg, v, "must be a time (epoch seconds or a timestamp)");
    case VMRQ_ARG_TYPE_LAST:
        break;
    }
    vmrq_error_set(VMRQ_ERR_INVALID, "%s: argument '%s' has no type in the catalog", cmd->name, arg->name);
    return -1;
}

/* The first mandatory argument of cmd missing from args, in jsonb key order; NULL if none. */
static const char *
first_missing(const vmrq_command *cmd, struct json_object *args)
{
    const char *missing = NULL;

    for (const vmrq_arg *a = cmd->args; a->name; a++)
        if (a->mandatory && !json_object_object_get_ex(args, a->name, NULL) &&
            (!missing || vmrq_validate_keycmp(a->name, missing) < 0))
            missing = a->name;
    return missing;
}

static int
check_one_of(const vmrq_command *cmd, struct json_object *args)
{
    char list[256];
    size_t n = 0, used = 0;

    if (!cmd->needs_one_of)
        return 0;
    for (const char *const *k = cmd->needs_one_of; *k; k++, n++)
        if (json_object_object_get_ex(args, *k, NULL))
            return 0;
    list[0] = '\0';
    for (size_t i = 0; i < n && used < sizeof(list); i++) {
        const char *sep = i == 0 ? "" : (i == n - 1 ? " or " : ", ");
        int w = snprintf(list + used, sizeof(list) - used, "%s'%s'", sep, cmd->needs_one_of[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    vmrq_error_set(VMRQ_ERR_INVALID, "%s: needs argument %s", cmd->name, list);
    return -1;
}

int
vmrq_validate_args(const vmrq_command *cmd, struct json_object *args)
{
    const char **keys = NULL;
    size_t nkeys = 0, i, size;
    const char *missing;
    char *q;
    int ret = -1;

    if (!args || !json_object_is_type(args, json_type_object)) {
        vmrq_error_set(VMRQ_ERR_INVALID, "%s: arguments must be a JSON object", cmd->name);
        return -1;
    }
    if ((size = vmrq_json_text_len(args)) > VMRQ_ARGS_MAX_BYTES) {
        vmrq_error_set(VMRQ_ERR_INVALID, "%s: arguments must take at most %d bytes as JSON, not %zu",
                       cmd->name, VMRQ_ARGS_MAX_BYTES, size);
        return -1;
    }
    if (vmrq_json_depth(args) > VMRQ_ARGS_MAX_DEPTH) {
        vmrq_error_set(VMRQ_ERR_INVALID, "%s: arguments must nest at most %d levels deep", cmd->name,
                       VMRQ_ARGS_MAX_DEPTH);
        return -1;
    }
    if (json_object_object_length(args) > 0) {
        keys = calloc((size_t)json_object_object_length(args), sizeof(*keys));
        if (!keys) {
            vmrq_error_set(VMRQ_ERR_SYSTEM, "%s: out of memory", cmd->name);
            return -1;
        }
    }
    json_object_object_foreach(args, key, val) {
        (void)val;
        keys[nkeys++] = key;
    }
    if (nkeys > 1)
        qsort(keys, nkeys, sizeof(*keys), keycmp_indirect);

    for (i = 0; i < nkeys; i++) {
        const vmrq_arg *arg = vmrq_command_arg(cmd, keys[i]);
        if (!arg) {
            if ((q = vmrq_json_quote(keys[i])))
                vmrq_error_set(VMRQ_ERR_INVALID, "%s: unknown argument '%s'", cmd->name, q);
            else
                vmrq_error_set(VMRQ_ERR_SYSTEM, "%s: out of memory", cmd->name);
            free(q);
            goto cleanup;
        }
        if (check_value(cmd, arg, json_object_object_get(args, keys[i])) < 0)
            goto cleanup;
    }
    if ((missing = first_missing(cmd, args))) {
        vmrq_error_set(VMRQ_ERR_INVALID, "%s: missing mandatory argument '%s'", cmd->name, missing);
        goto cleanup;
    }
    if (check_one_of(cmd, args) < 0)
        goto cleanup;
    ret = 0;

cleanup:
    free(keys);
    return ret;
}
