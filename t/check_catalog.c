/*
 * check_catalog.c - the catalog's own consistency: what the backend and the database rely on.
 */
#include <string.h>

#include "tutil.h"

static bool
has_arg(const vmrq_command *cmd, const char *name)
{
    for (const vmrq_arg *a = cmd->args; a->name; a++)
        if (strcmp(a->name, name) == 0)
            return true;
    return false;
}

START_TEST(test_lookup)
{
    ck_assert_ptr_nonnull(vmrq_command_lookup("shutdown"));
    ck_assert_str_eq(vmrq_command_lookup("shutdown")->name, "shutdown");
    ck_assert_ptr_null(vmrq_command_lookup("Shutdown"));
    ck_assert_ptr_null(vmrq_command_lookup(""));
    ck_assert_ptr_null(vmrq_command_lookup(NULL));
    ck_assert_ptr_null(vmrq_command_at(vmrq_command_count()));
}
END_TEST

/* The first commands the foundation promises. */
START_TEST(test_first_commands)
{
    static const char *const names[] = { "ping_backend", "start", "shutdown", "force_shutdown",
                                         "reboot", "force_reboot", "pause", "resume", "hibernate",
                                         "shutdown_start", "refresh_vms", "refresh_machine",
                                         "set_time", "cleanup", NULL };

    for (const char *const *n = names; *n; n++)
        ck_assert_msg(vmrq_command_lookup(*n) != NULL, "%s is missing from the catalog", *n);
}
END_TEST

/* Ravada's recipe: shutdown => { uid => 1, id_domain => 2, name => 2, timeout => 2, at => 2 } */
START_TEST(test_shutdown_is_ravadas)
{
    const vmrq_command *c = vmrq_command_lookup("shutdown");
    const vmrq_arg *a;

    ck_assert((a = vmrq_command_arg(c, "uid")) && a->mandatory && a->type == VMRQ_ARG_INT);
    ck_assert((a = vmrq_command_arg(c, "id_domain")) && !a->mandatory);
    ck_assert((a = vmrq_command_arg(c, "name")) && !a->mandatory && a->type == VMRQ_ARG_STRING);
    ck_assert((a = vmrq_command_arg(c, "timeout")) && !a->mandatory && a->type == VMRQ_ARG_INT);
    ck_assert((a = vmrq_command_arg(c, "at")) && !a->mandatory && a->type == VMRQ_ARG_TIME);
    ck_assert((a = vmrq_command_arg(c, "mode")) && a->type == VMRQ_ARG_ENUM);
    ck_assert_ptr_null(vmrq_command_arg(c, "bogus"));
    ck_assert(c->flags & VMRQ_CMD_DOMAIN);
}
END_TEST

/* Every entry well formed: the SQL copy and the backend's handler table build on this. */
START_TEST(test_entries_well_formed)
{
    size_t i = (size_t)_i;
    const vmrq_command *c = vmrq_command_at(i);

    ck_assert_ptr_nonnull(c);
    ck_assert_msg(c->summary && *c->summary, "%s has no summary", c->name);
    ck_assert_msg((unsigned)c->cls < VMRQ_CLASS_LAST, "%s has no class", c->name);
    ck_assert_ptr_eq(vmrq_command_lookup(c->name), c); /* names are unique */
    for (const vmrq_arg *a = c->args; a->name; a++) {
        ck_assert_msg(a->help && *a->help, "%s: %s has no help", c->name, a->name);
        ck_assert_msg((unsigned)a->type < VMRQ_ARG_TYPE_LAST, "%s: %s has no type", c->name, a->name);
        ck_assert_msg(a->type != VMRQ_ARG_INT || a->min <= a->max, "%s: %s: min > max", c->name, a->name);
        ck_assert_msg(a->type != VMRQ_ARG_ENUM || (a->values && a->values[0]), "%s: %s: no values",
                      c->name, a->name);
        for (const vmrq_arg *o = vmrq_common_args(); o->name; o++)
            ck_assert_msg(strcmp(o->name, a->name) != 0, "%s: %s shadows an option", c->name, a->name);
        for (const vmrq_arg *b = a + 1; b->name; b++)
            ck_assert_msg(strcmp(a->name, b->name) != 0, "%s: %s twice", c->name, a->name);
    }
    for (const char *const *k = c->needs_one_of; k && *k; k++)
        ck_assert_msg(has_arg(c, *k), "%s: needs_one_of names unknown %s", c->name, *k);
    /* a domain command can always find its domain */
    if (c->flags & VMRQ_CMD_DOMAIN)
        ck_assert_msg(c->needs_one_of && has_arg(c, "id_domain") && has_arg(c, "name"),
                      "%s acts on a domain but does not need id_domain or name", c->name);
}
END_TEST

START_TEST(test_names)
{
    ck_assert_str_eq(vmrq_status_name(VMRQ_STATUS_CANCELLED), "cancelled");
    ck_assert_str_eq(vmrq_status_name(VMRQ_STATUS_LAST), "?");
    ck_assert_int_eq(vmrq_status_from_name("working"), VMRQ_STATUS_WORKING);
    ck_assert_int_eq(vmrq_status_from_name("bogus"), -1);
    for (int s = 0; s < VMRQ_STATUS_LAST; s++)
        ck_assert_int_eq(vmrq_status_from_name(vmrq_status_name(s)), s);
    ck_assert(vmrq_status_is_final(VMRQ_STATUS_FAILED));
    ck_assert(!vmrq_status_is_final(VMRQ_STATUS_WAITING));
    ck_assert_str_eq(vmrq_class_name(VMRQ_CLASS_LONG), "long");
    ck_assert_str_eq(vmrq_arg_type_name(VMRQ_ARG_TIME), "time");
}
END_TEST

Suite *
catalog_suite(void)
{
    Suite *s = suite_create("catalog");
    TCase *tc = tcase_create("catalog");

    tcase_add_test(tc, test_lookup);
    tcase_add_test(tc, test_first_commands);
    tcase_add_test(tc, test_shutdown_is_ravadas);
    tcase_add_loop_test(tc, test_entries_well_formed, 0, (int)vmrq_command_count());
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    return s;
}
