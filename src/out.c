/*
 * out.c: everything relflip shows. What callers pass is text to show,
 * never markup: each piece (a message, a host, a hook's line) has the
 * registered secrets replaced by [redacted], then control characters and
 * invalid UTF-8 made visible as \xNN (term_sanitize), before relflip adds
 * its own colours and prefixes. Every line written is then defused for
 * GitHub Actions, whose runner takes "::cmd::" at the start of a line
 * (after blanks) and "##[cmd]" anywhere for workflow commands. In JSON,
 * secrets are redacted from each string before it is escaped.
 */
#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "json.h"
#include "out.h"
#include "quote.h"
#include "xmalloc.h"

struct out_settings out_cfg;

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
/* Registered secrets, longest first, so that a whole key goes before its lines.
 */
static pthread_mutex_t secret_lock = PTHREAD_MUTEX_INITIALIZER;
static char **secrets;
static size_t *secret_lens;
static size_t nsecrets;
/* A progress line is on the terminal and must be cleared before text. */
static int progress_shown;

/*
 * The live area on a terminal, at the bottom of the screen, erased before
 * any other line is written and drawn again after it. For one host, one
 * line while a stage runs ("  install   web1 …  12 s"); for a fleet, a line
 * per host. A ticker thread redraws it every second, so the elapsed time
 * moves while a quiet hook or the health retries run.
 */
#define LIVE_HOSTS_MAX 60
#define LIVE_TEXT 96
#define LIVE_TICK_MS 1000

enum live_state { LIVE_WAITING, LIVE_RUNNING, LIVE_DONE, LIVE_FAILED };

struct live_host {
	char name[32];
	char stage[16];
	char text[LIVE_TEXT]; /* progress, shown instead of the elapsed time */
	enum live_state state;
	long long since_ms; /* when its stage began */
};

static size_t live_n;
static struct live_host *live;
static size_t live_shown;
static long long live_drawn_ms;
static pthread_t live_ticker;
static int live_ticking;
static pthread_cond_t live_cond;

/*
 * The heading of the stage that runs now ("install", "web1 web2"): shown
 * above the stage's first line of output, so that a hook's lines sit under
 * their stage; under GitHub Actions that output is folded in a group whose
 * title it is, and the stage's own line comes after the group.
 */
static char head_stage[32];
static char head_names[128];
static int head_shown;
static int group_open;

static void live_erase(void);
static void live_draw(void);
static const char *color(const char *c);

#define COLOR_RED "\033[31;1m"
#define COLOR_YELLOW "\033[33;1m"
#define COLOR_GREEN "\033[32m"
#define COLOR_DIM "\033[2m"
#define COLOR_RESET "\033[0m"

/* Below these a transfer's rate is not shown. */
#define RATE_MIN_MS 200
#define RATE_MIN_BYTES (256 * 1000)

/* Shorter text would be redacted from too many unrelated words. */
#define SECRET_MIN 4

void
out_setup(int json, int quiet, int verbose, int no_color)
{
	const char *nc = getenv("NO_COLOR");
	const char *gh = getenv("GITHUB_ACTIONS");

	out_cfg.json = json;
	out_cfg.quiet = quiet;
	out_cfg.verbose = verbose;
	out_cfg.tty = isatty(STDERR_FILENO);
	out_cfg.color = out_cfg.tty && !no_color && (nc == NULL || *nc == '\0');
	out_cfg.github = gh != NULL && strcmp(gh, "true") == 0;
}

/* Add n bytes of s to the secrets, once, in length order. Lock held. */
static void
secret_add(const char *s, size_t n)
{
	size_t i, at;

	if (n < SECRET_MIN)
		return;
	for (i = 0; i < nsecrets; i++) {
		if (secret_lens[i] == n && memcmp(secrets[i], s, n) == 0)
			return;
	}
	for (at = 0; at < nsecrets && secret_lens[at] >= n; at++)
		;
	secrets = xreallocarray(secrets, nsecrets + 1, sizeof(*secrets));
	secret_lens =
	    xreallocarray(secret_lens, nsecrets + 1, sizeof(*secret_lens));
	memmove(secrets + at + 1, secrets + at,
		(nsecrets - at) * sizeof(*secrets));
	memmove(secret_lens + at + 1, secret_lens + at,
		(nsecrets - at) * sizeof(*secret_lens));
	secrets[at] = xstrndup(s, n);
	secret_lens[at] = n;
	nsecrets++;
}

