/*
 * relflip: global options, the command table, setup, the exit code.
 */
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "error.h"
#include "health.h"
#include "out.h"
#include "quote.h"
#include "remote.h"
#include "xmalloc.h"
#include "buf.h"

static const struct cmd_entry *const cmd_table[] = {
	&cmd_deploy_entry,
	&cmd_rollback_entry,
	&cmd_prune_entry,
	&cmd_releases_entry,
	&cmd_check_entry,
	&cmd_unlock_entry,
	&cmd_status_entry,
	&cmd_log_entry,
	&cmd_exec_entry,
	&cmd_lock_entry,
	&cmd_setup_entry,
	&cmd_pack_entry,
};

#define NCMDS (sizeof(cmd_table) / sizeof(cmd_table[0]))

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: relflip [-c FILE] [-H HOST]... [-R ROLE]... "
		   "[--json] [-q|-v] [--no-color] COMMAND [ARGS]\n"
		   "\n"
		   "Deploy release tarballs to servers over SSH: upload, "
		   "switch `current`,\nhealth-check, roll back on failure.\n"
		   "\n"
		   "Commands:\n");
	for (i = 0; i < NCMDS; i++) {
		fprintf(f, "  %-9s %s\n", cmd_table[i]->name,
			cmd_table[i]->summary);
	}
	fprintf(f,
		"\n"
		"Global options:\n"
		"  -c, --config FILE  config file (default: $RELFLIP_CONFIG, "
		"else ./relflip.ini)\n"
		"  -H, --host HOST    act only on this host (repeatable)\n"
		"  -R, --role ROLE    act only on hosts with this role "
		"(repeatable)\n"
		"      --json         one JSON event a line on stdout; text "
		"on stderr\n"
		"  -q, --quiet        print errors only\n"
		"  -v, --verbose      print debug lines\n"
		"      --no-color     no colour (also: NO_COLOR=1)\n"
		"  -h, --help         this help; relflip COMMAND --help for a "
		"command\n"
		"  -V, --version      version and the commit it was built "
		"from\n"
		"\n"
		"Exit codes: 0 done, 1 internal error, 2 usage or config, 3 "
		"artifact rejected,\n"
		"4 connection or host key or auth, 5 lock held, 6 upload or "
		"unpack, 7 hook,\n"
		"8 health check failed (rolled back), 9 rollback failed too, "
		"10 ref not allowed,\n"
		"130 interrupted.\n");
}

static const struct cmd_entry *
cmd_find(const char *name)
{
	size_t i;

	/* Exact names only: `relflip pr` must not prune. */
	for (i = 0; i < NCMDS; i++) {
		if (strcmp(cmd_table[i]->name, name) == 0)
			return cmd_table[i];
	}
	return NULL;
}

static int usage_error(const struct cmd_entry *entry, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A usage error, with the command's usage as the hint when there is one. */
static int
usage_error(const struct cmd_entry *entry, const char *fmt, ...)
{
	struct rf_error err = RF_ERROR_INIT;
	char msg[sizeof(err.msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (entry == NULL) {
		rf_error_set(&err, RF_EXIT_USAGE, NULL, "%s", msg);
		rf_error_hint(&err, "relflip --help lists the commands and "
			      "options");
	} else {
		rf_error_set(&err, RF_EXIT_USAGE, NULL, "%s: %s", entry->name,
			     msg);
		rf_error_hint(&err, "usage: relflip %s%s%s (relflip %s --help)",
			      entry->name, entry->usage[0] ? " " : "",
			      entry->usage, entry->name);
	}
	out_error(&err);
	return RF_EXIT_USAGE;
}

static void
cmd_help(const struct cmd_entry *entry)
{
	printf("usage: relflip [global options] %s%s%s\n\n%s.\n", entry->name,
	       entry->usage[0] ? " " : "", entry->usage, entry->summary);
	if (entry->help != NULL && entry->help[0] != '\0')
		printf("\n%s", entry->help);
	printf("\nGlobal options, before or after the command: -c FILE, -H "
	       "HOST, -R ROLE,\n--json, -q, -v, --no-color. See relflip "
	       "--help and relflip(1).\n");
}

enum {
	GOPT_JSON = 1000,
	GOPT_NO_COLOR,
};

static const struct option global_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "host", required_argument, NULL, 'H' },
	{ "role", required_argument, NULL, 'R' },
	{ "json", no_argument, NULL, GOPT_JSON },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "no-color", no_argument, NULL, GOPT_NO_COLOR },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
};

