/*
 * conf.c: the config model. A table of keys drives reading, validation
 * and the messages; conf-ini.c reads the INI text and hands us each
 * section header and each key, with its line.
 *
 * Order, as OpenSSH does it: every field starts unset, each value is
 * expanded (${VAR}) and checked as it is read, then the checks that need
 * the whole file run (required keys, identity vs identity_env), then each
 * key left unset gets the default of its row in the key table, read like
 * a value from the file, then the hosts are completed (port, user,
 * primary). The table is the one place defaults live, so the docs can
 * come from it.
 *
 * Messages read "FILE:LINE: [section] key: what is wrong (what is
 * valid)". A value is quoted as written in the file, before ${VAR}
 * expansion, so a secret that arrived through the environment never
 * lands in a message.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "conf-ini.h"
#include "error.h"
#include "out.h"
#include "ssh-config.h"
#include "xmalloc.h"


#define CONF_MAX_SIZE (1024 * 1024) /* a config file, in bytes */
#define NAME_MAX_LEN 63             /* [host "NAME"], [service "NAME"] */
#define ROLE_MAX_LEN 32
#define DURATION_MAX (7 * 24 * 3600.0) /* seconds: keeps ms in an int */
#define INCLUDE_DEPTH 8 /* files being read at once, the top one included */

enum conf_section {
	SEC_APP,
	SEC_DEPLOY,
	SEC_SSH,
	SEC_HOST,
	SEC_HOOKS,
	SEC_SERVICE,
	SEC_HEALTH,
	SEC_ARTIFACT,
	SEC_NOTIFY,
	SEC_COUNT,
};

/* In enum order. [host "NAME"] and [service "NAME"] are named sections. */
static const char *const section_names[SEC_COUNT] = {
	"app",     "deploy", "ssh",      "host",   "hooks",
	"service", "health", "artifact", "notify",
};

static int
section_named(int id)
{
	return id == SEC_HOST || id == SEC_SERVICE;
}

/*
 * Sections whose values from ${VAR} are registered as secrets: keys, and
 * URLs that may carry a token (a download link, a webhook).
 */
static int
secret_section(enum conf_section id)
{
	return id == SEC_SSH || id == SEC_ARTIFACT || id == SEC_NOTIFY;
}

enum conf_type {
	T_PATH,         /* absolute, no trailing slash, not "/" */
	T_GLOBS,        /* words */
	T_RELPATHS,     /* words, each a path inside the release */
	T_ROLES,        /* words, each a role name */
	T_INT,          /* min..max */
	T_BATCH,        /* N or N% */
	T_DURATION,     /* seconds, >= 0 */
	T_DURATION_POS, /* seconds, > 0 */
	T_BOOL,
	T_USER,        /* a login name */
	T_ADDRESS,     /* a host name or IP address */
	T_KEYFILE,     /* a file, "~/" expanded; empty: unset */
	T_FILE,        /* a file, "~/" expanded */
	T_VARNAME,     /* an environment variable's name; empty: unset */
	T_COMMAND,     /* a shell command; empty: unset */
	T_RESTART,     /* a shell command, required */
	T_URL,         /* http:// or https://; empty: unset */
	T_URL_RELEASE, /* T_URL where ${RELFLIP_RELEASE} is kept as written */
	T_NOTIFY_ON,   /* enum conf_notify_on, by name */
	T_SSHCONFIG,   /* "none", or a file as T_FILE */
	T_JUMPS,       /* "none", or [user@]host[:port][,...] */
};

/* One key of the file; offset is into struct conf, conf_host or conf_service.
 */
struct conf_key {
	enum conf_section section;
	const char *name;
	enum conf_type type;
	size_t offset;
	long min, max;     /* T_INT */
	const char *noun;  /* T_INT: "is not a port"; NULL: the parser's word */
	const char *valid; /* what is valid, for messages */
	/*
	 * The default, written as it would be in the file and read the same
	 * way (${VAR} expanded, checked, converted) when the key is not set;
	 * NULL: none, the field stays NULL or empty.
	 */
	const char *def;
};

#define C(f) offsetof(struct conf, f)
#define H(f) offsetof(struct conf_host, f)
#define S(f) offsetof(struct conf_service, f)
#define VALID_DURATION                                                         \
	"seconds, e.g. 30 or 0.2, or with a unit: 200ms, 30s, 5m, 1h"
#define VALID_ROLES                                                            \
	"words of a-z 0-9 _ -, each up to 32 long and starting with a letter " \
	"or digit, e.g. web worker primary"
#define VALID_NAME "1-63 characters of A-Z a-z 0-9 . _ -"
#define VALID_BOOL "yes or no; true/false, on/off and 1/0 work too"
#define VALID_JUMPS                                                            \
	"jump hosts [user@]host[:port], several separated by commas, e.g. "    \
	"deploy@bastion.example.com:2222, or none"

