/*
 * tutil.c - helpers of the Check suites (see tutil.h).
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "tutil.h"

static void
quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

PGconn *
t_connect(void)
{
    const char *info = getenv("VMRQ_DB");
    PGconn *conn;

    ck_assert_msg(info != NULL, "VMRQ_DB is not set: run the tests through t/with-pg (make check)");
    conn = PQconnectdb(info);
    ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "cannot connect to %s: %s", info, PQerrorMessage(conn));
    PQsetNoticeProcessor(conn, quiet, NULL);
    return conn;
}

PGconn *t_db;

void
t_db_setup(void)
{
    t_db = t_connect();
    t_reset(t_db);
}

void
t_db_teardown(void)
{
    PQfinish(t_db);
    t_db = NULL;
}

void
t_reset(PGconn *conn)
{
    PQclear(t_sql(conn, "TRUNCATE requests, domains, domain_events, users, nodes, daemons RESTART IDENTITY CASCADE", 0, NULL));
}

PGresult *
t_sql(PGconn *conn, const char *sql, int n, const char *const *params)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);

    ck_assert_msg(st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(conn));
    return res;
}

long long
t_sql_int(PGconn *conn, const char *sql, int n, const char *const *params)
{
    PGresult *res = t_sql(conn, sql, n, params);
    long long v;

    ck_assert_msg(PQntuples(res) > 0 && !PQgetisnull(res, 0, 0), "%s: no value", sql);
    v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

char *
t_sql_error(PGconn *conn, const char *sql, int n, const char *const *params, char state[6])
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    const char *msg, *st;
    char *copy;

    ck_assert_msg(PQresultStatus(res) == PGRES_FATAL_ERROR, "%s: succeeded but should have failed", sql);
    msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    snprintf(state, 6, "%s", st ? st : "");
    copy = strdup(msg ? msg : "");
    PQclear(res);
    return copy;
}

/* Reads all of fd into a new string. */
static char *
slurp(int fd)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    ssize_t n;

    lseek(fd, 0, SEEK_SET);
    while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 2)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    return buf;
}

struct t_cli
t_cli_run(const char *arg, ...)
{
    const char *cli = getenv("VMRQ_CLI");
    char outname[] = "/tmp/vmrq-cli-out.XXXXXX", errname[] = "/tmp/vmrq-cli-err.XXXXXX";
    const char *argv[64];
    struct t_cli r = { 0, NULL, NULL };
    int out, err, status, argc = 0;
    va_list ap;
    pid_t pid;

    ck_assert_msg(cli != NULL, "VMRQ_CLI is not set: run the tests with make check");
    argv[argc++] = cli;
    va_start(ap, arg);
    for (const char *a = arg; a && argc < 63; a = va_arg(ap, const char *))
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;

    out = mkstemp(outname);
    err = mkstemp(errname);
    ck_assert(out >= 0 && err >= 0);
    unlink(outname);
    unlink(errname);
    pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        /* the CLI runs as an operator, but for what only the schema's owner may do */
        bool owner = argc > 2 && strcmp(argv[1], "db") == 0 &&
                     (strcmp(argv[2], "upgrade") == 0 || strcmp(argv[2], "grant") == 0);
        if (!owner && getenv("VMRQ_OPERATOR_DB"))
            setenv("VMRQ_DB", getenv("VMRQ_OPERATOR_DB"), 1);
        dup2(out, 1);
        dup2(err, 2);
        execv(cli, (char *const *)argv);
        _exit(127);
    }
    ck_assert(waitpid(pid, &status, 0) == pid);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(out);
    r.err = slurp(err);
    close(out);
    close(err);
    return r;
}

void
t_cli_free(struct t_cli *r)
{
    free(r->out);
    free(r->err);
}

int
t_lines(const char *s)
{
    int n = 0;

    for (const char *p = s; *p; p++)
        if (*p == '\n')
            n++;
    return n + (*s && s[strlen(s) - 1] != '\n');
}

/* stderr goes to this temporary file between t_log_capture_start() and t_log_capture_stop(). */
static char capture[64];
static int saved_stderr = -1;

