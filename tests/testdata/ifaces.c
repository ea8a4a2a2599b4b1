/*
 * ifaces.c - prints what a program learns about the machine's network
 * interfaces: getifaddrs(), if_nameindex(), if_nametoindex(),
 * if_indextoname() and the SIOCGIF* ioctls, one fact a line, for
 * TestInterfaces. argv[1] names the interface to ask the ioctls about.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP 0x10000
#endif

static const char *flagstr(unsigned int f)
{
	static char b[128];
	static const struct {
		unsigned int bit;
		const char *name;
	} names[] = {
		{ IFF_UP, "UP" }, { IFF_BROADCAST, "BROADCAST" }, { IFF_LOOPBACK, "LOOPBACK" },
		{ IFF_POINTOPOINT, "POINTOPOINT" }, { IFF_RUNNING, "RUNNING" }, { IFF_NOARP, "NOARP" },
		{ IFF_MULTICAST, "MULTICAST" }, { IFF_LOWER_UP, "LOWER_UP" },
	};
	b[0] = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (f & names[i].bit) {
			if (b[0])
				strcat(b, ",");
			strcat(b, names[i].name);
		}
	return b;
}

static const char *addrstr(const struct sockaddr *sa)
{
	static char b[4][INET6_ADDRSTRLEN];
	static int n;
	char *o = b[n++ & 3];
	if (!sa)
		return "-";
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, o, INET6_ADDRSTRLEN);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, o, INET6_ADDRSTRLEN);
	else
		snprintf(o, INET6_ADDRSTRLEN, "family%d", sa->sa_family);
	return o;
}

static const char *err(void)
{
	return strerrorname_np(errno);
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "lo";
	struct ifaddrs *ifa;

	if (getifaddrs(&ifa) != 0) {
		printf("getifaddrs %s\n", err());
	} else {
		for (struct ifaddrs *p = ifa; p; p = p->ifa_next) {
			int fam = p->ifa_addr ? p->ifa_addr->sa_family : -1;
			if (fam == AF_PACKET) {
				const struct sockaddr_ll *ll = (const struct sockaddr_ll *)p->ifa_addr;
				printf("getifaddrs %s packet ifindex=%d hatype=%u halen=%u flags=%s data=%s\n",
				       p->ifa_name, ll->sll_ifindex, ll->sll_hatype, ll->sll_halen,
				       flagstr(p->ifa_flags), p->ifa_data ? "yes" : "no");
			} else if (fam == AF_INET || fam == AF_INET6) {
				printf("getifaddrs %s %s %s netmask %s broadcast %s flags=%s\n", p->ifa_name,
				       fam == AF_INET ? "inet" : "inet6", addrstr(p->ifa_addr),
				       addrstr(p->ifa_netmask),
				       (p->ifa_flags & IFF_BROADCAST) ? addrstr(p->ifa_broadaddr) : "-",
				       flagstr(p->ifa_flags));
			} else {
				printf("getifaddrs %s family %d\n", p->ifa_name, fam);
			}
		}
		freeifaddrs(ifa);
	}

	struct if_nameindex *ni = if_nameindex();
	if (!ni) {
		printf("if_nameindex %s\n", err());
	} else {
		for (struct if_nameindex *p = ni; p->if_index; p++)
			printf("if_nameindex %u %s\n", p->if_index, p->if_name);
		if_freenameindex(ni);
	}
	unsigned int idx = if_nametoindex(name);
	printf("if_nametoindex %s %u %s\n", name, idx, idx ? "" : err());
	idx = if_nametoindex("nosuchif0");
	printf("if_nametoindex nosuchif0 %u %s\n", idx, idx ? "" : err());
	char nb[IF_NAMESIZE];
	char *r = if_indextoname(1, nb);
	printf("if_indextoname 1 %s\n", r ? r : err());
	r = if_indextoname(4000, nb);
	printf("if_indextoname 4000 %s\n", r ? r : err());

	/* an AF_INET socket (wrapped under the shim) and an AF_UNIX one */
	int s = socket(AF_INET, SOCK_DGRAM, 0), u = socket(AF_UNIX, SOCK_DGRAM, 0);
	struct ifreq rq[8];
	struct ifconf ic = { .ifc_len = sizeof(rq), .ifc_req = rq };
	if (ioctl(s, SIOCGIFCONF, &ic) != 0) {
		printf("SIOCGIFCONF %s\n", err());
	} else {
		for (int i = 0; i < ic.ifc_len / (int)sizeof(struct ifreq); i++)
			printf("SIOCGIFCONF %s %s\n", rq[i].ifr_name, addrstr(&rq[i].ifr_addr));
	}
	struct ifreq q;
#define ASK(fd, req, what)                                                      \
	do {                                                                    \
		memset(&q, 0, sizeof(q));                                       \
		snprintf(q.ifr_name, sizeof(q.ifr_name), "%s", name);           \
		if (ioctl(fd, req, &q) != 0)                                    \
			printf("%s %s\n", #req, err());                         \
		else                                                            \
			what;                                                   \
	} while (0)
	ASK(s, SIOCGIFADDR, printf("SIOCGIFADDR %s\n", addrstr(&q.ifr_addr)));
	ASK(s, SIOCGIFNETMASK, printf("SIOCGIFNETMASK %s\n", addrstr(&q.ifr_netmask)));
	ASK(s, SIOCGIFBRDADDR, printf("SIOCGIFBRDADDR %s\n", addrstr(&q.ifr_broadaddr)));
	ASK(s, SIOCGIFFLAGS, printf("SIOCGIFFLAGS %s\n", flagstr((unsigned short)q.ifr_flags)));
	ASK(s, SIOCGIFINDEX, printf("SIOCGIFINDEX %d\n", q.ifr_ifindex));
	ASK(u, SIOCGIFINDEX, printf("SIOCGIFINDEX(unix) %d\n", q.ifr_ifindex));
	ASK(s, SIOCGIFMTU, printf("SIOCGIFMTU %d\n", q.ifr_mtu));
	ASK(s, SIOCGIFHWADDR, printf("SIOCGIFHWADDR type=%u\n", q.ifr_hwaddr.sa_family));
	memset(&q, 0, sizeof(q));
	q.ifr_ifindex = (int)if_nametoindex(name);
	if (ioctl(s, SIOCGIFNAME, &q) != 0)
		printf("SIOCGIFNAME %s\n", err());
	else
		printf("SIOCGIFNAME %d %s\n", q.ifr_ifindex, q.ifr_name);
	memset(&q, 0, sizeof(q));
	strcpy(q.ifr_name, "nosuchif0");
	printf("SIOCGIFFLAGS nosuchif0 %s\n", ioctl(s, SIOCGIFFLAGS, &q) ? err() : "0");
	close(s);
	close(u);
	return 0;
}
