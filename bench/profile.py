#!/usr/bin/env python3
"""Where swrap's broker spends its CPU per request and per connection.

    sh bench/run.sh --profile [--out DIR] [--only redis,redis16,wrk,ab,cac]
    sh bench/run.sh --profile --pgo cmd/swrap-broker/default.pgo   (make pgo)

For each workload (redis-benchmark SET with 50 clients, and with -P 16;
nginx + wrk keep-alive; nginx + ab -c50, a connection per request;
bench/cac.c connect+accept+close), with the server on host 10 and the client
on host 11, three runs, each with a fresh broker:

  1. the broker with --cpuprofile: its CPU time (utime+stime from
     /proc/PID/stat) per request, and `go tool pprof -top` of the profile;
  2. `strace -c -f -p BROKER` during the load: broker system calls per request;
  3. the broker with a capture (--pcap): frames per request, by kind (data,
     pure ACK, SYN/FIN/RST, UDP).

Writes DIR/profile-<workload>.txt (pprof top) and DIR/profile.json, and
prints a Markdown summary (bench/PROFILE.md quotes one). Uses bench.py's
helpers and the packaged server configurations of its real-server rows.
"""

import argparse
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402


def cpu_s(pid):
    """utime+stime of pid (all threads) in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        f = f.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


class Broker(B.System):
    """A swrap system whose broker gets extra arguments."""

    def __init__(self, extra):
        super().__init__("swrap", "swrap")
        self.extra = extra

    def start(self, tmp):
        self.dir = tempfile.mkdtemp(prefix="net.", dir=tmp)
        cmd = [B.BROKER, "--dir", self.dir] + self.extra
        self.broker = subprocess.Popen(cmd, env=B.clean_env(), stdin=subprocess.DEVNULL,
                                       stdout=open(os.path.join(tmp, "broker.log"), "a"),
                                       stderr=subprocess.STDOUT)
        sock = os.path.join(self.dir, "swrap", "broker.sock")
        deadline = time.time() + 10
        while not os.path.exists(sock):
            if self.broker.poll() is not None or time.time() > deadline:
                raise RuntimeError("broker did not start")
            time.sleep(0.02)


# ------------------------------------------------------------- workloads
# Each is (start the server -> (port, stop), run the client -> requests,
# connections per request).

def redis_server(sysm, cfg):
    d = B.workdir(cfg.tmp, sysm, "redis")
    port = B.next_port()
    conf = B.edit_conf("/etc/redis/redis.conf", [
        ("bind 127.0.0.1 -::1", "bind " + sysm.addr), ("port 6379", "port %d" % port),
        ("protected-mode yes", "protected-mode no"), ("daemonize yes", "daemonize no"),
        ("pidfile /run/redis/redis-server.pid", "pidfile " + os.path.join(d, "redis.pid")),
        ("logfile /var/log/redis/redis-server.log", 'logfile ""'), ("dir /var/lib/redis", "dir " + d)])
    with open(os.path.join(d, "redis.conf"), "w") as f:
        f.write(conf)
    srv = B.start_server(["redis-server", os.path.join(d, "redis.conf")], sysm.env(B.SERVER_IFACE),
                         "Ready to accept connections")
    return port, lambda: B.kill(srv)


def redis_client(extra, n):
    def run(sysm, port, cfg):
        B.run(["redis-benchmark", "-h", sysm.addr, "-p", str(port), "-c", "50", "-n", str(n), "-t", "set",
               "--csv"] + extra, sysm.env(B.CLIENT_IFACE), 600)
        return n
    return run


def nginx_server(sysm, cfg):
    # bench.m_nginx's configuration, kept running
    d = B.workdir(cfg.tmp, sysm, "nginx")
    www = os.path.join(d, "www")
    os.makedirs(www)
    os.chmod(www, 0o755)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write(B.INDEX_HTML[:612])
    port = B.next_port()
    pidf = os.path.join(d, "nginx.pid")
    conf = B.edit_conf("/etc/nginx/nginx.conf", [
        ("pid /run/nginx.pid;", "pid %s;" % pidf),
        ("error_log /var/log/nginx/error.log;", "error_log %s/error.log;" % d),
        ("access_log /var/log/nginx/access.log;", "access_log %s/access.log;" % d),
        ("include /etc/nginx/sites-enabled/*;", "include %s/site;" % d)])
    site = B.edit_conf("/etc/nginx/sites-available/default", [
        ("listen 80 default_server;", "listen %s:%d default_server;" % (sysm.addr, port)),
        ("listen [::]:80 default_server;", ""), ("root /var/www/html;", "root %s;" % www)])
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(conf)
    with open(os.path.join(d, "site"), "w") as f:
        f.write(site)
    srv = subprocess.Popen(["nginx", "-e", os.path.join(d, "error.log"), "-c", os.path.join(d, "nginx.conf"),
                            "-g", "daemon off;"], env=sysm.env(B.SERVER_IFACE), stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 15
    while not os.path.exists(pidf):
        if srv.poll() is not None or time.time() > deadline:
            raise RuntimeError("nginx did not start")
        time.sleep(0.02)
    return port, lambda: B.kill_group(srv)


def wrk_client(secs):
    def run(sysm, port, cfg):
        out = B.run(["wrk", "-t2", "-c32", "-d%ds" % secs, "http://%s:%d/index.html" % (sysm.addr, port)],
                    sysm.env(B.CLIENT_IFACE), secs + 60)
        m = re.search(r"(\d+) requests in", out)
        return int(m.group(1))
    return run


def ab_client(n):
    def run(sysm, port, cfg):
        out = B.run(["ab", "-q", "-c50", "-n", str(n), "http://%s:%d/index.html" % (sysm.addr, port)],
                    sysm.env(B.CLIENT_IFACE), 600)
        m = re.search(r"Complete requests:\s+(\d+)", out)
        return int(m.group(1))
    return run


def cac_server(sysm, cfg):
    port = B.next_port()
    srv = B.start_server([os.path.join(B.HELPERS, "cac"), "server", sysm.addr, str(port)],
                         sysm.env(B.SERVER_IFACE), "ready")
    return port, lambda: B.kill(srv)


def cac_client(n):
    def run(sysm, port, cfg):
        B.run([os.path.join(B.HELPERS, "cac"), "client", sysm.addr, str(port), str(n)],
              sysm.env(B.CLIENT_IFACE), 600)
        return n
    return run


# name: (label, server, client(size), size: requests or seconds); the strace
# run, slowed down by strace, does a quarter of it
WORKLOADS = {
    "redis": ("redis-benchmark SET -c 50", redis_server, lambda n: redis_client([], n), 100000),
    "redis16": ("redis-benchmark SET -c 50 -P 16", redis_server, lambda n: redis_client(["-P", "16"], n), 1000000),
    "wrk": ("nginx + wrk -c32 keep-alive", nginx_server, wrk_client, 8),
    "ab": ("nginx + ab -c50, connection per request", nginx_server, ab_client, 2000),
    "cac": ("bench/cac.c connect+accept+close", cac_server, cac_client, 8000),
}


# ------------------------------------------------------------- pcap

def frames(path):
    """Counts the frames of a LINKTYPE_RAW capture by kind."""
    c = {"frames": 0, "tcp_data": 0, "tcp_pure_ack": 0, "tcp_syn": 0, "tcp_fin": 0, "tcp_rst": 0, "udp": 0,
         "other": 0}
    with open(path, "rb") as f:
        hdr = f.read(24)
        if len(hdr) < 24:
            return c
        while True:
            rh = f.read(16)
            if len(rh) < 16:
                break
            incl = struct.unpack("<IIII", rh)[2]
            pkt = f.read(incl)
            c["frames"] += 1
            if not pkt or pkt[0] >> 4 != 4:
                c["other"] += 1
                continue
            ihl = (pkt[0] & 15) * 4
            total = struct.unpack(">H", pkt[2:4])[0]
            proto = pkt[9]
            if proto == 17:
                c["udp"] += 1
            elif proto == 6 and len(pkt) >= ihl + 14:
                doff = (pkt[ihl + 12] >> 4) * 4
                flags = pkt[ihl + 13]
                payload = total - ihl - doff
                if flags & 0x02:
                    c["tcp_syn"] += 1
                elif flags & 0x04:
                    c["tcp_rst"] += 1
                elif flags & 0x01:
                    c["tcp_fin"] += 1
                elif payload > 0:
                    c["tcp_data"] += 1
                else:
                    c["tcp_pure_ack"] += 1
            else:
                c["other"] += 1
    return c


# ------------------------------------------------------------- runs

def one(name, cfg, mode, keep=None):
    """One run of workload name; mode "cpu" profiles the broker (the
    profile goes to keep, a list of paths, if given), "strace" counts its
    system calls, "pcap" its frames."""
    label, server, mkclient, size = WORKLOADS[name]
    client = mkclient(max(1, size // 4) if mode == "strace" else size)
    extra = []
    prof = os.path.join(cfg.tmp, "cpu.%s.prof" % name)
    pcapf = os.path.join(cfg.tmp, "capture.%s.pcap" % name)
    if mode == "cpu":
        extra = ["--cpuprofile", prof]
    elif mode == "pcap":
        extra = ["--pcap", pcapf]
    sysm = Broker(extra)
    sysm.start(cfg.tmp)
    res = {}
    try:
        port, stop = server(sysm, cfg)
        try:
            sysm.check_active(port)
            bpid = sysm.broker_pid()
            st = None
            if mode == "strace":
                sf = os.path.join(cfg.tmp, "strace.%s" % name)
                st = subprocess.Popen(["strace", "-c", "-f", "-q", "-o", sf, "-p", str(bpid)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.0)
            c0, t0 = cpu_s(bpid), time.time()
            n = client(sysm, port, cfg)
            c1, t1 = cpu_s(bpid), time.time()
            res.update(requests=n, wall_s=t1 - t0, rps=n / (t1 - t0), broker_cpu_s=c1 - c0,
                       broker_cpu_us_per_req=(c1 - c0) / n * 1e6)
            if st:
                st.send_signal(signal.SIGINT)
                st.wait(30)
                res["syscalls"] = parse_strace(sf)
                res["syscalls_per_req"] = {k: v / n for k, v in res["syscalls"].items()}
        finally:
            stop()
    finally:
        sysm.stop()
    if mode == "cpu" and os.path.exists(prof):
        out = subprocess.run(["go", "tool", "pprof", "-top", "-nodecount=40", B.BROKER, prof],
                             capture_output=True, text=True).stdout
        cum = subprocess.run(["go", "tool", "pprof", "-top", "-cum", "-nodecount=40", B.BROKER, prof],
                             capture_output=True, text=True).stdout
        with open(os.path.join(cfg.out, "profile-%s.txt" % name), "w") as f:
            f.write("# %s: broker CPU profile, %d requests\n\n## flat\n\n%s\n## cumulative\n\n%s"
                    % (label, res["requests"], out, cum))
        if keep is None:
            os.unlink(prof)
        else:
            keep.append(prof)
    if mode == "pcap" and os.path.exists(pcapf):
        fc = frames(pcapf)
        res["frames"] = fc
        res["frames_per_req"] = {k: v / res["requests"] for k, v in fc.items()}
        os.unlink(pcapf)
    return res


def parse_strace(path):
    """strace -c's table: {syscall: calls}, and {syscall + " errors": failed calls}."""
    calls = {}
    with open(path) as f:
        for line in f:
            p = line.split()
            # % time, seconds, usecs/call, calls, [errors], syscall
            if len(p) >= 5 and p[0][0].isdigit() and p[-1] != "total":
                try:
                    calls[p[-1]] = int(p[3])
                    if len(p) == 6:
                        calls[p[-1] + " errors"] = int(p[4])
                except ValueError:
                    pass
    return calls


