#ifndef RELFLIP_RELEASE_H
#define RELFLIP_RELEASE_H

#include <stddef.h>

#include "conf.h"

/* A release id: 1-64 characters of [A-Za-z0-9._-], not starting with '.'. */
int release_id_valid(const char *id);

/*
 * May this ref deploy? An empty allowed_refs list allows any ref; a
 * non-empty one needs a ref (NULL or "" is refused) matching one glob.
 */
int release_ref_allowed(const struct strlist *allowed, const char *ref);

/*
 * For a ref that allowed_refs refuses, the ref the user likely meant:
 * with no ref, the first entry without glob characters; for a short name
 * ("main", "v1.2"), refs/heads/NAME or refs/tags/NAME when that one is
 * allowed. "" when there is no good guess.
 */
void release_ref_guess(const struct strlist *allowed, const char *ref,
		       char *dst, size_t len);

#endif
