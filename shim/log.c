/*
 * log.c - debug lines "SWRAP_<LVL>[prog (pid)] - func: msg" on fd 2.
 *
 * Interposes nothing. Lines are formatted into a stack buffer and written
 * with the real write(2) in one call (never stdio: we may be inside an
 * interposed call that stdio itself made, or in a signal handler). Callers
 * use SWRAP_LOG, which tests the level before anything is formatted.
 */
#include "swrap.h"

#include <string.h>
#include <unistd.h>

static const char *const level_names[] = { "ERROR", "WARN", "DEBUG", "TRACE" };

static void emit(int level, const char *func, const char *fmt, va_list ap)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "SWRAP_%s[%s (%d)] - %s: ", level_names[level & 3],
			 swrap_cfg.comm, (int)getpid(), func);
	if (n < 0 || (size_t)n >= sizeof(buf))
		n = 0;
	int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';

	int saved = errno; /* logging must never change the caller's errno */
	ssize_t (*wr)(int, const void *, size_t) = swrap_libc.write ? swrap_libc.write : write;
	(void)wr(2, buf, (size_t)n);
	errno = saved;
}

void swrap_log_line(int level, const char *func, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit(level, func, fmt, ap);
	va_end(ap);
}

void swrap_complain(const char *func, const char *fmt, ...)
{
	/* One line per process: a misconfiguration fails every socket() call,
	 * and repeating the line for each would bury the program's output. */
	static atomic_bool said;
	if (atomic_exchange(&said, true))
		return;
	va_list ap;
	va_start(ap, fmt);
	emit(SWRAP_LOG_ERROR, func, fmt, ap);
	va_end(ap);
}
