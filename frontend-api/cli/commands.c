/*
 * commands.c - `vmrq commands`: the catalog as a table, one command in detail, or JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"

enum { OPT_JSON = 256 };

static const struct option commands_options[] = {
    { "json", no_argument, NULL, OPT_JSON },
    { NULL, 0, NULL, 0 },
};

static const struct cli_sub commands_sub = {
    "commands",
    "usage: vmrq commands [COMMAND] [--json]\n"
    "\n"
    "Lists the commands a request may name, with their arguments: plain ones are mandatory,\n"
    "[bracketed] ones optional, (a|b) means at least one of them. With COMMAND, every argument\n"
    "with its type. --json prints the catalog as the database holds it (table `commands`).\n",
    commands_options,
};

static bool
in_one_of(const vmrq_command *cmd, const char *name)
{
    for (const char *const *k = cmd->needs_one_of; k && *k; k++)
        if (strcmp(*k, name) == 0)
            return true;
    return false;
}

/* "uid (id_domain|name) [timeout] [mode]" */
static void
synopsis(const vmrq_command *cmd, char *buf, size_t size)
{
    size_t used = 0;

#define ADD(...) (used += (size_t)snprintf(buf + used, used < size ? size - used : 0, __VA_ARGS__))
    buf[0] = '\0';
    for (const vmrq_arg *a = cmd->args; a->name; a++)
        if (a->mandatory)
            ADD("%s%s", used ? " " : "", a->name);
    if (cmd->needs_one_of) {
        ADD("%s(", used ? " " : "");
        for (const char *const *k = cmd->needs_one_of; *k; k++)
            ADD("%s%s", k == cmd->needs_one_of ? "" : "|", *k);
        ADD(")");
    }
    for (const vmrq_arg *a = cmd->args; a->name; a++)
        if (!a->mandatory && !in_one_of(cmd, a->name))
            ADD("%s[%s]", used ? " " : "", a->name);
#undef ADD
}

static void
describe_arg(const vmrq_arg *a, bool option)
{
    char type[128];

    switch (a->type) {
    case VMRQ_ARG_INT:
        snprintf(type, sizeof(type), "int %lld..%lld", a->min, a->max);
        break;
    case VMRQ_ARG_ENUM: {
        size_t used = (size_t)snprintf(type, sizeof(type), "one of");
        for (const char *const *v = a->values; *v && used < sizeof(type); v++)
            used += (size_t)snprintf(type + used, sizeof(type) - used, " %s", *v);
        break;
    }
    default:
        snprintf(type, sizeof(type), "%s", vmrq_arg_type_name(a->type));
    }
    printf("  %-17s %-9s %-26s %s\n", a->name, option ? "option" : a->mandatory ? "mandatory" : "optional",
           type, a->help);
}

static void
print_detail(const vmrq_command *cmd)
{
    char syn[256];

    synopsis(cmd, syn, sizeof(syn));
    printf("%s %s\n  %s\n\nclass: %s%s%s%s\n\narguments:\n", cmd->name, syn, cmd->summary,
           vmrq_class_name(cmd->cls), cmd->flags & VMRQ_CMD_DOMAIN ? ", acts on one domain" : "",
           cmd->flags & VMRQ_CMD_NODUP ? ", no duplicates while pending" : "",
           cmd->flags & VMRQ_CMD_RERUN ? ", run again if vmrqd dies running it" : "");
    for (const vmrq_arg *a = cmd->args; a->name; a++)
        describe_arg(a, false);
    if (cmd->needs_one_of) {
        printf("  needs at least one of:");
        for (const char *const *k = cmd->needs_one_of; *k; k++)
            printf(" %s", *k);
        printf("\n");
    }
    printf("\noptions every command takes:\n");
    for (const vmrq_arg *a = vmrq_common_args(); a->name; a++)
        describe_arg(a, true);
}

static int
print_json(const char *only)
{
    char *text = vmrq_catalog_json();
    struct json_object *all, *out = NULL;

    if (!text)
        return cli_lib_error();
    all = json_tokener_parse(text);
    free(text);
    if (only) {
        for (size_t i = 0; i < json_object_array_length(all); i++) {
            struct json_object *row = json_object_array_get_idx(all, i), *name;
            if (json_object_object_get_ex(row, "name", &name) &&
                strcmp(json_object_get_string(name), only) == 0)
                out = row;
        }
    }
    printf("%s\n", json_object_to_json_string_ext(only ? out : all, JSON_C_TO_STRING_PRETTY |
                                                  JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(all);
    return CLI_OK;
}

int
cli_cmd_commands(int argc, char **argv)
{
    const vmrq_command *cmd = NULL;
    bool json = false;
    char syn[256];
    int c;

    optind = 0;
    while ((c = cli_getopt(argc, argv, &commands_sub)) != -1) {
        switch (c) {
        case 'h': return CLI_OK;
        case '?': return CLI_USAGE;
        case OPT_JSON: json = true; break;
        }
    }
    if (optind < argc - 1)
        return cli_usage(&commands_sub, "unexpected argument '%s'", argv[optind + 1]);
    if (optind == argc - 1 && !(cmd = vmrq_command_lookup(argv[optind]))) {
        fprintf(stderr, "vmrq: unknown command '%s'\n", argv[optind]);
        return CLI_USAGE;
    }
    if (json)
        return print_json(cmd ? cmd->name : NULL);
    if (cmd) {
        print_detail(cmd);
        return CLI_OK;
    }
    printf("%-16s %-10s %-42s %s\n", "command", "class", "arguments", "summary");
    for (size_t i = 0; i < vmrq_command_count(); i++) {
        cmd = vmrq_command_at(i);
        synopsis(cmd, syn, sizeof(syn));
        printf("%-16s %-10s %-42s %s\n", cmd->name, vmrq_class_name(cmd->cls), syn, cmd->summary);
    }
    printf("\nEvery command also takes:");
    for (const vmrq_arg *a = vmrq_common_args(); a->name; a++)
        printf(" [%s]", a->name);
    printf("\n'vmrq commands COMMAND' shows the types.\n");
    return CLI_OK;
}
