/*
 * check_guest.c - the real-guest tier: a real vmrqd driving a private libvirtd in session mode
 * (t/with-libvirtd) that runs a tiny Debian guest (t/guest/) in QEMU software emulation. Every
 * scenario goes `vmrq request` -> vmrqd -> libvirtd -> QEMU, and ends with domains.status equal
 * to what `virsh domstate` says and domain_events telling the story. A guest with a VNC display
 * is watched by a viewer (a TCP connection that reads the RFB banner) that comes and goes.
 *
 * When t/with-libvirtd could not set the tier up, VMRQ_GUEST_SKIP says why: the suite then has
 * no tests and check_main prints "guest: SKIPPED: <why>" in the summary.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "readhold.h"
#include "tutil.h"

#define TEMPLATE "t/guest/domain.xml.in"
#define AGENT_CHANNEL "<controller type='virtio-serial'/><channel type='unix'>" \
                      "<target type='virtio' name='org.qemu.guest_agent.0'/></channel>"

static struct t_daemon daemon_;
static const char *uri, *dir;

/* Runs a shell command line (printf-style); returns its exit status. With `out`, its stdout. */
static int __attribute__((format(printf, 3, 4)))
sh(char *out, size_t size, const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    FILE *p;
    size_t n = 0;
    int status;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    ck_assert((p = popen(cmd, "r")) != NULL);
    if (out) {
        n = fread(out, 1, size - 1, p);
        out[n] = '\0';
        while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
            out[--n] = '\0';
    } else {
        char sink[512];
        while (fread(sink, 1, sizeof(sink), p) > 0)
            ;
    }
    status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Defines guest `name` from the template: `cmdline` for its kernel, with the agent's channel
 * or not. */
static void
define_with(const char *name, const char *cmdline, bool agent, const char *disks)
{
    char xml[4096], out[8192], path[256];
    FILE *f = fopen(TEMPLATE, "r");
    size_t n;
    char *o = out;

    ck_assert_msg(f != NULL, "cannot read %s", TEMPLATE);
    n = fread(xml, 1, sizeof(xml) - 1, f);
    xml[n] = '\0';
    fclose(f);
    for (const char *p = xml; *p && o < out + sizeof(out) - 512;) {
        const char *with = NULL;
        size_t skip = 0;
        if (strncmp(p, "@NAME@", 6) == 0) with = name, skip = 6;
        else if (strncmp(p, "@DIR@", 5) == 0) with = dir, skip = 5;
        else if (strncmp(p, "@CMDLINE@", 9) == 0) with = cmdline, skip = 9;
        else if (strncmp(p, "@AGENT@", 7) == 0) with = agent ? AGENT_CHANNEL : "", skip = 7;
        else if (strncmp(p, "@DISKS@", 7) == 0) with = disks, skip = 7;
        if (with) {
            o += snprintf(o, out + sizeof(out) - o, "%s", with);
            p += skip;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    snprintf(path, sizeof(path), "%s/%s.xml", dir, name);
    ck_assert((f = fopen(path, "w")) != NULL);
    fputs(out, f);
    fclose(f);
    ck_assert_int_eq(sh(NULL, 0, "virsh -q -c '%s' define '%s' 2>&1", uri, path), 0);
}

static void
define(const char *name, const char *cmdline, bool agent)
{
    define_with(name, cmdline, agent, "");
}

/* Whether the guest's serial console has printed `text` (the file is rewritten at each boot). */
static bool
serial_says(const char *name, const char *text)
{
    static char buf[65536];
    char path[256];
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "%s/%s.serial", dir, name);
    if (!(f = fopen(path, "r")))
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    for (size_t i = 0; i < n; i++) /* after truncate_serial(), QEMU writes on at its offset */
        if (buf[i] == '\0')
            buf[i] = ' ';
    return strstr(buf, text) != NULL;
}

/* Empties the serial log (QEMU appends to it while the guest runs). */
static void
truncate_serial(const char *name)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s.serial", dir, name);
    ck_assert_int_eq(truncate(path, 0), 0);
}

static void
wait_serial(const char *name, const char *text, int timeout_ms)
{
    for (int waited = 0; !serial_says(name, text); waited += 50) {
        ck_assert_msg(waited < timeout_ms, "%s: no '%s' on the serial console within %d ms", name, text, timeout_ms);
        sleep_ms(50);
    }
}

/* `vmrq request ...`, which must exit with `want`; returns its stderr's first line (static). */
static const char *
request(int want, const char *command, const char *name, const char *extra1, const char *extra2)
{
    static char err[512];
    char namearg[128];
    struct t_cli r;

    snprintf(namearg, sizeof(namearg), "name=%s", name);
    r = t_cli_run("request", command, "uid=1", namearg, "--wait", extra1, extra2, NULL);
    snprintf(err, sizeof(err), "%s", r.err);
    ck_assert_msg(r.status == want, "vmrq request %s %s: exit %d, want %d: %s", command, name, r.status, want, r.err);
    t_cli_free(&r);
    return err;
}

/* domains.status of `name`, and whether it is what virsh domstate says. */
static void
assert_matches_virsh(const char *name, const char *want)
{
    const char *params[1] = { name };
    char state[128];
    PGresult *res = t_sql(t_db, "SELECT status FROM domains WHERE name = $1", 1, params);
    const char *status;
    const char *virsh_says;

    ck_assert_int_eq(PQntuples(res), 1);
    status = PQgetvalue(res, 0, 0);
    ck_assert_int_eq(sh(state, sizeof(state), "virsh -q -c '%s' domstate '%s'", uri, name), 0);
    virsh_says = strcmp(state, "shut off") == 0 ? (strcmp(status, "hibernated") == 0 ? "hibernated" : "shutdown")
                                                 : state;
    ck_assert_msg(strcmp(status, virsh_says) == 0, "%s: domains.status '%s', virsh domstate '%s'", name, status, state);
    ck_assert_str_eq(status, want);
    PQclear(res);
}

/* Waits until domains.status of `name` is `want` (events are asynchronous). */
static void
wait_status(const char *name, const char *want, int timeout_ms)
{
    const char *params[2] = { name, want };
    PGconn *c = t_db;

    for (int waited = 0;; waited += 20) {
        if (t_sql_int(c, "SELECT count(*) FROM domains WHERE name = $1 AND status = $2", 2, params) == 1)
            return;
        ck_assert_msg(waited < timeout_ms, "%s: status not '%s' within %d ms", name, want, timeout_ms);
        sleep_ms(20);
    }
}

/* The domain's events, oldest first: "started/booted stopped/shutdown ..." (static). */
static const char *
story(const char *name)
{
    static char buf[2048];
    const char *params[1] = { name };
    PGresult *res = t_sql(t_db, "SELECT coalesce(string_agg(event || '/' || detail, ' ' ORDER BY id), '')"
                                "  FROM domain_events WHERE domain = $1", 1, params);

    snprintf(buf, sizeof(buf), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return buf;
}

/* Asserts that the story of `name` holds the NULL-terminated events in this order. */
static void
assert_story(const char *name, ...)
{
    const char *s = story(name), *at = s, *ev;
    va_list ap;

    va_start(ap, name);
    while ((ev = va_arg(ap, const char *))) {
        const char *found = strstr(at, ev);
        ck_assert_msg(found != NULL, "%s: no '%s' after '%.*s' in its events: %s", name, ev, (int)(at - s), s, s);
        at = found + strlen(ev);
    }
    va_end(ap);
}

/* `command` through vmrq; then domains.status becomes `status`, as virsh says too. */
static void
step(const char *command, const char *name, const char *status)
{
    request(0, command, name, NULL, NULL);
    wait_status(name, status, 5000);
    assert_matches_virsh(name, status);
}

/* Defines the guest, lets vmrqd find it (refresh_vms), gives it to alice and starts it through
 * vmrq. */
static void
define_and_start(const char *name, const char *cmdline, bool agent)
{
    const char *params[1] = { name };
    struct t_cli r;

    define(name, cmdline, agent);
    r = t_cli_run("request", "refresh_vms", "--wait", NULL);
    ck_assert_msg(r.status == 0, "refresh_vms: %s", r.err);
    t_cli_free(&r);
    PQclear(t_sql(t_db, "UPDATE domains SET id_owner = 1 WHERE name = $1", 1, params));
    request(0, "start", name, NULL, NULL);
}

/* define_and_start(), then waits until the guest says it is ready. */
static void
boot(const char *name, const char *cmdline, bool agent)
{
    define_and_start(name, cmdline, agent);
    wait_serial(name, "GUEST-READY", 60000);
    assert_matches_virsh(name, "running");
}

static void
setup(void)
{
    char conf[1024];

    t_db_setup();
    uri = getenv("VMRQ_GUEST_URI");
    dir = getenv("VMRQ_GUEST_DIR");
    /* a test that failed while libvirtd was stopped (this suite's restart, the chaos suite's)
     * left it so: started again, the next test is not failed for it */
    ck_assert_int_eq(sh(NULL, 0, "virsh -q -c '%s' uri >/dev/null 2>&1 || '%s' start", uri,
                        getenv("VMRQ_GUEST_LIBVIRTD")), 0);
    PQclear(t_sql(t_db, "INSERT INTO users (name, is_operator, is_admin) VALUES ('alice', false, false)", 0, NULL));
    PQclear(t_sql(t_db, "INSERT INTO nodes (name, uri) VALUES ('guest', 'qemu:///session')", 0, NULL));
    memset(&daemon_, 0, sizeof(daemon_));
    snprintf(conf, sizeof(conf), "libvirt_uri = %s\nnode = guest\nlease = 1s\nretry_backoff = 1s\nlog_level = info\n", uri);
    t_daemon_start(&daemon_, conf, false);
}

static void
teardown(void)
{
    char names[4096];

    t_daemon_cleanup(&daemon_);
    /* every guest of the test goes, whatever state it was left in */
    if (sh(names, sizeof(names), "virsh -q -c '%s' list --all --name", uri) == 0)
        for (char *n = strtok(names, "\n"); n; n = strtok(NULL, "\n")) {
            sh(NULL, 0, "virsh -q -c '%s' destroy '%s' >/dev/null 2>&1", uri, n);
            sh(NULL, 0, "virsh -q -c '%s' undefine --managed-save '%s' >/dev/null 2>&1", uri, n);
        }
    t_db_teardown();
}

/* The power button: the guest powers off, the event says how, and the follow-up force_shutdown
 * that the timeout queued is moot: done, without a hypervisor call. */
START_TEST(test_shutdown_acpi)
{
    const char *err;

    boot("g-acpi", "", false);
    err = request(1, "ping_agent", "g-acpi", NULL, NULL); /* no agent channel in this guest */
    ck_assert_msg(strstr(err, "g-acpi: ") && strstr(err, "agent") && strstr(err, "not configured"), "%s", err);
    request(0, "shutdown", "g-acpi", "mode=acpi", "timeout=60");
    wait_serial("g-acpi", "GUEST-POWER-BUTTON", 20000);
    wait_status("g-acpi", "shutdown", 20000);
    assert_matches_virsh("g-acpi", "shutdown");
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE command = 'force_shutdown'"
                                        " AND status = 'done' AND output->>'note' = 'domain already down'", 1, 5000), 1);
    assert_story("g-acpi", "started/booted", "stopped/shutdown", NULL);
}
END_TEST

