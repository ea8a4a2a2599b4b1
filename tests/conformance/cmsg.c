/*
 * cmsg.c - received control messages in short buffers: what Linux's
 * put_cmsg does when msg_controllen is exactly CMSG_LEN, CMSG_SPACE, one
 * byte short, or 0, and with two messages of which the second fits only in
 * CMSG_LEN.
 *
 * Each check prints the return value, MSG_CTRUNC, the msg_controllen the
 * call returned, how many bytes of the buffer were written (it is filled
 * with 0xAA first; no address or index of the test plan contains that byte)
 * and every header found within msg_controllen with the parts of its data
 * that are there.
 */
#include "conf.h"

#include <sys/uio.h>

#define CANARY 0xAA
#define CTLBUF 256
#define NOCTL ((size_t)-1) /* msg_control NULL, msg_controllen 0 */

/* sendself sends n bytes of buf from fd to SELF:port of family fam. */
static void sendself(int fd, int fam, int port, const void *buf, size_t n)
{
	struct sockaddr_storage ss;
	socklen_t len = selfaddr(fam, port, &ss);
	if (sendto(fd, buf, n, 0, SA(&ss), len) != (ssize_t)n)
		die("sendto");
}

/* cmsgdesc describes the control message at p, of which avail bytes lie
 * within msg_controllen. */
static void cmsgdesc(char *out, size_t outlen, const unsigned char *p, size_t avail)
{
	struct cmsghdr h;
	memcpy(&h, p, sizeof(h));
	const char *name = "?";
	if (h.cmsg_level == IPPROTO_IP && h.cmsg_type == IP_PKTINFO)
		name = "IP_PKTINFO";
	else if (h.cmsg_level == IPPROTO_IPV6 && h.cmsg_type == IPV6_PKTINFO)
		name = "IPV6_PKTINFO";
	size_t data = h.cmsg_len > avail ? avail : h.cmsg_len;
	data = data > CMSG_LEN(0) ? data - CMSG_LEN(0) : 0;
	int n = snprintf(out, outlen, "[%s len=%zu", name, (size_t)h.cmsg_len);
	if (h.cmsg_level == IPPROTO_IP && h.cmsg_type == IP_PKTINFO) {
		struct in_pktinfo pi;
		memset(&pi, 0, sizeof(pi));
		memcpy(&pi, p + CMSG_LEN(0), data < sizeof(pi) ? data : sizeof(pi));
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr = pi.ipi_addr};
		if (data >= 4)
			n += snprintf(out + n, outlen - n, " ifindex=%d", pi.ipi_ifindex);
		if (data >= 8)
			n += snprintf(out + n, outlen - n, " spec_dst=%s",
				      hoststr((struct sockaddr *)&(struct sockaddr_in){
					      .sin_family = AF_INET, .sin_addr = pi.ipi_spec_dst}));
		if (data >= 12)
			n += snprintf(out + n, outlen - n, " addr=%s", hoststr((struct sockaddr *)&a));
	} else if (h.cmsg_level == IPPROTO_IPV6 && h.cmsg_type == IPV6_PKTINFO) {
		struct in6_pktinfo pi;
		memset(&pi, 0, sizeof(pi));
		memcpy(&pi, p + CMSG_LEN(0), data < sizeof(pi) ? data : sizeof(pi));
		if (data >= 16) {
			struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = pi.ipi6_addr};
			n += snprintf(out + n, outlen - n, " addr=%s", hoststr((struct sockaddr *)&a));
		}
		if (data >= 20)
			n += snprintf(out + n, outlen - n, " ifindex=%u", pi.ipi6_ifindex);
	}
	snprintf(out + n, outlen - n, " data=%zu]", data);
}

/* recvctl receives one datagram on fd with a control buffer of clen bytes
 * and describes what the kernel (or the shim) wrote. */
