/*
 * check_validate.c - argument validation, table-driven over the whole catalog: every command
 * with its arguments missing, unknown or ill-typed, and a valid request for each.
 */
#include <stdio.h>
#include <string.h>

#include "tutil.h"
#include "validate.h"

/* A request for `cmd` with valid values for its mandatory arguments and its needs-one-of group. */
static vmrq_request *
valid_request(const vmrq_command *cmd)
{
    vmrq_request *req = vmrq_request_new(cmd->name);

    ck_assert_ptr_nonnull(req);
    for (const vmrq_arg *a = cmd->args; a->name; a++)
        if (a->mandatory || (cmd->needs_one_of && strcmp(a->name, cmd->needs_one_of[0]) == 0))
            ck_assert_int_eq(vmrq_request_set_int(req, a->name, a->min > 1 ? a->min : 1), 0);
    return req;
}

/* Validates and returns the message ("" when valid). Static buffer. */
static const char *
message_of(const vmrq_request *req)
{
    static char buf[1024];

    vmrq_error_reset();
    if (vmrq_request_validate(req) == 0)
        return "";
    ck_assert_int_eq(vmrq_error_code(), VMRQ_ERR_INVALID);
    snprintf(buf, sizeof(buf), "%s", vmrq_error_message());
    return buf;
}

START_TEST(test_valid_for_every_command)
{
    const vmrq_command *cmd = vmrq_command_at((size_t)_i);
    vmrq_request *req = valid_request(cmd);

    ck_assert_msg(strcmp(message_of(req), "") == 0, "%s: %s", cmd->name, message_of(req));
    vmrq_request_free(req);
}
END_TEST

START_TEST(test_missing_for_every_command)
{
    const vmrq_command *cmd = vmrq_command_at((size_t)_i);
    vmrq_request *req = vmrq_request_new(cmd->name);
    const char *msg = message_of(req);
    char want[256], group[128] = "";

    /* the group as the message words it: 'a' or 'b' (every group of the catalog has two) */
    if (cmd->needs_one_of)
        snprintf(group, sizeof(group), "needs argument '%s' or '%s'", cmd->needs_one_of[0], cmd->needs_one_of[1]);
    if (vmrq_command_arg(cmd, "uid") && vmrq_command_arg(cmd, "uid")->mandatory) {
        snprintf(want, sizeof(want), "%s: missing mandatory argument 'uid'", cmd->name);
        ck_assert_str_eq(msg, want);
    } else if (cmd->needs_one_of) {
        ck_assert_msg(strstr(msg, group), "%s: %s", cmd->name, msg);
    } else {
        ck_assert_msg(*msg == '\0', "%s needs no argument, yet: %s", cmd->name, msg);
    }
    /* the needs-one-of group, with the mandatory ones present */
    if (cmd->needs_one_of) {
        vmrq_request_set_int(req, "uid", 1);
        snprintf(want, sizeof(want), "%s: %s", cmd->name, group);
        ck_assert_str_eq(message_of(req), want);
    }
    vmrq_request_free(req);
}
END_TEST

START_TEST(test_unknown_for_every_command)
{
    const vmrq_command *cmd = vmrq_command_at((size_t)_i);
    vmrq_request *req = valid_request(cmd);
    char want[256];

    vmrq_request_set_int(req, "bogus", 3);
    snprintf(want, sizeof(want), "%s: unknown argument 'bogus'", cmd->name);
    ck_assert_str_eq(message_of(req), want);
    vmrq_request_free(req);
}
END_TEST