/* A guest that ignores the power button: after `timeout` the follow-up force_shutdown destroys it. */
START_TEST(test_ignored_power_button_is_forced)
{
    boot("g-deaf", "vmrq.power=ignore", false);
    request(0, "shutdown", "g-deaf", "mode=acpi", "timeout=2");
    sleep_ms(1000);
    assert_matches_virsh("g-deaf", "running"); /* still up: the guest did not react */
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE command = 'force_shutdown'"
                                        " AND status = 'done'", 1, 20000), 1);
    wait_status("g-deaf", "shutdown", 5000);
    assert_matches_virsh("g-deaf", "shutdown");
    ck_assert(!serial_says("g-deaf", "GUEST-POWER-BUTTON"));
    assert_story("g-deaf", "started/booted", "stopped/destroyed", NULL);
}
END_TEST

/* Pause and resume; hibernate (managed save) and start again: restored, not booted. */
START_TEST(test_pause_resume_hibernate_restore)
{
    boot("g-sleep", "", false);
    step("pause", "g-sleep", "paused");
    step("resume", "g-sleep", "running");
    step("hibernate", "g-sleep", "hibernated");
    step("start", "g-sleep", "running");
    assert_story("g-sleep", "started/booted", "suspended/paused", "resumed/unpaused", "stopped/saved",
                 "started/restored", NULL);
}
END_TEST