/* A PEM armour line ("-----BEGIN ... KEY-----") is no secret. */
static int
is_armour(const char *s, size_t n)
{
	return n >= 10 && strncmp(s, "-----", 5) == 0 &&
	       strncmp(s + n - 5, "-----", 5) == 0;
}

void
out_secret(const char *text)
{
	const char *line, *end;
	size_t n;

	if (text == NULL)
		return;
	pthread_mutex_lock(&secret_lock);
	secret_add(text, strlen(text));
	for (line = text; *line != '\0'; line = end) {
		n = strcspn(line, "\r\n");
		end = line + n;
		if (!is_armour(line, n))
			secret_add(line, n);
		end += strspn(end, "\r\n");
	}
	pthread_mutex_unlock(&secret_lock);
}

/* s with every registered secret replaced; the result is the caller's. */
static char *
redact(const char *s)
{
	struct buf b = BUF_INIT;
	size_t i;

	pthread_mutex_lock(&secret_lock);
	while (*s != '\0') {
		for (i = 0; i < nsecrets; i++) {
			if (*s == secrets[i][0] &&
			    strncmp(s, secrets[i], secret_lens[i]) == 0)
				break;
		}
		if (i < nsecrets) {
			buf_adds(&b, "[redacted]");
			s += secret_lens[i];
		} else {
			buf_addch(&b, *s++);
		}
	}
	pthread_mutex_unlock(&secret_lock);
	return buf_detach(&b, NULL);
}

/*
 * Append a piece of text for a terminal or a CI log: secrets redacted,
 * control characters and invalid UTF-8 shown as \xNN.
 */
static void
add_clean(struct buf *b, const char *s)
{
	char *red = redact(s != NULL ? s : "");
	char *safe = term_sanitize(red);

	buf_adds(b, safe);
	free(safe);
	free(red);
}

/* add_clean into a fresh string, the caller's. */
static char *
clean(const char *s)
{
	struct buf b = BUF_INIT;

	add_clean(&b, s);
	return buf_detach(&b, NULL);
}

/*
 * The blanks .NET's TrimStart() skips besides ASCII ones, at s (UTF-8):
 * their length, or 0.
 */
static size_t
unicode_blank(const unsigned char *s)
{
	if (s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0))
		return 2;
	if (s[0] == 0xe1 && s[1] == 0x9a && s[2] == 0x80)
		return 3; /* U+1680 */
	if (s[0] == 0xe2 && s[1] == 0x80 &&
	    ((s[2] >= 0x80 && s[2] <= 0x8a) || s[2] == 0xa8 || s[2] == 0xa9 ||
	     s[2] == 0xaf))
		return 3; /* U+2000..200A, U+2028, U+2029, U+202F */
	if (s[0] == 0xe2 && s[1] == 0x81 && s[2] == 0x9f)
		return 3; /* U+205F */
	if (s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80)
		return 3; /* U+3000 */
	return 0;
}

/*
 * Write one line and a newline to f so that the GitHub Actions runner
 * sees no workflow command in it: a leading "::" (after any blanks, and
 * also with characters a culture-aware match would ignore between the
 * colons) gets its first ':' as \x3a, and "##[" anywhere (non-ASCII
 * characters between the three ignored) gets its '[' as \x5b. Lock held.
 */
static void
put_line(FILE *f, const char *line)
{
	const unsigned char *rest = (const unsigned char *)line, *p, *q;
	struct buf b = BUF_INIT;
	size_t n;
	int hashes = 0;

	/* The runner trims blanks, ASCII or not, before looking for "::". */
	for (p = rest;; p += n) {
		n = *p == ' ' || *p == '\t' ? 1 : unicode_blank(p);
		if (n == 0)
			break;
	}
	if (*p == ':') {
		for (q = p + 1; *q >= 0x80; q++)
			;
		if (*q == ':') {
			buf_add(&b, rest, (size_t)(p - rest));
			buf_adds(&b, "\\x3a");
			rest = p + 1;
		}
	}
	for (p = rest; *p != '\0'; p++) {
		if (*p == '[' && hashes >= 2) {
			buf_adds(&b, "\\x5b");
			hashes = 0;
			continue;
		}
		if (*p == '#')
			hashes++;
		else if (*p < 0x80)
			hashes = 0;
		buf_addch(&b, (char)*p);
	}
	fputs(buf_str(&b), f);
	fputc('\n', f);
	buf_release(&b);
}

