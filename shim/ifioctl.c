/*
 * ifioctl.c - the SIOCGIF* ioctls, answered for the emulated interface
 * (ifaddrs.c) on any socket while wrapping is on.
 *
 * Interposes nothing: ioctl.c calls swrap_ifioctl first for the requests
 * swrap_ifioctl_req() names. Like Linux, every socket family answers the
 * link requests (SIOCGIFCONF, SIOCGIFFLAGS, SIOCGIFINDEX, SIOCGIFNAME,
 * SIOCGIFMTU, SIOCGIFHWADDR), only AF_INET sockets the IPv4 address ones
 * (SIOCGIFADDR, SIOCGIFNETMASK, SIOCGIFBRDADDR; ENOTTY elsewhere), a wrapped
 * socket being of the family the program asked for. A name other than the
 * interface's is ENODEV, whatever the real machine has (so no request ever
 * reaches, let alone changes, a real interface); an unreadable or
 * unwritable argument is EFAULT. Requests on a non-socket go to libc.
 */
#include "swrap.h"

#include <net/if.h>
#include <net/if_arp.h>
#include <string.h>
#include <sys/uio.h>
#include <linux/sockios.h>
#include <unistd.h>

/* copy_user moves n bytes between our memory and the program's argument
 * with the kernel's own checks: a bad pointer is EFAULT, not a crash. */
static int copy_user(void *dst, const void *src, size_t n, bool out)
{
	struct iovec l = { out ? (void *)src : dst, n }, r = { out ? dst : (void *)src, n };
	ssize_t k = out ? process_vm_writev(getpid(), &l, 1, &r, 1, 0)
			: process_vm_readv(getpid(), &l, 1, &r, 1, 0);
	if (k == (ssize_t)n)
		return 0;
	if (k < 0 && (errno == ENOSYS || errno == EPERM)) {
		/* a sandbox without process_vm_*: trust the pointer, as
		 * libc code does */
		memcpy(dst, src, n);
		return 0;
	}
	return EFAULT;
}

/* sock_family: the family the program sees for fd, or -1 if fd is not a
 * socket (or not open). */
static int sock_family(int fd)
{
	struct swrap_sock s;
	if (swrap_fd_get(fd, &s))
		return swrap_sock_family(&s);
	if (swrap_fd_netlink(fd, NULL, NULL))
		return AF_NETLINK;
	int d = -1;
	socklen_t l = sizeof(d);
	if (swrap_libc.getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &d, &l) != 0)
		return -1;
	return d;
}

static void put_in(struct sockaddr *sa, const uint8_t a[4])
{
	struct sockaddr_in in = { .sin_family = AF_INET };
	memcpy(&in.sin_addr, a, 4);
	memcpy(sa, &in, sizeof(in));
}

/* ifconf answers SIOCGIFCONF: one ifreq per IPv4 address (Linux lists no
 * others); NULL ifc_buf asks for the size; only whole entries are copied. */
static int ifconf(void *arg, const struct swrap_iface *ifc)
{
	struct ifconf c;
	if (copy_user(&c, arg, sizeof(c), false))
		return EFAULT;
	struct ifreq r;
	memset(&r, 0, sizeof(r));
	memcpy(r.ifr_name, ifc->name, sizeof(r.ifr_name));
	put_in(&r.ifr_addr, ifc->v4);
	int total = 0;
	if (!c.ifc_buf)
		total = (int)sizeof(r);
	else if (c.ifc_len >= (int)sizeof(r)) {
		if (copy_user(c.ifc_buf, &r, sizeof(r), true))
			return EFAULT;
		total = (int)sizeof(r);
	}
	c.ifc_len = total;
	return copy_user(arg, &c, sizeof(c), true);
}

int swrap_ifioctl(int fd, unsigned long req, void *arg, int *ret)
{
	bool addr_req = false, ours;
	switch (req) {
	case SIOCGIFADDR:
	case SIOCGIFNETMASK:
	case SIOCGIFBRDADDR:
		addr_req = true;
		break;
	case SIOCGIFCONF:
	case SIOCGIFNAME:
	case SIOCGIFFLAGS:
	case SIOCGIFINDEX:
	case SIOCGIFMTU:
	case SIOCGIFHWADDR:
	case SIOCGIFMETRIC:
		break;
	case SIOCSIFFLAGS:
	case SIOCSIFADDR:
	case SIOCGIFDSTADDR:
	case SIOCSIFDSTADDR:
	case SIOCSIFBRDADDR:
	case SIOCSIFNETMASK:
	case SIOCSIFMETRIC:
	case SIOCSIFMTU:
	case SIOCSIFNAME:
	case SIOCSIFHWADDR:
	case SIOCADDMULTI:
	case SIOCDELMULTI:
		break; /* never to a real interface: ENODEV or EOPNOTSUPP below */
	default:
		return 0;
	}
	int fam = sock_family(fd);
	if (fam < 0)
		return 0; /* ENOTSOCK, EBADF: the real ioctl says which */

	struct swrap_iface ifc;
	swrap_iface_get(&ifc);
	int err = 0;
	if (req == SIOCGIFCONF) {
		err = ifconf(arg, &ifc);
		goto out;
	}

	struct ifreq r;
	if (copy_user(&r, arg, sizeof(r), false)) {
		err = EFAULT;
		goto out;
	}
	if (req == SIOCGIFNAME) {
		if (r.ifr_ifindex != SWRAP_IFINDEX) {
			err = ENODEV;
			goto out;
		}
		memcpy(r.ifr_name, ifc.name, sizeof(r.ifr_name));
		err = copy_user(arg, &r, sizeof(r), true);
		goto out;
	}
	if (addr_req && fam != AF_INET) {
		err = ENOTTY; /* inet_ioctl only */
		goto out;
	}
	r.ifr_name[IFNAMSIZ - 1] = '\0';
	ours = strcmp(r.ifr_name, ifc.name) == 0;
	if (!ours) {
		err = ENODEV;
		goto out;
	}
	switch (req) {
	case SIOCGIFADDR:
		put_in(&r.ifr_addr, ifc.v4);
		break;
	case SIOCGIFNETMASK:
		put_in(&r.ifr_netmask, ifc.mask4);
		break;
	case SIOCGIFBRDADDR:
		put_in(&r.ifr_broadaddr, ifc.brd4);
		break;
	case SIOCGIFFLAGS:
		r.ifr_flags = (short)ifc.flags;
		break;
	case SIOCGIFINDEX:
		r.ifr_ifindex = SWRAP_IFINDEX;
		break;
	case SIOCGIFMTU:
		r.ifr_mtu = (int)ifc.mtu;
		break;
	case SIOCGIFMETRIC:
		r.ifr_metric = 0;
		break;
	case SIOCGIFHWADDR:
		/* no hardware address, like a tun device */
		memset(&r.ifr_hwaddr, 0, sizeof(r.ifr_hwaddr));
		r.ifr_hwaddr.sa_family = ARPHRD_NONE;
		break;
	default:
		/* the emulated interface cannot be reconfigured */
		err = EOPNOTSUPP;
		goto out;
	}
	err = copy_user(arg, &r, sizeof(r), true);
out:
	*ret = err ? swrap_fail(err) : 0;
	return 1;
}