/* Every argument of every command (options included) given a value of the wrong type. */
START_TEST(test_ill_typed_for_every_argument)
{
    static const char *const expect[VMRQ_ARG_TYPE_LAST] = {
        [VMRQ_ARG_INT] = "must be an integer, not 'abc'",
        [VMRQ_ARG_STRING] = "must be a string, not '3'",
        [VMRQ_ARG_BOOL] = "must be true or false, not 'maybe'",
        [VMRQ_ARG_ENUM] = "must be",
        [VMRQ_ARG_TIME] = "must be a time (epoch seconds or a timestamp), not 'true'",
    };
    int checked = 0;

    for (size_t i = 0; i < vmrq_command_count(); i++) {
        const vmrq_command *cmd = vmrq_command_at(i);
        for (int pass = 0; pass < 2; pass++)
            for (const vmrq_arg *a = pass ? vmrq_common_args() : cmd->args; a->name; a++) {
                vmrq_request *req = valid_request(cmd);
                char want[256];
                switch (a->type) {
                case VMRQ_ARG_INT: vmrq_request_set_text(req, a->name, "abc"); break;
                case VMRQ_ARG_STRING: vmrq_request_set_int(req, a->name, 3); break;
                case VMRQ_ARG_BOOL: vmrq_request_set_text(req, a->name, "maybe"); break;
                case VMRQ_ARG_ENUM: vmrq_request_set_text(req, a->name, "nope"); break;
                case VMRQ_ARG_TIME: vmrq_request_set_bool(req, a->name, true); break;
                default: ck_abort();
                }
                snprintf(want, sizeof(want), "%s: argument '%s' %s", cmd->name, a->name, expect[a->type]);
                ck_assert_msg(strncmp(message_of(req), want, strlen(want)) == 0, "got \"%s\", want \"%s\"",
                              message_of(req), want);
                vmrq_request_free(req);
                checked++;
            }
    }
    ck_assert_int_gt(checked, 50);
}
END_TEST

START_TEST(test_ranges_and_values)
{
    vmrq_request *req = vmrq_request_new("shutdown");

    vmrq_request_set_int(req, "uid", 1);
    vmrq_request_set_int(req, "id_domain", 2);
    ck_assert_str_eq(message_of(req), "");
    vmrq_request_set_int(req, "timeout", -5);
    ck_assert_str_eq(message_of(req), "shutdown: argument 'timeout' must be between 0 and 2147483647, not '-5'");
    vmrq_request_set_int(req, "timeout", 60);
    vmrq_request_set_text(req, "mode", "reboot");
    ck_assert_str_eq(message_of(req), "shutdown: argument 'mode' must be acpi, agent or default, not 'reboot'");
    vmrq_request_set_text(req, "mode", "agent");
    ck_assert_str_eq(message_of(req), "");
    vmrq_request_set_string(req, "name", "");
    ck_assert_str_eq(message_of(req), "shutdown: argument 'name' must not be empty");
    vmrq_request_set_string(req, "name", "desk1");
    vmrq_request_set_int(req, "retry", 1001);
    ck_assert_str_eq(message_of(req), "shutdown: argument 'retry' must be between 0 and 1000, not '1001'");
    vmrq_request_free(req);
}
END_TEST

/* Text from a command line becomes the catalog's type. */
START_TEST(test_set_text_converts)
{
    vmrq_request *req = vmrq_request_new("shutdown");

    vmrq_request_set_text(req, "uid", "12");
    vmrq_request_set_text(req, "name", "12");
    vmrq_request_set_text(req, "_force", "yes");
    vmrq_request_set_text(req, "at", "1700000000");
    vmrq_request_set_text(req, "unknown", "7");
    ck_assert_str_eq(vmrq_request_args_json(req),
                     "{\"uid\":12,\"name\":\"12\",\"_force\":true,\"at\":1700000000,\"unknown\":\"7\"}");
    vmrq_request_set_text(req, "_force", "OFF");
    vmrq_request_set_text(req, "uid", "12abc");
    ck_assert_str_eq(vmrq_request_args_json(req),
                     "{\"uid\":\"12abc\",\"name\":\"12\",\"_force\":false,\"at\":1700000000,\"unknown\":\"7\"}");
    vmrq_request_free(req);
}
END_TEST

/* With several problems, the first in jsonb key order (shorter keys first) is named, as the
 * database names it. */