long long
out_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
iso_time(char *dst, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char base[24];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(dst, len, "%.19s.%03dZ", base, (int)(ts.tv_nsec / 1000000));
}

/*
 * Write a line of human text to stderr, clearing a progress bar first.
 * Its pieces are clean already. Lock held.
 */
static void
err_line(const char *line)
{
	if (progress_shown) {
		fputs("\r\033[K", stderr);
		progress_shown = 0;
	}
	live_erase();
	put_line(stderr, line);
	live_draw();
	fflush(stderr);
}

/* Lock held. */
static void
live_erase(void)
{
	if (live_shown == 0)
		return;
	fprintf(stderr, "\033[%zuA\r\033[J", live_shown);
	live_shown = 0;
}

/* "12 s", "3m05s" since ms; "" in the first second. */
static void
live_elapsed(char *dst, size_t len, long long since_ms)
{
	long long s = (out_now_ms() - since_ms) / 1000;

	if (s < 1)
		dst[0] = '\0';
	else if (s < 60)
		snprintf(dst, len, "%lld s", s);
	else
		snprintf(dst, len, "%lldm%02llds", s / 60, s % 60);
}

/* One host's line: its stage and how it goes. Lock held. */
static void
live_line(struct buf *line, const struct live_host *h)
{
	char el[32];

	if (live_n == 1) {
		/* "  install   web1 …  12 s", or the upload's bar. */
		live_elapsed(el, sizeof(el), h->since_ms);
		buf_addf(line, "  %-9s %s %s", h->stage, h->name,
			 h->text[0] ? h->text : "…");
		if (!h->text[0] && el[0])
			buf_addf(line, "  %s%s%s", color(COLOR_DIM), el,
				 color(COLOR_RESET));
		return;
	}
	buf_addf(line, "  %s%-16s%s ", color(COLOR_DIM), h->name,
		 color(COLOR_RESET));
	switch (h->state) {
	case LIVE_WAITING:
		buf_adds(line, "waiting");
		break;
	case LIVE_RUNNING:
		live_elapsed(el, sizeof(el), h->since_ms);
		buf_addf(line, "%-9s %s", h->stage,
			 h->text[0] ? h->text : "running");
		if (!h->text[0] && el[0])
			buf_addf(line, " %s", el);
		break;
	case LIVE_DONE:
		buf_addf(line, "%-9s done", h->stage);
		break;
	case LIVE_FAILED:
		buf_addf(line, "%-9s FAILED", h->stage);
		break;
	}
}

/* Lock held. */
static void
live_draw(void)
{
	struct buf line = BUF_INIT;
	size_t i;

	if (live_n == 0)
		return;
	live_erase();
	for (i = 0; i < live_n; i++) {
		/* One host: a line only while a stage runs. */
		if (live_n == 1 && live[i].state != LIVE_RUNNING)
			continue;
		buf_reset(&line);
		live_line(&line, &live[i]);
		put_line(stderr, buf_str(&line));
		live_shown++;
	}
	buf_release(&line);
	live_drawn_ms = out_now_ms();
	fflush(stderr);
}

static int
live_running(void)
{
	size_t i;

	for (i = 0; i < live_n; i++) {
		if (live[i].state == LIVE_RUNNING && live[i].text[0] == '\0')
			return 1;
	}
	return 0;
}

/* The ticker: moves the elapsed times while nothing else is written. */
static void *
live_tick(void *arg)
{
	struct timespec ts;

	(void)arg;
	pthread_mutex_lock(&out_lock);
	while (live_ticking) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 250 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&live_cond, &out_lock, &ts);
		if (live_ticking && live_running() &&
		    out_now_ms() - live_drawn_ms >= LIVE_TICK_MS)
			live_draw();
	}
	pthread_mutex_unlock(&out_lock);
	return NULL;
}