static const struct conf_key keys[] = {
	/* section, name, type, offset, min, max, noun, valid, default */
	{ SEC_APP, "path", T_PATH, C(app_path), 0, 0, NULL,
	  "the app's directory on the servers, e.g. /var/www/app", NULL },
	{ SEC_APP, "allowed_refs", T_GLOBS, C(allowed_refs), 0, 0, NULL,
	  "glob patterns separated by spaces, e.g. refs/heads/main "
	  "refs/tags/v*",
	  NULL },
	{ SEC_APP, "shared_dirs", T_RELPATHS, C(shared_dirs), 0, 0, NULL,
	  "relative paths separated by spaces, without .., e.g. uploads "
	  "storage/logs",
	  NULL },
	{ SEC_APP, "shared_files", T_RELPATHS, C(shared_files), 0, 0, NULL,
	  "relative paths separated by spaces, without .., e.g. .env "
	  "config/secrets.yml",
	  NULL },

	{ SEC_DEPLOY, "keep_releases", T_INT, C(keep_releases), 1, 1000, NULL,
	  "1-1000", "5" },
	{ SEC_DEPLOY, "keep_failed", T_INT, C(keep_failed), 0, 1000, NULL,
	  "0-1000", "1" },
	{ SEC_DEPLOY, "batch", T_BATCH, C(batch), 1, 100000, NULL,
	  "a number of hosts, 1 or more, or a percentage of them, 1%-100%",
	  "all" },
	{ SEC_DEPLOY, "max_parallel", T_INT, C(max_parallel), 1, 1024, NULL,
	  "1-1024", "16" },
	{ SEC_DEPLOY, "hook_timeout", T_DURATION_POS, C(hook_timeout), 0, 0,
	  NULL, VALID_DURATION, "600" },
	{ SEC_DEPLOY, "lock_ttl", T_DURATION_POS, C(lock_ttl), 0, 0, NULL,
	  VALID_DURATION, "1800" },
	{ SEC_DEPLOY, "lock_wait", T_DURATION, C(lock_wait), 0, 0, NULL,
	  VALID_DURATION, "0" },

	{ SEC_SSH, "user", T_USER, C(ssh_user), 0, 0, NULL,
	  "the login user on the servers, e.g. deploy", "${USER:-root}" },
	{ SEC_SSH, "port", T_INT, C(ssh_port), 1, 65535, "is not a port",
	  "1-65535", "22" },
	{ SEC_SSH, "identity", T_KEYFILE, C(identity), 0, 0, NULL,
	  "a private key file, e.g. ~/.ssh/id_ed25519", NULL },
	{ SEC_SSH, "identity_env", T_VARNAME, C(identity_env), 0, 0, NULL,
	  "the name of the variable holding the key text, e.g. "
	  "SSH_PRIVATE_KEY, without ${}",
	  NULL },
	{ SEC_SSH, "known_hosts", T_FILE, C(known_hosts), 0, 0, NULL,
	  "a known_hosts file, e.g. ~/.ssh/known_hosts", "~/.ssh/known_hosts" },
	{ SEC_SSH, "connect_timeout", T_DURATION_POS, C(connect_timeout), 0, 0,
	  NULL, VALID_DURATION, "10" },
	{ SEC_SSH, "config", T_SSHCONFIG, C(ssh_config), 0, 0, NULL,
	  "an OpenSSH client config file, e.g. ~/.ssh/config, or none", NULL },
	{ SEC_SSH, "proxy_jump", T_JUMPS, C(proxy_jump), 0, 0, NULL,
	  VALID_JUMPS, NULL },

	{ SEC_HOST, "address", T_ADDRESS, H(address), 0, 0, NULL,
	  "the server to connect to, e.g. 203.0.113.10 or web1.example.com",
	  NULL },
	{ SEC_HOST, "port", T_INT, H(port), 1, 65535, "is not a port",
	  "1-65535", NULL },
	{ SEC_HOST, "roles", T_ROLES, H(roles), 0, 0, NULL, VALID_ROLES, NULL },
	{ SEC_HOST, "proxy_jump", T_JUMPS, H(proxy_jump), 0, 0, NULL,
	  VALID_JUMPS, NULL },

	{ SEC_HOOKS, "install", T_COMMAND, C(hook_install), 0, 0, NULL,
	  "a shell command, run in the new release on every host", NULL },
	{ SEC_HOOKS, "migrate", T_COMMAND, C(hook_migrate), 0, 0, NULL,
	  "a shell command, run once, on the primary host", NULL },
	{ SEC_HOOKS, "before_switch", T_COMMAND, C(hook_before_switch), 0, 0,
	  NULL,
	  "a shell command, run on each host in the new release just before "
	  "current moves to it",
	  NULL },
	{ SEC_HOOKS, "after_switch", T_COMMAND, C(hook_after_switch), 0, 0,
	  NULL,
	  "a shell command, run on each host in the new release once current "
	  "points to it",
	  NULL },
	{ SEC_HOOKS, "after_deploy", T_COMMAND, C(hook_after_deploy), 0, 0,
	  NULL,
	  "a shell command, run where relflip runs after a deploy, with the "
	  "result as JSON on stdin",
	  NULL },
	{ SEC_HOOKS, "on_failure", T_COMMAND, C(hook_on_failure), 0, 0, NULL,
	  "a shell command, run where relflip runs when a deploy or rollback "
	  "fails, with the result as JSON on stdin",
	  NULL },

	{ SEC_SERVICE, "roles", T_ROLES, S(roles), 0, 0, NULL, VALID_ROLES,
	  NULL },
	{ SEC_SERVICE, "restart", T_RESTART, S(restart), 0, 0, NULL,
	  "a shell command, e.g. sudo systemctl restart app", NULL },

	{ SEC_HEALTH, "url", T_URL, C(health_url), 0, 0, NULL,
	  "fetched on each server, e.g. http://127.0.0.1:8000/health", NULL },
	{ SEC_HEALTH, "public_url", T_URL, C(public_url), 0, 0, NULL,
	  "fetched from where relflip runs, e.g. https://example.com/health",
	  NULL },
	{ SEC_HEALTH, "expect_status", T_INT, C(expect_status), 100, 599,
	  "is not an HTTP status", "100-599", "200" },
	{ SEC_HEALTH, "expect_revision", T_BOOL, C(expect_revision), 0, 0, NULL,
	  VALID_BOOL, "no" },
	{ SEC_HEALTH, "timeout", T_DURATION_POS, C(health_timeout), 0, 0, NULL,
	  VALID_DURATION, "5" },
	{ SEC_HEALTH, "interval", T_DURATION, C(health_interval), 0, 0, NULL,
	  VALID_DURATION, "1" },
	{ SEC_HEALTH, "retries", T_INT, C(health_retries), 0, 1000, NULL,
	  "0-1000", "10" },
	{ SEC_HEALTH, "deadline", T_DURATION_POS, C(health_deadline), 0, 0,
	  NULL, VALID_DURATION, "60" },

	{ SEC_ARTIFACT, "url", T_URL_RELEASE, C(artifact_url), 0, 0, NULL,
	  "where the servers download the artifact, ${RELFLIP_RELEASE} "
	  "standing for the release id, e.g. "
	  "https://ci.example.com/app-${RELFLIP_RELEASE}.tar.gz",
	  NULL },
	{ SEC_ARTIFACT, "header_env", T_VARNAME, C(artifact_header_env), 0, 0,
	  NULL,
	  "the variable holding an HTTP header for the download, e.g. "
	  "ARTIFACT_AUTH, without ${}",
	  NULL },

	{ SEC_NOTIFY, "url", T_URL, C(notify_url), 0, 0, NULL,
	  "a webhook relflip POSTs the result to, e.g. "
	  "https://hooks.example.com/deploys",
	  NULL },
	{ SEC_NOTIFY, "on", T_NOTIFY_ON, C(notify_on), 0, 0, NULL,
	  "failure: when a deploy or rollback fails; always: after each one",
	  "always" },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* Where a section header or a key was met. */
struct conf_where {
	const char *file; /* one of conf_parse.files; NULL: not met */
	int line;
	unsigned read; /* which reading of a file: 1, 2, ... */
	unsigned seq;  /* when, counting every key set: later is higher */
};

/*
 * A section of the model: [app], [ssh], one [host "NAME"]... A later file
 * (one that includes another) may open it again and override its keys.
 */
struct conf_sect {
	enum conf_section id;
	char label[96]; /* "[app]", "[host \"web1\"]": for messages */
	size_t index;   /* into conf->hosts or conf->services */
	struct conf_where head;       /* its first header */
	struct conf_where last;       /* its latest header */
	struct conf_where key[NKEYS]; /* where each key was last set */
};

#define NO_SECT ((size_t)-1)

struct conf_parse {
	struct conf *conf;
	struct rf_error *err;
	struct conf_sect *sects; /* in the order first met */
	size_t nsects;
	struct strlist files; /* the name of each file read */
	unsigned nreads;
	unsigned nset; /* keys set so far */

	/* The file being read, and the ones including it. */
	const char *file;
	unsigned read;
	size_t cur; /* its current section, or NO_SECT before any */
	int depth;  /* 0: the top file */
	struct {
		const char *name;
		char *real; /* realpath(3), or NULL */
	} stack[INCLUDE_DEPTH];
};

static int conf_err(struct conf_parse *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int conf_err_in(struct conf_parse *p, const struct conf_where *w,
		       const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int
conf_error_at(struct rf_error *err, const char *file, int line,
	      const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (line > 0)
		return rf_error_set(err, RF_EXIT_USAGE, NULL, "%s:%d: %s", file,
				    line, what);
	return rf_error_set(err, RF_EXIT_USAGE, NULL, "%s: %s", file, what);
}

/* "FILE:LINE: what" for the file being read, or "FILE: what" for line 0. */
static int
conf_err(struct conf_parse *p, int line, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return conf_error_at(p->err, p->file, line, "%s", what);
}

/* The same at w; the top file, line 0, when w is NULL or was not met. */
static int
conf_err_in(struct conf_parse *p, const struct conf_where *w, const char *fmt,
	    ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (w == NULL || w->file == NULL)
		return conf_error_at(p->err, p->conf->file, 0, "%s", what);
	return conf_error_at(p->err, w->file, w->line, "%s", what);
}

const char *
conf_echo(char *dst, size_t size, const char *s, const char *end)
{
	size_t n = 0;

	while ((end == NULL ? *s != '\0' : s < end) && n + 4 < size) {
		if (n == CONF_ECHO_MAX) {
			memcpy(dst + n, "...", 3);
			n += 3;
			break;
		}
		dst[n++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
		s++;
	}
	dst[n] = '\0';
	return dst;
}

int
conf_is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\f' || c == '\v' || c == '\r';
}

static int
is_lower_or_digit(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int
is_alnum(char c)
{
	return is_lower_or_digit(c) || (c >= 'A' && c <= 'Z');
}

static int
is_name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

/* strlist */

void
strlist_add(struct strlist *l, const char *s)
{
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = xstrdup(s);
}

int
strlist_has(const struct strlist *l, const char *s)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		if (strcmp(l->v[i], s) == 0)
			return 1;
	}
	return 0;
}

void
strlist_free(struct strlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Value parsers */

int
conf_parse_int(const char *s, long min, long max, long *out, const char **why)
{
	const char *p = s;
	char *end;
	long v;

	if (*p == '-')
		p++;
	if (*p < '0' || *p > '9') {
		*why = "is not a number";
		return -1;
	}
	errno = 0;
	v = strtol(s, &end, 10);
	if (*end != '\0') {
		*why = "is not a number";
		return -1;
	}
	if (errno == ERANGE || v < min || v > max) {
		*why = "is out of range";
		return -1;
	}
	*out = v;
	return 0;
}

/*
 * Seconds with an optional fraction ("0.2"), or a number with a unit:
 * ms, s, m, h. Parsed by hand: strtod would take "inf", hex and the
 * locale's decimal point.
 */
int
conf_parse_duration(const char *s, double *out, const char **why)
{
	static const struct {
		const char *unit;
		double seconds;
	} units[] = {
		{ "", 1 },   { "ms", 0.001 }, { "s", 1 },
		{ "m", 60 }, { "h", 3600 },
	};
	const char *p = s;
	double v = 0, scale = 1;
	int negative = 0, digits = 0;
	size_t i;

	if (*p == '-') {
		negative = 1;
		p++;
	}
	for (; *p >= '0' && *p <= '9'; p++, digits++)
		v = v * 10 + (*p - '0');
	if (*p == '.' && digits > 0 && p[1] >= '0' && p[1] <= '9') {
		for (p++; *p >= '0' && *p <= '9'; p++) {
			scale /= 10;
			v += (*p - '0') * scale;
		}
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].unit) == 0)
			break;
	}
	if (digits == 0 || i == sizeof(units) / sizeof(units[0])) {
		*why = "is not a duration";
		return -1;
	}
	if (negative) {
		*why = "is negative";
		return -1;
	}
	v *= units[i].seconds;
	if (v > DURATION_MAX) {
		*why = "is longer than 7 days";
		return -1;
	}
	*out = v;
	return 0;
}

