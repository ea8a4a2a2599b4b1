#!/usr/bin/env python3
"""A multi-homed server and its clients, run under the shim (bindany_test.go).

Addresses are printed as ADDR:PORT or [ADDR]:PORT, errors as errno names.

    multihome.py tcp-server PORT ADDR...
        Listens on every ADDR:PORT, prints "listening", and serves each
        connection: an 8-byte big-endian length, that many bytes, answered
        with one line "local=L peer=P sha256=H" (its own getsockname and
        getpeername, the data's hash). Keeps the connection until the peer
        closes it. Runs until killed.

    multihome.py tcp-client SIZE TIMEOUT SPEC...
        SPEC is DST or SRC/DST (SRC bound, port 0, before connecting). For
        each, connects (TIMEOUT seconds at most), sends SIZE random bytes as
        above and prints "dst=D local=L peer=P sent=H reply=LINE", or
        "dst=D error=ERRNO". Then prints "done" and holds the connections
        until stdin closes.

    multihome.py udp-server ADDR PORT
        Binds ADDR:PORT with IP_PKTINFO / IPV6_RECVPKTINFO, prints "bound",
        and answers each datagram to its sender with "dst=PKTINFO_ADDR
        from=SENDER data=DATA". Runs until killed.

    multihome.py udp-client DST DATA
        Sends DATA to DST and prints "from=SOURCE reply=REPLY" for the answer
        (5 s at most).

    multihome.py bind PROTO ADDR PORT [hold|noreuse]
        Binds a PROTO (tcp or udp) socket, SO_REUSEADDR set unless noreuse,
        and prints "ok NAME" (getsockname) or "error ERRNO". With hold, a
        bound TCP socket listens, and the program waits for stdin to close.
"""

import errno
import hashlib
import ipaddress
import os
import selectors
import socket
import struct
import sys

# Linux's IP_PKTINFO; not every Python's socket module names it.
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)


def fmt(sa):
    if ":" in sa[0]:
        return "[%s]:%d" % (sa[0], sa[1])
    return "%s:%d" % (sa[0], sa[1])


def parse(s):
    """ADDR:PORT or [ADDR]:PORT to (family, (addr, port))."""
    host, _, port = s.rpartition(":")
    host = host.strip("[]")
    return family(host), (host, int(port))


def family(addr):
    return socket.AF_INET6 if ipaddress.ip_address(addr).version == 6 else socket.AF_INET


def ename(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__


def readn(c, n):
    b = bytearray()
    while len(b) < n:
        chunk = c.recv(min(n - len(b), 65536))
        if not chunk:
            return None
        b += chunk
    return bytes(b)


def tcp_server(port, addrs):
    sel = selectors.DefaultSelector()
    for a in addrs:
        s = socket.socket(family(a), socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((a, port))
        s.listen(16)
        sel.register(s, selectors.EVENT_READ, "listener")
    print("listening", flush=True)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if key.data == "listener":
                c, _ = s.accept()
                sel.register(c, selectors.EVENT_READ, "conn")
                continue
            hdr = readn(s, 8)
            if hdr is None:
                sel.unregister(s)
                s.close()
                continue
            data = readn(s, struct.unpack(">Q", hdr)[0])
            if data is None:
                sel.unregister(s)
                s.close()
                continue
            line = "local=%s peer=%s sha256=%s\n" % (
                fmt(s.getsockname()), fmt(s.getpeername()), hashlib.sha256(data).hexdigest())
            s.sendall(line.encode())


def tcp_client(size, timeout, specs):
    held = []
    for spec in specs:
        src, _, dst = spec.rpartition("/")
        fam, sa = parse(dst)
        c = socket.socket(fam, socket.SOCK_STREAM)
        c.settimeout(timeout)
        try:
            if src:
                c.bind((src, 0))
            c.connect(sa)
            data = os.urandom(size)
            c.sendall(struct.pack(">Q", len(data)) + data)
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = c.recv(4096)
                if not chunk:
                    raise ConnectionResetError(errno.ECONNRESET, "EOF before the reply")
                reply += chunk
        except socket.timeout:
            print("dst=%s error=timeout" % dst, flush=True)
            continue
        except OSError as e:
            print("dst=%s error=%s" % (dst, ename(e)), flush=True)
            continue
        print("dst=%s local=%s peer=%s sent=%s reply=%s" % (
            dst, fmt(c.getsockname()), fmt(c.getpeername()), hashlib.sha256(data).hexdigest(),
            reply.decode().strip()), flush=True)
        held.append(c)
    print("done", flush=True)
    sys.stdin.read()


def udp_server(addr, port):
    fam = family(addr)
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET:
        s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    else:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    s.bind((addr, port))
    print("bound", flush=True)
    while True:
        data, anc, _, peer = s.recvmsg(65536, 1024)
        dst = "none"
        for level, typ, cm in anc:
            if level == socket.IPPROTO_IP and typ == IP_PKTINFO:
                dst = socket.inet_ntop(socket.AF_INET, cm[8:12])  # struct in_pktinfo: ipi_addr
            elif level == socket.IPPROTO_IPV6 and typ == socket.IPV6_PKTINFO:
                dst = socket.inet_ntop(socket.AF_INET6, cm[:16])  # struct in6_pktinfo: ipi6_addr
        s.sendto(("dst=%s from=%s data=%s" % (dst, fmt(peer), data.decode())).encode(), peer)


def udp_client(dst, data):
    fam, sa = parse(dst)
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.sendto(data.encode(), sa)
    reply, peer = s.recvfrom(65536)
    print("from=%s reply=%s" % (fmt(peer), reply.decode()), flush=True)


def bind(proto, addr, port, mode):
    s = socket.socket(family(addr), socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    if mode != "noreuse":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((addr, port))
    except OSError as e:
        print("error %s" % ename(e), flush=True)
        return
    print("ok %s" % fmt(s.getsockname()), flush=True)
    if mode == "hold":
        if proto == "tcp":
            s.listen(4)
        sys.stdin.read()


def main(argv):
    cmd = argv[1]
    if cmd == "tcp-server":
        tcp_server(int(argv[2]), argv[3:])
    elif cmd == "tcp-client":
        tcp_client(int(argv[2]), float(argv[3]), argv[4:])
    elif cmd == "udp-server":
        udp_server(argv[2], int(argv[3]))
    elif cmd == "udp-client":
        udp_client(argv[2], argv[3])
    elif cmd == "bind":
        bind(argv[2], argv[3], int(argv[4]), argv[5] if len(argv) > 5 else "")
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)
