/*
 * migrate.c - `vmrq db upgrade` and the check of a database's schema against this build.
 *
 * The schema is two kinds of embedded files (migrations.h): append-only migrations (tables,
 * columns, indexes, data), applied once each and recorded in schema_migrations, and the current
 * sources of every function, trigger and view (sql/functions/), recorded by checksum in
 * schema_sources. An upgrade, in one transaction under an advisory lock:
 *   1. refuses a database that records a migration this build does not have, or another one
 *      under the same number (it was made by another build);
 *   2. applies the pending migrations in order;
 *   3. if a migration ran or any source differs from what the database records, runs every
 *      source again (CREATE OR REPLACE), then drops the functions named vmrq_* in the schema
 *      that no source defined in this transaction, with the triggers that call them (a row of
 *      pg_proc or pg_trigger that a statement of this transaction wrote has this transaction's
 *      xmin);
 *   4. writes the C catalog into `commands` (vmrq_catalog_write(): only rows that differ).
 * On an up-to-date database it changes nothing. Nothing else is in the database's schema
 * bookkeeping, so a newer vmrqd can tell an older database (and the reverse) by itself.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

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
run(PGconn *conn, const char *what, const char *sql, int n, const char *const *params,
    ExecStatusType expect, PGresult **out)
{
    PGresult *res = vmrq_pg_exec(conn, what, sql, n, params, expect);

    if (!res)
        return -1;
    if (out)
        *out = res;
    else
        PQclear(res);
    return 0;
}

/* A whole file of several statements, compiled into the binary: the one place where PQexec (no
 * parameters possible) is the right call. */
static int
run_file(PGconn *conn, const char *kind, const char *name, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;

    if (!ok) {
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        vmrq_error_set(VMRQ_ERR_DB, "db upgrade: %s %s failed: %s", kind, name,
                       msg ? msg : PQerrorMessage(conn));
    }
    PQclear(res);
    return ok ? 0 : -1;
}

static void
rollback(PGconn *conn)
{
    PQclear(PQexecParams(conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0));
}

/* The sources as JSON rows [{name, sql}], for the database to checksum. Caller frees. */
static char *
sources_json(void)
{
    struct json_object *rows = json_object_new_array();
    char *text;

    for (size_t i = 0; i < vmrq_sources_count; i++) {
        struct json_object *row = json_object_new_object();
        json_object_object_add(row, "name", json_object_new_string(vmrq_sources[i].name));
        json_object_object_add(row, "sql", json_object_new_string(vmrq_sources[i].sql));
        json_object_array_add(rows, row);
    }
    text = strdup(json_object_to_json_string_ext(rows, JSON_C_TO_STRING_PLAIN));
    json_object_put(rows);
    if (!text)
        vmrq_error_set(VMRQ_ERR_SYSTEM, "db upgrade: out of memory");
    return text;
}

/* The checksums of this build's sources ($1, sources_json()), and one of the definitions the
 * database holds now (its vmrq_* functions and the triggers that call them), as written after
 * the sources ran: a function changed by hand makes the database differ too. */
#define OURS_SQL \
    "WITH ours AS (SELECT s.name, md5(s.sql) AS md5 FROM json_to_recordset($1::json) AS s(name text, sql text)" \
    "              UNION ALL" \
    "              SELECT '(definitions)', md5(coalesce(string_agg(def, E'\\n' ORDER BY def), ''))" \
    "                FROM (SELECT pg_get_functiondef(p.oid) AS def FROM pg_proc p" \
    "                       WHERE p.pronamespace = current_schema()::regnamespace AND p.proname LIKE 'vmrq\\_%'" \
    "                      UNION ALL" \
    "                      SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid" \
    "                       WHERE NOT t.tgisinternal AND p.pronamespace = current_schema()::regnamespace" \
    "                         AND p.proname LIKE 'vmrq\\_%') d)"

/* How many of those differ from what schema_sources records: added, changed or gone. */
static const char sources_differ_sql[] =
    OURS_SQL ","
    "     theirs AS (SELECT name, md5 FROM schema_sources)"
    " SELECT (SELECT count(*) FROM (TABLE ours EXCEPT TABLE theirs) a)"
    "      + (SELECT count(*) FROM (TABLE theirs EXCEPT TABLE ours) b)";

