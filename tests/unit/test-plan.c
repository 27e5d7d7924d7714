/*
 * The pure decisions of plan.h: batch arithmetic, the rollback target,
 * what prune removes, and the exit code of the switch phase.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "plan.h"
#include "record.h"

/* ---- plan_batch_size / plan_batch_count ---- */

static void
test_batch_count_n(void **state)
{
	(void)state;
	/* batch = 3 of 10 hosts: 3 + 3 + 3 + 1. */
	assert_int_equal(plan_batch_size(10, 3, 0), 3);
	assert_int_equal(plan_batch_count(10, 3, 0), 4);
	assert_int_equal(plan_batch_size(9, 3, 0), 3);
	assert_int_equal(plan_batch_count(9, 3, 0), 3);
	assert_int_equal(plan_batch_size(4, 2, 0), 2);
	assert_int_equal(plan_batch_count(4, 2, 0), 2);
}

static void
test_batch_percent_rounds_up(void **state)
{
	(void)state;
	/* 25% of 10 is 2.5: 3 a batch, 4 batches. */
	assert_int_equal(plan_batch_size(10, 25, 1), 3);
	assert_int_equal(plan_batch_count(10, 25, 1), 4);
	/* 25% of 4 is exactly 1. */
	assert_int_equal(plan_batch_size(4, 25, 1), 1);
	assert_int_equal(plan_batch_count(4, 25, 1), 4);
	/* 50% of 3 is 1.5: 2, then 1. */
	assert_int_equal(plan_batch_size(3, 50, 1), 2);
	assert_int_equal(plan_batch_count(3, 50, 1), 2);
	/* 33% of 100 is exactly 33: 33, 33, 33, 1. */
	assert_int_equal(plan_batch_size(100, 33, 1), 33);
	assert_int_equal(plan_batch_count(100, 33, 1), 4);
}

static void
test_batch_zero_means_all(void **state)
{
	(void)state;
	assert_int_equal(plan_batch_size(7, 0, 0), 7);
	assert_int_equal(plan_batch_count(7, 0, 0), 1);
	/* 0 stays "all" whatever the percent flag says. */
	assert_int_equal(plan_batch_size(7, 0, 1), 7);
	assert_int_equal(plan_batch_count(7, 0, 1), 1);
}

static void
test_batch_one_host(void **state)
{
	(void)state;
	assert_int_equal(plan_batch_size(1, 0, 0), 1);
	assert_int_equal(plan_batch_size(1, 1, 0), 1);
	assert_int_equal(plan_batch_size(1, 5, 0), 1);
	assert_int_equal(plan_batch_size(1, 1, 1), 1);
	assert_int_equal(plan_batch_size(1, 100, 1), 1);
	assert_int_equal(plan_batch_count(1, 25, 1), 1);
	assert_int_equal(plan_batch_count(1, 3, 0), 1);
}

static void
test_batch_never_more_batches_than_hosts(void **state)
{
	size_t n;

	(void)state;
	/* 1% of 3 hosts still moves one host a batch: 3 batches, not 100. */
	assert_int_equal(plan_batch_size(3, 1, 1), 1);
	assert_int_equal(plan_batch_count(3, 1, 1), 3);
	for (n = 1; n <= 50; n++) {
		int b;

		for (b = 0; b <= 100; b++) {
			size_t s = plan_batch_size(n, b, 1);
			size_t c = plan_batch_count(n, b, 1);

			assert_true(s >= 1 && s <= n);
			assert_true(c >= 1 && c <= n);
			/* The batches cover every host, the last not empty. */
			assert_true(c * s >= n);
			assert_true((c - 1) * s < n);
		}
	}
}

static void
test_batch_hundred_percent(void **state)
{
	(void)state;
	assert_int_equal(plan_batch_size(8, 100, 1), 8);
	assert_int_equal(plan_batch_count(8, 100, 1), 1);
	assert_int_equal(plan_batch_size(1, 100, 1), 1);
}

