#ifndef RELFLIP_JSON_H
#define RELFLIP_JSON_H

#include "buf.h"

/*
 * JSON: one writer (src/json.c) for everything relflip writes, events,
 * release records and log lines alike, and one reader (src/json-read.c,
 * the json-c adapter and the only file that includes json-c).
 *
 * The writer appends to a struct buf in one pass, members in the order
 * given, as {"key": value, "key": value}: one line, no newline.
 */

/*
 * Append s to b as a JSON string, with the quotes. Everything that could
 * break a line or reach a terminal raw is escaped as \uXXXX: C0 controls
 * (\n, \r and \t as such), DEL, C1 controls (U+0080..U+009F) and the line
 * and paragraph separators U+2028 and U+2029. A byte that is not part of
 * valid UTF-8 (overlong forms, surrogates and past U+10FFFF included)
 * becomes U+FFFD, one for each byte, so the line is always valid UTF-8.
 */
void json_quote(struct buf *b, const char *s);

/* An object being written; members go into b. */
struct json_obj {
	struct buf *b;
	size_t n; /* members written so far */
};

/* Write '{' to b and start o. */
void json_obj_begin(struct json_obj *o, struct buf *b);

/* Write '}'. */
void json_obj_end(struct json_obj *o);

/* "key": "v"; a NULL v is written as null. */
void json_obj_str(struct json_obj *o, const char *key, const char *v);

void json_obj_int(struct json_obj *o, const char *key, long long v);
void json_obj_uint(struct json_obj *o, const char *key, unsigned long long v);
void json_obj_bool(struct json_obj *o, const char *key, int v);
void json_obj_null(struct json_obj *o, const char *key);

/* Three decimals ("0.250"); NaN and infinities as null. */
void json_obj_double(struct json_obj *o, const char *key, double v);

/*
 * "key": {...}: start child inside o. Write child's members, then
 * json_obj_end(child), before the next member of o.
 */
void json_obj_child(struct json_obj *o, const char *key,
		    struct json_obj *child);

/*
 * Reading: one JSON object, parsed by json-c. Values are looked up by key
 * at the top level.
 */
struct json_doc;

enum json_read_kind {
	JR_ABSENT, /* no such key */
	JR_NULL,
	JR_BOOL,
	JR_INT,
	JR_DOUBLE,
	JR_STRING,
	JR_OTHER, /* an array or an object */
};

/* Parse text holding one JSON object; NULL when it is not one. */
struct json_doc *json_read_object(const char *text);

void json_read_free(struct json_doc *d);

enum json_read_kind json_read_kind(const struct json_doc *d, const char *key);

/*
 * The string at key, borrowed until json_read_free(); NULL when absent or
 * not a string.
 */
const char *json_read_str(const struct json_doc *d, const char *key);

/*
 * The value at key as an integer: a number (truncated), a string holding
 * one, true as 1; 0 when absent or anything else.
 */
long long json_read_int(const struct json_doc *d, const char *key);

/*
 * The value at key as a boolean: true, a non-zero number, a non-empty
 * string; 0 when absent.
 */
int json_read_bool(const struct json_doc *d, const char *key);

#endif
