/*
 * jsonb.h - JSON as PostgreSQL's jsonb sees it, for the library's side of the one check.
 *
 * The database receives a request's arguments as text cast to jsonb: it verifies the text is
 * UTF-8, parses it (strict JSON, no \u0000), keeps numbers as exact decimals, and renders values
 * back in its own way (keys sorted, ", " and ": ", numbers as numeric prints them). The library
 * must refuse what the database refuses and quote what the database quotes, so it parses and
 * renders the same way here rather than trusting json-c's own tokener and printer.
 *
 * Numbers: an integer that fits in 64 bits is a json-c int; any other number is a json-c double
 * that keeps its JSON text (json_object_new_double_s()), so that the database gets the very
 * number the client wrote and messages quote it exactly.
 */
#ifndef VMRQ_JSONB_H
#define VMRQ_JSONB_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

/* The bounds of a request's arguments, checked by both sides (sql/functions/catalog.sql). */
#define VMRQ_ARGS_MAX_BYTES 65536 /* bytes of the arguments as jsonb renders them */
#define VMRQ_ARGS_MAX_DEPTH 16    /* levels of nesting, the arguments' object being the first */
#define VMRQ_QUOTE_MAX 128        /* characters of a value quoted in a message, then "..." */

/* 0 if `s` (len bytes) is UTF-8 as PostgreSQL verifies it; else -1 with PostgreSQL's words
 * ("invalid byte sequence for encoding "UTF8": 0xc3 0x28") in why[size]. */
int vmrq_json_utf8_check(const char *s, size_t len, char *why, size_t size);

/* Parses `text` as jsonb input does into *out, a new reference the caller puts (NULL for the
 * text null); 0, or -1 with PostgreSQL's words for the refusal in why[size] ("invalid input
 * syntax for type json", "unsupported Unicode escape sequence", ...). The text must have passed
 * vmrq_json_utf8_check() first, as the database checks it first. */
int vmrq_json_parse(const char *text, struct json_object **out, char *why, size_t size);

/* Bytes of `v` rendered as jsonb's text output, computed without rendering it. */
size_t vmrq_json_text_len(struct json_object *v);

/* Levels of nesting of `v`: 0 for a scalar, 1 for an object or array of scalars, ... */
int vmrq_json_depth(struct json_object *v);

/* `v` as a message quotes it: a string's own text, anything else as jsonb renders it; cut
 * after VMRQ_QUOTE_MAX characters (then "..."), control characters written \u00XX, as
 * vmrq_quote() does in SQL. The caller frees the result; NULL on out of memory. */
char *vmrq_json_quote_value(struct json_object *v);

/* The same for a text (a command or argument name). The caller frees it; NULL on out of memory. */
char *vmrq_json_quote(const char *text);

/* Whether `v` is a number whose jsonb rendering is an integer (1e2 is, 1.0 is not); if so and it
 * fits in 64 bits, *value is set and *fits is true. */
bool vmrq_json_is_integer(struct json_object *v, long long *value, bool *fits);

/* Whether `s` (UTF-8) holds a control character (U+0001-U+001F, U+007F-U+009F). */
bool vmrq_json_has_control(const char *s);

/* Characters (code points) of the UTF-8 text `s`. */
size_t vmrq_json_utf8_length(const char *s);

#endif /* VMRQ_JSONB_H */