void
out_live_begin(size_t n, const char *const *names)
{
	pthread_condattr_t ca;
	sigset_t all, old;
	size_t i;

	if (!out_cfg.tty || out_cfg.json || out_cfg.quiet || n < 1 ||
	    n > LIVE_HOSTS_MAX)
		return;
	pthread_mutex_lock(&out_lock);
	if (live_n != 0) {
		pthread_mutex_unlock(&out_lock);
		return;
	}
	live = xcalloc(n, sizeof(*live));
	for (i = 0; i < n; i++) {
		char *name = clean(names[i]);

		snprintf(live[i].name, sizeof(live[i].name), "%s", name);
		free(name);
	}
	live_n = n;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&live_cond, &ca);
	pthread_condattr_destroy(&ca);
	/* Signals stay with the threads that look at `interrupted`. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	live_ticking = pthread_create(&live_ticker, NULL, live_tick, NULL) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_unlock(&out_lock);
}

void
out_live_stage(size_t i, const char *stage)
{
	char *safe;

	if (live_n == 0 || i >= live_n)
		return;
	safe = clean(stage);
	pthread_mutex_lock(&out_lock);
	if (i < live_n) {
		snprintf(live[i].stage, sizeof(live[i].stage), "%s", safe);
		live[i].text[0] = '\0';
		live[i].state = LIVE_RUNNING;
		live[i].since_ms = out_now_ms();
		if (live_n == 1 || live[i].since_ms - live_drawn_ms >= 100)
			live_draw();
	}
	pthread_mutex_unlock(&out_lock);
	free(safe);
}

void
out_live_done(size_t i, int ok)
{
	pthread_mutex_lock(&out_lock);
	if (i < live_n) {
		live[i].state = ok ? LIVE_DONE : LIVE_FAILED;
		live[i].text[0] = '\0';
		if (live_n == 1 || out_now_ms() - live_drawn_ms >= 100)
			live_draw();
	}
	pthread_mutex_unlock(&out_lock);
}

void
out_live_set(size_t i, const char *fmt, ...)
{
	va_list ap;
	char *safe;
	char text[LIVE_TEXT];

	if (live_n == 0 || i >= live_n)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	safe = clean(text);
	pthread_mutex_lock(&out_lock);
	if (i < live_n) {
		snprintf(live[i].text, LIVE_TEXT, "%s", safe);
		if (out_now_ms() - live_drawn_ms >= 100)
			live_draw();
	}
	pthread_mutex_unlock(&out_lock);
	free(safe);
}

void
out_live_end(void)
{
	pthread_mutex_lock(&out_lock);
	if (live_n == 0) {
		pthread_mutex_unlock(&out_lock);
		return;
	}
	live_erase();
	fflush(stderr);
	live_n = 0;
	if (live_ticking) {
		live_ticking = 0;
		pthread_cond_signal(&live_cond);
		pthread_mutex_unlock(&out_lock);
		pthread_join(live_ticker, NULL);
		pthread_mutex_lock(&out_lock);
	}
	pthread_cond_destroy(&live_cond);
	free(live);
	live = NULL;
	pthread_mutex_unlock(&out_lock);
}

/* "key": "v" with the secrets in v redacted; NULL stays null. */
static void
ev_str(struct json_obj *o, const char *key, const char *v)
{
	char *red;

	if (v == NULL) {
		json_obj_null(o, key);
		return;
	}
	red = redact(v);
	json_obj_str(o, key, red);
	free(red);
}

/* An event's object, one line without the newline, appended to b. */
static void
event_json(struct buf *b, const char *event, const char *host,
	   const char *stage, const struct out_field *fields, size_t nfields)
{
	struct json_obj o;
	char t[40];
	size_t i;

	iso_time(t, sizeof(t));
	json_obj_begin(&o, b);
	json_obj_str(&o, "time", t);
	ev_str(&o, "event", event);
	if (host != NULL && host[0] != '\0')
		ev_str(&o, "host", host);
	if (stage != NULL)
		ev_str(&o, "stage", stage);
	for (i = 0; i < nfields; i++) {
		const struct out_field *f = &fields[i];

		switch (f->type) {
		case OUT_STR:
			ev_str(&o, f->key, f->s);
			break;
		case OUT_INT:
			json_obj_int(&o, f->key, f->i);
			break;
		case OUT_BOOL:
			json_obj_bool(&o, f->key, (int)f->i);
			break;
		case OUT_DOUBLE:
			json_obj_double(&o, f->key, f->d);
			break;
		}
	}
	json_obj_end(&o);
}

/* An event line on stdout; b is released. */
static void
event_emit(struct buf *b)
{
	buf_addch(b, '\n');
	pthread_mutex_lock(&out_lock);
	fputs(buf_str(b), stdout);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
	buf_release(b);
}

void
out_event(const char *event, const char *host, const char *stage,
	  const struct out_field *fields, size_t nfields)
{
	struct buf b = BUF_INIT;

	if (!out_cfg.json)
		return;
	event_json(&b, event, host, stage, fields, nfields);
	event_emit(&b);
}

