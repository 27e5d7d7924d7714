/*
 * The artifact validator (include/artifact.h): a tarball, plain or gzip,
 * zstd or xz, that may have been built to hurt the server it is unpacked
 * on. artifact_validate takes a path, so each input is written to one
 * memfd and named by /proc/self/fd/N. The limits are small, so that no
 * input decompresses for long, and low enough to be reached.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "artifact.h"
#include "error.h"
#include "fuzz.h"

static const struct artifact_limits limits = {
	.max_unpacked = 1 << 20,
	.max_entries = 64,
	.max_ratio = 200.0,
};

static int memfd = -1;
static char path[64];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	memfd = memfd_create("relflip-fuzz-artifact", MFD_CLOEXEC);
	if (memfd == -1) {
		perror("memfd_create");
		abort();
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	return 0;
}

static void
write_input(const uint8_t *data, size_t size)
{
	size_t off = 0;
	ssize_t n;

	if (ftruncate(memfd, 0) != 0)
		abort();
	while (off < size) {
		n = pwrite(memfd, data + off, size - off, (off_t)off);
		if (n <= 0)
			abort();
		off += (size_t)n;
	}
}

static void
check_valid(const struct artifact_info *info, size_t size)
{
	char hex[65];
	struct rf_error err = RF_ERROR_INIT;

	FUZZ_ASSERT(info->entries >= 1 && info->entries <= limits.max_entries);
	FUZZ_ASSERT(info->files <= info->entries);
	FUZZ_ASSERT(info->unpacked_size <= limits.max_unpacked);
	FUZZ_ASSERT(info->file_size == size);
	FUZZ_ASSERT(strcmp(info->compression, "gzip") == 0 ||
		    strcmp(info->compression, "zstd") == 0 ||
		    strcmp(info->compression, "xz") == 0 ||
		    strcmp(info->compression, "none") == 0);
	/* The digest covers the whole file, trailing bytes included. */
	FUZZ_ASSERT(file_sha256(path, hex, &err) == 0);
	FUZZ_ASSERT(strcmp(hex, info->sha256) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct artifact_info info;
	struct rf_error err = RF_ERROR_INIT;

	write_input(data, size);
	if (artifact_validate(path, &limits, &info, &err) == 0) {
		check_valid(&info, size);
	} else {
		FUZZ_ASSERT(err.code == RF_EXIT_ARTIFACT);
		FUZZ_ASSERT(err.stage != NULL &&
			    strcmp(err.stage, "validate") == 0);
		FUZZ_ASSERT(err.msg[0] != '\0');
	}
	return 0;
}