int
conf_parse_bool(const char *s, int *out, const char **why)
{
	static const char *const yes[] = { "yes", "true", "1", "on" };
	static const char *const no[] = { "no", "false", "0", "off" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	*why = "is not a boolean";
	return -1;
}

/* ${VAR} expansion */

/* Keep the text of a malformed reference, from start to its '}'. */
static int
expand_bad(const char *start, char *bad, size_t size)
{
	const char *close = strchr(start, '}');
	size_t n = close != NULL ? (size_t)(close - start) + 1 : strlen(start);

	if (n > size - 1)
		n = size - 1;
	memcpy(bad, start, n);
	bad[n] = '\0';
	return -2;
}

/* What expand() does besides expanding; NULL: nothing. */
struct expand_opts {
	struct strlist *used; /* gets the value of each variable used */
	const char *keep;     /* a name whose ${keep} is left as written */
};

/* A variable's value into out, and into o->used. */
static void
add_value(struct buf *out, const struct expand_opts *o, const char *val)
{
	buf_adds(out, val);
	if (o != NULL && o->used != NULL && *val != '\0')
		strlist_add(o->used, val);
}

/*
 * Expand *sp into out, up to the end or, in a default, up to its closing
 * '}' (left in *sp). dry: only check the syntax (a default not taken).
 * Returns 0; -1 for an unset variable, its name in bad; -2 for a
 * malformed reference, -3 for a default given to o->keep, its text in
 * bad.
 */
static int
expand_part(const char **sp, struct buf *out, int in_default, int dry,
	    const struct expand_opts *o, char *bad, size_t size)
{
	const char *s = *sp, *start, *name, *val;
	char *var;
	int use_default, r;

	while (*s != '\0' && !(in_default && *s == '}')) {
		if (s[0] != '$' || (s[1] != '$' && s[1] != '{')) {
			if (!dry)
				buf_addch(out, *s);
			s++;
			continue;
		}
		if (s[1] == '$') {
			if (!dry)
				buf_addch(out, '$');
			s += 2;
			continue;
		}
		start = s;
		name = s + 2;
		s = name;
		if (is_name_start(*s)) {
			for (s++; is_alnum(*s) || *s == '_'; s++)
				;
		}
		if (s == name || (*s != '}' && !(s[0] == ':' && s[1] == '-')))
			return expand_bad(start, bad, size);
		if (o != NULL && o->keep != NULL &&
		    strlen(o->keep) == (size_t)(s - name) &&
		    strncmp(o->keep, name, (size_t)(s - name)) == 0) {
			if (*s != '}') {
				expand_bad(start, bad, size);
				return -3;
			}
			s++;
			if (!dry)
				buf_add(out, start, (size_t)(s - start));
			continue;
		}

		var = xstrndup(name, (size_t)(s - name));
		val = getenv(var);
		if (*s == '}') {
			s++;
			if (val == NULL && !dry) {
				snprintf(bad, size, "%s", var);
				free(var);
				return -1;
			}
			if (!dry)
				add_value(out, o, val);
			free(var);
			continue;
		}
		free(var);
		s += 2;
		use_default = val == NULL || *val == '\0';
		r = expand_part(&s, out, 1, dry || !use_default, o, bad, size);
		if (r == -2 || (r == 0 && *s != '}'))
			return expand_bad(start, bad, size);
		if (r != 0)
			return r;
		s++;
		if (!dry && !use_default)
			add_value(out, o, val);
	}
	*sp = s;
	return 0;
}

/* See expand_part(). */
static int
expand(const char *value, char **out, const struct expand_opts *o, char *bad,
       size_t size)
{
	struct buf b = BUF_INIT;
	const char *s = value;
	int r;

	*out = NULL;
	r = expand_part(&s, &b, 0, 0, o, bad, size);
	if (r != 0) {
		buf_release(&b);
		return r;
	}
	*out = buf_detach(&b, NULL);
	return 0;
}

/*
 * *missing gets the unset variable's name, or, for a malformed reference
 * such as "${FOO" or "${1}", that reference's text (it starts with "${").
 */
char *
conf_expand_env(const char *value, const char **missing)
{
	static char bad[128];
	char *out;

	*missing = NULL;
	if (expand(value, &out, NULL, bad, sizeof(bad)) != 0) {
		*missing = bad;
		return NULL;
	}
	return out;
}

/* Checks of single values: each returns what is wrong, or NULL. */

static int
has_dot_part(const char *path)
{
	const char *p = path, *e;
	size_t n;

	while (*p != '\0') {
		e = strchr(p, '/');
		n = e != NULL ? (size_t)(e - p) : strlen(p);
		if ((n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return 1;
		p += n;
		while (*p == '/')
			p++;
	}
	return 0;
}

static void
strip_trailing_slashes(char *s)
{
	size_t n = strlen(s);

	while (n > 1 && s[n - 1] == '/')
		s[--n] = '\0';
}

static const char *
check_abs_path(char *v)
{
	if (v[0] != '/')
		return "is not an absolute path";
	strip_trailing_slashes(v);
	if (strcmp(v, "/") == 0)
		return "is the root directory";
	if (has_dot_part(v))
		return "has a . or .. part";
	return NULL;
}

static const char *
check_rel_path(char *v)
{
	if (v[0] == '/')
		return "is not a path inside the app";
	strip_trailing_slashes(v);
	if (has_dot_part(v))
		return "is not a path inside the app";
	return NULL;
}

static const char *
check_role(const char *v)
{
	size_t n = strlen(v);
	size_t i;

	if (n > ROLE_MAX_LEN || !is_lower_or_digit(v[0]))
		return "is not a role name";
	for (i = 1; i < n; i++) {
		if (!is_lower_or_digit(v[i]) && v[i] != '_' && v[i] != '-')
			return "is not a role name";
	}
	return NULL;
}

/* A [host "NAME"] or [service "NAME"]. */
static int
valid_name(const char *v)
{
	size_t n = strlen(v);
	size_t i;

	if (n == 0 || n > NAME_MAX_LEN)
		return 0;
	for (i = 0; i < n; i++) {
		if (!is_alnum(v[i]) && v[i] != '.' && v[i] != '_' &&
		    v[i] != '-')
			return 0;
	}
	return 1;
}

static const char *
check_user(const char *v)
{
	const char *p;

	if (*v == '\0')
		return "is empty";
	for (p = v; *p != '\0'; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '@' ||
		    *p == ':' || *p == '/')
			return "is not a login name";
	}
	return NULL;
}

static const char *
check_address(const char *v)
{
	const char *p;
	int colons = 0;

	if (*v == '\0')
		return "is empty";
	if (strchr(v, '@') != NULL)
		return "includes a user name: set it in [ssh] user";
	for (p = v; *p != '\0'; p++) {
		if (*p == ':')
			colons++;
		else if (!is_alnum(*p) && *p != '.' && *p != '-' && *p != '_' &&
			 *p != '%')
			return "is not a host name or IP address";
	}
	if (colons == 1)
		return "includes a port: set it with port =";
	return NULL;
}

static const char *
check_varname(const char *v)
{
	const char *p;

	if (!is_name_start(v[0]))
		return "is not a variable name";
	for (p = v + 1; *p != '\0'; p++) {
		if (!is_alnum(*p) && *p != '_')
			return "is not a variable name";
	}
	return NULL;
}

static const char *
check_url(const char *v)
{
	const char *host, *p;

	if (strncasecmp(v, "http://", 7) == 0)
		host = v + 7;
	else if (strncasecmp(v, "https://", 8) == 0)
		host = v + 8;
	else
		return "is not an http:// or https:// URL";
	if (*host == '\0' || *host == '/')
		return "has no host";
	for (p = v; *p != '\0'; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return "is not an http:// or https:// URL";
	}
	return NULL;
}

static const char *
home_dir(void)
{
	const char *home = getenv("HOME");
	struct passwd *pw;

	if (home != NULL && *home != '\0')
		return home;
	pw = getpwuid(getuid());
	if (pw != NULL && pw->pw_dir != NULL && *pw->pw_dir != '\0')
		return pw->pw_dir;
	return NULL;
}

/* "~/x" to "$HOME/x"; NULL when there is no home directory. */
static char *
expand_tilde(const char *v)
{
	const char *home;

	if (strncmp(v, "~/", 2) != 0)
		return xstrdup(v);
	home = home_dir();
	if (home == NULL)
		return NULL;
	return xasprintf("%s%s", home, v + 1);
}

/*
 * A relative path in a file is relative to that file's directory: prefix
 * it with the directory of file (nothing for a file in the current one).
 */
static char *
resolve_path(const char *file, const char *v)
{
	const char *slash = strrchr(file, '/');

	if (v[0] == '/' || slash == NULL)
		return xstrdup(v);
	return xasprintf("%.*s%s", (int)(slash - file + 1), file, v);
}

/* Reading */

static const struct conf_key *
find_key(enum conf_section id, const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		if (keys[i].section == id && strcmp(keys[i].name, name) == 0)
			return &keys[i];
	}
	return NULL;
}

static struct conf_sect *
find_sect(struct conf_parse *p, enum conf_section id, size_t index)
{
	size_t i;

	for (i = 0; i < p->nsects; i++) {
		if (p->sects[i].id == id && p->sects[i].index == index)
			return &p->sects[i];
	}
	return NULL;
}

/* Where key name of section s was set; NULL when s is NULL or it was not. */
static const struct conf_where *
key_at(const struct conf_sect *s, const char *name)
{
	const struct conf_key *k;

	if (s == NULL)
		return NULL;
	k = find_key(s->id, name);
	if (k == NULL || s->key[k - keys].file == NULL)
		return NULL;
	return &s->key[k - keys];
}

/* Was key a set after key b (NULL: never)? */
static int
where_later(const struct conf_where *a, const struct conf_where *b)
{
	if (a == NULL || b == NULL)
		return b == NULL && a != NULL;
	return a->seq > b->seq;
}

static void *
sect_base(struct conf_parse *p, const struct conf_sect *s)
{
	if (s->id == SEC_HOST)
		return &p->conf->hosts[s->index];
	if (s->id == SEC_SERVICE)
		return &p->conf->services[s->index];
	return p->conf;
}

static int
bad_value(struct conf_parse *p, int line, const struct conf_sect *s,
	  const struct conf_key *k, const char *shown, const char *what)
{
	char buf[CONF_ECHO_MAX + 8];

	/*
	 * A webhook's URL is often its only credential (Slack's is), and
	 * errors end up in CI logs: what was written is never shown.
	 */
	if (s->id == SEC_NOTIFY && k->type == T_URL)
		return conf_err(p, line,
				"%s %s: the value %s (not shown: a webhook's "
				"URL is often its credential; %s)",
				s->label, k->name, what, k->valid);
	return conf_err(p, line, "%s %s: '%s' %s (%s)", s->label, k->name,
			conf_echo(buf, sizeof(buf), shown, NULL), what, k->valid);
}

/* Split a list value into words, checking each with check (may be NULL). */
static int
set_words(struct conf_parse *p, int line, const struct conf_sect *s,
	  const struct conf_key *k, const char *raw, const char *val,
	  struct strlist *l, const char *(*check)(char *))
{
	const char *w = val, *e;
	const char *what;
	char *word;
	int expanded = strcmp(raw, val) != 0;

	strlist_free(l); /* a later file overrides the whole list */
	for (;;) {
		while (conf_is_blank(*w))
			w++;
		if (*w == '\0')
			return 0;
		for (e = w; *e != '\0' && !conf_is_blank(*e); e++)
			;
		word = xstrndup(w, (size_t)(e - w));
		what = check != NULL ? check(word) : NULL;
		if (what != NULL) {
			bad_value(p, line, s, k, expanded ? raw : word, what);
			free(word);
			return -1;
		}
		if (!strlist_has(l, word))
			strlist_add(l, word);
		free(word);
		w = e;
	}
}

/* check_role with the signature set_words wants. */
static const char *
check_role_word(char *v)
{
	return check_role(v);
}

/* In enum conf_notify_on order. */
static const char *const notify_on_names[] = { "always", "failure" };
#define NNOTIFY_ON (sizeof(notify_on_names) / sizeof(notify_on_names[0]))

/* Is the whole value, as written, in double or single quotes? */
static int
in_quotes(const char *raw)
{
	size_t n = strlen(raw);

	return n >= 2 && (raw[0] == '"' || raw[0] == '\'') &&
	       raw[n - 1] == raw[0];
}

/*
 * A file name that holds what the file should: key text (identity =
 * ${SSH_PRIVATE_KEY}, a common CI mistake) or lines of text. Neither the
 * value nor what it was written as is shown: it is someone's key.
 */
static int
not_a_file(struct conf_parse *p, int line, const struct conf_sect *s,
	   const struct conf_key *k, const char *val)
{
	conf_err(p, line, "%s %s: holds %s, not a file name", s->label, k->name,
		 strstr(val, "-----BEGIN") != NULL ? "key text"
						   : "lines of text");
	if (k->type == T_KEYFILE)
		return rf_error_hint(p->err,
				     "to give the key in a variable, name the "
				     "variable instead: identity_env = NAME "
				     "(e.g. identity_env = SSH_PRIVATE_KEY, "
				     "without ${})");
	return rf_error_hint(p->err, "write the text to a file and give that "
				     "file's name here");
}

/* An empty value unsets the key: a later file can clear what a base set. */
static int
unset_string(char *field)
{
	free(*(char **)(void *)field);
	*(char **)(void *)field = NULL;
	return 0;
}

/*
 * Check one expanded value and store it; takes *valp when it keeps it.
 * is_default: the value is the key's default, not from the file.
 */
static int
set_value(struct conf_parse *p, int line, const struct conf_sect *s,
	  const struct conf_key *k, const char *raw, char **valp,
	  int is_default)
{
	char *field = (char *)sect_base(p, s) + k->offset;
	char *val = *valp;
	const char *what = NULL;
	char *path;
	double d;
	size_t i;
	long n;
	int b;

	/* path = "/var/www/app": the quotes would be part of the value. */
	if (k->type != T_COMMAND && k->type != T_RESTART && in_quotes(raw))
		return bad_value(p, line, s, k, raw,
				 "is in quotes, which are kept as written: "
				 "remove them");

	switch (k->type) {
	case T_PATH:
		what = check_abs_path(val);
		break;
	case T_GLOBS:
		return set_words(p, line, s, k, raw, val,
				 (struct strlist *)(void *)field, NULL);
	case T_RELPATHS:
		return set_words(p, line, s, k, raw, val,
				 (struct strlist *)(void *)field,
				 check_rel_path);
	case T_ROLES:
		return set_words(p, line, s, k, raw, val,
				 (struct strlist *)(void *)field,
				 check_role_word);
	case T_INT:
		if (conf_parse_int(val, k->min, k->max, &n, &what) != 0) {
			if (k->noun != NULL)
				return bad_value(p, line, s, k, raw, k->noun);
			break;
		}
		*(int *)(void *)field = (int)n;
		return 0;
	case T_BATCH:
		p->conf->batch_percent = 0;
		n = (long)strlen(val);
		if (strcmp(val, "all") == 0) {
			n = 0;
		} else if (n > 0 && val[n - 1] == '%') {
			val[n - 1] = '\0';
			if (conf_parse_int(val, 1, 100, &n, &what) == 0)
				p->conf->batch_percent = 1;
		} else {
			conf_parse_int(val, k->min, k->max, &n, &what);
		}
		if (what != NULL)
			return bad_value(p, line, s, k, raw,
					 "is not a batch size");
		*(int *)(void *)field = (int)n;
		return 0;
	case T_DURATION:
	case T_DURATION_POS:
		if (conf_parse_duration(val, &d, &what) != 0)
			break;
		if (k->type == T_DURATION_POS && d <= 0) {
			what = "must be more than 0";
			break;
		}
		*(double *)(void *)field = d;
		return 0;
	case T_BOOL:
		if (conf_parse_bool(val, &b, &what) != 0)
			break;
		*(int *)(void *)field = b;
		return 0;
	case T_USER:
		what = check_user(val);
		break;
	case T_ADDRESS:
		what = check_address(val);
		break;
	case T_VARNAME:
		if (*val == '\0')
			return unset_string(field);
		what = check_varname(val);
		break;
	case T_JUMPS:
		(void)ssh_jump_parse(val, NULL, NULL, &what);
		break;
	case T_SSHCONFIG:
		if (strcasecmp(val, "none") == 0)
			break;
		/* FALLTHROUGH */
	case T_KEYFILE:
	case T_FILE:
		if (*val == '\0') {
			if (k->type == T_KEYFILE)
				return unset_string(field);
			what = "is empty";
			break;
		}
		if (!is_default && (strpbrk(val, "\r\n") != NULL ||
				    strstr(val, "-----BEGIN") != NULL))
			return not_a_file(p, line, s, k, val);
		path = expand_tilde(val);
		if (path == NULL && is_default)
			break; /* kept as written, for a message later */
		if (path == NULL) {
			what = "starts with ~/ but HOME is not set";
			break;
		}
		free(val);
		*valp = val = path;
		if (!is_default) {
			path = resolve_path(p->file, val);
			free(val);
			*valp = val = path;
		}
		break;
	case T_COMMAND:
	case T_URL:
	case T_URL_RELEASE:
		if (*val == '\0')
			return unset_string(field);
		if (k->type != T_COMMAND)
			what = check_url(val);
		break;
	case T_NOTIFY_ON:
		for (i = 0; i < NNOTIFY_ON; i++) {
			if (strcmp(val, notify_on_names[i]) == 0) {
				*(int *)(void *)field = (int)i;
				return 0;
			}
		}
		what = "is not failure or always";
		break;
	case T_RESTART:
		if (*val == '\0')
			what = "is empty";
		break;
	}
	if (what != NULL)
		return bad_value(p, line, s, k, raw, what);

	/* The rest are strings, kept as they are. */
	free(*(char **)(void *)field);
	*(char **)(void *)field = val;
	*valp = NULL; /* transferred */
	return 0;
}

/* The message for an expansion that failed: r and bad from expand(). */
static int
expand_error(struct conf_parse *p, int line, const char *what, int r,
	     const char *bad)
{
	if (r == -1)
		return conf_err(p, line,
				"%s: ${%s} is not set (set it in the "
				"environment, or give a default: ${%s:-value}; "
				"$$ is a literal $)",
				what, bad, bad);
	if (r == -3)
		return conf_err(
		    p, line,
		    "%s: '%s' gives a default to ${RELFLIP_RELEASE} "
		    "(the release id, filled in at deploy time: "
		    "write it as ${RELFLIP_RELEASE})",
		    what, bad);
	return conf_err(p, line,
			"%s: '%s' is not a variable reference (${NAME} or "
			"${NAME:-default}; $$ is a literal $)",
			what, bad);
}

/*
 * Read a whole config file into text. Returns 0, or -1 with what went
 * wrong in why ("No such file or directory") and errno's value in *errnum
 * (0 when it is not a system error).
 */
static int
read_file(const char *path, struct buf *text, char *why, size_t len,
	  int *errnum)
{
	char chunk[8192];
	FILE *f;
	size_t n;

	*errnum = 0;
	f = fopen(path, "r");
	if (f == NULL) {
		*errnum = errno;
		snprintf(why, len, "%s", strerror(*errnum));
		return -1;
	}
	text->max = CONF_MAX_SIZE;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_add(text, chunk, n) != 0) {
			fclose(f);
			snprintf(why, len, "larger than %d bytes",
				 CONF_MAX_SIZE);
			return -1;
		}
	}
	if (ferror(f)) {
		*errnum = errno;
		fclose(f);
		snprintf(why, len, "%s", strerror(*errnum));
		return -1;
	}
	fclose(f);
	if (text->len > 0 && memchr(text->buf, '\0', text->len) != NULL) {
		snprintf(why, len, "not a text file (it contains a NUL byte)");
		return -1;
	}
	return 0;
}

