/*
 * The config loader (include/conf.h): INI text in, a validated struct conf
 * or a FILE:LINE message out. Besides the sanitizers, it checks what
 * conf.h promises of a config that loaded and of an error.
 */
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "error.h"
#include "fuzz.h"

#define FUZZ_NAME "fuzz.ini"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* Fixed, so that ${VAR} and "~/" expand the same on every machine. */
	setenv("HOME", "/home/fuzz", 1);
	setenv("USER", "fuzz", 1);
	/* What config/production.ini and staging.ini read. */
	setenv("DEPLOY_HOST_1", "192.0.2.1", 1);
	setenv("DEPLOY_HOST_2", "192.0.2.2", 1);
	setenv("DEPLOY_HOST_3", "web3.example.com", 1);
	setenv("STAGING_HOST", "staging.example.com", 1);
	setenv("FUZZ_EMPTY", "", 1);
	unsetenv("FUZZ_UNSET");
	return 0;
}

static void
check_loaded(const struct conf *c)
{
	size_t i, nprimary = 0;

	FUZZ_ASSERT(c->app_path != NULL && c->app_path[0] == '/');
	FUZZ_ASSERT(strcmp(c->app_path, "/") == 0 ||
		    c->app_path[strlen(c->app_path) - 1] != '/');
	FUZZ_ASSERT(c->keep_releases >= 1);
	FUZZ_ASSERT(c->keep_failed >= 0);
	FUZZ_ASSERT(c->max_parallel >= 1);
	FUZZ_ASSERT(c->batch >= 0);
	FUZZ_ASSERT(c->nhosts >= 1);
	for (i = 0; i < c->nhosts; i++) {
		FUZZ_ASSERT(c->hosts[i].name != NULL);
		FUZZ_ASSERT(c->hosts[i].address != NULL &&
			    c->hosts[i].address[0] != '\0');
		FUZZ_ASSERT(c->hosts[i].port >= 1 && c->hosts[i].port <= 65535);
		if (c->hosts[i].primary)
			nprimary++;
	}
	FUZZ_ASSERT(c->nhosts != 1 || nprimary == 1);
	for (i = 0; i < c->nservices; i++) {
		FUZZ_ASSERT(c->services[i].restart != NULL);
		/* Walk the role tables as the fleet does. */
		(void)conf_service_on_host(&c->services[i], &c->hosts[0]);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	struct rf_error err = RF_ERROR_INIT;
	struct conf c;

	if (conf_load_string(&c, text, FUZZ_NAME, &err) == 0) {
		check_loaded(&c);
		conf_release(&c);
	} else {
		/* conf.h: RF_EXIT_USAGE, "FILE:LINE: ..." (or "FILE: ..."). */
		FUZZ_ASSERT(err.code == RF_EXIT_USAGE);
		FUZZ_ASSERT(strncmp(err.msg, FUZZ_NAME ":",
				    strlen(FUZZ_NAME ":")) == 0);
	}
	free(text);
	return 0;
}
