#ifndef RELFLIP_STATUS_H
#define RELFLIP_STATUS_H

#include <stddef.h>

#include "buf.h"
#include "fleet.h"
#include "record.h"

/*
 * What relflip status shows of each host (pure decisions on the probe's
 * findings), and how the commands that only read or run one-offs
 * (status, log, exec) go on with the hosts they can reach.
 */

/*
 * Connect to every host and, with probe, probe the ones reached (records
 * too). A host that fails stays failed, its error in fh->err, and the
 * others go on: 0 when every host was reached (and probed), else the exit
 * code of the first failure, err saying what it was.
 */
int status_open(struct fleet *f, int probe, struct rf_error *err);

/*
 * fleet_step() on the hosts not failed so far, for a run whose exit code
 * so far is *code: the first failure sets *code and err; a later one is
 * printed at once, when fleet_step() has not printed it, so that none is
 * lost. 0 when the stage failed nowhere.
 */
int status_step(struct fleet *f, const char *stage, fleet_step_fn fn, void *arg,
		int *code, struct rf_error *err);

enum lock_state {
	LOCK_FREE,
	LOCK_HELD,   /* a run holds it, renewed within lock_ttl */
	LOCK_STALE,  /* not renewed for lock_ttl: its run is likely dead */
	LOCK_FROZEN, /* a manual freeze (relflip lock): never stale */
	LOCK_ODD,    /* in a shape relflip does not leave */
};

/* "free", "held", "stale", "frozen", "odd". */
const char *lock_state_name(enum lock_state s);

/* Which of those the lock is, by the server's clock (now, epoch s). */
enum lock_state lock_state_of(const struct lock_info *l, long long now,
			      double lock_ttl);

/* "link", "none", "dangling", "dir", "other". */
const char *current_kind_name(enum current_kind c);

/* One host at a glance. Everything is borrowed from its fleet_host. */
struct host_status {
	const char *host;
	int reachable;     /* connected and probed */
	const char *error; /* why not, or NULL */
	int app_exists;
	enum current_kind current;
	const char *live;                 /* the live release, "" for none */
	const struct release_record *rec; /* its record, or NULL */
	long long since_ms; /* when it went live (its record); 0: unknown */
	const char *target; /* where a rollback would go, or NULL */
	enum lock_state lock;
	const struct lock_info *lock_info;
	long long lock_age; /* seconds since the lock was last renewed */
};

/* What a host's probe (or its failure) says. */
void status_of(const struct fleet_host *fh, double lock_ttl,
	       struct host_status *hs);

/*
 * Whether the hosts reached disagree on the live release; lives gets
 * "web1: 3f2c1ab, web2: none" for each of them.
 */
int status_disagree(const struct host_status *v, size_t n, struct buf *lives);

#endif
