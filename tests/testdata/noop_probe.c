/* noop_probe.c - links with -lsocket_wrapper_noop (socket_wrapper.h) and
 * prints what socket_wrapper_enabled() answers: false unwrapped (the noop
 * library), true under the preload (the shim's definition comes first).
 * It also prints the local address a UDP socket connected to 127.0.0.20:9
 * gets (no datagram is sent): host N's 127.0.0.N when wrapped, the
 * kernel's 127.0.0.1 otherwise. With "expect-wrapped", exits 1 unless both
 * show the wrapper. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <socket_wrapper.h>

int main(int argc, char **argv)
{
	bool on = socket_wrapper_enabled();
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(9) };
	socklen_t len = sizeof(sin);
	char local[INET_ADDRSTRLEN] = "?";
	int s;

	socket_wrapper_indicate_no_inet_fd(0); /* stdin is no socket; must be harmless */
	printf("socket_wrapper_enabled: %s\n", on ? "true" : "false");
	inet_pton(AF_INET, "127.0.0.20", &sin.sin_addr);
	s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(s, (struct sockaddr *)&sin, &len) < 0) {
		perror("noop_probe: udp socket");
		return 1;
	}
	inet_ntop(AF_INET, &sin.sin_addr, local, sizeof(local));
	printf("local address: %s\n", local);
	close(s);
	if (argc > 1 && strcmp(argv[1], "expect-wrapped") == 0)
		return on && strcmp(local, "127.0.0.1") != 0 ? 0 : 1;
	return 0;
}
