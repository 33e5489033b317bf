/*
 * check_service.c - vmrqd as an operator runs it: the pidfile (locked, taken over when stale,
 * written only when daemonized or set), `vmrqd -n` checking what a start needs, and the -V/-h
 * flags of vmrqd and vmrq. Real daemons on the throwaway database.
 */
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
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
    t_node_ensure(t_db, text);
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
    t_node_ensure(t_db, text);
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
    /* no libvirt_uri: the node's nodes.uri is what opens */
    write_conf(conf, "node = here\n");
    ck_assert_int_eq(run(out, sizeof(out), "env -u VMRQ_LIBVIRT_URI %s -n -f %s", vmrqd, conf), 0);
    ck_assert_msg(strstr(out, "test:///default opens (the node's uri)"), "got: %s", out);
    unlink(conf);
    PQclear(t_sql(t_db, "DROP DATABASE vmrq_noschema", 0, NULL));
}
END_TEST

/* A vmrqd whose node is not in table nodes does not start (nor adopt anything): one line
 * naming `vmrq node add`, exit 1, no row in daemons. */
START_TEST(test_unknown_node_refused)
{
    char conf[64], out[2048];

    write_conf(conf, FAST "node = nowhere\n");
    ck_assert_int_eq(run(out, sizeof(out), "timeout 20 %s -d -f %s", getenv("VMRQD"), conf), 1);
    ck_assert_msg(strstr(out, "node 'nowhere' is not in table nodes: add it with 'vmrq node add nowhere --uri URI'"),
                  "got: %s", out);
    ck_assert_msg(t_lines(out) == 1, "more than one line: %s", out);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM daemons", 0, NULL), 0);
    unlink(conf);
}
END_TEST