static int on_key(void *ctx, const char *name, const char *raw, int line,
		  struct rf_error *err);
static int on_section(void *ctx, const char *header, int line,
		      struct rf_error *err);

/*
 * Read the file named path (as messages name it) for the file being read:
 * its sections and keys go into the same model, so that what this file
 * sets later overrides them.
 */
static int
read_included(struct conf_parse *p, const char *path, struct buf *text)
{
	const char *saved_file = p->file;
	unsigned saved_read = p->read;
	size_t saved_cur = p->cur;
	int r;

	strlist_add(&p->files, path);
	p->file = p->files.v[p->files.n - 1];
	p->read = ++p->nreads;
	p->cur = NO_SECT;
	p->depth++;
	p->stack[p->depth].name = p->file;
	p->stack[p->depth].real = realpath(path, NULL);
	r = conf_ini_parse(buf_str(text), p->file, on_section, on_key, p,
			   p->err);
	free(p->stack[p->depth].real);
	p->stack[p->depth].real = NULL;
	p->depth--;
	p->file = saved_file;
	p->read = saved_read;
	p->cur = saved_cur;
	return r;
}

/* include = FILE, before any section: read FILE first. */
static int
on_include(struct conf_parse *p, const char *raw, int line)
{
	struct buf text = BUF_INIT, chain = BUF_INIT;
	char shown[CONF_ECHO_MAX + 8], bad[128], why[128];
	char *val = NULL, *path = NULL, *real = NULL;
	int r, i, errnum;

	if (p->cur != NO_SECT)
		return conf_err(p, line,
				"include: after a section header (an include "
				"goes at the top of the file, before any "
				"section)");
	if (in_quotes(raw))
		return conf_err(p, line,
				"include: '%s' is in quotes, which are kept as "
				"written: remove them",
				conf_echo(shown, sizeof(shown), raw, NULL));
	r = expand(raw, &val, NULL, bad, sizeof(bad));
	if (r != 0)
		return expand_error(p, line, "include", r, bad);
	r = -1;
	if (*val == '\0') {
		conf_err(p, line,
			 "include: '' is empty (a config file to read first, "
			 "relative to this one, e.g. include = base.ini)");
		goto out;
	}
	path = expand_tilde(val);
	if (path == NULL) {
		conf_err(p, line,
			 "include: '%s' starts with ~/ but HOME is not set",
			 conf_echo(shown, sizeof(shown), raw, NULL));
		goto out;
	}
	free(val);
	val = path;
	path = resolve_path(p->file, val);
	if (p->depth + 1 >= INCLUDE_DEPTH) {
		conf_err(p, line,
			 "include: '%s' is more than %d files deep (includes "
			 "nest at most %d deep)",
			 conf_echo(shown, sizeof(shown), path, NULL),
			 INCLUDE_DEPTH, INCLUDE_DEPTH);
		goto out;
	}
	real = realpath(path, NULL);
	for (i = 0; real != NULL && i <= p->depth; i++) {
		if (p->stack[i].real == NULL ||
		    strcmp(p->stack[i].real, real) != 0)
			continue;
		for (; i <= p->depth; i++)
			buf_addf(&chain, "%s includes ", p->stack[i].name);
		buf_adds(&chain, path);
		conf_err(p, line,
			 "include: '%s' is being read already (a loop: %s)",
			 conf_echo(shown, sizeof(shown), path, NULL),
			 buf_str(&chain));
		goto out;
	}
	if (read_file(path, &text, why, sizeof(why), &errnum) != 0) {
		conf_err(p, line, "include: cannot read '%s': %s",
			 conf_echo(shown, sizeof(shown), path, NULL), why);
		goto out;
	}
	r = read_included(p, path, &text);
out:
	free(val);
	free(path);
	free(real);
	buf_release(&text);
	buf_release(&chain);
	return r;
}