static void
text_v(int force, const char *fmt, va_list ap)
{
	struct buf b = BUF_INIT;

	char *safe;

	if (out_cfg.quiet && !force)
		return;
	buf_vaddf(&b, fmt, ap);
	safe = clean(buf_str(&b));
	pthread_mutex_lock(&out_lock);
	err_line(safe);
	pthread_mutex_unlock(&out_lock);
	free(safe);
	buf_release(&b);
}

void
out_text(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	text_v(0, fmt, ap);
	va_end(ap);
}

void
out_primary(const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	const char *line, *nl;
	char *piece, *safe;

	/* Under --json stdout carries events only. */
	if (out_cfg.json)
		return;
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&out_lock);
	/* stdout may share the terminal with the live block. */
	live_erase();
	fflush(stderr);
	for (line = buf_str(&b);; line = nl + 1) {
		nl = strchr(line, '\n');
		piece = xstrndup(line, nl != NULL ? (size_t)(nl - line)
						  : strlen(line));
		safe = clean(piece);
		put_line(stdout, safe);
		free(safe);
		free(piece);
		if (nl == NULL)
			break;
	}
	/* In order with stderr, even when both go to one pipe. */
	fflush(stdout);
	live_draw();
	pthread_mutex_unlock(&out_lock);
	buf_release(&b);
}

/* Workflow commands escape %, CR and LF in data; also , and : in props. */
static void
gh_escape(struct buf *b, const char *s, int prop)
{
	for (; *s != '\0'; s++) {
		if (*s == '%')
			buf_adds(b, "%25");
		else if (*s == '\r')
			buf_adds(b, "%0D");
		else if (*s == '\n')
			buf_adds(b, "%0A");
		else if (prop && *s == ':')
			buf_adds(b, "%3A");
		else if (prop && *s == ',')
			buf_adds(b, "%2C");
		else
			buf_addch(b, *s);
	}
}

/*
 * A workflow command line: ::cmd title=relflip STAGE on HOST::msg, with
 * "hint: ..." on a second line of the annotation when hint is not empty.
 * Lock held.
 */
static void
gh_command(const char *cmd, const char *stage, const char *host,
	   const char *msg, const char *hint)
{
	struct buf b = BUF_INIT, title = BUF_INIT, data = BUF_INIT;
	FILE *f = out_cfg.json ? stderr : stdout;

	buf_adds(&title, "relflip ");
	add_clean(&title, stage ? stage : cmd);
	if (host != NULL && host[0] != '\0') {
		buf_adds(&title, " on ");
		add_clean(&title, host);
	}
	add_clean(&data, msg);
	if (hint != NULL && hint[0] != '\0') {
		buf_adds(&data, "\nhint: ");
		add_clean(&data, hint);
	}
	buf_addf(&b, "::%s title=", cmd);
	gh_escape(&b, buf_str(&title), 1);
	buf_adds(&b, "::");
	gh_escape(&b, buf_str(&data), 0);
	fprintf(f, "%s\n", buf_str(&b));
	fflush(f);
	buf_release(&b);
	buf_release(&title);
	buf_release(&data);
}

/* "::group::relflip TITLE" (GitHub Actions). Lock held. */
static void
group_begin(const char *title)
{
	FILE *f = out_cfg.json ? stderr : stdout;
	struct buf b = BUF_INIT;

	gh_escape(&b, title, 0);
	fflush(stderr);
	fprintf(f, "::group::relflip %s\n", buf_str(&b));
	fflush(f);
	buf_release(&b);
	group_open = 1;
}

/* Close the group a stage's output opened, if any. Lock held. */
static void
group_end(void)
{
	FILE *f = out_cfg.json ? stderr : stdout;

	if (!group_open)
		return;
	fflush(stderr);
	fprintf(f, "::endgroup::\n");
	fflush(f);
	group_open = 0;
}

void
out_stage_running(const char *stage, const char *names)
{
	char *s = clean(stage), *n = clean(names);

	pthread_mutex_lock(&out_lock);
	group_end();
	snprintf(head_stage, sizeof(head_stage), "%s", s);
	snprintf(head_names, sizeof(head_names), "%s", n);
	head_shown = 0;
	pthread_mutex_unlock(&out_lock);
	free(s);
	free(n);
}

/*
 * Before a stage's first line of output: its heading, or under GitHub
 * Actions the group that folds its output. Lock held.
 */
