/*
 * noop.c - libsocket_wrapper_noop.so: socket_wrapper's public API as stubs
 * for running unwrapped. A program linked with -lsocket_wrapper_noop gets
 * these; under the preload, the shim's own definitions (api.c) come first in
 * symbol lookup and are the ones called.
 */
#include "socket_wrapper.h"

#define NOOP_EXPORT __attribute__((visibility("default")))

/* Not wrapped: the preload would have answered otherwise. */
NOOP_EXPORT bool socket_wrapper_enabled(void)
{
	return false;
}

/* Nothing to forget when nothing is wrapped. */
NOOP_EXPORT void socket_wrapper_indicate_no_inet_fd(int fd)
{
	(void)fd;
}