static void
test_batch_one_percent(void **state)
{
	(void)state;
	assert_int_equal(plan_batch_size(10, 1, 1), 1);
	assert_int_equal(plan_batch_count(10, 1, 1), 10);
	assert_int_equal(plan_batch_size(100, 1, 1), 1);
	/* 1% of 250 is 2.5: 3. */
	assert_int_equal(plan_batch_size(250, 1, 1), 3);
	assert_int_equal(plan_batch_count(250, 1, 1), 84);
}

static void
test_batch_larger_than_hosts(void **state)
{
	(void)state;
	assert_int_equal(plan_batch_size(3, 10, 0), 3);
	assert_int_equal(plan_batch_count(3, 10, 0), 1);
	assert_int_equal(plan_batch_size(3, 3, 0), 3);
	assert_int_equal(plan_batch_count(3, 3, 0), 1);
}

static void
test_batch_no_hosts(void **state)
{
	(void)state;
	assert_int_equal(plan_batch_size(0, 0, 0), 0);
	assert_int_equal(plan_batch_count(0, 0, 0), 0);
	assert_int_equal(plan_batch_size(0, 2, 0), 0);
	assert_int_equal(plan_batch_count(0, 2, 0), 0);
	assert_int_equal(plan_batch_count(0, 25, 1), 0);
}

/* ---- records for the rollback and prune decisions ---- */

static struct release_record *
add(struct record_set *set, const char *id, enum release_status status,
    long long created, long long activated)
{
	struct release_record *r = record_add(set, id);

	r->status = status;
	r->created = created;
	r->activated = activated;
	r->has_record = status != RS_UNKNOWN;
	r->has_dir = 1;
	return r;
}

/* ---- plan_rollback_target ---- */

static void
test_rollback_newest_good_by_activation(void **state)
{
	struct record_set set = { 0 };
	struct rf_error err = RF_ERROR_INIT;
	const struct release_record *t;

	(void)state;
	/*
	 * Created order and id order both disagree with activation order:
	 * "c" was created last but went live before "b".
	 */
	add(&set, "a", RS_GOOD, 100, 110);
	add(&set, "c", RS_GOOD, 300, 200);
	add(&set, "b", RS_GOOD, 150, 310);
	add(&set, "live", RS_LIVE, 400, 400);
	t = plan_rollback_target(&set, "live", NULL, &err);
	assert_non_null(t);
	assert_string_equal(t->id, "b");
	record_set_release(&set);
}

static void
test_rollback_skips_live_even_if_good(void **state)
{
	struct record_set set = { 0 };
	struct rf_error err = RF_ERROR_INIT;
	const struct release_record *t;

	(void)state;
	/* A live release still recorded as good (say, re-activated). */
	add(&set, "old", RS_GOOD, 100, 100);
	add(&set, "cur", RS_GOOD, 200, 300);
	t = plan_rollback_target(&set, "cur", NULL, &err);
	assert_non_null(t);
	assert_string_equal(t->id, "old");
	record_set_release(&set);
}

static void
test_rollback_skips_good_without_directory(void **state)
{
	struct record_set set = { 0 };
	struct rf_error err = RF_ERROR_INIT;
	const struct release_record *t;

	(void)state;
	add(&set, "a", RS_GOOD, 100, 100);
	add(&set, "b", RS_GOOD, 200, 200)->has_dir = 0; /* pruned by hand */
	add(&set, "c", RS_LIVE, 300, 300);
	t = plan_rollback_target(&set, "c", NULL, &err);
	assert_non_null(t);
	assert_string_equal(t->id, "a");
	record_set_release(&set);
}

