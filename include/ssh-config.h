#ifndef RELFLIP_SSH_CONFIG_H
#define RELFLIP_SSH_CONFIG_H

#include <stddef.h>

#include "conf.h"
#include "error.h"

/*
 * The OpenSSH client config (ssh_config(5)), read the way ssh reads it,
 * for the directives relflip honours: HostName, User, Port, IdentityFile,
 * UserKnownHostsFile and ProxyJump.
 *
 * - Host lines take patterns as ssh does: `*` and `?` wildcards, `!`
 *   negation, several patterns per line; the name matched is the host's
 *   `address` in relflip's config, case as written.
 * - For each directive the first value met for the name wins, across the
 *   whole file and what it includes; IdentityFile accumulates.
 * - Include is followed: glob patterns, a relative path is under ~/.ssh,
 *   up to 16 levels; a line inside a Host block makes the included lines
 *   conditional on that block, as in ssh. %-tokens in Include paths are
 *   not expanded.
 * - Match blocks are skipped: their lines never apply (noted for -v).
 * - Every other directive is ignored.
 *
 * The parser is pure: text in memory in, a list of lines out. Included
 * files come through a callback, which ssh_config_load implements with
 * glob(3) and tests implement with a table. Messages name FILE:LINE.
 */

struct ssh_config; /* opaque: the lines that matter, in reading order */

/*
 * Fill names and texts (in the same order, sorted by name) with the files
 * a glob pattern matches; none is fine. Returns 0, or -1 with the reason
 * in why (what relflip prints after "cannot read PATTERN: ").
 */
typedef int (*ssh_config_include_fn)(void *arg, const char *pattern,
				     struct strlist *names,
				     struct strlist *texts, char *why,
				     size_t whysize);

/*
 * Parse text (the file called name in messages). home is the directory
 * that "~" and relative Include paths start from (~/.ssh). include may
 * be NULL: Include lines then match no file. On error err is
 * RF_EXIT_USAGE with "NAME:LINE: what (what is valid)".
 */
int ssh_config_parse(const char *text, const char *name, const char *home,
		     ssh_config_include_fn include, void *arg,
		     struct ssh_config **out, struct rf_error *err);

/*
 * Read a file and what it includes from disk. A missing file is an empty
 * config when !must_exist, an error when must_exist.
 */
int ssh_config_load(const char *path, int must_exist, const char *home,
		    struct ssh_config **out, struct rf_error *err);

void ssh_config_free(struct ssh_config *cfg);

/* What the config says for one name. Unset strings are NULL, port 0. */
struct ssh_config_host {
	char *hostname;             /* HostName, %h expanded */
	char *user;                 /* User */
	int port;                   /* Port */
	struct strlist identities;  /* IdentityFile, as written, in order */
	struct strlist known_hosts; /* the first UserKnownHostsFile line */
	char *proxy_jump;           /* ProxyJump as written, or "none" */
	struct strlist applied;     /* "FILE:LINE: Key value" per value taken */
	struct strlist notes;       /* "FILE:LINE: Match block skipped ..." */
};

/* Resolve name; fills out (release it with ssh_config_host_release). */
void ssh_config_resolve(const struct ssh_config *cfg, const char *name,
			struct ssh_config_host *out);

void ssh_config_host_release(struct ssh_config_host *h);

/*
 * Whether name matches one Host pattern list as ssh does: 1 when some
 * pattern matches and no negated one does, else 0.
 */
int ssh_config_match_host(const char *name, const char *const *patterns,
			  size_t n);

/* Whether s matches a glob of `*` and `?`. */
int ssh_config_match_pattern(const char *s, const char *pattern);

/*
 * Expand what ssh expands in IdentityFile and UserKnownHostsFile: a
 * leading ~/, %d (home), %u (local user), %h (host name), %n (the name as
 * given), %p (port), %r (remote user), %%. Returns a new string, or NULL
 * with why (static) for an unknown token.
 */
struct ssh_config_tokens {
	const char *home;
	const char *local_user;
	const char *hostname;
	const char *name;
	int port;
	const char *user;
};
char *ssh_config_expand_path(const char *path,
			     const struct ssh_config_tokens *t,
			     const char **why);

/* One hop of a ProxyJump list. */
struct ssh_jump_spec {
	char *user; /* NULL when not given */
	char *host;
	int port; /* 0 when not given */
};

/*
 * Parse "[user@]host[:port][,...]" (also ssh://[user@]host[:port] and
 * [v6addr]:port) into *out, *n hops, first hop first. "none" gives no
 * hop. Returns 0, or -1 with why (static).
 */
int ssh_jump_parse(const char *spec, struct ssh_jump_spec **out, size_t *n,
		   const char **why);
void ssh_jump_free(struct ssh_jump_spec *v, size_t n);

#endif
