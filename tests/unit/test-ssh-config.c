/*
 * The ssh_config reader: Host patterns as OpenSSH's match.c means them,
 * first value wins, Include (relative to ~/.ssh, inside Host blocks, a
 * loop), Match blocks skipped, every error with FILE:LINE; ProxyJump
 * lists; %-tokens; and host_route_resolve, where relflip's own keys win
 * over ssh_config. Ends with a small deterministic fuzz run over the
 * in-memory entry point (ssh_config_parse + ssh_config_resolve).
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "error.h"
#include "hosts.h"
#include "ssh-config.h"

#define HOME "/home/tester"

/* Included files, by glob pattern: "pattern", then name/text pairs. */
struct fake_fs {
	const char *pattern;
	const char *names[3];
	const char *texts[3];
};

static const struct fake_fs fake_files[] = {
	{ HOME "/.ssh/conf.d/*",
	  { HOME "/.ssh/conf.d/a", HOME "/.ssh/conf.d/b", NULL },
	  { "Host a-alias\n  HostName 10.0.0.1\n",
	    "Host b-alias\n  HostName 10.0.0.2\n  User bob\n", NULL } },
	{ HOME "/.ssh/users",
	  { HOME "/.ssh/users", NULL },
	  { "User included\nHost other\n  User other-user\n", NULL } },
	{ "/etc/loop", { "/etc/loop", NULL }, { "Include /etc/loop\n", NULL } },
	{ "/etc/broken", { NULL }, { NULL } },
};

static int
fake_include(void *arg, const char *pattern, struct strlist *names,
	     struct strlist *texts, char *why, size_t whysize)
{
	size_t i, j;

	(void)arg;
	for (i = 0; i < sizeof(fake_files) / sizeof(fake_files[0]); i++) {
		if (strcmp(fake_files[i].pattern, pattern) != 0)
			continue;
		if (fake_files[i].names[0] == NULL) {
			snprintf(why, whysize, "Permission denied");
			return -1;
		}
		for (j = 0; fake_files[i].names[j] != NULL; j++) {
			strlist_add(names, fake_files[i].names[j]);
			strlist_add(texts, fake_files[i].texts[j]);
		}
	}
	return 0;
}

static struct ssh_config *
parse_ok(const char *text)
{
	struct rf_error err = RF_ERROR_INIT;
	struct ssh_config *cfg = NULL;

	if (ssh_config_parse(text, "cfg", HOME, fake_include, NULL, &cfg,
			     &err) != 0)
		fail_msg("parse failed: %s", err.msg);
	return cfg;
}

static void
parse_fails(const char *text, const char *msg)
{
	struct rf_error err = RF_ERROR_INIT;
	struct ssh_config *cfg = NULL;

	assert_int_equal(
	    ssh_config_parse(text, "cfg", HOME, fake_include, NULL, &cfg, &err),
	    -1);
	assert_null(cfg);
	assert_int_equal(err.code, RF_EXIT_USAGE);
	assert_string_equal(err.msg, msg);
	assert_non_null(strstr(err.hint, "[ssh] config = none"));
}

static void
test_match_pattern(void **state)
{
	(void)state;
	assert_true(ssh_config_match_pattern("web1", "web1"));
	assert_false(ssh_config_match_pattern("web1", "web"));
	assert_true(ssh_config_match_pattern("web1", "web*"));
	assert_true(ssh_config_match_pattern("", "*"));
	assert_true(ssh_config_match_pattern("web1", "w?b?"));
	assert_false(ssh_config_match_pattern("web", "w?b?"));
	assert_true(ssh_config_match_pattern("abxbyc", "a*b*c"));
	assert_false(ssh_config_match_pattern("abxbyd", "a*b*c"));
	assert_true(ssh_config_match_pattern("aaa", "*a"));
	assert_true(ssh_config_match_pattern("10.0.0.5", "10.0.*.?"));
	/* case as written, as match_pattern does */
	assert_false(ssh_config_match_pattern("Web1", "web1"));
	assert_false(ssh_config_match_pattern("", "?"));
}