/* A datagram socket at path that plays systemd's notification socket. */
static int
notify_socket(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    ck_assert(fd >= 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    unlink(path);
    ck_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    return fd;
}

/* Reads notifications until one contains `want` or timeout_ms passes; all that was read is
 * appended to seen (size bytes). Whether `want` came. */
static bool
notified(int fd, const char *want, int timeout_ms, char *seen, size_t size)
{
    char msg[1024];

    for (long long end = (long long)time(NULL) * 1000 + timeout_ms;;) {
        struct pollfd p = { fd, POLLIN, 0 };
        long long left = end - (long long)time(NULL) * 1000;
        ssize_t n;

        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return false;
        if ((n = recv(fd, msg, sizeof(msg) - 1, 0)) < 0)
            return false;
        msg[n] = '\0';
        strncat(seen, msg, size - strlen(seen) - 2);
        strcat(seen, "|");
        if (strstr(msg, want))
            return true;
    }
}

/* As a Type=notify service: READY=1 once registered, with a STATUS naming the daemon; the
 * watchdog fed within its interval though nothing else wakes the loop; STOPPING=1 on SIGTERM.
 * Without the database: a STATUS saying why, and no READY=1. */
START_TEST(test_systemd_notify)
{
    char sock[64], seen[8192] = "", want[128];
    int fd;

    snprintf(sock, sizeof(sock), "/tmp/vmrqd-notify.%d", (int)getpid());
    fd = notify_socket(sock);
    setenv("NOTIFY_SOCKET", sock, 1);
    setenv("WATCHDOG_USEC", "1500000", 1);
    t_daemon_start(&da, "lease = 1h\npoll_interval = 1h\nlibvirt_uri = test:///default\n", false);
    snprintf(want, sizeof(want), "READY=1\nSTATUS=daemon %d of node", da.id);
    ck_assert_msg(notified(fd, want, 5000, seen, sizeof(seen)), "no READY=1 with its id; got: %s", seen);
    seen[0] = '\0';
    ck_assert_msg(notified(fd, "WATCHDOG=1", 3000, seen, sizeof(seen)), "got: %s", seen);
    ck_assert_msg(notified(fd, "WATCHDOG=1", 3000, seen, sizeof(seen)), "fed once only: %s", seen);
    kill(da.pid, SIGTERM);
    ck_assert_msg(notified(fd, "STOPPING=1", 5000, seen, sizeof(seen)), "got: %s", seen);
    ck_assert_int_eq(t_daemon_wait(&da, 0, 10000), 0);

    seen[0] = '\0';
    da.pid = fork();
    ck_assert(da.pid >= 0);
    if (da.pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        setenv("VMRQ_DB", "dbname=vmrq_none_here", 1);
        setenv("VMRQ_LIBVIRT_URI", "test:///default", 1);
        execl(getenv("VMRQD"), "vmrqd", "-d", "-f", "/dev/null", (char *)NULL);
        _exit(127);
    }
    ck_assert_msg(notified(fd, "STATUS=waiting for the database: ", 5000, seen, sizeof(seen)), "got: %s", seen);
    ck_assert_msg(strstr(seen, "vmrq_none_here") && !strstr(seen, "READY=1"), "got: %s", seen);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    close(fd);
    unlink(sock);
}
END_TEST

static bool
has_file(const char *dir, const char *path)
{
    char full[512];

    snprintf(full, sizeof(full), "%s%s", dir, path);
    return access(full, F_OK) == 0;
}

/* The files make install puts under DESTDIR (PREFIX /usr/local), but the configuration. */
static const char *const installed[] = {
    "/usr/local/bin/vmrq", "/usr/local/bin/vmrqd", "/usr/local/share/man/man1/vmrq.1",
    "/usr/local/share/man/man5/vmrqd.conf.5", "/usr/local/share/man/man8/vmrqd.8",
    "/usr/local/lib/systemd/system/vmrqd.service", "/usr/local/lib/sysusers.d/vmrq.conf",
    "/usr/local/share/doc/vmrq/README.md", "/usr/local/share/doc/vmrq/examples/vmrq.cron",
    "/usr/local/share/doc/vmrq/examples/vmrqd.conf.example", "/usr/local/include/vmrq.h",
};

/* Starts the installed unit's ExecStart line, its absolute paths under `dest`, as an
 * unprivileged user (nobody, when the tests run as root); returns the pid. */
static pid_t
start_unit(const char *dest, const char *logpath)
{
    char path[512], line[1024], *argv[16], *tok, *save = NULL;
    static char words[16][512];
    int argc = 0;
    FILE *f;
    pid_t pid;

    snprintf(path, sizeof(path), "%s/usr/local/lib/systemd/system/vmrqd.service", dest);
    ck_assert_msg((f = fopen(path, "r")) != NULL, "%s is missing", path);
    while (fgets(line, sizeof(line), f) && strncmp(line, "ExecStart=", 10) != 0)
        ;
    fclose(f);
    ck_assert_msg(strncmp(line, "ExecStart=", 10) == 0, "no ExecStart= in %s", path);
    line[strcspn(line, "\n")] = '\0';
    for (tok = strtok_r(line + 10, " ", &save); tok && argc < 15; tok = strtok_r(NULL, " ", &save)) {
        snprintf(words[argc], sizeof(words[argc]), "%s%s", tok[0] == '/' ? dest : "", tok);
        argv[argc] = words[argc];
        argc++;
    }
    argv[argc] = NULL;
    ck_assert((pid = fork()) >= 0);
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        struct passwd *pw = getpwnam("nobody");
        dup2(fd, 1);
        dup2(fd, 2);
        setenv("VMRQ_LIBVIRT_URI", "test:///default", 1); /* no qemu:///system here */
        if (getuid() == 0 && (!pw || setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
                              setuid(pw->pw_uid) < 0))
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* make install with DESTDIR puts every file in place; the unit passes systemd-analyze verify
 * (where there is one); its ExecStart line, run as an unprivileged user with the installed
 * configuration, registers in the database; a second install keeps an edited configuration;
 * make uninstall removes all but it. */
START_TEST(test_install_and_run_the_unit)
{
    const char *make = getenv("VMRQ_MAKE");
    char dest[] = "/tmp/vmrq-destdir.XXXXXX", out[8192], logpath[600], conf[600], pid[24];
    const char *params[1] = { pid };
    struct t_daemon d = { 0 };
    FILE *f;

    ck_assert_msg(make != NULL, "VMRQ_MAKE is not set: run the tests with make check");
    ck_assert(mkdtemp(dest) != NULL);
    chmod(dest, 0755);
    ck_assert_msg(run(out, sizeof(out), "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL %s install DESTDIR=%s",
                      make, dest) == 0, "make install: %s", out);
    for (size_t i = 0; i < sizeof(installed) / sizeof(installed[0]); i++)
        ck_assert_msg(has_file(dest, installed[i]), "make install did not install %s", installed[i]);
    ck_assert(has_file(dest, "/etc/vmrq/vmrqd.conf"));

    if (run(out, sizeof(out), "command -v systemd-analyze") == 0) {
        ck_assert_msg(run(out, sizeof(out), "sed 's|=/usr/local/|=%s/usr/local/|' "
                          "%s/usr/local/lib/systemd/system/vmrqd.service > %s/vmrqd.service && "
                          "MANPATH=%s/usr/local/share/man systemd-analyze verify %s/vmrqd.service",
                          dest, dest, dest, dest, dest) == 0 && !*out,
                      "systemd-analyze verify: %s", out);
    }

    snprintf(logpath, sizeof(logpath), "%s/vmrqd.log", dest);
    t_node_ensure(t_db, ""); /* the example names no node: this host's name */
    d.pid = start_unit(dest, logpath);
    snprintf(pid, sizeof(pid), "%d", d.pid);
    for (int i = 0; i < 3000; i++) {
        struct timespec ts = { 0, 10 * 1000000 };
        if (t_sql_int(t_db, "SELECT count(*) FROM daemons WHERE pid = $1::int", 1, params) == 1)
            break;
        ck_assert_msg(waitpid(d.pid, NULL, WNOHANG) == 0, "the unit's vmrqd exited: %s",
                      (run(out, sizeof(out), "cat %s", logpath), out));
        nanosleep(&ts, NULL);
    }
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM daemons WHERE pid = $1::int", 1, params), 1);
    ck_assert_int_eq(t_daemon_wait(&d, SIGTERM, 20000), 0);

    snprintf(conf, sizeof(conf), "%s/etc/vmrq/vmrqd.conf", dest);
    ck_assert((f = fopen(conf, "w")) != NULL);
    fputs("# edited\n", f);
    fclose(f);
    ck_assert_msg(run(out, sizeof(out), "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL %s install DESTDIR=%s",
                      make, dest) == 0, "make install again: %s", out);
    ck_assert_int_eq(run(out, sizeof(out), "cat %s", conf), 0);
    ck_assert_str_eq(out, "# edited\n");
    ck_assert_msg(run(out, sizeof(out), "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL %s uninstall DESTDIR=%s",
                      make, dest) == 0, "make uninstall: %s", out);
    for (size_t i = 0; i < sizeof(installed) / sizeof(installed[0]); i++)
        ck_assert_msg(!has_file(dest, installed[i]), "make uninstall left %s", installed[i]);
    ck_assert(has_file(dest, "/etc/vmrq/vmrqd.conf"));
    run(out, sizeof(out), "rm -rf %s", dest);
}
END_TEST

/* Whether the page has a line starting with `start` followed by a space or the end. */
static bool
page_has(const char *page, const char *start)
{
    char line[1024];
    FILE *f = fopen(page, "r");
    bool found = false;

    ck_assert_msg(f != NULL, "%s is missing", page);
    while (!found && fgets(line, sizeof(line), f))
        found = strncmp(line, start, strlen(start)) == 0 &&
                (line[strlen(start)] == ' ' || line[strlen(start)] == '\n');
    fclose(f);
    return found;
}

/* The man pages lint clean (mandoc: no warning), vmrqd.conf(5) has every key, vmrq(1) every
 * subcommand its --help lists, vmrqd(8) every option its --help lists. */
START_TEST(test_man_pages)
{
    static const char *const pages[] = { "etc/man/vmrq.1", "etc/man/vmrqd.8", "etc/man/vmrqd.conf.5" };
    char out[8192], want[128], *line, *save = NULL;
    const char *key;
    bool in_list = false;

    for (size_t i = 0; i < 3; i++) {
        ck_assert_msg(run(out, sizeof(out), "mandoc -T lint -W warning %s", pages[i]) == 0 && !*out,
                      "%s: %s", pages[i], out);
        ck_assert_msg(run(out, sizeof(out), "mandoc -T utf8 %s >/dev/null", pages[i]) == 0, "%s: %s",
                      pages[i], out);
    }
    for (size_t i = 0; (key = config_key_name(i)); i++) {
        snprintf(want, sizeof(want), ".It Cm %s", key);
        ck_assert_msg(page_has("etc/man/vmrqd.conf.5", want), "vmrqd.conf.5 does not document key %s", key);
    }
    ck_assert_int_eq(run(out, sizeof(out), "%s --help", getenv("VMRQ_CLI")), 0);
    for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[64];
        if (strcmp(line, "Subcommands:") == 0) {
            in_list = true;
            continue;
        }
        if (!in_list || strncmp(line, "  ", 2) != 0 || sscanf(line, "%63s", name) != 1) {
            in_list = in_list && strncmp(line, "  ", 2) == 0;
            continue;
        }
        snprintf(want, sizeof(want), ".It Ic %s", name);
        ck_assert_msg(page_has("etc/man/vmrq.1", want), "vmrq.1 does not document subcommand %s", name);
    }
    ck_assert_int_eq(run(out, sizeof(out), "%s --help", getenv("VMRQD")), 0);
    for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "  -", 3) != 0)
            continue;
        snprintf(want, sizeof(want), ".It Fl %c", line[3]);
        ck_assert_msg(page_has("etc/man/vmrqd.8", want), "vmrqd.8 does not document -%c", line[3]);
    }
}
END_TEST

