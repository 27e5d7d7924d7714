#ifndef RELFLIP_OUT_H
#define RELFLIP_OUT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"

/*
 * All user-visible output goes through here: human text on stderr, JSON
 * events (--json) and primary output on stdout. Safe to call from several
 * threads.
 *
 * Whatever callers pass is shown as text, never acted on: in every line
 * of human text (errors, hints, warnings, text, stage lines, hook output,
 * debug lines) secrets registered with out_secret() become "[redacted]",
 * control characters (C0 but tab, DEL, C1; newline and CR included) and
 * invalid UTF-8 become visible \xNN, and nothing can start a GitHub
 * Actions workflow command ("::cmd::" at the start of a line, "##[cmd]"
 * anywhere). Colours are relflip's own, added after. In JSON events each
 * string has its secrets redacted and is then escaped (json_quote).
 */

struct out_settings {
	int json;    /* --json: events on stdout */
	int quiet;   /* -q: errors only on stderr */
	int verbose; /* -v: debug lines */
	int color;   /* stderr is a terminal and colour is allowed */
	int tty;     /* stderr is a terminal: progress bars, live lines */
	int github;  /* GITHUB_ACTIONS=true */
	int table_only; /* the command's output is a table (releases): no
			 * stage lines; errors and warnings stay */
};

extern struct out_settings out_cfg;

/* Read the flags and the environment (NO_COLOR, GITHUB_ACTIONS, isatty). */
void out_setup(int json, int quiet, int verbose, int no_color);

/*
 * Text that must never be shown: "[redacted]" everywhere instead, in text
 * and JSON. Each of its lines is registered too (PEM armour lines such as
 * "-----BEGIN OPENSSH PRIVATE KEY-----" apart), so key text shown a line
 * at a time is redacted as well. Pieces shorter than 4 bytes are left out;
 * registering the same text again does nothing.
 */
void out_secret(const char *text);

enum out_type { OUT_STR, OUT_INT, OUT_BOOL, OUT_DOUBLE };

struct out_field {
	const char *key;
	enum out_type type;
	const char *s;
	long long i;
	double d;
};

#define OF_STR(k, v) { .key = (k), .type = OUT_STR, .s = (v) }
#define OF_INT(k, v) { .key = (k), .type = OUT_INT, .i = (long long)(v) }
#define OF_BOOL(k, v) { .key = (k), .type = OUT_BOOL, .i = !!(v) }
#define OF_DOUBLE(k, v) { .key = (k), .type = OUT_DOUBLE, .d = (v) }

/*
 * One JSON event line on stdout under --json (nothing otherwise):
 * {"time": ..., "event": event, "host": host, "stage": stage, fields...}.
 * host and stage are left out when NULL.
 */
void out_event(const char *event, const char *host, const char *stage,
	       const struct out_field *fields, size_t nfields);

/* One line of human text on stderr, unless -q. A '\n' is added. */
void out_text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Primary output on stdout (`releases`, `pack`'s digest); none under
 * --json. It may hold several lines separated by '\n'; each is cleaned
 * as out_text's line is.
 */
void out_primary(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "relflip: warning: [host: ]..." and a `warning` event. */
void out_warning(const char *host, const char *stage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "relflip: error: [host: ]msg (exit N)", "hint: ...", an `error` event. */
void out_error(const struct rf_error *err);

/* Debug line with the function name, under -v only. */
void out_debug_at(const char *func, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#define out_debug(...) out_debug_at(__func__, __VA_ARGS__)

/* A `stage` begin event. */
void out_stage_begin(const char *host, const char *stage);

/*
 * A stage starts on names ("web1 web2"). Its first line of output (a
 * hook's) comes under a heading, "  install   web1 …", or under GitHub
 * Actions in a group "relflip install web1 (output)" that the stage's own
 * line (out_stage_end) closes: the stage lines stay outside the folds.
 */
void out_stage_running(const char *stage, const char *names);

/*
 * A `stage` end event with duration_ms, and the human line
 * "  stage     detail                      12 ms" (none under table_only).
 */
void out_stage_end(const char *host, const char *stage, long duration_ms,
		   int ok, const char *detail);

/*
 * The upload's progress bar on a terminal (bytes, rate, ETA); label is a
 * host or "8 hosts". For one host it is the live line. Nothing under
 * --json or -q, off a terminal, or for a fleet (whose live block shows
 * each host's percentage).
 */
void out_progress(const char *label, uint64_t done, uint64_t total);

/*
 * The live area on a terminal, kept at the bottom while other lines
 * scroll above and erased at the end: for one host, a line while a stage
 * runs ("  install   web1 …  12 s", the elapsed time moving every
 * second); for a fleet (up to 60 hosts), a line per host. Nothing off a
 * terminal or under --json or -q. out_live_stage: host i runs stage from
 * now; out_live_set: what it shows instead of the elapsed time (the
 * upload's percentage); out_live_done: its stage ended.
 */
void out_live_begin(size_t n, const char *const *names);
void out_live_stage(size_t index, const char *stage);
void out_live_set(size_t index, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void out_live_done(size_t index, int ok);
void out_live_end(void);

/* A line of a hook's output, prefixed with the host. */
void out_output(const char *host, const char *stage, int is_stderr,
		const char *line);

/* The last event: `result`. previous may be NULL. */
void out_result(const char *status, int exit_code, const char *revision,
		const char *previous, long duration_ms);

/*
 * The same `result` object, one line without the newline, appended to b
 * whatever the output settings: what the runner's hooks read on stdin and
 * the webhook carries.
 */
void out_result_json(struct buf *b, const char *status, int exit_code,
		     const char *revision, const char *previous,
		     long duration_ms);

/* s with the registered secrets redacted, as every output has it; owned. */
char *out_redact(const char *s);

/* Append Markdown to $GITHUB_STEP_SUMMARY when set (GitHub Actions). */
void out_step_summary(const char *markdown);

/* "1.2 s", "84 ms". */
void out_format_duration(char *dst, size_t len, long ms);

/* "5.7 MB", "212 KB" (decimal units, as DESIGN.md shows). */
void out_format_bytes(char *dst, size_t len, uint64_t bytes);

/*
 * "212 MB/s" for bytes sent in ms; "" when too little was sent, or too
 * fast, for the figure to mean anything (under 256 KB or 200 ms).
 */
void out_format_rate(char *dst, size_t len, uint64_t bytes, long ms);

/* Flush and check stdout; -1 when writing it failed. */
int out_finish(void);

/* Milliseconds on a monotonic clock, for durations. */
long long out_now_ms(void);

#endif
