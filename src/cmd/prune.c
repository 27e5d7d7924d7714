#include "cmd.h"

const struct cmd_entry cmd_prune_entry = {
	.name = "prune",
	.usage = "[--keep N] [--dry-run]",
	.summary = "remove old releases, keeping the live one and the rollback target",
	.flags = CMD_NOT_BUILT,
	.exec = NULL,
};