/* A polite reboot: the guest powers off on the button, QEMU starts it again; the domain stays
 * up and its events say it rebooted. */
START_TEST(test_reboot)
{
    boot("g-reboot", "", false);
    truncate_serial("g-reboot");
    request(0, "reboot", "g-reboot", "mode=acpi", NULL);
    wait_serial("g-reboot", "GUEST-READY", 60000);
    assert_matches_virsh("g-reboot", "running");
    assert_story("g-reboot", "started/booted", "rebooted/guest", NULL);
    ck_assert_msg(strstr(story("g-reboot"), "stopped") == NULL, "%s", story("g-reboot"));
}
END_TEST

/* A domain destroyed behind vmrq's back is noticed by its event within a second. */
START_TEST(test_destroyed_behind_our_back)
{
    struct timespec t0, t1;
    long ms;

    boot("g-victim", "", false);
    ck_assert_int_eq(sh(NULL, 0, "virsh -q -c '%s' destroy g-victim", uri), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    wait_status("g-victim", "shutdown", 1000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    ck_assert_int_lt(ms, 1000);
    assert_matches_virsh("g-victim", "shutdown");
    assert_story("g-victim", "started/booted", "stopped/destroyed", NULL);
}
END_TEST

/* libvirtd killed; meanwhile one guest dies and a request is made; libvirtd back: vmrqd
 * reconnects, refreshes (the table is right again), runs the request, and hears events again. */
START_TEST(test_libvirtd_restart)
{
    const char *ctl = getenv("VMRQ_GUEST_LIBVIRTD");
    char pidfile[512];
    struct t_cli r;

    boot("g-orphan", "", false);
    ck_assert_int_eq(sh(NULL, 0, "'%s' stop", ctl), 0);
    /* The guest dies while nobody is listening (its QEMU killed, as a crash would). */
    snprintf(pidfile, sizeof(pidfile), "%s/../run/libvirt/qemu/run/g-orphan.pid", dir);
    ck_assert_int_eq(sh(NULL, 0, "kill -9 $(cat '%s')", pidfile), 0);
    sleep_ms(500);
    ck_assert_msg(strstr(story("g-orphan"), "stopped") == NULL, "%s", story("g-orphan")); /* nothing heard */
    /* asked while libvirtd is away (once vmrqd knows it), with no retry: it waits, and runs once
     * libvirtd is back */
    for (int waited = 0; !t_daemon_logged(&daemon_, "hypervisor connection lost"); waited += 20) {
        ck_assert_msg(waited < 15000, "vmrqd did not notice libvirtd's death");
        sleep_ms(20);
    }
    r = t_cli_run("request", "refresh_machine", "uid=1", "name=g-orphan", NULL);
    ck_assert_msg(r.status == 0, "refresh_machine: %s", r.err);
    t_cli_free(&r);
    ck_assert_int_eq(sh(NULL, 0, "'%s' start", ctl), 0);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE command = 'refresh_machine'"
                                        " AND status = 'done' AND attempts = 1", 1, 15000), 1);
    wait_status("g-orphan", "shutdown", 15000);
    assert_matches_virsh("g-orphan", "shutdown");
    ck_assert(t_daemon_logged(&daemon_, "hypervisor connection lost"));
    ck_assert(t_daemon_logged(&daemon_, "hypervisor connection back"));
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests WHERE command = 'refresh_vms'"
                                     " AND args->>'node' = 'guest' AND status = 'done'", 0, NULL), 1);
    /* events flow again on the new connection */
    request(0, "start", "g-orphan", NULL, NULL);
    wait_serial("g-orphan", "GUEST-READY", 60000);
    assert_matches_virsh("g-orphan", "running");
    assert_story("g-orphan", "started/booted", "started/booted", NULL);
}
END_TEST