static int
on_key(void *ctx, const char *name, const char *raw, int line,
       struct rf_error *err)
{
	struct conf_parse *p = ctx;
	struct conf_sect *s;
	const struct conf_key *k;
	struct conf_where *w;
	struct buf valid = BUF_INIT;
	struct strlist used = { NULL, 0 };
	struct expand_opts opts;
	char shown[CONF_ECHO_MAX + 8], bad[128], what[160];
	char *val = NULL;
	size_t i;
	int r;

	(void)err; /* the same as p->err */
	s = p->cur != NO_SECT ? &p->sects[p->cur] : NULL;
	if (*name == '\0')
		return conf_err(
		    p, line, "%s%sa value without a key (key = value)",
		    s != NULL ? s->label : "", s != NULL ? ": " : "");
	if (strcmp(name, "include") == 0)
		return on_include(p, raw, line);
	if (s == NULL)
		return conf_err(p, line,
				"%s: outside any section (keys go under a "
				"section header such as [app])",
				conf_echo(shown, sizeof(shown), name, NULL));

	k = find_key(s->id, name);
	if (k == NULL) {
		for (i = 0; i < NKEYS; i++) {
			if (keys[i].section == s->id)
				buf_addf(&valid, "%s%s",
					 valid.len > 0 ? ", " : "",
					 keys[i].name);
		}
		r = conf_err(p, line, "%s %s: unknown key (valid: %s)",
			     s->label, conf_echo(shown, sizeof(shown), name, NULL),
			     buf_str(&valid));
		buf_release(&valid);
		return r;
	}
	/* Set in an earlier file: this one overrides it. */
	w = &s->key[k - keys];
	if (w->file != NULL && w->read == p->read)
		return conf_err(p, line,
				"%s %s: set twice (first at line %d; set "
				"each key once)",
				s->label, k->name, w->line);
	w->file = p->file;
	w->line = line;
	w->read = p->read;
	w->seq = ++p->nset;

