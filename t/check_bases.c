/*
 * check_bases.c - desktops made from a base, in-process on libvirt's test driver loaded with
 * t/bases-hypervisor.xml (a storage pool `default` holding the desktops' disks; a fresh copy per
 * test): prepare_base and its refusals, clones (each disk an overlay backed by the base volume,
 * a fresh uuid and MAC, made once however often asked), remove_base and remove_domain refused
 * while clones exist, provision; then, with a real vmrqd, clones of one base not serialized on it
 * and a volatile clone gone as soon as it stops.
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "claim.h"
#include "dispatch.h"
#include "driver_kvm.h"
#include "events.h"
#include "tutil.h"

#define BASES_XML "t/bases-hypervisor.xml"
#define POOL "/var/lib/vmrq-test/pool/"

enum { ALICE = 1, BOB, OLGA /* operator */ };

static struct driver *drv;
static struct vmrqd_worker worker;
static int daemon_id;
static char uri[PATH_MAX + 64];

static void
setup(void)
{
    char cwd[PATH_MAX];

    t_db_setup();
    ck_assert(getcwd(cwd, sizeof(cwd)) != NULL);
    snprintf(uri, sizeof(uri), "test://%s/%s", cwd, BASES_XML);
    drv = driver_open(&driver_kvm_ops, uri);
    ck_assert_msg(drv != NULL, "%s", driver_error_message());
    memset(&worker, 0, sizeof(worker));
    worker.conninfo = getenv("VMRQ_DAEMON_DB");
    worker.drv = drv;
    worker.node = "lab";
    worker.storage_pool = "default";
    PQclear(t_sql(t_db, "INSERT INTO users (name, is_operator) VALUES ('alice', false), ('bob', false), ('olga', true)",
                  0, NULL));
    PQclear(t_sql(t_db, "INSERT INTO nodes (name, uri) VALUES ('lab', 'test:///lab')", 0, NULL));
    PQclear(t_sql(t_db, "INSERT INTO domains (name, id_node, id_owner) SELECT n, 1, 3 FROM"
                        " unnest('{teacher,lab-on,loose}'::text[]) n", 0, NULL));
    daemon_id = (int)t_sql_int(t_db, "INSERT INTO daemons (node, hostname, pid, version)"
                                     " VALUES ('lab', 'test', 1, 'test') RETURNING id", 0, NULL);
}

static void
teardown(void)
{
    PQfinish(worker.conn);
    driver_close(drv);
    t_db_teardown();
}

/* Enqueues `command` with `json`, claims it as vmrqd does, runs its handler here and records
 * the outcome; returns the request's id. */
static long long
run(const char *command, const char *json)
{
    const char *params[2] = { command, json };
    long long id = t_sql_int(t_db, "SELECT vmrq_request($1, $2::jsonb)", 2, params);
    static const int all[CLAIM_LANES] = { 0, 10, 10, 10 };
    struct vmrqd_job *job = NULL;

    ck_assert_int_eq(claim_jobs(t_db, daemon_id, "lab", all, &job, NULL), 1);
    ck_assert_int_eq(job->id, id);
    if (dispatch_prepare(job) == 0)
        dispatch_run(job, &worker);
    ck_assert_int_eq(claim_complete(t_db, daemon_id, job, 1000, NULL), 0);
    job_free(job);
    return id;
}

/* "done" or "failed: why" (static buffer). */
static const char *
outcome(long long id)
{
    return t_outcome(t_db, id);
}

/* The hypervisor's side, through the driver's own connection (the test driver keeps its state
 * per connection). */
static virConnectPtr
hv(void)
{
    return kvm_conn_get(drv->priv);
}

/* The volume at `path`'s XML (caller frees), or NULL if there is none. */
static char *
volume_xml(const char *path)
{
    virConnectPtr c = hv();
    virStorageVolPtr v = virStorageVolLookupByPath(c, path);
    char *xml = v ? virStorageVolGetXMLDesc(v, 0) : NULL;

    if (v)
        virStorageVolFree(v);
    virResetLastError();
    virConnectClose(c);
    return xml;
}

/* The domain's definition (caller frees), or NULL if the hypervisor has none. */
static char *
domain_xml(const char *name)
{
    virConnectPtr c = hv();
    virDomainPtr d = virDomainLookupByName(c, name);
    char *xml = d ? virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE) : NULL;

    if (d)
        virDomainFree(d);
    virResetLastError();
    virConnectClose(c);
    return xml;
}

