/*
 * The config model: conf_load_string on INI text in memory, every error
 * with its exact message, defaults, ${VAR} expansion, inih's pitfalls
 * (long lines, indented lines, long section names), and the files in
 * config/.
 */

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "error.h"
#include "out.h"
#include "fakes/capture.h"

#define APP "[app]\npath = /srv/app\n"
#define HOST1 "[host \"web1\"]\naddress = 10.0.0.1\n"
#define MINIMAL APP HOST1

/* Variables the tests set; each test starts without them. */
static const char *const test_vars[] = {
	"RF_T_HOST",
	"RF_T_USER",
	"RF_T_EMPTY",
	"RF_T_PORT",
	"RF_T_SECRET",
	"RF_T_A",
	"RF_T_B",
	"RF_T_UNSET",
	"DEPLOY_HOST_1",
	"DEPLOY_HOST_2",
	"DEPLOY_HOST_3",
	"DEPLOY_USER",
	"RELFLIP_KNOWN_HOSTS_FILE",
	"STAGING_HOST",
	"SSH_PRIVATE_KEY",
	"ARTIFACT_AUTH",
	"RELFLIP_RELEASE",
	"X",
};

static int
setup(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(test_vars) / sizeof(test_vars[0]); i++)
		unsetenv(test_vars[i]);
	setenv("HOME", "/home/tester", 1);
	setenv("USER", "tester", 1);
	return 0;
}

static void
load_ok(struct conf *c, const char *text)
{
	struct rf_error err = RF_ERROR_INIT;

	if (conf_load_string(c, text, "relflip.ini", &err) != 0)
		fail_msg("unexpected error: %s", err.msg);
	assert_int_equal(err.code, 0);
}

/* The load fails with exactly this message, and leaves conf released. */
static void
load_err(const char *text, const char *want)
{
	struct conf c;
	struct rf_error err = RF_ERROR_INIT;

	memset(&c, 0x5a, sizeof(c));
	assert_int_equal(conf_load_string(&c, text, "relflip.ini", &err), -1);
	assert_int_equal(err.code, RF_EXIT_USAGE);
	assert_null(err.stage);
	assert_string_equal(err.msg, want);
	assert_null(c.file);
	assert_null(c.app_path);
	assert_null(c.hosts);
	assert_int_equal(c.nhosts, 0);
	assert_null(c.services);
	conf_release(&c); /* twice is fine */
}

static char *
repeat(char ch, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, ch, n);
	s[n] = '\0';
	return s;
}

static char *
cat(const char *a, const char *b, const char *c)
{
	size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
	char *s = malloc(n);

	assert_non_null(s);
	snprintf(s, n, "%s%s%s", a, b, c);
	return s;
}

/* Defaults and the model */

static void
test_defaults(void **state)
{
	struct conf c;

	(void)state;
	load_ok(&c, MINIMAL);
	assert_string_equal(c.file, "relflip.ini");
	assert_string_equal(c.app_path, "/srv/app");
	assert_int_equal(c.allowed_refs.n, 0);
	assert_int_equal(c.shared_dirs.n, 0);
	assert_int_equal(c.shared_files.n, 0);
	assert_int_equal(c.keep_releases, 5);
	assert_int_equal(c.keep_failed, 1);
	assert_int_equal(c.batch, 0);
	assert_int_equal(c.batch_percent, 0);
	assert_int_equal(c.max_parallel, 16);
	assert_true(c.hook_timeout == 600);
	assert_true(c.lock_ttl == 1800);
	assert_true(c.lock_wait == 0);
	assert_string_equal(c.ssh_user, "tester");
	assert_int_equal(c.ssh_port, 22);
	assert_null(c.identity);
	assert_null(c.identity_env);
	assert_string_equal(c.known_hosts, "/home/tester/.ssh/known_hosts");
	assert_true(c.connect_timeout == 10);
	assert_null(c.hook_install);
	assert_null(c.hook_migrate);
	assert_int_equal(c.nservices, 0);
	assert_int_equal(c.has_health, 0);
	assert_null(c.health_url);
	assert_null(c.public_url);
	assert_int_equal(c.expect_status, 200);
	assert_int_equal(c.expect_revision, 0);
	assert_true(c.health_timeout == 5);
	assert_true(c.health_interval == 1);
	assert_int_equal(c.health_retries, 10);
	assert_true(c.health_deadline == 60);

	assert_int_equal(c.nhosts, 1);
	assert_string_equal(c.hosts[0].name, "web1");
	assert_string_equal(c.hosts[0].address, "10.0.0.1");
	assert_int_equal(c.hosts[0].port, 22);
	assert_string_equal(c.hosts[0].user, "tester");
	assert_int_equal(c.hosts[0].roles.n, 0);
	assert_int_equal(c.hosts[0].primary, 1); /* the only host */
	assert_int_equal(c.hosts[0].line, 3);
	conf_release(&c);
	assert_null(c.file);
	conf_release(&c);
}

/*
 * The defaults come from the key table and are read like values: leaving
 * every key out and writing each default out give the same model.
 */
static void
test_defaults_read_like_values(void **state)
{
	struct conf a, b;

	(void)state;
	load_ok(&a, MINIMAL "[deploy]\n[health]\nurl = http://h/\n");
	load_ok(&b, MINIMAL "[deploy]\nkeep_releases = 5\nkeep_failed = 1\n"
			    "batch = all\nmax_parallel = 16\n"
			    "hook_timeout = 600\nlock_ttl = 1800\n"
			    "lock_wait = 0\n"
			    "[ssh]\nuser = ${USER:-root}\nport = 22\n"
			    "known_hosts = ~/.ssh/known_hosts\n"
			    "connect_timeout = 10\n"
			    "[health]\nurl = http://h/\nexpect_status = 200\n"
			    "expect_revision = no\ntimeout = 5\ninterval = 1\n"
			    "retries = 10\ndeadline = 60\n");
	assert_int_equal(a.keep_releases, b.keep_releases);
	assert_int_equal(a.keep_failed, b.keep_failed);
	assert_int_equal(a.batch, 0);
	assert_int_equal(b.batch, 0);
	assert_int_equal(b.batch_percent, 0);
	assert_int_equal(a.max_parallel, b.max_parallel);
	assert_true(a.hook_timeout == b.hook_timeout);
	assert_true(a.lock_ttl == b.lock_ttl);
	assert_true(a.lock_wait == b.lock_wait);
	assert_string_equal(a.ssh_user, b.ssh_user);
	assert_int_equal(a.ssh_port, b.ssh_port);
	assert_string_equal(a.known_hosts, b.known_hosts);
	assert_true(a.connect_timeout == b.connect_timeout);
	assert_int_equal(a.expect_status, b.expect_status);
	assert_int_equal(a.expect_revision, b.expect_revision);
	assert_true(a.health_timeout == b.health_timeout);
	assert_true(a.health_interval == b.health_interval);
	assert_int_equal(a.health_retries, b.health_retries);
	assert_true(a.health_deadline == b.health_deadline);
	conf_release(&a);
	conf_release(&b);
}

static void
test_user_default_root(void **state)
{
	struct conf c;

	(void)state;
	unsetenv("USER");
	load_ok(&c, MINIMAL);
	assert_string_equal(c.ssh_user, "root");
	assert_string_equal(c.hosts[0].user, "root");
	conf_release(&c);
	setenv("USER", "", 1);
	load_ok(&c, MINIMAL);
	assert_string_equal(c.ssh_user, "root");
	conf_release(&c);
}

static void
test_every_key(void **state)
{
	struct conf c;

	(void)state;
	load_ok(&c, "; a full config\n"
		    "# with both comment styles\n"
		    "[app]\n"
		    "path = /var/www/app/   ; trailing slash dropped\n"
		    "allowed_refs = refs/heads/main refs/tags/v*\n"
		    "shared_dirs = uploads\tstorage/logs/\n"
		    "shared_files = .env\n"
		    "\n"
		    "[deploy]\n"
		    "keep_releases = 7\n"
		    "keep_failed = 0\n"
		    "batch = 25%\n"
		    "max_parallel = 1024\n"
		    "hook_timeout = 5m\n"
		    "lock_ttl = 1h\n"
		    "lock_wait = 200ms\n"
		    "\n"
		    "[ssh]\n"
		    "user = deploy\n"
		    "port = 2222\n"
		    "identity = ~/.ssh/id_ed25519\n"
		    "known_hosts = /etc/relflip/known_hosts\n"
		    "connect_timeout = 0.5\n"
		    "\n"
		    "[host \"web1\"]\n"
		    "address = 203.0.113.10\n"
		    "roles = web primary\n"
		    "[host \"web2\"]\n"
		    "address = web2.example.com\n"
		    "port = 22\n"
		    "roles = web worker web\n"
		    "[host \"db-1.internal\"]\n"
		    "address = 2001:db8::1\n"
		    "\n"
		    "[hooks]\n"
		    "install = ./venv/bin/pip install -r requirements.txt\n"
		    "migrate = ./venv/bin/python manage.py migrate\n"
		    "\n"
		    "[service \"web\"]\n"
		    "roles = web\n"
		    "restart = sudo systemctl restart gunicorn\n"
		    "[service \"all\"]\n"
		    "restart = sudo systemctl reload nginx\n"
		    "\n"
		    "[health]\n"
		    "url = http://127.0.0.1:8000/health\n"
		    "public_url = https://example.com/health\n"
		    "expect_status = 204\n"
		    "expect_revision = yes\n"
		    "timeout = 2.5\n"
		    "interval = 0\n"
		    "retries = 0\n"
		    "deadline = 2m\n");
	assert_string_equal(c.app_path, "/var/www/app");
	assert_int_equal(c.allowed_refs.n, 2);
	assert_string_equal(c.allowed_refs.v[0], "refs/heads/main");
	assert_string_equal(c.allowed_refs.v[1], "refs/tags/v*");
	assert_int_equal(c.shared_dirs.n, 2);
	assert_string_equal(c.shared_dirs.v[0], "uploads");
	assert_string_equal(c.shared_dirs.v[1], "storage/logs");
	assert_int_equal(c.shared_files.n, 1);
	assert_string_equal(c.shared_files.v[0], ".env");

	assert_int_equal(c.keep_releases, 7);
	assert_int_equal(c.keep_failed, 0);
	assert_int_equal(c.batch, 25);
	assert_int_equal(c.batch_percent, 1);
	assert_int_equal(c.max_parallel, 1024);
	assert_true(c.hook_timeout == 300);
	assert_true(c.lock_ttl == 3600);
	assert_float_equal(c.lock_wait, 0.2, 1e-9);

	assert_string_equal(c.ssh_user, "deploy");
	assert_int_equal(c.ssh_port, 2222);
	assert_string_equal(c.identity, "/home/tester/.ssh/id_ed25519");
	assert_null(c.identity_env);
	assert_string_equal(c.known_hosts, "/etc/relflip/known_hosts");
	assert_float_equal(c.connect_timeout, 0.5, 1e-9);

	assert_int_equal(c.nhosts, 3);
	assert_string_equal(c.hosts[0].name, "web1");
	assert_int_equal(c.hosts[0].port, 2222); /* from [ssh] */
	assert_string_equal(c.hosts[0].user, "deploy");
	assert_int_equal(c.hosts[0].primary, 1);
	assert_true(conf_host_has_role(&c.hosts[0], "web"));
	assert_true(conf_host_has_role(&c.hosts[0], "primary"));
	assert_false(conf_host_has_role(&c.hosts[0], "worker"));
	assert_int_equal(c.hosts[0].line, 25);
	assert_string_equal(c.hosts[1].address, "web2.example.com");
	assert_int_equal(c.hosts[1].port, 22); /* its own */
	assert_int_equal(c.hosts[1].primary, 0);
	assert_int_equal(c.hosts[1].roles.n, 2); /* "web" once */
	assert_string_equal(c.hosts[2].name, "db-1.internal");
	assert_string_equal(c.hosts[2].address, "2001:db8::1");
	assert_int_equal(c.hosts[2].roles.n, 0);
	assert_int_equal(c.hosts[2].primary, 0);

	assert_string_equal(c.hook_install,
			    "./venv/bin/pip install -r requirements.txt");
	assert_string_equal(c.hook_migrate,
			    "./venv/bin/python manage.py migrate");

	assert_int_equal(c.nservices, 2);
	assert_string_equal(c.services[0].name, "web");
	assert_string_equal(c.services[0].restart,
			    "sudo systemctl restart gunicorn");
	assert_int_equal(c.services[0].line, 39);
	assert_true(conf_service_on_host(&c.services[0], &c.hosts[0]));
	assert_true(conf_service_on_host(&c.services[0], &c.hosts[1]));
	assert_false(conf_service_on_host(&c.services[0], &c.hosts[2]));
	assert_string_equal(c.services[1].name, "all");
	assert_int_equal(c.services[1].roles.n, 0);
	assert_true(conf_service_on_host(&c.services[1], &c.hosts[2]));

	assert_int_equal(c.has_health, 1);
	assert_string_equal(c.health_url, "http://127.0.0.1:8000/health");
	assert_string_equal(c.public_url, "https://example.com/health");
	assert_int_equal(c.expect_status, 204);
	assert_int_equal(c.expect_revision, 1);
	assert_float_equal(c.health_timeout, 2.5, 1e-9);
	assert_true(c.health_interval == 0);
	assert_int_equal(c.health_retries, 0);
	assert_true(c.health_deadline == 120);
	conf_release(&c);
}

