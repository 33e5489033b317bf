/*
 * check_service.c - vmrqd as an operator runs it: the pidfile (locked, taken over when stale,
 * written only when daemonized or set), `vmrqd -n` checking what a start needs, and the -V/-h
 * flags of vmrqd and vmrq. Real daemons on the throwaway database.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tutil.h"

#define FAST "lease = 1s\npoll_interval = 1h\nlog_level = info\nlibvirt_uri = test:///default\n"

static struct t_daemon da, db;
static char pidpath[64];

static void
setup(void)
{
    t_db_setup();
    memset(&da, 0, sizeof(da));
    memset(&db, 0, sizeof(db));
    snprintf(pidpath, sizeof(pidpath), "/tmp/vmrqd-test-pid.%d", (int)getpid());
    unlink(pidpath);
}

static long pid_in(const char *path);

static void
teardown(void)
{
    long left = pid_in(pidpath);

    if (left > 1) /* a daemonized vmrqd of a failed test */
        kill((pid_t)left, SIGKILL);
    t_daemon_cleanup(&da);
    t_daemon_cleanup(&db);
    unlink(pidpath);
    t_db_teardown();
}

/* Output (stdout and stderr) of a shell command, into out; returns its exit status. */
static int
run(char *out, size_t size, const char *fmt, ...)
{
    char cmd[2048], buf[512];
    size_t len = 0;
    va_list ap;
    FILE *p;
    int status;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1", sizeof(cmd) - strlen(cmd) - 1);
    ck_assert((p = popen(cmd, "r")) != NULL);
    out[0] = '\0';
    while (fgets(buf, sizeof(buf), p)) {
        snprintf(out + len, size - len, "%s", buf);
        len = strlen(out);
    }
    status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* A configuration file with `text`; its name in name[64]. */
static void
write_conf(char name[64], const char *text)
{
    FILE *f;
    int fd;

    snprintf(name, 64, "/tmp/vmrqd-svc-conf.XXXXXX");
    ck_assert((fd = mkstemp(name)) >= 0);
    ck_assert((f = fdopen(fd, "w")) != NULL);
    fputs(text, f);
    fclose(f);
}

static long
pid_in(const char *path)
{
    FILE *f = fopen(path, "r");
    long pid = 0;

    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return pid;
}

/* Under -d with the default configuration no pidfile is written: two daemons on one host (two
 * nodes, a test) both run. */
START_TEST(test_two_foreground_daemons_with_defaults)
{
    bool had_default = access("/run/vmrq/vmrqd.pid", F_OK) == 0;

    t_daemon_start(&da, FAST "node = one\n", false);
    t_daemon_start(&db, FAST "node = two\n", false);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM daemons WHERE stopped_at IS NULL", 0, NULL), 2);
    ck_assert_msg(had_default || access("/run/vmrq/vmrqd.pid", F_OK) != 0, "-d wrote the default pidfile");
}
END_TEST

/* A pidfile naming a live process that is not a vmrqd holding it (here: init) does not block a
 * start; a vmrqd that holds it does, naming its pid. */
START_TEST(test_pidfile_stale_then_locked)
{
    char conf[64], text[256], out[2048];
    FILE *f = fopen(pidpath, "w");

    ck_assert(f != NULL);
    fputs("1\n", f);
    fclose(f);
    snprintf(text, sizeof(text), FAST "pidfile = %s\n", pidpath);
    t_daemon_start(&da, text, false);
    ck_assert_int_eq(pid_in(pidpath), da.pid);

    write_conf(conf, text);
    ck_assert_int_eq(run(out, sizeof(out), "timeout 20 %s -d -f %s", getenv("VMRQD"), conf), 1);
    snprintf(text, sizeof(text), "pidfile %s: vmrqd is already running as pid %d", pidpath, da.pid);
    ck_assert_msg(strstr(out, text), "got: %s", out);
    ck_assert_int_eq(run(out, sizeof(out), "VMRQ_LIBVIRT_URI=test:///default timeout 20 %s -n -d -f %s",
                         getenv("VMRQD"), conf), 1);
    ck_assert_msg(strstr(out, text), "-n: got: %s", out);
    ck_assert_int_eq(pid_in(pidpath), da.pid);

    ck_assert_int_eq(t_daemon_wait(&da, SIGTERM, 10000), 0);
    ck_assert_msg(access(pidpath, F_OK) != 0, "the pidfile outlived its daemon");
    unlink(conf);
}
END_TEST

/* Four vmrqd started at once on one pidfile: exactly one runs, the others exit 1. */
START_TEST(test_pidfile_race)
{
    char conf[64], text[256];
    pid_t pids[4];
    int exited = 0, failed = 0, winner = -1;

    snprintf(text, sizeof(text), FAST "pidfile = %s\n", pidpath);
    write_conf(conf, text);
    for (int i = 0; i < 4; i++) {
        ck_assert((pids[i] = fork()) >= 0);
        if (pids[i] == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            dup2(null, 2);
            execl(getenv("VMRQD"), "vmrqd", "-d", "-f", conf, (char *)NULL);
            _exit(127);
        }
    }
    for (int waited = 0; exited < 3 && waited < 20000; waited += 10) {
        struct timespec ts = { 0, 10 * 1000000 };
        int status;
        for (int i = 0; i < 4; i++)
            if (pids[i] > 0 && waitpid(pids[i], &status, WNOHANG) == pids[i]) {
                pids[i] = 0;
                exited++;
                failed += WIFEXITED(status) && WEXITSTATUS(status) == 1;
            }
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < 4; i++)
        if (pids[i] > 0)
            winner = i;
    ck_assert_int_eq(exited, 3);
    ck_assert_int_eq(failed, 3);
    ck_assert_int_ge(winner, 0);
    da.pid = pids[winner]; /* the teardown kills it */
    snprintf(da.conf, sizeof(da.conf), "%s", conf);
    for (int i = 0; i < 2000 && pid_in(pidpath) != da.pid; i++) {
        struct timespec ts = { 0, 10 * 1000000 };
        nanosleep(&ts, NULL);
    }
    ck_assert_int_eq(pid_in(pidpath), da.pid);
}
END_TEST

/* Without -d vmrqd daemonizes and writes the pidfile; SIGTERM to that pid stops it and
 * removes the file. */
START_TEST(test_daemonized_writes_pidfile)
{
    char conf[64], text[256], out[2048], pid[24];
    const char *params[1] = { pid };
    long daemon_pid = 0;

    snprintf(text, sizeof(text), FAST "pidfile = %s\n", pidpath);
    write_conf(conf, text);
    ck_assert_int_eq(run(out, sizeof(out), "%s -f %s", getenv("VMRQD"), conf), 0);
    for (int i = 0; i < 2000 && !(daemon_pid = pid_in(pidpath)); i++) {
        struct timespec ts = { 0, 10 * 1000000 };
        nanosleep(&ts, NULL);
    }
    ck_assert_int_gt(daemon_pid, 0);
    da.pid = -1; /* not our child: killed below by pid */
    snprintf(pid, sizeof(pid), "%ld", daemon_pid);
    for (int i = 0; i < 2000; i++) {
        struct timespec ts = { 0, 10 * 1000000 };
        if (t_sql_int(t_db, "SELECT count(*) FROM daemons WHERE pid = $1::int", 1, params) == 1)
            break;
        nanosleep(&ts, NULL);
    }
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM daemons WHERE pid = $1::int", 1, params), 1);
    ck_assert_int_eq(kill((pid_t)daemon_pid, SIGTERM), 0);
    for (int i = 0; i < 2000 && access(pidpath, F_OK) == 0; i++) {
        struct timespec ts = { 0, 10 * 1000000 };
        nanosleep(&ts, NULL);
    }
    ck_assert_msg(access(pidpath, F_OK) != 0, "the pidfile outlived its daemon");
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM daemons WHERE pid = $1::int AND stopped_at"
                                     " IS NOT NULL", 1, params), 1);
    unlink(conf);
}
END_TEST

