/*
 * ssh-config.c: the OpenSSH client config, for the directives relflip
 * honours. Semantics from OpenSSH's readconf.c and match.c (Host
 * patterns, first value wins, Include); the code is our own.
 *
 * Parsing keeps only what resolution needs: Host and Match lines, the six
 * directives, and markers where an included file starts and ends (an
 * included file may change which block is active; back in the includer,
 * the block active before the Include line is active again).
 */
#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "ssh-config.h"
#include "xmalloc.h"

#define SSH_CONFIG_MAX_SIZE (1024 * 1024) /* one file, in bytes */
#define INCLUDE_DEPTH_MAX 16              /* as ssh's READCONF_MAX_DEPTH */

enum sc_type {
	SC_HOST,         /* args: the patterns */
	SC_MATCH,        /* a Match line: what follows is skipped */
	SC_SET,          /* a directive: opt, args */
	SC_INCLUDE_PUSH, /* an included file starts */
	SC_INCLUDE_POP,  /* and ends */
};

enum sc_opt {
	OPT_HOSTNAME,
	OPT_USER,
	OPT_PORT,
	OPT_IDENTITYFILE,
	OPT_USERKNOWNHOSTSFILE,
	OPT_PROXYJUMP,
	OPT_COUNT,
};

static const char *const opt_names[OPT_COUNT] = {
	"HostName",           "User",      "Port", "IdentityFile",
	"UserKnownHostsFile", "ProxyJump",
};

struct sc_line {
	enum sc_type type;
	enum sc_opt opt;
	struct strlist args;
	const char *file; /* into ssh_config.files */
	int line;
};

struct ssh_config {
	struct sc_line *v;
	size_t n;
	struct strlist files; /* names of the files read, owned here */
};

struct sc_parse {
	struct ssh_config *cfg;
	const char *home;
	ssh_config_include_fn include;
	void *arg;
	struct rf_error *err;
};

static int sc_parse_text(struct sc_parse *p, const char *text, const char *file,
			 int depth);

