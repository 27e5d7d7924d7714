#include "cmd.h"

const struct cmd_entry cmd_deploy_entry = {
	.name = "deploy",
	.usage = "ARTIFACT [--revision ID] [--ref REF] [--dry-run]",
	.summary = "upload a release, switch to it, check its health, roll back on failure",
	.flags = CMD_NOT_BUILT,
	.exec = NULL,
};