static void
test_rollback_to_failed_refused(void **state)
{
	struct record_set set = { 0 };
	struct rf_error err = RF_ERROR_INIT;

	(void)state;
	add(&set, "a", RS_GOOD, 100, 100);
	snprintf(add(&set, "f", RS_FAILED, 200, 0)->reason, 256,
		 "install hook failed");
	add(&set, "c", RS_LIVE, 300, 300);
	assert_null(plan_rollback_target(&set, "c", "f", &err));
	assert_int_equal(err.code, RF_EXIT_USAGE);
	assert_non_null(strstr(err.msg, "f"));
	assert_non_null(strstr(err.msg, "failed"));
	record_set_release(&set);
}

static void
test_rollback_to_staged_refused(void **state)
{
	struct record_set set = { 0 };
	struct rf_error err = RF_ERROR_INIT;

	(void)state;
	add(&set, "a", RS_GOOD, 100, 100);
	add(&set, "s", RS_STAGED, 200, 0);
	add(&set, "c", RS_LIVE, 300, 300);
	assert_null(plan_rollback_target(&set, "c", "s", &err));
	assert_int_equal(err.code, RF_EXIT_USAGE);
	assert_non_null(strstr(err.msg, "staged"));
	record_set_release(&set);
}

static void
test_rollback_to_bad_allowed(void **state)
{
	struct record_set set = { 0 };
	struct rf_error err = RF_ERROR_INIT;
	const struct release_record *t;

	(void)state;
	/* A person may go back to a bad release on purpose. */
	add(&set, "a", RS_GOOD, 100, 100);
	add(&set, "b", RS_BAD, 200, 200);
	add(&set, "c", RS_LIVE, 300, 300);
	t = plan_rollback_target(&set, "c", "b", &err);
	assert_non_null(t);
	assert_string_equal(t->id, "b");
	/* And to a good one that is not the newest (--to). */
	t = plan_rollback_target(&set, "c", "a", &err);
	assert_non_null(t);
	assert_string_equal(t->id, "a");
	record_set_release(&set);
}

static void
test_rollback_to_missing_id(void **state)
{
	struct record_set set = { 0 };
	struct rf_error err = RF_ERROR_INIT;

	(void)state;
	add(&set, "a", RS_GOOD, 100, 100);
	add(&set, "c", RS_LIVE, 300, 300);
	assert_null(plan_rollback_target(&set, "c", "nope", &err));
	assert_int_equal(err.code, RF_EXIT_USAGE);
	assert_non_null(strstr(err.msg, "nope"));
	record_set_release(&set);
}

static void
test_rollback_to_id_without_directory(void **state)
{
	struct record_set set = { 0 };
	struct rf_error err = RF_ERROR_INIT;

	(void)state;
	add(&set, "a", RS_GOOD, 100, 100)->has_dir = 0;
	add(&set, "c", RS_LIVE, 300, 300);
	assert_null(plan_rollback_target(&set, "c", "a", &err));
	assert_int_equal(err.code, RF_EXIT_USAGE);
	assert_non_null(strstr(err.msg, "a"));
	assert_non_null(strstr(err.msg, "directory"));
	record_set_release(&set);
}

static void
test_rollback_no_good_release(void **state)
{
	struct record_set set = { 0 };
	struct rf_error err = RF_ERROR_INIT;

	(void)state;
	/* Failed, bad, staged and unknown ones are no way back. */
	add(&set, "f", RS_FAILED, 100, 0);
	add(&set, "b", RS_BAD, 150, 150);
	add(&set, "s", RS_STAGED, 170, 0);
	add(&set, "u", RS_UNKNOWN, 0, 0);
	add(&set, "c", RS_LIVE, 200, 200);
	assert_null(plan_rollback_target(&set, "c", NULL, &err));
	assert_int_equal(err.code, RF_EXIT_USAGE);
	assert_string_equal(err.stage, "rollback");
	assert_non_null(strstr(err.msg, "no good release"));
	record_set_release(&set);

	/* Nothing at all, nothing live. */
	rf_error_clear(&err);
	assert_null(plan_rollback_target(&set, NULL, NULL, &err));
	assert_int_equal(err.code, RF_EXIT_USAGE);
	rf_error_clear(&err);
	assert_null(plan_rollback_target(&set, "", NULL, &err));
	assert_int_equal(err.code, RF_EXIT_USAGE);
}

