/*
 * socket_wrapper.h - the public API of socket_wrapper, which swrap provides
 * with the same prototypes as cwrap's header (installed as
 * PREFIX/include/socket_wrapper.h).
 *
 * A program that wants to know whether it runs wrapped calls these and links
 * with -lsocket_wrapper_noop (pkg-config socket_wrapper_noop): unwrapped, the
 * noop library answers; under LD_PRELOAD=libsocket_wrapper.so the preloaded
 * shim's definitions come first and answer instead.
 */
#ifndef __SOCKET_WRAPPER_H__
#define __SOCKET_WRAPPER_H__ 1

#include <stdbool.h>

/* True when the program runs under the preload with a usable
 * SOCKET_WRAPPER_DIR. The noop library always returns false. */
bool socket_wrapper_enabled(void);

/* Tells the wrapper that fd is not an inet socket (a file, a pipe, ...), so
 * that it never treats it as one, e.g. after a close libc made internally.
 * Does nothing when not wrapped, or for an fd the wrapper does not know. */
void socket_wrapper_indicate_no_inet_fd(int fd);

#endif /* __SOCKET_WRAPPER_H__ */