/* ${VAR} expansion */

static void
test_expand_env(void **state)
{
	const char *missing;
	char *s;

	(void)state;
	setenv("RF_T_A", "alpha", 1);
	setenv("RF_T_EMPTY", "", 1);

	s = conf_expand_env("x ${RF_T_A} y", &missing);
	assert_string_equal(s, "x alpha y");
	assert_null(missing);
	free(s);
	s = conf_expand_env("${RF_T_UNSET:-dflt}/${RF_T_A:-no}", &missing);
	assert_string_equal(s, "dflt/alpha");
	free(s);
	s = conf_expand_env("${RF_T_EMPTY:-used when empty}", &missing);
	assert_string_equal(s, "used when empty");
	free(s);
	s = conf_expand_env("[${RF_T_EMPTY}]", &missing);
	assert_string_equal(s, "[]");
	free(s);
	s = conf_expand_env("${RF_T_UNSET:-}", &missing);
	assert_string_equal(s, "");
	free(s);
	s = conf_expand_env("cost $$5, $HOME stays, $ alone, a$", &missing);
	assert_string_equal(s, "cost $5, $HOME stays, $ alone, a$");
	free(s);
	s = conf_expand_env("$${RF_T_A}", &missing);
	assert_string_equal(s, "${RF_T_A}");
	free(s);
	s = conf_expand_env("${RF_T_UNSET:-${RF_T_A}-x}", &missing);
	assert_string_equal(s, "alpha-x");
	free(s);
	/* A default not taken is not expanded: its unset variable is fine. */
	s = conf_expand_env("${RF_T_A:-${RF_T_UNSET}}", &missing);
	assert_string_equal(s, "alpha");
	free(s);
	s = conf_expand_env("a}b", &missing);
	assert_string_equal(s, "a}b");
	free(s);

	assert_null(conf_expand_env("x ${RF_T_UNSET} y", &missing));
	assert_string_equal(missing, "RF_T_UNSET");
	assert_null(conf_expand_env("${RF_T_UNSET:-${RF_T_B}}", &missing));
	assert_string_equal(missing, "RF_T_B");
	assert_null(conf_expand_env("${RF_T_A", &missing));
	assert_string_equal(missing, "${RF_T_A");
	assert_null(conf_expand_env("${1abc}", &missing));
	assert_string_equal(missing, "${1abc}");
	assert_null(conf_expand_env("${}", &missing));
	assert_string_equal(missing, "${}");
	assert_null(conf_expand_env("${RF_T_A-x}", &missing));
	assert_string_equal(missing, "${RF_T_A-x}");
	assert_null(conf_expand_env("${RF_T_A:-unterminated", &missing));
	assert_string_equal(missing, "${RF_T_A:-unterminated");
}

static void
test_interpolation_in_config(void **state)
{
	struct conf c;

	(void)state;
	setenv("RF_T_HOST", "198.51.100.7", 1);
	setenv("RF_T_PORT", "2200", 1);
	load_ok(&c, "[app]\n"
		    "path = ${RF_T_UNSET:-/srv/default}\n"
		    "[ssh]\n"
		    "user = ${RF_T_USER:-deploy}\n"
		    "port = ${RF_T_PORT}\n"
		    "known_hosts = ${RF_T_UNSET:-~/.ssh/known_hosts}\n"
		    "[host \"web1\"]\n"
		    "address = ${RF_T_HOST}\n"
		    "[hooks]\n"
		    "install = echo $${RELFLIP_REVISION} $$HOME $HOME\n"
		    "migrate = ${RF_T_EMPTY:-}\n");
	assert_string_equal(c.app_path, "/srv/default");
	assert_string_equal(c.ssh_user, "deploy");
	assert_int_equal(c.ssh_port, 2200);
	assert_int_equal(c.hosts[0].port, 2200);
	assert_string_equal(c.known_hosts, "/home/tester/.ssh/known_hosts");
	assert_string_equal(c.hosts[0].address, "198.51.100.7");
	assert_string_equal(c.hook_install,
			    "echo ${RELFLIP_REVISION} $HOME $HOME");
	assert_null(c.hook_migrate); /* empty: no hook */
	conf_release(&c);
}

static void
test_interpolation_errors(void **state)
{
	(void)state;
	load_err(APP "[host \"web1\"]\naddress = ${DEPLOY_HOST_1}\n",
		 "relflip.ini:4: [host \"web1\"] address: ${DEPLOY_HOST_1} is "
		 "not set (set it in the environment, or give a default: "
		 "${DEPLOY_HOST_1:-value}; $$ is a literal $)");
	load_err(MINIMAL "[hooks]\ninstall = cd ${RELFLIP_RELEASE_PATH\n",
		 "relflip.ini:6: [hooks] install: '${RELFLIP_RELEASE_PATH' is "
		 "not a variable reference (${NAME} or ${NAME:-default}; $$ "
		 "is a literal $)");
	/* An empty variable reads as an empty value. */
	setenv("RF_T_EMPTY", "", 1);
	load_err(APP "[host \"web1\"]\naddress = ${RF_T_EMPTY}\n",
		 "relflip.ini:4: [host \"web1\"] address: '${RF_T_EMPTY}' is "
		 "empty (the server to connect to, e.g. 203.0.113.10 or "
		 "web1.example.com)");
}

/* A value from the environment is never echoed: it may be a secret. */
static void
test_error_echoes_raw_text(void **state)
{
	struct rf_error err = RF_ERROR_INIT;
	struct conf c;

	(void)state;
	setenv("RF_T_SECRET", "hunter2", 1);
	load_err(MINIMAL "[ssh]\nport = ${RF_T_SECRET}\n",
		 "relflip.ini:6: [ssh] port: '${RF_T_SECRET}' is not a port "
		 "(1-65535)");
	assert_int_equal(conf_load_string(&c,
					  MINIMAL
					  "[ssh]\nuser = x${RF_T_SECRET} y\n"
					  "[app]\n",
					  "relflip.ini", &err),
			 -1);
	assert_null(strstr(err.msg, "hunter2"));
	assert_non_null(strstr(err.msg, "x${RF_T_SECRET} y"));
	load_err(
	    APP
	    "[host \"web1\"]\naddress = 10.0.0.1\nroles = ${RF_T_SECRET}x!\n",
	    "relflip.ini:5: [host \"web1\"] roles: '${RF_T_SECRET}x!' is "
	    "not a role name (words of a-z 0-9 _ -, each up to 32 long and "
	    "starting with a letter or digit, e.g. web worker primary)");
	/* A key holding the key text, not its name, is refused unshown. */
	setenv("SSH_PRIVATE_KEY",
	       "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n", 1);
	load_err(
	    MINIMAL "[ssh]\nidentity_env = ${SSH_PRIVATE_KEY}\n",
	    "relflip.ini:6: [ssh] identity_env: '${SSH_PRIVATE_KEY}' is not "
	    "a variable name (the name of the variable holding the key "
	    "text, e.g. SSH_PRIVATE_KEY, without ${})");
}

/* What out.c shows of text, after loading: secrets come out redacted. */
static char *
shown(const char *text)
{
	struct capture cap;

	capture_begin(&cap, 2);
	out_text("%s", text);
	return capture_end(&cap);
}

static void
assert_shown(const char *text, const char *want)
{
	char *s = shown(text);

	assert_string_equal(s, want);
	free(s);
}

/* Values from the environment in [ssh] are secrets from the load on. */
static void
test_ssh_values_from_env_are_secrets(void **state)
{
	struct conf c;

	(void)state;
	setenv("RF_T_USER", "ci-deployer-7", 1);
	setenv("RF_T_A", "kh-secret-path", 1);
	setenv("RF_T_B", "hook-not-secret", 1);
	load_ok(&c, MINIMAL "[ssh]\nuser = ${RF_T_USER}\n"
			    "known_hosts = /etc/${RF_T_A}\n"
			    "identity = ${RF_T_UNSET:-/keys/default-id}\n"
			    "[hooks]\ninstall = echo ${RF_T_B}\n");
	assert_string_equal(c.ssh_user, "ci-deployer-7");
	assert_string_equal(c.known_hosts, "/etc/kh-secret-path");
	conf_release(&c);
	assert_shown("as ci-deployer-7 with /etc/kh-secret-path",
		     "as [redacted] with /etc/[redacted]\n");
	/* A default is no secret, nor is a value outside [ssh]. */
	assert_shown("/keys/default-id hook-not-secret",
		     "/keys/default-id hook-not-secret\n");
}