static int sc_err(struct sc_parse *p, const char *file, int line,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
sc_err(struct sc_parse *p, const char *file, int line, const char *fmt, ...)
{
	char what[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	rf_error_set(p->err, RF_EXIT_USAGE, NULL, "%s:%d: %s", file, line,
		     what);
	return rf_error_hint(p->err,
			     "fix the ssh config, or set [ssh] config = none "
			     "in relflip's config to ignore it");
}

static struct sc_line *
sc_add(struct ssh_config *cfg, enum sc_type type, const char *file, int line)
{
	struct sc_line *l;

	cfg->v = xreallocarray(cfg->v, cfg->n + 1, sizeof(*cfg->v));
	l = &cfg->v[cfg->n++];
	memset(l, 0, sizeof(*l));
	l->type = type;
	l->file = file;
	l->line = line;
	return l;
}

/*
 * Split a line's arguments as ssh does: blanks separate, '"' and '\''
 * quote, a backslash escapes a quote, a backslash or a blank, and an
 * unquoted '#' starts a comment. -1 for an unterminated quote.
 */
static int
split_args(const char *s, struct strlist *out)
{
	struct buf arg = BUF_INIT;
	char quote;

	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0' || *s == '#')
			break;
		quote = 0;
		buf_reset(&arg);
		for (; *s != '\0'; s++) {
			if (*s == '\\' &&
			    (s[1] == '\'' || s[1] == '"' || s[1] == '\\' ||
			     (quote == 0 && s[1] == ' '))) {
				s++;
				buf_addch(&arg, *s);
			} else if (quote == 0 && (*s == ' ' || *s == '\t')) {
				break;
			} else if (quote == 0 && (*s == '"' || *s == '\'')) {
				quote = *s;
			} else if (quote != 0 && *s == quote) {
				quote = 0;
			} else {
				buf_addch(&arg, *s);
			}
		}
		if (quote != 0) {
			buf_release(&arg);
			return -1;
		}
		strlist_add(out, buf_str(&arg));
	}
	buf_release(&arg);
	return 0;
}

/* "~/x" under home; anything else as it is. */
static char *
tilde(const char *path, const char *home)
{
	if (path[0] == '~' && (path[1] == '/' || path[1] == '\0') &&
	    home != NULL)
		return xasprintf("%s%s", home, path + 1);
	return xstrdup(path);
}

static int
include_files(struct sc_parse *p, const char *file, int line, const char *arg,
	      int depth)
{
	struct strlist names = { 0 }, texts = { 0 };
	char why[256], *pattern;
	size_t i;
	int r = 0;

	if (depth >= INCLUDE_DEPTH_MAX)
		return sc_err(p, file, line,
			      "Include: more than %d levels of Include "
			      "(a file including itself?)",
			      INCLUDE_DEPTH_MAX);
	if (arg[0] == '/' || arg[0] == '~')
		pattern = tilde(arg, p->home);
	else
		pattern = xasprintf("%s/.ssh/%s", p->home ? p->home : "~", arg);
	if (p->include != NULL && p->include(p->arg, pattern, &names, &texts,
					     why, sizeof(why)) != 0) {
		r = sc_err(p, file, line, "Include %s: cannot read %s: %s", arg,
			   pattern, why);
		goto out;
	}
	for (i = 0; i < names.n && i < texts.n && r == 0; i++) {
		strlist_add(&p->cfg->files, names.v[i]);
		sc_add(p->cfg, SC_INCLUDE_PUSH, file, line);
		r = sc_parse_text(p, texts.v[i],
				  p->cfg->files.v[p->cfg->files.n - 1],
				  depth + 1);
		sc_add(p->cfg, SC_INCLUDE_POP, file, line);
	}
out:
	free(pattern);
	strlist_free(&names);
	strlist_free(&texts);
	return r;
}

/* A directive's value: checked as ssh checks it, kept when it matters. */
static int
parse_directive(struct sc_parse *p, const char *file, int line,
		const char *keyword, const char *rest, struct strlist *args,
		int depth)
{
	struct sc_line *l;
	const char *why;
	char *end, *v;
	long port;
	size_t i, n;
	int opt;

	if (strcasecmp(keyword, "Host") == 0) {
		for (i = 0; i < args->n; i++)
			if (args->v[i][0] == '\0')
				return sc_err(p, file, line,
					      "Host: an empty pattern");
		l = sc_add(p->cfg, SC_HOST, file, line);
		l->args = *args;
		memset(args, 0, sizeof(*args));
		return 0;
	}
	if (strcasecmp(keyword, "Match") == 0) {
		sc_add(p->cfg, SC_MATCH, file, line);
		return 0;
	}
	if (strcasecmp(keyword, "Include") == 0) {
		for (i = 0; i < args->n; i++)
			if (include_files(p, file, line, args->v[i], depth) !=
			    0)
				return -1;
		return 0;
	}
	for (opt = 0; opt < OPT_COUNT; opt++)
		if (strcasecmp(keyword, opt_names[opt]) == 0)
			break;
	if (opt == OPT_COUNT)
		return 0; /* a directive relflip does not use */

	switch (opt) {
	case OPT_PORT:
		errno = 0;
		port = strtol(args->v[0], &end, 10);
		if (*end != '\0' || errno != 0 || port < 1 || port > 65535 ||
		    !isdigit((unsigned char)args->v[0][0]))
			return sc_err(p, file, line,
				      "Port: '%s' is not a port (1-65535)",
				      args->v[0]);
		break;
	case OPT_PROXYJUMP:
		/* The whole rest of the line, as ssh takes it. */
		v = xstrdup(rest);
		n = strcspn(v, "#");
		while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		v[n] = '\0';
		if (ssh_jump_parse(v, NULL, NULL, &why) != 0) {
			sc_err(p, file, line,
			       "ProxyJump: '%s' %s ([user@]host[:port], "
			       "several separated by commas, or none)",
			       v, why);
			free(v);
			return -1;
		}
		strlist_free(args);
		strlist_add(args, v);
		free(v);
		break;
	default:
		break;
	}
	l = sc_add(p->cfg, SC_SET, file, line);
	l->opt = (enum sc_opt)opt;
	l->args = *args;
	memset(args, 0, sizeof(*args));
	return 0;
}

static int
parse_line(struct sc_parse *p, const char *file, int line, char *s, int depth)
{
	struct strlist args = { 0 };
	char *kw, *rest;
	size_t n;
	int r;

	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' ||
			 s[n - 1] == '\r' || s[n - 1] == '\f'))
		s[--n] = '\0';
	s += strspn(s, " \t");
	if (*s == '\0' || *s == '#')
		return 0;
	/* "Keyword value", "Keyword=value", "Keyword = value" */
	kw = s;
	s += strcspn(s, " \t=");
	if (*s != '\0') {
		*s++ = '\0';
		s += strspn(s, " \t");
		if (*s == '=')
			s++;
		s += strspn(s, " \t");
	}
	rest = s;
	if (*rest == '\0')
		return sc_err(p, file, line, "%s: no value after the keyword",
			      kw);
	if (split_args(rest, &args) != 0) {
		strlist_free(&args);
		return sc_err(p, file, line, "%s: a quote is not closed", kw);
	}
	if (args.n == 0) {
		strlist_free(&args);
		return sc_err(p, file, line, "%s: no value after the keyword",
			      kw);
	}
	r = parse_directive(p, file, line, kw, rest, &args, depth);
	strlist_free(&args);
	return r;
}