static void
test_rollback_twice_does_not_bounce(void **state)
{
	struct record_set set = { 0 };
	struct rf_error err = RF_ERROR_INIT;
	const struct release_record *t;

	(void)state;
	add(&set, "z", RS_GOOD, 50, 50);
	add(&set, "a", RS_GOOD, 100, 100);
	add(&set, "b", RS_LIVE, 200, 200);
	t = plan_rollback_target(&set, "b", NULL, &err);
	assert_non_null(t);
	assert_string_equal(t->id, "a");

	/* The rollback from b to a: b becomes bad, a is live again. */
	record_find(&set, "b")->status = RS_BAD;
	record_find(&set, "b")->deactivated = 300;
	record_find(&set, "a")->status = RS_LIVE;
	record_find(&set, "a")->activated = 300;

	/* The next rollback goes on to the one before a, not back to b. */
	t = plan_rollback_target(&set, "a", NULL, &err);
	assert_non_null(t);
	assert_string_equal(t->id, "z");
	record_set_release(&set);
}

static void
test_rollback_skips_failed_deploy(void **state)
{
	struct record_set set = { 0 };
	struct rf_error err = RF_ERROR_INIT;
	const struct release_record *t;

	(void)state;
	/* a good; then f failed (never live); then b deployed fine. */
	add(&set, "a", RS_GOOD, 100, 100);
	add(&set, "f", RS_FAILED, 200, 0);
	add(&set, "b", RS_LIVE, 300, 300);
	t = plan_rollback_target(&set, "b", NULL, &err);
	assert_non_null(t);
	assert_string_equal(t->id, "a");
	record_set_release(&set);
}

/* ---- plan_prune ---- */

static int
removes(const struct release_record **rm, size_t n, const char *id)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(rm[i]->id, id) == 0)
			return 1;
	}
	return 0;
}

static void
test_prune_keep_counts_live(void **state)
{
	struct record_set set = { 0 };
	const struct release_record **rm = NULL;
	size_t n;

	(void)state;
	add(&set, "g1", RS_GOOD, 100, 100);
	add(&set, "g2", RS_GOOD, 200, 200);
	add(&set, "g3", RS_GOOD, 300, 300);
	add(&set, "g4", RS_GOOD, 400, 400);
	add(&set, "g5", RS_GOOD, 500, 500);
	add(&set, "live", RS_LIVE, 600, 600);
	/* keep 3: live, g5 (the rollback target) and g4. */
	n = plan_prune(&set, "live", 3, 1, 0, &rm);
	assert_int_equal(n, 3);
	assert_true(removes(rm, n, "g1"));
	assert_true(removes(rm, n, "g2"));
	assert_true(removes(rm, n, "g3"));
	assert_false(removes(rm, n, "g4"));
	assert_false(removes(rm, n, "g5"));
	assert_false(removes(rm, n, "live"));
	free(rm);

	/* keep 6: everything stays, and nothing is allocated. */
	n = plan_prune(&set, "live", 6, 1, 0, &rm);
	assert_int_equal(n, 0);
	assert_null(rm);
	record_set_release(&set);
}