/* The variable identity_env names holds a secret, each line of it too. */
static void
test_identity_env_value_is_secret(void **state)
{
	struct conf c;

	(void)state;
	setenv("SSH_PRIVATE_KEY",
	       "-----BEGIN OPENSSH PRIVATE KEY-----\n"
	       "c2VjcmV0LWtleS1saW5lLTE=\n"
	       "-----END OPENSSH PRIVATE KEY-----\n",
	       1);
	load_ok(&c, MINIMAL "[ssh]\nidentity_env = SSH_PRIVATE_KEY\n");
	conf_release(&c);
	assert_shown("Error parsing c2VjcmV0LWtleS1saW5lLTE=",
		     "Error parsing [redacted]\n");
}

/* A path that holds key text or lines: refused, its own error, unshown. */
static void
test_path_holding_key_text(void **state)
{
	static const char key[] = "-----BEGIN OPENSSH PRIVATE KEY-----\n"
				  "a2V5LXRleHQtaW4tYS1wYXRo\n"
				  "-----END OPENSSH PRIVATE KEY-----\n";
	struct rf_error err = RF_ERROR_INIT;
	struct conf c;

	(void)state;
	setenv("SSH_PRIVATE_KEY", key, 1);
	assert_int_equal(conf_load_string(&c,
					  MINIMAL "[ssh]\nidentity = "
						  "${SSH_PRIVATE_KEY}\n",
					  "relflip.ini", &err),
			 -1);
	assert_int_equal(err.code, RF_EXIT_USAGE);
	assert_string_equal(err.msg, "relflip.ini:6: [ssh] identity: holds key "
				     "text, not a file name");
	assert_string_equal(err.hint,
			    "to give the key in a variable, name the variable "
			    "instead: identity_env = NAME (e.g. identity_env = "
			    "SSH_PRIVATE_KEY, without ${})");
	assert_null(c.file);
	/* Should anything show it later, it comes out redacted. */
	assert_shown("a2V5LXRleHQtaW4tYS1wYXRo", "[redacted]\n");
	assert_shown(key, "[redacted]\n");

	/* Written in the file itself, the armour alone is enough. */
	rf_error_clear(&err);
	assert_int_equal(
	    conf_load_string(&c,
			     MINIMAL "[ssh]\nidentity = -----BEGIN OPENSSH "
				     "PRIVATE KEY-----\n",
			     "relflip.ini", &err),
	    -1);
	assert_string_equal(err.msg, "relflip.ini:6: [ssh] identity: holds key "
				     "text, not a file name");
	assert_null(strstr(err.msg, "-----"));

	/* known_hosts lines in a variable, not a file name. */
	setenv("RF_T_A", "web1 ssh-ed25519 AAAAC3Nz\nweb2 ssh-ed25519 AAAAC3Nz",
	       1);
	rf_error_clear(&err);
	assert_int_equal(conf_load_string(&c,
					  MINIMAL "[ssh]\nknown_hosts = "
						  "${RF_T_A}\n",
					  "relflip.ini", &err),
			 -1);
	assert_string_equal(err.msg, "relflip.ini:6: [ssh] known_hosts: holds "
				     "lines of text, not a file name");
	assert_string_equal(err.hint, "write the text to a file and give that "
				      "file's name here");
	setenv("RF_T_A", "/tmp/kh\r", 1);
	rf_error_clear(&err);
	assert_int_equal(conf_load_string(&c,
					  MINIMAL "[ssh]\nidentity = "
						  "${RF_T_A}\n",
					  "relflip.ini", &err),
			 -1);
	assert_string_equal(err.msg, "relflip.ini:6: [ssh] identity: holds "
				     "lines of text, not a file name");
}

/* inih's pitfalls */

static void
test_long_value_loads_intact(void **state)
{
	struct conf c;
	char *cmd, *text;
	size_t n;

	(void)state;
	cmd = repeat('a', 1000);
	memcpy(cmd, "./install.sh ", 13);
	cmd[999] = 'Z';
	text = cat(MINIMAL "[hooks]\ninstall = ", cmd,
		   "   ; a comment after it\n"
		   "migrate = ./m\n"
		   "[service \"web\"]\nrestart = r\n");
	load_ok(&c, text);
	assert_string_equal(c.hook_install, cmd);
	assert_string_equal(c.hook_migrate, "./m");
	assert_int_equal(c.services[0].line, 8);
	conf_release(&c);
	free(text);

	/* Every length around inih's 200-byte buffer. */
	for (n = 180; n < 215; n++) {
		cmd[n] = '\0';
		text = cat(MINIMAL "[hooks]\ninstall = ", cmd, "\n");
		load_ok(&c, text);
		assert_string_equal(c.hook_install, cmd);
		conf_release(&c);
		free(text);
		cmd[n] = 'a';
	}
	free(cmd);
}

static void
test_long_lines_other(void **state)
{
	struct conf c;
	char *long_comment, *text, *word;

	(void)state;
	/* A long comment is a comment, not a line of settings. */
	long_comment = repeat('x', 500);
	long_comment[0] = ';';
	long_comment[300] = '=';
	text = cat(APP, long_comment, "\n" HOST1);
	load_ok(&c, text);
	assert_int_equal(c.hosts[0].line, 4);
	conf_release(&c);
	free(text);
	long_comment[0] = '#';
	text = cat(APP, long_comment, "\n" HOST1);
	load_ok(&c, text);
	conf_release(&c);
	free(text);

	/* A long line without '=' is one error, on its own line. */
	long_comment[0] = 'x';
	long_comment[300] = 'x';
	text = cat(APP, long_comment, "\n" HOST1);
	load_err(text,
		 "relflip.ini:3: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' is not a "
		 "setting (key = value, a [section] header, or a comment "
		 "starting with ; or #)");
	free(text);
	free(long_comment);

	/* Lines after a long one keep their numbers. */
	long_comment = repeat('a', 300);
	text = cat(MINIMAL "[hooks]\ninstall = ", long_comment, "\nbogus\n");
	load_err(text,
		 "relflip.ini:7: 'bogus' is not a setting (key = value, "
		 "a [section] header, or a comment starting with ; or #)");
	free(text);
	text = cat(MINIMAL "[hooks]\ninstall = ", long_comment,
		   "\ninstall = again\n");
	load_err(text, "relflip.ini:7: [hooks] install: set twice (first at "
		       "line 6; set each key once)");
	free(text);
	free(long_comment);

	/* A long key is an unknown key, shown cut for the message only. */
	word = repeat('k', 300);
	text = cat(APP "[deploy]\n", word, " = 1\n" HOST1);
	load_err(text,
		 "relflip.ini:4: [deploy] kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
		 "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...: "
		 "unknown key (valid: keep_releases, keep_failed, batch, "
		 "max_parallel, hook_timeout, lock_ttl, lock_wait)");
	free(text);

	/* A long list splits into its words. */
	memset(word, 'r', 300);
	word[0] = 'u';
	text =
	    cat("[app]\npath = /srv/app\nshared_dirs = a ", word, " b\n" HOST1);
	load_ok(&c, text);
	assert_int_equal(c.shared_dirs.n, 3);
	assert_string_equal(c.shared_dirs.v[1], word);
	assert_string_equal(c.shared_dirs.v[2], "b");
	conf_release(&c);
	free(text);
	free(word);
}

static void
test_indented_lines(void **state)
{
	static const char want3[] =
	    "relflip.ini:3: indented line: a value cannot continue on the "
	    "next line (remove the leading whitespace; write each key = "
	    "value on one line)";

	(void)state;
	load_err("[app]\npath = /srv/app\n  port = 2222\n" HOST1, want3);
	load_err("[app]\npath = /srv/app\n\t&& make\n" HOST1, want3);
	/* Right after a header, where inih would take it as a key. */
	load_err("[app]\npath = /srv/app\n  [deploy]\n" HOST1, want3);
	load_err("[app]\n  path = /srv/app\n" HOST1,
		 "relflip.ini:2: indented line: a value cannot continue on the "
		 "next line (remove the leading whitespace; write each key = "
		 "value on one line)");
}

static void
test_indented_comments_and_blanks(void **state)
{
	struct conf c;

	(void)state;
	load_ok(&c, "\n   \n[app]\n  ; indented comment\n\t# another\n"
		    "path = /srv/app\n \t \n" HOST1);
	assert_string_equal(c.app_path, "/srv/app");
	assert_int_equal(c.hosts[0].line, 8);
	conf_release(&c);
}

static void
test_crlf_bom_inline_comments(void **state)
{
	struct conf c;

	(void)state;
	load_ok(&c, "\xef\xbb\xbf[app]\r\npath = /srv/app ; the app\r\n"
		    "[host \"web1\"]   ; a server\r\naddress = 10.0.0.1\r\n"
		    "[hooks]\r\ninstall = make a;b # not a comment\r\n"
		    "migrate: ./m\r\n");
	assert_string_equal(c.app_path, "/srv/app");
	assert_string_equal(c.hook_install, "make a;b # not a comment");
	assert_string_equal(c.hook_migrate, "./m");
	assert_int_equal(c.hosts[0].line, 3);
	conf_release(&c);
}

/* Sections */

static void
test_quoted_sections(void **state)
{
	struct conf c;
	char *name, *text;

	(void)state;
	load_ok(&c, APP "[host \"web.1_a-B\"]\naddress = h\n"
			"[ service   \"web\" ]\nrestart = r\n"
			"[host\"x\"]\naddress = h2\n");
	assert_string_equal(c.hosts[0].name, "web.1_a-B");
	assert_string_equal(c.hosts[1].name, "x");
	assert_string_equal(c.services[0].name, "web");
	conf_release(&c);

	/* 63 characters: longer than inih's 49, and not cut. */
	name = repeat('h', 63);
	text = cat(APP "[host \"", name, "\"]\naddress = h\n");
	load_ok(&c, text);
	assert_string_equal(c.hosts[0].name, name);
	conf_release(&c);
	free(text);
	free(name);

	name = repeat('h', 64);
	text = cat(APP "[host \"", name, "\"]\naddress = h\n");
	load_err(
	    text,
	    "relflip.ini:3: [host "
	    "\"hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh"
	    "hhhhhhhhhhhhhhhhhhh\"]: 'hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh"
	    "hhhhhhhhhhhhhhhhhhhhhhhh' is not a host name (1-63 characters "
	    "of A-Z a-z 0-9 . _ -)");
	free(text);
	free(name);
}