	opts.used = &used;
	opts.keep = k->type == T_URL_RELEASE ? "RELFLIP_RELEASE" : NULL;
	r = expand(raw, &val, &opts, bad, sizeof(bad));
	/*
	 * What came from the environment in these sections may be a secret
	 * (a key, a user, a token in a URL): out.c never shows it.
	 */
	if (secret_section(s->id)) {
		for (i = 0; i < used.n; i++)
			out_secret(used.v[i]);
	}
	strlist_free(&used);
	if (r != 0) {
		snprintf(what, sizeof(what), "%s %s", s->label, k->name);
		return expand_error(p, line, what, r, bad);
	}
	r = set_value(p, line, s, k, raw, &val, 0);
	free(val);
	return r;
}

static int
unknown_section(struct conf_parse *p, int line, const char *header)
{
	struct buf valid = BUF_INIT;
	char shown[CONF_ECHO_MAX + 8];
	int id, r;

	for (id = 0; id < SEC_COUNT; id++)
		buf_addf(&valid, "%s[%s%s]", id > 0 ? ", " : "",
			 section_names[id],
			 section_named(id) ? " \"NAME\"" : "");
	r = conf_err(p, line, "[%s]: unknown section (valid: %s)",
		     conf_echo(shown, sizeof(shown), header, NULL),
		     buf_str(&valid));
	buf_release(&valid);
	return r;
}

/* A section met for the first time: the current one from now on. */
static void
add_section(struct conf_parse *p, enum conf_section id, const char *name,
	    int line)
{
	struct conf *c = p->conf;
	struct conf_sect *s;
	struct conf_host *h;
	struct conf_service *svc;

	p->sects = xreallocarray(p->sects, p->nsects + 1, sizeof(*p->sects));
	p->cur = p->nsects++;
	s = &p->sects[p->cur];
	memset(s, 0, sizeof(*s));
	s->id = id;
	s->head.file = p->file;
	s->head.line = line;
	s->head.read = p->read;
	s->last = s->head;
	if (name == NULL) {
		snprintf(s->label, sizeof(s->label), "[%s]", section_names[id]);
		return;
	}
	snprintf(s->label, sizeof(s->label), "[%s \"%s\"]", section_names[id],
		 name);
	if (id == SEC_HOST) {
		c->hosts =
		    xreallocarray(c->hosts, c->nhosts + 1, sizeof(*c->hosts));
		s->index = c->nhosts++;
		h = &c->hosts[s->index];
		memset(h, 0, sizeof(*h));
		h->name = xstrdup(name);
		h->port = -1;
		h->line = line;
	} else {
		c->services = xreallocarray(c->services, c->nservices + 1,
					    sizeof(*c->services));
		s->index = c->nservices++;
		svc = &c->services[s->index];
		memset(svc, 0, sizeof(*svc));
		svc->name = xstrdup(name);
		svc->line = line;
	}
}