static void
test_match_host_negation(void **state)
{
	const char *p1[] = { "*.example.com", "!db.example.com" };
	const char *p2[] = { "!db*" };
	const char *p3[] = { "web1", "web2" };

	(void)state;
	assert_true(ssh_config_match_host("web.example.com", p1, 2));
	assert_false(ssh_config_match_host("db.example.com", p1, 2));
	/* a negation alone matches nothing */
	assert_false(ssh_config_match_host("web1", p2, 1));
	assert_false(ssh_config_match_host("db1", p2, 1));
	assert_true(ssh_config_match_host("web2", p3, 2));
	assert_false(ssh_config_match_host("web3", p3, 2));
}

static void
test_first_value_wins(void **state)
{
	struct ssh_config *cfg;
	struct ssh_config_host h;

	(void)state;
	cfg = parse_ok("# comment\n"
		       "Host web1\n"
		       "  HostName 10.0.0.1\n"
		       "  Port 2222\n"
		       "Host web*\n"
		       "  HostName 10.9.9.9\n"
		       "  User=deploy\n"
		       "  port = 2200\n"
		       "  IdentityFile ~/.ssh/web\n"
		       "Host *\n"
		       "  USER fallback\n"
		       "  IdentityFile ~/.ssh/id_ed25519\n"
		       "  UserKnownHostsFile ~/.ssh/kh1 ~/.ssh/kh2\n"
		       "  UserKnownHostsFile ~/.ssh/ignored\n");
	ssh_config_resolve(cfg, "web1", &h);
	assert_string_equal(h.hostname, "10.0.0.1");
	assert_int_equal(h.port, 2222);
	assert_string_equal(h.user, "deploy");
	/* IdentityFile accumulates, in order */
	assert_int_equal(h.identities.n, 2);
	assert_string_equal(h.identities.v[0], "~/.ssh/web");
	assert_string_equal(h.identities.v[1], "~/.ssh/id_ed25519");
	/* the first UserKnownHostsFile line, all its files */
	assert_int_equal(h.known_hosts.n, 2);
	assert_string_equal(h.known_hosts.v[1], "~/.ssh/kh2");
	assert_null(h.proxy_jump);
	assert_string_equal(h.applied.v[0], "cfg:3: HostName 10.0.0.1 (Host "
					    "web1)");
	ssh_config_host_release(&h);

	ssh_config_resolve(cfg, "db1", &h);
	assert_null(h.hostname);
	assert_int_equal(h.port, 0);
	assert_string_equal(h.user, "fallback");
	ssh_config_host_release(&h);
	ssh_config_free(cfg);
}

static void
test_hostname_token_and_quotes(void **state)
{
	struct ssh_config *cfg;
	struct ssh_config_host h;

	(void)state;
	cfg = parse_ok("Host *.internal\n"
		       "\tHostName %h.example.com # the real name\n"
		       "\tIdentityFile \"/keys/with space\"\n"
		       "\tUser 'quoted user'\n");
	ssh_config_resolve(cfg, "app.internal", &h);
	assert_string_equal(h.hostname, "app.internal.example.com");
	assert_string_equal(h.identities.v[0], "/keys/with space");
	assert_string_equal(h.user, "quoted user");
	ssh_config_host_release(&h);
	ssh_config_free(cfg);
}

static void
test_match_blocks_skipped(void **state)
{
	struct ssh_config *cfg;
	struct ssh_config_host h;

	(void)state;
	cfg = parse_ok("Match host web1 exec \"true\"\n"
		       "  User from-match\n"
		       "Host web1\n"
		       "  User from-host\n");
	ssh_config_resolve(cfg, "web1", &h);
	assert_string_equal(h.user, "from-host");
	assert_int_equal(h.notes.n, 1);
	assert_string_equal(h.notes.v[0], "cfg:1: Match block skipped "
					  "(relflip reads Host blocks only)");
	ssh_config_host_release(&h);
	ssh_config_free(cfg);
}

static void
test_proxy_jump_directive(void **state)
{
	struct ssh_config *cfg;
	struct ssh_config_host h;

	(void)state;
	cfg = parse_ok("Host web*\n"
		       "  ProxyJump admin@bastion:2222,inner # chain\n"
		       "Host *\n"
		       "  ProxyJump none\n");
	ssh_config_resolve(cfg, "web1", &h);
	assert_string_equal(h.proxy_jump, "admin@bastion:2222,inner");
	ssh_config_host_release(&h);
	ssh_config_resolve(cfg, "db1", &h);
	assert_string_equal(h.proxy_jump, "none");
	ssh_config_host_release(&h);
	ssh_config_free(cfg);
}