static void
test_section_errors(void **state)
{
	char *name, *text;

	(void)state;
	load_err(MINIMAL "[aap]\n",
		 "relflip.ini:5: [aap]: unknown section (valid: [app], "
		 "[deploy], [ssh], [host \"NAME\"], [hooks], [service "
		 "\"NAME\"], [health], [artifact], [notify])");
	load_err(MINIMAL "[app \"x\"]\n",
		 "relflip.ini:5: [app \"x\"]: unknown section (valid: [app], "
		 "[deploy], [ssh], [host \"NAME\"], [hooks], [service "
		 "\"NAME\"], [health], [artifact], [notify])");
	load_err(MINIMAL "[App]\n",
		 "relflip.ini:5: [App]: unknown section (valid: [app], "
		 "[deploy], [ssh], [host \"NAME\"], [hooks], [service "
		 "\"NAME\"], [health], [artifact], [notify])");
	/* A long name is shown whole, not cut to inih's 49 characters. */
	name = repeat('s', 60);
	text = cat(MINIMAL "[", name, "]\n");
	load_err(
	    text,
	    "relflip.ini:5: [ssssssssssssssssssssssssssssssssssssssssssssss"
	    "ssssssssssssss]: unknown section (valid: [app], [deploy], "
	    "[ssh], [host \"NAME\"], [hooks], [service \"NAME\"], [health], "
	    "[artifact], [notify])");
	free(text);
	free(name);

	load_err(MINIMAL "[host]\n",
		 "relflip.ini:5: [host]: needs a name in double quotes (e.g. "
		 "[host \"web1\"])");
	load_err(MINIMAL "[host web2]\n",
		 "relflip.ini:5: [host web2]: needs a name in double quotes "
		 "(e.g. [host \"web1\"])");
	load_err(
	    MINIMAL "[service 'web']\n",
	    "relflip.ini:5: [service 'web']: needs a name in double quotes "
	    "(e.g. [service \"web\"])");
	load_err(MINIMAL "[host \"web2\" x]\n",
		 "relflip.ini:5: [host \"web2\" x]: needs a name in double "
		 "quotes (e.g. [host \"web1\"])");
	load_err(MINIMAL "[host \"\"]\n",
		 "relflip.ini:5: [host \"\"]: '' is not a host name (1-63 "
		 "characters of A-Z a-z 0-9 . _ -)");
	load_err(MINIMAL "[service \"my web\"]\n",
		 "relflip.ini:5: [service \"my web\"]: 'my web' is not a "
		 "service name (1-63 characters of A-Z a-z 0-9 . _ -)");
	load_err(MINIMAL "[app\n",
		 "relflip.ini:5: '[app' has no closing ']' (a section header "
		 "such as [app] or [host \"web1\"])");
	load_err(MINIMAL "[deploy] batch = 2\n",
		 "relflip.ini:5: '[deploy] batch = 2' has text after the "
		 "section header (only a comment may follow the ']')");
}

static void
test_duplicate_sections(void **state)
{
	(void)state;
	load_err(MINIMAL "[host \"web2\"]\naddress = b\n[host \"web1\"]\n",
		 "relflip.ini:7: [host \"web1\"]: repeated section (first at "
		 "line 3; each host needs its own name)");
	load_err(MINIMAL "[service \"w\"]\nrestart = r\n[service \"w\"]\n",
		 "relflip.ini:7: [service \"w\"]: repeated section (first at "
		 "line 5; each service needs its own name)");
	load_err(MINIMAL "[app]\n",
		 "relflip.ini:5: [app]: repeated section (first at line 1; put "
		 "all its keys in one [app] section)");
	load_err(MINIMAL "[health]\nurl = http://x/\n[deploy]\n[health]\n",
		 "relflip.ini:8: [health]: repeated section (first at line 5; "
		 "put all its keys in one [health] section)");
}

/* Keys */

static void
test_key_errors(void **state)
{
	(void)state;
	load_err(
	    MINIMAL "[ssh]\nprot = 22\n",
	    "relflip.ini:6: [ssh] prot: unknown key (valid: user, port, "
	    "identity, identity_env, known_hosts, connect_timeout, config, "
	    "proxy_jump)");
	load_err(APP "[host \"web1\"]\naddress = a\nuser = bob\n",
		 "relflip.ini:5: [host \"web1\"] user: unknown key (valid: "
		 "address, port, roles, proxy_jump)");
	load_err("[app]\npath = /a\nPath = /b\n" HOST1,
		 "relflip.ini:3: [app] Path: unknown key (valid: path, "
		 "allowed_refs, shared_dirs, shared_files)");
	load_err(MINIMAL "[ssh]\nport = 22\nuser = a\nport = 23\n",
		 "relflip.ini:8: [ssh] port: set twice (first at line 6; set "
		 "each key once)");
	load_err(APP "[host \"web1\"]\naddress = a\naddress = b\n",
		 "relflip.ini:5: [host \"web1\"] address: set twice (first at "
		 "line 4; set each key once)");
	/* The same key in two hosts is fine; in one host twice is not. */
	load_err(APP HOST1 "[host \"web2\"]\naddress = b\nport = 1\nport = 2\n",
		 "relflip.ini:8: [host \"web2\"] port: set twice (first at "
		 "line 7; set each key once)");
	load_err("path = /srv/app\n" MINIMAL,
		 "relflip.ini:1: path: outside any section (keys go under a "
		 "section header such as [app])");
	load_err(
	    MINIMAL "[deploy]\n= 3\n",
	    "relflip.ini:6: [deploy]: a value without a key (key = value)");
	load_err(MINIMAL "[deploy]\nbatch\n",
		 "relflip.ini:6: 'batch' is not a setting (key = value, a "
		 "[section] header, or a comment starting with ; or #)");
	/* The first error wins, even when inih found it. */
	load_err(MINIMAL "[deploy]\nbatch\n[nope]\n",
		 "relflip.ini:6: 'batch' is not a setting (key = value, a "
		 "[section] header, or a comment starting with ; or #)");
}

static void
test_ports(void **state)
{
	struct conf c;

	(void)state;
	load_err(MINIMAL "[ssh]\nport = 0\n",
		 "relflip.ini:6: [ssh] port: '0' is not a port (1-65535)");
	load_err(MINIMAL "[ssh]\nport = 70000\n",
		 "relflip.ini:6: [ssh] port: '70000' is not a port (1-65535)");
	load_err(MINIMAL "[ssh]\nport = abc\n",
		 "relflip.ini:6: [ssh] port: 'abc' is not a port (1-65535)");
	load_err(MINIMAL "[ssh]\nport = 22x\n",
		 "relflip.ini:6: [ssh] port: '22x' is not a port (1-65535)");
	load_err(MINIMAL "[ssh]\nport = -22\n",
		 "relflip.ini:6: [ssh] port: '-22' is not a port (1-65535)");
	load_err(MINIMAL "[ssh]\nport =\n",
		 "relflip.ini:6: [ssh] port: '' is not a port (1-65535)");
	load_err(MINIMAL "[ssh]\nport = 99999999999999999999999\n",
		 "relflip.ini:6: [ssh] port: '99999999999999999999999' is not "
		 "a port (1-65535)");
	load_err(APP "[host \"web1\"]\naddress = a\nport = 65536\n",
		 "relflip.ini:5: [host \"web1\"] port: '65536' is not a port "
		 "(1-65535)");
	load_ok(&c, APP "[ssh]\nport = 65535\n[host \"a\"]\naddress = a\n"
			"port = 1\n[host \"b\"]\naddress = b\n");
	assert_int_equal(c.hosts[0].port, 1);
	assert_int_equal(c.hosts[1].port, 65535);
	conf_release(&c);
}

static void
test_app_path(void **state)
{
	struct conf c;

	(void)state;
	load_ok(&c, "[app]\npath = /srv/my app///\n" HOST1);
	assert_string_equal(c.app_path, "/srv/my app");
	conf_release(&c);
	load_err("[app]\npath = srv/app\n" HOST1,
		 "relflip.ini:2: [app] path: 'srv/app' is not an absolute path "
		 "(the app's directory on the servers, e.g. /var/www/app)");
	load_err("[app]\npath = ~/app\n" HOST1,
		 "relflip.ini:2: [app] path: '~/app' is not an absolute path "
		 "(the app's directory on the servers, e.g. /var/www/app)");
	load_err("[app]\npath = /\n" HOST1,
		 "relflip.ini:2: [app] path: '/' is the root directory (the "
		 "app's directory on the servers, e.g. /var/www/app)");
	load_err("[app]\npath = ///\n" HOST1,
		 "relflip.ini:2: [app] path: '///' is the root directory (the "
		 "app's directory on the servers, e.g. /var/www/app)");
	load_err("[app]\npath = /srv/../etc\n" HOST1,
		 "relflip.ini:2: [app] path: '/srv/../etc' has a . or .. part "
		 "(the app's directory on the servers, e.g. /var/www/app)");
	load_err("[app]\npath =\n" HOST1,
		 "relflip.ini:2: [app] path: '' is not an absolute path (the "
		 "app's directory on the servers, e.g. /var/www/app)");
}

/* Quotes are kept as written: a value in quotes says to remove them. */
static void
test_quoted_values(void **state)
{
	struct conf c;

	(void)state;
	load_err("[app]\npath = \"/var/www/app\"\n" HOST1,
		 "relflip.ini:2: [app] path: '\"/var/www/app\"' is in quotes, "
		 "which are kept as written: remove them (the app's directory "
		 "on the servers, e.g. /var/www/app)");
	load_err(MINIMAL "[ssh]\nport = '22'\n",
		 "relflip.ini:6: [ssh] port: ''22'' is in quotes, which are "
		 "kept as written: remove them (1-65535)");
	load_err("[app]\npath = /a\nshared_dirs = \"uploads log\"\n" HOST1,
		 "relflip.ini:3: [app] shared_dirs: '\"uploads log\"' is in "
		 "quotes, which are kept as written: remove them (relative "
		 "paths separated by spaces, without .., e.g. uploads "
		 "storage/logs)");
	load_err(
	    MINIMAL "[ssh]\nidentity = \"${RF_T_UNSET:-~/id}\"\n",
	    "relflip.ini:6: [ssh] identity: '\"${RF_T_UNSET:-~/id}\"' is in "
	    "quotes, which are kept as written: remove them (a private "
	    "key file, e.g. ~/.ssh/id_ed25519)");
	/* An unbalanced quote is just a wrong value. */
	load_err("[app]\npath = \"/a\n" HOST1,
		 "relflip.ini:2: [app] path: '\"/a' is not an absolute path "
		 "(the app's directory on the servers, e.g. /var/www/app)");
	/* Commands are the shell's: quotes there are fine. */
	load_ok(&c, MINIMAL "[hooks]\ninstall = \"./setup\"\n"
			    "[service \"web\"]\nrestart = 'sv restart web'\n");
	assert_string_equal(c.hook_install, "\"./setup\"");
	assert_string_equal(c.services[0].restart, "'sv restart web'");
	conf_release(&c);
}

static void
test_shared_paths(void **state)
{
	(void)state;
	load_err(
	    "[app]\npath = /a\nshared_dirs = uploads /etc\n" HOST1,
	    "relflip.ini:3: [app] shared_dirs: '/etc' is not a path inside "
	    "the app (relative paths separated by spaces, without .., e.g. "
	    "uploads storage/logs)");
	load_err("[app]\npath = /a\nshared_files = ../.env\n" HOST1,
		 "relflip.ini:3: [app] shared_files: '../.env' is not a path "
		 "inside the app (relative paths separated by spaces, without "
		 ".., e.g. .env config/secrets.yml)");
}