static void
heading(const char *stage, const char *host)
{
	struct buf b = BUF_INIT;

	if (head_shown)
		return;
	if (head_stage[0] == '\0') {
		snprintf(head_stage, sizeof(head_stage), "%s", stage);
		snprintf(head_names, sizeof(head_names), "%s", host);
	}
	head_shown = 1;
	if (out_cfg.github) {
		buf_addf(&b, "%s %s (output)", head_stage, head_names);
		group_begin(buf_str(&b));
	} else {
		buf_addf(&b, "  %-9s %s …", head_stage, head_names);
		err_line(buf_str(&b));
	}
	buf_release(&b);
}

/* A stage's line ends its output: the group closes, the heading resets. */
static void
heading_end(void)
{
	group_end();
	head_stage[0] = '\0';
	head_names[0] = '\0';
	head_shown = 0;
}

void
out_step_summary(const char *markdown)
{
	const char *path = getenv("GITHUB_STEP_SUMMARY");
	char *red;
	FILE *f;

	if (path == NULL || *path == '\0')
		return;
	f = fopen(path, "a");
	if (f == NULL) {
		out_warning(NULL, NULL, "cannot append to GITHUB_STEP_SUMMARY "
			    "%s: %m", path);
		return;
	}
	red = redact(markdown);
	fputs(red, f);
	free(red);
	if (fclose(f) != 0)
		out_warning(NULL, NULL, "cannot write GITHUB_STEP_SUMMARY %s",
			    path);
}

static const char *
color(const char *c)
{
	return out_cfg.color ? c : "";
}

void
out_warning(const char *host, const char *stage, const char *fmt, ...)
{
	struct buf msg = BUF_INIT, line = BUF_INIT;
	struct out_field f[1];
	va_list ap;

	va_start(ap, fmt);
	buf_vaddf(&msg, fmt, ap);
	va_end(ap);
	f[0] = (struct out_field)OF_STR("message", buf_str(&msg));
	out_event("warning", host, stage, f, 1);
	if (!out_cfg.quiet) {
		buf_addf(&line, "relflip: %swarning:%s ", color(COLOR_YELLOW),
			 color(COLOR_RESET));
		if (host != NULL && host[0] != '\0') {
			add_clean(&line, host);
			buf_adds(&line, ": ");
		}
		add_clean(&line, buf_str(&msg));
		pthread_mutex_lock(&out_lock);
		err_line(buf_str(&line));
		if (out_cfg.github)
			gh_command("warning", stage, NULL, buf_str(&msg), NULL);
		pthread_mutex_unlock(&out_lock);
	}
	buf_release(&msg);
	buf_release(&line);
}

/* Whether c can be part of a host name or of a path around one. */
static int
in_name(int c)
{
	return c != '\0' && (isalnum(c) || strchr("._-/", c) != NULL);
}

/*
 * Whether msg already names host: as a word of its own, not as part of a
 * path or of a longer name ("h1" is not named by ".../relflip-e2e.LGh1Jw/"
 * nor by "/srv/h1/app"), so that the prefix is dropped only where it would
 * repeat what the line says.
 */
static int
names_host(const char *msg, const char *host)
{
	size_t n = strlen(host);
	const char *p;

	for (p = strstr(msg, host); p != NULL; p = strstr(p + 1, host)) {
		int before = p == msg ? ' ' : (unsigned char)p[-1];
		int after = (unsigned char)p[n];

		/* A full stop ends a sentence, not a name, when a blank
		 * or the end follows it. */
		if (after == '.' && !in_name((unsigned char)p[n + 1]))
			after = ' ';
		if (!in_name(before) && !in_name(after))
			return 1;
	}
	return 0;
}

void
out_error(const struct rf_error *err)
{
	struct buf line = BUF_INIT;
	struct out_field f[3];
	size_t n = 0;

	if (out_cfg.github) {
		pthread_mutex_lock(&out_lock);
		gh_command("error", err->stage, err->host, err->msg, err->hint);
		pthread_mutex_unlock(&out_lock);
	}

	f[n++] = (struct out_field)OF_INT("code", err->code);
	f[n++] = (struct out_field)OF_STR("message", err->msg);
	if (err->hint[0] != '\0')
		f[n++] = (struct out_field)OF_STR("hint", err->hint);
	out_event("error", err->host, err->stage, f, n);

	buf_addf(&line, "relflip: %serror:%s ", color(COLOR_RED),
		 color(COLOR_RESET));
	if (err->host[0] != '\0' && !names_host(err->msg, err->host)) {
		add_clean(&line, err->host);
		buf_adds(&line, ": ");
	}
	add_clean(&line, err->msg);
	if (err->code > RF_EXIT_USAGE)
		buf_addf(&line, " (exit %d)", (int)err->code);
	pthread_mutex_lock(&out_lock);
	err_line(buf_str(&line));
	if (err->hint[0] != '\0') {
		buf_reset(&line);
		buf_adds(&line, "hint: ");
		add_clean(&line, err->hint);
		err_line(buf_str(&line));
	}
	pthread_mutex_unlock(&out_lock);
	buf_release(&line);
}

