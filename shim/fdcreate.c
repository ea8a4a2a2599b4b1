/*
 * fdcreate.c - interposes calls that create fds: open, open64, openat,
 * openat64, __open_2, __openat_2, fopen, fopen64, pipe, pipe2, eventfd,
 * signalfd, timerfd_create, epoll_create, epoll_create1.
 *
 * Only to forget a stale cache entry for the new fd number (one that was
 * closed behind our back, e.g. by a raw system call): the call itself is
 * passed on unchanged.
 */
#include "swrap.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

static inline int fresh(int fd)
{
	if (fd >= 0 && atomic_load_explicit(&swrap_cfg.tracking, memory_order_relaxed))
		swrap_fd_forget(fd);
	return fd;
}

static inline bool needs_mode(int flags)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

#define GET_MODE(flags, last)                                 \
	mode_t mode = 0;                                      \
	if (needs_mode(flags)) {                              \
		va_list ap;                                   \
		va_start(ap, last);                           \
		mode = (mode_t)va_arg(ap, int);               \
		va_end(ap);                                   \
	}

SWRAP_EXPORT int open(const char *path, int flags, ...)
{
	GET_MODE(flags, flags);
	swrap_init();
	return fresh(swrap_libc.open(path, flags, mode));
}

SWRAP_EXPORT int open64(const char *path, int flags, ...)
{
	GET_MODE(flags, flags);
	swrap_init();
	return fresh((swrap_libc.open64 ? swrap_libc.open64 : swrap_libc.open)(path, flags, mode));
}

SWRAP_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	GET_MODE(flags, flags);
	swrap_init();
	return fresh(swrap_libc.openat(dirfd, path, flags, mode));
}

SWRAP_EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	GET_MODE(flags, flags);
	swrap_init();
	return fresh((swrap_libc.openat64 ? swrap_libc.openat64 : swrap_libc.openat)(dirfd, path, flags, mode));
}

int __open_2(const char *path, int flags);
SWRAP_EXPORT int __open_2(const char *path, int flags)
{
	swrap_init();
	if (!swrap_libc.open_2)
		return fresh(swrap_libc.open(path, flags));
	return fresh(swrap_libc.open_2(path, flags));
}

int __openat_2(int dirfd, const char *path, int flags);
SWRAP_EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	swrap_init();
	if (!swrap_libc.openat_2)
		return fresh(swrap_libc.openat(dirfd, path, flags));
	return fresh(swrap_libc.openat_2(dirfd, path, flags));
}

SWRAP_EXPORT FILE *fopen(const char *restrict path, const char *restrict mode)
{
	swrap_init();
	FILE *f = swrap_libc.fopen(path, mode);
	if (f)
		fresh(fileno(f));
	return f;
}

SWRAP_EXPORT FILE *fopen64(const char *restrict path, const char *restrict mode)
{
	swrap_init();
	FILE *f = (swrap_libc.fopen64 ? swrap_libc.fopen64 : swrap_libc.fopen)(path, mode);
	if (f)
		fresh(fileno(f));
	return f;
}

SWRAP_EXPORT int pipe(int fds[2])
{
	swrap_init();
	int r = swrap_libc.pipe(fds);
	if (r == 0) {
		fresh(fds[0]);
		fresh(fds[1]);
	}
	return r;
}

SWRAP_EXPORT int pipe2(int fds[2], int flags)
{
	swrap_init();
	int r = swrap_libc.pipe2(fds, flags);
	if (r == 0) {
		fresh(fds[0]);
		fresh(fds[1]);
	}
	return r;
}

SWRAP_EXPORT int eventfd(unsigned int count, int flags)
{
	swrap_init();
	return fresh(swrap_libc.eventfd(count, flags));
}

SWRAP_EXPORT int signalfd(int fd, const sigset_t *mask, int flags)
{
	swrap_init();
	int r = swrap_libc.signalfd(fd, mask, flags);
	return fd == -1 ? fresh(r) : r;
}

SWRAP_EXPORT int timerfd_create(int clockid, int flags)
{
	swrap_init();
	return fresh(swrap_libc.timerfd_create(clockid, flags));
}

SWRAP_EXPORT int epoll_create(int size)
{
	swrap_init();
	return fresh(swrap_libc.epoll_create(size));
}

SWRAP_EXPORT int epoll_create1(int flags)
{
	swrap_init();
	return fresh(swrap_libc.epoll_create1(flags));
}