static void
test_missing_required(void **state)
{
	(void)state;
	load_err(HOST1, "relflip.ini: [app] path: missing (the app's directory "
			"on the servers, e.g. /var/www/app)");
	load_err("[app]\nshared_dirs = x\n" HOST1,
		 "relflip.ini:1: [app] path: missing (the app's directory on "
		 "the servers, e.g. /var/www/app)");
	load_err("", "relflip.ini: [app] path: missing (the app's directory on "
		     "the servers, e.g. /var/www/app)");
	load_err(APP, "relflip.ini: [host \"NAME\"]: missing (at least one "
		      "server, e.g. [host \"web1\"] with address = "
		      "203.0.113.10)");
	load_err(APP "[host \"web1\"]\nport = 22\n",
		 "relflip.ini:3: [host \"web1\"] address: missing (the server "
		 "to connect to, e.g. 203.0.113.10 or web1.example.com)");
	load_err(APP HOST1 "[host \"web2\"]\n",
		 "relflip.ini:5: [host \"web2\"] address: missing (the server "
		 "to connect to, e.g. 203.0.113.10 or web1.example.com)");
}

static void
test_addresses(void **state)
{
	(void)state;
	load_err(APP "[host \"web1\"]\naddress = deploy@10.0.0.1\n",
		 "relflip.ini:4: [host \"web1\"] address: 'deploy@10.0.0.1' "
		 "includes a user name: set it in [ssh] user (the server to "
		 "connect to, e.g. 203.0.113.10 or web1.example.com)");
	load_err(APP "[host \"web1\"]\naddress = 10.0.0.1:2222\n",
		 "relflip.ini:4: [host \"web1\"] address: '10.0.0.1:2222' "
		 "includes a port: set it with port = (the server to connect "
		 "to, e.g. 203.0.113.10 or web1.example.com)");
	load_err(APP "[host \"web1\"]\naddress = a b\n",
		 "relflip.ini:4: [host \"web1\"] address: 'a b' is not a host "
		 "name or IP address (the server to connect to, e.g. "
		 "203.0.113.10 or web1.example.com)");
}

static void
test_durations_parse(void **state)
{
	const char *why = NULL;
	double d = -1;

	(void)state;
	assert_int_equal(conf_parse_duration("0.2", &d, &why), 0);
	assert_float_equal(d, 0.2, 1e-9);
	assert_int_equal(conf_parse_duration("200ms", &d, &why), 0);
	assert_float_equal(d, 0.2, 1e-9);
	assert_int_equal(conf_parse_duration("30s", &d, &why), 0);
	assert_float_equal(d, 30, 1e-9);
	assert_int_equal(conf_parse_duration("30", &d, &why), 0);
	assert_float_equal(d, 30, 1e-9);
	assert_int_equal(conf_parse_duration("5m", &d, &why), 0);
	assert_float_equal(d, 300, 1e-9);
	assert_int_equal(conf_parse_duration("1.5h", &d, &why), 0);
	assert_float_equal(d, 5400, 1e-9);
	assert_int_equal(conf_parse_duration("0", &d, &why), 0);
	assert_float_equal(d, 0, 1e-9);
	assert_int_equal(conf_parse_duration("168h", &d, &why), 0);

	assert_int_equal(conf_parse_duration("abc", &d, &why), -1);
	assert_string_equal(why, "is not a duration");
	assert_int_equal(conf_parse_duration("-5", &d, &why), -1);
	assert_string_equal(why, "is negative");
	assert_int_equal(conf_parse_duration("-0.5s", &d, &why), -1);
	assert_string_equal(why, "is negative");
	assert_int_equal(conf_parse_duration("169h", &d, &why), -1);
	assert_string_equal(why, "is longer than 7 days");
	assert_int_equal(
	    conf_parse_duration("99999999999999999999999999999999999999999", &d,
				&why),
	    -1);
	assert_string_equal(why, "is longer than 7 days");
	assert_int_equal(conf_parse_duration("", &d, &why), -1);
	assert_string_equal(why, "is not a duration");
	assert_int_equal(conf_parse_duration("5 s", &d, &why), -1);
	assert_int_equal(conf_parse_duration("5d", &d, &why), -1);
	assert_int_equal(conf_parse_duration(".5", &d, &why), -1);
	assert_int_equal(conf_parse_duration("5.", &d, &why), -1);
	assert_int_equal(conf_parse_duration("1e3", &d, &why), -1);
	assert_int_equal(conf_parse_duration("inf", &d, &why), -1);
	assert_int_equal(conf_parse_duration("0x10", &d, &why), -1);
	assert_int_equal(conf_parse_duration("ms", &d, &why), -1);
	assert_string_equal(why, "is not a duration");
}

static void
test_durations_in_config(void **state)
{
	(void)state;
	load_err(
	    MINIMAL "[deploy]\nhook_timeout = abc\n",
	    "relflip.ini:6: [deploy] hook_timeout: 'abc' is not a duration "
	    "(seconds, e.g. 30 or 0.2, or with a unit: 200ms, 30s, 5m, "
	    "1h)");
	load_err(
	    MINIMAL "[deploy]\nlock_wait = -1\n",
	    "relflip.ini:6: [deploy] lock_wait: '-1' is negative (seconds, "
	    "e.g. 30 or 0.2, or with a unit: 200ms, 30s, 5m, 1h)");
	load_err(
	    MINIMAL "[ssh]\nconnect_timeout = 0\n",
	    "relflip.ini:6: [ssh] connect_timeout: '0' must be more than 0 "
	    "(seconds, e.g. 30 or 0.2, or with a unit: 200ms, 30s, 5m, "
	    "1h)");
	load_err(MINIMAL "[health]\nurl = http://h/\ntimeout = 0ms\n",
		 "relflip.ini:7: [health] timeout: '0ms' must be more than 0 "
		 "(seconds, e.g. 30 or 0.2, or with a unit: 200ms, 30s, 5m, "
		 "1h)");
	load_err(MINIMAL "[health]\nurl = http://h/\ninterval = 1d\n",
		 "relflip.ini:7: [health] interval: '1d' is not a duration "
		 "(seconds, e.g. 30 or 0.2, or with a unit: 200ms, 30s, 5m, "
		 "1h)");
}

static void
test_ints_and_bools(void **state)
{
	const char *why = NULL;
	long n = 0;
	int b = -1;

	(void)state;
	assert_int_equal(conf_parse_int("42", 0, 100, &n, &why), 0);
	assert_int_equal(n, 42);
	assert_int_equal(conf_parse_int("-3", -5, 5, &n, &why), 0);
	assert_int_equal(n, -3);
	assert_int_equal(conf_parse_int("101", 0, 100, &n, &why), -1);
	assert_string_equal(why, "is out of range");
	assert_int_equal(conf_parse_int(" 1", 0, 100, &n, &why), -1);
	assert_string_equal(why, "is not a number");
	assert_int_equal(conf_parse_int("+1", 0, 100, &n, &why), -1);
	assert_int_equal(conf_parse_int("0x1", 0, 100, &n, &why), -1);
	assert_int_equal(conf_parse_int("", 0, 100, &n, &why), -1);

	assert_int_equal(conf_parse_bool("yes", &b, &why), 0);
	assert_int_equal(b, 1);
	assert_int_equal(conf_parse_bool("off", &b, &why), 0);
	assert_int_equal(b, 0);
	assert_int_equal(conf_parse_bool("TRUE", &b, &why), 0);
	assert_int_equal(b, 1);
	assert_int_equal(conf_parse_bool("0", &b, &why), 0);
	assert_int_equal(b, 0);
	assert_int_equal(conf_parse_bool("y", &b, &why), -1);
	assert_string_equal(why, "is not a boolean");

	load_err(MINIMAL "[deploy]\nkeep_releases = 0\n",
		 "relflip.ini:6: [deploy] keep_releases: '0' is out of range "
		 "(1-1000)");
	load_err(MINIMAL "[deploy]\nkeep_failed = -1\n",
		 "relflip.ini:6: [deploy] keep_failed: '-1' is out of range "
		 "(0-1000)");
	load_err(MINIMAL "[deploy]\nmax_parallel = 1025\n",
		 "relflip.ini:6: [deploy] max_parallel: '1025' is out of range "
		 "(1-1024)");
	load_err(MINIMAL "[deploy]\nmax_parallel = many\n",
		 "relflip.ini:6: [deploy] max_parallel: 'many' is not a number "
		 "(1-1024)");
	load_err(MINIMAL "[health]\nurl = http://h/\nretries = 1001\n",
		 "relflip.ini:7: [health] retries: '1001' is out of range "
		 "(0-1000)");
	load_err(MINIMAL "[health]\nurl = http://h/\nexpect_status = 99\n",
		 "relflip.ini:7: [health] expect_status: '99' is not an HTTP "
		 "status (100-599)");
	load_err(MINIMAL "[health]\nurl = http://h/\nexpect_status = 600\n",
		 "relflip.ini:7: [health] expect_status: '600' is not an HTTP "
		 "status (100-599)");
	load_err(MINIMAL "[health]\nurl = http://h/\nexpect_revision = maybe\n",
		 "relflip.ini:7: [health] expect_revision: 'maybe' is not a "
		 "boolean (yes or no; true/false, on/off and 1/0 work too)");
}

static void
test_batch(void **state)
{
	static const char *const bad[] = { "0%", "101%", "x",   "0",
					   "-1", "%",    "5 %", "2.5" };
	struct conf c;
	char text[256], want[512];
	size_t i;

	(void)state;
	load_ok(&c, MINIMAL "[deploy]\nbatch = 3\n");
	assert_int_equal(c.batch, 3);
	assert_int_equal(c.batch_percent, 0);
	conf_release(&c);
	load_ok(&c, MINIMAL "[deploy]\nbatch = 25%\n");
	assert_int_equal(c.batch, 25);
	assert_int_equal(c.batch_percent, 1);
	conf_release(&c);
	load_ok(&c, MINIMAL "[deploy]\nbatch = 100%\n");
	assert_int_equal(c.batch, 100);
	assert_int_equal(c.batch_percent, 1);
	conf_release(&c);
	load_ok(&c, MINIMAL "[deploy]\nbatch = 1%\n");
	assert_int_equal(c.batch, 1);
	conf_release(&c);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), MINIMAL "[deploy]\nbatch = %s\n",
			 bad[i]);
		snprintf(want, sizeof(want),
			 "relflip.ini:6: [deploy] batch: '%s' is not a batch "
			 "size (a number of hosts, 1 or more, or a percentage "
			 "of them, 1%%-100%%)",
			 bad[i]);
		load_err(text, want);
	}
}