/*
 * Debug lines: a script of several lines is shown as several, each
 * "debug: " first, so that it reads as the server will run it.
 */
void
out_debug_at(const char *func, const char *fmt, ...)
{
	struct buf b = BUF_INIT, line = BUF_INIT;
	const char *p, *nl;
	char *piece;
	va_list ap;

	if (!out_cfg.verbose)
		return;
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	while (b.len > 0 && b.buf[b.len - 1] == '\n')
		b.buf[--b.len] = '\0';
	pthread_mutex_lock(&out_lock);
	for (p = buf_str(&b);; p = nl + 1) {
		nl = strchr(p, '\n');
		buf_reset(&line);
		if (p == buf_str(&b))
			buf_addf(&line, "debug: %s: ", func);
		else
			buf_adds(&line, "debug:   | ");
		piece = xstrndup(p, nl != NULL ? (size_t)(nl - p) : strlen(p));
		add_clean(&line, piece);
		free(piece);
		err_line(buf_str(&line));
		if (nl == NULL)
			break;
	}
	pthread_mutex_unlock(&out_lock);
	buf_release(&b);
	buf_release(&line);
}

void
out_stage_begin(const char *host, const char *stage)
{
	struct out_field f[1] = { OF_STR("phase", "begin") };

	out_event("stage", host, stage, f, 1);
}

void
out_stage_end(const char *host, const char *stage, long duration_ms, int ok,
	      const char *detail)
{
	struct out_field f[4] = {
		OF_STR("phase", "end"),
		OF_INT("duration_ms", duration_ms),
		OF_BOOL("ok", ok),
		OF_STR("detail", detail ? detail : ""),
	};
	struct buf line = BUF_INIT;
	char dur[32];
	char *safe_stage, *safe;

	out_event("stage", host, stage, f, 4);
	if (out_cfg.quiet || out_cfg.table_only) {
		pthread_mutex_lock(&out_lock);
		heading_end();
		pthread_mutex_unlock(&out_lock);
		return;
	}
	out_format_duration(dur, sizeof(dur), duration_ms);
	safe_stage = clean(stage);
	safe = clean(detail);
	buf_addf(&line, "  %s%-9s%s %-56s %s%8s%s", ok ? "" : color(COLOR_RED),
		 safe_stage, ok ? "" : color(COLOR_RESET), safe,
		 color(COLOR_DIM), dur, color(COLOR_RESET));
	pthread_mutex_lock(&out_lock);
	heading_end();
	err_line(buf_str(&line));
	pthread_mutex_unlock(&out_lock);
	free(safe_stage);
	free(safe);
	buf_release(&line);
}

/* "[=====>    ]  45% 1.2 MB/3.4 MB 1.1 MB/s ETA 2s" */
static void
progress_bar(struct buf *b, uint64_t done, uint64_t total, long long ms)
{
	char sd[32], st[32], rate[32];
	double secs = (double)ms / 1000.0;
	double bps = secs > 0 ? (double)done / secs : 0;
	int pct = total ? (int)(done * 100 / total) : 100;
	int width = 30, fill = pct * width / 100, i;
	long eta = bps > 0 ? (long)((double)(total - done) / bps) : 0;

	out_format_bytes(sd, sizeof(sd), done);
	out_format_bytes(st, sizeof(st), total);
	out_format_bytes(rate, sizeof(rate), (uint64_t)bps);
	buf_addch(b, '[');
	for (i = 0; i < width; i++)
		buf_addch(b, i < fill ? '=' : (i == fill ? '>' : ' '));
	buf_addf(b, "] %3d%% %s/%s %s/s ETA %lds", pct, sd, st, rate, eta);
}

