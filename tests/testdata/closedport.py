# closedport.py PROTO HOST N: N times, bind a socket to a free port of HOST,
# close it, and at once reach that port from a new socket: UDP, a connected
# socket's send and the receive after it; TCP, a connect. Linux refuses every
# one (the port is closed when close() returns): prints "refused=K other=M"
# with the first other outcome.
import errno, select, socket, sys

proto, host, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
typ = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
refused, other, first = 0, 0, ""
for _ in range(n):
    p = socket.socket(socket.AF_INET, typ)
    p.bind((host, 0))
    if typ == socket.SOCK_STREAM:
        p.listen(8)
    port = p.getsockname()[1]
    p.close()
    s = socket.socket(socket.AF_INET, typ)
    got = "ok"
    try:
        s.connect((host, port))
        if typ == socket.SOCK_DGRAM:
            s.send(b"x")
            select.select([s], [], [], 2.0)
            s.setblocking(False)
            s.recv(10)
            got = "data"
    except OSError as ex:
        got = errno.errorcode.get(ex.errno, str(ex.errno))
    s.close()
    if got == "ECONNREFUSED":
        refused += 1
    else:
        other += 1
        first = first or got
print("refused=%d other=%d%s" % (refused, other, " first=" + first if first else ""))