static void
test_roles(void **state)
{
	struct conf c;
	char *role, *text;

	(void)state;
	role = repeat('r', 32);
	text = cat(APP HOST1 "roles = web 0db a_b-c ", role, "\n");
	load_ok(&c, text);
	assert_int_equal(c.hosts[0].roles.n, 4);
	assert_string_equal(c.hosts[0].roles.v[1], "0db");
	assert_true(conf_host_has_role(&c.hosts[0], role));
	conf_release(&c);
	free(text);
	free(role);

	role = repeat('r', 33);
	text = cat(APP HOST1 "roles = web ", role, "\n");
	load_err(text, "relflip.ini:5: [host \"web1\"] roles: "
		       "'rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr' is not a role name "
		       "(words of a-z 0-9 _ -, each up to 32 long and starting "
		       "with a letter or digit, e.g. web worker primary)");
	free(text);
	free(role);
	load_err(APP HOST1 "roles = Web\n",
		 "relflip.ini:5: [host \"web1\"] roles: 'Web' is not a role "
		 "name (words of a-z 0-9 _ -, each up to 32 long and starting "
		 "with a letter or digit, e.g. web worker primary)");
	load_err(APP HOST1 "roles = -web\n",
		 "relflip.ini:5: [host \"web1\"] roles: '-web' is not a role "
		 "name (words of a-z 0-9 _ -, each up to 32 long and starting "
		 "with a letter or digit, e.g. web worker primary)");
	load_err(APP HOST1 "roles = web,worker\n",
		 "relflip.ini:5: [host \"web1\"] roles: 'web,worker' is not a "
		 "role name (words of a-z 0-9 _ -, each up to 32 long and "
		 "starting with a letter or digit, e.g. web worker primary)");
}

static void
test_primary(void **state)
{
	struct conf c;

	(void)state;
	/* A single host is primary, with or without the role. */
	load_ok(&c, APP HOST1 "roles = web\n[hooks]\nmigrate = ./m\n");
	assert_int_equal(c.hosts[0].primary, 1);
	assert_false(conf_host_has_role(&c.hosts[0], "primary"));
	conf_release(&c);

	load_ok(&c, APP HOST1 "[host \"web2\"]\naddress = b\n"
			      "roles = web primary\n[hooks]\nmigrate = ./m\n");
	assert_int_equal(c.hosts[0].primary, 0);
	assert_int_equal(c.hosts[1].primary, 1);
	conf_release(&c);

	/* Several hosts, no migrate hook: no primary is needed. */
	load_ok(&c, APP HOST1 "[host \"web2\"]\naddress = b\n");
	assert_int_equal(c.hosts[0].primary, 0);
	assert_int_equal(c.hosts[1].primary, 0);
	conf_release(&c);

	load_err(APP HOST1 "[host \"web2\"]\naddress = b\n"
			   "[hooks]\nmigrate = ./m\n",
		 "relflip.ini:8: [hooks] migrate: no host is primary (give one "
		 "[host] roles = primary: the migration runs once, there)");
	load_err(APP HOST1 "roles = primary\n[host \"web2\"]\naddress = b\n"
			   "roles = web primary\n",
		 "relflip.ini:8: [host \"web2\"] roles: 'primary' is also a "
		 "role of web1 (one host at most is primary: it runs the "
		 "migrate hook)");
}

static void
test_services(void **state)
{
	struct conf c;

	(void)state;
	load_err(MINIMAL "[service \"web\"]\nroles = web\n",
		 "relflip.ini:5: [service \"web\"] restart: missing (a shell "
		 "command, e.g. sudo systemctl restart app)");
	load_err(
	    MINIMAL "[service \"web\"]\nrestart =\n",
	    "relflip.ini:6: [service \"web\"] restart: '' is empty (a shell "
	    "command, e.g. sudo systemctl restart app)");
	load_err(MINIMAL "[service \"web\"]\nroles = web\nrestart = r\n",
		 "relflip.ini:6: [service \"web\"] roles: no host has the role "
		 "'web' (a role given in a [host] roles line)");
	load_ok(&c,
		MINIMAL "roles = worker\n[service \"web\"]\nrestart = r\n"
			"[service \"worker\"]\nroles = worker\nrestart = w\n");
	assert_int_equal(c.nservices, 2);
	assert_true(conf_service_on_host(&c.services[0], &c.hosts[0]));
	assert_true(conf_service_on_host(&c.services[1], &c.hosts[0]));
	conf_release(&c);
}

static void
test_health(void **state)
{
	struct conf c;

	(void)state;
	load_err(
	    MINIMAL "[health]\nexpect_status = 200\n",
	    "relflip.ini:5: [health] url: missing (a [health] section needs "
	    "url, public_url or both, e.g. url = "
	    "http://127.0.0.1:8000/health)");
	load_err(
	    MINIMAL "[health]\n",
	    "relflip.ini:5: [health] url: missing (a [health] section needs "
	    "url, public_url or both, e.g. url = "
	    "http://127.0.0.1:8000/health)");
	load_err(
	    MINIMAL "[health]\nurl = 127.0.0.1:8000/health\n",
	    "relflip.ini:6: [health] url: '127.0.0.1:8000/health' is not an "
	    "http:// or https:// URL (fetched on each server, e.g. "
	    "http://127.0.0.1:8000/health)");
	load_err(MINIMAL "[health]\npublic_url = ftp://example.com/\n",
		 "relflip.ini:6: [health] public_url: 'ftp://example.com/' is "
		 "not an http:// or https:// URL (fetched from where relflip "
		 "runs, e.g. https://example.com/health)");
	load_err(MINIMAL "[health]\nurl = http:///health\n",
		 "relflip.ini:6: [health] url: 'http:///health' has no host "
		 "(fetched on each server, e.g. http://127.0.0.1:8000/health)");

	load_ok(&c, MINIMAL "[health]\npublic_url = HTTPS://example.com/up\n");
	assert_int_equal(c.has_health, 1);
	assert_null(c.health_url);
	assert_string_equal(c.public_url, "HTTPS://example.com/up");
	conf_release(&c);
}

static void
test_ssh_keys(void **state)
{
	struct conf c;

	(void)state;
	load_err(MINIMAL "[ssh]\nidentity = ~/.ssh/id\nidentity_env = KEY\n",
		 "relflip.ini:7: [ssh] identity_env: cannot be set with "
		 "identity (one way to the key: identity = a key file, or "
		 "identity_env = the variable holding the key text)");
	load_err(MINIMAL "[ssh]\nidentity_env = KEY\nidentity = /k\n",
		 "relflip.ini:7: [ssh] identity: cannot be set with "
		 "identity_env (one way to the key: identity = a key file, or "
		 "identity_env = the variable holding the key text)");
	load_err(MINIMAL "[ssh]\nidentity_env = $SSH_KEY\n",
		 "relflip.ini:6: [ssh] identity_env: '$SSH_KEY' is not a "
		 "variable name (the name of the variable holding the key "
		 "text, e.g. SSH_PRIVATE_KEY, without ${})");
	load_err(MINIMAL "[ssh]\nknown_hosts =\n",
		 "relflip.ini:6: [ssh] known_hosts: '' is empty (a known_hosts "
		 "file, e.g. ~/.ssh/known_hosts)");
	load_err(MINIMAL "[ssh]\nuser = deploy user\n",
		 "relflip.ini:6: [ssh] user: 'deploy user' is not a login name "
		 "(the login user on the servers, e.g. deploy)");

	/* An empty identity (a CI variable left out) is no identity. */
	load_ok(&c, MINIMAL "[ssh]\nidentity = ${RF_T_UNSET:-}\n"
			    "identity_env = SSH_PRIVATE_KEY\n");
	assert_null(c.identity);
	assert_string_equal(c.identity_env, "SSH_PRIVATE_KEY");
	conf_release(&c);

	load_ok(&c, MINIMAL "[ssh]\nidentity = keys/id\n"
			    "known_hosts = ~/kh\n");
	assert_string_equal(c.identity, "keys/id");
	assert_string_equal(c.known_hosts, "/home/tester/kh");
	conf_release(&c);
}

/* Added for 0.2: more hooks, [artifact], [notify] */

static void
test_new_keys(void **state)
{
	struct conf c;

	(void)state;
	load_ok(&c, MINIMAL);
	assert_null(c.hook_before_switch);
	assert_null(c.hook_after_switch);
	assert_null(c.hook_after_deploy);
	assert_null(c.hook_on_failure);
	assert_null(c.artifact_url);
	assert_null(c.artifact_header_env);
	assert_null(c.notify_url);
	assert_int_equal(c.notify_on, NOTIFY_ALWAYS);
	conf_release(&c);

	setenv("RF_T_A", "builds", 1);
	setenv("RELFLIP_RELEASE", "not-this", 1);
	load_ok(&c,
		MINIMAL "[hooks]\nbefore_switch = ./warm-cache\n"
			"after_switch = ./purge-cdn\n"
			"after_deploy = ./tell-sentry\n"
			"on_failure = ./page-oncall\n"
			"[artifact]\nurl = https://ci.example.com/${RF_T_A}/"
			"app-${RELFLIP_RELEASE}.tar.gz\n"
			"header_env = ARTIFACT_AUTH\n"
			"[notify]\nurl = https://hooks.example.com/x\n"
			"on = failure\n");
	unsetenv("RELFLIP_RELEASE");
	assert_string_equal(c.hook_before_switch, "./warm-cache");
	assert_string_equal(c.hook_after_switch, "./purge-cdn");
	assert_string_equal(c.hook_after_deploy, "./tell-sentry");
	assert_string_equal(c.hook_on_failure, "./page-oncall");
	/* ${RELFLIP_RELEASE} is for later, whatever the environment says. */
	assert_string_equal(
	    c.artifact_url,
	    "https://ci.example.com/builds/app-${RELFLIP_RELEASE}.tar.gz");
	assert_string_equal(c.artifact_header_env, "ARTIFACT_AUTH");
	assert_string_equal(c.notify_url, "https://hooks.example.com/x");
	assert_int_equal(c.notify_on, NOTIFY_FAILURE);
	conf_release(&c);

	load_ok(&c, MINIMAL "[notify]\nurl = http://h/\non = always\n"
			    "[artifact]\nurl = http://h/a.tgz\n");
	assert_int_equal(c.notify_on, NOTIFY_ALWAYS);
	assert_string_equal(c.artifact_url, "http://h/a.tgz");
	conf_release(&c);
}