static int
sc_parse_text(struct sc_parse *p, const char *text, const char *file, int depth)
{
	const char *s = text, *nl;
	char *line;
	int lineno = 0, r = 0;

	while (*s != '\0' && r == 0) {
		nl = strchr(s, '\n');
		if (nl == NULL)
			nl = s + strlen(s);
		lineno++;
		line = xstrndup(s, (size_t)(nl - s));
		r = parse_line(p, file, lineno, line, depth);
		free(line);
		s = *nl != '\0' ? nl + 1 : nl;
	}
	return r;
}

int
ssh_config_parse(const char *text, const char *name, const char *home,
		 ssh_config_include_fn include, void *arg,
		 struct ssh_config **out, struct rf_error *err)
{
	struct sc_parse p;
	struct ssh_config *cfg = xcalloc(1, sizeof(*cfg));

	*out = NULL;
	strlist_add(&cfg->files, name);
	p.cfg = cfg;
	p.home = home;
	p.include = include;
	p.arg = arg;
	p.err = err;
	if (sc_parse_text(&p, text, cfg->files.v[0], 0) != 0) {
		ssh_config_free(cfg);
		return -1;
	}
	*out = cfg;
	return 0;
}

void
ssh_config_free(struct ssh_config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->n; i++)
		strlist_free(&cfg->v[i].args);
	free(cfg->v);
	strlist_free(&cfg->files);
	free(cfg);
}

/* Reading from disk. */

/* The whole file into *text; 1 when it does not exist. */
static int
read_text(const char *path, char **text, char *why, size_t whysize)
{
	struct buf b = BUF_INIT;
	char chunk[8192];
	size_t n;
	FILE *f;

	*text = NULL;
	f = fopen(path, "re");
	if (f == NULL) {
		if (errno == ENOENT)
			return 1;
		snprintf(why, whysize, "%s", strerror(errno));
		return -1;
	}
	b.max = SSH_CONFIG_MAX_SIZE;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_add(&b, chunk, n) != 0) {
			snprintf(why, whysize, "larger than %d bytes",
				 SSH_CONFIG_MAX_SIZE);
			break;
		}
	}
	if (ferror(f) && why[0] == '\0')
		snprintf(why, whysize, "%s", strerror(errno));
	fclose(f);
	if (why[0] != '\0') {
		buf_release(&b);
		return -1;
	}
	if (b.len > 0 && memchr(b.buf, '\0', b.len) != NULL) {
		snprintf(why, whysize, "not a text file (it has a NUL byte)");
		buf_release(&b);
		return -1;
	}
	*text = buf_detach(&b, NULL);
	return 0;
}

