/*
 * check_fleet.c - many hypervisors on one database: 20 vmrqd, one per node, each with its own
 * test-driver hypervisor (a test:///FILE.xml written here, the node's nodes.uri) whose domain
 * names partly collide with another node's. Requests for every node run on that node; one
 * node's refresh changes no row of another; a name another node holds is recorded, not
 * adopted; and the claims PostgreSQL counts (track_functions) stay under 2 per request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tutil.h"

#define NODES 20

static struct t_daemon fleet[NODES];
static char xml[NODES][64];

/* Node i's hypervisor: its own fleet-I-a (shut off) and fleet-I-b (running), and a running
 * domain named like the next node's fleet-J-a, with a uuid of its own. */
static void
write_hypervisor(int i)
{
    static const char dom[] =
        "  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\n"
        "    <name>fleet-%d-%s</name><uuid>33333333-3333-4333-8333-%06d%06d</uuid>\n"
        "    <memory>65536</memory><os><type>hvm</type></os><test:runstate>%d</test:runstate>\n"
        "  </domain>\n";
    FILE *f;

    snprintf(xml[i], sizeof(xml[i]), "/tmp/vmrq-fleet-%d-%d.xml", (int)getpid(), i + 1);
    ck_assert_ptr_nonnull(f = fopen(xml[i], "w"));
    fprintf(f, "<node>\n");
    fprintf(f, dom, i + 1, "a", i + 1, 1, 5);
    fprintf(f, dom, i + 1, "b", i + 1, 2, 1);
    fprintf(f, dom, (i + 1) % NODES + 1, "a", i + 1, 3, 1);
    fprintf(f, "</node>\n");
    fclose(f);
}

static void
setup(void)
{
    t_db_setup();
    memset(fleet, 0, sizeof(fleet));
    /* vmrqd's sessions count their function calls: the claims per request */
    PQclear(t_sql(t_db, "ALTER ROLE vmrq_t_daemon SET track_functions = 'all'", 0, NULL));
}

static void
teardown(void)
{
    for (int i = 0; i < NODES; i++) {
        t_daemon_cleanup(&fleet[i]);
        if (*xml[i])
            unlink(xml[i]);
    }
    PQclear(t_sql(t_db, "ALTER ROLE vmrq_t_daemon RESET track_functions", 0, NULL));
    t_db_teardown();
}

/* The calls of vmrq_claim() PostgreSQL has counted, once its count has settled: a backend
 * reports its counts when it goes idle, at most once a second and otherwise within 10 s, so the
 * figure is read again until it has not moved for 11 s (at most 60 s). */
static long long
settled_claims(void)
{
    const char *q = "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions WHERE funcname = 'vmrq_claim'";
    long long last = -1, v;
    int still_ms = 0;

    for (int waited = 0; waited < 60000; waited += 250) {
        struct timespec ts = { 0, 250 * 1000000L };
        PQclear(t_sql(t_db, "SELECT pg_stat_clear_snapshot()", 0, NULL));
        v = t_sql_int(t_db, q, 0, NULL);
        still_ms = v == last ? still_ms + 250 : 0;
        if (still_ms >= 11000)
            return v;
        last = v;
        nanosleep(&ts, NULL);
    }
    ck_abort_msg("the count of vmrq_claim() calls did not settle within 60 s");
    return -1;
}

