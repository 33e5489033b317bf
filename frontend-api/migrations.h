/*
 * migrations.h - the schema migrations, embedded at build time from the files of sql/ (see
 * embed-sql.awk), in version order.
 */
#ifndef VMRQ_MIGRATIONS_H
#define VMRQ_MIGRATIONS_H

#include <stddef.h>

struct vmrq_migration {
    int version;      /* the file's leading number */
    const char *name; /* the file's name without .sql, e.g. "0001_init" */
    const char *sql;  /* the whole file */
};

extern const struct vmrq_migration vmrq_migrations[];
extern const size_t vmrq_migrations_count;

#endif /* VMRQ_MIGRATIONS_H */