/* The guest agent: not there yet -> libvirt's clear message (or retried with retry=N); once it
 * has connected, ping_agent and set_time answer, and shutdown mode=agent powers off. */
START_TEST(test_guest_agent)
{
    const char *err;

    define_and_start("g-agent", "", true);
    err = request(1, "ping_agent", "g-agent", NULL, NULL); /* the guest is still booting */
    ck_assert_msg(strstr(err, "agent") != NULL && strstr(err, "not connected") != NULL, "%s", err);
    request(0, "ping_agent", "g-agent", "retry=30", NULL);  /* retried until the agent answers */
    assert_story("g-agent", "started/booted", "agent/connected", NULL);
    ck_assert_int_gt(t_sql_int(t_db, "SELECT (output->>'guest_time')::bigint FROM requests"
                                     " WHERE command = 'ping_agent' AND status = 'done'", 0, NULL),
                     (long long)time(NULL) - 3600);
    request(0, "set_time", "g-agent", NULL, NULL);
    request(0, "shutdown", "g-agent", "mode=agent", NULL);
    wait_serial("g-agent", "GUEST-SHUTDOWN", 20000);
    wait_status("g-agent", "shutdown", 20000);
    assert_matches_virsh("g-agent", "shutdown");
    assert_story("g-agent", "started/booted", "agent/connected", "stopped/shutdown", NULL);
}
END_TEST

