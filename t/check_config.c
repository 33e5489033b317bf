/*
 * check_config.c - vmrqd's configuration: the example documents every key, the file and the
 * environment are read as documented, and bad input is refused with the file and line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "dispatch.h"
#include "tutil.h"

#define EXAMPLE "etc/vmrqd.conf.example"

/* Writes text to a new temporary file; returns its name (static buffer). */
static const char *
write_conf(const char *text)
{
    static char name[64];
    FILE *f;
    int fd;

    snprintf(name, sizeof(name), "/tmp/vmrqd-conf.XXXXXX");
    ck_assert((fd = mkstemp(name)) >= 0);
    ck_assert((f = fdopen(fd, "w")) != NULL);
    fputs(text, f);
    fclose(f);
    return name;
}

START_TEST(test_example_documents_every_key)
{
    struct vmrqd_config cfg;
    char err[512], line[512];
    FILE *f = fopen(EXAMPLE, "r");
    const char *name;

    ck_assert_msg(f != NULL, "%s is missing", EXAMPLE);
    for (size_t i = 0; (name = config_key_name(i)); i++) {
        bool found = false;
        rewind(f);
        while (!found && fgets(line, sizeof(line), f)) {
            const char *p = line[0] == '#' ? line + 1 : line;
            found = strncmp(p, name, strlen(name)) == 0 && strncmp(p + strlen(name), " =", 2) == 0;
        }
        ck_assert_msg(found, "key %s is not documented in %s", name, EXAMPLE);
    }
    fclose(f);
    memset(&cfg, 0, sizeof(cfg));
    ck_assert_msg(config_load(&cfg, EXAMPLE, true, err, sizeof(err)) == 0, "%s", err);
    config_free(&cfg);
}
END_TEST

