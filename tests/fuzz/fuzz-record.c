/*
 * The release record parser (include/record.h): one line of JSON from
 * APP/.relflip/releases/<id>.json, as a server hands it back. A record that
 * parses must come back the same through record_format and record_parse
 * again, as it does when relflip rewrites a record it read.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz.h"
#include "record.h"
#include "release.h"

/* The end of year 9999 in epoch ms: "%Y" past it has five digits. */
#define TIME_MAX 253402300799999LL

static int
time_printable(long long ms)
{
	/* record_time_ms writes the milliseconds of a negative time badly. */
	return ms >= 0 && ms <= TIME_MAX;
}

/* json_quote writes invalid UTF-8 as U+FFFD: compare plain text only. */
static int
ascii(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80)
			return 0;
	}
	return 1;
}

static void
check_str(const char *a, const char *b)
{
	if (ascii(a))
		FUZZ_ASSERT(strcmp(a, b) == 0);
}

static void
check_round_trip(const struct release_record *a)
{
	struct release_record b;
	struct buf line = BUF_INIT;

	record_format(a, &line);
	FUZZ_ASSERT(record_parse(buf_str(&line), &b) == 0);
	FUZZ_ASSERT(strcmp(a->id, b.id) == 0);
	FUZZ_ASSERT(a->status == b.status);
	/* Sizes are read as int64: no file reaches 2^63 bytes. */
	if (a->size <= INT64_MAX)
		FUZZ_ASSERT(a->size == b.size);
	if (a->unpacked <= INT64_MAX)
		FUZZ_ASSERT(a->unpacked == b.unpacked);
	FUZZ_ASSERT(a->migrated == b.migrated);
	check_str(a->checksum, b.checksum);
	check_str(a->ref, b.ref);
	check_str(a->actor, b.actor);
	check_str(a->runner, b.runner);
	check_str(a->run_url, b.run_url);
	check_str(a->reason, b.reason);
	if (time_printable(a->created))
		FUZZ_ASSERT(a->created == b.created);
	if (time_printable(a->activated))
		FUZZ_ASSERT(a->activated == b.activated);
	if (time_printable(a->deactivated))
		FUZZ_ASSERT(a->deactivated == b.deactivated);
	buf_release(&line);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	struct release_record rec;

	if (record_parse(text, &rec) == 0) {
		FUZZ_ASSERT(release_id_valid(rec.id));
		FUZZ_ASSERT(rec.has_record && !rec.has_dir);
		(void)release_status_name(rec.status);
		check_round_trip(&rec);
	}
	free(text);
	return 0;
}