START_TEST(test_twenty_nodes_kept_apart)
{
    char conf[256], q[1024];
    long long before, after, id;
    const char *params[1];

    PQclear(t_sql(t_db, "INSERT INTO users (name, is_operator) VALUES ('op', true)", 0, NULL));
    for (int i = 0; i < NODES; i++) {
        char name[16];
        const char *p[2] = { name, xml[i] };

        write_hypervisor(i);
        snprintf(name, sizeof(name), "n%d", i + 1);
        snprintf(q, sizeof(q), "test://%.63s", xml[i]);
        p[1] = q;
        /* what `vmrq node add` and `vmrq domain add --node` write */
        PQclear(t_sql(t_db, "INSERT INTO nodes (name, uri) VALUES ($1, $2)", 2, p));
        PQclear(t_sql(t_db, "INSERT INTO domains (name, id_owner, id_node)"
                            " SELECT 'fleet-' || substr($1, 2) || '-' || x, 1, (SELECT id FROM nodes WHERE name = $1)"
                            "   FROM unnest(ARRAY['a', 'b']) x", 1, p));
    }
    /* no libvirt_uri: each opens its node's nodes.uri */
    for (int i = 0; i < NODES; i++) {
        snprintf(conf, sizeof(conf), "node = n%d\nlease = 30s\npoll_interval = 1h\nlog_level = info\n"
                                     "workers = 2\nlanes = 0\n", i + 1);
        t_daemon_start(&fleet[i], conf, false);
    }

    /* Each node's refresh, one after the other, leaves every other node's rows as they were. */
    for (int i = 0; i < NODES; i++) {
        char node[16];
        params[0] = node;
        snprintf(node, sizeof(node), "n%d", i + 1);
        PQclear(t_sql(t_db, "DROP TABLE IF EXISTS others", 0, NULL));
        PQclear(t_sql(t_db, "CREATE TABLE others AS SELECT d.* FROM domains d"
                            " WHERE d.id_node <> (SELECT id FROM nodes WHERE name = $1)", 1, params));
        id = t_sql_int(t_db, "SELECT vmrq_request('refresh_vms', jsonb_build_object('node', $1::text))", 1, params);
        snprintf(q, sizeof(q), "SELECT count(*) FROM requests WHERE id = %lld AND finished_at IS NOT NULL", id);
        ck_assert_msg(t_wait_value(t_db, q, 1, 30000) == 1, "refresh_vms of %s did not finish", node);
        ck_assert_str_eq(t_outcome(t_db, id), "done");
        snprintf(q, sizeof(q), "SELECT count(*) FROM requests r JOIN daemons m ON m.id = r.id_daemon"
                               " WHERE r.id = %lld AND m.node = '%s'", id, node);
        ck_assert_int_eq(t_sql_int(t_db, q, 0, NULL), 1);
        ck_assert_msg(t_sql_int(t_db, "SELECT count(*) FROM (SELECT * FROM others EXCEPT"
                                      " SELECT d.* FROM domains d) x", 0, NULL) == 0,
                      "the refresh of %s changed another node's rows", node);
    }
    PQclear(t_sql(t_db, "DROP TABLE others", 0, NULL));
    /* every node's rows are its own hypervisor's; the colliding names are recorded, not adopted */
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM domains", 0, NULL), 2 * NODES);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM domains d JOIN nodes n ON n.id = d.id_node"
                                     " WHERE d.name LIKE 'fleet-' || substr(n.name, 2) || '-_'"
                                     "   AND d.uuid = ('33333333-3333-4333-8333-' || lpad(substr(n.name, 2), 6, '0')"
                                     "                 || CASE WHEN d.name LIKE '%-a' THEN '000001' ELSE '000002' END)::uuid",
                                     0, NULL), 2 * NODES);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM domain_conflicts c JOIN nodes n ON n.id = c.id_node"
                                     " WHERE c.name = 'fleet-' || (substr(n.name, 2)::int % 20 + 1) || '-a'",
                                     0, NULL), NODES);
    ck_assert(t_daemon_logged(&fleet[0], "not adopted, the name is another node's: 'fleet-2-a' (node n2)"));
    {
        struct t_cli r = t_cli_run("domain", "list", "--conflicts", NULL);
        ck_assert_int_eq(r.status, 0);
        ck_assert_ptr_nonnull(strstr(r.out, "fleet-2-a"));
        ck_assert_ptr_nonnull(strstr(r.out, "fleet-1-a"));
        t_cli_free(&r);
    }

    /* Requests for every node's domains, one at a time: each runs on its node, woken alone. */
    before = settled_claims();
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < NODES; i++) {
            static const char *const cmds[] = { "start", "pause", "resume" };
            static const char *const doms[] = { "a", "b", "b" };
            char args[128];
            params[0] = args;
            snprintf(args, sizeof(args), "{\"uid\": 1, \"name\": \"fleet-%d-%s\"}", i + 1, doms[round]);
            snprintf(q, sizeof(q), "SELECT vmrq_request('%s', $1::jsonb)", cmds[round]);
            id = t_sql_int(t_db, q, 1, params);
            snprintf(q, sizeof(q), "SELECT count(*) FROM requests WHERE id = %lld AND finished_at IS NOT NULL", id);
            ck_assert_msg(t_wait_value(t_db, q, 1, 30000) == 1, "request %lld did not finish", id);
            ck_assert_msg(strcmp(t_outcome(t_db, id), "done") == 0, "request %lld: %s", id, t_outcome(t_db, id));
        }
    after = settled_claims();
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM requests r JOIN domains d ON d.id = r.id_domain"
                                     " JOIN nodes n ON n.id = d.id_node JOIN daemons m ON m.id = r.id_daemon"
                                     " WHERE m.node = n.name AND r.status = 'done'", 0, NULL), 3 * NODES);
    ck_assert_int_eq(t_sql_int(t_db, "SELECT count(*) FROM domains WHERE status = 'running'", 0, NULL), 2 * NODES);
    ck_assert_msg(after - before < 2 * 3 * NODES, "%lld claims for %d requests", after - before, 3 * NODES);
    printf("fleet: %d vmrqd, %lld claims for %d requests (%.2f a request)\n", NODES, after - before, 3 * NODES,
           (double)(after - before) / (3 * NODES));
}
END_TEST

Suite *
fleet_suite(void)
{
    Suite *s = suite_create("fleet");
    TCase *tc = tcase_create("fleet");

    tcase_set_tags(tc, "db libvirt");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_twenty_nodes_kept_apart);
    suite_add_tcase(s, tc);
    return s;
}
