/*
 * request.c - building a request: creation, typed setters, conversion of command-line text by
 * the catalog's types, accessors.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <strings.h>
#include <uuid/uuid.h>

#include "error.h"
#include "request.h"
#include "validate.h"

vmrq_request *
vmrq_request_alloc(const char *command, struct json_object *args)
{
    vmrq_request *req = calloc(1, sizeof(*req));

    if (!req || !(req->command = strdup(command)))
        goto nomem;
    req->args = args ? json_object_get(args) : json_object_new_object();
    if (!req->args)
        goto nomem;
    req->cmd = vmrq_command_lookup(command);
    req->status = VMRQ_STATUS_REQUESTED;
    return req;

nomem:
    vmrq_error_set(VMRQ_ERR_SYSTEM, "%s: out of memory", command);
    vmrq_request_free(req);
    return NULL;
}

/* A UUID version 7 (RFC 9562): Unix milliseconds in the first 48 bits, then random bits, so that
 * requests' uuids sort by time like those the database makes (vmrq_uuid_v7(), see
 * vmrq_uuid_v7() in sql/functions/enqueue.sql for why). This libuuid (util-linux 2.38) has no version 7 of its own. */
static void
uuid_v7(uuid_t u)
{
    struct timespec ts;
    uint64_t ms;

    uuid_generate_random(u); /* version 4: random, with the variant bits set */
    clock_gettime(CLOCK_REALTIME, &ts);
    ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    for (int i = 0; i < 6; i++)
        u[i] = (unsigned char)(ms >> (8 * (5 - i)));
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x70);
}

vmrq_request *
vmrq_request_new(const char *command)
{
    vmrq_request *req;
    uuid_t u;

    if (!command || !*command) {
        vmrq_error_set(VMRQ_ERR_INVALID, "missing command");
        return NULL;
    }
    if (!vmrq_command_lookup(command)) {
        vmrq_error_set(VMRQ_ERR_INVALID, "unknown command '%s'", command);
        return NULL;
    }
    if (!(req = vmrq_request_alloc(command, NULL)))
        return NULL;
    uuid_v7(u);
    uuid_unparse_lower(u, req->uuid);
    req->is_new = true;
    return req;
}

void
vmrq_request_free(vmrq_request *req)
{
    if (!req)
        return;
    json_object_put(req->args);
    free(req->command);
    free(req->error);
    free(req->output);
    free(req);
}

/* Stores `value` (a new reference, consumed even on failure; NULL is JSON null) as `name`. */
static int
set_value(vmrq_request *req, const char *name, struct json_object *value)
{
    if (!name || !*name) {
        json_object_put(value);
        vmrq_error_set(VMRQ_ERR_INVALID, "%s: missing argument name", req->command);
        return -1;
    }
    if (json_object_object_add(req->args, name, value) < 0) {
        json_object_put(value);
        vmrq_error_set(VMRQ_ERR_SYSTEM, "%s: out of memory", req->command);
        return -1;
    }
    return 0;
}

/* set_value() for a value just made by a json_object_new_*() call, which may have failed. */
static int
set_new(vmrq_request *req, const char *name, struct json_object *value)
{
    if (!value) {
        vmrq_error_set(VMRQ_ERR_SYSTEM, "%s: out of memory", req->command);
        return -1;
    }
    return set_value(req, name, value);
}

int
vmrq_request_set_int(vmrq_request *req, const char *name, long long value)
{
    return set_new(req, name, json_object_new_int64((int64_t)value));
}

int
vmrq_request_set_string(vmrq_request *req, const char *name, const char *value)
{
    if (!value) {
        vmrq_error_set(VMRQ_ERR_INVALID, "%s: argument '%s' must be a string, not 'null'",
                       req->command, name ? name : "");
        return -1;
    }
    return set_new(req, name, json_object_new_string(value));
}

int
vmrq_request_set_bool(vmrq_request *req, const char *name, bool value)
{
    return set_new(req, name, json_object_new_boolean(value));
}