START_TEST(test_first_problem_in_key_order)
{
    vmrq_request *req = vmrq_request_new("shutdown");

    ck_assert_int_eq(vmrq_request_set_json(req, "{\"zzz\": 1, \"uid\": \"x\", \"id_domain\": 2}"), 0);
    ck_assert_str_eq(message_of(req), "shutdown: argument 'uid' must be an integer, not 'x'");
    ck_assert_int_eq(vmrq_request_set_json(req, "{\"a\": 1}"), 0);
    ck_assert_str_eq(message_of(req), "shutdown: unknown argument 'a'");
    ck_assert_int_lt(vmrq_validate_keycmp("uid", "name"), 0);
    vmrq_request_free(req);
}
END_TEST

START_TEST(test_bad_input_to_builders)
{
    vmrq_request *req;

    ck_assert_ptr_null(vmrq_request_new("nope"));
    ck_assert_int_eq(vmrq_error_code(), VMRQ_ERR_INVALID);
    ck_assert_str_eq(vmrq_error_message(), "unknown command 'nope'");
    ck_assert_ptr_null(vmrq_request_new(NULL));
    ck_assert_str_eq(vmrq_error_message(), "missing command");

    req = vmrq_request_new("start");
    ck_assert_int_eq(vmrq_request_set_json(req, "[1, 2]"), -1);
    ck_assert_str_eq(vmrq_error_message(), "start: arguments must be a JSON object");
    ck_assert_int_eq(vmrq_request_set_json(req, "{\"uid\": "), -1);
    ck_assert_ptr_nonnull(strstr(vmrq_error_message(), "start: arguments must be a JSON object: "));
    ck_assert_int_eq(vmrq_request_set_uuid(req, "not-a-uuid"), -1);
    ck_assert_str_eq(vmrq_error_message(), "start: 'not-a-uuid' is not a uuid");
    ck_assert_int_eq(vmrq_request_set_uuid(req, "0E7E2D66-1111-4222-8333-444455556666"), 0);
    ck_assert_str_eq(vmrq_request_uuid(req), "0e7e2d66-1111-4222-8333-444455556666");
    ck_assert_int_eq(vmrq_request_set_string(req, "name", NULL), -1);
    ck_assert_str_eq(vmrq_request_args_json(req), "{}"); /* nothing changed */
    vmrq_request_free(req);
    vmrq_request_free(NULL);
}
END_TEST

/* What a careless client sends (issue 18): the library says what the database says, word for
 * word (t/check_differential.c proves it on random input). */