static void
test_prune_keep_failed(void **state)
{
	struct record_set set = { 0 };
	const struct release_record **rm = NULL;
	size_t n;

	(void)state;
	add(&set, "g1", RS_GOOD, 100, 100);
	add(&set, "f1", RS_FAILED, 150, 0);
	add(&set, "b1", RS_BAD, 200, 200);
	add(&set, "f2", RS_FAILED, 250, 0);
	add(&set, "live", RS_LIVE, 300, 300);
	/* keep_failed 1: the newest failed-or-bad one (f2) stays. */
	n = plan_prune(&set, "live", 5, 1, 0, &rm);
	assert_int_equal(n, 2);
	assert_true(removes(rm, n, "f1"));
	assert_true(removes(rm, n, "b1"));
	free(rm);

	/* keep_failed 2: f2 and b1 stay. */
	n = plan_prune(&set, "live", 5, 2, 0, &rm);
	assert_int_equal(n, 1);
	assert_true(removes(rm, n, "f1"));
	free(rm);

	/* keep_failed 0: every failed and bad one goes, good ones stay. */
	n = plan_prune(&set, "live", 5, 0, 0, &rm);
	assert_int_equal(n, 3);
	assert_true(removes(rm, n, "f1"));
	assert_true(removes(rm, n, "f2"));
	assert_true(removes(rm, n, "b1"));
	assert_false(removes(rm, n, "g1"));
	free(rm);
	record_set_release(&set);
}

static void
test_prune_never_live_target_staged_unknown(void **state)
{
	struct record_set set = { 0 };
	const struct release_record **rm = NULL;
	size_t n;

	(void)state;
	add(&set, "u", RS_UNKNOWN, 0, 0); /* made by hand, no record */
	add(&set, "g1", RS_GOOD, 100, 100);
	add(&set, "g2", RS_GOOD, 200, 200); /* the rollback target */
	add(&set, "s", RS_STAGED, 250, 0);  /* a deploy in progress */
	add(&set, "live", RS_LIVE, 300, 300);
	n = plan_prune(&set, "live", 1, 0, 0, &rm);
	assert_int_equal(n, 1);
	assert_true(removes(rm, n, "g1"));
	free(rm);
	record_set_release(&set);
}

static void
test_prune_live_by_id_whatever_its_status(void **state)
{
	struct record_set set = { 0 };
	const struct release_record **rm = NULL;
	size_t n, i;

	(void)state;
	/*
	 * current names "x", whose record still says bad (rolled to by
	 * hand with --to): it is live, so it stays.
	 */
	add(&set, "x", RS_BAD, 100, 500);
	add(&set, "g1", RS_GOOD, 200, 200);
	add(&set, "g2", RS_GOOD, 300, 300);
	n = plan_prune(&set, "x", 1, 0, 0, &rm);
	for (i = 0; i < n; i++)
		assert_string_not_equal(rm[i]->id, "x");
	/* g2 is the rollback target; g1 goes. */
	assert_int_equal(n, 1);
	assert_true(removes(rm, n, "g1"));
	free(rm);
	record_set_release(&set);
}

static void
test_prune_adopt_treats_unknown_as_good(void **state)
{
	struct record_set set = { 0 };
	const struct release_record **rm = NULL;
	size_t n;

	(void)state;
	/* Directories from before relflip: no record, no times. */
	add(&set, "u1", RS_UNKNOWN, 0, 0);
	add(&set, "u2", RS_UNKNOWN, 0, 0);
	add(&set, "g1", RS_GOOD, 100, 100);
	add(&set, "live", RS_LIVE, 200, 200);

	/* Without adopt they are not ours to remove. */
	n = plan_prune(&set, "live", 2, 0, 0, &rm);
	assert_int_equal(n, 0);
	free(rm);

	/* With adopt they count as good: keep 2 = live + g1. */
	n = plan_prune(&set, "live", 2, 0, 1, &rm);
	assert_int_equal(n, 2);
	assert_true(removes(rm, n, "u1"));
	assert_true(removes(rm, n, "u2"));
	free(rm);

	/* keep 3: one of them stays. */
	n = plan_prune(&set, "live", 3, 0, 1, &rm);
	assert_int_equal(n, 1);
	free(rm);
	record_set_release(&set);
}

/*
 * A Capistrano layout adopted with --keep 1: the newest adopted release
 * is the only way back, and stays (it was removed in 0.1).
 */
