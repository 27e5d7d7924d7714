#include "cmd.h"

#ifndef RELFLIP_VERSION
#define RELFLIP_VERSION "0.2.0"
#endif
#ifndef RELFLIP_COMMIT
#define RELFLIP_COMMIT "unknown"
#endif

const char *
relflip_version(void)
{
	return RELFLIP_VERSION " (commit " RELFLIP_COMMIT ")";
}