static bool
has_volume(const char *path)
{
    char *xml = volume_xml(path);

    free(xml);
    return xml != NULL;
}

static long long
count(const char *sql)
{
    return t_sql_int(t_db, sql, 0, NULL);
}

START_TEST(test_prepare_base_and_its_refusals)
{
    char *xml;

    ck_assert_str_eq(outcome(run("prepare_base", "{\"uid\": 1, \"name\": \"teacher\"}")),
                     "failed: user alice is not allowed to prepare_base teacher (operators only)");
    ck_assert_str_eq(outcome(run("prepare_base", "{\"uid\": 3, \"name\": \"lab-on\"}")),
                     "failed: prepare_base: lab-on is running; shut it down first");
    ck_assert_str_eq(outcome(run("prepare_base", "{\"uid\": 3, \"name\": \"loose\"}")),
                     "failed: prepare_base: disk vda of loose (/nowhere/loose.img) is not a volume of a storage pool");
    ck_assert_int_eq(count("SELECT count(*) FROM domains WHERE is_base"), 0);
    ck_assert(!has_volume(POOL "teacher-vda.base.qcow2"));

    ck_assert_str_eq(outcome(run("prepare_base", "{\"uid\": 3, \"name\": \"teacher\"}")), "done");
    ck_assert_int_eq(count("SELECT count(*) FROM domains WHERE name = 'teacher' AND is_base"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE command = 'prepare_base' AND progress = 1"), 1);
    ck_assert(has_volume(POOL "teacher-vda.base.qcow2"));
    ck_assert(has_volume(POOL "teacher.qcow2")); /* the desktop's own disk is untouched */
    /* the base's definition: its disk on the base volume, read-only; the CD-ROM as it was */
    ck_assert_int_eq(count("SELECT count(*) FROM domains WHERE name = 'teacher'"
                           " AND base_xml LIKE '%" POOL "teacher-vda.base.qcow2%' AND base_xml LIKE '%tools.iso%'"), 1);
    /* asked again: nothing to do */
    ck_assert_str_eq(outcome(run("prepare_base", "{\"uid\": 3, \"name\": \"teacher\"}")), "done");
    /* and a base is not started */
    ck_assert_str_eq(outcome(run("start", "{\"uid\": 3, \"name\": \"teacher\"}")),
                     "failed: start: teacher is a base; clone it");
    ck_assert_ptr_nonnull(xml = domain_xml("teacher"));
    free(xml);
}
END_TEST

START_TEST(test_clone_is_an_overlay_made_once)
{
    char *xml, *vol;

    ck_assert_str_eq(outcome(run("prepare_base", "{\"uid\": 3, \"name\": \"teacher\"}")), "done");
    ck_assert_str_eq(outcome(run("clone", "{\"uid\": 2, \"base\": \"teacher\"}")),
                     "failed: clone: user bob may not clone teacher (not a public base)");
    ck_assert_str_eq(outcome(run("clone", "{\"uid\": 2, \"base\": \"loose\"}")),
                     "failed: clone: loose is not a base; prepare_base it first");
    ck_assert_str_eq(outcome(run("clone", "{\"uid\": 2, \"base\": \"nope\"}")), "failed: clone: no base 'nope'");
    ck_assert_str_eq(outcome(run("clone", "{\"uid\": 3, \"base\": \"teacher\", \"id_owner\": 9}")),
                     "failed: clone: no user 9 to own it");
    PQclear(t_sql(t_db, "UPDATE domains SET is_public = true WHERE name = 'teacher'", 0, NULL));
    ck_assert_str_eq(outcome(run("clone", "{\"uid\": 2, \"base\": \"teacher\", \"id_owner\": 1}")),
                     "failed: clone: user bob may not make a desktop for another user");
    ck_assert_int_eq(count("SELECT count(*) FROM domains"), 3);

    ck_assert_str_eq(outcome(run("clone", "{\"uid\": 2, \"base\": \"teacher\"}")), "done");
    ck_assert_int_eq(count("SELECT count(*) FROM domains d JOIN domains b ON b.id = d.id_base"
                           " WHERE d.name = 'teacher-bob' AND b.name = 'teacher' AND d.id_owner = 2"
                           "   AND d.uuid IS NOT NULL AND d.uuid <> '22222222-2222-4222-8222-000000000001'"
                           "   AND d.status = 'shutdown'"), 1);
    ck_assert_ptr_nonnull(vol = volume_xml(POOL "teacher-bob-vda.qcow2"));
    ck_assert_msg(strstr(vol, "<backingStore>") && strstr(vol, POOL "teacher-vda.base.qcow2"), "%s", vol);
    free(vol);
    ck_assert_ptr_nonnull(xml = domain_xml("teacher-bob"));
    ck_assert_msg(strstr(xml, POOL "teacher-bob-vda.qcow2") && !strstr(xml, "52:54:00:22:00:01") &&
                  !strstr(xml, "22222222-2222-4222-8222-000000000001") && strstr(xml, "tools.iso"), "%s", xml);
    free(xml);
    /* again: made once */
    ck_assert_str_eq(outcome(run("clone", "{\"uid\": 2, \"base\": \"teacher\"}")), "done");
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE command = 'clone' AND status = 'done'"
                           " AND output->>'made' = 'false' AND output->>'name' = 'teacher-bob'"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM domains WHERE id_base IS NOT NULL"), 1);
    /* a name taken by another desktop is not taken over */
    ck_assert_str_eq(outcome(run("clone", "{\"uid\": 3, \"base\": \"teacher\", \"name\": \"lab-on\"}")),
                     "failed: clone: a desktop named lab-on exists already, and is not 3's clone of teacher");
}
END_TEST

START_TEST(test_removals_and_their_refusals)
{
    ck_assert_str_eq(outcome(run("prepare_base", "{\"uid\": 3, \"name\": \"teacher\"}")), "done");
    ck_assert_str_eq(outcome(run("clone", "{\"uid\": 3, \"base\": \"teacher\", \"id_owner\": 1, \"start\": true}")),
                     "done");
    ck_assert_int_eq(count("SELECT count(*) FROM domains WHERE name = 'teacher-alice' AND status = 'running'"), 1);
    ck_assert_str_eq(outcome(run("remove_base", "{\"uid\": 3, \"name\": \"teacher\"}")),
                     "failed: remove_base: teacher has 1 clone; remove it first");
    ck_assert_str_eq(outcome(run("remove_domain", "{\"uid\": 3, \"name\": \"teacher\"}")),
                     "failed: remove_domain: teacher is a base with 1 clone; remove it first");
    ck_assert_str_eq(outcome(run("remove_domain", "{\"uid\": 2, \"name\": \"teacher-alice\"}")),
                     "failed: user bob is not allowed to remove teacher-alice");
    ck_assert(has_volume(POOL "teacher-alice-vda.qcow2"));

    /* the owner removes her running clone: stopped, undefined, its overlay deleted, not the base's */
    ck_assert_str_eq(outcome(run("remove_domain", "{\"uid\": 1, \"name\": \"teacher-alice\"}")), "done");
    ck_assert_ptr_null(domain_xml("teacher-alice"));
    ck_assert(!has_volume(POOL "teacher-alice-vda.qcow2"));
    ck_assert(has_volume(POOL "teacher-vda.base.qcow2"));
    ck_assert_int_eq(count("SELECT count(*) FROM domains WHERE name = 'teacher-alice'"), 0);
    /* its requests' history stays, naming it */
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE args->>'name' = 'teacher-alice' AND id_domain IS NOT NULL"), 2);

    ck_assert_str_eq(outcome(run("remove_base", "{\"uid\": 1, \"name\": \"teacher\"}")),
                     "failed: user alice is not allowed to remove_base teacher (operators only)");
    ck_assert_str_eq(outcome(run("remove_base", "{\"uid\": 3, \"name\": \"teacher\"}")), "done");
    ck_assert_int_eq(count("SELECT count(*) FROM domains WHERE name = 'teacher' AND NOT is_base AND base_xml IS NULL"), 1);
    ck_assert(!has_volume(POOL "teacher-vda.base.qcow2"));
    ck_assert(has_volume(POOL "teacher.qcow2"));
    ck_assert_str_eq(outcome(run("start", "{\"uid\": 3, \"name\": \"teacher\"}")), "done");
}
END_TEST

START_TEST(test_provision_makes_once_and_starts)
{
    ck_assert_str_eq(outcome(run("prepare_base", "{\"uid\": 3, \"name\": \"teacher\"}")), "done");
    PQclear(t_sql(t_db, "UPDATE domains SET is_public = true WHERE name = 'teacher'", 0, NULL));
    ck_assert_str_eq(outcome(run("provision", "{\"uid\": 1, \"base\": \"teacher\"}")), "done");
    ck_assert_int_eq(count("SELECT count(*) FROM domains WHERE name = 'teacher-alice' AND status = 'running'"
                           " AND id_owner = 1"), 1);
    ck_assert_str_eq(outcome(run("force_shutdown", "{\"uid\": 1, \"name\": \"teacher-alice\"}")), "done");
    ck_assert_str_eq(outcome(run("provision", "{\"uid\": 1, \"base\": \"teacher\"}")), "done");
    ck_assert_int_eq(count("SELECT count(*) FROM domains WHERE id_base IS NOT NULL"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM domains WHERE name = 'teacher-alice' AND status = 'running'"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE command = 'provision' AND output->>'made' = 'false'"), 1);
}
END_TEST

/* A base's pool: manage_pools makes pool_clones clones (nobody's) and starts pool_start of them;
 * provision hands each user a free one, the same one again later, and says so when none is
 * left; a volatile pool's clone, once handed out, is never free again: removed, and made anew. */
START_TEST(test_pools)
{
    ck_assert_str_eq(outcome(run("prepare_base", "{\"uid\": 3, \"name\": \"teacher\"}")), "done");
    PQclear(t_sql(t_db, "UPDATE domains SET is_public = true, pool_clones = 3, pool_start = 2 WHERE name = 'teacher'",
                  0, NULL));
    PQclear(t_sql(t_db, "INSERT INTO users (name) VALUES ('dan')", 0, NULL));
    ck_assert_str_eq(outcome(run("manage_pools", "{\"base\": \"teacher\"}")), "done");
    ck_assert_int_eq(count("SELECT count(*) FROM domains WHERE is_pool AND id_owner IS NULL"
                           " AND name IN ('teacher-1', 'teacher-2', 'teacher-3')"), 3);
    ck_assert_int_eq(count("SELECT count(*) FROM domains WHERE is_pool AND status = 'running'"), 2);
    ck_assert_str_eq(outcome(run("manage_pools", "{\"base\": \"teacher\"}")), "done");
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE command = 'manage_pools'"
                           " AND output = '{\"made\": 0, \"started\": 0}'"), 1);

    ck_assert_str_eq(outcome(run("provision", "{\"uid\": 1, \"base\": \"teacher\"}")), "done");
    ck_assert_int_eq(count("SELECT count(*) FROM domains WHERE name = 'teacher-1' AND id_owner = 1"
                           " AND status = 'running'"), 1);
    ck_assert_str_eq(outcome(run("provision", "{\"uid\": 1, \"base\": \"teacher\"}")), "done");
    ck_assert_int_eq(count("SELECT count(*) FROM domains WHERE id_owner = 1 AND id_base IS NOT NULL"), 1);
    ck_assert_str_eq(outcome(run("provision", "{\"uid\": 2, \"base\": \"teacher\"}")), "done");
    ck_assert_str_eq(outcome(run("provision", "{\"uid\": 3, \"base\": \"teacher\"}")), "done");
    ck_assert_int_eq(count("SELECT count(*) FROM domains WHERE name = 'teacher-3' AND id_owner = 3"
                           " AND status = 'running'"), 1); /* the one not running, started */
    ck_assert_str_eq(outcome(run("provision", "{\"uid\": 4, \"base\": \"teacher\"}")),
                     "failed: provision: no free desktop in pool 'teacher'");
    ck_assert_int_eq(count("SELECT count(*) FROM domains WHERE id_owner = 4"), 0);

    /* a volatile pool: teacher-1 was alice's; stopped and removed, it is made again, free */
    PQclear(t_sql(t_db, "UPDATE domains SET pool_volatile = true WHERE name = 'teacher'", 0, NULL));
    PQclear(t_sql(t_db, "UPDATE domains SET is_volatile = true WHERE name = 'teacher-1'", 0, NULL));
    ck_assert_str_eq(outcome(run("remove_domain", "{\"uid\": 1, \"name\": \"teacher-1\"}")), "done");
    ck_assert_str_eq(outcome(run("manage_pools", "{\"base\": \"teacher\"}")), "done");
    ck_assert_int_eq(count("SELECT count(*) FROM domains WHERE name = 'teacher-1' AND is_pool AND is_volatile"
                           " AND id_owner IS NULL"), 1);
    ck_assert_str_eq(outcome(run("provision", "{\"uid\": 4, \"base\": \"teacher\"}")), "done");
    ck_assert_int_eq(count("SELECT count(*) FROM domains WHERE name = 'teacher-1' AND id_owner = 4"), 1);
}
END_TEST