static void
test_new_keys_errors(void **state)
{
	(void)state;
	load_err(MINIMAL "[artifact]\nheader_env = TOKEN\n",
		 "relflip.ini:5: [artifact] url: missing (an [artifact] "
		 "section needs url: where the servers download the artifact, "
		 "${RELFLIP_RELEASE} standing for the release id, e.g. "
		 "https://ci.example.com/app-${RELFLIP_RELEASE}.tar.gz)");
	load_err(MINIMAL "[artifact]\nurl = ftp://h/a.tgz\n",
		 "relflip.ini:6: [artifact] url: 'ftp://h/a.tgz' is not an "
		 "http:// or https:// URL (where the servers download the "
		 "artifact, ${RELFLIP_RELEASE} standing for the release id, "
		 "e.g. https://ci.example.com/app-${RELFLIP_RELEASE}.tar.gz)");
	load_err(
	    MINIMAL "[artifact]\nurl = http://h/${RELFLIP_RELEASE:-x}\n",
	    "relflip.ini:6: [artifact] url: '${RELFLIP_RELEASE:-x}' gives "
	    "a default to ${RELFLIP_RELEASE} (the release id, filled in at "
	    "deploy time: write it as ${RELFLIP_RELEASE})");
	/* Elsewhere RELFLIP_RELEASE is a variable like any other. */
	load_err(MINIMAL "[hooks]\nafter_switch = echo ${RELFLIP_RELEASE}\n",
		 "relflip.ini:6: [hooks] after_switch: ${RELFLIP_RELEASE} is "
		 "not set (set it in the environment, or give a default: "
		 "${RELFLIP_RELEASE:-value}; $$ is a literal $)");
	load_err(
	    MINIMAL "[artifact]\nurl = http://h/\nheader_env = ${X}\n",
	    "relflip.ini:7: [artifact] header_env: ${X} is not set (set it "
	    "in the environment, or give a default: ${X:-value}; $$ is a "
	    "literal $)");
	load_err(
	    MINIMAL "[artifact]\nurl = http://h/\nheader_env = A-B\n",
	    "relflip.ini:7: [artifact] header_env: 'A-B' is not a variable "
	    "name (the variable holding an HTTP header for the download, "
	    "e.g. ARTIFACT_AUTH, without ${})");
	load_err(MINIMAL "[artifact]\nsha256 = x\n",
		 "relflip.ini:6: [artifact] sha256: unknown key (valid: url, "
		 "header_env)");
	load_err(MINIMAL "[notify]\non = failure\n",
		 "relflip.ini:5: [notify] url: missing (a [notify] section "
		 "needs url: a webhook relflip POSTs the result to, e.g. "
		 "https://hooks.example.com/deploys)");
	load_err(MINIMAL "[notify]\nurl = http://h/\non = sometimes\n",
		 "relflip.ini:7: [notify] on: 'sometimes' is not failure or "
		 "always (failure: when a deploy or rollback fails; always: "
		 "after each one)");
	load_err(
	    MINIMAL "[notify]\nurl = http://h/\non = Always\n",
	    "relflip.ini:7: [notify] on: 'Always' is not failure or always "
	    "(failure: when a deploy or rollback fails; always: after "
	    "each one)");
	/* The URL may hold the webhook's token: never echoed. */
	load_err(MINIMAL "[notify]\nurl = htp://h/services/T0/B0/tok-4242\n",
		 "relflip.ini:6: [notify] url: the value is not an http:// or "
		 "https:// URL (not shown: a webhook's URL is often its "
		 "credential; a webhook relflip POSTs the result to, e.g. "
		 "https://hooks.example.com/deploys)");
	load_err(MINIMAL "[notify]\nurl = https:///T0/B0/tok-4242\n",
		 "relflip.ini:6: [notify] url: the value has no host (not "
		 "shown: a webhook's URL is often its credential; a webhook "
		 "relflip POSTs the result to, e.g. "
		 "https://hooks.example.com/deploys)");
	load_err(MINIMAL "[notify]\nchannel = x\n",
		 "relflip.ini:6: [notify] channel: unknown key (valid: url, "
		 "on)");
	load_err(MINIMAL "[hooks]\nafter_rollback = x\n",
		 "relflip.ini:6: [hooks] after_rollback: unknown key (valid: "
		 "install, migrate, before_switch, after_switch, after_deploy, "
		 "on_failure)");
}

/* The artifact's header and URLs from the environment are secrets. */
static void
test_new_keys_secrets(void **state)
{
	struct conf c;

	(void)state;
	setenv("ARTIFACT_AUTH", "Authorization: Bearer tok-123456789", 1);
	setenv("RF_T_B", "https://hooks.example.com/T000/B000/XXXX", 1);
	setenv("RF_T_A", "dl-token-98765", 1);
	load_ok(&c, MINIMAL "[artifact]\nurl = https://h/a.tgz?t=${RF_T_A}\n"
			    "header_env = ARTIFACT_AUTH\n"
			    "[notify]\nurl = ${RF_T_B}\n");
	conf_release(&c);
	unsetenv("ARTIFACT_AUTH");
	assert_shown("-H 'Authorization: Bearer tok-123456789'",
		     "-H '[redacted]'\n");
	assert_shown("got Bearer tok-123456789", "got [redacted]\n");
	assert_shown("token tok-123456789", "token [redacted]\n");
	assert_shown("POST https://hooks.example.com/T000/B000/XXXX failed",
		     "POST [redacted] failed\n");
	assert_shown("GET https://h/a.tgz?t=dl-token-98765",
		     "GET https://h/a.tgz?t=[redacted]\n");
}

/* Files */

static void
test_load_file(void **state)
{
	struct conf c;
	struct rf_error err = RF_ERROR_INIT;
	char path[] = "/tmp/test-conf-XXXXXX";
	FILE *f;
	int fd;

	(void)state;
	memset(&c, 0x5a, sizeof(c));
	assert_int_equal(conf_load_file(&c, "/nonexistent/relflip.ini", &err),
			 -1);
	assert_int_equal(err.code, RF_EXIT_USAGE);
	assert_null(err.stage);
	assert_string_equal(err.msg, "cannot read config "
				     "'/nonexistent/relflip.ini': No such file "
				     "or directory");
	assert_string_equal(err.hint, "pass -c FILE or set RELFLIP_CONFIG");
	assert_null(c.file);

	rf_error_clear(&err);
	assert_int_equal(conf_load_file(&c, "/", &err), -1);
	assert_string_equal(err.msg, "cannot read config '/': Is a directory");
	assert_string_equal(err.hint, "");

	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(MINIMAL "[ssh]\nport = 70000\n", f);
	fclose(f);
	rf_error_clear(&err);
	assert_int_equal(conf_load_file(&c, path, &err), -1);
	assert_non_null(strstr(err.msg, ":6: [ssh] port: '70000' is not a "
					"port (1-65535)"));
	assert_memory_equal(err.msg, path, strlen(path));

	f = fopen(path, "w");
	assert_non_null(f);
	fputs(MINIMAL, f);
	fclose(f);
	rf_error_clear(&err);
	assert_int_equal(conf_load_file(&c, path, &err), 0);
	assert_string_equal(c.file, path);
	assert_string_equal(c.hosts[0].address, "10.0.0.1");
	conf_release(&c);

	f = fopen(path, "w");
	assert_non_null(f);
	fwrite(MINIMAL "\0x", 1, sizeof(MINIMAL) + 1, f);
	fclose(f);
	assert_int_equal(conf_load_file(&c, path, &err), -1);
	assert_non_null(strstr(err.msg, "not a text file"));
	unlink(path);
}

/* include = FILE */

static char tmpdir[64];