static const char *recvctl(int fd, size_t clen)
{
	unsigned char ctl[CTLBUF] __attribute__((aligned(8)));
	char data[64];
	struct iovec iov = {data, sizeof(data)};
	memset(ctl, CANARY, sizeof(ctl));
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = clen};
	if (clen == NOCTL) {
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
	}
	ssize_t n = recvmsg(fd, &mh, 0);
	if (n < 0)
		return res(n);
	int written = 0;
	for (size_t i = 0; i < sizeof(ctl); i++)
		written += ctl[i] != CANARY;
	char *b = ring();
	int o = snprintf(b, 256, "n=%zd %s controllen=%zu written=%d", n,
			 (mh.msg_flags & MSG_CTRUNC) ? "CTRUNC" : "-", (size_t)mh.msg_controllen, written);
	/* Walk the headers by hand: CMSG_NXTHDR skips a truncated last one. */
	size_t off = 0;
	while (off + sizeof(struct cmsghdr) <= mh.msg_controllen && o < 200) {
		struct cmsghdr h;
		memcpy(&h, ctl + off, sizeof(h));
		char d[160];
		cmsgdesc(d, sizeof(d), ctl + off, mh.msg_controllen - off);
		o += snprintf(b + o, 256 - o, " %s", d);
		if (h.cmsg_len < sizeof(struct cmsghdr))
			break;
		off += CMSG_ALIGN(h.cmsg_len);
	}
	return b;
}

int main(void)
{
	conf_init("cmsg");

	/* One message: IP_PKTINFO on IPv4, IPV6_PKTINFO on IPv6. */
	for (int i = 0; i < 2; i++) {
		int fam = i ? AF_INET6 : AF_INET;
		const char *p = i ? "cmsg6" : "cmsg4";
		size_t dlen = i ? sizeof(struct in6_pktinfo) : sizeof(struct in_pktinfo);
		int rp;
		int r = bound(fam, SOCK_DGRAM, &rp);
		int s = bound(fam, SOCK_DGRAM, NULL);
		if (i)
			setint(r, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
		else
			setint(r, IPPROTO_IP, IP_PKTINFO, 1);
		struct {
			const char *name;
			size_t len;
		} cases[] = {
			{"space", CMSG_SPACE(dlen)},
			{"len", CMSG_LEN(dlen)},
			{"len_minus1", CMSG_LEN(dlen) - 1},
			{"hdr_only", CMSG_LEN(0)},
			{"hdr_minus1", CMSG_LEN(0) - 1},
			{"one", 1},
			{"zero", 0},
			{"null", NOCTL},
			{"big", CTLBUF},
		};
		for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
			char name[64];
			snprintf(name, sizeof(name), "%s_%s", p, cases[c].name);
			sendself(s, fam, rp, "x", 1);
			check(name, "%s", recvctl(r, cases[c].len));
		}
		close(r);
		close(s);
	}

	/* Two messages: a dual-stack IPv6 socket with both options gets an
	 * IPv4 datagram as IPV6_PKTINFO (mapped address), then IP_PKTINFO. */
	{
		int r = xsocket(AF_INET6, SOCK_DGRAM);
		struct sockaddr_storage ss;
		socklen_t len = anyaddr(AF_INET6, 0, &ss);
		if (bind(r, SA(&ss), len) < 0)
			die("bind any6");
		int rp = localport(r);
		setint(r, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
		setint(r, IPPROTO_IP, IP_PKTINFO, 1);
		int s = bound(AF_INET, SOCK_DGRAM, NULL);
		size_t first = CMSG_SPACE(sizeof(struct in6_pktinfo));
		size_t l4 = CMSG_LEN(sizeof(struct in_pktinfo));
		struct {
			const char *name;
			size_t len;
		} cases[] = {
			{"cmsg2_space_space", first + CMSG_SPACE(sizeof(struct in_pktinfo))},
			{"cmsg2_space_len", first + l4},
			{"cmsg2_space_len_minus1", first + l4 - 1},
			{"cmsg2_space_hdr_only", first + CMSG_LEN(0)},
			{"cmsg2_space_only", first},
			{"cmsg2_len_only", CMSG_LEN(sizeof(struct in6_pktinfo))},
		};
		for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
			sendself(s, AF_INET, rp, "x", 1);
			check(cases[c].name, "%s", recvctl(r, cases[c].len));
		}
		close(r);
		close(s);
	}

	conf_done();
}
