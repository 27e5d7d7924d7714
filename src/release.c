#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "release.h"

int
release_id_valid(const char *id)
{
	size_t n = strlen(id);
	size_t i;

	if (n == 0 || n > 64 || id[0] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

int
release_ref_allowed(const struct strlist *allowed, const char *ref)
{
	size_t i;

	if (allowed->n == 0)
		return 1;
	if (ref == NULL || ref[0] == '\0')
		return 0;
	for (i = 0; i < allowed->n; i++) {
		if (fnmatch(allowed->v[i], ref, 0) == 0)
			return 1;
	}
	return 0;
}

/* An allowed_refs entry without glob characters: a ref as written. */
static int
plain_ref(const char *glob)
{
	return strpbrk(glob, "*?[") == NULL;
}

void
release_ref_guess(const struct strlist *allowed, const char *ref, char *dst,
		  size_t len)
{
	static const char *const prefixes[] = { "refs/heads/", "refs/tags/" };
	char full[256];
	size_t i;

	if (len == 0)
		return;
	dst[0] = '\0';
	if (ref == NULL || ref[0] == '\0') {
		for (i = 0; i < allowed->n; i++) {
			if (plain_ref(allowed->v[i])) {
				snprintf(dst, len, "%s", allowed->v[i]);
				return;
			}
		}
		return;
	}
	if (strncmp(ref, "refs/", 5) == 0)
		return;
	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		snprintf(full, sizeof(full), "%s%s", prefixes[i], ref);
		if (release_ref_allowed(allowed, full)) {
			snprintf(dst, len, "%s", full);
			return;
		}
	}
}
