/*
 * validate.c - argument validation against the catalog (pure: no database, no I/O).
 * Mirrors vmrq_check_args() in sql/functions/catalog.sql message for message; see validate.h.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
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

/* The value as the database's messages quote it: a string's own text, else its JSON text. */
static const char *
value_text(struct json_object *v)
{
    if (!v)
        return "null";
    if (json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
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

static bool
is_integer(struct json_object *v)
{
    return v && json_object_is_type(v, json_type_int);
}

/* Checks one given value against its spec. */
static int
check_value(const vmrq_command *cmd, const vmrq_arg *arg, struct json_object *v)
{
    const char *c = cmd->name, *n = arg->name;
    char list[256];

    switch (arg->type) {
    case VMRQ_ARG_INT: {
        long long x;
        if (!is_integer(v)) {
            vmrq_error_set(VMRQ_ERR_INVALID, "%s: argument '%s' must be an integer, not '%s'", c, n,
                           value_text(v));
            return -1;
        }
        x = (long long)json_object_get_int64(v);
        if (x < arg->min || x > arg->max) {
            vmrq_error_set(VMRQ_ERR_INVALID, "%s: argument '%s' must be between %lld and %lld, not '%s'",
                           c, n, arg->min, arg->max, value_text(v));
            return -1;
        }
        return 0;
    }
    case VMRQ_ARG_STRING:
        if (!v || !json_object_is_type(v, json_type_string)) {
            vmrq_error_set(VMRQ_ERR_INVALID, "%s: argument '%s' must be a string, not '%s'", c, n,
                           value_text(v));
            return -1;
        }
        if (json_object_get_string_len(v) == 0) {
            vmrq_error_set(VMRQ_ERR_INVALID, "%s: argument '%s' must not be empty", c, n);
            return -1;
        }
        return 0;
    case VMRQ_ARG_BOOL:
        if (!v || !json_object_is_type(v, json_type_boolean)) {
            vmrq_error_set(VMRQ_ERR_INVALID, "%s: argument '%s' must be true or false, not '%s'", c, n,
                           value_text(v));
            return -1;
        }
        return 0;
    case VMRQ_ARG_ENUM:
        if (v && json_object_is_type(v, json_type_string))
            for (const char *const *e = arg->values; *e; e++)
                if (strcmp(*e, json_object_get_string(v)) == 0)
                    return 0;
        enum_list(arg->values, list, sizeof(list));
        vmrq_error_set(VMRQ_ERR_INVALID, "%s: argument '%s' must be %s, not '%s'", c, n, list,
                       value_text(v));
        return -1;
    case VMRQ_ARG_TIME:
        /* a string is parsed by the database, which words its refusal the same way */
        if ((is_integer(v) && json_object_get_int64(v) >= 0) ||
            (v && json_object_is_type(v, json_type_string)))
            return 0;
        vmrq_error_set(VMRQ_ERR_INVALID,
                       "%s: argument '%s' must be a time (epoch seconds or a timestamp), not '%s'", c,
                       n, value_text(v));
        return -1;
    case VMRQ_ARG_TYPE_LAST:
        break;
    }
    vmrq_error_set(VMRQ_ERR_INVALID, "%s: argument '%s' has no type in the catalog", c, n);
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
    size_t nkeys = 0, i;
    const char *missing;
    int ret = -1;

    if (!args || !json_object_is_type(args, json_type_object)) {
        vmrq_error_set(VMRQ_ERR_INVALID, "%s: arguments must be a JSON object", cmd->name);
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
            vmrq_error_set(VMRQ_ERR_INVALID, "%s: unknown argument '%s'", cmd->name, keys[i]);
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
