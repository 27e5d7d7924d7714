/*
 * The lines of APP/.relflip/log.jsonl, read back whole as a server hands
 * the file over: one JSON object a line, appended by every deploy,
 * rollback, prune, lock and unlock, perhaps with a torn last line.
 *
 * Each line goes through log_line_parse (logread.h), the parser `relflip
 * log` reads them with, and what it promises is checked in read_line():
 * a line it takes has a time and a command, every string it filled ends
 * within its field, and nothing is left half-filled by a line it refuses.
 * The corpus in corpus/log/ holds the lines relflip writes.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "logread.h"

/* A string field ends within it. */
#define ENDS(f) FUZZ_ASSERT(memchr((f), '\0', sizeof(f)) != NULL)

static void
read_line(const char *line)
{
	struct log_entry e;

	if (log_line_parse(line, &e) != 0) {
		FUZZ_ASSERT(e.time_ms == 0 && e.command[0] == '\0' &&
			    e.removed == 0 && e.message[0] == '\0');
		return;
	}
	FUZZ_ASSERT(e.command[0] != '\0');
	FUZZ_ASSERT(e.time_ms >= 0);
	ENDS(e.host);
	ENDS(e.command);
	ENDS(e.revision);
	ENDS(e.previous);
	ENDS(e.result);
	ENDS(e.actor);
	ENDS(e.runner);
	ENDS(e.run_url);
	ENDS(e.why);
	ENDS(e.holder);
	ENDS(e.holder_since);
	ENDS(e.message);
	ENDS(e.checksum);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	char *line = text, *nl;

	while (*line != '\0') {
		nl = strchr(line, '\n');
		if (nl != NULL)
			*nl = '\0';
		if (nl != NULL && nl > line && nl[-1] == '\r')
			nl[-1] = '\0';
		read_line(line);
		if (nl == NULL)
			break;
		line = nl + 1;
	}
	free(text);
	return 0;
}
