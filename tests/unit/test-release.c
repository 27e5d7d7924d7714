/*
 * Release ids and refs: which refs may deploy, and the ref a refused one
 * most likely meant.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "release.h"

static char heads_main[] = "refs/heads/main", tags_v[] = "refs/tags/v*";
static char *main_tags[] = { heads_main, tags_v };
static const struct strlist allowed = { main_tags, 2 };

static void
assert_guess(const struct strlist *l, const char *ref, const char *want)
{
	char got[128];

	release_ref_guess(l, ref, got, sizeof(got));
	assert_string_equal(got, want);
}

static void
test_guess_for_a_missing_ref(void **state)
{
	static char release_glob[] = "refs/heads/release-*";
	static char *globs_only[] = { release_glob };
	struct strlist g = { globs_only, 1 };

	(void)state;
	assert_false(release_ref_allowed(&allowed, NULL));
	assert_guess(&allowed, NULL, "refs/heads/main");
	assert_guess(&allowed, "", "refs/heads/main");
	/* Only globs: nothing to copy as it is. */
	assert_guess(&g, NULL, "");
}

static void
test_guess_for_a_short_name(void **state)
{
	(void)state;
	assert_false(release_ref_allowed(&allowed, "main"));
	assert_guess(&allowed, "main", "refs/heads/main");
	assert_guess(&allowed, "v1.2.0", "refs/tags/v1.2.0");
	/* No allowed ref of that name: no guess. */
	assert_guess(&allowed, "develop", "");
	/* A full ref is taken as meant. */
	assert_guess(&allowed, "refs/heads/develop", "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_guess_for_a_missing_ref),
		cmocka_unit_test(test_guess_for_a_short_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
