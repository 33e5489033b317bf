/*
 * migrations.h - the schema, embedded at build time from the files of sql/ (see embed-sql.awk):
 * the migrations in version order, and the current sources of the functions, triggers and views
 * in name order (sql/functions/).
 */
#ifndef VMRQ_MIGRATIONS_H
#define VMRQ_MIGRATIONS_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

struct vmrq_migration {
    int version;      /* the file's leading number */
    const char *name; /* the file's name without .sql, e.g. "0001_baseline" */
    const char *sql;  /* the whole file */
};

struct vmrq_source {
    const char *name; /* the file's name without .sql, e.g. "claim" */
    const char *sql;  /* the whole file */
};

extern const struct vmrq_migration vmrq_migrations[];
extern const size_t vmrq_migrations_count;
extern const struct vmrq_source vmrq_sources[];
extern const size_t vmrq_sources_count;

/* vmrq_db_upgrade() as far as migration `version` (its sources and catalog too if `sources`,
 * which are this build's: they need every migration): for the test that an upgraded database
 * equals a fresh one. Returns the migrations applied, -1
 * on error (vmrq_error_*(); nothing of the transaction is kept). */
int vmrq_db_migrate_to(PGconn *conn, int version, bool sources);

#endif /* VMRQ_MIGRATIONS_H */
