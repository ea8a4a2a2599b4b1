/*
 * env.c - interposes setenv, unsetenv, putenv and clearenv: a change of a
 * SOCKET_WRAPPER_* variable bumps swrap_env_gen, so that the next call that
 * needs the configuration re-reads it (init.c, swrap_config_refresh). The
 * calls themselves are passed on unchanged; nothing is read here.
 * (A program that edits environ directly is caught at socket() and
 * socket_wrapper_enabled(), which compare the values every time.)
 */
#include "swrap.h"

#include <string.h>

static bool ours(const char *name)
{
	return name && strncmp(name, "SOCKET_WRAPPER_", 15) == 0;
}

static void changed(void)
{
	atomic_fetch_add(&swrap_env_gen, 1);
}

SWRAP_EXPORT int setenv(const char *name, const char *value, int overwrite)
{
	swrap_init();
	int r = swrap_libc.setenv(name, value, overwrite);
	if (r == 0 && ours(name))
		changed();
	return r;
}

SWRAP_EXPORT int unsetenv(const char *name)
{
	swrap_init();
	int r = swrap_libc.unsetenv(name);
	if (r == 0 && ours(name))
		changed();
	return r;
}

SWRAP_EXPORT int putenv(char *string)
{
	swrap_init();
	int r = swrap_libc.putenv(string);
	if (r == 0 && ours(string))
		changed();
	return r;
}

SWRAP_EXPORT int clearenv(void)
{
	swrap_init();
	int r = swrap_libc.clearenv();
	if (r == 0)
		changed();
	return r;
}
