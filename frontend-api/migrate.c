/*
 * migrate.c - `vmrq db upgrade`: applies the embedded migrations in order, each once and in its
 * own transaction, recorded in schema_migrations; then writes the C catalog into `commands`,
 * where the requests trigger validates against it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "migrations.h"
#include "vmrq.h"

/* pg_advisory_xact_lock key that serializes concurrent upgrades: "vmrq" in ASCII. */
#define MIGRATE_LOCK "1986884209"

size_t
vmrq_db_migration_count(void)
{
    return vmrq_migrations_count;
}

const char *
vmrq_db_migration_name(size_t i)
{
    return i < vmrq_migrations_count ? vmrq_migrations[i].name : NULL;
}

/* vmrq_pg_exec() for upgrade statements: -1 on error; the result in *out if wanted. */
static int
run(PGconn *conn, const char *sql, int n, const char *const *params, ExecStatusType expect,
    PGresult **out)
{
    PGresult *res = vmrq_pg_exec(conn, "db upgrade", sql, n, params, expect);

    if (!res)
        return -1;
    if (out)
        *out = res;
    else
        PQclear(res);
    return 0;
}

/* BEGIN, take the upgrade lock, and make sure schema_migrations exists. */
static int
begin_locked(PGconn *conn)
{
    const char *lock[1] = { MIGRATE_LOCK };
    PGresult *res;
    bool missing;

    if (run(conn, "BEGIN", 0, NULL, PGRES_COMMAND_OK, NULL) < 0 ||
        run(conn, "SELECT pg_advisory_xact_lock($1::bigint)", 1, lock, PGRES_TUPLES_OK, NULL) < 0 ||
        run(conn, "SELECT to_regclass('schema_migrations') IS NULL", 0, NULL, PGRES_TUPLES_OK, &res) < 0)
        return -1;
    missing = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (missing &&
        run(conn,
            "CREATE TABLE schema_migrations (version int PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())",
            0, NULL, PGRES_COMMAND_OK, NULL) < 0)
        return -1;
    return 0;
}

static void
rollback(PGconn *conn)
{
    PQclear(PQexecParams(conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0));
}

/* Applies migration m unless recorded: 1 applied, 0 already there, -1 error (rolled back). */
static int
apply(PGconn *conn, const struct vmrq_migration *m)
{
    char version[16];
    const char *params[2] = { version, m->name };
    PGresult *res;
    bool done;

    snprintf(version, sizeof(version), "%d", m->version);
    if (begin_locked(conn) < 0 ||
        run(conn, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, params, PGRES_TUPLES_OK,
            &res) < 0)
        goto fail;
    done = PQntuples(res) > 0;
    PQclear(res);
    if (done) {
        rollback(conn);
        return 0;
    }
    /* A migration is a fixed file compiled into the binary, several statements long: the one
     * place where PQexec (no parameters possible) is the right call. */
    res = PQexec(conn, m->sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        vmrq_error_set(VMRQ_ERR_DB, "db upgrade: migration %s failed: %s", m->name,
                       msg ? msg : PQerrorMessage(conn));
        PQclear(res);
        goto fail;
    }
    PQclear(res);
    if (run(conn, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, params,
            PGRES_COMMAND_OK, NULL) < 0 ||
        run(conn, "COMMIT", 0, NULL, PGRES_COMMAND_OK, NULL) < 0)
        goto fail;
    return 1;

fail:
    rollback(conn);
    return -1;
}

/* Makes `commands` hold exactly this build's catalog, in one transaction. */
static int
sync_catalog(PGconn *conn)
{
    char *rows = vmrq_catalog_json();
    const char *params[1] = { rows };
    int ret = -1;

    if (!rows)
        return -1;

    if (begin_locked(conn) < 0 ||
        run(conn,
            "DELETE FROM commands WHERE name NOT IN"
            " (SELECT x->>'name' FROM jsonb_array_elements($1::jsonb) x)",
            1, params, PGRES_COMMAND_OK, NULL) < 0 ||
        run(conn,
            "INSERT INTO commands (name, class, flags, args, needs_one_of, summary, argnames, mandatory)"
            " SELECT name, class, flags, args, needs_one_of, summary,"
            "        ARRAY(SELECT jsonb_object_keys(args)),"
            "        ARRAY(SELECT key FROM jsonb_each(args) WHERE (value->>'mandatory')::boolean)"
            "   FROM jsonb_to_recordset($1::jsonb) AS x(name text, class text, flags text[],"
            "        args jsonb, needs_one_of text[], summary text)"
            " ON CONFLICT (name) DO UPDATE SET class = EXCLUDED.class, flags = EXCLUDED.flags,"
            "   args = EXCLUDED.args, needs_one_of = EXCLUDED.needs_one_of,"
            "   summary = EXCLUDED.summary, argnames = EXCLUDED.argnames,"
            "   mandatory = EXCLUDED.mandatory",
            1, params, PGRES_COMMAND_OK, NULL) < 0 ||
        /* a command the catalog no longer has would never run: say so instead */
        run(conn,
            "UPDATE requests SET status = 'cancelled', finished_at = now(),"
            "       error = format('command %s was removed from the catalog by vmrq db upgrade', command)"
            " WHERE status IN ('requested', 'waiting')"
            "   AND command NOT IN (SELECT x->>'name' FROM jsonb_array_elements($1::jsonb) x)",
            1, params, PGRES_COMMAND_OK, NULL) < 0 ||
        run(conn, "COMMIT", 0, NULL, PGRES_COMMAND_OK, NULL) < 0) {
        rollback(conn);
        goto cleanup;
    }
    ret = 0;

cleanup:
    free(rows);
    return ret;
}

int
vmrq_db_upgrade(PGconn *conn)
{
    int applied = 0;

    for (size_t i = 0; i < vmrq_migrations_count; i++) {
        int r = apply(conn, &vmrq_migrations[i]);
        if (r < 0)
            return -1;
        applied += r;
    }
    if (sync_catalog(conn) < 0)
        return -1;
    return applied;
}

int
vmrq_db_version(PGconn *conn)
{
    PGresult *res;
    int version = 0;
    bool exists;

    if (run(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL, PGRES_TUPLES_OK,
            &res) < 0)
        return -1;
    exists = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!exists)
        return 0;
    if (run(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL,
            PGRES_TUPLES_OK, &res) < 0)
        return -1;
    version = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return version;
}
