#include "cmd.h"

const struct cmd_entry cmd_releases_entry = {
	.name = "releases",
	.usage = "",
	.summary = "list releases per host: id, deployed at, ref, actor, status",
	.flags = CMD_NOT_BUILT,
	.exec = NULL,
};
