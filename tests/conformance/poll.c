/* poll.c - readiness through poll, epoll and select. */
#include "conf.h"

#include <sys/epoll.h>
#include <sys/select.h>

/* evstr names the bits of an epoll event mask, "0" if none. */
static const char *evstr(uint32_t ev)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} bits[] = {
		{EPOLLIN, "IN"}, {EPOLLPRI, "PRI"}, {EPOLLOUT, "OUT"}, {EPOLLERR, "ERR"}, {EPOLLHUP, "HUP"}, {EPOLLRDHUP, "RDHUP"},
	};
	char *b = ring();
	b[0] = 0;
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		if (ev & bits[i].bit) {
			if (b[0])
				strcat(b, "|");
			strcat(b, bits[i].name);
			ev &= ~bits[i].bit;
		}
	}
	if (ev)
		snprintf(b + strlen(b), 64, "%s0x%x", b[0] ? "|" : "", ev);
	if (!b[0])
		strcpy(b, "0");
	return b;
}

/* epwait waits up to ms for one event of ep; returns "n:events". */
static const char *epwait(int ep, int ms)
{
	struct epoll_event ev;
	int n = epoll_wait(ep, &ev, 1, ms);
	char *b = ring();
	if (n < 0)
		return res(n);
	snprintf(b, 256, "%d:%s", n, n ? evstr(ev.events) : "-");
	return b;
}

/* epadd registers fd with ep for events. */
static void epadd(int ep, int fd, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.fd = fd};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		die("epoll_ctl");
}

/* selectone runs select on one fd for read and/or write with a timeout. */
static const char *selectone(int fd, int rd, int wr, int ms)
{
	fd_set r, w;
	FD_ZERO(&r);
	FD_ZERO(&w);
	if (rd)
		FD_SET(fd, &r);
	if (wr)
		FD_SET(fd, &w);
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	int n = select(fd + 1, &r, &w, NULL, &tv);
	char *b = ring();
	if (n < 0)
		return res(n);
	snprintf(b, 256, "%d:%s%s", n, FD_ISSET(fd, &r) ? "r" : "", FD_ISSET(fd, &w) ? "w" : "");
	return b;
}

int main(void)
{
	conf_init("poll");
	char buf[64];

	{
		/* A fresh TCP socket reports OUT|HUP; a fresh UDP socket OUT. */
		int fd = xsocket(AF_INET, SOCK_STREAM);
		check("poll_fresh_tcp", "%s", revstr(waitev(fd, POLLIN | POLLOUT, 0)));
		close(fd);
		fd = xsocket(AF_INET, SOCK_DGRAM);
		check("poll_fresh_udp", "%s", revstr(waitev(fd, POLLIN | POLLOUT, 0)));
		close(fd);
		struct pollfd p = {.fd = 999, .events = POLLIN};
		const char *pr = res(poll(&p, 1, 0));
		check("poll_bad_fd", "%s %s", pr, revstr(p.revents));
	}

	{
		int port;
		int l = tcp_listener(AF_INET, &port);
		check("poll_listener_idle", "%s", revstr(waitev(l, POLLIN | POLLOUT, 0)));
		check("select_listener_idle", "%s", selectone(l, 1, 1, 0));
		int ep = epoll_create1(EPOLL_CLOEXEC);
		epadd(ep, l, EPOLLIN | EPOLLOUT);
		check("epoll_listener_idle", "%s", epwait(ep, 0));
		int c = tcp_connect(AF_INET, port);
		check("epoll_listener_pending", "%s", epwait(ep, 5000));
		check("poll_listener_pending", "%s", revstr(waitev(l, POLLIN | POLLOUT, 5000)));
		check("select_listener_pending", "%s", selectone(l, 1, 0, 5000));
		int s = accept(l, NULL, NULL);
		check("poll_listener_after_accept", "%s", revstr(waitev(l, POLLIN, 0)));
		close(ep);

		check("poll_connected_idle", "%s", revstr(waitev(c, POLLIN | POLLOUT, 0)));
		check("select_connected_idle", "%s", selectone(c, 1, 1, 0));
		send(s, "data", 4, 0);
		check("poll_readable", "%s", revstr(waitev(c, POLLIN, 5000)));
		check("poll_readable_rw", "%s", revstr(waitev(c, POLLIN | POLLOUT | POLLRDHUP, 0)));
		check("select_readable", "%s", selectone(c, 1, 1, 5000));
		recv(c, buf, sizeof(buf), 0);
		check("poll_drained", "%s", revstr(waitev(c, POLLIN, 0)));

		/* Edge-triggered epoll reports new data once. */
		ep = epoll_create1(0);
		epadd(ep, c, EPOLLIN | EPOLLET);
		check("epoll_et_idle", "%s", epwait(ep, 0));
		send(s, "more", 4, 0);
		check("epoll_et_data", "%s", epwait(ep, 5000));
		check("epoll_et_no_repeat", "%s", epwait(ep, 0));
		recv(c, buf, sizeof(buf), 0);
		close(ep);

		/* Level-triggered epoll keeps reporting, and sees the peer's FIN. */
		ep = epoll_create1(0);
		epadd(ep, c, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
		check("epoll_lt_writable", "%s", epwait(ep, 0));
		shutdown(s, SHUT_WR);
		waitev(c, POLLRDHUP, 5000);
		check("epoll_lt_peer_fin", "%s", epwait(ep, 0));
		check("epoll_lt_peer_fin_again", "%s", epwait(ep, 0));
		check("poll_peer_fin", "%s", revstr(waitev(c, POLLIN | POLLOUT | POLLRDHUP, 0)));
		check("select_peer_fin", "%s", selectone(c, 1, 0, 0));
		close(ep);

		/* After both directions closed. */
		shutdown(c, SHUT_WR);
		waitev(s, POLLRDHUP, 5000);
		usleep(20 * 1000);
		check("poll_both_closed", "%s", revstr(waitev(c, POLLIN | POLLOUT | POLLRDHUP, 0)));
		close(c);
		close(s);
		close(l);
	}

	{
		/* UDP readiness. */
		int rp;
		int r = bound(AF_INET, SOCK_DGRAM, &rp);
		int u = xsocket(AF_INET, SOCK_DGRAM);
		int ep = epoll_create1(0);
		epadd(ep, r, EPOLLIN);
		check("epoll_udp_idle", "%s", epwait(ep, 0));
		struct sockaddr_storage ss;
		socklen_t len = selfaddr(AF_INET, rp, &ss);
		sendto(u, "d", 1, 0, SA(&ss), len);
		check("epoll_udp_readable", "%s", epwait(ep, 5000));
		check("select_udp_readable", "%s", selectone(r, 1, 1, 0));
		check("poll_udp_readable", "%s", revstr(waitev(r, POLLIN | POLLOUT, 0)));
		close(ep);
		close(r);
		close(u);
	}

	{
		/* Closing an fd removes it from an epoll set. */
		int c, s;
		tcp_pair(AF_INET, &c, &s);
		int ep = epoll_create1(0);
		epadd(ep, c, EPOLLOUT);
		check("epoll_before_close", "%s", epwait(ep, 0));
		close(c);
		check("epoll_after_close", "%s", epwait(ep, 0));
		check("epoll_ctl_closed_fd", "%s", ok0(epoll_ctl(ep, EPOLL_CTL_DEL, c, NULL)));
		close(ep);
		close(s);
	}

	conf_done();
}
