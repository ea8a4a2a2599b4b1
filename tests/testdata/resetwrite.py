# resetwrite.py SERVER_ADDR CLIENT_ADDR N: N connections, each writing 4 KiB
# sends to a server that reads 64 KiB and closes with SO_LINGER 0 (an RST);
# prints how the writes ended, by errno ("none": 64 MiB went without one).
import errno, socket, struct, sys, threading
srv_host, cli_host, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
l = socket.socket()
l.bind((srv_host, 0))
l.listen(16)
addr = l.getsockname()
def serve():
    for _ in range(n):
        c, _ = l.accept()
        got = 0
        while got < 65536:
            b = c.recv(65536 - got)
            if not b:
                break
            got += len(b)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
threading.Thread(target=serve, daemon=True).start()
res = {}
buf = b"x" * 4096
for _ in range(n):
    c = socket.socket()
    c.bind((cli_host, 0))
    c.connect(addr)
    e, sent = "none", 0
    while sent < 64 << 20:
        try:
            sent += c.send(buf)
        except OSError as ex:
            e = errno.errorcode[ex.errno]
            break
    res[e] = res.get(e, 0) + 1
    c.close()
print(" ".join("%s=%d" % kv for kv in sorted(res.items())))