/* A job of a cron.d file: its command as cron hands it to /bin/sh, and its input. */
struct cron_job {
    char command[2048];
    char input[1024];
};

/* Splits a cron command at its first unescaped % (the rest, each % a newline, is the input)
 * and turns \% into %, as cron does. */
static void
cron_command(const char *text, struct cron_job *job)
{
    char *out = job->command;
    size_t n = 0, cap = sizeof(job->command);
    bool in_input = false;

    job->input[0] = '\0';
    for (const char *p = text; *p && *p != '\n'; p++) {
        if (p[0] == '\\' && p[1] == '%') {
            p++;
        } else if (*p == '%') {
            if (!in_input) {
                out[n] = '\0';
                out = job->input, n = 0, cap = sizeof(job->input), in_input = true;
                continue;
            }
            out[n < cap - 1 ? n++ : n] = '\n';
            continue;
        }
        if (n < cap - 1)
            out[n++] = *p;
    }
    out[n] = '\0';
    if (in_input && n < cap - 1)
        strcat(job->input, "\n");
}

/* Runs a job as cron would: /bin/sh -c, an environment of HOME, LOGNAME, SHELL, PATH and the
 * file's variables (`env`, NAME=value strings) only, its input on stdin. Output into out. */
static int
cron_run(const struct cron_job *job, char *const *env, char *out, size_t size)
{
    int in[2], res[2], status;
    size_t len = 0;
    ssize_t r;
    pid_t pid;

    ck_assert(pipe(in) == 0 && pipe(res) == 0);
    ck_assert((pid = fork()) >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(res[1], 1);
        dup2(res[1], 2);
        close(in[1]);
        close(res[0]);
        execle("/bin/sh", "sh", "-c", job->command, (char *)NULL, env);
        _exit(127);
    }
    close(in[0]);
    close(res[1]);
    ck_assert(write(in[1], job->input, strlen(job->input)) == (ssize_t)strlen(job->input));
    close(in[1]);
    while (len < size - 1 && (r = read(res[0], out + len, size - 1 - len)) > 0)
        len += (size_t)r;
    out[len] = '\0';
    close(res[0]);
    ck_assert(waitpid(pid, &status, 0) == pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Every line of etc/vmrq.cron, run as cron would with the file's variables (its database
 * replaced by the throwaway one, and this build's vmrq first in its PATH), succeeds silently
 * and enqueues what its comment says. */
START_TEST(test_cron_example)
{
    static char vars[16][1200];
    char *env[20], line[4096], out[4096], operator[64] = "";
    const char *cli = getenv("VMRQ_CLI");
    int nenv = 0, jobs = 0;
    FILE *f = fopen("etc/vmrq.cron", "r");

    ck_assert(f != NULL);
    snprintf(vars[nenv], sizeof(vars[0]), "HOME=/");
    env[nenv] = vars[nenv], nenv++;
    snprintf(vars[nenv], sizeof(vars[0]), "LOGNAME=vmrq");
    env[nenv] = vars[nenv], nenv++;
    snprintf(vars[nenv], sizeof(vars[0]), "SHELL=/bin/sh");
    env[nenv] = vars[nenv], nenv++;
    while (fgets(line, sizeof(line), f)) {
        char name[64], value[1024], *eq = strchr(line, '=');
        size_t vlen;

        if (line[0] == '#' || line[0] == '\n' || !eq || (strchr(line, ' ') && strchr(line, ' ') < eq))
            continue;
        ck_assert(sscanf(line, "%63[A-Za-z0-9_]=%1023[^\n]", name, value) == 2);
        vlen = strlen(value);
        if (vlen >= 2 && (value[0] == '"' || value[0] == '\'') && value[vlen - 1] == value[0]) {
            value[vlen - 1] = '\0';
            memmove(value, value + 1, vlen - 1);
        }
        if (strcmp(name, "VMRQ_DB") == 0)
            snprintf(value, sizeof(value), "%s", getenv("VMRQ_DB"));
        if (strcmp(name, "VMRQ_OPERATOR") == 0)
            snprintf(operator, sizeof(operator), "%s", value);
        if (strcmp(name, "PATH") == 0) {
            char dir[512];
            snprintf(dir, sizeof(dir), "%.*s", (int)(strrchr(cli, '/') - cli), cli);
            snprintf(vars[nenv], sizeof(vars[0]), "PATH=%s:%s", dir, value);
        } else {
            snprintf(vars[nenv], sizeof(vars[0]), "%s=%s", name, value);
        }
        env[nenv] = vars[nenv], nenv++;
        ck_assert(nenv < 16);
    }
    env[nenv] = NULL;
    ck_assert_msg(*operator, "etc/vmrq.cron sets no VMRQ_OPERATOR");

    {
        const char *params[1] = { operator };
        PQclear(t_sql(t_db, "INSERT INTO users (name, is_operator) VALUES ('alice', false), ($1, true)", 1, params));
        PQclear(t_sql(t_db, "INSERT INTO nodes (name, uri) VALUES ('kvm1', 'test:///default')", 0, NULL));
        PQclear(t_sql(t_db, "INSERT INTO domains (name, id_owner, id_node, status) VALUES"
                            " ('class-01', 1, 1, 'running'), ('class-02', 1, 1, 'shutdown'),"
                            " ('desk12', 1, 1, 'running')", 0, NULL));
    }
    rewind(f);
    while (fgets(line, sizeof(line), f)) {
        struct cron_job job;
        char fields[6][64];
        int skip = 0;

        if (line[0] == '#' || line[0] == '\n' || !strchr(line, ' ') ||
            (strchr(line, '=') && strchr(line, '=') < strchr(line, ' ')))
            continue; /* a comment, or a variable */
        ck_assert_msg(sscanf(line, "%63s %63s %63s %63s %63s %63s %n", fields[0], fields[1], fields[2],
                             fields[3], fields[4], fields[5], &skip) == 6 && skip > 0, "bad line: %s", line);
        cron_command(line + skip, &job);
        ck_assert_msg(cron_run(&job, env, out, sizeof(out)) == 0 && !*out, "%s %s: %s\n(%s)", fields[1],
                      fields[0], out, job.command);
        jobs++;
    }
    fclose(f);
    ck_assert_int_eq(jobs, 3);
    /* 20:00: the two running desktops; 07:45: the two classroom desktops; all as the operator */
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests r JOIN users u ON u.id = r.uid"
                                     " WHERE u.is_operator AND command = 'shutdown' AND id_domain IN (1, 3)", 0, NULL), 2);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests r JOIN users u ON u.id = r.uid"
                                     " WHERE u.is_operator AND command = 'start' AND id_domain IN (1, 2)", 0, NULL), 2);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests WHERE command = 'refresh_vms'"
                                     " AND args->>'node' = 'kvm1'", 0, NULL), 1);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests", 0, NULL), 5);
}
END_TEST