/* A vmrqd of node lab with the hypervisor to itself (a copy of the file's), its manage_pools
 * every `pool_interval`, and base `teacher` prepared through it. */
static void
pool_daemon_start(struct t_daemon *d, const char *pool_interval)
{
    char conf[PATH_MAX + 256];
    struct t_cli r;

    driver_close(drv);
    drv = NULL;
    snprintf(conf, sizeof(conf), "lease = 1s\npoll_interval = 1h\npool_interval = %s\nlog_level = info\n"
                                 "node = lab\nlibvirt_uri = %s\n", pool_interval, uri);
    t_daemon_start(d, conf, false);
    r = t_cli_run("request", "prepare_base", "uid=3", "name=teacher", "--wait", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    t_cli_free(&r);
}

/* With a real vmrqd: vmrqd's periodic manage_pools makes the pool; five users provisioning at
 * once get the three clones, each a different one, and the other two the refusal. */
START_TEST(test_pool_provisions_at_once_through_the_daemon)
{
    struct t_daemon d = { 0 };

    pool_daemon_start(&d, "200ms");
    PQclear(t_sql(t_db, "INSERT INTO users (name) VALUES ('dan'), ('eve')", 0, NULL));
    PQclear(t_sql(t_db, "UPDATE domains SET is_public = true, pool_clones = 3, pool_start = 1 WHERE name = 'teacher'",
                  0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domains WHERE is_pool AND id_owner IS NULL", 3, 10000), 3);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domains WHERE is_pool AND status = 'running'", 1, 10000), 1);
    /* the pool counts its clones handed out too: manage_pools makes no more of them */
    PQclear(t_sql(t_db, "SELECT vmrq_request('provision', jsonb_build_object('uid', u, 'base', 'teacher'))"
                        "  FROM generate_series(1, 5) u", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE command = 'provision'"
                                        " AND status IN ('done', 'failed')", 5, 15000), 5);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE command = 'provision' AND status = 'done'"), 3);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE command = 'provision' AND status = 'failed'"
                           " AND error = 'provision: no free desktop in pool ''teacher'''"), 2);
    ck_assert_int_eq(count("SELECT count(DISTINCT output->>'id_domain') FROM requests WHERE command = 'provision'"
                           " AND status = 'done'"), 3);
    ck_assert_int_eq(count("SELECT count(DISTINCT id_owner) FROM domains WHERE is_pool"), 3);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domains WHERE is_pool AND status = 'running'", 3, 10000), 3);
    ck_assert_int_eq(t_daemon_wait(&d, SIGTERM, 5000), 0);
    t_daemon_cleanup(&d);
}
END_TEST