static void
test_include(void **state)
{
	struct ssh_config *cfg;
	struct ssh_config_host h;

	(void)state;
	/* relative to ~/.ssh, a glob, files in name order */
	cfg = parse_ok("Include conf.d/*\n"
		       "Host b-alias\n"
		       "  HostName not-this\n"
		       "  Port 2201\n");
	ssh_config_resolve(cfg, "b-alias", &h);
	assert_string_equal(h.hostname, "10.0.0.2");
	assert_string_equal(h.user, "bob");
	assert_int_equal(h.port, 2201);
	assert_string_equal(h.applied.v[0],
			    HOME "/.ssh/conf.d/b:2: HostName 10.0.0.2 (Host "
				 "b-alias)");
	ssh_config_host_release(&h);
	ssh_config_free(cfg);

	/*
	 * Inside a Host block: the included lines apply only when the block
	 * does, and back in the includer that block is active again.
	 */
	cfg = parse_ok("Host web1\n"
		       "  Include ~/.ssh/users\n"
		       "  Port 2300\n");
	ssh_config_resolve(cfg, "web1", &h);
	assert_string_equal(h.user, "included");
	assert_int_equal(h.port, 2300);
	ssh_config_host_release(&h);
	ssh_config_resolve(cfg, "other", &h);
	/* the include was in a block that does not apply to "other" */
	assert_null(h.user);
	assert_int_equal(h.port, 0);
	ssh_config_host_release(&h);
	ssh_config_free(cfg);

	/* a pattern matching nothing is fine, as in ssh */
	cfg = parse_ok("Include nothing/here*\nUser x\n");
	ssh_config_free(cfg);
}

static void
test_errors(void **state)
{
	(void)state;
	parse_fails("Host web1\n  Port 70000\n",
		    "cfg:2: Port: '70000' is not a port (1-65535)");
	parse_fails("Host web1\n  Port 22x\n",
		    "cfg:2: Port: '22x' is not a port (1-65535)");
	parse_fails("Host \"web1\n", "cfg:1: Host: a quote is not closed");
	parse_fails("\n\nHostName\n", "cfg:3: HostName: no value after the "
				      "keyword");
	parse_fails("ProxyJump user@:22\n",
		    "cfg:1: ProxyJump: 'user@:22' has no host name "
		    "([user@]host[:port], several separated by commas, or "
		    "none)");
	parse_fails("Include /etc/loop\n",
		    "/etc/loop:1: Include: more than 16 levels of Include (a "
		    "file including itself?)");
	parse_fails("Include /etc/broken\n",
		    "cfg:1: Include /etc/broken: cannot read /etc/broken: "
		    "Permission denied");
	/* a directive relflip does not use is not checked */
	ssh_config_free(parse_ok("ServerAliveInterval nonsense\n"
				 "SomeFutureOption yes\n"));
}

static void
test_jump_parse(void **state)
{
	struct ssh_jump_spec *v;
	const char *why;
	size_t n;

	(void)state;
	assert_int_equal(ssh_jump_parse("deploy@bastion.example.com:2222, "
					"inner ,ssh://u@[2001:db8::1]:22/",
					&v, &n, &why),
			 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].user, "deploy");
	assert_string_equal(v[0].host, "bastion.example.com");
	assert_int_equal(v[0].port, 2222);
	assert_null(v[1].user);
	assert_string_equal(v[1].host, "inner");
	assert_int_equal(v[1].port, 0);
	assert_string_equal(v[2].user, "u");
	assert_string_equal(v[2].host, "2001:db8::1");
	assert_int_equal(v[2].port, 22);
	ssh_jump_free(v, n);

	assert_int_equal(ssh_jump_parse("None", &v, &n, &why), 0);
	assert_int_equal(n, 0);
	assert_null(v);

	assert_int_equal(ssh_jump_parse("", &v, &n, &why), -1);
	assert_string_equal(why, "is empty");
	assert_int_equal(ssh_jump_parse("a,,b", &v, &n, &why), -1);
	assert_string_equal(why, "has no host name");
	assert_int_equal(ssh_jump_parse("host:0", &v, &n, &why), -1);
	assert_string_equal(why, "has a bad port (1-65535)");
	assert_int_equal(ssh_jump_parse("2001:db8::1", &v, &n, &why), -1);
	assert_string_equal(why, "has an IPv6 address without [ ]");
	assert_int_equal(ssh_jump_parse("ho st", &v, &n, &why), -1);
	assert_string_equal(why, "is not a host name");
	assert_int_equal(ssh_jump_parse("@host", &v, &n, &why), -1);
	assert_string_equal(why, "has an empty user name");
}