static int
include_from_disk(void *arg, const char *pattern, struct strlist *names,
		  struct strlist *texts, char *why, size_t whysize)
{
	glob_t gl;
	char *text;
	size_t i;
	int r;

	(void)arg;
	memset(&gl, 0, sizeof(gl));
	r = glob(pattern, 0, NULL, &gl);
	if (r == GLOB_NOMATCH)
		return 0;
	if (r != 0) {
		snprintf(why, whysize, "glob failed");
		return -1;
	}
	for (i = 0; i < gl.gl_pathc; i++) {
		why[0] = '\0';
		r = read_text(gl.gl_pathv[i], &text, why, whysize);
		if (r == 1)
			continue;
		if (r != 0) {
			globfree(&gl);
			return -1;
		}
		strlist_add(names, gl.gl_pathv[i]);
		strlist_add(texts, text);
		free(text);
	}
	globfree(&gl);
	return 0;
}

int
ssh_config_load(const char *path, int must_exist, const char *home,
		struct ssh_config **out, struct rf_error *err)
{
	char why[256] = "", *text;
	int r;

	*out = NULL;
	r = read_text(path, &text, why, sizeof(why));
	if (r == 1 && !must_exist)
		return ssh_config_parse("", path, home, NULL, NULL, out, err);
	if (r != 0) {
		rf_error_set(err, RF_EXIT_USAGE, NULL,
			     "cannot read the ssh config %s: %s", path,
			     r == 1 ? strerror(ENOENT) : why);
		return rf_error_hint(err, "fix [ssh] config, or set it to "
					  "none to read no ssh config");
	}
	r = ssh_config_parse(text, path, home, include_from_disk, NULL, out,
			     err);
	free(text);
	return r;
}

/* Matching, as OpenSSH's match.c means it. */

int
ssh_config_match_pattern(const char *s, const char *pattern)
{
	const char *star = NULL, *back = NULL;

	/* Greedy with one backtrack point: the last '*' seen. */
	for (;;) {
		if (*pattern == '*') {
			star = ++pattern;
			back = s;
			continue;
		}
		if (*s == '\0')
			return *pattern == '\0';
		if (*pattern == '?' || *pattern == *s) {
			s++;
			pattern++;
			continue;
		}
		if (star == NULL)
			return 0;
		pattern = star;
		s = ++back;
	}
}

int
ssh_config_match_host(const char *name, const char *const *patterns, size_t n)
{
	size_t i;
	int positive = 0;

	for (i = 0; i < n; i++) {
		if (patterns[i][0] == '!') {
			if (ssh_config_match_pattern(name, patterns[i] + 1))
				return 0;
		} else if (ssh_config_match_pattern(name, patterns[i])) {
			positive = 1;
		}
	}
	return positive;
}

/* Resolution. */

/* HostName with %h (the name) and %%; other tokens are kept as written. */
static char *
expand_hostname(const char *v, const char *name)
{
	struct buf b = BUF_INIT;

	for (; *v != '\0'; v++) {
		if (v[0] == '%' && v[1] == 'h') {
			buf_adds(&b, name);
			v++;
		} else if (v[0] == '%' && v[1] == '%') {
			buf_addch(&b, '%');
			v++;
		} else {
			buf_addch(&b, *v);
		}
	}
	return buf_detach(&b, NULL);
}

static void
applied(struct ssh_config_host *out, const struct sc_line *l,
	const char *host_line)
{
	struct buf b = BUF_INIT;
	size_t i;

	buf_addf(&b, "%s:%d: %s", l->file, l->line, opt_names[l->opt]);
	for (i = 0; i < l->args.n; i++)
		buf_addf(&b, " %s", l->args.v[i]);
	if (host_line != NULL)
		buf_addf(&b, " (%s)", host_line);
	strlist_add(&out->applied, buf_str(&b));
	buf_release(&b);
}

