/*
 * check_differential.c - the library and the database say the same thing, for any input: a
 * seeded generator makes thousands of (command, JSON text) pairs -- catalog and odd commands,
 * values of every JSON type at and beyond the catalog's bounds, odd keys, odd spacing and number
 * forms, escapes, control characters, broken JSON, invalid UTF-8, oversized and deep arguments --
 * and each goes through vmrq_request_new/set_json/validate() and through the database's check,
 * vmrq_check_args(). The verdicts and the messages must be the same.
 *
 * Documented differences, which the comparison allows and nothing else:
 *  - a time string (`at`) is parsed by the database alone: the generator gives `at` no string;
 *  - text PostgreSQL itself refuses as a jsonb parameter (broken JSON, \u0000, invalid UTF-8,
 *    a number numeric cannot hold) is refused before any vmrq code runs, in PostgreSQL's words;
 *    the library says "CMD: arguments must be a JSON object: " and then those very words;
 *  - with an unknown command and such text, the library names the command (its first call has
 *    no arguments yet), the database names the text (it reads its parameters first): both refuse.
 *
 * VMRQ_DIFF_SEED=N replays a run (the seed is printed); VMRQ_DIFF_CASES=N sets how many cases;
 * VMRQ_DIFF_DUMP=1 prints every verdict on stderr (to see what the generator reaches).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tutil.h"

static uint64_t rng;

static uint64_t
next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* 0 <= n < bound */
static unsigned
pick(unsigned bound)
{
    return (unsigned)(next_random() % bound);
}

static bool
chance(unsigned percent)
{
    return pick(100) < percent;
}

/* A growable text. */
struct text {
    char *s;
    size_t len, cap;
};

