#ifndef RELFLIP_RECORD_H
#define RELFLIP_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "json.h"

/*
 * Release records: APP/.relflip/releases/<id>.json, one JSON object on one
 * line, and the lines of APP/.relflip/log.jsonl.
 */

enum release_status {
	RS_UNKNOWN, /* a directory with no record (set up by hand) */
	RS_STAGED,  /* unpacked, hooks passed, not yet live */
	RS_LIVE,    /* current now */
	RS_GOOD,    /* was live and healthy, then superseded */
	RS_FAILED,  /* never went live */
	RS_BAD,     /* went live and failed its check, or was rolled back */
};

struct release_record {
	char id[65];
	enum release_status status;
	char checksum[72];   /* "sha256:<hex>" */
	uint64_t size;       /* artifact bytes */
	uint64_t unpacked;   /* unpacked bytes */
	char ref[256];
	char actor[128];
	char runner[128];
	char run_url[256];
	long long created;     /* epoch milliseconds; 0: unknown */
	long long activated;   /* last switched to */
	long long deactivated; /* last switched away from */
	int migrated;          /* the migrate hook ran for it */
	char reason[256];      /* why failed or bad */
	int has_record;        /* a record file exists */
	int has_dir;           /* releases/<id> exists */
	int verified;          /* its manifest is kept: relflip unpacked it
				* and checked the tree against it */
};

const char *release_status_name(enum release_status s);

/* Parse one record line; 0, or -1 when it is not a record. */
int record_parse(const char *json, struct release_record *rec);

/* Append the record as one line of JSON (no newline). */
void record_format(const struct release_record *rec, struct buf *out);

/* The fields every line of APP/.relflip/log.jsonl starts with. */
struct record_log {
	long long time;       /* epoch seconds */
	const char *command;  /* "deploy", "rollback", "prune", "unlock" */
	const char *revision; /* NULL: "" */
	const char *previous; /* NULL: "" */
	const char *result;   /* "ok", "failed", "rolled_back", ... */
	int exit_code;
	const char *host;
	const char *actor;
	const char *runner;
	const char *run_url;
};

/*
 * Start a log line in out: {"time": ..., "command": ..., "revision": ...,
 * "previous": ..., "result": ..., "exit_code": ..., "host": ..., "actor":
 * ..., "runner": ..., "run_url": ...}. Add the command's own members to o
 * (json_obj_str(o, "checksum", ...)), then json_obj_end(o). No newline.
 */
void record_log_begin(struct json_obj *o, struct buf *out,
		      const struct record_log *l);

/* Newest first: by activated, then created, then id. For qsort. */
int record_cmp_newest(const void *a, const void *b);

/* Set of records read from a host. */
struct record_set {
	struct release_record *v;
	size_t n;
};

/* Find by id, or NULL. */
struct release_record *record_find(struct record_set *set, const char *id);

/* Add (or return the existing) record for id. */
struct release_record *record_add(struct record_set *set, const char *id);

void record_set_release(struct record_set *set);

/* "2026-01-01T00:00:00Z" for epoch seconds. */
void record_time(char *dst, size_t len, long long epoch);

/*
 * "2026-01-01T00:00:00.123Z" for epoch milliseconds: records keep them, so
 * that two deploys within one second still have an order.
 */
void record_time_ms(char *dst, size_t len, long long ms);

/* The wall clock in epoch milliseconds. */
long long record_now_ms(void);

/*
 * Epoch seconds from a server (a record, a file time) in milliseconds, or
 * 0 (unknown) when milliseconds cannot hold them.
 */
long long record_secs_to_ms(long long secs);

#endif
