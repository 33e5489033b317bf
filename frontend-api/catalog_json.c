/*
 * catalog_json.c - the catalog as JSON: the rows `vmrq db upgrade` writes into the `commands`
 * table, and what `vmrq commands --json` prints for portals that build their forms from it.
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "error.h"
#include "vmrq.h"

static struct json_object *
strings_json(const char *const *list)
{
    struct json_object *a;

    if (!list)
        return NULL;
    a = json_object_new_array();
    for (; *list; list++)
        json_object_array_add(a, json_object_new_string(*list));
    return a;
}

static void
add_args_json(struct json_object *spec, const vmrq_arg *args, bool option)
{
    for (const vmrq_arg *a = args; a->name; a++) {
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "type", json_object_new_string(vmrq_arg_type_name(a->type)));
        json_object_object_add(o, "mandatory", json_object_new_boolean(a->mandatory));
        if (a->type == VMRQ_ARG_INT || a->type == VMRQ_ARG_STRING) {
            json_object_object_add(o, "min", json_object_new_int64(a->min));
            json_object_object_add(o, "max", json_object_new_int64(a->max));
        }
        if (a->type == VMRQ_ARG_ENUM)
            json_object_object_add(o, "values", strings_json(a->values));
        if (option)
            json_object_object_add(o, "option", json_object_new_boolean(true));
        json_object_object_add(o, "help", json_object_new_string(a->help ? a->help : ""));
        json_object_object_add(spec, a->name, o);
    }
}

char *
vmrq_catalog_json(void)
{
    struct json_object *rows = json_object_new_array();
    char *text;

    for (size_t i = 0; i < vmrq_command_count(); i++) {
        const vmrq_command *c = vmrq_command_at(i);
        struct json_object *row = json_object_new_object(), *flags = json_object_new_array();
        struct json_object *spec = json_object_new_object();

        if (c->flags & VMRQ_CMD_NODUP)
            json_object_array_add(flags, json_object_new_string("nodup"));
        if (c->flags & VMRQ_CMD_DOMAIN)
            json_object_array_add(flags, json_object_new_string("domain"));
        if (c->flags & VMRQ_CMD_RERUN)
            json_object_array_add(flags, json_object_new_string("rerunnable"));
        add_args_json(spec, c->args, false);
        add_args_json(spec, vmrq_common_args(), true);
        json_object_object_add(row, "name", json_object_new_string(c->name));
        json_object_object_add(row, "class", json_object_new_string(vmrq_class_name(c->cls)));
        json_object_object_add(row, "flags", flags);
        json_object_object_add(row, "args", spec);
        json_object_object_add(row, "needs_one_of", strings_json(c->needs_one_of));
        json_object_object_add(row, "summary", json_object_new_string(c->summary));
        json_object_array_add(rows, row);
    }
    text = strdup(json_object_to_json_string_ext(rows, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(rows);
    if (!text)
        vmrq_error_set(VMRQ_ERR_SYSTEM, "catalog: out of memory");
    return text;
}

