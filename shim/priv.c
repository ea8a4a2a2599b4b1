/*
 * priv.c - interposes the calls that change a process's credentials or root
 * directory: set[e,re,res]uid, set[e,re,res]gid, setfsuid, setfsgid,
 * setgroups, initgroups, chroot, capset (syscall.c sends the same numbers
 * here).
 *
 * After any of them the process may no longer reach DIR/swrap/broker.sock
 * (a 0700 directory of the broker's uid, which also checks SO_PEERCRED), or
 * find it at all (chroot). What it holds is its right to the network: so
 * before the real call, a wrapped process makes sure it holds a ticket, a
 * control connection through which it (and the children it forks) obtain
 * new ones later (broker.c). The call itself is not changed in any way,
 * nor is errno, whether or not a ticket could be had.
 */
#include "swrap.h"

#include <dlfcn.h>
#include <grp.h>
#include <string.h>
#include <sys/fsuid.h>
#include <unistd.h>

static void resolve(void *slot, const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);
	memcpy(slot, &p, sizeof(p));
}

/* Called by init.c's resolve_all: these live with the calls they serve. */
void swrap_priv_resolve(struct swrap_libc *l)
{
	resolve(&l->setuid, "setuid");
	resolve(&l->seteuid, "seteuid");
	resolve(&l->setreuid, "setreuid");
	resolve(&l->setresuid, "setresuid");
	resolve(&l->setgid, "setgid");
	resolve(&l->setegid, "setegid");
	resolve(&l->setregid, "setregid");
	resolve(&l->setresgid, "setresgid");
	resolve(&l->setfsuid, "setfsuid");
	resolve(&l->setfsgid, "setfsgid");
	resolve(&l->setgroups, "setgroups");
	resolve(&l->initgroups, "initgroups");
	resolve(&l->chroot, "chroot");
	resolve(&l->capset, "capset");
}

void swrap_priv_before(void)
{
	if (!swrap_on() || swrap_cfg.dir_err)
		return;
	int saved = errno;
	swrap_broker_ticket();
	errno = saved;
}

/* Each export: take the ticket, then the real call, untouched. */
#define PRIV_CALL(name, ...)                                   \
	do {                                                   \
		swrap_priv_before();                           \
		return swrap_libc.name(__VA_ARGS__);           \
	} while (0)

SWRAP_EXPORT int setuid(uid_t u) { PRIV_CALL(setuid, u); }
SWRAP_EXPORT int seteuid(uid_t u) { PRIV_CALL(seteuid, u); }
SWRAP_EXPORT int setreuid(uid_t r, uid_t e) { PRIV_CALL(setreuid, r, e); }
SWRAP_EXPORT int setresuid(uid_t r, uid_t e, uid_t s) { PRIV_CALL(setresuid, r, e, s); }
SWRAP_EXPORT int setgid(gid_t g) { PRIV_CALL(setgid, g); }
SWRAP_EXPORT int setegid(gid_t g) { PRIV_CALL(setegid, g); }
SWRAP_EXPORT int setregid(gid_t r, gid_t e) { PRIV_CALL(setregid, r, e); }
SWRAP_EXPORT int setresgid(gid_t r, gid_t e, gid_t s) { PRIV_CALL(setresgid, r, e, s); }
/* The fs ids decide path lookups, the connect to broker.sock included. */
SWRAP_EXPORT int setfsuid(uid_t u) { PRIV_CALL(setfsuid, u); }
SWRAP_EXPORT int setfsgid(gid_t g) { PRIV_CALL(setfsgid, g); }
SWRAP_EXPORT int setgroups(size_t n, const gid_t *list) { PRIV_CALL(setgroups, n, list); }
/* glibc's initgroups calls its setgroups internally, out of our reach. */
SWRAP_EXPORT int initgroups(const char *user, gid_t group) { PRIV_CALL(initgroups, user, group); }
SWRAP_EXPORT int chroot(const char *path) { PRIV_CALL(chroot, path); }
/* No glibc header declares capset (libcap's does, with these layouts). */
SWRAP_EXPORT int capset(void *hdr, const void *data);
SWRAP_EXPORT int capset(void *hdr, const void *data) { PRIV_CALL(capset, hdr, data); }
