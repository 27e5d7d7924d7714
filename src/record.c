#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quote.h"
#include "record.h"
#include "release.h"
#include "xmalloc.h"

static const char *const status_names[] = {
	[RS_UNKNOWN] = "unknown", [RS_STAGED] = "staged", [RS_LIVE] = "live",
	[RS_GOOD] = "good",       [RS_FAILED] = "failed", [RS_BAD] = "bad",
};

const char *
release_status_name(enum release_status s)
{
	return status_names[s];
}

static enum release_status
status_from(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++) {
		if (strcmp(status_names[i], s) == 0)
			return (enum release_status)i;
	}
	return RS_UNKNOWN;
}

static void
get_str(json_object *o, const char *key, char *dst, size_t len)
{
	json_object *v;

	if (json_object_object_get_ex(o, key, &v) &&
	    json_object_is_type(v, json_type_string))
		snprintf(dst, len, "%s", json_object_get_string(v));
}

static long long
get_int(json_object *o, const char *key)
{
	json_object *v;

	if (json_object_object_get_ex(o, key, &v))
		return json_object_get_int64(v);
	return 0;
}

/* A time in epoch milliseconds: ISO 8601 with or without a fraction. */
static long long
get_time(json_object *o, const char *key)
{
	json_object *v;
	struct tm tm;
	const char *s, *rest;
	long long ms = 0, scale = 100;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (json_object_is_type(v, json_type_int))
		return record_secs_to_ms(json_object_get_int64(v));
	if (!json_object_is_type(v, json_type_string))
		return 0;
	s = json_object_get_string(v);
	memset(&tm, 0, sizeof(tm));
	rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (rest == NULL)
		return 0;
	if (*rest == '.') {
		for (rest++; *rest >= '0' && *rest <= '9'; rest++) {
			ms += (*rest - '0') * scale;
			scale /= 10;
		}
	}
	return (long long)timegm(&tm) * 1000 + ms;
}

long long
record_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long
record_secs_to_ms(long long secs)
{
	if (secs > LLONG_MAX / 1000 || secs < LLONG_MIN / 1000)
		return 0;
	return secs * 1000;
}

void
record_time_ms(char *dst, size_t len, long long ms)
{
	char base[32];

	record_time(base, sizeof(base), ms / 1000);
	/* base ends in 'Z': put the milliseconds before it. */
	snprintf(dst, len, "%.19s.%03dZ", base, (int)(ms % 1000));
}

int
record_parse(const char *json, struct release_record *rec)
{
	json_object *o = json_tokener_parse(json);
	json_object *v;
	char status[32] = "";

	memset(rec, 0, sizeof(*rec));
	if (o == NULL)
		return -1;
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return -1;
	}
	if (!json_object_object_get_ex(o, "id", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    strlen(json_object_get_string(v)) >= sizeof(rec->id)) {
		json_object_put(o);
		return -1;
	}
	get_str(o, "id", rec->id, sizeof(rec->id));
	if (!release_id_valid(rec->id)) {
		json_object_put(o);
		return -1;
	}
	get_str(o, "status", status, sizeof(status));
	rec->status = status_from(status);
	get_str(o, "checksum", rec->checksum, sizeof(rec->checksum));
	rec->size = (uint64_t)get_int(o, "size");
	rec->unpacked = (uint64_t)get_int(o, "unpacked_size");
	get_str(o, "ref", rec->ref, sizeof(rec->ref));
	get_str(o, "actor", rec->actor, sizeof(rec->actor));
	get_str(o, "runner", rec->runner, sizeof(rec->runner));
	get_str(o, "run_url", rec->run_url, sizeof(rec->run_url));
	rec->created = get_time(o, "created");
	rec->activated = get_time(o, "activated");
	rec->deactivated = get_time(o, "deactivated");
	if (json_object_object_get_ex(o, "migrated", &v))
		rec->migrated = json_object_get_boolean(v);
	get_str(o, "reason", rec->reason, sizeof(rec->reason));
	rec->has_record = 1;
	json_object_put(o);
	return 0;
}

void
record_time(char *dst, size_t len, long long epoch)
{
	time_t t = (time_t)epoch;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(dst, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
add_str(struct buf *out, const char *key, const char *v)
{
	buf_adds(out, ", ");
	json_quote(out, key);
	buf_adds(out, ": ");
	json_quote(out, v);
}

static void
add_time(struct buf *out, const char *key, long long t)
{
	char s[32];

	buf_adds(out, ", ");
	json_quote(out, key);
	if (t == 0) {
		buf_adds(out, ": null");
		return;
	}
	record_time_ms(s, sizeof(s), t);
	buf_adds(out, ": ");
	json_quote(out, s);
}

void
record_format(const struct release_record *rec, struct buf *out)
{
	buf_adds(out, "{\"id\": ");
	json_quote(out, rec->id);
	add_str(out, "status", release_status_name(rec->status));
	add_str(out, "checksum", rec->checksum);
	buf_addf(out, ", \"size\": %llu, \"unpacked_size\": %llu",
		 (unsigned long long)rec->size,
		 (unsigned long long)rec->unpacked);
	add_str(out, "ref", rec->ref);
	add_str(out, "actor", rec->actor);
	add_str(out, "runner", rec->runner);
	add_str(out, "run_url", rec->run_url);
	add_time(out, "created", rec->created);
	add_time(out, "activated", rec->activated);
	add_time(out, "deactivated", rec->deactivated);
	buf_addf(out, ", \"migrated\": %s", rec->migrated ? "true" : "false");
	add_str(out, "reason", rec->reason);
	buf_addch(out, '}');
}

int
record_cmp_newest(const void *a, const void *b)
{
	const struct release_record *x = a, *y = b;
	long long kx = x->activated ? x->activated : x->created;
	long long ky = y->activated ? y->activated : y->created;

	if (kx != ky)
		return kx > ky ? -1 : 1;
	if (x->created != y->created)
		return x->created > y->created ? -1 : 1;
	return strcmp(y->id, x->id);
}

struct release_record *
record_find(struct record_set *set, const char *id)
{
	size_t i;

	for (i = 0; i < set->n; i++) {
		if (strcmp(set->v[i].id, id) == 0)
			return &set->v[i];
	}
	return NULL;
}

struct release_record *
record_add(struct record_set *set, const char *id)
{
	struct release_record *r = record_find(set, id);

	if (r != NULL)
		return r;
	set->v = xreallocarray(set->v, set->n + 1, sizeof(*set->v));
	r = &set->v[set->n++];
	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%s", id);
	return r;
}

void
record_set_release(struct record_set *set)
{
	free(set->v);
	set->v = NULL;
	set->n = 0;
}