void
ssh_config_resolve(const struct ssh_config *cfg, const char *name,
		   struct ssh_config_host *out)
{
	const struct sc_line *l;
	char host_line[200] = "";
	int active = 1, never = 0, sp = 0;
	int stack[INCLUDE_DEPTH_MAX + 1][2];
	size_t i, j;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < cfg->n; i++) {
		l = &cfg->v[i];
		switch (l->type) {
		case SC_INCLUDE_PUSH:
			/*
			 * A file included from a block that does not apply
			 * is read, but none of it applies, whatever its Host
			 * lines say (ssh's SSHCONF_NEVERMATCH).
			 */
			if (sp <= INCLUDE_DEPTH_MAX) {
				stack[sp][0] = active;
				stack[sp][1] = never;
			}
			sp++;
			never = never || !active;
			break;
		case SC_INCLUDE_POP:
			sp--;
			if (sp >= 0 && sp <= INCLUDE_DEPTH_MAX) {
				active = stack[sp][0];
				never = stack[sp][1];
			}
			break;
		case SC_HOST:
			active =
			    !never && ssh_config_match_host(
					  name, (const char *const *)l->args.v,
					  l->args.n);
			snprintf(host_line, sizeof(host_line), "Host");
			for (j = 0; j < l->args.n; j++)
				snprintf(host_line + strlen(host_line),
					 sizeof(host_line) - strlen(host_line),
					 " %s", l->args.v[j]);
			break;
		case SC_MATCH: {
			char note[300];

			active = 0;
			snprintf(note, sizeof(note),
				 "%s:%d: Match block skipped (relflip reads "
				 "Host blocks only)",
				 l->file, l->line);
			if (!strlist_has(&out->notes, note))
				strlist_add(&out->notes, note);
			break;
		}
		case SC_SET:
			if (!active)
				break;
			switch (l->opt) {
			case OPT_HOSTNAME:
				if (out->hostname != NULL)
					continue;
				out->hostname =
				    expand_hostname(l->args.v[0], name);
				break;
			case OPT_USER:
				if (out->user != NULL)
					continue;
				out->user = xstrdup(l->args.v[0]);
				break;
			case OPT_PORT:
				if (out->port != 0)
					continue;
				out->port = (int)strtol(l->args.v[0], NULL, 10);
				break;
			case OPT_IDENTITYFILE:
				strlist_add(&out->identities, l->args.v[0]);
				break;
			case OPT_USERKNOWNHOSTSFILE:
				if (out->known_hosts.n > 0)
					continue;
				for (j = 0; j < l->args.n; j++)
					strlist_add(&out->known_hosts,
						    l->args.v[j]);
				break;
			case OPT_PROXYJUMP:
				if (out->proxy_jump != NULL)
					continue;
				out->proxy_jump = xstrdup(l->args.v[0]);
				break;
			case OPT_COUNT:
				continue;
			}
			applied(out, l,
				host_line[0] != '\0' ? host_line : NULL);
			break;
		}
	}
}

void
ssh_config_host_release(struct ssh_config_host *h)
{
	if (h == NULL)
		return;
	free(h->hostname);
	free(h->user);
	strlist_free(&h->identities);
	strlist_free(&h->known_hosts);
	free(h->proxy_jump);
	strlist_free(&h->applied);
	strlist_free(&h->notes);
	memset(h, 0, sizeof(*h));
}

char *
ssh_config_expand_path(const char *path, const struct ssh_config_tokens *t,
		       const char **why)
{
	struct buf b = BUF_INIT;
	const char *p = path, *v;
	char port[16];

	*why = NULL;
	if (p[0] == '~' && (p[1] == '/' || p[1] == '\0') && t->home != NULL) {
		buf_adds(&b, t->home);
		p++;
	}
	snprintf(port, sizeof(port), "%d", t->port);
	for (; *p != '\0'; p++) {
		if (*p != '%') {
			buf_addch(&b, *p);
			continue;
		}
		p++;
		switch (*p) {
		case '%':
			v = "%";
			break;
		case 'd':
			v = t->home;
			break;
		case 'u':
			v = t->local_user;
			break;
		case 'h':
			v = t->hostname;
			break;
		case 'n':
			v = t->name;
			break;
		case 'p':
			v = port;
			break;
		case 'r':
			v = t->user;
			break;
		default:
			v = NULL;
			break;
		}
		if (v == NULL) {
			buf_release(&b);
			*why = "has a %-token relflip does not expand (it "
			       "expands %d %u %h %n %p %r %%)";
			return NULL;
		}
		buf_adds(&b, v);
	}
	return buf_detach(&b, NULL);
}