/* The `default` dir pool of the session libvirtd, in `pool` (its directory), made if need be. */
static void
dir_pool(char *pool, size_t size)
{
    ck_assert_msg(sh(NULL, 0, "command -v qemu-img >/dev/null") == 0, "qemu-img is needed (Debian: qemu-utils)");
    snprintf(pool, size, "%s/pool", dir);
    if (sh(NULL, 0, "virsh -q -c '%s' pool-info default >/dev/null 2>&1", uri) != 0)
        ck_assert_int_eq(sh(NULL, 0, "virsh -q -c '%s' pool-define-as default dir --target '%s' >/dev/null 2>&1 &&"
                                     " virsh -q -c '%s' pool-build default >/dev/null 2>&1 &&"
                                     " virsh -q -c '%s' pool-start default >/dev/null 2>&1", uri, pool, uri, uri), 0);
}

/* A base in a real dir pool, qcow2 (libvirt's storage driver, qemu-img): prepare_base copies the
 * disk; three clones made at once are overlays whose backing file is the base volume, whose
 * content a running clone leaves as it was; one boots; remove_base is refused while clones
 * exist; remove_domain leaves neither definition nor overlay; a volatile clone is gone as soon as
 * its force_shutdown has stopped it. */
START_TEST(test_bases_and_clones)
{
    char disk[1024], out[4096], sum[128], after[128], pool[512], ids[3][32];
    struct t_cli r;

    dir_pool(pool, sizeof(pool));
    ck_assert_int_eq(sh(NULL, 0, "virsh -q -c '%s' vol-create-as default g-base.qcow2 16M --format qcow2 >/dev/null 2>&1",
                        uri), 0);
    snprintf(disk, sizeof(disk), "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                                 "<source file='%s/g-base.qcow2'/><target dev='vda' bus='virtio'/></disk>", pool);
    define_with("g-base", "", false, disk);
    PQclear(t_sql(t_db, "INSERT INTO users (name, is_operator) VALUES ('olga', true)", 0, NULL));
    r = t_cli_run("request", "refresh_vms", "--wait", NULL);
    t_cli_free(&r);
    r = t_cli_run("request", "prepare_base", "uid=2", "name=g-base", "--wait", NULL);
    ck_assert_msg(r.status == 0, "prepare_base: %s", r.err);
    t_cli_free(&r);
    ck_assert_int_eq(sh(sum, sizeof(sum), "sha256sum '%s/g-base-vda.base.qcow2' | cut -d' ' -f1", pool), 0);
    PQclear(t_sql(t_db, "UPDATE domains SET is_public = true WHERE name = 'g-base'", 0, NULL));

    /* three students at once */
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof(name), "name=g-c%d", i + 1);
        r = t_cli_run("request", "clone", "uid=1", "base=g-base", name, NULL);
        ck_assert_msg(r.status == 0, "clone: %s", r.err);
        snprintf(ids[i], sizeof(ids[i]), "%.*s", (int)strcspn(r.out, "\n"), r.out);
        t_cli_free(&r);
    }
    for (int i = 0; i < 3; i++) {
        r = t_cli_run("wait", ids[i], "--timeout", "60", NULL);
        ck_assert_msg(r.status == 0, "clone %s: %s", ids[i], r.err);
        t_cli_free(&r);
        ck_assert_int_eq(sh(out, sizeof(out), "qemu-img info -U --output=json '%s/g-c%d-vda.qcow2'", pool, i + 1), 0);
        ck_assert_msg(strstr(out, "g-base-vda.base.qcow2"), "g-c%d's overlay: %s", i + 1, out);
    }
    request(0, "start", "g-c1", NULL, NULL);
    wait_serial("g-c1", "GUEST-READY", 60000); /* a log of its own: g-base.serial became g-c1.serial */
    assert_matches_virsh("g-c1", "running");
    ck_assert_int_eq(sh(after, sizeof(after), "sha256sum '%s/g-base-vda.base.qcow2' | cut -d' ' -f1", pool), 0);
    ck_assert_str_eq(after, sum);

    r = t_cli_run("request", "remove_base", "uid=2", "name=g-base", "--wait", NULL);
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "remove_base: g-base has 3 clones; remove them first"), "%s", r.err);
    t_cli_free(&r);

    request(0, "remove_domain", "g-c2", NULL, NULL);
    ck_assert_int_ne(sh(NULL, 0, "virsh -q -c '%s' dominfo g-c2 >/dev/null 2>&1", uri), 0);
    ck_assert_int_ne(sh(NULL, 0, "test -e '%s/g-c2-vda.qcow2'", pool), 0);

    r = t_cli_run("request", "clone", "uid=1", "base=g-base", "name=g-tmp", "volatile=true", "start=true", "--wait", NULL);
    ck_assert_msg(r.status == 0, "volatile clone: %s", r.err);
    t_cli_free(&r);
    request(0, "force_shutdown", "g-tmp", NULL, NULL);
    /* gone, definition, overlay and row, as soon as it has stopped: the event and one request,
     * some 50 ms; the margin is for a loaded machine, and for the sanitizers' slower vmrqd */
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domains WHERE name = 'g-tmp'", 0,
                                  getenv("VMRQ_SANITIZED") ? 6000 : 2000), 0);
    ck_assert_int_ne(sh(NULL, 0, "virsh -q -c '%s' dominfo g-tmp >/dev/null 2>&1", uri), 0);
    ck_assert_int_ne(sh(NULL, 0, "test -e '%s/g-tmp-vda.qcow2'", pool), 0);
}
END_TEST