/* A build step says one short line ("CC backend/clock.c"), V=1 the whole command; make demo
 * ends with how to open its database again, and those lines work. */
START_TEST(test_build_lines_and_demo)
{
    const char *make = getenv("VMRQ_MAKE");
    char out[16384], *tail, script[4096], *lines[5], *save = NULL;
    int n = 0;

    ck_assert_msg(make != NULL, "VMRQ_MAKE is not set: run the tests with make check");
    ck_assert_int_eq(run(out, sizeof(out), "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL %s build -W backend/clock.c",
                         make), 0);
    ck_assert_msg(strstr(out, "CC backend/clock.c\n") && !strstr(out, "-Wall"), "make: %s", out);
    ck_assert_int_eq(run(out, sizeof(out), "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL %s build V=1 -W backend/clock.c",
                         make), 0);
    ck_assert_msg(strstr(out, "-Wall -Wextra -Werror") && strstr(out, "backend/clock.c"), "make V=1: %s", out);

    ck_assert_int_eq(run(out, sizeof(out), "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL %s demo 2>&1 | tail -n 8", make), 0);
    ck_assert_msg((tail = strstr(out, "To keep exploring this database")) != NULL, "demo: %s", out);
    for (char *l = strtok_r(strchr(tail, '\n'), "\n", &save); l && n < 5; l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    ck_assert_int_eq(n, 5);
    /* start the kept cluster, point vmrq at it, read the demo's requests, stop it */
    snprintf(script, sizeof(script), "set -e; %s >/dev/null; %s; vmrq list --status failed; %s >/dev/null",
             lines[0], lines[1], lines[4]);
    ck_assert_msg(run(out, sizeof(out), "env -u PGHOST -u PGUSER -u PGDATABASE sh -c '%s'", script) == 0 &&
                  strstr(out, "desk-alcie"), "%s\n%s", script, out);
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
    tcase_add_test(tc, test_unknown_node_refused);
    tcase_add_test(tc, test_version_and_help);
    tcase_add_test(tc, test_systemd_notify);
    tcase_add_test(tc, test_install_and_run_the_unit);
    tcase_add_test(tc, test_man_pages);
    tcase_add_test(tc, test_cron_example);
    tcase_add_test(tc, test_build_lines_and_demo);
    suite_add_tcase(s, tc);
    return s;
}
