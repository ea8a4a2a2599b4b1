#!/usr/bin/env python3
"""Kernel loopback client/server exchange whose output does not depend on
ports or timing, so that two runs can be compared line for line.

    loopback_check.py

For 127.0.0.1 and ::1: a TCP server thread and a client (1 MiB each way,
digests compared, addresses printed), a connect to a closed port (errno
printed), and a UDP round trip (sender address printed). Exits 0.
"""

import errno
import hashlib
import socket
import sys
import threading


def data(n, seed):
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b"%s %d" % (seed, i)).digest()
        i += 1
    return bytes(out[:n])


def recv_all(s):
    got = bytearray()
    while True:
        b = s.recv(65536)
        if not b:
            return bytes(got)
        got += b


def tcp(fam, host):
    ln = socket.socket(fam, socket.SOCK_STREAM)
    ln.bind((host, 0))
    ln.listen(4)
    port = ln.getsockname()[1]
    seen = {}

    def serve():
        c, peer = ln.accept()
        seen["peer"] = peer[0]
        seen["local"] = c.getsockname()[0]
        got = recv_all(c)
        seen["sha"] = hashlib.sha256(got).hexdigest()
        c.sendall(data(1 << 20, b"reply"))
        c.close()

    th = threading.Thread(target=serve)
    th.start()
    c = socket.create_connection((host, port), timeout=10)
    local = c.getsockname()[0]
    peer = c.getpeername()[0]
    c.sendall(data(1 << 20, b"request"))
    c.shutdown(socket.SHUT_WR)
    reply = recv_all(c)
    c.close()
    th.join()
    ln.close()
    print("tcp %s client local=%s peer=%s" % (host, local, peer))
    print("tcp %s server local=%s peer=%s" % (host, seen["local"], seen["peer"]))
    print("tcp %s request sha256 %s" % (host, seen["sha"]))
    print("tcp %s reply sha256 %s" % (host, hashlib.sha256(reply).hexdigest()))


def refused(fam, host):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()  # never listened: nothing on that port now
    c = socket.socket(fam, socket.SOCK_STREAM)
    err = c.connect_ex((host, port))
    c.close()
    print("tcp %s connect to closed port: %s" % (host, errno.errorcode.get(err, err)))


def udp(fam, host):
    srv = socket.socket(fam, socket.SOCK_DGRAM)
    srv.bind((host, 0))
    cl = socket.socket(fam, socket.SOCK_DGRAM)
    cl.settimeout(10)
    srv.settimeout(10)
    msg = data(1200, b"udp")
    cl.sendto(msg, srv.getsockname()[:2])
    got, sender = srv.recvfrom(65536)
    srv.sendto(got[::-1], sender)
    back, frm = cl.recvfrom(65536)
    print("udp %s server saw %d bytes from %s, intact=%s" % (host, len(got), sender[0], got == msg))
    print("udp %s client got %d bytes from %s, intact=%s" % (host, len(back), frm[0], back == msg[::-1]))
    srv.close()
    cl.close()


def main():
    for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        tcp(fam, host)
        refused(fam, host)
        udp(fam, host)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