def bulk_profile(cfg, measure, name):
    """The broker's CPU profile during one of bench.py's iperf3 rows."""
    prof = os.path.join(cfg.tmp, "cpu.%s.prof" % name)
    sysm = Broker(["--cpuprofile", prof])
    sysm.start(cfg.tmp)
    try:
        B.log("  " + json.dumps(measure(sysm, cfg)))
    finally:
        sysm.stop()
    return prof


def pgo(cfg):
    """Writes cfg.pgo: the broker's CPU profiles under the workloads and
    iperf3 TCP and UDP bulk, merged, for Go's profile-guided optimisation
    (go build reads cmd/swrap-broker/default.pgo by itself)."""
    profs = []
    cfg.out = cfg.tmp  # the pprof tops of these runs are not kept
    cfg.t = 3
    for name in cfg.only.split(","):
        B.log("%s: cpu run" % name)
        B.log("  " + json.dumps(one(name, cfg, "cpu", keep=profs)))
    for name, m in (("iperf3-tcp", B.m_iperf_tcp), ("iperf3-udp", B.m_iperf_udp)):
        B.log("%s: cpu run" % name)
        profs.append(bulk_profile(cfg, m, name))
    with open(cfg.pgo, "wb") as f:
        subprocess.run(["go", "tool", "pprof", "-proto"] + profs, stdout=f, check=True)
    B.log("wrote %s from %d profiles" % (cfg.pgo, len(profs)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(WORKLOADS))
    ap.add_argument("--out", default=os.path.join(B.ROOT, "bench", "results"))
    ap.add_argument("--pgo", metavar="FILE", help="only the CPU runs, plus iperf3 TCP and UDP bulk: "
                    "write their merged profile to FILE (make pgo: cmd/swrap-broker/default.pgo)")
    cfg = ap.parse_args()
    os.makedirs(cfg.out, exist_ok=True)
    cfg.tmp = tempfile.mkdtemp(prefix="swrap-prof.", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.chmod(cfg.tmp, 0o755)
    if cfg.pgo:
        try:
            pgo(cfg)
        finally:
            subprocess.run(["rm", "-rf", cfg.tmp])
        return 0
    results = {}
    try:
        for name in cfg.only.split(","):
            results[name] = {}
            for mode in ("cpu", "strace", "pcap"):
                B.log("%s: %s run" % (name, mode))
                try:
                    results[name][mode] = one(name, cfg, mode)
                except Exception as e:  # noqa: BLE001
                    B.log("  FAILED: %s" % e)
                    results[name][mode] = {"error": str(e)}
                B.log("  " + json.dumps({k: v for k, v in results[name][mode].items()
                                         if k not in ("syscalls", "syscalls_per_req")}))
    finally:
        subprocess.run(["rm", "-rf", cfg.tmp])
    with open(os.path.join(cfg.out, "profile.json"), "w") as f:
        json.dump(results, f, indent=1)
    lines = ["| workload | req/s (cpu run) | broker CPU µs/request | broker syscalls/request (top) | "
             "frames/request (data, pure ACK, SYN/FIN/RST) |", "|---|---|---|---|---|"]
    for name, r in results.items():
        c, s, p = r.get("cpu", {}), r.get("strace", {}), r.get("pcap", {})
        spr = s.get("syscalls_per_req", {})
        tot = sum(v for k, v in spr.items() if not k.endswith(" errors"))
        top = ", ".join("%s %.2f" % kv for kv in sorted(spr.items(), key=lambda kv: -kv[1])[:6])
        fpr = p.get("frames_per_req", {})
        lines.append("| %s | %s | %s | %s | %s |" % (
            WORKLOADS[name][0], "%.0f" % c["rps"] if "rps" in c else "—",
            "%.1f" % c["broker_cpu_us_per_req"] if "broker_cpu_us_per_req" in c else "—",
            ("%.1f: %s" % (tot, top)) if spr else "—",
            ("%.2f (%.2f, %.2f, %.2f)" % (fpr["frames"], fpr["tcp_data"], fpr["tcp_pure_ack"],
                                         fpr["tcp_syn"] + fpr["tcp_fin"] + fpr["tcp_rst"])) if fpr else "—"))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