static void
test_prune_adopt_keeps_the_way_back(void **state)
{
	struct record_set set = { 0 };
	const struct release_record **rm = NULL;
	size_t n;

	(void)state;
	add(&set, "20240301120000", RS_UNKNOWN, 1000, 0);
	add(&set, "20240302120000", RS_UNKNOWN, 2000, 0);
	add(&set, "20240303120000", RS_UNKNOWN, 3000, 0);
	n = plan_prune(&set, "20240303120000", 1, 0, 1, &rm);
	assert_int_equal(n, 1);
	assert_true(removes(rm, n, "20240301120000"));
	free(rm);
	record_set_release(&set);
}

static void
test_prune_keep_one_keeps_rollback_target(void **state)
{
	struct record_set set = { 0 };
	const struct release_record **rm = NULL;
	size_t n;

	(void)state;
	add(&set, "g1", RS_GOOD, 100, 100);
	add(&set, "g2", RS_GOOD, 200, 200);
	add(&set, "g3", RS_GOOD, 300, 300);
	add(&set, "live", RS_LIVE, 400, 400);
	n = plan_prune(&set, "live", 1, 0, 0, &rm);
	assert_int_equal(n, 2);
	assert_true(removes(rm, n, "g1"));
	assert_true(removes(rm, n, "g2"));
	assert_false(removes(rm, n, "g3"));
	free(rm);
	record_set_release(&set);
}

static void
test_prune_target_is_newest_good_not_newest_overall(void **state)
{
	struct record_set set = { 0 };
	const struct release_record **rm = NULL;
	size_t n;

	(void)state;
	/* Newer bad and failed ones between the target and live. */
	add(&set, "g1", RS_GOOD, 100, 100);
	add(&set, "g2", RS_GOOD, 200, 200);
	add(&set, "b", RS_BAD, 300, 300);
	add(&set, "f", RS_FAILED, 350, 0);
	add(&set, "live", RS_LIVE, 400, 400);
	n = plan_prune(&set, "live", 1, 0, 0, &rm);
	assert_int_equal(n, 3);
	assert_true(removes(rm, n, "g1"));
	assert_true(removes(rm, n, "b"));
	assert_true(removes(rm, n, "f"));
	assert_false(removes(rm, n, "g2"));
	free(rm);
	record_set_release(&set);
}

static void
test_prune_nothing_live(void **state)
{
	struct record_set set = { 0 };
	const struct release_record **rm = NULL;
	size_t n;

	(void)state;
	/* No current yet: keep 2 = the two newest good ones. */
	add(&set, "g1", RS_GOOD, 100, 100);
	add(&set, "g2", RS_GOOD, 200, 200);
	add(&set, "g3", RS_GOOD, 300, 300);
	n = plan_prune(&set, NULL, 2, 0, 0, &rm);
	assert_int_equal(n, 1);
	assert_true(removes(rm, n, "g1"));
	free(rm);
	n = plan_prune(&set, "", 2, 0, 0, &rm);
	assert_int_equal(n, 1);
	assert_true(removes(rm, n, "g1"));
	free(rm);
	record_set_release(&set);

	/* An empty set. */
	n = plan_prune(&set, "x", 1, 0, 0, &rm);
	assert_int_equal(n, 0);
	assert_null(rm);
}

/* ---- plan_switch_outcome ---- */

static void
test_outcome_all_healthy(void **state)
{
	struct switch_outcome o[3] = {
		{ .switched = 1, .healthy = 1 },
		{ .switched = 1, .healthy = 1 },
		{ .switched = 1, .healthy = 1 },
	};

	(void)state;
	assert_int_equal(plan_switch_outcome(o, 3), RF_EXIT_OK);
	assert_int_equal(plan_switch_outcome(o, 0), RF_EXIT_OK);
}

