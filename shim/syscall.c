/*
 * syscall.c - interposes syscall() for the numbers socket_wrapper handles:
 * SYS_close, SYS_close_range, SYS_recvmmsg, SYS_sendmmsg; so that a raw
 * credential change keeps the network, the numbers priv.c interposes (it
 * takes a ticket, then the call goes through); and follows SYS_rt_sigaction
 * of SIGPIPE (signal.c), SYS_seccomp and SYS_prctl(PR_SET_SECCOMP)
 * (sandbox.c; libseccomp installs its filters this way). Every other number
 * is forwarded unchanged.
 */
#include "swrap.h"

#include <sys/prctl.h>
#include <sys/syscall.h>

SWRAP_EXPORT long syscall(long nr, ...)
{
	va_list ap;
	va_start(ap, nr);
	long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
	long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
	va_end(ap);

	switch (nr) {
	case SYS_rt_sigaction: {
		swrap_init();
		long r = swrap_libc.syscall(nr, a1, a2, a3, a4, a5, a6);
		if (r == 0 && a1 == SIGPIPE && a2 != 0) {
			int e = errno;
			swrap_sigpipe_changed();
			errno = e;
		}
		return r;
	}
	case SYS_seccomp:
	case SYS_prctl: {
		swrap_init();
		bool sets = nr == SYS_seccomp || a1 == PR_SET_SECCOMP, was = swrap_sandboxed();
		if (sets)
			atomic_store(&swrap_seccomp, true); /* before the call: see prctl() */
		long r = swrap_libc.syscall(nr, a1, a2, a3, a4, a5, a6);
		if (r < 0 && sets && !was) {
			int e = errno;
			atomic_store(&swrap_seccomp, false);
			errno = e;
		}
		return nr == SYS_seccomp ? swrap_seccomp_done(r, (unsigned int)a1)
					 : swrap_prctl_done(r, (int)a1, (unsigned long)a2);
	}
	}
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
		case SYS_setuid: case SYS_setreuid: case SYS_setresuid: case SYS_setfsuid:
		case SYS_setgid: case SYS_setregid: case SYS_setresgid: case SYS_setfsgid:
		case SYS_setgroups: case SYS_chroot: case SYS_capset:
			swrap_priv_before(); /* priv.c; then the call as made */
			break;
		}
	}
	return swrap_libc.syscall(nr, a1, a2, a3, a4, a5, a6);
}
