/*
 * api.c - socket_wrapper's public API, which programs and test suites link
 * against (a "noop" library provides stubs that this preload overrides).
 */
#include "swrap.h"

/* True iff SOCKET_WRAPPER_DIR is set (now: the environment is looked at)
 * and usable. */
SWRAP_EXPORT bool socket_wrapper_enabled(void)
{
	return swrap_config_refresh() && swrap_cfg.dir_err == 0;
}

/* The program says fd is not an inet socket: no need to ever classify it. */
SWRAP_EXPORT void socket_wrapper_indicate_no_inet_fd(int fd)
{
	if (swrap_on())
		swrap_fd_mark_not_wrapped(fd);
}
