/*
 * signal.c - interposes signal, sigaction, sysv_signal, __sysv_signal,
 * bsd_signal and sigset, only to know whether SIGPIPE is ignored
 * (syscall(SYS_rt_sigaction) is followed in syscall.c).
 *
 * Why: on a wrapped TCP fd (a unix stream socket underneath) write() and
 * writev() differ from TCP only in what the first write after a reset
 * does: TCP fails it with ECONNRESET and no signal, a unix socket with
 * EPIPE and SIGPIPE. So the shim sends with MSG_NOSIGNAL and decides
 * itself (stream.c) - unless SIGPIPE is ignored, where no one can tell the
 * difference and the program's own write()/writev() is issued, as a
 * seccomp sandbox that allows write but not sendto needs (sshd ignores
 * SIGPIPE). The disposition is read once at start (exec keeps SIG_IGN) and
 * re-read with the real sigaction() after every change of SIGPIPE.
 * (SIG_IGN with SIGPIPE blocked queues the kernel's signal instead of
 * dropping it; a program that unblocks it later would see it: not
 * followed, it would cost a system call per write.)
 */
#include "swrap.h"

#include <string.h>

atomic_bool swrap_sigpipe_ignored;

void swrap_sigpipe_changed(void)
{
	struct sigaction cur;
	if (swrap_libc.sigaction && swrap_libc.sigaction(SIGPIPE, NULL, &cur) == 0)
		atomic_store(&swrap_sigpipe_ignored,
			     !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_IGN);
}

void swrap_signal_init(void)
{
	swrap_sigpipe_changed();
}

SWRAP_EXPORT int sigaction(int sig, const struct sigaction *restrict act, struct sigaction *restrict old)
{
	swrap_init();
	int r = swrap_libc.sigaction(sig, act, old);
	if (r == 0 && sig == SIGPIPE && act) {
		int e = errno;
		swrap_sigpipe_changed();
		errno = e;
	}
	return r;
}

/* after returns r, re-reading SIGPIPE when the call changed it. */
static __sighandler_t after(int sig, __sighandler_t r)
{
	if (sig == SIGPIPE && r != SIG_ERR) {
		int e = errno;
		swrap_sigpipe_changed();
		errno = e;
	}
	return r;
}

SWRAP_EXPORT __sighandler_t signal(int sig, __sighandler_t h)
{
	swrap_init();
	return after(sig, swrap_libc.signal(sig, h));
}

SWRAP_EXPORT __sighandler_t bsd_signal(int sig, __sighandler_t h)
{
	swrap_init();
	return after(sig, (swrap_libc.bsd_signal ? swrap_libc.bsd_signal : swrap_libc.signal)(sig, h));
}

__sighandler_t __sysv_signal(int sig, __sighandler_t h);
SWRAP_EXPORT __sighandler_t __sysv_signal(int sig, __sighandler_t h)
{
	swrap_init();
	if (!swrap_libc.sysv_signal)
		return SIG_ERR;
	return after(sig, swrap_libc.sysv_signal(sig, h));
}

SWRAP_EXPORT __sighandler_t sysv_signal(int sig, __sighandler_t h)
{
	return __sysv_signal(sig, h);
}

SWRAP_EXPORT __sighandler_t sigset(int sig, __sighandler_t h)
{
	swrap_init();
	if (!swrap_libc.sigset)
		return SIG_ERR;
	return after(sig, swrap_libc.sigset(sig, h));
}
