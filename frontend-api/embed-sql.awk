# embed-sql.awk - turns the files of sql/ into the C tables of migrations.h, so that `vmrq db
# upgrade` needs no files at run time: sql/NNNN_name.sql into vmrq_migrations (in version order),
# sql/functions/NAME.sql into vmrq_sources (in name order).
# Usage: awk -f embed-sql.awk sql/*.sql sql/functions/*.sql
function flush() {
    if (cur == "")
        return
    entry = entry "    },\n"
    if (is_source)
        sources = sources entry
    else
        migrations = migrations entry
    nsources += is_source
    nmigrations += !is_source
}
FNR == 1 {
    flush()
    cur = FILENAME
    name = FILENAME
    sub(/^.*\//, "", name)
    sub(/\.sql$/, "", name)
    is_source = FILENAME ~ /\/functions\/[^\/]+$/
    if (is_source) {
        entry = sprintf("    { \"%s\",\n", name)
    } else {
        version = name
        sub(/_.*$/, "", version)
        if (version !~ /^[0-9]+$/) {
            print "embed-sql.awk: " FILENAME ": a migration's name must start with a number" > "/dev/stderr"
            failed = 1
            exit 1
        }
        entry = sprintf("    { %d, \"%s\",\n", version + 0, name)
    }
}
{
    line = $0
    gsub(/\\/, "\\\\", line)
    gsub(/"/, "\\\"", line)
    entry = entry sprintf("      \"%s\\n\"\n", line)
}
END {
    if (failed)
        exit 1
    flush()
    print "/* Generated from the files of sql/ by frontend-api/embed-sql.awk: do not edit. */"
    print "#include \"migrations.h\""
    print ""
    print "const struct vmrq_migration vmrq_migrations[] = {"
    printf "%s", migrations
    print "};"
    print "const size_t vmrq_migrations_count = " nmigrations + 0 ";"
    print ""
    print "const struct vmrq_source vmrq_sources[] = {"
    printf "%s", sources
    print "};"
    print "const size_t vmrq_sources_count = " nsources + 0 ";"
}