static void
add(struct text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->s = realloc(t->s, t->cap);
        ck_assert_ptr_nonnull(t->s);
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void
addf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
addf(struct text *t, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    add(t, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void
adds(struct text *t, const char *s)
{
    add(t, s, strlen(s));
}

/* JSON whitespace, usually none. */
static void
space(struct text *t)
{
    static const char *const ws[] = { " ", "  ", "\n", "\t", "\r\n ", " \t" };

    if (chance(30))
        adds(t, ws[pick(6)]);
}

static void
repeat(struct text *t, const char *s, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        adds(t, s);
}

/* A JSON number in one of its many spellings, near the interesting bounds. */
static void
gen_number(struct text *t, const vmrq_arg *arg)
{
    static const char *const odd[] = {
        "0", "-0", "-0.0", "0.0", "1", "1.0", "1.5", "1e2", "1E+2", "1e-2", "100e-2", "2.50",
        "99999999999999999999", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
        "-9223372036854775809", "18446744073709551616", "2147483647", "2147483648", "-2147483648",
        "-2147483649", "1000", "1001", "-1", "1e400", "0.000001", "123456789012345678901234567890.5",
        "1e131071", "1e131072", "1e-16383", "1e-16384", "0e-16384", "9224318015999", "9224318016000",
        "1700000000", "1700000000.5", "1.7e9", "1e1000000000", "-1e3",
    };

    if (arg && arg->type == VMRQ_ARG_INT && chance(60)) {
        long long v[] = { arg->min, arg->max, arg->min + 1, arg->max - 1 };
        long long x = v[pick(4)];
        switch (pick(4)) {
        case 0: addf(t, "%lld", x); break;
        case 1: /* one beyond, written exactly even past 64 bits */
            if (x == INT64_MAX)
                adds(t, "9223372036854775808");
            else if (x == INT64_MIN)
                adds(t, "-9223372036854775809");
            else
                addf(t, "%lld", chance(50) && x < INT64_MAX ? x + 1 : x - 1);
            break;
        case 2: addf(t, "%lld.0", x); break;
        default: addf(t, "%llde0", x); break;
        }
        return;
    }
    adds(t, odd[pick(sizeof(odd) / sizeof(odd[0]))]);
}

/* A JSON string literal: plain, catalog words, escapes, control characters, long, odd Unicode. */
static void
gen_string(struct text *t)
{
    static const char *const odd[] = {
        "", "x", "acpi", "agent", "default", "desk12", "ACPI", "a b", "a\\nb", "tab\\there",
        "\\u0001", "\\u001f", "\\u007f", "\\u0085", "\\u009f", "\\u00a0", "\xc2\x85", "\x7f",
        "\\u00e9t\\u00e9", "caf\xc3\xa9", "\\ud83d\\ude00", "\xf0\x9f\x98\x80", "\\ud800",
        "\\udc00", "\\ud800\\u0041", "\\u0000", "a\\u0000b", "quote\\\"s", "back\\\\slash",
        "sl\\/ash", "\\b\\f\\r", "1", "true", "null", "2030-01-01",
    };

    add(t, "\"", 1);
    switch (pick(10)) {
    case 0: repeat(t, "n", 120 + pick(16)); break;            /* about the 128-character bound */
    case 1: repeat(t, "\xc3\xa9", 124 + pick(8)); break;      /* ... counted in characters */
    case 2: repeat(t, "ab\\n", 30 + pick(40)); break;          /* long, with control characters */
    default: adds(t, odd[pick(sizeof(odd) / sizeof(odd[0]))]); break;
    }
    add(t, "\"", 1);
}

static void gen_value(struct text *t, const vmrq_arg *arg, int depth);

static void
gen_array(struct text *t, int depth)
{
    unsigned n = pick(4);

    add(t, "[", 1);
    for (unsigned i = 0; i < n; i++) {
        if (i)
            adds(t, ","), space(t);
        gen_value(t, NULL, depth + 1);
    }
    add(t, "]", 1);
}

static void
gen_object(struct text *t, int depth)
{
    unsigned n = pick(3);

    add(t, "{", 1);
    for (unsigned i = 0; i < n; i++) {
        if (i)
            adds(t, ","), space(t);
        gen_string(t);
        space(t), adds(t, ":"), space(t);
        gen_value(t, NULL, depth + 1);
    }
    add(t, "}", 1);
}

/* Nesting `levels` deep around a scalar: about the 16-level bound. */
static void
gen_deep(struct text *t, unsigned levels)
{
    for (unsigned i = 0; i < levels; i++)
        adds(t, i % 2 ? "{\"k\":" : "[");
    adds(t, "1");
    for (unsigned i = levels; i-- > 0;)
        adds(t, i % 2 ? "}" : "]");
}

/* A value for an argument `arg` (NULL: an odd key), of any JSON type. */
static void
gen_value(struct text *t, const vmrq_arg *arg, int depth)
{
    unsigned kind = pick(100);

    if (arg && arg->type == VMRQ_ARG_TIME && kind < 40)
        kind = 40; /* a time string is the documented exception: never one for `at` */
    if (arg && kind < 40) {
        /* a value of the argument's own type, often right */
        switch (arg->type) {
        case VMRQ_ARG_INT: gen_number(t, arg); return;
        case VMRQ_ARG_BOOL: adds(t, chance(50) ? "true" : "false"); return;
        case VMRQ_ARG_ENUM:
            if (chance(60)) {
                addf(t, "\"%s\"", arg->values[pick(3)]);
                return;
            }
            gen_string(t);
            return;
        default: gen_string(t); return;
        }
    }
    if (kind < 60)
        gen_number(t, arg);
    else if (kind < 75 && !(arg && arg->type == VMRQ_ARG_TIME))
        gen_string(t);
    else if (kind < 82)
        adds(t, chance(50) ? "true" : "false");
    else if (kind < 86)
        adds(t, "null");
    else if (kind < 92 && depth < 4)
        gen_array(t, depth);
    else if (kind < 97 && depth < 4)
        gen_object(t, depth);
    else if (depth == 0)
        gen_deep(t, 13 + pick(6));
    else
        adds(t, "0");
}

/* An argument name: the command's, the common options, or odd ones. */
static const char *
gen_key(const vmrq_command *cmd, char *buf, size_t size)
{
    static const char *const odd[] = {
        "", "bogus", "UID", " uid", "uid ", "a\\nb", "\\u0001", "caf\xc3\xa9", "\\u00e9", "\\u0000",
        "\\ud800", "id\\u005fdomain", "_force", "x\\\"y",
    };
    size_t nargs = 0, ncommon = 0;

    if (cmd)
        for (const vmrq_arg *a = cmd->args; a->name; a++)
            nargs++;
    for (const vmrq_arg *a = vmrq_common_args(); a->name; a++)
        ncommon++;
    if (chance(55) && nargs)
        return cmd->args[pick((unsigned)nargs)].name;
    if (chance(50))
        return vmrq_common_args()[pick((unsigned)ncommon)].name;
    if (chance(10)) {
        memset(buf, 'k', size - 1);
        buf[120 + pick((unsigned)(size - 121))] = '\0';
        return buf;
    }
    return odd[pick(sizeof(odd) / sizeof(odd[0]))];
}

/* An arguments object as JSON text. */
static void
gen_args(struct text *t, const vmrq_command *cmd)
{
    unsigned n = pick(6);
    char longkey[200];

    space(t);
    add(t, "{", 1);
    space(t);
    for (unsigned i = 0; i < n; i++) {
        const char *key = gen_key(cmd, longkey, sizeof(longkey));
        const vmrq_arg *arg = cmd ? vmrq_command_arg(cmd, key) : NULL;
        if (i)
            space(t), adds(t, ","), space(t);
        addf(t, "\"%s\"", key);
        space(t), adds(t, ":"), space(t);
        gen_value(t, arg, 0);
    }
    if (chance(3)) { /* too big: a long string under an odd key */
        adds(t, n ? ", \"pad\": \"" : "\"pad\": \"");
        repeat(t, "0123456789abcdef", 4090 + pick(8));
        adds(t, "\"");
    }
    space(t);
    add(t, "}", 1);
    space(t);
}

/* Breaks a JSON text: cut, a character inserted or removed, trailing text, invalid UTF-8. */
static void
break_json(struct text *t)
{
    static const char *const junk[] = { ",", ":", "{", "}", "[", "]", "\"", "\\", "x", "'", "\x01",
                                        "\xff", "\xc3", "\xc3(", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                        "\xe2\x82", "/*", "NaN", "1", " ", "\t" };
    size_t at = t->len ? pick((unsigned)t->len) : 0;
    const char *j = junk[pick(sizeof(junk) / sizeof(junk[0]))];
    size_t jl = strlen(j);

    switch (pick(4)) {
    case 0: t->len = at, t->s[at] = '\0'; break;
    case 1:
        if (t->len) {
            memmove(t->s + at, t->s + at + 1, t->len - at);
            t->len--;
        }
        break;
    case 2: adds(t, j); break;
    default:
        add(t, j, jl); /* grow first, then move the tail after `at` */
        memmove(t->s + at + jl, t->s + at, t->len - jl - at);
        memcpy(t->s + at, j, jl);
        break;
    }
}

/* One case: a command and the JSON text of its arguments (caller frees both). */
static void
gen_case(char **command, char **args)
{
    static const char *const odd_commands[] = {
        "", "nope", "Start", "start ", "a\nb", "\x7f", "caf\xc3\xa9", "\xff", "sh\xc3", "ping_backend\t",
    };
    const vmrq_command *cmd = NULL;
    struct text t = { 0 };

    if (chance(90)) {
        cmd = vmrq_command_at(pick((unsigned)vmrq_command_count()));
        *command = strdup(cmd->name);
    } else if (chance(20)) {
        char buf[201];
        memset(buf, 'c', 200);
        buf[130 + pick(70)] = '\0';
        *command = strdup(buf);
    } else {
        *command = strdup(odd_commands[pick(sizeof(odd_commands) / sizeof(odd_commands[0]))]);
    }
    switch (pick(20)) {
    case 0: {
        static const char *const other[] = { "[1, 2]", "1", "null", "\"{}\"", "true", "[]", "{}",
                                             "", " ", "{}{}", "{} x", "{\"a\":1,}", "{'a':1}" };
        adds(&t, other[pick(sizeof(other) / sizeof(other[0]))]);
        break;
    }
    case 1: case 2: case 3:
        gen_args(&t, cmd);
        break_json(&t);
        break;
    default:
        gen_args(&t, cmd);
        break;
    }
    if (!t.s)
        add(&t, "", 0);
    *args = t.s;
}

/* The library's verdict: "" or its message; *stage says which call refused (0 none, 1
 * vmrq_request_new, 2 vmrq_request_set_json, 3 vmrq_request_validate). Sets *sent to the
 * arguments as the library would send them, when valid (caller frees). */
static char *
library_says(const char *command, const char *args, int *stage, char **sent)
{
    vmrq_request *req = vmrq_request_new(command);
    char *msg;

    *sent = NULL;
    if (!req) {
        *stage = 1;
        return strdup(vmrq_error_message());
    }
    if (vmrq_request_set_json(req, args) < 0)
        *stage = 2, msg = strdup(vmrq_error_message());
    else if (vmrq_request_validate(req) < 0)
        *stage = 3, msg = strdup(vmrq_error_message());
    else
        *stage = 0, msg = strdup(""), *sent = strdup(vmrq_request_args_json(req));
    vmrq_request_free(req);
    return msg;
}

/* The database's verdict: "" or its primary message; its SQLSTATE in state[6]. */
static char *
database_says(const char *command, const char *args, char state[6])
{
    const char *params[2] = { command, args };
    PGresult *res = PQexecParams(t_db, "SELECT vmrq_check_args($1, $2::jsonb)", 2, NULL, params, NULL,
                                 NULL, 0);
    char *msg;

    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        msg = strdup("");
        strcpy(state, "00000");
    } else {
        const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        msg = strdup(m ? m : PQerrorMessage(t_db));
        snprintf(state, 6, "%s", s ? s : "?????");
    }
    PQclear(res);
    return msg;
}

/* Whether the verdicts agree, under the rules of the file's comment. */
static bool
agree(const char *command, const char *lib, int stage, const char *db, const char *state)
{
    char prefixed[1024];

    if (strcmp(lib, db) == 0)
        return true;
    if (stage == 2) { /* PostgreSQL's own refusal of the text, after the library's prefix */
        snprintf(prefixed, sizeof(prefixed), "%s: arguments must be a JSON object: %s", command, db);
        return strcmp(lib, prefixed) == 0;
    }
    if (stage == 1) /* unknown command; the database read bad text first */
        return strcmp(state, "22023") != 0 && *lib;
    return false;
}

/* The one-line rendering of a case for a failure report. */
static void
printable(const char *s, char *buf, size_t size)
{
    size_t n = 0;

    for (; *s && n + 8 < size; s++)
        n += (unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f
             ? (size_t)snprintf(buf + n, size - n, "\\x%02x", (unsigned char)*s)
             : (size_t)snprintf(buf + n, size - n, "%c", *s);
    buf[n] = '\0';
}

START_TEST(test_library_and_database_agree)
{
    const char *seed_env = getenv("VMRQ_DIFF_SEED"), *cases_env = getenv("VMRQ_DIFF_CASES");
    uint64_t seed = seed_env ? strtoull(seed_env, NULL, 10)
                             : ((uint64_t)time(NULL) << 16) ^ (uint64_t)getpid();
    int cases = cases_env ? atoi(cases_env) : 3000, failures = 0;
    int verdicts[2] = { 0, 0 };

    if (seed == 0)
        seed = 1;
    rng = seed;
    printf("differential: seed %llu, %d cases (VMRQ_DIFF_SEED=%llu replays them)\n",
           (unsigned long long)seed, cases, (unsigned long long)seed);
    fflush(stdout);
    for (int i = 0; i < cases; i++) {
        char *command, *args, *lib, *db, *sent, state[6];
        int stage;

        gen_case(&command, &args);
        lib = library_says(command, args, &stage, &sent);
        db = database_says(command, args, state);
        verdicts[*lib != '\0']++;
        if (getenv("VMRQ_DIFF_DUMP"))
            fprintf(stderr, "DUMP %d|%s|%s\n", stage, lib, db);
        if (!agree(command, lib, stage, db, state) && failures++ < 10) {
            char c[512], a[2048];
            printable(command, c, sizeof(c));
            printable(args, a, sizeof(a));
            fprintf(stderr, "differential: case %d (seed %llu): command \"%s\" args \"%s\"\n"
                            "  library:  %s\n  database: %s (%s)\n",
                    i, (unsigned long long)seed, c, a, lib, db, state);
        }
        /* a valid request is sent as the very arguments it was given */
        if (sent) {
            const char *params[2] = { args, sent };
            if (t_sql_int(t_db, "SELECT ($1::jsonb = $2::jsonb)::int", 2, params) != 1 && failures++ < 10) {
                char a[2048];
                printable(args, a, sizeof(a));
                fprintf(stderr, "differential: case %d (seed %llu): \"%s\" is sent as \"%s\"\n", i,
                        (unsigned long long)seed, a, sent);
            }
        }
        free(command);
        free(args);
        free(lib);
        free(db);
        free(sent);
    }
    printf("differential: %d valid, %d refused\n", verdicts[0], verdicts[1]);
    ck_assert_msg(failures == 0, "%d of %d cases disagree (seed %llu)", failures, cases,
                  (unsigned long long)seed);
    /* the generator reaches valid requests too: about 3% of cases (68 to 109 of 3,000 in twelve
     * runs); 2% failed one seed in a few hundred */
    ck_assert_int_gt(verdicts[0], cases / 100);
}
END_TEST

Suite *
differential_suite(void)
{
    Suite *s = suite_create("differential");
    TCase *tc = tcase_create("differential");

    tcase_set_tags(tc, "db");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, t_db_setup, t_db_teardown);
    tcase_add_test(tc, test_library_and_database_agree);
    suite_add_tcase(s, tc);
    return s;
}