/* vmrqd -n checks the file, the pidfile, the database, its schema, the node and the hypervisor:
 * one line for the first problem, exit 1; all well, exit 0. */
START_TEST(test_check_only)
{
    static const struct { const char *env, *conf, *want; } bad[] = {
        { "VMRQ_DB=garbage", "", "database: cannot connect: " },
        { "VMRQ_DB='dbname=vmrq_noschema'", "", "database: no vmrq schema in this database: run 'vmrq db upgrade'" },
        { "VMRQ_NODE=elsewhere", "", "node 'elsewhere' is not in table nodes: add it with 'vmrq node add elsewhere" },
        { "VMRQ_LIBVIRT_URI=bogus:///x", "", "libvirt_uri 'bogus:///x': " },
        { "", "pidfile = /nonexistent/dir/vmrqd.pid\n", "pidfile /nonexistent/dir/vmrqd.pid: No such file or directory" },
        { "", "workers = lots\n", "workers must be a whole number" },
    };
    char conf[64], out[4096], text[512];
    const char *vmrqd = getenv("VMRQD");

    PQclear(t_sql(t_db, "DROP DATABASE IF EXISTS vmrq_noschema", 0, NULL));
    PQclear(t_sql(t_db, "CREATE DATABASE vmrq_noschema", 0, NULL));
    PQclear(t_sql(t_db, "INSERT INTO nodes (name, uri) VALUES ('here', 'test:///default')", 0, NULL));
    write_conf(conf, "node = here\nlibvirt_uri = test:///default\n");
    ck_assert_int_eq(run(out, sizeof(out), "%s -n -f %s", vmrqd, conf), 0);
    ck_assert_msg(strstr(out, "vmrqd: configuration OK") && strstr(out, "node 'here'"), "got: %s", out);
    unlink(conf);
    /* the shipped example, with this machine's database and hypervisor */
    ck_assert_int_eq(run(out, sizeof(out), "VMRQ_NODE=here VMRQ_LIBVIRT_URI=test:///default %s -n -f"
                         " etc/vmrqd.conf.example", vmrqd), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "node = here\nlibvirt_uri = test:///default\n%s", bad[i].conf);
        write_conf(conf, text);
        ck_assert_int_eq(run(out, sizeof(out), "%s %s -n -f %s", bad[i].env, vmrqd, conf), 1);
        ck_assert_msg(strstr(out, bad[i].want), "%s: got \"%s\", want \"%s\"", bad[i].env, out, bad[i].want);
        ck_assert_msg(t_lines(out) == 1, "%s: more than one line: %s", bad[i].env, out);
        unlink(conf);
    }
    PQclear(t_sql(t_db, "DROP DATABASE vmrq_noschema", 0, NULL));
}
END_TEST