void
t_log_capture_start(void)
{
    int fd;

    snprintf(capture, sizeof(capture), "/tmp/vmrq-log.XXXXXX");
    ck_assert((fd = mkstemp(capture)) >= 0);
    fflush(stderr);
    saved_stderr = dup(2);
    dup2(fd, 2);
    close(fd);
    log_init(true, "vmrqd");
    log_set_level(LOG_LEVEL_INFO);
}

char *
t_log_captured(void)
{
    char *all = malloc(1 << 20);
    size_t n = 0;
    ssize_t r;
    int fd;

    ck_assert(all != NULL);
    log_flush();
    fflush(stderr);
    ck_assert((fd = open(capture, O_RDONLY)) >= 0);
    while ((r = read(fd, all + n, (1 << 20) - 1 - n)) > 0)
        n += (size_t)r;
    all[n] = '\0';
    close(fd);
    return all;
}

bool
t_log_wait_captured(const char *text, int timeout_ms)
{
    for (int waited = 0;; waited += 20) {
        char *all = t_log_captured();
        bool found = strstr(all, text) != NULL;

        free(all);
        if (found || waited >= timeout_ms)
            return found;
        usleep(20 * 1000);
    }
}

void
t_log_capture_stop(void)
{
    if (saved_stderr >= 0) {
        dup2(saved_stderr, 2);
        close(saved_stderr);
        saved_stderr = -1;
    }
    unlink(capture);
}

int
t_count_of(const char *all, const char *text)
{
    int n = 0;

    for (const char *p = all; (p = strstr(p, text)); p += strlen(text))
        n++;
    return n;
}

void
t_node_ensure(PGconn *conn, const char *config)
{
    const char *p = strstr(config, "node = ");
    const char *params[1];
    char name[256];

    if (p && (p == config || p[-1] == '\n')) {
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(p + 7, "\n"), p + 7);
    } else {
        ck_assert(gethostname(name, sizeof(name)) == 0);
        name[sizeof(name) - 1] = '\0';
    }
    params[0] = name;
    PQclear(t_sql(conn, "INSERT INTO nodes (name, uri) VALUES ($1, 'test:///default') ON CONFLICT (name) DO NOTHING",
                  1, params));
}

void
t_daemon_spawn(struct t_daemon *d, const char *config, bool valgrind, const char *database)
{
    const char *vmrqd = getenv("VMRQD");
    PGconn *owner = t_connect();
    FILE *f;
    int fd;

    t_node_ensure(owner, config);
    PQfinish(owner);

    ck_assert_msg(vmrqd != NULL, "VMRQD is not set: run the tests with make check");
    snprintf(d->conf, sizeof(d->conf), "/tmp/vmrqd-test-conf.XXXXXX");
    snprintf(d->log, sizeof(d->log), "/tmp/vmrqd-test-log.XXXXXX");
    ck_assert((fd = mkstemp(d->conf)) >= 0);
    ck_assert((f = fdopen(fd, "w")) != NULL);
    fprintf(f, "cleanup_interval = 0\nrefresh_interval = 0\n%s\n", config);
    fclose(f);
    ck_assert((fd = mkstemp(d->log)) >= 0);

    d->pid = fork();
    ck_assert(d->pid >= 0);
    if (d->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (database || (database = getenv("VMRQ_DAEMON_DB")))
            setenv("VMRQ_DB", database, 1);
        dup2(fd, 2);
        dup2(fd, 1);
        if (valgrind)
            execlp("valgrind", "valgrind", "-q", "--leak-check=full", "--show-leak-kinds=definite,indirect",
                   "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99", vmrqd, "-d", "-f",
                   d->conf, (char *)NULL);
        else
            execl(vmrqd, vmrqd, "-d", "-f", d->conf, (char *)NULL);
        _exit(127);
    }
    close(fd);
}