/* With a real vmrqd: a free clone whose row another session holds locked (its start's status
 * being written, say) is still free: the provision waits for it rather than refusing the user. */
START_TEST(test_pool_hands_out_a_clone_another_session_holds)
{
    struct t_daemon d = { 0 };
    PGconn *holder = t_connect();
    long long id;

    /* the pool made by one manage_pools, finished before the hold, and no other during it: its
     * completion writes the status of the clone it made last, so it would wait on the held rows,
     * and the provision, a request of the same base, behind it */
    pool_daemon_start(&d, "1h");
    PQclear(t_sql(t_db, "UPDATE domains SET is_public = true, pool_clones = 2 WHERE name = 'teacher'", 0, NULL));
    PQclear(t_sql(t_db, "SELECT vmrq_request('manage_pools', jsonb_build_object('id_base', id)) FROM domains"
                        " WHERE name = 'teacher'", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE command = 'manage_pools'"
                                        " AND status = 'done'", 1, 10000), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM domains WHERE is_pool AND id_owner IS NULL"), 2);
    PQclear(t_sql(holder, "BEGIN", 0, NULL));
    ck_assert_int_eq(t_sql_int(holder, "SELECT count(*) FROM (SELECT 1 FROM domains WHERE is_pool AND id_owner IS NULL"
                                       " FOR UPDATE) x", 0, NULL), 2);
    id = t_sql_int(t_db, "SELECT vmrq_request('provision', jsonb_build_object('uid', 1, 'base', 'teacher'))", 0, NULL);
    ck_assert_msg(t_wait_value(t_db, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                     " AND query LIKE '%FOR UPDATE)%'", 1, 10000) == 1,
                  "the provision did not wait for the held clone: %s", t_outcome(t_db, id));
    PQclear(t_sql(holder, "COMMIT", 0, NULL));
    {
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM requests WHERE id = %lld AND status IN ('done', 'failed')", id);
        ck_assert_int_eq(t_wait_value(t_db, sql, 1, 15000), 1);
    }
    ck_assert_str_eq(t_outcome(t_db, id), "done");
    ck_assert_int_eq(count("SELECT count(*) FROM domains WHERE is_pool AND id_owner = 1"), 1);
    ck_assert_int_eq(t_daemon_wait(&d, SIGTERM, 5000), 0);
    t_daemon_cleanup(&d);
    PQfinish(holder);
}
END_TEST

/* With a real vmrqd: clones of one base are not serialized on it (each request is keyed on its
 * new desktop), and a volatile clone is gone, disks and row, as soon as it stops. */
START_TEST(test_clones_in_parallel_and_volatile_through_the_daemon)
{
    struct t_daemon d = { 0 };
    char conf[PATH_MAX + 256];
    struct t_cli r;

    driver_close(drv); /* the daemon has the hypervisor (a copy of the file's) to itself */
    drv = NULL;
    snprintf(conf, sizeof(conf), "lease = 1s\npoll_interval = 1h\nlog_level = info\nnode = lab\nlibvirt_uri = %s\n", uri);
    t_daemon_start(&d, conf, false);
    /* the operator waits for it, and is told how far it has got (plain lines: not a terminal) */
    r = t_cli_run("request", "prepare_base", "uid=3", "name=teacher", "--wait", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_msg(strstr(r.err, ": 100% done\n"), "%s", r.err);
    t_cli_free(&r);
    ck_assert_int_eq(count("SELECT count(*) FROM domains WHERE is_base"), 1);
    PQclear(t_sql(t_db, "SELECT vmrq_request('clone', jsonb_build_object('uid', 3, 'base', 'teacher', 'name', n))"
                        "  FROM unnest('{c1,c2,c3}'::text[]) n", 0, NULL));
    /* none waits for another: no domain of theirs to serialize on */
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE command = 'clone' AND id_domain IS NULL"
                           " AND id_node = 1"), 3);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE command = 'clone' AND status = 'done'",
                                  3, 5000), 3);

    /* two provisions of one user at once (a double click) give one clone */
    PQclear(t_sql(t_db, "UPDATE domains SET is_public = true WHERE name = 'teacher'", 0, NULL));
    PQclear(t_sql(t_db, "SELECT vmrq_request('provision', '{\"uid\": 1, \"base\": \"teacher\"}'),"
                        "       vmrq_request('provision', '{\"uid\": 1, \"base\": \"teacher\"}')", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE command = 'provision' AND status = 'done'",
                                  2, 5000), 2);
    ck_assert_int_eq(count("SELECT count(*) FROM domains WHERE id_base IS NOT NULL AND id_owner = 1"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM requests WHERE command = 'provision' AND output->>'made' = 'true'"), 1);

    PQclear(t_sql(t_db, "SELECT vmrq_request('clone', '{\"uid\": 3, \"base\": \"teacher\", \"name\": \"tmp\","
                        " \"volatile\": true, \"start\": true}')", 0, NULL));
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domains WHERE name = 'tmp' AND status = 'running'",
                                  1, 5000), 1);
    PQclear(t_sql(t_db, "SELECT vmrq_request('force_shutdown', '{\"uid\": 3, \"name\": \"tmp\"}')", 0, NULL));
    /* some 30 ms; the margin is for a machine loaded by others (2 s was once missed there) */
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM domains WHERE name = 'tmp'", 0, 5000), 0);
    ck_assert_int_eq(t_wait_value(t_db, "SELECT count(*) FROM requests WHERE command = 'remove_domain'"
                                        " AND status = 'done'", 1, 5000), 1);
    ck_assert_int_eq(t_daemon_wait(&d, SIGTERM, 5000), 0);
    t_daemon_cleanup(&d);
}
END_TEST

Suite *
bases_suite(void)
{
    Suite *s = suite_create("bases");
    TCase *tc = tcase_create("bases");

    tcase_set_tags(tc, "db libvirt");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_prepare_base_and_its_refusals);
    tcase_add_test(tc, test_clone_is_an_overlay_made_once);
    tcase_add_test(tc, test_removals_and_their_refusals);
    tcase_add_test(tc, test_provision_makes_once_and_starts);
    tcase_add_test(tc, test_clones_in_parallel_and_volatile_through_the_daemon);
    tcase_add_test(tc, test_pools);
    tcase_add_test(tc, test_pool_provisions_at_once_through_the_daemon);
    tcase_add_test(tc, test_pool_hands_out_a_clone_another_session_holds);
    suite_add_tcase(s, tc);
    return s;
}
