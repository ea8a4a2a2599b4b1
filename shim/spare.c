/*
 * spare.c - the spare TCP socket: a CONNECT asks the broker for one
 * (SWRAP_CONNECT_SPARE) and the next socket() of the same kind takes it,
 * without a SOCKET round trip. A program that makes a connection after
 * another then pays one round trip (CONNECT) per connection instead of two.
 *
 * The spare is an fd the program does not know about, so it must never be
 * seen: it is received close-on-exec; a forked child closes its copy
 * (atfork) and a raw clone's child, whose pid differs, never uses it; a
 * close, close_range, closefrom, dup2 or dup3 of its number gives it up
 * (swrap_spare_closing, from broker.c's hooks). Before use its socket name
 * is checked (the number may have been closed and reused behind our back,
 * by a raw system call), and it moves to the lowest free fd number, which
 * socket() would have returned. No lock is held across anything: a thread
 * (or signal handler) that finds the slot busy goes without the spare.
 */
#include "swrap.h"

#include <fcntl.h>
#include <netinet/in.h>

struct spare_info {
	uint64_t id;
	int32_t family;
	uint32_t iface;
	int pid;          /* the process it was received in */
	unsigned int gen; /* swrap_broker_gen() then */
};

static _Atomic int spare_fd = -1;
static struct spare_info spare; /* read and written only while holding busy */
static atomic_int busy;

bool swrap_spare_wanted(void)
{
	return atomic_load_explicit(&spare_fd, memory_order_relaxed) < 0 && !swrap_sandboxed();
}

void swrap_spare_put(int fd, uint64_t id, int32_t family, uint32_t iface)
{
	int me = (int)getpid(), z = 0;
	if (!atomic_compare_exchange_strong(&busy, &z, 1)) {
		swrap_libc.close(fd);
		return;
	}
	int old = atomic_load(&spare_fd);
	if (old >= 0 && spare.pid == me) {
		swrap_libc.close(fd); /* one is enough */
	} else {
		/* (An old one of another pid is a raw clone parent's: not ours.) */
		spare = (struct spare_info){ id, family, iface, me, swrap_broker_gen() };
		atomic_store(&spare_fd, fd);
	}
	atomic_store(&busy, 0);
}

int swrap_spare_take(int domain, int protocol, int tflags, uint64_t *id)
{
	if (atomic_load_explicit(&spare_fd, memory_order_relaxed) < 0 || swrap_sandboxed() ||
	    (protocol != 0 && protocol != IPPROTO_TCP))
		return -1;
	int me = (int)getpid(), z = 0;
	if (!atomic_compare_exchange_strong(&busy, &z, 1))
		return -1;
	int fd = atomic_load(&spare_fd);
	struct spare_info sp = spare;
	/* A mismatch leaves it for a later socket(); the pid check keeps a
	 * vfork child off its parent's spare. */
	if (fd < 0 || sp.pid != me || sp.family != domain || sp.iface != swrap_cfg.iface ||
	    !atomic_compare_exchange_strong(&spare_fd, &fd, -1))
		fd = -1;
	atomic_store(&busy, 0);
	if (fd < 0)
		return -1;
	uint64_t inst, nid, cur;
	if (!swrap_fd_name(fd, &inst, &nid) || nid != sp.id || !swrap_broker_instance(&cur) ||
	    cur != inst) {
		/* Not the socket we were given: its number was closed and
		 * reused unseen. Not ours to close. */
		SWRAP_LOG(SWRAP_LOG_DEBUG, "spare fd %d is no longer ours", fd);
		return -1;
	}
	if (sp.gen != swrap_broker_gen()) {
		swrap_libc.close(fd); /* of a SOCKET_WRAPPER_DIR no longer used */
		return -1;
	}
	/* The lowest free number, as socket() gives: below the spare's own,
	 * or the spare's if none is free below it. */
	int low = swrap_libc.fcntl(fd, (tflags & SOCK_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
	if (low < 0) {
		swrap_libc.close(fd);
		return -1; /* EMFILE and the like: SOCKET reports it */
	}
	if (low < fd) {
		swrap_libc.close(fd);
		fd = low;
	} else {
		swrap_libc.close(low);
		if (!(tflags & SOCK_CLOEXEC))
			swrap_libc.fcntl(fd, F_SETFD, 0); /* received close-on-exec */
	}
	if (tflags & SOCK_NONBLOCK)
		swrap_libc.fcntl(fd, F_SETFL, O_RDWR | O_NONBLOCK); /* the broker made it O_RDWR */
	swrap_fd_forget(fd);
	*id = sp.id;
	return fd;
}

void swrap_spare_closing(unsigned int first, unsigned int last)
{
	int fd = atomic_load(&spare_fd);
	if (fd >= 0 && (unsigned int)fd >= first && (unsigned int)fd <= last &&
	    atomic_compare_exchange_strong(&spare_fd, &fd, -1))
		SWRAP_LOG(SWRAP_LOG_DEBUG, "program closes our spare fd %d", fd);
}

void swrap_spare_atfork_child(void)
{
	int fd = atomic_exchange(&spare_fd, -1);
	if (fd >= 0)
		swrap_libc.close(fd);
	atomic_store(&busy, 0);
}
