/*
 * What relflip status decides (status.h) from a host's probe, parsed
 * from sample probe outputs: the lock's state (free, held, stale, a
 * freeze that is never stale, odd), the live release and its record,
 * the rollback target, unreachable hosts, and disagreement; and the
 * freeze's pieces in lock.h: the message check and the holder's text.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fleet.h"
#include "layout.h"
#include "lock.h"
#include "status.h"

#define NOW 1767225600LL

static const char *const records =
    "record={\"id\": \"v1\", \"status\": \"good\", \"actor\": \"bob\", "
    "\"created\": \"2026-01-01T00:00:00.000Z\", \"activated\": "
    "\"2026-01-01T00:01:00.000Z\"}\n"
    "record={\"id\": \"v2\", \"status\": \"live\", \"actor\": \"alice\", "
    "\"ref\": \"refs/heads/main\", \"created\": \"2026-01-01T00:10:00.000Z\""
    ", \"activated\": \"2026-01-01T00:11:00.250Z\"}\n"
    "rdir=v1\nrdir=v2\n";

/* A probed host: the probe's output parsed, live taken from current. */
struct probed {
	char name[16];
	struct conf_host ch;
	struct fleet_host fh;
};

static void
probed_init(struct probed *p, const char *name, const char *probe)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->ch.name = p->name;
	p->fh.host = &p->ch;
	p->fh.connected = 1;
	layout_parse(probe, &p->fh.st);
	if (p->fh.st.current == CURRENT_LINK)
		snprintf(p->fh.live, sizeof(p->fh.live), "%s",
			 p->fh.st.current_id);
}

static void
probed_release(struct probed *p)
{
	layout_state_release(&p->fh.st);
}

/* ---- lock_state_of ---- */

static void
test_lock_states(void **state)
{
	struct lock_info l;

	(void)state;
	memset(&l, 0, sizeof(l));
	assert_int_equal(lock_state_of(&l, NOW, 1800), LOCK_FREE);
	l.held = 1;
	snprintf(l.command, sizeof(l.command), "deploy");
	l.since = NOW - 4000;
	l.renewed = NOW - 10;
	assert_int_equal(lock_state_of(&l, NOW, 1800), LOCK_HELD);
	/* Renewal, not age, is what counts. */
	l.renewed = NOW - 1801;
	assert_int_equal(lock_state_of(&l, NOW, 1800), LOCK_STALE);
	l.renewed = 0;
	l.since = NOW - 100;
	assert_int_equal(lock_state_of(&l, NOW, 1800), LOCK_HELD);
	/* A freeze three days old is still a freeze. */
	snprintf(l.command, sizeof(l.command), "lock");
	l.since = l.renewed = NOW - 3 * 86400;
	assert_int_equal(lock_state_of(&l, NOW, 1800), LOCK_FROZEN);
	assert_true(lock_is_freeze(&l));
	l.odd = "holds no holder info";
	assert_int_equal(lock_state_of(&l, NOW, 1800), LOCK_ODD);
	assert_false(lock_is_freeze(&l));
	assert_string_equal(lock_state_name(LOCK_FROZEN), "frozen");
	assert_string_equal(lock_state_name(LOCK_STALE), "stale");
}

/* ---- status_of ---- */

static void
test_status_live_since_by_ref_target(void **state)
{
	struct probed p;
	struct host_status hs;
	struct buf probe = BUF_INIT;

	(void)state;
	buf_addf(&probe,
		 "now=%lld\napp=1\ndir=1\ntarget=releases/v2\n"
		 "current=link\n%s",
		 NOW, records);
	probed_init(&p, "web1", buf_str(&probe));
	status_of(&p.fh, 1800, &hs);
	assert_string_equal(hs.host, "web1");
	assert_true(hs.reachable);
	assert_null(hs.error);
	assert_true(hs.app_exists);
	assert_int_equal(hs.current, CURRENT_LINK);
	assert_string_equal(hs.live, "v2");
	assert_non_null(hs.rec);
	assert_string_equal(hs.rec->actor, "alice");
	assert_string_equal(hs.rec->ref, "refs/heads/main");
	/* Since its activation, not its creation. */
	assert_true(hs.since_ms == 1767226260250LL);
	assert_string_equal(hs.target, "v1");
	assert_int_equal(hs.lock, LOCK_FREE);
	probed_release(&p);
	buf_release(&probe);
}

