/*
 * The layout probe parser (include/layout.h): the key=value lines that the
 * probe script prints on a server, records included. The server is not
 * trusted to print only what the script meant to: anything goes in.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "layout.h"
#include "release.h"

static void
check_state(const struct layout_state *st)
{
	size_t i, j;

	FUZZ_ASSERT(st->current_id[0] == '\0' ||
		    release_id_valid(st->current_id));
	/* And it is the target's whole last name (a '/' may follow). */
	if (st->current_id[0] != '\0') {
		size_t n = strlen(st->current_id);
		size_t len = strlen(st->current_target);

		if (len > 0 && st->current_target[len - 1] == '/')
			len--;
		FUZZ_ASSERT(len > n && st->current_target[len - n - 1] == '/');
		FUZZ_ASSERT(memcmp(st->current_target + len - n, st->current_id,
				   n) == 0);
	}
	/* A lock without lock_since dates from its last renewal. */
	FUZZ_ASSERT(!st->lock.held || st->lock.since != 0 ||
		    st->lock.renewed == 0);
	for (i = 0; i < st->records.n; i++) {
		FUZZ_ASSERT(release_id_valid(st->records.v[i].id));
		for (j = i + 1; j < st->records.n; j++)
			FUZZ_ASSERT(strcmp(st->records.v[i].id,
					   st->records.v[j].id) != 0);
	}
	for (i = 0; i < st->tmpdirs.n; i++)
		FUZZ_ASSERT(strncmp(st->tmpdirs.v[i], ".tmp-", 5) == 0);
	/*
	 * Nothing is asserted of foreign names: one may be an id, a symlink
	 * or a file named like a release (layout.h), which a deploy of that
	 * id refuses.
	 */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	struct layout_state st;
	char id[65];

	layout_parse(text, &st);
	check_state(&st);
	/* As `list` and `rollback` order them. */
	if (st.records.n > 1)
		qsort(st.records.v, st.records.n, sizeof(st.records.v[0]),
		      record_cmp_newest);
	/* The target of `current` is the server's word too. */
	if (layout_target_id(st.current_target, id, sizeof(id)) != NULL)
		FUZZ_ASSERT(release_id_valid(id));
	layout_state_release(&st);
	free(text);
	return 0;
}
