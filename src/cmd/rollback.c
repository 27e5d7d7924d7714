#include "cmd.h"

const struct cmd_entry cmd_rollback_entry = {
	.name = "rollback",
	.usage = "[--to ID] [--dry-run]",
	.summary = "switch back to the newest good release, or to ID",
	.flags = CMD_NOT_BUILT,
	.exec = NULL,
};
