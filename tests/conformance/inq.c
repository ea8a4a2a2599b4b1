/*
 * inq.c - FIONREAD / SIOCINQ on connected TCP sockets, the way programs
 * use it: wait for data (poll), then ask how much there is; poll FIONREAD
 * until an expected total is there; read part and ask again.
 *
 * Under swrap the bytes of a connection sit in the program's own socket
 * and, not yet delivered, in the broker; FIONREAD must still give every
 * byte a program waits for.
 */
#include "conf.h"

#include <linux/sockios.h>
#include <time.h>

static char buf[1 << 18];

static int inq(int fd, unsigned long req)
{
	int n = -1;
	if (ioctl(fd, req, &n) < 0)
		return -errno;
	return n;
}

/* wait_inq polls FIONREAD (with poll() between tries) until it reaches
 * want or 5 s pass; returns the last value. */
static int wait_inq(int fd, int want)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int n = inq(fd, FIONREAD);
		if (n >= want || n < 0)
			return n;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 5)
			return n;
		struct timespec d = {0, 1000000};
		nanosleep(&d, NULL);
	}
}

int main(void)
{
	conf_init("inq");
	memset(buf, 'q', sizeof(buf));

	for (int i = 0; i < 2; i++) {
		int fam = i ? AF_INET6 : AF_INET;
		const char *p = i ? "inq6" : "inq4";
		char name[64];
		int c, s;
		tcp_pair(fam, &c, &s);

		/* A message the size of a request: poll, then FIONREAD. */
		writeall(c, buf, 1000);
		int rev = waitev(s, POLLIN, 5000);
		snprintf(name, sizeof(name), "%s_after_1000", p);
		check(name, "%s fionread=%d siocinq=%d", revstr(rev), inq(s, FIONREAD), inq(s, SIOCINQ));
		readall(s, buf, 300);
		snprintf(name, sizeof(name), "%s_after_read_300", p);
		check(name, "fionread=%d", inq(s, FIONREAD));
		readall(s, buf, 700);
		snprintf(name, sizeof(name), "%s_drained", p);
		check(name, "fionread=%d", inq(s, FIONREAD));

		/* A larger transfer: a program polls FIONREAD until it has all
		 * (less than Linux's default receive buffer holds). */
		writeall(c, buf, 60000);
		snprintf(name, sizeof(name), "%s_wait_60000", p);
		check(name, "fionread=%d", wait_inq(s, 60000));
		readall(s, buf, 60000);

		/* The other direction, on the connecting socket. */
		writeall(s, buf, 4096);
		rev = waitev(c, POLLIN, 5000);
		snprintf(name, sizeof(name), "%s_client_after_4096", p);
		check(name, "%s fionread=%d", revstr(rev), wait_inq(c, 4096));
		readall(c, buf, 4096);

		/* Bytes that came before the peer's FIN still count. */
		writeall(c, buf, 500);
		close(c);
		rev = waitev(s, POLLRDHUP, 5000);
		snprintf(name, sizeof(name), "%s_after_fin", p);
		check(name, "%s fionread=%d", revstr(rev), wait_inq(s, 500));
		readall(s, buf, 500);
		snprintf(name, sizeof(name), "%s_after_fin_drained", p);
		check(name, "fionread=%d read=%s", inq(s, FIONREAD), res(read(s, buf, 1)));
		close(s);
	}

	conf_done();
}
