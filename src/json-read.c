/*
 * json-read.c: the json-c adapter, and the only file that includes
 * json-c. relflip writes JSON itself (json.c); json-c only reads it back:
 * release records and log lines from the servers.
 */
#include <json-c/json.h>
#include <stdlib.h>

#include "json.h"
#include "xmalloc.h"

struct json_doc {
	json_object *o;
};

struct json_doc *
json_read_object(const char *text)
{
	json_object *o = json_tokener_parse(text);
	struct json_doc *d;

	if (o == NULL)
		return NULL;
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return NULL;
	}
	d = xmalloc(sizeof(*d));
	d->o = o;
	return d;
}

void
json_read_free(struct json_doc *d)
{
	if (d == NULL)
		return;
	json_object_put(d->o);
	free(d);
}

/* The member at key, or NULL. */
static json_object *
get(const struct json_doc *d, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(d->o, key, &v))
		return NULL;
	return v;
}

enum json_read_kind
json_read_kind(const struct json_doc *d, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(d->o, key, &v))
		return JR_ABSENT;
	switch (json_object_get_type(v)) {
	case json_type_null:
		return JR_NULL;
	case json_type_boolean:
		return JR_BOOL;
	case json_type_int:
		return JR_INT;
	case json_type_double:
		return JR_DOUBLE;
	case json_type_string:
		return JR_STRING;
	default:
		return JR_OTHER;
	}
}

const char *
json_read_str(const struct json_doc *d, const char *key)
{
	json_object *v = get(d, key);

	if (v == NULL || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

long long
json_read_int(const struct json_doc *d, const char *key)
{
	json_object *v = get(d, key);

	return v != NULL ? (long long)json_object_get_int64(v) : 0;
}

int
json_read_bool(const struct json_doc *d, const char *key)
{
	json_object *v = get(d, key);

	return v != NULL && json_object_get_boolean(v);
}