/* Write text to tmpdir/name (name may hold a directory, made here). */
static void
put(const char *name, const char *text)
{
	char path[PATH_MAX], *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	slash = strrchr(path, '/');
	*slash = '\0';
	mkdir(path, 0700);
	*slash = '/';
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* tmpdir/name, in a static buffer. */
static const char *
at(const char *name)
{
	static char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

static int
setup_dir(void **state)
{
	setup(state);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-conf-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int
teardown_dir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void
load_file_ok(struct conf *c, const char *name)
{
	struct rf_error err = RF_ERROR_INIT;

	if (conf_load_file(c, at(name), &err) != 0)
		fail_msg("unexpected error: %s", err.msg);
}

/* The load of tmpdir/name fails with want, each "%s" in it as tmpdir. */
static void
load_file_err(const char *name, const char *want)
{
	struct rf_error err = RF_ERROR_INIT;
	struct conf c;
	char full[1024];
	size_t n = 0;

	for (; *want != '\0' && n + sizeof(tmpdir) < sizeof(full); want++) {
		if (want[0] == '%' && want[1] == 's') {
			n += (size_t)snprintf(full + n, sizeof(full) - n, "%s",
					      tmpdir);
			want++;
		} else {
			full[n++] = *want;
		}
	}
	full[n] = '\0';
	assert_int_equal(conf_load_file(&c, at(name), &err), -1);
	assert_int_equal(err.code, RF_EXIT_USAGE);
	assert_string_equal(err.msg, full);
	assert_null(c.file);
}

static void
test_include_base_then_override(void **state)
{
	struct conf c;

	(void)state;
	put("base.ini", "[app]\npath = /srv/base\nshared_dirs = a b\n"
			"[deploy]\nkeep_releases = 3\nbatch = 50%\n"
			"[ssh]\nport = 2200\nidentity = keys/id\n"
			"[host \"web1\"]\naddress = 10.0.0.1\nroles = web\n"
			"[hooks]\ninstall = ./install\nmigrate = ./migrate\n");
	put("prod.ini", "; production\ninclude = base.ini\n"
			"[app]\npath = /srv/prod\n"
			"[deploy]\nbatch = 2\n"
			"[ssh]\nport = 2222\n"
			"[host \"web1\"]\naddress = 10.0.0.9\nroles = web "
			"primary\n"
			"[host \"web2\"]\naddress = 10.0.0.2\nroles = web\n"
			"[hooks]\ninstall =\n");
	load_file_ok(&c, "prod.ini");
	assert_string_equal(c.file, at("prod.ini"));
	assert_string_equal(c.app_path, "/srv/prod");
	assert_int_equal(c.shared_dirs.n, 2); /* from the base */
	assert_int_equal(c.keep_releases, 3);
	assert_int_equal(c.batch, 2);
	assert_int_equal(c.batch_percent, 0); /* 50% overridden whole */
	assert_int_equal(c.ssh_port, 2222);
	/* Relative to the file that names it. */
	assert_string_equal(c.identity, at("keys/id"));
	assert_int_equal(c.nhosts, 2);
	assert_string_equal(c.hosts[0].name, "web1");
	assert_string_equal(c.hosts[0].address, "10.0.0.9");
	assert_int_equal(c.hosts[0].roles.n, 2); /* replaced, not added */
	assert_int_equal(c.hosts[0].port, 2222);
	assert_int_equal(c.hosts[0].primary, 1);
	assert_string_equal(c.hosts[1].name, "web2");
	/* An empty value clears what the base set. */
	assert_null(c.hook_install);
	assert_string_equal(c.hook_migrate, "./migrate");
	conf_release(&c);
}

static void
test_include_nested_and_relative(void **state)
{
	struct conf c;

	(void)state;
	setenv("RF_T_A", "common", 1);
	put("common/ssh.ini", "[ssh]\nidentity = keys/deploy\n"
			      "known_hosts = ../kh\n");
	put("common/base.ini", "include = ssh.ini\n[app]\npath = /srv/app\n");
	put("env/prod.ini",
	    "include = ../${RF_T_A}/base.ini\n[host \"web1\"]\naddress = a\n");
	load_file_ok(&c, "env/prod.ini");
	assert_string_equal(c.identity, at("env/../common/keys/deploy"));
	assert_string_equal(c.known_hosts, at("env/../common/../kh"));
	conf_release(&c);

	/* ~/ and absolute paths are taken as they are. */
	put("abs.ini", "[app]\npath = /a\n[ssh]\nidentity = ~/id\n"
		       "known_hosts = /etc/kh\n[host \"w\"]\naddress = a\n");
	load_file_ok(&c, "abs.ini");
	assert_string_equal(c.identity, "/home/tester/id");
	assert_string_equal(c.known_hosts, "/etc/kh");
	conf_release(&c);

	/* A file named with a directory resolves against it, in memory too. */
	load_ok(&c, MINIMAL "[ssh]\nidentity = keys/id\n");
	assert_string_equal(c.identity, "keys/id");
	conf_release(&c);
}

static void
test_include_errors(void **state)
{
	(void)state;
	put("late.ini", MINIMAL "include = base.ini\n");
	load_file_err("late.ini",
		      "%s/late.ini:5: include: after a section header (an "
		      "include goes at the top of the file, before any "
		      "section)");

	put("missing.ini", "include = nope.ini\n" MINIMAL);
	load_file_err("missing.ini",
		      "%s/missing.ini:1: include: cannot read '%s/nope.ini': "
		      "No such file or directory");

	put("empty.ini", "include =\n" MINIMAL);
	load_file_err("empty.ini",
		      "%s/empty.ini:1: include: '' is empty (a config file to "
		      "read first, relative to this one, e.g. include = "
		      "base.ini)");

	put("quoted.ini", "include = \"base.ini\"\n" MINIMAL);
	load_file_err("quoted.ini",
		      "%s/quoted.ini:1: include: '\"base.ini\"' is in quotes, "
		      "which are kept as written: remove them");

	put("unset.ini", "include = ${RF_T_UNSET}.ini\n" MINIMAL);
	load_file_err("unset.ini",
		      "%s/unset.ini:1: include: ${RF_T_UNSET} is not set (set "
		      "it in the environment, or give a default: "
		      "${RF_T_UNSET:-value}; $$ is a literal $)");

	put("self.ini", "include = self.ini\n" MINIMAL);
	load_file_err("self.ini",
		      "%s/self.ini:1: include: '%s/self.ini' is being read "
		      "already (a loop: %s/self.ini includes %s/self.ini)");

	put("a.ini", "include = b.ini\n" MINIMAL);
	put("b.ini", "\ninclude = ./a.ini\n");
	load_file_err("a.ini", "%s/b.ini:2: include: '%s/./a.ini' is being "
			       "read already (a loop: %s/a.ini includes "
			       "%s/b.ini includes %s/./a.ini)");
}

static void
test_include_depth(void **state)
{
	char name[32], text[64];
	int i;

	(void)state;
	for (i = 0; i < 9; i++) {
		snprintf(name, sizeof(name), "f%d.ini", i);
		snprintf(text, sizeof(text), "include = f%d.ini\n", i + 1);
		put(name, text);
	}
	put("f9.ini", MINIMAL);
	load_file_err("f0.ini",
		      "%s/f7.ini:1: include: '%s/f8.ini' is more than 8 files "
		      "deep (includes nest at most 8 deep)");
	/* Eight files, the top one included, are fine. */
	put("f6.ini", "include = f9.ini\n");
	{
		struct conf c;

		load_file_ok(&c, "f0.ini");
		assert_string_equal(c.app_path, "/srv/app");
		conf_release(&c);
	}
}

/* Errors name the file and line where the key is, base or not. */
static void
test_include_errors_name_the_file(void **state)
{
	(void)state;
	put("bad-base.ini", "[app]\npath = /a\n[ssh]\nport = 70000\n");
	put("bad-top.ini", "include = bad-base.ini\n" HOST1);
	load_file_err("bad-top.ini", "%s/bad-base.ini:4: [ssh] port: '70000' "
				     "is not a port (1-65535)");

	/* Twice in one file is an error, in base and top it is not. */
	put("good-base.ini", MINIMAL "[ssh]\nport = 3\n");
	put("twice.ini",
	    "include = good-base.ini\n[ssh]\nport = 1\nport = 2\n");
	load_file_err("twice.ini", "%s/twice.ini:4: [ssh] port: set twice "
				   "(first at line 3; set each key once)");
	put("rep.ini", "include = base2.ini\n[app]\n[app]\n");
	put("base2.ini", MINIMAL);
	load_file_err("rep.ini", "%s/rep.ini:3: [app]: repeated section "
				 "(first at line 2; put all its keys in one "
				 "[app] section)");

	/* Checks over the whole config point at the right file. */
	put("mig-base.ini", APP HOST1 "[host \"web2\"]\naddress = b\n"
				      "[hooks]\nmigrate = ./m\n");
	put("mig.ini", "include = mig-base.ini\n");
	load_file_err("mig.ini", "%s/mig-base.ini:8: [hooks] migrate: no host "
				 "is primary (give one [host] roles = "
				 "primary: the migration runs once, there)");
	put("id-base.ini", MINIMAL "[ssh]\nidentity = ~/id\n");
	put("id.ini", "include = id-base.ini\n[ssh]\nidentity_env = KEY\n");
	load_file_err("id.ini", "%s/id.ini:3: [ssh] identity_env: cannot be "
				"set with identity (one way to the key: "
				"identity = a key file, or identity_env = the "
				"variable holding the key text)");
	/* The way out: clear the base's identity. */
	put("id2.ini", "include = id-base.ini\n[ssh]\nidentity =\n"
		       "identity_env = KEY\n");
	{
		struct conf c;

		load_file_ok(&c, "id2.ini");
		assert_null(c.identity);
		assert_string_equal(c.identity_env, "KEY");
		conf_release(&c);
	}
	put("nohost-base.ini", APP "[host \"web1\"]\nport = 22\n");
	put("nohost.ini", "include = nohost-base.ini\n");
	load_file_err("nohost.ini",
		      "%s/nohost-base.ini:3: [host \"web1\"] "
		      "address: missing (the server to connect to, e.g. "
		      "203.0.113.10 or web1.example.com)");
}

/* A file of config/: __FILE__ is tests/unit/test-conf.c from the top. */
static const char *
path_of(const char *name)
{
	static char path[PATH_MAX];
	const char *slash = strrchr(__FILE__, '/');
	int n = slash != NULL ? (int)(slash - __FILE__) : 0;

	snprintf(path, sizeof(path), "%.*s%s../../config/%s", n, __FILE__,
		 n > 0 ? "/" : "", name);
	if (access(path, R_OK) != 0)
		snprintf(path, sizeof(path), "config/%s", name);
	return path;
}

/* The shipped configs load with the variables CI would give. */
static void
load_shipped(struct conf *c, const char *name)
{
	struct rf_error err = RF_ERROR_INIT;

	if (conf_load_file(c, path_of(name), &err) != 0)
		fail_msg("%s: %s", path_of(name), err.msg);
}

static void
test_shipped_configs(void **state)
{
	struct rf_error err = RF_ERROR_INIT;
	struct conf c;
	size_t i;

	(void)state;
	setenv("DEPLOY_HOST_1", "203.0.113.11", 1);
	setenv("DEPLOY_HOST_2", "203.0.113.12", 1);
	setenv("DEPLOY_HOST_3", "203.0.113.13", 1);
	setenv("STAGING_HOST", "198.51.100.20", 1);

	load_shipped(&c, "example.ini");
	assert_string_equal(c.app_path, "/var/www/app");
	assert_true(c.nhosts >= 1);
	assert_int_equal(c.has_health, 1);
	conf_release(&c);

	load_shipped(&c, "staging.ini");
	assert_int_equal(c.nhosts, 1);
	assert_int_equal(c.hosts[0].primary, 1);
	assert_string_equal(c.hosts[0].address, "198.51.100.20");
	assert_string_equal(c.ssh_user, "deploy");
	assert_string_equal(c.identity_env, "SSH_PRIVATE_KEY");
	assert_string_equal(c.known_hosts, "/home/tester/.ssh/known_hosts");
	assert_int_equal(c.has_health, 1);
	conf_release(&c);

	setenv("DEPLOY_USER", "ci", 1);
	setenv("RELFLIP_KNOWN_HOSTS_FILE", "/run/kh", 1);
	load_shipped(&c, "production.ini");
	assert_true(c.nhosts >= 2 && c.nhosts <= 3);
	assert_string_equal(c.ssh_user, "ci");
	assert_string_equal(c.known_hosts, "/run/kh");
	assert_string_equal(c.identity_env, "SSH_PRIVATE_KEY");
	assert_true(c.batch > 0);
	assert_int_equal(c.expect_revision, 1);
	assert_int_equal(c.nservices, 2);
	for (i = 0; i < c.nservices; i++)
		assert_non_null(
		    strstr(c.services[i].restart, "sudo systemctl restart "));
	assert_string_equal(c.hosts[0].address, "203.0.113.11");
	assert_int_equal(c.hosts[0].primary, 1);
	for (i = 1; i < c.nhosts; i++)
		assert_int_equal(c.hosts[i].primary, 0);
	conf_release(&c);

	/* Without a secret, production says which variable is missing. */
	unsetenv("DEPLOY_HOST_2");
	rf_error_clear(&err);
	assert_int_equal(conf_load_file(&c, path_of("production.ini"), &err),
			 -1);
	assert_non_null(strstr(err.msg, "${DEPLOY_HOST_2} is not set"));
}

#define T(f) cmocka_unit_test_setup(f, setup)
#define TD(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_dir)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_defaults),
		T(test_defaults_read_like_values),
		T(test_user_default_root),
		T(test_every_key),
		T(test_expand_env),
		T(test_interpolation_in_config),
		T(test_interpolation_errors),
		T(test_error_echoes_raw_text),
		T(test_ssh_values_from_env_are_secrets),
		T(test_identity_env_value_is_secret),
		T(test_path_holding_key_text),
		T(test_long_value_loads_intact),
		T(test_long_lines_other),
		T(test_indented_lines),
		T(test_indented_comments_and_blanks),
		T(test_crlf_bom_inline_comments),
		T(test_quoted_sections),
		T(test_section_errors),
		T(test_duplicate_sections),
		T(test_key_errors),
		T(test_ports),
		T(test_app_path),
		T(test_quoted_values),
		T(test_shared_paths),
		T(test_missing_required),
		T(test_addresses),
		T(test_durations_parse),
		T(test_durations_in_config),
		T(test_ints_and_bools),
		T(test_batch),
		T(test_roles),
		T(test_primary),
		T(test_services),
		T(test_health),
		T(test_ssh_keys),
		T(test_new_keys),
		T(test_new_keys_errors),
		T(test_new_keys_secrets),
		T(test_load_file),
		T(test_shipped_configs),
		TD(test_include_base_then_override),
		TD(test_include_nested_and_relative),
		TD(test_include_errors),
		TD(test_include_depth),
		TD(test_include_errors_name_the_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
