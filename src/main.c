/*
 * relflip: global options, the command table, setup, the exit code.
 */
#include <getopt.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "error.h"
#include "health.h"
#include "http.h"
#include "out.h"
#include "remote.h"
#include "xmalloc.h"

static const struct cmd_entry *const cmd_table[] = {
	&cmd_deploy_entry,
	&cmd_rollback_entry,
	&cmd_prune_entry,
	&cmd_releases_entry,
	&cmd_check_entry,
	&cmd_unlock_entry,
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
		fprintf(f, "  %-9s %s%s\n", cmd_table[i]->name,
			cmd_table[i]->summary,
			(cmd_table[i]->flags & CMD_NOT_BUILT) ? " (not built yet)"
							      : "");
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

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
	struct rf_error err = RF_ERROR_INIT;
	char msg[sizeof(err.msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rf_error_set(&err, RF_EXIT_USAGE, NULL, "%s", msg);
	rf_error_hint(&err, "relflip --help lists the commands and options");
	out_error(&err);
	return RF_EXIT_USAGE;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "host", required_argument, NULL, 'H' },
		{ "role", required_argument, NULL, 'R' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "no-color", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct cmd_ctx ctx;
	const struct cmd_entry *entry;
	const char *env;
	int json = 0, quiet = 0, verbose = 0, no_color = 0;
	char **cmd_argv;
	int c, rc, cmd_argc;

	memset(&ctx, 0, sizeof(ctx));
	setlocale(LC_CTYPE, "");
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+c:H:R:qvhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			ctx.config_path = optarg;
			break;
		case 'H':
			strlist_add(&ctx.only_hosts, optarg);
			break;
		case 'R':
			strlist_add(&ctx.only_roles, optarg);
			break;
		case 'j':
			json = 1;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'n':
			no_color = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("relflip %s\n", relflip_version());
			return 0;
		default:
			out_setup(json, quiet, verbose, no_color);
			if (optopt != 0 && strchr("cHR", optopt) != NULL)
				return usage_error("option -%c needs a value",
						   optopt);
			return usage_error("unknown option '%s'",
					   argv[optind - 1]);
		}
	}
	out_setup(json, quiet, verbose, no_color);
	if (quiet && verbose)
		return usage_error("%s", "-q and -v cannot be used together");
	if (optind >= argc) {
		usage(stderr);
		return RF_EXIT_USAGE;
	}
	entry = cmd_find(argv[optind]);
	if (entry == NULL) {
		if (strcmp(argv[optind], "help") == 0) {
			usage(stdout);
			return 0;
		}
		return usage_error("unknown command '%s'", argv[optind]);
	}
	if (entry->flags & CMD_NOT_BUILT) {
		struct rf_error err = RF_ERROR_INIT;

		rf_error_set(&err, RF_EXIT_USAGE, NULL,
			     "'%s' is not built yet in relflip %s",
			     entry->name, relflip_version());
		rf_error_hint(&err, "usage when it lands: relflip %s %s",
			      entry->name, entry->usage);
		out_error(&err);
		return RF_EXIT_USAGE;
	}

	if (ctx.config_path == NULL) {
		env = getenv("RELFLIP_CONFIG");
		ctx.config_path = (env != NULL && *env != '\0') ? env
							       : "relflip.ini";
	}
	ctx.json = json;
	ctx.quiet = quiet;
	ctx.verbose = verbose;

	/* Library set-up that is not thread-safe happens before any thread. */
	if (remote_ssh_global_init() != 0 || http_global_init() != 0) {
		fprintf(stderr, "relflip: error: cannot initialise libssh2 or "
				"libcurl\n");
		return RF_EXIT_INTERNAL;
	}
	signals_setup();

	/* Commands parse with getopt from their own argv[0], the name. */
	cmd_argc = argc - optind;
	cmd_argv = argv + optind;
	/* 0, not 1: glibc re-reads the optstring (ours began with '+'). */
	optind = 0;
	opterr = 0;
	rc = entry->exec(&ctx, cmd_argc, cmd_argv);
	cmd_ctx_release(&ctx);
	if (out_finish() != 0) {
		fprintf(stderr, "relflip: error: cannot write to stdout\n");
		if (rc == 0)
			rc = RF_EXIT_INTERNAL;
	}
	return rc;
}
