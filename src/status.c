/*
 * Each host at a glance, and going on with the hosts reached: see
 * include/status.h.
 */
#include <string.h>

#include "connect.h"
#include "lock.h"
#include "out.h"
#include "plan.h"
#include "status.h"

int
status_step(struct fleet *f, const char *stage, fleet_step_fn fn, void *arg,
	    int *code, struct rf_error *err)
{
	struct rf_error later = RF_ERROR_INIT;
	size_t i, nran = 0;

	fleet_activate_all(f);
	for (i = 0; i < f->n; i++)
		nran += fleet_pick_active_ok(&f->h[i]);
	if (fleet_step(f, stage, fn, arg, *code ? &later : err) == 0)
		return 0;
	if (*code == 0)
		*code = err->code ? (int)err->code : RF_EXIT_INTERNAL;
	else if (nran == 1)
		/* fleet_step() prints the failures only of several hosts. */
		out_error(&later);
	return -1;
}

int
status_open(struct fleet *f, int probe, struct rf_error *err)
{
	int code = 0;

	if (fleet_connect(f, err) != 0)
		code = err->code ? (int)err->code : RF_EXIT_CONNECT;
	if (probe) {
		struct rf_error later = RF_ERROR_INIT;
		size_t i, nran = 0;

		for (i = 0; i < f->n; i++)
			nran += !f->h[i].failed;
		if (fleet_probe(f, code ? &later : err) != 0) {
			if (code == 0)
				code = err->code ? (int)err->code
						 : RF_EXIT_INTERNAL;
			else if (nran == 1)
				out_error(&later);
		}
	}
	return code;
}

static const char *const lock_names[] = {
	[LOCK_FREE] = "free",     [LOCK_HELD] = "held", [LOCK_STALE] = "stale",
	[LOCK_FROZEN] = "frozen", [LOCK_ODD] = "odd",
};

const char *
lock_state_name(enum lock_state s)
{
	return lock_names[s];
}

enum lock_state
lock_state_of(const struct lock_info *l, long long now, double lock_ttl)
{
	long long at = l->renewed ? l->renewed : l->since;

	if (!l->held)
		return LOCK_FREE;
	if (l->odd != NULL)
		return LOCK_ODD;
	if (lock_is_freeze(l))
		return LOCK_FROZEN;
	return (double)(now - at) > lock_ttl ? LOCK_STALE : LOCK_HELD;
}

const char *
current_kind_name(enum current_kind c)
{
	switch (c) {
	case CURRENT_LINK:
		return "link";
	case CURRENT_DANGLING:
		return "dangling";
	case CURRENT_DIR:
		return "dir";
	case CURRENT_OTHER:
		return "other";
	case CURRENT_NONE:
		break;
	}
	return "none";
}

void
status_of(const struct fleet_host *fh, double lock_ttl, struct host_status *hs)
{
	const struct layout_state *st = &fh->st;
	struct rf_error ignored = RF_ERROR_INIT;
	const struct release_record *t;
	long long at;
	size_t i;

	memset(hs, 0, sizeof(*hs));
	hs->host = fh->host->name;
	hs->live = "";
	hs->lock_info = &st->lock;
	if (!fh->connected || fh->failed) {
		hs->error = fh->err.msg[0] ? fh->err.msg : "not reached";
		return;
	}
	hs->reachable = 1;
	hs->app_exists = st->app_exists;
	hs->current = st->current;
	hs->live = fh->live;
	if (fh->live[0] != '\0') {
		for (i = 0; i < st->records.n && hs->rec == NULL; i++) {
			if (strcmp(st->records.v[i].id, fh->live) == 0)
				hs->rec = &st->records.v[i];
		}
		if (hs->rec != NULL && hs->rec->has_record)
			hs->since_ms = hs->rec->activated;
		t = plan_rollback_target(&st->records, fh->live, NULL,
					 &ignored);
		hs->target = t != NULL ? t->id : NULL;
	}
	hs->lock = lock_state_of(&st->lock, st->server_now, lock_ttl);
	at = st->lock.renewed ? st->lock.renewed : st->lock.since;
	if (st->lock.held && at > 0 && st->server_now >= at)
		hs->lock_age = st->server_now - at;
}

int
status_disagree(const struct host_status *v, size_t n, struct buf *lives)
{
	const char *first = NULL;
	size_t i, k = 0;
	int differ = 0;

	for (i = 0; i < n; i++) {
		if (!v[i].reachable)
			continue;
		buf_addf(lives, "%s%s: %s", k++ ? ", " : "", v[i].host,
			 v[i].live[0] ? v[i].live : "none");
		if (first == NULL)
			first = v[i].live;
		else if (strcmp(first, v[i].live) != 0)
			differ = 1;
	}
	return differ;
}
