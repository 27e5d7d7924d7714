/*
 * The lines of APP/.relflip/log.jsonl, read back whole as a server hands
 * the file over: one JSON object a line, appended by every deploy,
 * rollback, prune and unlock, perhaps with a torn last line.
 *
 * No relflip code reads these lines yet; `relflip log` will, with json-c
 * like record_parse. Until its parser lands, each line goes through
 * record_parse, the JSON path the two will share. When it lands, call it in
 * read_line() below (and check what it promises there); the corpus in
 * corpus/log/ already holds the lines relflip writes.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "record.h"
#include "release.h"

static void
read_line(const char *line)
{
	struct release_record rec;

	if (record_parse(line, &rec) == 0)
		FUZZ_ASSERT(release_id_valid(rec.id));
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