/* prepare_base of a disk with data: while the pool's qemu-img copies it, the request's progress
 * says how far the copy has got. The copy is held half-way (its reads of the source wait, see
 * readhold.h) so that the once-a-second report is seen however fast or loaded the machine is;
 * then it runs to the end. */
START_TEST(test_base_progress)
{
    char disk[1024], pool[512], src[600], id[32];
    const char *params[1] = { id };
    struct t_readhold *hold;
    long long mid;
    struct t_cli r;

    dir_pool(pool, sizeof(pool));
    /* the disk belongs to libvirtd's user, as a volume the pool made would */
    ck_assert_int_eq(sh(NULL, 0, "head -c 256M /dev/urandom > '%s/g-big.raw' && qemu-img convert -O qcow2"
                                 " '%s/g-big.raw' '%s/g-big.qcow2' && rm '%s/g-big.raw' && chmod 644 '%s/g-big.qcow2'"
                                 " && chown --reference='%s' '%s/g-big.qcow2' && virsh -q -c '%s' pool-refresh default >/dev/null",
                        dir, dir, pool, dir, pool, pool, pool, uri), 0);
    snprintf(disk, sizeof(disk), "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                                 "<source file='%s/g-big.qcow2'/><target dev='vda' bus='virtio'/></disk>", pool);
    define_with("g-big", "", false, disk);
    PQclear(t_sql(t_db, "INSERT INTO users (name, is_operator) VALUES ('olga', true)", 0, NULL));
    r = t_cli_run("request", "refresh_vms", "--wait", NULL);
    t_cli_free(&r);
    /* qemu-img reads the source 2 MiB at a time: 32 reads are some 60 MiB of its 256 */
    snprintf(src, sizeof(src), "%s/g-big.qcow2", pool);
    hold = t_readhold_start(src, "qemu-img", 32);
    ck_assert_msg(hold != NULL, "cannot hold the reads of %s: %s (fanotify needs root, as make check is run)", src,
                  strerror(errno));
    r = t_cli_run("request", "prepare_base", "uid=2", "name=g-big", NULL);
    ck_assert_msg(r.status == 0, "prepare_base: %s", r.err);
    snprintf(id, sizeof(id), "%.*s", (int)strcspn(r.out, "\n"), r.out);
    t_cli_free(&r);
    if (!t_readhold_wait(hold, 30000)) {
        PGresult *res = t_sql(t_db, "SELECT status || ' ' || coalesce(error, '') FROM requests WHERE id = $1", 1, params);
        ck_abort_msg("the copy was not held within 30 s: prepare_base is %s", PQgetvalue(res, 0, 0));
    }
    mid = t_wait_value(t_db, "SELECT (progress > 0.03 AND progress < 1)::int FROM requests"
                             " WHERE command = 'prepare_base'", 1, 10000);
    t_readhold_free(hold);
    ck_assert_msg(mid == 1, "the progress of a copy held part-way was not written");
    r = t_cli_run("wait", id, "--timeout", "60", NULL);
    ck_assert_msg(r.status == 0, "prepare_base: %s", r.err);
    t_cli_free(&r);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT (progress = 1)::int FROM requests WHERE id = $1", 1, params), 1);
}
END_TEST

/* A viewer's TCP connection to the display at 127.0.0.1:port, once the RFB banner has come:
 * the socket, which the caller closes. */
static int
vnc_connect(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    char banner[13] = "";
    size_t got = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert(fd >= 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "cannot connect to the display at port %d", port);
    while (got < 12) {
        ssize_t n = read(fd, banner + got, 12 - got);
        ck_assert_msg(n > 0, "the display at port %d closed before its banner", port);
        got += (size_t)n;
    }
    ck_assert_msg(strncmp(banner, "RFB 003.", 8) == 0, "not an RFB banner: '%s'", banner);
    return fd;
}

/* The display: `vmrq display` gives the port `virsh domdisplay` gives; a viewer connecting
 * shows at once as domains.viewer connected, leaving as disconnected; with
 * shutdown_disconnected = 2, a viewer back within the grace keeps the guest running, and the
 * guest whose viewer stays away is shut down by ACPI within ten seconds. */
START_TEST(test_display_and_viewer)
{
    char virsh[256], want[64];
    struct t_cli r;
    const char *p;
    int port, fd;

    define_with("g-vnc", "", false, "<graphics type='vnc' autoport='yes' listen='127.0.0.1'/>");
    r = t_cli_run("request", "refresh_vms", "--wait", NULL);
    t_cli_free(&r);
    PQclear(t_sql(t_db, "UPDATE domains SET id_owner = 1 WHERE name = 'g-vnc'", 0, NULL));
    request(0, "start", "g-vnc", NULL, NULL);
    wait_serial("g-vnc", "GUEST-READY", 60000);

    r = t_cli_run("display", "g-vnc", "--json", NULL);
    ck_assert_msg(r.status == 0, "display: %s", r.err);
    ck_assert_msg((p = strstr(r.out, "\"port\": ")) != NULL, "%s", r.out);
    port = atoi(p + 8);
    ck_assert_msg(strstr(r.out, "\"type\": \"vnc\"") && strstr(r.out, "\"host\": \"127.0.0.1\""), "%s", r.out);
    t_cli_free(&r);
    ck_assert_int_eq(sh(virsh, sizeof(virsh), "virsh -q -c '%s' domdisplay g-vnc", uri), 0);
    snprintf(want, sizeof(want), "vnc://127.0.0.1:%d", port - 5900);
    ck_assert_str_eq(virsh, want);

    r = t_cli_run("domain", "set", "g-vnc", "shutdown_disconnected=2", NULL);
    ck_assert_msg(r.status == 0, "domain set: %s", r.err);
    t_cli_free(&r);
    fd = vnc_connect(port);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domains WHERE name = 'g-vnc' AND viewer = 'connected'"
                                        " AND viewer_address LIKE '127.0.0.1:%'", 1, 1000), 1);
    close(fd);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domains WHERE name = 'g-vnc' AND viewer = 'disconnected'",
                                  1, 1000), 1);
    /* back within the grace: the shutdown the leaving enqueued is moot */
    fd = vnc_connect(port);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE command = 'shutdown'"
                                        " AND status = 'cancelled' AND args->>'policy' = 'unwatched'", 1, 1000), 1);
    /* past the time it was due: still running */
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE command = 'shutdown'"
                                        " AND args->>'policy' = 'unwatched' AND at_time < now() - interval '0.5 s'",
                                  1, 5000), 1);
    assert_matches_virsh("g-vnc", "running");
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests WHERE command = 'shutdown' AND status <> 'cancelled'",
                               0, NULL), 0);

    /* she walks away: shut down by the power button after the grace */
    close(fd);
    wait_status("g-vnc", "shutdown", 10000);
    assert_matches_virsh("g-vnc", "shutdown");
    ck_assert(serial_says("g-vnc", "GUEST-POWER-BUTTON"));
    assert_story("g-vnc", "started/booted", "graphics/connect", "graphics/disconnect", "graphics/connect",
                 "graphics/disconnect", "stopped/shutdown", NULL);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM domains WHERE name = 'g-vnc' AND display_port IS NULL",
                               0, NULL), 1);
}
END_TEST

Suite *
guest_suite(void)
{
    Suite *s = suite_create("guest");
    TCase *tc;

    if (getenv("VMRQ_GUEST_SKIP") || !getenv("VMRQ_GUEST_URI"))
        return s; /* check_main says SKIPPED, with the reason (and no test case leaks) */
    tc = tcase_create("guest");
    tcase_set_tags(tc, "db libvirt guest");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_shutdown_acpi);
    tcase_add_test(tc, test_ignored_power_button_is_forced);
    tcase_add_test(tc, test_pause_resume_hibernate_restore);
    tcase_add_test(tc, test_reboot);
    tcase_add_test(tc, test_destroyed_behind_our_back);
    tcase_add_test(tc, test_libvirtd_restart);
    tcase_add_test(tc, test_guest_agent);
    tcase_add_test(tc, test_bases_and_clones);
    tcase_add_test(tc, test_base_progress);
    tcase_add_test(tc, test_display_and_viewer);
    suite_add_tcase(s, tc);
    return s;
}
