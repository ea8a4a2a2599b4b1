/*
 * syscall.c - interposes syscall() for the numbers socket_wrapper handles:
 * SYS_close, SYS_close_range, SYS_recvmmsg, SYS_sendmmsg. Every other number
 * is forwarded unchanged.
 */
#include "swrap.h"

#include <sys/syscall.h>

SWRAP_EXPORT long syscall(long nr, ...)
{
	va_list ap;
	va_start(ap, nr);
	long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
	long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
	va_end(ap);

	if (swrap_on()) {
		switch (nr) {
		case SYS_close:
			return swrap_close((int)a1);
#ifdef SYS_close_range
		case SYS_close_range:
			return swrap_close_range((unsigned int)a1, (unsigned int)a2, (int)a3);
#endif
		case SYS_recvmmsg:
			return swrap_recvmmsg((int)a1, (struct mmsghdr *)a2, (unsigned int)a3, (int)a4,
					      (struct timespec *)a5);
		case SYS_sendmmsg:
			return swrap_sendmmsg((int)a1, (struct mmsghdr *)a2, (unsigned int)a3, (int)a4);
		}
	}
	return swrap_libc.syscall(nr, a1, a2, a3, a4, a5, a6);
}
