# udprefused.py MODE HOST N: connected UDP sockets sending to a closed port
# of HOST (one bound and closed first), whose ICMP port unreachables Linux
# turns into ECONNREFUSED for the next send or receive.
#   errors: N sockets, each sends 3 datagrams, then waits up to 3 s for
#           readability and receives; prints "errors=1:K" for the K sockets
#           that saw ECONNREFUSED (from a send or the receive) and
#           "errors=0:K" for those that saw none.
#   burst:  one socket sends N datagrams, in bursts of 16 with 1 ms between
#           them (so that no queue on the way overflows); prints how many
#           sends succeeded.
import errno, select, socket, sys, time

mode, host, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
p = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
p.bind((host, 0))
port = p.getsockname()[1]
p.close()  # the port is closed when close() returns, as on Linux

if mode == "burst":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((host, port))
    ok = 0
    for i in range(n):
        try:
            s.send(b"%d" % i)
            ok += 1
        except OSError:
            pass
        if i % 16 == 15:
            time.sleep(0.001)
    print(ok)
    sys.exit(0)

res = {}
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((host, port))
    got = []
    for _ in range(3):
        try:
            s.send(b"x")
            got.append("ok")
        except OSError as ex:
            got.append(errno.errorcode[ex.errno])
    select.select([s], [], [], 3.0)
    s.setblocking(False)
    try:
        s.recv(10)
        got.append("data")
    except OSError as ex:
        got.append(errno.errorcode[ex.errno])
    key = "errors=%d" % (1 if "ECONNREFUSED" in got else 0)
    res[key] = res.get(key, 0) + 1
    s.close()
print(" ".join("%s:%d" % kv for kv in sorted(res.items())))
