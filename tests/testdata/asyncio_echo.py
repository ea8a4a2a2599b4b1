#!/usr/bin/env python3
"""asyncio echo server and client, run as two processes under the shim.

    asyncio_echo.py server ADDR PORT
        Echoes every connection until the peer's EOF, then closes it. Runs
        until killed.

    asyncio_echo.py client ADDR PORT CONNS SIZE LOCAL
        Opens CONNS connections at once with asyncio.open_connection
        (non-blocking connect, then epoll), sends SIZE bytes of data distinct
        per connection on each while reading the echo concurrently, half-closes,
        and checks that exactly the same bytes came back. Also checks that each
        connection's local address is LOCAL and its peer is ADDR:PORT.
        Prints "OK <conns> <bytes> <sha256 of all data>" and exits 0, or prints
        "FAIL ..." lines and exits 1.
"""

import asyncio
import hashlib
import ipaddress
import sys


async def serve(addr, port):
    async def handle(reader, writer):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
            writer.write_eof()
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, addr, port, backlog=256)
    async with server:
        await server.serve_forever()


def payload(i, size):
    """size bytes, different for every connection index i."""
    out = bytearray()
    block = 0
    while len(out) < size:
        out += hashlib.sha256(b"conn %d block %d" % (i, block)).digest()
        block += 1
    return bytes(out[:size])


def same_addr(a, b):
    return ipaddress.ip_address(a) == ipaddress.ip_address(b)


async def one(i, addr, port, size, local, failures):
    data = payload(i, size)
    reader, writer = await asyncio.open_connection(addr, port)
    sock = writer.get_extra_info("sockname")
    peer = writer.get_extra_info("peername")
    if not same_addr(sock[0], local):
        failures.append("conn %d: local address %s, want %s" % (i, sock[0], local))
    if not same_addr(peer[0], addr) or peer[1] != port:
        failures.append("conn %d: peer %s:%d, want %s:%d" % (i, peer[0], peer[1], addr, port))

    async def send():
        # Several writes, so that the echo overlaps with sending.
        for off in range(0, size, 8192):
            writer.write(data[off:off + 8192])
            await writer.drain()
        writer.write_eof()

    async def receive():
        got = bytearray()
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return bytes(got)
            got += chunk

    _, got = await asyncio.gather(send(), receive())
    writer.close()
    await writer.wait_closed()
    if got != data:
        failures.append("conn %d: echo of %d bytes has %d bytes, sha256 %s, want %s" % (
            i, size, len(got), hashlib.sha256(got).hexdigest(), hashlib.sha256(data).hexdigest()))
    return data


async def client(addr, port, conns, size, local):
    failures = []
    results = await asyncio.gather(
        *(one(i, addr, port, size, local, failures) for i in range(conns)),
        return_exceptions=True)
    total = hashlib.sha256()
    n = 0
    for i, r in enumerate(results):
        if isinstance(r, BaseException):
            failures.append("conn %d: %r" % (i, r))
        else:
            total.update(r)
            n += len(r)
    for f in failures:
        print("FAIL", f)
    if failures:
        return 1
    print("OK", conns, n, total.hexdigest())
    return 0


def main():
    mode = sys.argv[1]
    if mode == "server":
        asyncio.run(serve(sys.argv[2], int(sys.argv[3])))
        return 0
    if mode == "client":
        return asyncio.run(client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
                                  int(sys.argv[5]), sys.argv[6]))
    print("usage: asyncio_echo.py server ADDR PORT | client ADDR PORT CONNS SIZE LOCAL",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
