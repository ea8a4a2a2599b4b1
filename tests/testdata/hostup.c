/*
 * hostup.c - what a short-lived program does to its host, for
 * TestBrokerHostsFootprint: a TCP listener on argv[1]:argv[2], a UDP
 * datagram to argv[3]:9 (another host, so a frame crosses the fabric), then
 * everything closed. Prints "ok" when all of it worked.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in me = { .sin_family = AF_INET }, peer = { .sin_family = AF_INET, .sin_port = htons(9) };
	int l, u;

	if (argc != 4 || inet_pton(AF_INET, argv[1], &me.sin_addr) != 1 ||
	    inet_pton(AF_INET, argv[3], &peer.sin_addr) != 1) {
		fprintf(stderr, "usage: hostup ADDR PORT PEER\n");
		return 2;
	}
	me.sin_port = htons(atoi(argv[2]));
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&me, sizeof(me)) < 0 || listen(l, 16) < 0) {
		perror("listen");
		return 1;
	}
	u = socket(AF_INET, SOCK_DGRAM, 0);
	if (u < 0 || sendto(u, "x", 1, 0, (struct sockaddr *)&peer, sizeof(peer)) != 1) {
		perror("sendto");
		return 1;
	}
	close(u);
	close(l);
	printf("ok\n");
	return 0;
}
