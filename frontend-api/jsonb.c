/*
 * jsonb.c - JSON as PostgreSQL's jsonb reads and prints it (see jsonb.h): UTF-8 verification, a
 * strict parser that refuses what jsonb input refuses, in the same order and with the same
 * words, numbers kept as the exact decimals numeric makes of them, and jsonb's text rendering.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonb.h"
#include "validate.h"

/* PostgreSQL's words, as its errors say them. */
#define WHY_SYNTAX "invalid input syntax for type json"
#define WHY_ZERO "unsupported Unicode escape sequence"
#define WHY_NUMERIC "value overflows numeric format"
#define WHY_DEEP "stack depth limit exceeded"
#define WHY_MEMORY "out of memory"

/* numeric's limits: digits before the point (a weight of 32767 base-10000 digits) and after. */
#define NUMERIC_INT_DIGITS_MAX 131072
#define NUMERIC_DSCALE_MAX 16383
/* Nesting the parser follows before it gives up (the bound checked later is far lower). */
#define PARSE_DEPTH_MAX 1000

/* ---------------------------------------------------------------- UTF-8 */

/* Bytes of the character starting with byte c, as PostgreSQL counts them. */
static size_t
utf8_mblen(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        return 2;
    if ((c & 0xf0) == 0xe0)
        return 3;
    if ((c & 0xf8) == 0xf0)
        return 4;
    return 1;
}

/* Whether the l bytes at s are one legal UTF-8 character (no overlong form, no surrogate,
 * nothing above U+10FFFF). */
static bool
utf8_legal(const unsigned char *s, size_t l)
{
    unsigned char a;

    switch (l) {
    case 4:
        if (s[3] < 0x80 || s[3] > 0xbf)
            return false;
        /* fall through */
    case 3:
        if (s[2] < 0x80 || s[2] > 0xbf)
            return false;
        /* fall through */
    case 2:
        a = s[1];
        if (s[0] == 0xe0 ? (a < 0xa0 || a > 0xbf)
            : s[0] == 0xed ? (a < 0x80 || a > 0x9f)
            : s[0] == 0xf0 ? (a < 0x90 || a > 0xbf)
            : s[0] == 0xf4 ? (a < 0x80 || a > 0x8f)
            : (a < 0x80 || a > 0xbf))
            return false;
        /* fall through */
    case 1:
        return !((s[0] >= 0x80 && s[0] < 0xc2) || s[0] > 0xf4);
    default:
        return false;
    }
}

int
vmrq_json_utf8_check(const char *text, size_t len, char *why, size_t size)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;

    while (i < len) {
        size_t l = utf8_mblen(s[i]);
        if (s[i] == 0 || (s[i] >= 0x80 && (len - i < l || !utf8_legal(s + i, l)))) {
            size_t n = len - i < l ? len - i : l, used;
            used = (size_t)snprintf(why, size, "invalid byte sequence for encoding \"UTF8\":");
            for (size_t j = 0; j < n && used < size; j++)
                used += (size_t)snprintf(why + used, size - used, " 0x%02x", s[i + j]);
            return -1;
        }
        i += l;
    }
    return 0;
}

