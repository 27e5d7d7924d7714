#include <fnmatch.h>
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
