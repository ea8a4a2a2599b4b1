/* udp.c - UDP datagrams: sizes, truncation, pktinfo, mmsg, connect. */
#include "conf.h"

#include <sys/uio.h>

/* sendself sends n bytes of buf from fd to SELF:port of family fam. */
static ssize_t sendself(int fd, int fam, int port, const void *buf, size_t n)
{
	struct sockaddr_storage ss;
	socklen_t len = selfaddr(fam, port, &ss);
	return sendto(fd, buf, n, 0, SA(&ss), len);
}

/* pktinfo receives one datagram on fd with recvmsg and describes the
 * destination address from its IP_PKTINFO / IPV6_PKTINFO control message. */
static const char *pktinfo(int fd)
{
	char data[64], ctl[256];
	struct iovec iov = {data, sizeof(data)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
	char *b = ring();
	ssize_t n = recvmsg(fd, &mh, 0);
	if (n < 0)
		return res(n);
	snprintf(b, 256, "n=%zd none", n);
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr = pi.ipi_addr};
			struct sockaddr_in d = {.sin_family = AF_INET, .sin_addr = pi.ipi_spec_dst};
			char h1[64];
			snprintf(h1, sizeof(h1), "%s", hoststr((struct sockaddr *)&a));
			snprintf(b, 256, "n=%zd IP_PKTINFO addr=%s spec_dst=%s ifindex>0=%d", n, h1,
				 hoststr((struct sockaddr *)&d), pi.ipi_ifindex > 0);
		}
		if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = pi.ipi6_addr};
			snprintf(b, 256, "n=%zd IPV6_PKTINFO addr=%s ifindex>0=%d", n, hoststr((struct sockaddr *)&a),
				 pi.ipi6_ifindex > 0);
		}
	}
	return b;
}