void
t_daemon_start(struct t_daemon *d, const char *config, bool valgrind)
{
    char pidbuf[16];
    const char *params[1] = { pidbuf };

    t_daemon_spawn(d, config, valgrind, NULL);
    snprintf(pidbuf, sizeof(pidbuf), "%d", d->pid);
    {
        PGconn *c = t_connect();
        d->id = 0;
        for (int i = 0; i < 3000 && d->id == 0; i++) {
            PGresult *res = PQexecParams(c, "SELECT id FROM daemons WHERE pid = $1::int AND stopped_at IS NULL",
                                         1, NULL, params, NULL, NULL, 0);
            if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
                d->id = atoi(PQgetvalue(res, 0, 0));
            PQclear(res);
            if (!d->id) {
                struct timespec ts = { 0, 10 * 1000000 };
                ck_assert_msg(waitpid(d->pid, NULL, WNOHANG) == 0, "vmrqd exited at start-up; see %s", d->log);
                nanosleep(&ts, NULL);
            }
        }
        PQfinish(c);
    }
    ck_assert_msg(d->id > 0, "vmrqd did not register within 30 s; see %s", d->log);
}

/* A daemon that did not stop on SIGTERM: where its threads are (gdb, if the machine has it) and
 * the end of its log but for the requests done, on stderr: a hang seen once in CI explains itself. */
static void
report_stuck(const struct t_daemon *d, int timeout_ms)
{
    char cmd[256];

    fprintf(stderr, "vmrqd (pid %d) still runs %d ms after SIGTERM; its threads and the end of %s:\n", d->pid,
            timeout_ms, d->log);
    fflush(stderr);
    snprintf(cmd, sizeof(cmd), "command -v gdb >/dev/null && gdb -q -batch -p %d -ex 'thread apply all bt' 2>&1"
                               " | grep -E '^(Thread|#)' >&2; grep -v '): done in' %s | tail -n 30 >&2", d->pid, d->log);
    if (system(cmd) != 0)
        fprintf(stderr, "(could not read its threads or its log)\n");
}

int
t_daemon_wait(struct t_daemon *d, int sig, int timeout_ms)
{
    int status;

    if (d->pid <= 0)
        return -1;
    if (sig)
        kill(d->pid, sig);
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        struct timespec ts = { 0, 10 * 1000000 };
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            d->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        nanosleep(&ts, NULL);
    }
    if (sig == SIGTERM)
        report_stuck(d, timeout_ms);
    return -1;
}

void
t_daemon_cleanup(struct t_daemon *d)
{
    if (d->pid > 0) {
        kill(d->pid, SIGKILL);
        waitpid(d->pid, NULL, 0);
        d->pid = 0;
    }
    unlink(d->conf);
    if (!getenv("VMRQ_KEEP_LOGS")) /* set it to read the daemons' logs after a failure */
        unlink(d->log);
}

char *
t_daemon_log(const struct t_daemon *d)
{
    int fd = open(d->log, O_RDONLY);
    char *all;

    if (fd < 0)
        return strdup("");
    all = slurp(fd);
    close(fd);
    return all;
}

bool
t_daemon_logged(const struct t_daemon *d, const char *text)
{
    char *all = t_daemon_log(d);
    bool found = strstr(all, text) != NULL;

    free(all);
    return found;
}

const char *
t_outcome(PGconn *conn, long long id)
{
    static char buf[512];
    char idbuf[24];
    const char *params[1] = { idbuf };
    PGresult *res;

    snprintf(idbuf, sizeof(idbuf), "%lld", id);
    res = t_sql(conn, "SELECT status, coalesce(error, '') FROM requests WHERE id = $1::bigint", 1, params);
    snprintf(buf, sizeof(buf), "%s%s%s", PQgetvalue(res, 0, 0), *PQgetvalue(res, 0, 1) ? ": " : "",
             PQgetvalue(res, 0, 1));
    PQclear(res);
    return buf;
}

bool
t_daemon_wait_logged(const struct t_daemon *d, const char *text, int timeout_ms)
{
    bool found = t_daemon_logged(d, text);

    for (int waited = 0; !found && waited < timeout_ms; waited += 10) {
        struct timespec ts = { 0, 10 * 1000000 };
        nanosleep(&ts, NULL);
        found = t_daemon_logged(d, text);
    }
    return found;
}

long long
t_wait_value(PGconn *conn, const char *sql, long long want, int timeout_ms)
{
    long long v = t_sql_int(conn, sql, 0, NULL);

    for (int waited = 0; v != want && waited < timeout_ms; waited += 10) {
        struct timespec ts = { 0, 10 * 1000000 };
        nanosleep(&ts, NULL);
        v = t_sql_int(conn, sql, 0, NULL);
    }
    return v;
}
