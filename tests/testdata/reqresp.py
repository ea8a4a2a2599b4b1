#!/usr/bin/env python3
"""Request/response and bulk over TCP, run as two processes under the shim.

    reqresp.py server ADDR PORT ROUNDS
        Accepts one connection and answers each 16-byte request with 32
        bytes, ROUNDS times, then waits for EOF and closes. Then accepts a
        second connection, reads it to EOF and answers "got N". Exits 0.

    reqresp.py client ADDR PORT ROUNDS BULK
        Makes ROUNDS requests on one connection, each one awaiting its
        answer (as redis or an HTTP keep-alive client does), closes it,
        then sends BULK bytes on a second connection, half-closes it and
        reads the answer. Prints "OK <rounds> <bulk>" and exits 0.
"""

import socket
import sys


def recv_exactly(s, n):
    b = b""
    while len(b) < n:
        x = s.recv(n - len(b))
        if not x:
            raise SystemExit("FAIL early EOF after %d of %d bytes" % (len(b), n))
        b += x
    return b


def server(addr, port, rounds):
    ls = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(1)
    c, _ = ls.accept()
    for i in range(rounds):
        recv_exactly(c, 16)
        c.sendall(b"%032d" % i)
    while c.recv(4096):
        pass
    c.close()
    c, _ = ls.accept()
    n = 0
    while True:
        x = c.recv(1 << 16)
        if not x:
            break
        n += len(x)
    c.sendall(b"got %d" % n)
    c.close()


def client(addr, port, rounds, bulk):
    s = socket.create_connection((addr, port))
    for i in range(rounds):
        s.sendall(b"%016d" % i)
        if recv_exactly(s, 32) != b"%032d" % i:
            raise SystemExit("FAIL answer %d" % i)
    s.close()
    s = socket.create_connection((addr, port))
    s.sendall(b"b" * bulk)
    s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        x = s.recv(64)
        if not x:
            break
        got += x
    if got != b"got %d" % bulk:
        raise SystemExit("FAIL bulk answer %r" % got)
    print("OK %d %d" % (rounds, bulk))


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
