/*
 * ifaddrs.c - the network interface a wrapped program sees, and the
 * interposed getifaddrs, freeifaddrs, if_nameindex, if_freenameindex,
 * if_nametoindex and if_indextoname.
 *
 * A wrapped program's machine is its host (SOCKET_WRAPPER_DEFAULT_IFACE =
 * N): one interface, index 1 (the broker netstack's NIC id, and the
 * ifindex the shim's IP_PKTINFO answers carry), named "swrapN", with the
 * host's IPv4 address in the emulated /8 and its IPv6 address
 * fd00::5357:5fNN/64. There is deliberately no loopback interface: in the
 * 127.0.0.0 plan 127.0.0.1 is host 1's address, not this program's, and ::1
 * is unreachable under swrap (connects get ENETUNREACH), so an "lo" would
 * advertise addresses that are not the program's.
 *
 * glibc answers these calls with internal netlink and ioctl calls that an
 * LD_PRELOAD shim cannot see, so they are answered here, from the
 * configuration read at call time. The memory layouts are glibc's (one
 * block for getifaddrs; an array plus one string per entry for
 * if_nameindex), so that glibc's own free functions could free them too.
 */
#include "swrap.h"

#include <ifaddrs.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <stdlib.h>
#include <string.h>

#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP 0x10000 /* linux/if.h, which clashes with net/if.h */
#endif

void swrap_iface_get(struct swrap_iface *ifc)
{
	static const uint8_t net6[14] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53, 0x57 };
	uint32_t n = swrap_cfg.iface;

	memset(ifc, 0, sizeof(*ifc));
	snprintf(ifc->name, sizeof(ifc->name), "swrap%u", n);
	if (swrap_cfg.net4 == 10) {
		const uint8_t a[4] = { 10, 53, 57, (uint8_t)n };
		memcpy(ifc->v4, a, 4);
	} else {
		const uint8_t a[4] = { swrap_cfg.net4, 0, 0, (uint8_t)n };
		memcpy(ifc->v4, a, 4);
	}
	const uint8_t mask[4] = { 255, 0, 0, 0 }, brd[4] = { ifc->v4[0], 255, 255, 255 };
	memcpy(ifc->mask4, mask, 4);
	memcpy(ifc->brd4, brd, 4);
	ifc->prefix4 = 8;
	memcpy(ifc->v6, net6, sizeof(net6));
	ifc->v6[14] = 0x5f;
	ifc->v6[15] = (uint8_t)n;
	ifc->prefix6 = 64;
	ifc->mtu = swrap_broker_mtu();
	ifc->flags = IFF_UP | IFF_BROADCAST | IFF_RUNNING | IFF_MULTICAST;
}

bool swrap_iface_is(const char *name)
{
	struct swrap_iface ifc;
	swrap_iface_get(&ifc);
	return strncmp(name, ifc.name, IFNAMSIZ) == 0;
}

/* ----------------------------------------------------------- getifaddrs -- */

/* glibc's shape: one AF_PACKET entry per link (ifa_data: its
 * rtnl_link_stats), then one entry per address. */
struct ifa_block {
	struct ifaddrs e[3];
	struct sockaddr_ll ll_addr, ll_brd;
	struct rtnl_link_stats stats;
	struct sockaddr_in in_addr, in_mask, in_brd;
	struct sockaddr_in6 in6_addr, in6_mask;
	char name[IFNAMSIZ];
};

