# embed-sql.awk - turns sql/NNNN_name.sql files into a C table of migrations (migrations.h), so
# that `vmrq db upgrade` needs no files at run time. Usage: awk -f embed-sql.awk sql/*.sql
BEGIN {
    print "/* Generated from the files of sql/ by frontend-api/embed-sql.awk: do not edit. */"
    print "#include \"migrations.h\""
    print ""
    print "const struct vmrq_migration vmrq_migrations[] = {"
}
FNR == 1 {
    if (NR > 1)
        print "    },"
    name = FILENAME
    sub(/^.*\//, "", name)
    sub(/\.sql$/, "", name)
    version = name
    sub(/_.*$/, "", version)
    if (version !~ /^[0-9]+$/) {
        print "embed-sql.awk: " FILENAME ": name must start with a number" > "/dev/stderr"
        exit 1
    }
    printf "    { %d, \"%s\",\n", version + 0, name
}
{
    line = $0
    gsub(/\\/, "\\\\", line)
    gsub(/"/, "\\\"", line)
    printf "      \"%s\\n\"\n", line
}
END {
    if (NR > 0)
        print "    },"
    print "};"
    print ""
    print "const size_t vmrq_migrations_count = sizeof(vmrq_migrations) / sizeof(vmrq_migrations[0]);"
}