size_t
vmrq_json_utf8_length(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* The code point at *s (valid UTF-8), advancing s. */
static unsigned
utf8_next(const char **s)
{
    const unsigned char *p = (const unsigned char *)*s;
    size_t l = utf8_mblen(p[0]);
    unsigned cp = l == 1 ? p[0] : l == 2 ? p[0] & 0x1f : l == 3 ? p[0] & 0x0f : p[0] & 0x07;

    for (size_t i = 1; i < l && p[i]; i++)
        cp = (cp << 6) | (p[i] & 0x3f);
    for (size_t i = 0; i < l && **s; i++)
        (*s)++;
    return cp;
}

static bool
is_control(unsigned cp)
{
    return (cp >= 0x01 && cp <= 0x1f) || (cp >= 0x7f && cp <= 0x9f);
}

bool
vmrq_json_has_control(const char *s)
{
    while (*s)
        if (is_control(utf8_next(&s)))
            return true;
    return false;
}

/* ---------------------------------------------------------------- a growable string */

struct sb {
    char *buf;
    size_t len, cap;
    bool failed;
};

static void
sb_add(struct sb *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *grown;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (!(grown = realloc(b->buf, cap))) {
            b->failed = true;
            return;
        }
        b->buf = grown;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

static void
sb_str(struct sb *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* The string, or NULL (freed) if a step ran out of memory. */
static char *
sb_finish(struct sb *b)
{
    sb_add(b, "", 0);
    if (b->failed) {
        free(b->buf);
        return NULL;
    }
    return b->buf;
}

/* ---------------------------------------------------------------- numbers */

/* A JSON number token as numeric holds it: its digits and where the point falls. */
struct number {
    bool neg, zero, overflow;
    const char *digits; /* integer then fraction digits, without the point */
    size_t ndigits;
    size_t nint;         /* digits before the point in the token */
    long long point;     /* position of the point in the digits, exponent applied */
    long long lz;        /* leading zeros of the digits */
    long long dscale;    /* digits after the point numeric shows */
};

/* Reads a token of JSON number syntax; digits are copied into dbuf (tok's length + 1). */
static void
number_read(const char *tok, char *dbuf, struct number *n)
{
    const char *p = tok;
    long long exp = 0, nfrac = 0;
    bool eneg = false;

    memset(n, 0, sizeof(*n));
    n->digits = dbuf;
    if (*p == '-')
        n->neg = true, p++;
    for (; *p >= '0' && *p <= '9'; p++)
        dbuf[n->ndigits++] = *p, n->nint++;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            dbuf[n->ndigits++] = *p, nfrac++;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            eneg = *p++ == '-';
        for (; *p >= '0' && *p <= '9'; p++)
            if (exp < INT_MAX)
                exp = exp * 10 + (*p - '0');
        if (exp >= INT_MAX / 2) /* numeric refuses such exponents outright */
            n->overflow = true;
        if (eneg)
            exp = -exp;
    }
    dbuf[n->ndigits] = '\0';
    while (n->lz < (long long)n->ndigits && n->digits[n->lz] == '0')
        n->lz++;
    n->zero = n->lz == (long long)n->ndigits;
    n->point = (long long)n->nint + exp;
    n->dscale = nfrac - exp > 0 ? nfrac - exp : 0;
    if (n->dscale > NUMERIC_DSCALE_MAX || (!n->zero && n->point - n->lz > NUMERIC_INT_DIGITS_MAX))
        n->overflow = true;
}

/* The digit at position i of the number's digits, zeros on either side. */
static char
number_digit(const struct number *n, long long i)
{
    return i >= 0 && i < (long long)n->ndigits ? n->digits[i] : '0';
}

/* Bytes of numeric's text output of n. */
static size_t
number_len(const struct number *n)
{
    long long nint = n->zero || n->point - n->lz <= 0 ? 1 : n->point - n->lz;

    return (size_t)((n->neg && !n->zero) + nint + (n->dscale ? 1 + n->dscale : 0));
}

/* Appends numeric's text output of n, at most `max` bytes of it. */
static void
number_render(const struct number *n, struct sb *b, size_t max)
{
    size_t before = b->len;
    char c;

#define PUT(ch) do { if (b->len - before >= max) return; c = (ch); sb_add(b, &c, 1); } while (0)
    if (n->neg && !n->zero)
        PUT('-');
    if (n->zero || n->point - n->lz <= 0)
        PUT('0');
    else
        for (long long i = n->lz; i < n->point; i++)
            PUT(number_digit(n, i));
    if (n->dscale) {
        PUT('.');
        for (long long i = 0; i < n->dscale; i++)
            PUT(number_digit(n, n->point + i));
    }
#undef PUT
}

/* The JSON text of a number value that is not a 64-bit int (caller frees), or NULL. */
static char *
number_token(struct json_object *v)
{
    const char *ud = json_object_get_userdata(v);

    if (ud)
        return strdup(ud);
    return strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
}

bool
vmrq_json_is_integer(struct json_object *v, long long *value, bool *fits)
{
    struct number n;
    char *tok, *dbuf;
    bool integer = false;

    *fits = false;
    if (json_object_is_type(v, json_type_int)) {
        *value = (long long)json_object_get_int64(v);
        return *fits = true;
    }
    if (!json_object_is_type(v, json_type_double) || !(tok = number_token(v)))
        return false;
    if ((dbuf = malloc(strlen(tok) + 1))) {
        number_read(tok, dbuf, &n);
        integer = n.dscale == 0;
        free(dbuf);
    }
    free(tok);
    return integer;
}

/* ---------------------------------------------------------------- the parser */

enum token { T_ERROR, T_END, T_LBRACE, T_RBRACE, T_LBRACKET, T_RBRACKET, T_COMMA, T_COLON,
             T_STRING, T_NUMBER, T_TRUE, T_FALSE, T_NULL };

struct parser {
    const char *p;
    enum token tok;
    const char *start;   /* where the current token begins */
    size_t toklen;       /* its length (numbers) */
    struct sb str;       /* the current string token, de-escaped */
    const char *why;     /* PostgreSQL's words once an error is found */
    int depth;
};

static bool
is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c >= 0x80;
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int
hex_value(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void
sb_codepoint(struct sb *b, unsigned cp)
{
    char u[4];
    size_t n;

    if (cp < 0x80)
        u[0] = (char)cp, n = 1;
    else if (cp < 0x800)
        u[0] = (char)(0xc0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    else if (cp < 0x10000)
        u[0] = (char)(0xe0 | (cp >> 12)), u[1] = (char)(0x80 | ((cp >> 6) & 0x3f)),
        u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    else
        u[0] = (char)(0xf0 | (cp >> 18)), u[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    sb_add(b, u, n);
}

/* A string token (ps->p at its opening quote) into ps->str; T_ERROR with ps->why. */
static enum token
lex_string(struct parser *ps)
{
    const char *s = ps->p + 1;
    long hi = -1;

    ps->str.len = 0;
    sb_add(&ps->str, "", 0);
    for (;; s++) {
        if (*s == '\0' || (unsigned char)*s < 0x20)
            goto syntax; /* unterminated, or a control character not escaped */
        if (*s == '"')
            break;
        if (*s == '\\') {
            s++;
            if (*s == 'u') {
                unsigned cp = 0;
                for (int i = 1; i <= 4; i++) {
                    int h = hex_value(s[i]);
                    if (h < 0)
                        goto syntax;
                    cp = cp * 16 + (unsigned)h;
                }
                s += 4;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (hi != -1)
                        goto syntax;
                    hi = (long)cp;
                    continue;
                } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                    if (hi == -1)
                        goto syntax;
                    cp = 0x10000 + (((unsigned)hi - 0xd800) << 10) + (cp - 0xdc00);
                    hi = -1;
                }
                if (hi != -1)
                    goto syntax;
                if (cp == 0) {
                    ps->why = WHY_ZERO;
                    return T_ERROR;
                }
                sb_codepoint(&ps->str, cp);
                continue;
            }
            if (hi != -1)
                goto syntax;
            switch (*s) {
            case '"': case '\\': case '/': sb_add(&ps->str, s, 1); break;
            case 'b': sb_add(&ps->str, "\b", 1); break;
            case 'f': sb_add(&ps->str, "\f", 1); break;
            case 'n': sb_add(&ps->str, "\n", 1); break;
            case 'r': sb_add(&ps->str, "\r", 1); break;
            case 't': sb_add(&ps->str, "\t", 1); break;
            default: goto syntax;
            }
            continue;
        }
        if (hi != -1)
            goto syntax;
        sb_add(&ps->str, s, 1);
    }
    if (hi != -1)
        goto syntax;
    if (ps->str.failed) {
        ps->why = WHY_MEMORY;
        return T_ERROR;
    }
    ps->p = s + 1;
    return T_STRING;

syntax:
    ps->why = WHY_SYNTAX;
    return T_ERROR;
}

/* A number token at ps->p; T_ERROR for a malformed one. */
static enum token
lex_number(struct parser *ps)
{
    const char *s = ps->p;

    if (*s == '-')
        s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        while (is_digit(*s))
            s++;
    else
        goto syntax;
    if (*s == '.') {
        if (!is_digit(*++s))
            goto syntax;
        while (is_digit(*s))
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!is_digit(*s))
            goto syntax;
        while (is_digit(*s))
            s++;
    }
    if (is_alnum((unsigned char)*s))
        goto syntax;
    ps->toklen = (size_t)(s - ps->p);
    ps->p = s;
    return T_NUMBER;

syntax:
    ps->why = WHY_SYNTAX;
    return T_ERROR;
}

/* The next token into ps->tok; -1 on a lexical error. */
static int
advance(struct parser *ps)
{
    const char *s;

    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
        ps->p++;
    ps->start = s = ps->p;
    switch (*s) {
    case '\0': ps->tok = T_END; return 0;
    case '{': ps->tok = T_LBRACE; break;
    case '}': ps->tok = T_RBRACE; break;
    case '[': ps->tok = T_LBRACKET; break;
    case ']': ps->tok = T_RBRACKET; break;
    case ',': ps->tok = T_COMMA; break;
    case ':': ps->tok = T_COLON; break;
    case '"': ps->tok = lex_string(ps); return ps->tok == T_ERROR ? -1 : 0;
    case '-': case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
    case '8': case '9':
        ps->tok = lex_number(ps);
        return ps->tok == T_ERROR ? -1 : 0;
    default: {
        size_t n = 0;
        while (is_alnum((unsigned char)s[n]))
            n++;
        ps->tok = n == 4 && memcmp(s, "true", 4) == 0 ? T_TRUE
                : n == 5 && memcmp(s, "false", 5) == 0 ? T_FALSE
                : n == 4 && memcmp(s, "null", 4) == 0 ? T_NULL : T_ERROR;
        if (ps->tok == T_ERROR) {
            ps->why = WHY_SYNTAX;
            return -1;
        }
        ps->p += n;
        return 0;
    }
    }
    ps->p++;
    return 0;
}

static int parse_value(struct parser *ps, struct json_object **out);

/* Records PostgreSQL's words for the first problem (a lexical error has set them already). */
static int
fail(struct parser *ps, const char *why)
{
    if (!ps->why)
        ps->why = why;
    return -1;
}

static int
parse_number(struct parser *ps, struct json_object **out)
{
    char *tok = strndup(ps->start, ps->toklen), *dbuf = malloc(ps->toklen + 1), *end;
    struct number n;
    int ret = -1;

    *out = NULL;
    if (!tok || !dbuf) {
        fail(ps, WHY_MEMORY);
        goto cleanup;
    }
    /* jsonb reads the token after a number before it converts the number */
    if (advance(ps) < 0)
        goto cleanup;
    number_read(tok, dbuf, &n);
    if (n.overflow) {
        fail(ps, WHY_NUMERIC);
        goto cleanup;
    }
    if (n.dscale == 0 && (n.zero || n.point - n.lz <= 19)) {
        struct sb canon = { 0 };
        /* numeric's digits (1e2 is 100, -0 is 0), then a 64-bit int if they fit */
        number_render(&n, &canon, SIZE_MAX);
        if (!(end = sb_finish(&canon))) {
            fail(ps, WHY_MEMORY);
            goto cleanup;
        }
        errno = 0;
        long long x = strtoll(end, NULL, 10);
        if (errno == 0)
            *out = json_object_new_int64(x);
        free(end);
        if (errno == 0 && !*out) {
            fail(ps, WHY_MEMORY);
            goto cleanup;
        }
    }
    if (!*out && !(*out = json_object_new_double_s(strtod(tok, NULL), tok))) {
        fail(ps, WHY_MEMORY);
        goto cleanup;
    }
    ret = 0;

cleanup:
    free(tok);
    free(dbuf);
    return ret;
}

static int
parse_container(struct parser *ps, bool object, struct json_object **out)
{
    enum token close = object ? T_RBRACE : T_RBRACKET;
    struct json_object *c = object ? json_object_new_object() : json_object_new_array(), *v = NULL;
    char *key = NULL;
    int ret = -1;

    if (!c) {
        fail(ps, WHY_MEMORY);
        goto cleanup;
    }
    if (++ps->depth > PARSE_DEPTH_MAX) {
        fail(ps, WHY_DEEP);
        goto cleanup;
    }
    if (advance(ps) < 0)
        goto cleanup;
    while (ps->tok != close) {
        if (object) {
            if (ps->tok != T_STRING) {
                fail(ps, WHY_SYNTAX);
                goto cleanup;
            }
            if (!(key = strdup(ps->str.buf))) {
                fail(ps, WHY_MEMORY);
                goto cleanup;
            }
            if (advance(ps) < 0)
                goto cleanup;
            if (ps->tok != T_COLON) {
                fail(ps, WHY_SYNTAX);
                goto cleanup;
            }
            if (advance(ps) < 0)
                goto cleanup;
        }
        if (parse_value(ps, &v) < 0)
            goto cleanup;
        if (object ? json_object_object_add(c, key, v) < 0 : json_object_array_add(c, v) < 0) {
            fail(ps, WHY_MEMORY);
            goto cleanup;
        }
        v = NULL;
        free(key);
        key = NULL;
        if (ps->tok == T_COMMA) {
            if (advance(ps) < 0)
                goto cleanup;
            if (ps->tok == close) { /* a trailing comma */
                fail(ps, WHY_SYNTAX);
                goto cleanup;
            }
        } else if (ps->tok != close) {
            fail(ps, WHY_SYNTAX);
            goto cleanup;
        }
    }
    ps->depth--;
    if (advance(ps) < 0)
        goto cleanup;
    *out = c;
    c = NULL;
    ret = 0;

cleanup:
    json_object_put(c);
    json_object_put(v);
    free(key);
    return ret;
}

/* The value whose first token is ps->tok into *out (NULL for JSON null); on return ps->tok is
 * the token after it. */
static int
parse_value(struct parser *ps, struct json_object **out)
{
    *out = NULL;
    switch (ps->tok) {
    case T_LBRACE: return parse_container(ps, true, out);
    case T_LBRACKET: return parse_container(ps, false, out);
    case T_NUMBER: return parse_number(ps, out);
    case T_STRING: *out = json_object_new_string_len(ps->str.buf, (int)ps->str.len); break;
    case T_TRUE: *out = json_object_new_boolean(1); break;
    case T_FALSE: *out = json_object_new_boolean(0); break;
    case T_NULL: return advance(ps);
    default: return fail(ps, WHY_SYNTAX);
    }
    if (!*out)
        return fail(ps, WHY_MEMORY);
    if (advance(ps) < 0) {
        json_object_put(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

int
vmrq_json_parse(const char *text, struct json_object **out, char *why, size_t size)
{
    struct parser ps = { .p = text };
    int ret = 0;

    *out = NULL;
    if (advance(&ps) < 0 || parse_value(&ps, out) < 0 || (ps.tok != T_END && fail(&ps, WHY_SYNTAX))) {
        json_object_put(*out);
        *out = NULL;
        snprintf(why, size, "%s", ps.why);
        ret = -1;
    }
    free(ps.str.buf);
    return ret;
}

/* ---------------------------------------------------------------- jsonb's rendering */

static int
keycmp_indirect(const void *a, const void *b)
{
    return vmrq_validate_keycmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of object o in jsonb's order (caller frees the array, not the keys); NULL if none
 * or out of memory (*failed tells). */
static const char **
sorted_keys(struct json_object *o, size_t *n, bool *failed)
{
    const char **keys;
    size_t len = (size_t)json_object_object_length(o);

    *n = 0;
    *failed = false;
    if (len == 0)
        return NULL;
    if (!(keys = calloc(len, sizeof(*keys)))) {
        *failed = true;
        return NULL;
    }
    json_object_object_foreach(o, k, val) {
        (void)val;
        keys[(*n)++] = k;
    }
    qsort(keys, *n, sizeof(*keys), keycmp_indirect);
    return keys;
}

/* Bytes of a string as jsonb's text output escapes it, quotes included. */
static size_t
string_len(const char *s, size_t n)
{
    size_t len = 2;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        len += c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t'
             ? 2 : c < 0x20 ? 6 : 1;
    }
    return len;
}

static void
string_render(struct sb *b, const char *s, size_t n)
{
    sb_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        switch (c) {
        case '"': sb_add(b, "\\\"", 2); break;
        case '\\': sb_add(b, "\\\\", 2); break;
        case '\b': sb_add(b, "\\b", 2); break;
        case '\f': sb_add(b, "\\f", 2); break;
        case '\n': sb_add(b, "\\n", 2); break;
        case '\r': sb_add(b, "\\r", 2); break;
        case '\t': sb_add(b, "\\t", 2); break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                sb_add(b, esc, 6);
            } else {
                sb_add(b, (const char *)&s[i], 1);
            }
        }
    }
    sb_add(b, "\"", 1);
}

/* Renders (b != NULL) or measures v as jsonb's text output; the length in bytes. */
static size_t
walk(struct json_object *v, struct sb *b)
{
    size_t len = 0, n = 0;
    char num[32];

    switch (json_object_get_type(v)) {
    case json_type_null:
        if (b)
            sb_str(b, "null");
        return 4;
    case json_type_boolean:
        if (b)
            sb_str(b, json_object_get_boolean(v) ? "true" : "false");
        return json_object_get_boolean(v) ? 4 : 5;
    case json_type_int:
        len = (size_t)snprintf(num, sizeof(num), "%lld", (long long)json_object_get_int64(v));
        if (b)
            sb_add(b, num, len);
        return len;
    case json_type_double: {
        char *tok = number_token(v), *dbuf = tok ? malloc(strlen(tok) + 1) : NULL;
        struct number nb;
        if (!tok || !dbuf) {
            if (b)
                b->failed = true;
        } else {
            number_read(tok, dbuf, &nb);
            len = number_len(&nb);
            if (b)
                number_render(&nb, b, SIZE_MAX);
        }
        free(tok);
        free(dbuf);
        return len;
    }
    case json_type_string:
        if (b)
            string_render(b, json_object_get_string(v), (size_t)json_object_get_string_len(v));
        return string_len(json_object_get_string(v), (size_t)json_object_get_string_len(v));
    case json_type_array:
        n = json_object_array_length(v);
        if (b)
            sb_add(b, "[", 1);
        for (size_t i = 0; i < n; i++) {
            if (i && b)
                sb_add(b, ", ", 2);
            len += (i ? 2 : 0) + walk(json_object_array_get_idx(v, i), b);
        }
        if (b)
            sb_add(b, "]", 1);
        return len + 2;
    case json_type_object: {
        bool failed;
        const char **keys = sorted_keys(v, &n, &failed);
        if (failed && b)
            b->failed = true;
        if (b)
            sb_add(b, "{", 1);
        for (size_t i = 0; i < n; i++) {
            if (i && b)
                sb_add(b, ", ", 2);
            if (b) {
                string_render(b, keys[i], strlen(keys[i]));
                sb_add(b, ": ", 2);
            }
            len += (i ? 2 : 0) + string_len(keys[i], strlen(keys[i])) + 2 +
                   walk(json_object_object_get(v, keys[i]), b);
        }
        if (b)
            sb_add(b, "}", 1);
        free(keys);
        return len + 2;
    }
    }
    return 0;
}

size_t
vmrq_json_text_len(struct json_object *v)
{
    return walk(v, NULL);
}

int
vmrq_json_depth(struct json_object *v)
{
    int depth = 0, d;

    if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++)
            if ((d = vmrq_json_depth(json_object_array_get_idx(v, i))) > depth)
                depth = d;
        return depth + 1;
    }
    if (json_object_is_type(v, json_type_object)) {
        json_object_object_foreach(v, k, val) {
            (void)k;
            if ((d = vmrq_json_depth(val)) > depth)
                depth = d;
        }
        return depth + 1;
    }
    return 0;
}

char *
vmrq_json_quote(const char *text)
{
    struct sb b = { 0 };
    const char *s = text;
    size_t chars = 0;

    sb_add(&b, "", 0);
    while (*s && chars < VMRQ_QUOTE_MAX) {
        const char *at = s;
        unsigned cp = utf8_next(&s);
        char esc[8];
        if (is_control(cp)) {
            snprintf(esc, sizeof(esc), "\\u%04x", cp);
            sb_add(&b, esc, 6);
        } else {
            sb_add(&b, at, (size_t)(s - at));
        }
        chars++;
    }
    if (*s)
        sb_add(&b, "...", 3);
    return sb_finish(&b);
}

char *
vmrq_json_quote_value(struct json_object *v)
{
    struct sb b = { 0 };
    char *text, *q;

    if (json_object_is_type(v, json_type_string))
        return vmrq_json_quote(json_object_get_string(v));
    walk(v, &b);
    if (!(text = sb_finish(&b)))
        return NULL;
    q = vmrq_json_quote(text);
    free(text);
    return q;
}