#define NGLOBAL (sizeof(global_options) / sizeof(global_options[0]))
#define GLOBAL_SHORT "c:H:R:qvhV"

struct globals {
	struct cmd_ctx *ctx;
	int no_color;
	int help;
	int version;
};

/* A global option; 0 when c is one (wherever it was given). */
static int
global_option(struct globals *g, int c, const char *arg)
{
	switch (c) {
	case 'c':
		g->ctx->config_path = arg;
		return 0;
	case 'H':
		strlist_add(&g->ctx->only_hosts, arg);
		return 0;
	case 'R':
		strlist_add(&g->ctx->only_roles, arg);
		return 0;
	case GOPT_JSON:
		g->ctx->json = 1;
		return 0;
	case 'q':
		g->ctx->quiet = 1;
		return 0;
	case 'v':
		g->ctx->verbose = 1;
		return 0;
	case GOPT_NO_COLOR:
		g->no_color = 1;
		return 0;
	case 'h':
		g->help = 1;
		return 0;
	case 'V':
		g->version = 1;
		return 0;
	}
	return -1;
}

/* The option getopt just refused, as the user wrote it. */
static const char *
refused_option(char **argv, char *buf, size_t len)
{
	if (optopt > 0 && optopt < 256) {
		snprintf(buf, len, "-%c", optopt);
		return buf;
	}
	return argv[optind - 1];
}

/*
 * The command's words: its own options and the global ones, in any order
 * (GNU getopt permutes), up to "--"; what is left are its arguments.
 */