static void
test_expand_path(void **state)
{
	struct ssh_config_tokens t = {
		.home = HOME,
		.local_user = "me",
		.hostname = "10.0.0.1",
		.name = "web1",
		.port = 2222,
		.user = "deploy",
	};
	const char *why;
	char *p;

	(void)state;
	p = ssh_config_expand_path("~/.ssh/%r@%h-%p_%n_%u_%%", &t, &why);
	assert_string_equal(p, HOME "/.ssh/deploy@10.0.0.1-2222_web1_me_%");
	free(p);
	p = ssh_config_expand_path("%d/k", &t, &why);
	assert_string_equal(p, HOME "/k");
	free(p);
	assert_null(ssh_config_expand_path("~/.ssh/%C", &t, &why));
	assert_non_null(strstr(why, "%-token"));
}

/* host_route_resolve: relflip's keys against ssh_config. */

static void
load_conf(struct conf *c, const char *text)
{
	struct rf_error err = RF_ERROR_INIT;

	if (conf_load_string(c, text, "relflip.ini", &err) != 0)
		fail_msg("config: %s", err.msg);
}

static const char route_ssh_config[] = "Host myserver\n"
				       "  HostName 192.0.2.10\n"
				       "  User sshcfg-user\n"
				       "  Port 2022\n"
				       "  IdentityFile ~/.ssh/%h.key\n"
				       "  UserKnownHostsFile ~/.ssh/kh-%n\n"
				       "  ProxyJump jumper\n"
				       "Host jumper\n"
				       "  HostName 198.51.100.1\n"
				       "  User jump-user\n"
				       "  Port 2200\n"
				       "  ProxyJump elsewhere\n";

static void
test_route_ssh_config_applies(void **state)
{
	struct rf_error err = RF_ERROR_INIT;
	struct ssh_config *cfg = parse_ok(route_ssh_config);
	struct host_route route;
	struct conf c;

	(void)state;
	load_conf(&c, "[app]\npath = /srv/app\n"
		      "[host \"web1\"]\naddress = myserver\n");
	assert_int_equal(host_route_resolve(&c, &c.hosts[0], cfg, &route, &err),
			 0);
	assert_string_equal(route.opts.name, "web1");
	assert_string_equal(route.opts.address, "192.0.2.10");
	assert_int_equal(route.opts.port, 2022);
	assert_string_equal(route.opts.user, "sshcfg-user");
	assert_int_equal(route.opts.nidentities, 1);
	assert_string_equal(route.opts.identities[0],
			    HOME "/.ssh/192.0.2.10.key");
	assert_string_equal(route.opts.known_hosts, HOME "/.ssh/kh-myserver");
	assert_int_equal(route.opts.njumps, 1);
	assert_string_equal(route.jumps[0].name, "jumper");
	assert_string_equal(route.jumps[0].address, "198.51.100.1");
	assert_int_equal(route.jumps[0].port, 2200);
	assert_string_equal(route.jumps[0].user, "jump-user");
	/* -v tells what was applied, and that the jump's own jump is not */
	assert_true(strlist_has(&route.log,
				"web1: jump host jumper: its own ProxyJump "
				"(elsewhere) is not followed: list the whole "
				"chain"));
	assert_true(strlist_has(&route.log,
				"web1: jump chain (ssh config ProxyJump): "
				"jumper (jump-user@198.51.100.1:2200) -> web1 "
				"(sshcfg-user@192.0.2.10:2022)"));
	host_route_release(&route);
	conf_release(&c);
	ssh_config_free(cfg);
}

