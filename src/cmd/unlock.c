#include "cmd.h"

const struct cmd_entry cmd_unlock_entry = {
	.name = "unlock",
	.usage = "[--force]",
	.summary = "remove this deployer's stale lock (--force: anyone's)",
	.flags = CMD_NOT_BUILT,
	.exec = NULL,
};