static int
parse_command(const struct cmd_entry *entry, struct globals *g, int argc,
	      char **argv, void *opts, int *first_arg)
{
	struct option *longopts;
	struct buf shortopts = BUF_INIT;
	struct rf_error err = RF_ERROR_INIT;
	size_t n = 0, i;
	char shown[8];
	int c, rc = 0;

	for (i = 0; entry->options != NULL && entry->options[i].name; i++)
		n++;
	longopts = xcalloc(n + NGLOBAL + 1, sizeof(*longopts));
	memcpy(longopts, global_options, sizeof(global_options));
	for (i = 0; i < n; i++)
		longopts[NGLOBAL + i] = entry->options[i];
	buf_addf(&shortopts, ":" GLOBAL_SHORT "%s",
		 entry->shortopts ? entry->shortopts : "");
	/* 0, not 1: glibc starts afresh and forgets the "+" of before. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, buf_str(&shortopts), longopts,
				NULL)) != -1) {
		if (c == ':') {
			rc = usage_error(entry, "option '%s' needs a value",
					 refused_option(argv, shown,
							sizeof(shown)));
			goto out;
		}
		if (c == '?') {
			rc = usage_error(entry, "unknown option '%s'",
					 refused_option(argv, shown,
							sizeof(shown)));
			goto out;
		}
		if (global_option(g, c, optarg) == 0)
			continue;
		if (entry->option(opts, c, optarg, &err) != 0) {
			rc = usage_error(entry, "%s", err.msg);
			goto out;
		}
	}
	*first_arg = optind;
out:
	free(longopts);
	buf_release(&shortopts);
	return rc;
}

static void
print_outcome(const struct cmd_ctx *ctx, int rc)
{
	const struct run_outcome *o = &ctx->outcome;

	if (o->status == NULL)
		return;
	out_result(o->status, rc, o->revision[0] ? o->revision : NULL,
		   o->previous[0] ? o->previous : NULL, o->duration_ms);
}

int
main(int argc, char **argv)
{
	struct cmd_ctx ctx;
	struct globals g;
	const struct cmd_entry *entry;
	const char *env;
	void *opts = NULL;
	char shown[8];
	int c, rc, first = 1, cmd_index;

	memset(&ctx, 0, sizeof(ctx));
	memset(&g, 0, sizeof(g));
	g.ctx = &ctx;
	setlocale(LC_CTYPE, "");
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+" GLOBAL_SHORT, global_options,
				NULL)) != -1) {
		if (c == '?' || global_option(&g, c, optarg) != 0) {
			out_setup(ctx.json, ctx.quiet, ctx.verbose, g.no_color);
			if (optopt != 0 && strchr("cHR", optopt) != NULL)
				return usage_error(NULL,
						   "option -%c needs a value",
						   optopt);
			return usage_error(NULL, "unknown option '%s'",
					   refused_option(argv, shown,
							  sizeof(shown)));
		}
		if (g.help) {
			usage(stdout);
			return 0;
		}
		if (g.version) {
			printf("relflip %s\n", relflip_version());
			return 0;
		}
	}
	out_setup(ctx.json, ctx.quiet, ctx.verbose, g.no_color);
	if (optind >= argc) {
		usage(stderr);
		return RF_EXIT_USAGE;
	}
	entry = cmd_find(argv[optind]);
	if (entry == NULL && strcmp(argv[optind], "help") == 0) {
		if (optind + 1 < argc && cmd_find(argv[optind + 1]) != NULL) {
			cmd_help(cmd_find(argv[optind + 1]));
			return 0;
		}
		usage(stdout);
		return 0;
	}
	if (entry == NULL)
		return usage_error(NULL, "unknown command '%s'", argv[optind]);

	cmd_index = optind;
	opts = xcalloc(1, entry->opts_size ? entry->opts_size : 1);
	rc = parse_command(entry, &g, argc - cmd_index, argv + cmd_index, opts,
			   &first);
	if (rc != 0)
		goto out;
	if (g.help) {
		cmd_help(entry);
		goto out;
	}
	if (g.version) {
		printf("relflip %s\n", relflip_version());
		goto out;
	}
	out_setup(ctx.json, ctx.quiet, ctx.verbose, g.no_color);
	if (ctx.quiet && ctx.verbose) {
		rc = usage_error(NULL, "%s", "-q and -v cannot be used together");
		goto out;
	}
	if (entry->args(opts, argc - cmd_index - first,
			argv + cmd_index + first, &ctx.err) != 0) {
		rc = usage_error(entry, "%s", ctx.err.msg);
		goto out;
	}
	if (ctx.config_path != NULL && ctx.config_path[0] != '\0' &&
	    strcmp(ctx.config_path, "relflip.ini") != 0) {
		struct buf option = BUF_INIT;

		buf_adds(&option, "-c ");
		if (strspn(ctx.config_path,
			   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij"
			   "klmnopqrstuvwxyz0123456789._/+-:@,") ==
		    strlen(ctx.config_path))
			buf_adds(&option, ctx.config_path);
		else
			sh_quote(&option, ctx.config_path);
		rf_hint_config(buf_str(&option));
		buf_release(&option);
	}
	if (ctx.config_path == NULL) {
		env = getenv("RELFLIP_CONFIG");
		ctx.config_path = (env != NULL && *env != '\0') ? env
							       : "relflip.ini";
	}
	if ((entry->flags & CMD_CONFIG) &&
	    cmd_load_config(&ctx, &ctx.err) != 0) {
		out_error(&ctx.err);
		rc = ctx.err.code;
		goto out;
	}

	/* Library set-up that is not thread-safe happens before any thread. */
	if (remote_ssh_global_init() != 0) {
		fprintf(stderr, "relflip: error: cannot initialise libssh2\n");
		rc = RF_EXIT_INTERNAL;
		goto out;
	}
	signals_setup();
	rc = entry->exec(&ctx, opts);
	if (rc != 0 && ctx.err.msg[0] != '\0') {
		if (ctx.err.code == 0)
			ctx.err.code = (enum rf_exit)rc;
		out_error(&ctx.err);
	}
	if (entry->flags & CMD_RESULT)
		print_outcome(&ctx, rc);
out:
	if (entry->release != NULL)
		entry->release(opts);
	free(opts);
	cmd_ctx_release(&ctx);
	if (out_finish() != 0) {
		fprintf(stderr, "relflip: error: cannot write to stdout\n");
		if (rc == 0)
			rc = RF_EXIT_INTERNAL;
	}
	return rc;
}