/* ProxyJump lists. */

static int
valid_host_char(char c)
{
	return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_' ||
	       c == ':' || c == '%';
}

/* One hop: [user@]host[:port], [user@][v6]:port, ssh://... */
static int
jump_one(const char *s, size_t len, struct ssh_jump_spec *hop, const char **why)
{
	char *t = xstrndup(s, len), *h, *at, *colon, *end;
	long port = 0;
	size_t i;
	int r = -1;

	memset(hop, 0, sizeof(*hop));
	h = t;
	if (strncmp(h, "ssh://", 6) == 0) {
		h += 6;
		if (h[0] != '\0' && h[strlen(h) - 1] == '/')
			h[strlen(h) - 1] = '\0';
	}
	at = strrchr(h, '@');
	if (at != NULL) {
		*at = '\0';
		if (*h == '\0') {
			*why = "has an empty user name";
			goto out;
		}
		for (i = 0; h[i] != '\0'; i++)
			if ((unsigned char)h[i] <= ' ' || h[i] == ':' ||
			    h[i] == '/' || h[i] == ',') {
				*why = "has a bad user name";
				goto out;
			}
		hop->user = xstrdup(h);
		h = at + 1;
	}
	colon = NULL;
	if (*h == '[') {
		end = strchr(h, ']');
		if (end == NULL) {
			*why = "has a '[' without ']'";
			goto out;
		}
		*end = '\0';
		h++;
		if (end[1] == ':')
			colon = end + 1;
		else if (end[1] != '\0') {
			*why = "has text after ']'";
			goto out;
		}
	} else {
		colon = strchr(h, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL) {
			*why = "has an IPv6 address without [ ]";
			goto out;
		}
	}
	if (colon != NULL) {
		*colon = '\0';
		errno = 0;
		port = strtol(colon + 1, &end, 10);
		if (!isdigit((unsigned char)colon[1]) || *end != '\0' ||
		    errno != 0 || port < 1 || port > 65535) {
			*why = "has a bad port (1-65535)";
			goto out;
		}
	}
	if (*h == '\0') {
		*why = "has no host name";
		goto out;
	}
	for (i = 0; h[i] != '\0'; i++)
		if (!valid_host_char(h[i])) {
			*why = "is not a host name";
			goto out;
		}
	hop->host = xstrdup(h);
	hop->port = (int)port;
	r = 0;
out:
	free(t);
	if (r != 0) {
		free(hop->user);
		memset(hop, 0, sizeof(*hop));
	}
	return r;
}

int
ssh_jump_parse(const char *spec, struct ssh_jump_spec **out, size_t *n,
	       const char **why)
{
	struct ssh_jump_spec *v = NULL, hop;
	const char *s = spec, *e;
	size_t count = 0, len;

	if (out != NULL)
		*out = NULL;
	if (n != NULL)
		*n = 0;
	*why = NULL;
	while (*s == ' ' || *s == '\t')
		s++;
	if (strcasecmp(s, "none") == 0)
		return 0;
	if (*s == '\0') {
		*why = "is empty";
		return -1;
	}
	for (;;) {
		e = s + strcspn(s, ",");
		while (*s == ' ' || *s == '\t')
			s++;
		len = (size_t)(e - s);
		while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
			len--;
		if (jump_one(s, len, &hop, why) != 0) {
			ssh_jump_free(v, count);
			return -1;
		}
		v = xreallocarray(v, count + 1, sizeof(*v));
		v[count++] = hop;
		if (*e == '\0')
			break;
		s = e + 1;
	}
	if (out != NULL && n != NULL) {
		*out = v;
		*n = count;
	} else {
		ssh_jump_free(v, count);
	}
	return 0;
}

void
ssh_jump_free(struct ssh_jump_spec *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].user);
		free(v[i].host);
	}
	free(v);
}