/* What the database records of its schema: whether the bookkeeping exists, its migrations, and
 * how many sources differ from this build's (-1: the database's functions were never written). */
struct db_state {
    bool exists;
    int nrecorded;
    int recorded_max;
    char mismatch[256]; /* "" or why this build cannot upgrade or use it */
    long long sources_differ;
    char sources_by[64]; /* the vmrq version that wrote the sources */
};

/* Reads the state; with `for_upgrade`, a missing bookkeeping is created. -1 on error. */
static int
read_state(PGconn *conn, const char *what, struct db_state *st, bool for_upgrade)
{
    PGresult *res;
    char *sources = NULL;
    const char *params[1];
    bool have_sources;
    int ret = -1;

    memset(st, 0, sizeof(*st));
    if (run(conn, what, "SELECT to_regclass('schema_migrations') IS NOT NULL, to_regclass('schema_sources') IS NOT NULL",
            0, NULL, PGRES_TUPLES_OK, &res) < 0)
        return -1;
    st->exists = PQgetvalue(res, 0, 0)[0] == 't';
    have_sources = PQgetvalue(res, 0, 1)[0] == 't';
    PQclear(res);
    if (for_upgrade && !st->exists &&
        run(conn, what,
            "CREATE TABLE schema_migrations (version int PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())",
            0, NULL, PGRES_COMMAND_OK, NULL) < 0)
        return -1;
    if (for_upgrade && !have_sources &&
        run(conn, what,
            "CREATE TABLE schema_sources (name text PRIMARY KEY, md5 text NOT NULL,"
            " vmrq_version text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
            0, NULL, PGRES_COMMAND_OK, NULL) < 0)
        return -1;
    if (!st->exists && !for_upgrade)
        return 0;

    if (run(conn, what, "SELECT version, name FROM schema_migrations ORDER BY version", 0, NULL,
            PGRES_TUPLES_OK, &res) < 0)
        return -1;
    st->nrecorded = PQntuples(res);
    for (int i = 0; i < st->nrecorded && !st->mismatch[0]; i++) {
        int version = atoi(PQgetvalue(res, i, 0));
        const char *name = PQgetvalue(res, i, 1);
        size_t k = 0;

        st->recorded_max = version;
        while (k < vmrq_migrations_count && vmrq_migrations[k].version != version)
            k++;
        if (k == vmrq_migrations_count)
            snprintf(st->mismatch, sizeof(st->mismatch),
                     "the database has migration %s, which this vmrq %s does not know: it was upgraded by a"
                     " newer vmrq", name, vmrq_version());
        else if (strcmp(vmrq_migrations[k].name, name) != 0)
            snprintf(st->mismatch, sizeof(st->mismatch),
                     "the database's migration %d is '%s', this vmrq's is '%s': it was made by another build"
                     " of vmrq", version, name, vmrq_migrations[k].name);
    }
    PQclear(res);

    st->sources_differ = -1;
    if (!have_sources)
        return 0;
    if (!(sources = sources_json()))
        return -1;
    params[0] = sources;
    if (run(conn, what, sources_differ_sql, 1, params, PGRES_TUPLES_OK, &res) < 0)
        goto cleanup;
    st->sources_differ = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if (run(conn, what, "SELECT coalesce(max(vmrq_version), '') FROM schema_sources", 0, NULL,
            PGRES_TUPLES_OK, &res) < 0)
        goto cleanup;
    snprintf(st->sources_by, sizeof(st->sources_by), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    ret = 0;

cleanup:
    free(sources);
    return ret;
}

/* Functions named vmrq_* in the schema that no statement of this transaction (re)defined, and
 * the triggers that call them: what the sources no longer define. Triggers first. */
static const char stale_sql[] =
    "SELECT format('DROP TRIGGER %I ON %s', t.tgname, t.tgrelid::regclass)"
    "  FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid"
    " WHERE NOT t.tgisinternal AND p.pronamespace = current_schema()::regnamespace"
    "   AND p.proname LIKE 'vmrq\\_%' AND t.xmin <> pg_current_xact_id()::xid"
    " UNION ALL"
    " SELECT * FROM (SELECT format('DROP FUNCTION %s', p.oid::regprocedure)"
    "                  FROM pg_proc p"
    "                 WHERE p.pronamespace = current_schema()::regnamespace AND p.proname LIKE 'vmrq\\_%'"
    "                   AND p.xmin <> pg_current_xact_id()::xid ORDER BY 1) f";

/* The roles the sources grant to (sql/functions/privileges.sql). */
static const char roles_sql[] = "{vmrq_portal,vmrq_operator,vmrq_daemon}";

/* Creates the roles that do not exist yet, if this user may create roles; else fails, naming the
 * statements a superuser runs (nothing is changed). */
static int
ensure_roles(PGconn *conn)
{
    const char *params[1] = { roles_sql };
    PGresult *res;
    int ret = 0;

    if (run(conn, "db upgrade",
            "SELECT format('CREATE ROLE %I NOLOGIN', r),"
            "       (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user), current_user"
            "  FROM unnest($1::text[]) r WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r)",
            1, params, PGRES_TUPLES_OK, &res) < 0)
        return -1;
    if (PQntuples(res) > 0 && PQgetvalue(res, 0, 1)[0] != 't') {
        char stmts[512] = "";
        for (int i = 0; i < PQntuples(res); i++)
            snprintf(stmts + strlen(stmts), sizeof(stmts) - strlen(stmts), "%s%s;", i ? " " : "",
                     PQgetvalue(res, i, 0));
        vmrq_error_set(VMRQ_ERR_STATE, "db upgrade: the roles the schema grants to are missing and %s may not"
                       " create them; as a superuser run: %s", PQgetvalue(res, 0, 2), stmts);
        ret = -1;
    }
    for (int i = 0; ret == 0 && i < PQntuples(res); i++)
        ret = run_file(conn, "creating a role:", PQgetvalue(res, i, 0) + 12, PQgetvalue(res, i, 0));
    PQclear(res);
    return ret;
}

/* Runs every source, drops what they no longer define, records their checksums. */
static int
write_sources(PGconn *conn)
{
    const char *what = "db upgrade";
    const char *params[2] = { NULL, vmrq_version() };
    char *sources = NULL;
    PGresult *res;
    int ret = -1;

    /* Bodies refer to functions of other files; each is checked when first called (as
     * pg_dump's output does), and the tests call every one. Each function pins the path it is
     * made with (SET search_path FROM CURRENT): this schema, then pg_temp, named last so that a
     * caller's temporary table can never stand in for one of ours, in a SECURITY DEFINER
     * function above all (pg_temp unnamed comes first). */
    if (ensure_roles(conn) < 0 ||
        run(conn, what, "SET LOCAL check_function_bodies = off", 0, NULL, PGRES_COMMAND_OK, NULL) < 0 ||
        run(conn, what, "SELECT set_config('search_path', format('%I, pg_temp', current_schema()), true)", 0, NULL,
            PGRES_TUPLES_OK, NULL) < 0)
        return -1;
    for (size_t i = 0; i < vmrq_sources_count; i++)
        if (run_file(conn, "source", vmrq_sources[i].name, vmrq_sources[i].sql) < 0)
            return -1;
    if (run(conn, what, stale_sql, 0, NULL, PGRES_TUPLES_OK, &res) < 0)
        return -1;
    for (int i = 0; i < PQntuples(res); i++)
        if (run_file(conn, "dropping", PQgetvalue(res, i, 0) + 5, PQgetvalue(res, i, 0)) < 0) {
            PQclear(res);
            return -1;
        }
    PQclear(res);
    if (!(params[0] = sources = sources_json()))
        return -1;
    if (run(conn, what, "DELETE FROM schema_sources", 0, NULL, PGRES_COMMAND_OK, NULL) < 0 ||
        run(conn, what,
            OURS_SQL " INSERT INTO schema_sources (name, md5, vmrq_version) SELECT name, md5, $2 FROM ours",
            2, params, PGRES_COMMAND_OK, NULL) < 0)
        goto cleanup;
    ret = 0;

cleanup:
    free(sources);
    return ret;
}

/* Writes this build's catalog (vmrq_catalog_write(), sql/functions/catalog.sql). */
static int
write_catalog(PGconn *conn)
{
    char *rows = vmrq_catalog_json();
    const char *params[1] = { rows };
    int ret;

    if (!rows)
        return -1;
    ret = run(conn, "db upgrade", "SELECT vmrq_catalog_write($1::jsonb)", 1, params, PGRES_TUPLES_OK, NULL);
    free(rows);
    return ret;
}

int
vmrq_db_migrate_to(PGconn *conn, int version, bool sources)
{
    const char *lock[1] = { MIGRATE_LOCK };
    struct db_state st;
    int applied = 0;

    if (run(conn, "db upgrade", "BEGIN", 0, NULL, PGRES_COMMAND_OK, NULL) < 0)
        return -1;
    /* DROP ... IF EXISTS of what is not there yet says so at NOTICE: not the operator's concern */
    if (run(conn, "db upgrade", "SET LOCAL client_min_messages = warning", 0, NULL, PGRES_COMMAND_OK, NULL) < 0 ||
        run(conn, "db upgrade", "SELECT pg_advisory_xact_lock($1::bigint)", 1, lock, PGRES_TUPLES_OK, NULL) < 0 ||
        read_state(conn, "db upgrade", &st, true) < 0)
        goto fail;
    if (st.mismatch[0]) {
        vmrq_error_set(VMRQ_ERR_STATE, "db upgrade: %s", st.mismatch);
        goto fail;
    }
    for (size_t i = 0; i < vmrq_migrations_count && vmrq_migrations[i].version <= version; i++) {
        const struct vmrq_migration *m = &vmrq_migrations[i];
        char v[16];
        const char *params[2] = { v, m->name };

        if (m->version <= st.recorded_max)
            continue;
        snprintf(v, sizeof(v), "%d", m->version);
        if (run_file(conn, "migration", m->name, m->sql) < 0 ||
            run(conn, "db upgrade", "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, params,
                PGRES_COMMAND_OK, NULL) < 0)
            goto fail;
        applied++;
    }
    if (sources && (applied > 0 || st.sources_differ != 0) && write_sources(conn) < 0)
        goto fail;
    if (sources && write_catalog(conn) < 0)
        goto fail;
    if (run(conn, "db upgrade", "COMMIT", 0, NULL, PGRES_COMMAND_OK, NULL) < 0)
        goto fail;
    return applied;

fail:
    rollback(conn);
    return -1;
}

int
vmrq_db_upgrade(PGconn *conn)
{
    return vmrq_db_migrate_to(conn, INT_MAX, true);
}

int
vmrq_db_check(PGconn *conn)
{
    const struct vmrq_migration *last = &vmrq_migrations[vmrq_migrations_count - 1];
    struct db_state st;

    if (read_state(conn, "schema", &st, false) < 0)
        return -1;
    if (!st.exists) {
        vmrq_error_set(VMRQ_ERR_STATE, "no vmrq schema in this database: run 'vmrq db upgrade'");
        return -1;
    }
    if (st.mismatch[0]) {
        vmrq_error_set(VMRQ_ERR_STATE, "%s", st.mismatch);
        return -1;
    }
    if (st.recorded_max < last->version) {
        vmrq_error_set(VMRQ_ERR_STATE,
                       "the database schema is behind this vmrq %s (migration %d of %d, %s missing): run"
                       " 'vmrq db upgrade'",
                       vmrq_version(), st.recorded_max, last->version, last->name);
        return -1;
    }
    if (st.sources_differ != 0) {
        vmrq_error_set(VMRQ_ERR_STATE,
                       "the database's functions are not this vmrq %s's (%lld of its sources differ, written by"
                       " vmrq %s, or changed by hand): run 'vmrq db upgrade' with this version",
                       vmrq_version(), st.sources_differ < 0 ? (long long)vmrq_sources_count : st.sources_differ,
                       st.sources_by[0] ? st.sources_by : "none");
        return -1;
    }
    return 0;
}

int
vmrq_db_version(PGconn *conn)
{
    struct db_state st;

    if (read_state(conn, "schema", &st, false) < 0)
        return -1;
    return st.recorded_max;
}