static int swrap_getifaddrs(struct ifaddrs **out)
{
	struct swrap_iface ifc;
	struct ifa_block *b = calloc(1, sizeof(*b));
	if (!b)
		return swrap_fail(ENOMEM);
	swrap_iface_get(&ifc);
	unsigned int flags = ifc.flags | IFF_LOWER_UP;
	memcpy(b->name, ifc.name, sizeof(b->name));

	b->ll_addr.sll_family = AF_PACKET;
	b->ll_addr.sll_ifindex = SWRAP_IFINDEX;
	b->ll_addr.sll_hatype = ARPHRD_NONE; /* halen 0: no hardware address */
	b->ll_brd = b->ll_addr;

	b->in_addr.sin_family = b->in_mask.sin_family = b->in_brd.sin_family = AF_INET;
	memcpy(&b->in_addr.sin_addr, ifc.v4, 4);
	memcpy(&b->in_mask.sin_addr, ifc.mask4, 4);
	memcpy(&b->in_brd.sin_addr, ifc.brd4, 4);

	b->in6_addr.sin6_family = b->in6_mask.sin6_family = AF_INET6;
	memcpy(&b->in6_addr.sin6_addr, ifc.v6, 16);
	memset(&b->in6_mask.sin6_addr, 0xff, ifc.prefix6 / 8);

	for (int i = 0; i < 3; i++) {
		b->e[i].ifa_next = i < 2 ? &b->e[i + 1] : NULL;
		b->e[i].ifa_name = b->name;
		b->e[i].ifa_flags = flags;
	}
	b->e[0].ifa_addr = (struct sockaddr *)&b->ll_addr;
	b->e[0].ifa_broadaddr = (struct sockaddr *)&b->ll_brd;
	b->e[0].ifa_data = &b->stats;
	b->e[1].ifa_addr = (struct sockaddr *)&b->in_addr;
	b->e[1].ifa_netmask = (struct sockaddr *)&b->in_mask;
	b->e[1].ifa_broadaddr = (struct sockaddr *)&b->in_brd;
	b->e[2].ifa_addr = (struct sockaddr *)&b->in6_addr;
	b->e[2].ifa_netmask = (struct sockaddr *)&b->in6_mask;
	*out = &b->e[0];
	return 0;
}

SWRAP_EXPORT int getifaddrs(struct ifaddrs **out)
{
	if (!swrap_on()) {
		return swrap_libc.getifaddrs ? swrap_libc.getifaddrs(out) : swrap_fail(ENOSYS);
	}
	return swrap_getifaddrs(out);
}

/* Both layouts are a single malloc block, ours and glibc's: free() frees
 * either, whichever getifaddrs made the list. */
SWRAP_EXPORT void freeifaddrs(struct ifaddrs *ifa)
{
	free(ifa);
}

/* --------------------------------------------------------- if_nameindex -- */

SWRAP_EXPORT struct if_nameindex *if_nameindex(void)
{
	if (!swrap_on()) {
		return swrap_libc.if_nameindex ? swrap_libc.if_nameindex() : (errno = ENOSYS, NULL);
	}
	struct swrap_iface ifc;
	swrap_iface_get(&ifc);
	struct if_nameindex *v = calloc(2, sizeof(*v));
	char *name = strdup(ifc.name);
	if (!v || !name) {
		free(v);
		free(name);
		errno = ENOBUFS; /* as glibc */
		return NULL;
	}
	v[0].if_index = SWRAP_IFINDEX;
	v[0].if_name = name;
	return v;
}

/* glibc's layout (a name string per entry, then the array): the same code
 * frees ours and glibc's. */
SWRAP_EXPORT void if_freenameindex(struct if_nameindex *v)
{
	if (!v)
		return;
	for (struct if_nameindex *p = v; p->if_index != 0 || p->if_name != NULL; p++)
		free(p->if_name);
	free(v);
}

SWRAP_EXPORT unsigned int if_nametoindex(const char *name)
{
	if (!swrap_on()) {
		return swrap_libc.if_nametoindex ? swrap_libc.if_nametoindex(name) : (errno = ENOSYS, 0);
	}
	/* glibc: a name that does not fit ifr_name is ENODEV, unasked */
	if (strnlen(name, IFNAMSIZ) >= IFNAMSIZ || !swrap_iface_is(name)) {
		errno = ENODEV;
		return 0;
	}
	return SWRAP_IFINDEX;
}

SWRAP_EXPORT char *if_indextoname(unsigned int index, char buf[IF_NAMESIZE])
{
	if (!swrap_on()) {
		return swrap_libc.if_indextoname ? swrap_libc.if_indextoname(index, buf) : (errno = ENOSYS, NULL);
	}
	if (index != SWRAP_IFINDEX) {
		errno = ENXIO; /* glibc turns SIOCGIFNAME's ENODEV into ENXIO */
		return NULL;
	}
	struct swrap_iface ifc;
	swrap_iface_get(&ifc);
	memcpy(buf, ifc.name, strlen(ifc.name) + 1);
	return buf;
}