int main(void)
{
	conf_init("udp");
	static char big[70000];
	char buf[2048];
	struct sockaddr_storage from;
	socklen_t flen;

	for (int i = 0; i < 2; i++) {
		int fam = i ? AF_INET6 : AF_INET;
		int rp, sp;
		int r = bound(fam, SOCK_DGRAM, &rp);
		int s = bound(fam, SOCK_DGRAM, &sp);
		check(i ? "udp6_sendto" : "udp4_sendto", "%s", res(sendself(s, fam, rp, "ping", 4)));
		flen = sizeof(from);
		memset(buf, 0, 8);
		ssize_t n = recvfrom(r, buf, sizeof(buf), 0, SA(&from), &flen);
		check(i ? "udp6_recvfrom" : "udp4_recvfrom", "%s %.4s from=%s len=%u", res(n), buf,
		      sastr(SA(&from), sp), (unsigned)flen);
		close(r);
		close(s);
	}

	{
		int rp, sp;
		int r = bound(AF_INET, SOCK_DGRAM, &rp);
		int s = bound(AF_INET, SOCK_DGRAM, &sp);
		check("udp_emsgsize_70000", "%s", res(sendself(s, AF_INET, rp, big, 70000)));
		check("udp_emsgsize_65508", "%s", res(sendself(s, AF_INET, rp, big, 65508)));
		setint(r, SOL_SOCKET, SO_RCVBUF, 1 << 20);
		memset(big, 'b', sizeof(big));
		check("udp_max_65507", "%s", res(sendself(s, AF_INET, rp, big, 65507)));
		waitev(r, POLLIN, 5000);
		check("udp_max_65507_recv", "%s", res(recv(r, big, sizeof(big), 0)));

		/* Broadcast without SO_BROADCAST fails before anything is sent. */
		struct sockaddr_in bc = {.sin_family = AF_INET, .sin_port = htons(rp)};
		bc.sin_addr.s_addr = htonl(0x7fffffff);
		check("udp_broadcast_no_so_broadcast", "%s",
		      res(sendto(s, "b", 1, 0, (struct sockaddr *)&bc, sizeof(bc))));
		check("so_broadcast_default", "%s", getint(s, SOL_SOCKET, SO_BROADCAST));

		/* Truncation. */
		memset(buf, 'x', 100);
		sendself(s, AF_INET, rp, buf, 100);
		waitev(r, POLLIN, 5000);
		check("udp_msg_trunc_flag", "%s", res(recv(r, buf, 10, MSG_TRUNC)));
		sendself(s, AF_INET, rp, buf, 100);
		waitev(r, POLLIN, 5000);
		struct iovec iov = {buf, 10};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n = recvmsg(r, &mh, 0);
		check("udp_recvmsg_truncated", "%s msg_trunc=%d", res(n), (mh.msg_flags & MSG_TRUNC) != 0);
		check("udp_trunc_rest_discarded", "%s", res(recv(r, buf, sizeof(buf), MSG_DONTWAIT)));

		/* Peek, FIONREAD (size of the next datagram), zero length. */
		sendself(s, AF_INET, rp, "0123456789", 10);
		sendself(s, AF_INET, rp, "abcdefghijklmnopqrst", 20);
		waitev(r, POLLIN, 5000);
		int q = -1;
		ioctl(r, FIONREAD, &q);
		check("udp_fionread_first", "%d", q);
		check("udp_peek", "%s", res(recv(r, buf, sizeof(buf), MSG_PEEK)));
		check("udp_after_peek", "%s", res(recv(r, buf, sizeof(buf), 0)));
		check("udp_second", "%s", res(recv(r, buf, sizeof(buf), 0)));
		check("udp_send_zero", "%s", res(sendself(s, AF_INET, rp, buf, 0)));
		int rev = waitev(r, POLLIN, 5000);
		check("udp_recv_zero", "%s %s", revstr(rev), res(recv(r, buf, sizeof(buf), MSG_DONTWAIT)));
		check("udp_recv_empty", "%s", res(recv(r, buf, sizeof(buf), MSG_DONTWAIT)));
		check("udp_send_unconnected", "%s", res(send(s, "x", 1, 0)));
		check("udp_poll_idle", "%s", revstr(waitev(s, POLLIN | POLLOUT, 0)));
		close(r);
		close(s);
	}

	{
		/* Connected UDP. */
		int rp, sp;
		int r = bound(AF_INET, SOCK_DGRAM, &rp);
		int s = bound(AF_INET, SOCK_DGRAM, &sp);
		struct sockaddr_storage ss;
		socklen_t len = selfaddr(AF_INET, rp, &ss);
		check("udp_connect", "%s", ok0(connect(s, SA(&ss), len)));
		flen = sizeof(from);
		getpeername(s, SA(&from), &flen);
		check("udp_connect_peername", "%s", sastr(SA(&from), rp));
		check("udp_connected_send", "%s", res(send(s, "abc", 3, 0)));
		flen = sizeof(from);
		ssize_t n = recvfrom(r, buf, sizeof(buf), 0, SA(&from), &flen);
		check("udp_connected_recvfrom", "%s from=%s", res(n), sastr(SA(&from), sp));
		check("udp_reply", "%s", res(sendto(r, "xyz", 3, 0, SA(&from), flen)));
		memset(buf, 0, 4);
		waitev(s, POLLIN, 5000);
		check("udp_connected_recv", "%s %.3s", res(recv(s, buf, sizeof(buf), 0)), buf);
		/* An empty datagram on a connected socket is a datagram, and
		 * the socket goes on (under seccomp its app end carries bare
		 * payloads, where the broker took the empty record for the
		 * program's close). */
		check("udp_connected_send_zero", "%s", res(send(s, buf, 0, 0)));
		check("udp_connected_send_after_zero", "%s", res(send(s, "def", 3, 0)));
		waitev(r, POLLIN, 5000);
		flen = sizeof(from);
		n = recvfrom(r, buf, sizeof(buf), 0, SA(&from), &flen);
		flen = sizeof(from);
		check("udp_connected_zero_recv", "%s %s", res(n), res(recvfrom(r, buf, sizeof(buf), 0, SA(&from), &flen)));
		struct sockaddr unspec = {.sa_family = AF_UNSPEC};
		check("udp_disconnect", "%s", ok0(connect(s, &unspec, sizeof(unspec))));
		flen = sizeof(from);
		check("udp_disconnect_peername", "%s", ok0(getpeername(s, SA(&from), &flen)));
		check("udp_shutdown_unconnected", "%s", ok0(shutdown(s, SHUT_RDWR)));
		close(r);
		close(s);
	}

	{
		/* A connected UDP socket learns ECONNREFUSED from the ICMP port
		 * unreachable answering its datagram to a port with no socket. */
		int s = bound(AF_INET, SOCK_DGRAM, NULL);
		struct sockaddr_storage ss;
		socklen_t len = selfaddr(AF_INET, closed_port(AF_INET), &ss);
		connect(s, SA(&ss), len);
		check("udp_send_to_closed", "%s", res(send(s, "x", 1, 0)));
		check("udp_closed_poll", "%s", revstr(waitev(s, POLLIN, 5000)));
		check("udp_closed_recv", "%s", res(recv(s, buf, sizeof(buf), MSG_DONTWAIT)));
		check("udp_closed_recv_again", "%s", res(recv(s, buf, sizeof(buf), MSG_DONTWAIT)));
		/* A second datagram, and a send after its port unreachable
		 * has come back: Linux reports the error to that send. */
		send(s, "x", 1, 0);
		waitev(s, POLLIN, 1000);
		check("udp_send_after_refused", "%s", res(send(s, "x", 1, 0)));
		check("udp_recv_after_refused_send", "%s", res(recv(s, buf, sizeof(buf), MSG_DONTWAIT)));
		close(s);
	}

	{
		/* sendmmsg / recvmmsg with three datagrams. */
		int rp;
		int r = bound(AF_INET, SOCK_DGRAM, &rp);
		int s = bound(AF_INET, SOCK_DGRAM, NULL);
		struct sockaddr_storage ss;
		socklen_t len = selfaddr(AF_INET, rp, &ss);
		char *msgs[3] = {"one", "three", "fivefive"};
		struct iovec iov[3];
		struct mmsghdr mm[3];
		memset(mm, 0, sizeof(mm));
		for (int i = 0; i < 3; i++) {
			iov[i].iov_base = msgs[i];
			iov[i].iov_len = strlen(msgs[i]);
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
			mm[i].msg_hdr.msg_name = &ss;
			mm[i].msg_hdr.msg_namelen = len;
		}
		int n = sendmmsg(s, mm, 3, 0);
		check("sendmmsg", "%s lens=%u,%u,%u", res(n), mm[0].msg_len, mm[1].msg_len, mm[2].msg_len);
		char rb[3][32];
		struct sockaddr_storage rf[3];
		memset(mm, 0, sizeof(mm));
		for (int i = 0; i < 3; i++) {
			iov[i].iov_base = rb[i];
			iov[i].iov_len = sizeof(rb[i]);
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
			mm[i].msg_hdr.msg_name = &rf[i];
			mm[i].msg_hdr.msg_namelen = sizeof(rf[i]);
		}
		n = recvmmsg(r, mm, 3, 0, NULL);
		check("recvmmsg", "%s lens=%u,%u,%u %.3s from=%s", res(n), mm[0].msg_len, mm[1].msg_len,
		      mm[2].msg_len, rb[0], hoststr(SA(&rf[2])));
		check("recvmmsg_empty_dontwait", "%s", res(recvmmsg(r, mm, 3, MSG_DONTWAIT, NULL)));
		close(r);
		close(s);
	}

	{
		/* IP_PKTINFO on a wildcard-bound socket names the destination. */
		int r = xsocket(AF_INET, SOCK_DGRAM);
		struct sockaddr_storage ss;
		socklen_t len = anyaddr(AF_INET, 0, &ss);
		bind(r, SA(&ss), len);
		int rp = localport(r);
		check("ip_pktinfo_set", "%s", setint(r, IPPROTO_IP, IP_PKTINFO, 1));
		int s = bound(AF_INET, SOCK_DGRAM, NULL);
		sendself(s, AF_INET, rp, "pk", 2);
		check("ip_pktinfo_recv", "%s", pktinfo(r));

		/* sendmsg accepts an IP_PKTINFO naming the source address. */
		char ctl[CMSG_SPACE(sizeof(struct in_pktinfo))];
		memset(ctl, 0, sizeof(ctl));
		struct iovec iov = {"sp", 2};
		len = selfaddr(AF_INET, rp, &ss);
		struct msghdr mh = {.msg_name = &ss,
				    .msg_namelen = len,
				    .msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl,
				    .msg_controllen = sizeof(ctl)};
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = IPPROTO_IP;
		cm->cmsg_type = IP_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
		struct in_pktinfo pi = {.ipi_spec_dst = conf_addr4};
		memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
		int u = xsocket(AF_INET, SOCK_DGRAM);
		check("sendmsg_pktinfo", "%s", res(sendmsg(u, &mh, 0)));
		flen = sizeof(from);
		waitev(r, POLLIN, 5000);
		ssize_t n = recvfrom(r, buf, sizeof(buf), 0, SA(&from), &flen);
		check("sendmsg_pktinfo_from", "%s %s", res(n), sastr(SA(&from), localport(u)));
		close(u);
		close(r);
		close(s);

		r = xsocket(AF_INET6, SOCK_DGRAM);
		setint(r, IPPROTO_IPV6, IPV6_V6ONLY, 1);
		len = anyaddr(AF_INET6, 0, &ss);
		bind(r, SA(&ss), len);
		rp = localport(r);
		check("ipv6_recvpktinfo_set", "%s", setint(r, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1));
		s = bound(AF_INET6, SOCK_DGRAM, NULL);
		sendself(s, AF_INET6, rp, "pk6", 3);
		check("ipv6_pktinfo_recv", "%s", pktinfo(r));
		close(r);
		close(s);
	}

	{
		/* A dual-stack v6 socket receives IPv4 datagrams from a mapped address. */
		int r = xsocket(AF_INET6, SOCK_DGRAM);
		struct sockaddr_storage ss;
		socklen_t len = anyaddr(AF_INET6, 0, &ss);
		bind(r, SA(&ss), len);
		int rp = localport(r);
		int sp;
		int s = bound(AF_INET, SOCK_DGRAM, &sp);
		sendself(s, AF_INET, rp, "v4", 2);
		flen = sizeof(from);
		ssize_t n = recvfrom(r, buf, sizeof(buf), 0, SA(&from), &flen);
		check("udp_dualstack_v4_from", "%s %s len=%u", res(n), sastr(SA(&from), sp), (unsigned)flen);
		close(r);
		close(s);
	}

	{
		/* UDP port sharing follows SO_REUSEADDR on both sockets. */
		int port;
		int a = xsocket(AF_INET, SOCK_DGRAM), b = xsocket(AF_INET, SOCK_DGRAM);
		struct sockaddr_storage ss;
		socklen_t len = selfaddr(AF_INET, 0, &ss);
		bind(a, SA(&ss), len);
		port = localport(a);
		len = selfaddr(AF_INET, port, &ss);
		check("udp_bind_inuse", "%s", ok0(bind(b, SA(&ss), len)));
		close(a);
		close(b);
		a = xsocket(AF_INET, SOCK_DGRAM);
		b = xsocket(AF_INET, SOCK_DGRAM);
		setint(a, SOL_SOCKET, SO_REUSEADDR, 1);
		setint(b, SOL_SOCKET, SO_REUSEADDR, 1);
		len = selfaddr(AF_INET, 0, &ss);
		bind(a, SA(&ss), len);
		port = localport(a);
		len = selfaddr(AF_INET, port, &ss);
		check("udp_bind_reuseaddr_both", "%s", ok0(bind(b, SA(&ss), len)));
		close(a);
		close(b);
	}

	{
		/* A socket bound to another local address (natively any 127/8
		 * address, under swrap any emulated host's) receives what is sent
		 * there, IP_PKTINFO names that address, and it answers from it. */
		int r = xsocket(AF_INET, SOCK_DGRAM);
		struct sockaddr_storage ss;
		socklen_t len = peeraddr4(0, &ss);
		check("udp_bind_peer4", "%s", ok0(bind(r, SA(&ss), len)));
		setint(r, IPPROTO_IP, IP_PKTINFO, 1);
		int rp = localport(r), sp;
		int s = bound(AF_INET, SOCK_DGRAM, &sp);
		len = peeraddr4(rp, &ss);
		sendto(s, "p1", 2, 0, SA(&ss), len);
		waitev(r, POLLIN, 5000);
		check("udp_peer4_pktinfo", "%s", pktinfo(r));
		sendto(s, "p2", 2, 0, SA(&ss), len);
		flen = sizeof(from);
		waitev(r, POLLIN, 5000);
		ssize_t n = recvfrom(r, buf, sizeof(buf), 0, SA(&from), &flen);
		check("udp_peer4_from", "%s %s", res(n), sastr(SA(&from), sp));
		sendto(r, "a", 1, 0, SA(&from), flen);
		flen = sizeof(from);
		waitev(s, POLLIN, 5000);
		n = recvfrom(s, buf, sizeof(buf), 0, SA(&from), &flen);
		check("udp_peer4_answer_from", "%s %s", res(n), sastr(SA(&from), rp));
		close(s);
		close(r);
	}

	for (int i = 0; i < 2; i++) {
		/* A UDP socket's port is closed when close() returns: a
		 * datagram sent to it right after is answered with a port
		 * unreachable, every time, never delivered to the closed
		 * socket (the broker learns of a close a moment later; the
		 * shim's close waits for it). */
		int fam = i ? AF_INET6 : AF_INET, refused = 0;
		char other[64] = "";
		for (int n = 0; n < 50; n++) {
			int port;
			close(bound(fam, SOCK_DGRAM, &port));
			int s = bound(fam, SOCK_DGRAM, NULL);
			struct sockaddr_storage ss;
			socklen_t len = selfaddr(fam, port, &ss);
			connect(s, SA(&ss), len);
			send(s, "x", 1, 0);
			waitev(s, POLLIN, 1000);
			const char *r = res(recv(s, buf, sizeof(buf), MSG_DONTWAIT));
			if (strcmp(r, "ECONNREFUSED") == 0)
				refused++;
			else {
				snprintf(other, sizeof(other), "%s", r);
				close(s);
				break; /* each such round may cost a timeout */
			}
			close(s);
		}
		check(i ? "udp6_after_close_refused" : "udp4_after_close_refused", "refused %d of 50 %s",
		      refused, other);
	}

	for (int i = 0; i < 2; i++) {
		/* close() loses none of the datagrams a socket sent, also when
		 * one it received is still unread: 20 sockets, each with a
		 * datagram queued that it never reads, send 10 datagrams each
		 * and close at once. (The kernel gives the broker's end of a
		 * socket closed with unread data ECONNRESET, which the broker
		 * took for the end and dropped what it had not read yet.) */
		int fam = i ? AF_INET6 : AF_INET, rp, got = 0;
		int r = bound(fam, SOCK_DGRAM, &rp);
		struct sockaddr_storage to, back;
		socklen_t tolen = selfaddr(fam, rp, &to);
		for (int n = 0; n < 20; n++) {
			int sp;
			int s = bound(fam, SOCK_DGRAM, &sp);
			socklen_t blen = selfaddr(fam, sp, &back);
			sendto(r, "u", 1, 0, SA(&back), blen);
			waitev(s, POLLIN, 1000);
			for (int k = 0; k < 10; k++)
				sendto(s, "d", 1, 0, SA(&to), tolen);
			close(s);
		}
		while (waitev(r, POLLIN, 500) & POLLIN) {
			socklen_t flen = sizeof(from); /* an address: stopped under seccomp too */
			if (recvfrom(r, buf, sizeof(buf), MSG_DONTWAIT, SA(&from), &flen) != 1)
				break;
			got++;
		}
		check(i ? "udp6_close_unread_keeps_sent" : "udp4_close_unread_keeps_sent", "got %d of 200", got);
		close(r);
	}

	conf_done();
}