static void
test_outcome_unhealthy_all_reverted(void **state)
{
	struct switch_outcome o[4] = {
		{ .switched = 1, .healthy = 1, .reverted = 1, .revert_ok = 1 },
		{ .switched = 1, .healthy = 0, .reverted = 1, .revert_ok = 1 },
		{ .switched = 1, .healthy = 1, .reverted = 1, .revert_ok = 1 },
		{ 0 }, /* a later batch: never switched */
	};

	(void)state;
	assert_int_equal(plan_switch_outcome(o, 4), RF_EXIT_HEALTH);
}

static void
test_outcome_revert_failed(void **state)
{
	struct switch_outcome o[3] = {
		{ .switched = 1, .healthy = 1, .reverted = 1, .revert_ok = 1 },
		{ .switched = 1, .healthy = 0, .reverted = 1, .revert_ok = 0 },
		{ .switched = 1, .healthy = 1, .reverted = 1, .revert_ok = 1 },
	};

	(void)state;
	assert_int_equal(plan_switch_outcome(o, 3), RF_EXIT_ROLLBACK_FAILED);
	/* The failing way back may be on a host that was healthy. */
	o[1].revert_ok = 1;
	o[2].revert_ok = 0;
	assert_int_equal(plan_switch_outcome(o, 3), RF_EXIT_ROLLBACK_FAILED);
}

static void
test_outcome_switched_not_reverted(void **state)
{
	struct switch_outcome o[3] = {
		{ .switched = 1, .healthy = 1, .reverted = 0 },
		{ .switched = 1, .healthy = 0, .reverted = 1, .revert_ok = 1 },
		{ 0 },
	};

	(void)state;
	assert_int_equal(plan_switch_outcome(o, 3), RF_EXIT_ROLLBACK_FAILED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch_count_n),
		cmocka_unit_test(test_batch_percent_rounds_up),
		cmocka_unit_test(test_batch_zero_means_all),
		cmocka_unit_test(test_batch_one_host),
		cmocka_unit_test(test_batch_never_more_batches_than_hosts),
		cmocka_unit_test(test_batch_hundred_percent),
		cmocka_unit_test(test_batch_one_percent),
		cmocka_unit_test(test_batch_larger_than_hosts),
		cmocka_unit_test(test_batch_no_hosts),
		cmocka_unit_test(test_rollback_newest_good_by_activation),
		cmocka_unit_test(test_rollback_skips_live_even_if_good),
		cmocka_unit_test(test_rollback_skips_good_without_directory),
		cmocka_unit_test(test_rollback_to_failed_refused),
		cmocka_unit_test(test_rollback_to_staged_refused),
		cmocka_unit_test(test_rollback_to_bad_allowed),
		cmocka_unit_test(test_rollback_to_missing_id),
		cmocka_unit_test(test_rollback_to_id_without_directory),
		cmocka_unit_test(test_rollback_no_good_release),
		cmocka_unit_test(test_rollback_twice_does_not_bounce),
		cmocka_unit_test(test_rollback_skips_failed_deploy),
		cmocka_unit_test(test_prune_keep_counts_live),
		cmocka_unit_test(test_prune_keep_failed),
		cmocka_unit_test(test_prune_never_live_target_staged_unknown),
		cmocka_unit_test(test_prune_live_by_id_whatever_its_status),
		cmocka_unit_test(test_prune_adopt_treats_unknown_as_good),
		cmocka_unit_test(test_prune_adopt_keeps_the_way_back),
		cmocka_unit_test(test_prune_keep_one_keeps_rollback_target),
		cmocka_unit_test(
		    test_prune_target_is_newest_good_not_newest_overall),
		cmocka_unit_test(test_prune_nothing_live),
		cmocka_unit_test(test_outcome_all_healthy),
		cmocka_unit_test(test_outcome_unhealthy_all_reverted),
		cmocka_unit_test(test_outcome_revert_failed),
		cmocka_unit_test(test_outcome_switched_not_reverted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