static void
test_route_relflip_keys_win(void **state)
{
	struct rf_error err = RF_ERROR_INIT;
	struct ssh_config *cfg = parse_ok(route_ssh_config);
	struct host_route route;
	struct conf c;

	(void)state;
	load_conf(&c, "[app]\npath = /srv/app\n"
		      "[ssh]\nuser = deploy\nport = 22\n"
		      "identity = /keys/deploy\nknown_hosts = /kh\n"
		      "proxy_jump = ops@gate:2022\n"
		      "[host \"web1\"]\naddress = myserver\nport = 2400\n"
		      "[host \"web2\"]\naddress = myserver\n"
		      "proxy_jump = none\n");
	assert_int_equal(host_route_resolve(&c, &c.hosts[0], cfg, &route, &err),
			 0);
	assert_string_equal(route.opts.address, "192.0.2.10");
	assert_int_equal(route.opts.port, 2400);
	assert_string_equal(route.opts.user, "deploy");
	assert_string_equal(route.opts.identity, "/keys/deploy");
	assert_int_equal(route.opts.nidentities, 0);
	assert_string_equal(route.opts.known_hosts, "/kh");
	assert_int_equal(route.opts.njumps, 1);
	assert_string_equal(route.jumps[0].name, "gate");
	assert_string_equal(route.jumps[0].user, "ops");
	assert_int_equal(route.jumps[0].port, 2022);
	assert_string_equal(route.jumps[0].identity, "/keys/deploy");
	assert_true(strlist_has(&route.log, "web1: [host] port 2400 wins over "
					    "the ssh config's Port 2022"));
	host_route_release(&route);

	/* [ssh] port set: it wins; [host] proxy_jump = none: direct */
	assert_int_equal(host_route_resolve(&c, &c.hosts[1], cfg, &route, &err),
			 0);
	assert_int_equal(route.opts.port, 22);
	assert_int_equal(route.opts.njumps, 0);
	host_route_release(&route);
	conf_release(&c);
	ssh_config_free(cfg);
}

static void
test_route_without_ssh_config(void **state)
{
	struct rf_error err = RF_ERROR_INIT;
	struct host_route route;
	struct conf c;

	(void)state;
	load_conf(&c, "[app]\npath = /srv/app\n"
		      "[ssh]\nproxy_jump = b1,admin@b2:2\n"
		      "[host \"web1\"]\naddress = 10.0.0.1\n");
	assert_int_equal(
	    host_route_resolve(&c, &c.hosts[0], NULL, &route, &err), 0);
	assert_string_equal(route.opts.address, "10.0.0.1");
	assert_int_equal(route.opts.port, 22);
	assert_string_equal(route.opts.user, "tester");
	assert_int_equal(route.opts.njumps, 2);
	assert_string_equal(route.jumps[0].address, "b1");
	assert_string_equal(route.jumps[0].user, "tester");
	assert_int_equal(route.jumps[0].port, 22);
	assert_string_equal(route.jumps[1].user, "admin");
	assert_int_equal(route.jumps[1].port, 2);
	host_route_release(&route);
	conf_release(&c);
}

static void
test_conf_keys(void **state)
{
	struct rf_error err = RF_ERROR_INIT;
	struct conf c;

	(void)state;
	assert_int_equal(conf_load_string(&c,
					  "[app]\npath = /srv/app\n"
					  "[ssh]\nproxy_jump = a@:1\n"
					  "[host \"web1\"]\naddress = x\n",
					  "relflip.ini", &err),
			 -1);
	assert_string_equal(err.msg,
			    "relflip.ini:4: [ssh] proxy_jump: 'a@:1' has no "
			    "host name (jump hosts [user@]host[:port], several "
			    "separated by commas, e.g. "
			    "deploy@bastion.example.com:2222, or none)");
	assert_int_equal(conf_load_string(&c,
					  "[app]\npath = /srv/app\n"
					  "[ssh]\nconfig = /nonexistent/cfg\n"
					  "[host \"web1\"]\naddress = x\n",
					  "relflip.ini", &err),
			 -1);
	assert_string_equal(err.msg,
			    "relflip.ini:4: [ssh] config: cannot read "
			    "'/nonexistent/cfg': No such file or directory (an "
			    "OpenSSH client config file, e.g. ~/.ssh/config, "
			    "or none)");
	load_conf(&c, "[app]\npath = /srv/app\n"
		      "[ssh]\nconfig = none\nuser = u\n"
		      "[host \"web1\"]\naddress = x\nproxy_jump = j\n");
	assert_string_equal(c.ssh_config, "none");
	assert_true(c.ssh_user_set);
	assert_false(c.ssh_port_set);
	assert_false(c.identity_set);
	assert_false(c.known_hosts_set);
	assert_false(c.hosts[0].port_set);
	assert_string_equal(c.hosts[0].proxy_jump, "j");
	conf_release(&c);
}