static void
test_status_fresh_host(void **state)
{
	struct probed p;
	struct host_status hs;

	(void)state;
	probed_init(&p, "web1",
		    "now=1\napp=0\nancestor=/srv\nwritable=1\ncurrent=none\n");
	status_of(&p.fh, 1800, &hs);
	assert_true(hs.reachable);
	assert_false(hs.app_exists);
	assert_int_equal(hs.current, CURRENT_NONE);
	assert_string_equal(hs.live, "");
	assert_null(hs.rec);
	assert_true(hs.since_ms == 0);
	assert_null(hs.target);
	assert_string_equal(current_kind_name(hs.current), "none");
	probed_release(&p);
}

static void
test_status_a_release_without_record_has_no_since(void **state)
{
	struct probed p;
	struct host_status hs;

	(void)state;
	/* A Capistrano release: a directory and its time, no record. */
	probed_init(&p, "web1",
		    "now=1\napp=1\ndir=1\ntarget=releases/20240102\n"
		    "current=link\nrdir=20240102\nutime=20240102 1704196800\n");
	status_of(&p.fh, 1800, &hs);
	assert_string_equal(hs.live, "20240102");
	assert_non_null(hs.rec);
	assert_true(hs.since_ms == 0);
	probed_release(&p);
}

static void
test_status_locks(void **state)
{
	struct probed p;
	struct host_status hs;
	struct buf probe = BUF_INIT;

	(void)state;
	buf_addf(&probe,
		 "now=%lld\napp=1\ndir=1\ncurrent=none\nlock=1\n"
		 "lock_renewed=%lld\nlock_user=carol@laptop\n"
		 "lock_command=lock\nlock_message=db: back at 14:00\n"
		 "lock_since=%lld\n",
		 NOW, NOW - 86400, NOW - 86400);
	probed_init(&p, "web1", buf_str(&probe));
	status_of(&p.fh, 1800, &hs);
	assert_int_equal(hs.lock, LOCK_FROZEN);
	assert_true(hs.lock_age == 86400);
	assert_string_equal(hs.lock_info->message, "db: back at 14:00");
	assert_string_equal(hs.lock_info->user, "carol@laptop");
	probed_release(&p);

	buf_reset(&probe);
	buf_addf(&probe,
		 "now=%lld\napp=1\ndir=1\ncurrent=none\nlock=1\n"
		 "lock_renewed=%lld\nlock_user=ci@r7\n"
		 "lock_command=deploy\nlock_since=%lld\n",
		 NOW, NOW - 86400, NOW - 86400);
	probed_init(&p, "web1", buf_str(&probe));
	status_of(&p.fh, 1800, &hs);
	assert_int_equal(hs.lock, LOCK_STALE);
	status_of(&p.fh, 100000, &hs);
	assert_int_equal(hs.lock, LOCK_HELD);
	probed_release(&p);
	buf_release(&probe);
}

static void
test_status_unreachable(void **state)
{
	struct probed p;
	struct host_status hs;

	(void)state;
	probed_init(&p, "web3", "");
	p.fh.connected = 0;
	p.fh.failed = 1;
	snprintf(p.fh.err.msg, sizeof(p.fh.err.msg),
		 "cannot connect to web3: connection refused");
	status_of(&p.fh, 1800, &hs);
	assert_false(hs.reachable);
	assert_string_equal(hs.error,
			    "cannot connect to web3: connection refused");
	assert_string_equal(hs.live, "");
	probed_release(&p);
}

/* ---- status_disagree ---- */