/*
 * A section met again: in the same file that is an error, in a later one
 * (a file including another) it goes on, its keys overriding.
 */
static int
reopen_section(struct conf_parse *p, size_t i, int line)
{
	struct conf_sect *s = &p->sects[i];

	if (s->last.read == p->read) {
		if (section_named(s->id))
			return conf_err(p, line,
					"%s: repeated section (first at line "
					"%d; each %s needs its own name)",
					s->label, s->last.line,
					section_names[s->id]);
		return conf_err(p, line,
				"%s: repeated section (first at line %d; put "
				"all its keys in one %s section)",
				s->label, s->last.line, s->label);
	}
	s->last.file = p->file;
	s->last.line = line;
	s->last.read = p->read;
	p->cur = i;
	return 0;
}

/* The section of the model with this id (and name, for a named one). */
static size_t
sect_named(struct conf_parse *p, int id, const char *name)
{
	const struct conf_sect *s;
	size_t i;

	for (i = 0; i < p->nsects; i++) {
		s = &p->sects[i];
		if (s->id != (enum conf_section)id)
			continue;
		if (name == NULL ||
		    (id == SEC_HOST &&
		     strcmp(p->conf->hosts[s->index].name, name) == 0) ||
		    (id == SEC_SERVICE &&
		     strcmp(p->conf->services[s->index].name, name) == 0))
			return i;
	}
	return NO_SECT;
}

/* A section header: header is what is between '[' and ']'. */
static int
on_section(void *ctx, const char *header, int line, struct rf_error *err)
{
	struct conf_parse *p = ctx;
	char shown[CONF_ECHO_MAX + 8], shown_name[CONF_ECHO_MAX + 8];
	const char *s, *e, *q, *close, *kind;
	const char *example;
	char *name;
	size_t i;
	int id, r;

	(void)err; /* the same as p->err */
	for (s = header; conf_is_blank(*s); s++)
		;
	e = s + strlen(s);
	while (e > s && conf_is_blank(e[-1]))
		e--;
	for (q = s; q < e && !conf_is_blank(*q) && *q != '"'; q++)
		;
	for (id = 0; id < SEC_COUNT; id++) {
		if (strlen(section_names[id]) == (size_t)(q - s) &&
		    strncmp(section_names[id], s, (size_t)(q - s)) == 0)
			break;
	}
	if (id == SEC_COUNT)
		return unknown_section(p, line, header);
	while (q < e && conf_is_blank(*q))
		q++;

	if (!section_named(id)) {
		if (q != e)
			return unknown_section(p, line, header);
		i = sect_named(p, id, NULL);
		if (i != NO_SECT)
			return reopen_section(p, i, line);
		add_section(p, id, NULL, line);
		return 0;
	}

	kind = section_names[id];
	example = id == SEC_HOST ? "web1" : "web";
	close =
	    q < e && *q == '"' ? memchr(q + 1, '"', (size_t)(e - q - 1)) : NULL;
	if (close == NULL || close + 1 != e)
		return conf_err(p, line,
				"[%s]: needs a name in double quotes (e.g. "
				"[%s \"%s\"])",
				conf_echo(shown, sizeof(shown), header, NULL), kind,
				example);
	name = xstrndup(q + 1, (size_t)(close - q - 1));
	if (!valid_name(name)) {
		r = conf_err(p, line, "[%s]: '%s' is not a %s name (%s)",
			     conf_echo(shown, sizeof(shown), header, NULL),
			     conf_echo(shown_name, sizeof(shown_name), name, NULL), kind,
			     VALID_NAME);
		free(name);
		return r;
	}
	i = sect_named(p, id, name);
	r = 0;
	if (i != NO_SECT)
		r = reopen_section(p, i, line);
	else
		add_section(p, id, name, line);
	free(name);
	return r;
}

/*
 * The header [artifact] header_env names ("Authorization: Bearer TOKEN")
 * is a secret, and so are its value and the value's last word (the token)
 * should either be shown alone.
 */
static void
header_secret(const char *header)
{
	const char *v, *last;

	if (header == NULL)
		return;
	out_secret(header);
	v = strchr(header, ':');
	if (v == NULL)
		return;
	v += strspn(v + 1, " \t") + 1;
	out_secret(v);
	last = strrchr(v, ' ');
	if (last != NULL)
		out_secret(last + 1);
}

/* Checks over the whole file, then defaults. */

static int
finish_required(struct conf_parse *p)
{
	struct conf *c = p->conf;
	struct conf_sect *s;
	size_t i;

	if (c->app_path == NULL) {
		s = find_sect(p, SEC_APP, 0);
		return conf_err_in(p, s != NULL ? &s->head : NULL,
				   "[app] path: missing (%s)", keys[0].valid);
	}
	if (c->nhosts == 0)
		return conf_err_in(
		    p, NULL,
		    "[host \"NAME\"]: missing (at least one server, "
		    "e.g. [host \"web1\"] with address = "
		    "203.0.113.10)");
	for (i = 0; i < c->nhosts; i++) {
		s = find_sect(p, SEC_HOST, i);
		if (c->hosts[i].address == NULL)
			return conf_err_in(
			    p, &s->head, "%s address: missing (%s)", s->label,
			    find_key(SEC_HOST, "address")->valid);
	}
	for (i = 0; i < c->nservices; i++) {
		s = find_sect(p, SEC_SERVICE, i);
		if (c->services[i].restart == NULL)
			return conf_err_in(
			    p, &s->head, "%s restart: missing (%s)", s->label,
			    find_key(SEC_SERVICE, "restart")->valid);
	}
	s = find_sect(p, SEC_HEALTH, 0);
	if (s != NULL && c->health_url == NULL && c->public_url == NULL)
		return conf_err_in(p, &s->head,
				   "[health] url: missing (a [health] section "
				   "needs url, public_url or both, e.g. url = "
				   "http://127.0.0.1:8000/health)");
	s = find_sect(p, SEC_ARTIFACT, 0);
	if (s != NULL && c->artifact_url == NULL)
		return conf_err_in(p, &s->head,
				   "[artifact] url: missing (an [artifact] "
				   "section needs url: %s)",
				   find_key(SEC_ARTIFACT, "url")->valid);
	s = find_sect(p, SEC_NOTIFY, 0);
	if (s != NULL && c->notify_url == NULL)
		return conf_err_in(p, &s->head,
				   "[notify] url: missing (a [notify] section "
				   "needs url: %s)",
				   find_key(SEC_NOTIFY, "url")->valid);
	if (c->artifact_header_env != NULL)
		header_secret(getenv(c->artifact_header_env));
	return 0;
}