/*
 * The in-memory entry point under random input: text made of config
 * words, separators and bytes, parsed and resolved (ASan and UBSan in
 * make check watch). Deterministic, so a failure reproduces.
 */
static void
test_fuzz_parse(void **state)
{
	static const char *const words[] = {
		"Host",
		"Match",
		"HostName",
		"User",
		"Port",
		"IdentityFile",
		"UserKnownHostsFile",
		"ProxyJump",
		"Include",
		"*",
		"!",
		"?",
		"%h",
		"%",
		"\"",
		"'",
		"\\",
		"#",
		"=",
		" ",
		"\t",
		"\n",
		",",
		"@",
		":",
		"[",
		"]",
		"22",
		"none",
		"web1",
		"conf.d/*",
		"ssh://",
		"\r",
		"\f",
	};
	struct rf_error err;
	struct ssh_config *cfg;
	struct ssh_config_host h;
	struct ssh_jump_spec *v;
	const char *why;
	char text[512];
	uint32_t seed = 12345;
	size_t i, len, n;
	int round;

	(void)state;
	for (round = 0; round < 3000; round++) {
		len = 0;
		for (i = 0; i < 40 && len < sizeof(text) - 32; i++) {
			seed = seed * 1103515245u + 12345u;
			if ((seed >> 16) % 7 == 0) {
				text[len++] = (char)(1 + (seed >> 8) % 255);
				continue;
			}
			len += (size_t)snprintf(
			    text + len, sizeof(text) - len, "%s",
			    words[(seed >> 16) %
				  (sizeof(words) / sizeof(words[0]))]);
		}
		text[len] = '\0';
		memset(&err, 0, sizeof(err));
		if (ssh_config_parse(text, "fuzz", HOME, fake_include, NULL,
				     &cfg, &err) == 0) {
			ssh_config_resolve(cfg, "web1", &h);
			ssh_config_host_release(&h);
			ssh_config_free(cfg);
		} else {
			assert_int_equal(err.code, RF_EXIT_USAGE);
		}
		if (ssh_jump_parse(text, &v, &n, &why) == 0)
			ssh_jump_free(v, n);
		else
			assert_non_null(why);
	}
}

static int
setup(void **state)
{
	(void)state;
	setenv("HOME", HOME, 1);
	setenv("USER", "tester", 1);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_match_pattern, setup),
		cmocka_unit_test_setup(test_match_host_negation, setup),
		cmocka_unit_test_setup(test_first_value_wins, setup),
		cmocka_unit_test_setup(test_hostname_token_and_quotes, setup),
		cmocka_unit_test_setup(test_match_blocks_skipped, setup),
		cmocka_unit_test_setup(test_proxy_jump_directive, setup),
		cmocka_unit_test_setup(test_include, setup),
		cmocka_unit_test_setup(test_errors, setup),
		cmocka_unit_test_setup(test_jump_parse, setup),
		cmocka_unit_test_setup(test_expand_path, setup),
		cmocka_unit_test_setup(test_route_ssh_config_applies, setup),
		cmocka_unit_test_setup(test_route_relflip_keys_win, setup),
		cmocka_unit_test_setup(test_route_without_ssh_config, setup),
		cmocka_unit_test_setup(test_conf_keys, setup),
		cmocka_unit_test_setup(test_fuzz_parse, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