/* -V/--version and -h/--help, for vmrqd and vmrq; a bad option is one line and exit 2. */
START_TEST(test_version_and_help)
{
    const char *progs[2] = { getenv("VMRQD"), getenv("VMRQ_CLI") };
    const char *names[2] = { "vmrqd", "vmrq" };
    char out[8192], want[64];

    for (int p = 0; p < 2; p++) {
        snprintf(want, sizeof(want), "%s %s\n", names[p], vmrq_version());
        ck_assert_int_eq(run(out, sizeof(out), "%s -V", progs[p]), 0);
        ck_assert_str_eq(out, want);
        ck_assert_int_eq(run(out, sizeof(out), "%s --version", progs[p]), 0);
        ck_assert_str_eq(out, want);
        ck_assert_int_eq(run(out, sizeof(out), "%s -h", progs[p]), 0);
        ck_assert_msg(strncmp(out, "usage: ", 7) == 0, "%s -h: %s", names[p], out);
        ck_assert_int_eq(run(out, sizeof(out), "%s --help", progs[p]), 0);
        ck_assert_msg(strncmp(out, "usage: ", 7) == 0, "%s --help: %s", names[p], out);
        ck_assert_int_eq(run(out, sizeof(out), "%s --bogus", progs[p]), 2);
    }
}
END_TEST

Suite *
service_suite(void)
{
    Suite *s = suite_create("service");
    TCase *tc = tcase_create("service");

    tcase_set_tags(tc, "db daemon service");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_two_foreground_daemons_with_defaults);
    tcase_add_test(tc, test_pidfile_stale_then_locked);
    tcase_add_test(tc, test_pidfile_race);
    tcase_add_test(tc, test_daemonized_writes_pidfile);
    tcase_add_test(tc, test_check_only);
    tcase_add_test(tc, test_version_and_help);
    suite_add_tcase(s, tc);
    return s;
}