static int
finish_ssh(struct conf_parse *p)
{
	struct conf *c = p->conf;
	struct conf_sect *s = find_sect(p, SEC_SSH, 0);
	const struct conf_where *w_id, *w_env;
	int id_later;
	size_t i;

	c->ssh_user_set = key_at(s, "user") != NULL;
	c->ssh_port_set = key_at(s, "port") != NULL;
	c->identity_set = key_at(s, "identity") != NULL ||
			  key_at(s, "identity_env") != NULL;
	c->known_hosts_set = key_at(s, "known_hosts") != NULL;
	for (i = 0; i < c->nhosts; i++)
		c->hosts[i].port_set =
		    key_at(find_sect(p, SEC_HOST, i), "port") != NULL;
	/* A file named on purpose must be there; the default may be missing. */
	if (c->ssh_config != NULL && strcasecmp(c->ssh_config, "none") != 0 &&
	    access(c->ssh_config, R_OK) != 0)
		return conf_err_in(p, key_at(s, "config"),
				   "[ssh] config: cannot read '%s': %s (%s)",
				   c->ssh_config, strerror(errno),
				   find_key(SEC_SSH, "config")->valid);
	if (c->identity != NULL && c->identity_env != NULL) {
		w_id = key_at(s, "identity");
		w_env = key_at(s, "identity_env");
		id_later = where_later(w_id, w_env);
		return conf_err_in(p, id_later ? w_id : w_env,
				   "[ssh] %s: cannot be set with %s (one way "
				   "to the key: identity = a key file, or "
				   "identity_env = the variable holding the "
				   "key text)",
				   id_later ? "identity" : "identity_env",
				   id_later ? "identity_env" : "identity");
	}
	/* The key text is a secret from the moment the config names it. */
	if (c->identity_env != NULL)
		out_secret(getenv(c->identity_env));
	return 0;
}

/*
 * Give each key of [app], [deploy], [ssh], [hooks] and [health] that the
 * file left unset its default from the table, read like a value.
 */
static int
finish_defaults(struct conf_parse *p)
{
	struct conf_sect none;
	const struct conf_sect *s;
	const struct conf_key *k;
	char *val;
	char bad[128];
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		k = &keys[i];
		if (k->def == NULL || section_named(k->section))
			continue;
		s = find_sect(p, k->section, 0);
		if (s != NULL && s->key[i].file != NULL)
			continue;
		if (s == NULL) {
			memset(&none, 0, sizeof(none));
			none.id = k->section;
			snprintf(none.label, sizeof(none.label), "[%s]",
				 section_names[k->section]);
			s = &none;
		}
		if (expand(k->def, &val, NULL, bad, sizeof(bad)) != 0)
			rf_bug("default of [%s] %s: %s",
			       section_names[k->section], k->name, k->def);
		if (set_value(p, 0, s, k, k->def, &val, 1) != 0) {
			free(val);
			return -1;
		}
		free(val);
	}
	p->conf->has_health =
	    p->conf->health_url != NULL || p->conf->public_url != NULL;
	return 0;
}

static int
finish_hosts(struct conf_parse *p)
{
	struct conf *c = p->conf;
	struct conf_host *h;
	struct conf_sect *s;
	const char *first = NULL;
	size_t i, j, k;
	int found;

	for (i = 0; i < c->nhosts; i++) {
		h = &c->hosts[i];
		if (h->port < 0)
			h->port = c->ssh_port;
		h->user = xstrdup(c->ssh_user);
		h->primary = c->nhosts == 1 || conf_host_has_role(h, "primary");
		if (!h->primary || c->nhosts == 1)
			continue;
		if (first != NULL) {
			s = find_sect(p, SEC_HOST, i);
			return conf_err_in(p, key_at(s, "roles"),
					   "%s roles: 'primary' is also a role "
					   "of %s (one host at most is "
					   "primary: it runs the migrate hook)",
					   s->label, first);
		}
		first = h->name;
	}
	if (c->hook_migrate != NULL && c->nhosts > 1 && first == NULL)
		return conf_err_in(
		    p, key_at(find_sect(p, SEC_HOOKS, 0), "migrate"),
		    "[hooks] migrate: no host is primary (give one [host] "
		    "roles = primary: the migration runs once, there)");

	/* A service whose roles no host has would never be restarted. */
	for (i = 0; i < c->nservices; i++) {
		for (j = 0; j < c->services[i].roles.n; j++) {
			found = 0;
			for (k = 0; k < c->nhosts && !found; k++)
				found = conf_host_has_role(
				    &c->hosts[k], c->services[i].roles.v[j]);
			if (found)
				continue;
			s = find_sect(p, SEC_SERVICE, i);
			return conf_err_in(
			    p, key_at(s, "roles"),
			    "%s roles: no host has the role '%s' (a role "
			    "given in a [host] roles line)",
			    s->label, c->services[i].roles.v[j]);
		}
	}
	return 0;
}

int
conf_load_string(struct conf *conf, const char *text, const char *name,
		 struct rf_error *err)
{
	struct conf_parse p;
	int r;

	memset(conf, 0, sizeof(*conf));
	conf->file = xstrdup(name != NULL ? name : "config");
	memset(&p, 0, sizeof(p));
	p.conf = conf;
	p.err = err;
	p.file = conf->file;
	p.read = ++p.nreads;
	p.cur = NO_SECT;
	p.stack[0].name = conf->file;
	p.stack[0].real = realpath(conf->file, NULL);

	r = conf_ini_parse(text, conf->file, on_section, on_key, &p, err);
	if (r == 0)
		r = finish_required(&p);
	if (r == 0)
		r = finish_ssh(&p);
	if (r == 0)
		r = finish_defaults(&p);
	if (r == 0)
		r = finish_hosts(&p);
	free(p.stack[0].real);
	free(p.sects);
	strlist_free(&p.files);
	if (r != 0) {
		conf_release(conf);
		return -1;
	}
	return 0;
}

int
conf_load_file(struct conf *conf, const char *path, struct rf_error *err)
{
	struct buf text = BUF_INIT;
	char why[128];
	int r, errnum;

	memset(conf, 0, sizeof(*conf));
	if (read_file(path, &text, why, sizeof(why), &errnum) != 0) {
		buf_release(&text);
		rf_error_set(err, RF_EXIT_USAGE, NULL,
			     "cannot read config '%s': %s", path, why);
		if (errnum == ENOENT)
			rf_error_hint(err,
				      "pass -c FILE or set RELFLIP_CONFIG");
		return -1;
	}
	r = conf_load_string(conf, buf_str(&text), path, err);
	buf_release(&text);
	return r;
}

void
conf_release(struct conf *c)
{
	size_t i;

	if (c == NULL)
		return;
	free(c->file);
	free(c->app_path);
	strlist_free(&c->allowed_refs);
	strlist_free(&c->shared_dirs);
	strlist_free(&c->shared_files);
	free(c->ssh_user);
	free(c->identity);
	free(c->identity_env);
	free(c->known_hosts);
	free(c->ssh_config);
	free(c->proxy_jump);
	for (i = 0; i < c->nhosts; i++) {
		free(c->hosts[i].name);
		free(c->hosts[i].proxy_jump);
		free(c->hosts[i].address);
		free(c->hosts[i].user);
		strlist_free(&c->hosts[i].roles);
	}
	free(c->hosts);
	free(c->hook_install);
	free(c->hook_migrate);
	free(c->hook_before_switch);
	free(c->hook_after_switch);
	free(c->hook_after_deploy);
	free(c->hook_on_failure);
	for (i = 0; i < c->nservices; i++) {
		free(c->services[i].name);
		free(c->services[i].restart);
		strlist_free(&c->services[i].roles);
	}
	free(c->services);
	free(c->health_url);
	free(c->public_url);
	free(c->artifact_url);
	free(c->artifact_header_env);
	free(c->notify_url);
	memset(c, 0, sizeof(*c));
}

int
conf_host_has_role(const struct conf_host *host, const char *role)
{
	return strlist_has(&host->roles, role);
}

int
conf_service_on_host(const struct conf_service *svc,
		     const struct conf_host *host)
{
	size_t i;

	if (svc->roles.n == 0)
		return 1;
	for (i = 0; i < svc->roles.n; i++) {
		if (conf_host_has_role(host, svc->roles.v[i]))
			return 1;
	}
	return 0;
}
