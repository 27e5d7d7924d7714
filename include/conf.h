#ifndef RELFLIP_CONF_H
#define RELFLIP_CONF_H

#include <stddef.h>

#include "error.h"

/*
 * The configuration model: every key of DESIGN.md's config file. Loading
 * reads the file and the files it includes (include = FILE, read first),
 * expanding ${VAR} and checking each value, then checks the whole, then
 * gives each key left unset the default of the key table (src/conf.c),
 * then completes the hosts. Relative paths in [ssh] are relative to the
 * directory of the file naming them. What ${VAR} brings into [ssh],
 * [artifact] and [notify], the text of the variable identity_env names
 * and the header header_env names are registered with out_secret() as
 * they are read. All strings are owned by the struct conf and freed by
 * conf_release().
 */

/* A list of strings, each owned by the list. */
struct strlist {
	char **v;
	size_t n;
};

/* Append a copy of s. */
void strlist_add(struct strlist *l, const char *s);
int strlist_has(const struct strlist *l, const char *s);
/* Free the strings and the list; it may be reused, empty. */
void strlist_free(struct strlist *l);

struct conf_host {
	char *name;    /* the section's quoted name: [host "web1"] */
	char *address; /* required */
	int port;      /* [host] port, else [ssh] port, else 22 */
	int port_set;  /* [host] port was in the file */
	char *user;    /* [ssh] user (hosts do not override it) */
	char *proxy_jump; /* [host] proxy_jump as written, "none", or NULL */
	struct strlist roles;
	int primary;   /* has role "primary", or is the only host */
	int line;      /* line of the section header, for messages */
};

struct conf_service {
	char *name; /* [service "web"] */
	struct strlist roles; /* empty: every host */
	char *restart;        /* required */
	int line;
};

/* [notify] on */
enum conf_notify_on {
	NOTIFY_ALWAYS,  /* after every deploy and rollback */
	NOTIFY_FAILURE, /* only when one fails (a rolled back deploy too) */
};

struct conf {
	char *file; /* the path it was loaded from */

	/* [app] */
	char *app_path; /* required, absolute, no trailing slash */
	struct strlist allowed_refs; /* globs; empty: any ref */
	struct strlist shared_dirs;
	struct strlist shared_files;

	/* [deploy] */
	int keep_releases;     /* default 5, >= 1 */
	int keep_failed;       /* default 1, >= 0 */
	int batch;             /* default 0: all hosts at once */
	int batch_percent;     /* 1 when batch is a percentage (1-100) */
	int max_parallel;      /* default 16, >= 1 */
	double hook_timeout;   /* seconds, default 600 */
	double lock_ttl;       /* seconds, default 1800 */
	double lock_wait;      /* seconds, default 0 */

	/* [ssh] */
	char *ssh_user;        /* default: $USER, else "root" */
	int ssh_port;          /* default 22 */
	char *identity;        /* a key file, "~/" expanded; NULL: agent */
	char *identity_env;    /* name of the variable holding key text */
	char *known_hosts;     /* default ~/.ssh/known_hosts, "~/" expanded */
	double connect_timeout; /* seconds, default 10 */
	char *ssh_config;       /* OpenSSH client config file, "none", or NULL
				   for ~/.ssh/config (missing is fine then) */
	char *proxy_jump;       /* [user@]host[:port][,...] as written, "none",
				   or NULL */
	/*
	 * Which [ssh] keys the file set (not defaults): these win over
	 * what ssh_config says. identity_set covers identity_env too.
	 */
	int ssh_user_set, ssh_port_set, identity_set, known_hosts_set;

	struct conf_host *hosts; /* in file order; at least one */
	size_t nhosts;

	/* [hooks]: shell commands, NULL when unset */
	char *hook_install;       /* in the new release, every host */
	char *hook_migrate;       /* in the new release, the primary host */
	char *hook_before_switch; /* every host, just before current moves */
	char *hook_after_switch;  /* every host, once current has moved */
	char *hook_after_deploy;  /* where relflip runs; result JSON on stdin */
	char *hook_on_failure;    /* where relflip runs, when one fails */

	struct conf_service *services;
	size_t nservices;

	/* [health] */
	int has_health;        /* a [health] section with url or public_url */
	char *health_url;      /* fetched on the server, through SSH */
	char *public_url;      /* fetched from where relflip runs */
	int expect_status;     /* default 200 */
	int expect_revision;   /* default 0 */
	double health_timeout; /* per request, default 5 */
	double health_interval; /* default 1 */
	int health_retries;    /* default 10 */
	double health_deadline; /* default 60 */

	/* [artifact] */
	char *artifact_url; /* NULL: upload; "${RELFLIP_RELEASE}" kept as is */
	char *artifact_header_env; /* a variable holding an HTTP header */

	/* [notify] */
	char *notify_url; /* a webhook; NULL: none */
	int notify_on;    /* enum conf_notify_on, default NOTIFY_ALWAYS */
};

/*
 * Load and validate a config file. On error, err->code is RF_EXIT_USAGE
 * and err->msg reads "FILE:LINE: [section] key: what is wrong (what is
 * valid)", FILE being the file the key is in (an included one, maybe);
 * err->hint may say more. conf is left released.
 */
int conf_load_file(struct conf *conf, const char *path, struct rf_error *err);

/* The same from text in memory; name stands for the file in messages. */
int conf_load_string(struct conf *conf, const char *text, const char *name,
		     struct rf_error *err);

void conf_release(struct conf *conf);

/*
 * Value parsers, shared with the command line. Each returns 0, or -1 with
 * a reason ("is not a duration") in why, a static string.
 */
int conf_parse_duration(const char *s, double *out, const char **why);
int conf_parse_int(const char *s, long min, long max, long *out,
		   const char **why);
int conf_parse_bool(const char *s, int *out, const char **why);

/* Does host have this role? */
int conf_host_has_role(const struct conf_host *host, const char *role);

/* Does the service run on this host (a role in common, or no roles)? */
int conf_service_on_host(const struct conf_service *svc,
			 const struct conf_host *host);

/*
 * Expand ${NAME} and ${NAME:-default} from the environment. Returns a new
 * string, or NULL with the unset variable's name in *missing (a pointer
 * into a static buffer). "$$" is a literal "$".
 */
char *conf_expand_env(const char *value, const char **missing);

#endif