void
out_progress(const char *label, uint64_t done, uint64_t total)
{
	static long long last_draw_ms, started_ms;
	long long now = out_now_ms();
	int finished = done >= total;
	struct buf bar = BUF_INIT;
	char *safe;

	/* A fleet's block shows each host's percentage instead. */
	if (out_cfg.json || !out_cfg.tty || out_cfg.quiet || live_n > 1)
		return;
	safe = clean(label);
	pthread_mutex_lock(&out_lock);
	if (started_ms == 0 || done == 0)
		started_ms = now;
	if (!finished && now - last_draw_ms < 100)
		goto out;
	last_draw_ms = now;
	if (!finished)
		progress_bar(&bar, done, total, now - started_ms);
	else
		started_ms = 0;
	if (live_n == 1) {
		/* One host: the bar is its live line. */
		snprintf(live[0].text, LIVE_TEXT, "%s", buf_str(&bar));
		live_draw();
		goto out;
	}
	if (progress_shown)
		fputs("\r\033[K", stderr);
	progress_shown = !finished;
	if (!finished)
		fprintf(stderr, "  upload    %s %s", safe, buf_str(&bar));
	fflush(stderr);
out:
	pthread_mutex_unlock(&out_lock);
	buf_release(&bar);
	free(safe);
}

void
out_output(const char *host, const char *stage, int is_stderr,
	   const char *line)
{
	struct out_field f[2] = {
		OF_STR("line", line),
		OF_STR("stream", is_stderr ? "stderr" : "stdout"),
	};
	struct buf b = BUF_INIT;
	char *safe_stage, *safe_host;

	out_event("output", host, stage, f, 2);
	if (out_cfg.quiet)
		return;
	buf_adds(&b, "    ");
	buf_adds(&b, color(COLOR_DIM));
	add_clean(&b, host);
	buf_addf(&b, " |%s ", color(COLOR_RESET));
	add_clean(&b, line);
	safe_stage = clean(stage);
	safe_host = clean(host);
	pthread_mutex_lock(&out_lock);
	heading(safe_stage, safe_host);
	err_line(buf_str(&b));
	pthread_mutex_unlock(&out_lock);
	free(safe_stage);
	free(safe_host);
	buf_release(&b);
}

void
out_result_json(struct buf *b, const char *status, int exit_code,
		const char *revision, const char *previous, long duration_ms)
{
	struct out_field f[5] = {
		OF_STR("status", status),
		OF_INT("exit_code", exit_code),
		OF_STR("revision", revision),
		OF_STR("previous", previous),
		OF_INT("duration_ms", duration_ms),
	};

	event_json(b, "result", NULL, NULL, f, 5);
}

void
out_result(const char *status, int exit_code, const char *revision,
	   const char *previous, long duration_ms)
{
	struct buf b = BUF_INIT;

	if (!out_cfg.json)
		return;
	out_result_json(&b, status, exit_code, revision, previous, duration_ms);
	event_emit(&b);
}

char *
out_redact(const char *s)
{
	return redact(s != NULL ? s : "");
}

void
out_format_duration(char *dst, size_t len, long ms)
{
	if (ms < 1000)
		snprintf(dst, len, "%ld ms", ms);
	else if (ms < 60000)
		snprintf(dst, len, "%.1f s", (double)ms / 1000.0);
	else
		snprintf(dst, len, "%ldm%02lds", ms / 60000, (ms / 1000) % 60);
}

void
out_format_bytes(char *dst, size_t len, uint64_t bytes)
{
	static const char *units[] = { "B", "KB", "MB", "GB", "TB" };
	double v = (double)bytes;
	size_t u = 0;

	while (v >= 1000.0 && u < 4) {
		v /= 1000.0;
		u++;
	}
	if (u == 0)
		snprintf(dst, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(dst, len, "%.1f %s", v, units[u]);
}

void
out_format_rate(char *dst, size_t len, uint64_t bytes, long ms)
{
	char b[32];

	/* A few KB in a few ms measure the clock, not the link. */
	if (ms < RATE_MIN_MS || bytes < RATE_MIN_BYTES) {
		if (len > 0)
			dst[0] = '\0';
		return;
	}
	out_format_bytes(b, sizeof(b),
			 (uint64_t)((double)bytes * 1000.0 / (double)ms));
	snprintf(dst, len, "%s/s", b);
}

int
out_finish(void)
{
	if (fflush(stdout) != 0 || ferror(stdout))
		return -1;
	return 0;
}
