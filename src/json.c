/*
 * json.c: the JSON writer. Events, release records and log lines are all
 * written here, so escaping and layout are decided once.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "quote.h"

void
json_quote(struct buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	buf_addch(b, '"');
	while (*p != '\0') {
		switch (*p) {
		case '"':
			buf_adds(b, "\\\"");
			break;
		case '\\':
			buf_adds(b, "\\\\");
			break;
		case '\n':
			buf_adds(b, "\\n");
			break;
		case '\r':
			buf_adds(b, "\\r");
			break;
		case '\t':
			buf_adds(b, "\\t");
			break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				buf_addf(b, "\\u%04x", *p);
				break;
			}
			n = quote_utf8_len((const char *)p);
			if (n == 0) {
				/* U+FFFD for a byte that is not UTF-8. */
				buf_adds(b, "\\ufffd");
				break;
			}
			/* C1 controls: a terminal may act on them. */
			if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0) {
				buf_addf(b, "\\u%04x", p[1]);
				p += 2;
				continue;
			}
			/* U+2028 and U+2029 end a line for JavaScript. */
			if (n == 3 && p[0] == 0xe2 && p[1] == 0x80 &&
			    (p[2] == 0xa8 || p[2] == 0xa9)) {
				buf_addf(b, "\\u%04x", 0x2000 | (p[2] & 0x2f));
				p += 3;
				continue;
			}
			buf_add(b, p, n);
			p += n;
			continue;
		}
		p++;
	}
	buf_addch(b, '"');
}

void
json_obj_begin(struct json_obj *o, struct buf *b)
{
	o->b = b;
	o->n = 0;
	buf_addch(b, '{');
}

void
json_obj_end(struct json_obj *o)
{
	buf_addch(o->b, '}');
}

/* The separator and "key": of the next member. */
static void
member(struct json_obj *o, const char *key)
{
	if (o->n++ > 0)
		buf_adds(o->b, ", ");
	json_quote(o->b, key);
	buf_adds(o->b, ": ");
}

void
json_obj_str(struct json_obj *o, const char *key, const char *v)
{
	member(o, key);
	if (v == NULL)
		buf_adds(o->b, "null");
	else
		json_quote(o->b, v);
}

void
json_obj_int(struct json_obj *o, const char *key, long long v)
{
	member(o, key);
	buf_addf(o->b, "%lld", v);
}

void
json_obj_uint(struct json_obj *o, const char *key, unsigned long long v)
{
	member(o, key);
	buf_addf(o->b, "%llu", v);
}

void
json_obj_bool(struct json_obj *o, const char *key, int v)
{
	member(o, key);
	buf_adds(o->b, v ? "true" : "false");
}

void
json_obj_null(struct json_obj *o, const char *key)
{
	member(o, key);
	buf_adds(o->b, "null");
}

void
json_obj_double(struct json_obj *o, const char *key, double v)
{
	member(o, key);
	if (!isfinite(v))
		buf_adds(o->b, "null");
	else
		buf_addf(o->b, "%.3f", v);
}

void
json_obj_child(struct json_obj *o, const char *key, struct json_obj *child)
{
	member(o, key);
	json_obj_begin(child, o->b);
}
