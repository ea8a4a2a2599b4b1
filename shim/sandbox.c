/*
 * sandbox.c - interposes prctl(), to know when the process puts itself
 * under seccomp (PR_SET_SECCOMP; syscall(SYS_seccomp) and
 * syscall(SYS_prctl) are followed in syscall.c, which covers libseccomp).
 *
 * Why: a sandbox such as sshd's pre-auth filter allows read, write and
 * writev but kills the process on sendto, sendmsg, recvmsg or getsockname.
 * From then on the shim issues no system call of its own on the data path
 * (read, write, readv, writev, close): each is the program's own call on
 * the app end, unknown fds are not probed, the broker is not asked about
 * EOF or EPIPE, and what the kernel said is the answer (stream.c).
 *
 * A filter inherited across exec (a container runtime's, systemd's
 * SystemCallFilter) is not treated as a sandbox: those allow a network
 * program's calls, and treating every process of a container as
 * sandboxed would cost ECONNRESET reporting there. A program exec()ed
 * into a filter that kills socket calls would need the same treatment;
 * none is known (sshd installs its filter itself, after fork or exec).
 */
#include "swrap.h"

#include <linux/seccomp.h>
#include <sys/prctl.h>

atomic_bool swrap_seccomp;

long swrap_prctl_done(long r, int option, unsigned long a2)
{
	if (r == 0 && option == PR_SET_SECCOMP && (a2 == SECCOMP_MODE_STRICT || a2 == SECCOMP_MODE_FILTER))
		atomic_store(&swrap_seccomp, true);
	return r;
}

long swrap_seccomp_done(long r, unsigned int op)
{
	/* SECCOMP_SET_MODE_FILTER with SECCOMP_FILTER_FLAG_NEW_LISTENER
	 * returns a listener fd, not 0. */
	if (r >= 0 && (op == SECCOMP_SET_MODE_STRICT || op == SECCOMP_SET_MODE_FILTER))
		atomic_store(&swrap_seccomp, true);
	return r;
}

SWRAP_EXPORT int prctl(int option, ...)
{
	va_list ap;
	va_start(ap, option);
	unsigned long a2 = va_arg(ap, unsigned long), a3 = va_arg(ap, unsigned long);
	unsigned long a4 = va_arg(ap, unsigned long), a5 = va_arg(ap, unsigned long);
	va_end(ap);
	swrap_init();
	/* Marked before the call too: from the moment the filter is in, a
	 * signal handler running inside the shim must already obey it. */
	bool was = swrap_sandboxed();
	if (option == PR_SET_SECCOMP)
		atomic_store(&swrap_seccomp, true);
	int r = swrap_libc.prctl(option, a2, a3, a4, a5);
	if (r != 0 && option == PR_SET_SECCOMP && !was) {
		int e = errno;
		atomic_store(&swrap_seccomp, false);
		errno = e;
	}
	return (int)swrap_prctl_done(r, option, a2);
}