START_TEST(test_careless_client)
{
    static const struct {
        const char *command, *args, *message;
    } cases[] = {
        { "ping_backend", "{\"\": 1}", "ping_backend: unknown argument ''" },
        { "start", "{\"uid\": 1, \"id_domain\": 2} x",
          "start: arguments must be a JSON object: invalid input syntax for type json" },
        { "start", "{\"uid\": 1, \"id_domain\": 2}}",
          "start: arguments must be a JSON object: invalid input syntax for type json" },
        { "start", "{'uid': 1}", "start: arguments must be a JSON object: invalid input syntax for type json" },
        { "start", "{\"uid\": 99999999999999999999, \"id_domain\": 2}",
          "start: argument 'uid' must be between 1 and 2147483647, not '99999999999999999999'" },
        { "start", "{\"uid\": 1, \"id_domain\": 2, \"after_request\": 9223372036854775808}",
          "start: argument 'after_request' must be between 1 and 9223372036854775807, not '9223372036854775808'" },
        { "start", "{\"uid\": -0.0, \"id_domain\": 2}", "start: argument 'uid' must be an integer, not '0.0'" },
        { "start", "{\"uid\": 1e2, \"id_domain\": 2}", "" },
        { "start", "{\"uid\": {\"b\":[1,2],  \"a\":1e1}, \"id_domain\": 2}",
          "start: argument 'uid' must be an integer, not '{\"a\": 10, \"b\": [1, 2]}'" },
        { "start", "{\"uid\": \"a\\nb\", \"id_domain\": 2}", "start: argument 'uid' must be an integer, not 'a\\u000ab'" },
        { "start", "{\"uid\": 1, \"name\": \"desk\\u0000\"}",
          "start: arguments must be a JSON object: unsupported Unicode escape sequence" },
        { "start", "{\"uid\": 1, \"name\": \"\xc3(\"}",
          "start: arguments must be a JSON object: invalid byte sequence for encoding \"UTF8\": 0xc3 0x28" },
        { "start", "{\"uid\": 1, \"name\": \"desk\\t12\"}",
          "start: argument 'name' must not contain control characters, not 'desk\\u000912'" },
        { "start", "{\"uid\": 1, \"at\": 9224318016000, \"id_domain\": 2}",
          "start: argument 'at' must be a time (epoch seconds or a timestamp), not '9224318016000'" },
        { "start", "{\"uid\": 1, \"x\": [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}",
          "start: arguments must nest at most 16 levels deep" },
    };
    char want[300];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        vmrq_request *req = vmrq_request_new(cases[i].command);
        const char *msg = vmrq_request_set_json(req, cases[i].args) < 0 ? vmrq_error_message() : message_of(req);
        ck_assert_msg(strcmp(msg, cases[i].message) == 0, "%s: got \"%s\", want \"%s\"", cases[i].args,
                      msg, cases[i].message);
        vmrq_request_free(req);
    }
    /* the empty command is a name the catalog lacks, as the database says */
    ck_assert_ptr_null(vmrq_request_new(""));
    ck_assert_str_eq(vmrq_error_message(), "unknown command ''");
    ck_assert_ptr_null(vmrq_request_new("a\nb"));
    ck_assert_str_eq(vmrq_error_message(), "unknown command 'a\\u000ab'");
    /* a name too long for the catalog, quoted on one short line */
    {
        vmrq_request *req = vmrq_request_new("start");
        char name[200];
        memset(name, 'n', 129);
        name[129] = '\0';
        vmrq_request_set_int(req, "uid", 1);
        vmrq_request_set_string(req, "name", name);
        snprintf(want, sizeof(want), "start: argument 'name' must be at most 128 characters long, not '%.128s...'", name);
        ck_assert_str_eq(message_of(req), want);
        name[128] = '\0';
        vmrq_request_set_string(req, "name", name);
        ck_assert_str_eq(message_of(req), "");
        vmrq_request_set_string(req, "name", "\xff");
        ck_assert_str_eq(message_of(req), "start: arguments must be a JSON object: invalid byte sequence for encoding \"UTF8\": 0xff");
        vmrq_request_set_int(req, "", 1);
        vmrq_request_set_string(req, "name", "desk");
        ck_assert_str_eq(message_of(req), "start: unknown argument ''");
        vmrq_request_free(req);
    }
}
END_TEST

START_TEST(test_fresh_request)
{
    vmrq_request *a = vmrq_request_new("ping_backend"), *b = vmrq_request_new("ping_backend");

    ck_assert_int_eq(vmrq_request_id(a), 0);
    ck_assert_int_eq(strlen(vmrq_request_uuid(a)), 36);
    ck_assert_str_ne(vmrq_request_uuid(a), vmrq_request_uuid(b));
    ck_assert_int_eq(vmrq_request_status(a), VMRQ_STATUS_REQUESTED);
    ck_assert_str_eq(vmrq_request_command(a), "ping_backend");
    ck_assert_ptr_null(vmrq_request_error(a));
    vmrq_request_free(a);
    vmrq_request_free(b);
}
END_TEST

Suite *
validate_suite(void)
{
    Suite *s = suite_create("validate");
    TCase *tc = tcase_create("validate");
    int n = (int)vmrq_command_count();

    tcase_add_loop_test(tc, test_valid_for_every_command, 0, n);
    tcase_add_loop_test(tc, test_missing_for_every_command, 0, n);
    tcase_add_loop_test(tc, test_unknown_for_every_command, 0, n);
    tcase_add_test(tc, test_ill_typed_for_every_argument);
    tcase_add_test(tc, test_ranges_and_values);
    tcase_add_test(tc, test_set_text_converts);
    tcase_add_test(tc, test_first_problem_in_key_order);
    tcase_add_test(tc, test_bad_input_to_builders);
    tcase_add_test(tc, test_careless_client);
    tcase_add_test(tc, test_fresh_request);
    suite_add_tcase(s, tc);
    return s;
}