START_TEST(test_defaults_and_environment)
{
    struct vmrqd_config cfg;
    const char *file = write_conf("database = dbname=fromfile\nnode = filenode\nworkers = 3\n");
    char err[512];

    memset(&cfg, 0, sizeof(cfg));
    unsetenv("VMRQ_DB");
    unsetenv("VMRQ_NODE");
    unsetenv("VMRQ_LIBVIRT_URI");
    ck_assert_int_eq(config_load(&cfg, "/nonexistent/vmrqd.conf", false, err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.workers, 8);
    ck_assert_int_eq(cfg.retention_ms, 7LL * 86400 * 1000);
    ck_assert_int_eq(cfg.limit[VMRQ_CLASS_LONG], 1);
    ck_assert_str_eq(cfg.libvirt_uri, ""); /* the node's nodes.uri */
    ck_assert_str_ne(cfg.node, ""); /* the host name */

    ck_assert_int_eq(config_load(&cfg, file, true, err, sizeof(err)), 0);
    ck_assert_str_eq(cfg.database, "dbname=fromfile");
    ck_assert_int_eq(cfg.workers, 3);
    setenv("VMRQ_DB", "dbname=fromenv", 1);
    setenv("VMRQ_NODE", "envnode", 1);
    setenv("VMRQ_LIBVIRT_URI", "test:///default", 1);
    ck_assert_int_eq(config_load(&cfg, file, true, err, sizeof(err)), 0);
    ck_assert_str_eq(cfg.database, "dbname=fromenv");
    ck_assert_str_eq(cfg.node, "envnode");
    ck_assert_str_eq(cfg.libvirt_uri, "test:///default");
    config_free(&cfg);
    unlink(file);
}
END_TEST

/* Each bad file is refused with FILE:LINE and the configuration is left as it was. */
START_TEST(test_errors_name_file_and_line)
{
    static const struct { const char *text, *want; } bad[] = {
        { "workers = 4\nbogus = 1\n", ":2: unknown key 'bogus'" },
        { "workers = lots\n", ":1: workers must be a whole number from 1 to 256, not 'lots'" },
        { "workers = 0\n", ":1: workers must be a whole number from 1 to 256, not '0'" },
        { "lease = 5 minutes\n", ":1: lease must be a duration such as 90s" },
        { "log_level = loud\n", ":1: log_level must be error, warning, info or debug, not 'loud'" },
        { "# fine\njust words\n", ":2: expected 'key = value'" },
    };
    struct vmrqd_config cfg;
    char err[512];

    memset(&cfg, 0, sizeof(cfg));
    ck_assert_int_eq(config_load(&cfg, NULL, false, err, sizeof(err)), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *file = write_conf(bad[i].text);
        ck_assert_int_eq(config_load(&cfg, file, true, err, sizeof(err)), -1);
        ck_assert_msg(strncmp(err, file, strlen(file)) == 0 && strstr(err, bad[i].want),
                      "got \"%s\", want \"%s\"", err, bad[i].want);
        ck_assert_int_eq(cfg.workers, 8);
        unlink(file);
    }
    ck_assert_int_eq(config_load(&cfg, "/nonexistent/vmrqd.conf", true, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "/nonexistent/vmrqd.conf: no such file");
    config_free(&cfg);
}
END_TEST

START_TEST(test_durations_and_quotes)
{
    struct vmrqd_config cfg;
    const char *file = write_conf("retention = 2d\nlease = 1500ms\nretry_backoff = 3\n"
                                  "handler_deadline = 2h\ndatabase = \"host=/tmp dbname=x\"\n");
    char err[512];

    memset(&cfg, 0, sizeof(cfg));
    unsetenv("VMRQ_DB"); /* it would override the file */
    ck_assert_msg(config_load(&cfg, file, true, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(cfg.retention_ms, 2LL * 86400 * 1000);
    ck_assert_int_eq(cfg.lease_ms, 1500);
    ck_assert_int_eq(cfg.retry_backoff_ms, 3000);
    ck_assert_int_eq(cfg.handler_deadline_ms, 2LL * 3600 * 1000);
    ck_assert_str_eq(cfg.database, "host=/tmp dbname=x");
    config_free(&cfg);
    unlink(file);
}
END_TEST

/* A reload cannot change what the running process is built around: the database is one of
 * those keys (every connection of vmrqd holds claims of that database). */
START_TEST(test_reload_keeps_fixed_keys)
{
    struct vmrqd_config cur, next;
    const char *a;
    char err[512], b[64];

    unsetenv("VMRQ_DB"); /* this test's process only: Check forks each test */
    a = write_conf("workers = 4\nnode = a\nretention = 1d\ndatabase = dbname=one\n");

    memset(&cur, 0, sizeof(cur));
    memset(&next, 0, sizeof(next));
    ck_assert_int_eq(config_load(&cur, a, true, err, sizeof(err)), 0);
    snprintf(b, sizeof(b), "%s", write_conf("workers = 9\nnode = b\nretention = 2d\ndatabase = dbname=two\n"));
    ck_assert_int_eq(config_load(&next, b, true, err, sizeof(err)), 0);
    config_keep_fixed(&next, &cur);
    ck_assert_int_eq(next.workers, 4);
    ck_assert_str_eq(next.node, "a");
    ck_assert_str_eq(next.database, "dbname=one");
    ck_assert_int_eq(next.retention_ms, 2LL * 86400 * 1000);
    config_free(&cur);
    config_free(&next);
    unlink(a);
    unlink(b);
}
END_TEST

/* The handler table and the catalog name the same commands. */
START_TEST(test_handler_table_matches_catalog)
{
    char err[256] = "";

    ck_assert_msg(dispatch_check(err, sizeof(err)) == 0, "%s", err);
}
END_TEST

Suite *
config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");

    tcase_add_test(tc, test_example_documents_every_key);
    tcase_add_test(tc, test_defaults_and_environment);
    tcase_add_test(tc, test_errors_name_file_and_line);
    tcase_add_test(tc, test_durations_and_quotes);
    tcase_add_test(tc, test_reload_keeps_fixed_keys);
    tcase_add_test(tc, test_handler_table_matches_catalog);
    suite_add_tcase(s, tc);
    return s;
}