/* Whole-string decimal integer, or false. */
static bool
parse_int(const char *text, long long *out)
{
    char *end;

    if (!*text || (*text != '-' && (*text < '0' || *text > '9')))
        return false;
    errno = 0;
    *out = strtoll(text, &end, 10);
    return errno == 0 && *end == '\0';
}

static bool
parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = { "true", "yes", "on", "1", NULL };
    static const char *const no[] = { "false", "no", "off", "0", NULL };

    for (int i = 0; yes[i]; i++) {
        if (strcasecmp(text, yes[i]) == 0)
            return *out = true, true;
        if (strcasecmp(text, no[i]) == 0)
            return *out = false, true;
    }
    return false;
}

int
vmrq_request_set_text(vmrq_request *req, const char *name, const char *text)
{
    const vmrq_arg *arg = req->cmd && name ? vmrq_command_arg(req->cmd, name) : NULL;
    long long n;
    bool b;

    if (!text)
        return vmrq_request_set_string(req, name, text);
    if (arg) {
        switch (arg->type) {
        case VMRQ_ARG_INT:
        case VMRQ_ARG_TIME:
            if (parse_int(text, &n))
                return vmrq_request_set_int(req, name, n);
            break;
        case VMRQ_ARG_BOOL:
            if (parse_bool(text, &b))
                return vmrq_request_set_bool(req, name, b);
            break;
        case VMRQ_ARG_STRING:
        case VMRQ_ARG_ENUM:
        case VMRQ_ARG_TYPE_LAST:
            break;
        }
    }
    return vmrq_request_set_string(req, name, text); /* validation names what was expected */
}

int
vmrq_request_set_json(vmrq_request *req, const char *json)
{
    enum json_tokener_error jerr = json_tokener_success;
    struct json_object *obj = json ? json_tokener_parse_verbose(json, &jerr) : NULL;
    int ret = -1;

    if (!obj || !json_object_is_type(obj, json_type_object)) {
        vmrq_error_set(VMRQ_ERR_INVALID, "%s: arguments must be a JSON object%s%s", req->command,
                       jerr != json_tokener_success ? ": " : "",
                       jerr != json_tokener_success ? json_tokener_error_desc(jerr) : "");
        goto cleanup;
    }
    json_object_object_foreach(obj, key, val) {
        if (set_value(req, key, json_object_get(val)) < 0)
            goto cleanup;
    }
    ret = 0;

cleanup:
    json_object_put(obj);
    return ret;
}

int
vmrq_request_set_uuid(vmrq_request *req, const char *text)
{
    uuid_t u;

    if (!text || uuid_parse(text, u) < 0) {
        vmrq_error_set(VMRQ_ERR_INVALID, "%s: '%s' is not a uuid", req->command, text ? text : "");
        return -1;
    }
    uuid_unparse_lower(u, req->uuid);
    return 0;
}

int
vmrq_request_validate(const vmrq_request *req)
{
    if (!req->cmd) {
        vmrq_error_set(VMRQ_ERR_INVALID, "unknown command '%s'", req->command);
        return -1;
    }
    return vmrq_validate_args(req->cmd, req->args);
}

long long vmrq_request_id(const vmrq_request *req) { return req->id; }
const char *vmrq_request_uuid(const vmrq_request *req) { return req->uuid; }
const char *vmrq_request_command(const vmrq_request *req) { return req->command; }
vmrq_status vmrq_request_status(const vmrq_request *req) { return req->status; }
bool vmrq_request_is_new(const vmrq_request *req) { return req->is_new; }
const char *vmrq_request_error(const vmrq_request *req) { return req->error; }
const char *vmrq_request_output_json(const vmrq_request *req) { return req->output; }

const char *
vmrq_request_args_json(const vmrq_request *req)
{
    return json_object_to_json_string_ext(req->args, JSON_C_TO_STRING_PLAIN |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE);
}

const char *
vmrq_version(void)
{
    return VMRQ_VERSION;
}
