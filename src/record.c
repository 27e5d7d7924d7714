#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
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
get_str(const struct json_doc *d, const char *key, char *dst, size_t len)
{
	const char *v = json_read_str(d, key);

	if (v != NULL)
		snprintf(dst, len, "%s", v);
}

/* A time in epoch milliseconds: ISO 8601 with or without a fraction. */
static long long
get_time(const struct json_doc *d, const char *key)
{
	struct tm tm;
	const char *s, *rest;
	long long ms = 0, scale = 100;

	if (json_read_kind(d, key) == JR_INT)
		return record_secs_to_ms(json_read_int(d, key));
	s = json_read_str(d, key);
	if (s == NULL)
		return 0;
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
	struct json_doc *d = json_read_object(json);
	const char *id;
	char status[32] = "";
	int r = -1;

	memset(rec, 0, sizeof(*rec));
	if (d == NULL)
		return -1;
	id = json_read_str(d, "id");
	if (id == NULL || strlen(id) >= sizeof(rec->id))
		goto out;
	snprintf(rec->id, sizeof(rec->id), "%s", id);
	if (!release_id_valid(rec->id))
		goto out;
	get_str(d, "status", status, sizeof(status));
	rec->status = status_from(status);
	get_str(d, "checksum", rec->checksum, sizeof(rec->checksum));
	rec->size = (uint64_t)json_read_int(d, "size");
	rec->unpacked = (uint64_t)json_read_int(d, "unpacked_size");
	get_str(d, "ref", rec->ref, sizeof(rec->ref));
	get_str(d, "actor", rec->actor, sizeof(rec->actor));
	get_str(d, "runner", rec->runner, sizeof(rec->runner));
	get_str(d, "run_url", rec->run_url, sizeof(rec->run_url));
	rec->created = get_time(d, "created");
	rec->activated = get_time(d, "activated");
	rec->deactivated = get_time(d, "deactivated");
	rec->migrated = json_read_bool(d, "migrated");
	get_str(d, "reason", rec->reason, sizeof(rec->reason));
	rec->has_record = 1;
	r = 0;
out:
	if (r != 0)
		memset(rec, 0, sizeof(*rec));
	json_read_free(d);
	return r;
}

void
record_time(char *dst, size_t len, long long epoch)
{
	time_t t = (time_t)epoch;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(dst, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A time in epoch milliseconds as an ISO 8601 string; 0: null. */
static void
add_time(struct json_obj *o, const char *key, long long t)
{
	char s[32];

	if (t == 0) {
		json_obj_null(o, key);
		return;
	}
	record_time_ms(s, sizeof(s), t);
	json_obj_str(o, key, s);
}

void
record_format(const struct release_record *rec, struct buf *out)
{
	struct json_obj o;

	json_obj_begin(&o, out);
	json_obj_str(&o, "id", rec->id);
	json_obj_str(&o, "status", release_status_name(rec->status));
	json_obj_str(&o, "checksum", rec->checksum);
	json_obj_uint(&o, "size", rec->size);
	json_obj_uint(&o, "unpacked_size", rec->unpacked);
	json_obj_str(&o, "ref", rec->ref);
	json_obj_str(&o, "actor", rec->actor);
	json_obj_str(&o, "runner", rec->runner);
	json_obj_str(&o, "run_url", rec->run_url);
	add_time(&o, "created", rec->created);
	add_time(&o, "activated", rec->activated);
	add_time(&o, "deactivated", rec->deactivated);
	json_obj_bool(&o, "migrated", rec->migrated);
	json_obj_str(&o, "reason", rec->reason);
	json_obj_end(&o);
}

void
record_log_begin(struct json_obj *o, struct buf *out,
		 const struct record_log *l)
{
	char t[32];

	record_time(t, sizeof(t), l->time);
	json_obj_begin(o, out);
	json_obj_str(o, "time", t);
	json_obj_str(o, "command", l->command);
	json_obj_str(o, "revision", l->revision != NULL ? l->revision : "");
	json_obj_str(o, "previous", l->previous != NULL ? l->previous : "");
	json_obj_str(o, "result", l->result);
	json_obj_int(o, "exit_code", l->exit_code);
	json_obj_str(o, "host", l->host);
	json_obj_str(o, "actor", l->actor);
	json_obj_str(o, "runner", l->runner);
	json_obj_str(o, "run_url", l->run_url);
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