static void
test_disagree(void **state)
{
	struct host_status v[3];
	struct buf lives = BUF_INIT;

	(void)state;
	memset(v, 0, sizeof(v));
	v[0].host = "web1";
	v[0].reachable = 1;
	v[0].live = "v2";
	v[1].host = "web2";
	v[1].reachable = 1;
	v[1].live = "v2";
	v[2].host = "web3";
	v[2].live = "";
	/* An unreachable host does not count. */
	assert_false(status_disagree(v, 3, &lives));
	assert_string_equal(buf_str(&lives), "web1: v2, web2: v2");
	buf_reset(&lives);
	v[2].reachable = 1;
	assert_true(status_disagree(v, 3, &lives));
	assert_string_equal(buf_str(&lives), "web1: v2, web2: v2, web3: none");
	buf_reset(&lives);
	assert_false(status_disagree(v, 1, &lives));
	buf_reset(&lives);
	assert_false(status_disagree(v, 0, &lives));
	assert_string_equal(buf_str(&lives), "");
	buf_release(&lives);
}

/* ---- the freeze: its message, and how its holder reads ---- */

static void
test_freeze_message_check(void **state)
{
	static const char *const bad[] = {
		"",
		"two\nlines",
		"cr\r",
		"tab\there",
		"esc \x1b[31m",
		"del \x7f",
		"c1 \xc2\x9b",
		"not utf-8 \xff",
		"overlong \xc0\xaf",
		"cut \xe2\x98",
	};
	struct rf_error err = RF_ERROR_INIT;
	char longest[FREEZE_MESSAGE_MAX + 2];
	size_t i;

	(void)state;
	assert_int_equal(freeze_message_check(NULL, &err), -1);
	assert_int_equal(err.code, RF_EXIT_USAGE);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rf_error_clear(&err);
		if (freeze_message_check(bad[i], &err) != -1)
			fail_msg("message %zu taken", i);
		assert_int_equal(err.code, RF_EXIT_USAGE);
	}
	assert_int_equal(freeze_message_check("db migration, ask #ops", &err),
			 0);
	assert_int_equal(
	    freeze_message_check("gelé \xe2\x98\x83 \xc2\xa0", &err), 0);
	memset(longest, 'x', sizeof(longest));
	longest[FREEZE_MESSAGE_MAX] = '\0';
	assert_int_equal(freeze_message_check(longest, &err), 0);
	longest[FREEZE_MESSAGE_MAX] = 'x';
	longest[FREEZE_MESSAGE_MAX + 1] = '\0';
	assert_int_equal(freeze_message_check(longest, &err), -1);
	assert_non_null(strstr(err.msg, "201 bytes"));
}

static void
test_holder_text(void **state)
{
	struct lock_info l;
	struct buf b = BUF_INIT;

	(void)state;
	memset(&l, 0, sizeof(l));
	l.held = 1;
	l.since = 1767225600;
	snprintf(l.user, sizeof(l.user), "carol@laptop");
	snprintf(l.command, sizeof(l.command), "lock");
	snprintf(l.message, sizeof(l.message), "db work");
	lock_holder_text(&l, &b);
	assert_string_equal(buf_str(&b), "frozen by carol@laptop since "
					 "2026-01-01T00:00:00Z: db work");
	buf_reset(&b);
	snprintf(l.command, sizeof(l.command), "deploy");
	snprintf(l.pid, sizeof(l.pid), "42");
	snprintf(l.revision, sizeof(l.revision), "v9");
	lock_holder_text(&l, &b);
	assert_string_equal(buf_str(&b), "carol@laptop (pid 42), for a deploy "
					 "of v9, since 2026-01-01T00:00:00Z");
	buf_release(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lock_states),
		cmocka_unit_test(test_status_live_since_by_ref_target),
		cmocka_unit_test(test_status_fresh_host),
		cmocka_unit_test(
		    test_status_a_release_without_record_has_no_since),
		cmocka_unit_test(test_status_locks),
		cmocka_unit_test(test_status_unreachable),
		cmocka_unit_test(test_disagree),
		cmocka_unit_test(test_freeze_message_check),
		cmocka_unit_test(test_holder_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
