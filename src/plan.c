#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "xmalloc.h"

size_t
plan_batch_size(size_t nhosts, int batch, int percent)
{
	size_t size;

	if (nhosts == 0)
		return 0;
	if (batch <= 0)
		return nhosts;
	if (percent)
		size = (nhosts * (size_t)batch + 99) / 100;
	else
		size = (size_t)batch;
	if (size < 1)
		size = 1;
	return size > nhosts ? nhosts : size;
}

size_t
plan_batch_count(size_t nhosts, int batch, int percent)
{
	size_t size = plan_batch_size(nhosts, batch, percent);

	return size == 0 ? 0 : (nhosts + size - 1) / size;
}

/* The newest record with this status other than skip_id, or NULL. */
static const struct release_record *
newest_with(const struct record_set *set, enum release_status status,
	    const char *skip_id)
{
	const struct release_record *best = NULL;
	size_t i;

	for (i = 0; i < set->n; i++) {
		const struct release_record *r = &set->v[i];

		if (r->status != status || !r->has_dir)
			continue;
		if (skip_id != NULL && strcmp(r->id, skip_id) == 0)
			continue;
		if (best == NULL || record_cmp_newest(r, best) < 0)
			best = r;
	}
	return best;
}

const struct release_record *
plan_rollback_target(const struct record_set *set, const char *live_id,
		     const char *to, struct rf_error *err)
{
	const struct release_record *r;
	size_t i;

	if (to == NULL) {
		r = newest_with(set, RS_GOOD, live_id);
		if (r == NULL)
			rf_error_set(err, RF_EXIT_USAGE, "rollback",
				     "no good release to roll back to (live: "
				     "%s)",
				     live_id && live_id[0] ? live_id : "none");
		return r;
	}
	for (i = 0; i < set->n; i++) {
		r = &set->v[i];
		if (strcmp(r->id, to) != 0)
			continue;
		if (!r->has_dir) {
			rf_error_set(err, RF_EXIT_USAGE, "rollback",
				     "release %s has a record but no directory "
				     "under releases/",
				     to);
			return NULL;
		}
		if (r->status == RS_FAILED) {
			rf_error_set(err, RF_EXIT_USAGE, "rollback",
				     "release %s is failed: it never went live "
				     "(%s)",
				     to, r->reason[0] ? r->reason : "no reason");
			return NULL;
		}
		if (r->status == RS_STAGED) {
			rf_error_set(err, RF_EXIT_USAGE, "rollback",
				     "release %s is staged: a deploy of it is "
				     "in progress or was cut short",
				     to);
			return NULL;
		}
		return r;
	}
	rf_error_set(err, RF_EXIT_USAGE, "rollback", "no release %s", to);
	return NULL;
}

static int
cmp_ptr_newest(const void *a, const void *b)
{
	const struct release_record *const *x = a, *const *y = b;

	return record_cmp_newest(*x, *y);
}

size_t
plan_prune(const struct record_set *set, const char *live_id, int keep,
	   int keep_failed, int adopt, const struct release_record ***remove)
{
	const struct release_record **sorted, **out;
	const struct release_record *target;
	size_t i, n = 0;
	int kept_good = 0, kept_failed = 0;

	*remove = NULL;
	if (set->n == 0)
		return 0;
	target = newest_with(set, RS_GOOD, live_id);
	/* Adopted releases are the rollback target where none is good. */
	if (target == NULL && adopt)
		target = newest_with(set, RS_UNKNOWN, live_id);
	sorted = xcalloc(set->n, sizeof(*sorted));
	out = xcalloc(set->n, sizeof(*out));
	for (i = 0; i < set->n; i++)
		sorted[i] = &set->v[i];
	qsort(sorted, set->n, sizeof(*sorted), cmp_ptr_newest);

	/* The live one counts toward keep. */
	if (live_id != NULL && live_id[0] != '\0')
		kept_good = 1;
	for (i = 0; i < set->n; i++) {
		const struct release_record *r = sorted[i];

		if (live_id != NULL && strcmp(r->id, live_id) == 0)
			continue;
		if (r == target) {
			kept_good++;
			continue;
		}
		switch (r->status) {
		case RS_LIVE:
		case RS_STAGED:
			continue;
		case RS_UNKNOWN:
			if (!adopt)
				continue;
			/* Adopted: counts as good. */
			/* fall through */
		case RS_GOOD:
			if (kept_good < keep) {
				kept_good++;
				continue;
			}
			break;
		case RS_FAILED:
		case RS_BAD:
			if (kept_failed < keep_failed) {
				kept_failed++;
				continue;
			}
			break;
		}
		out[n++] = r;
	}
	free(sorted);
	if (n == 0) {
		free(out);
		return 0;
	}
	*remove = out;
	return n;
}

enum rf_exit
plan_switch_outcome(const struct switch_outcome *o, size_t n)
{
	size_t i;
	int failed = 0, way_back_failed = 0;

	for (i = 0; i < n; i++) {
		if (o[i].switched && !o[i].healthy)
			failed = 1;
	}
	if (!failed)
		return RF_EXIT_OK;
	for (i = 0; i < n; i++) {
		if (o[i].switched && (!o[i].reverted || !o[i].revert_ok))
			way_back_failed = 1;
	}
	return way_back_failed ? RF_EXIT_ROLLBACK_FAILED : RF_EXIT_HEALTH;
}
