#!/usr/bin/env python3
"""swrap benchmarks: kernel loopback, socket_wrapper and swrap side by side.

Run through bench/run.sh (`make bench`, `make bench-quick`), which builds the C
helpers into bin/bench/, installs what is missing and raises RLIMIT_NOFILE.

Every round runs every system once, in turn (round-robin), and each system-run
runs every throughput/latency measure; the figures reported are medians over
the rounds, with ratios to kernel loopback of the same run. The footprint
measures (N idle connections, 64 idle hosts) run once per system, also in
turn, each with a fresh broker.

Traffic goes only to 127.0.0.1 (loopback) or to emulated 127.0.0.10 through
the preloaded library; each system-run checks that the library is active
before its figures are kept.
"""

import argparse
import datetime
import json
import os
import resource
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "bin")
HELPERS = os.path.join(BIN, "bench")
SWRAP_LIB = os.path.join(BIN, "libswrap.so")
BROKER = os.path.join(BIN, "swrap-broker")
SW_LIB_CANDIDATES = [
    "/usr/lib/x86_64-linux-gnu/libsocket_wrapper.so.0",
    "/usr/lib/x86_64-linux-gnu/libsocket_wrapper.so",
]
SERVER_IFACE, CLIENT_IFACE = 10, 11


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Skip(Exception):
    pass


# ---------------------------------------------------------------- systems


class System:
    """One way of running a server/client pair: environment and addresses."""

    def __init__(self, name, kind, pcap=False, sw_lib=None):
        self.name, self.kind, self.pcap, self.sw_lib = name, kind, pcap, sw_lib
        self.dir = None
        self.broker = None
        self.pcap_file = None
        self.capture_bytes = []
        self.verified = False

    @property
    def addr(self):
        return "127.0.0.1" if self.kind == "loopback" else "127.0.0.10"

    def start(self, tmp):
        if self.kind == "loopback":
            return
        self.dir = tempfile.mkdtemp(prefix="net.", dir=tmp)
        if self.kind == "socket_wrapper":
            # socket_wrapper's socket files are made by whichever process
            # binds: nginx's workers run as www-data
            os.chmod(self.dir, 0o777)
        if self.pcap:
            self.pcap_file = os.path.join(CAPTURE_DIR or tmp, "capture.%s.pcap" % self.name.replace("+", "_"))
            if os.path.exists(self.pcap_file):
                os.unlink(self.pcap_file)
        if self.kind == "swrap":
            cmd = [BROKER, "--dir", self.dir]
            if self.pcap_file:
                cmd += ["--pcap", self.pcap_file]
            env = clean_env()
            self.broker = subprocess.Popen(
                cmd, env=env, stdin=subprocess.DEVNULL,
                stdout=open(os.path.join(tmp, "broker.log"), "a"), stderr=subprocess.STDOUT)
            lock = os.path.join(self.dir, "swrap", "broker.sock")
            deadline = time.time() + 10
            while not os.path.exists(lock):
                if self.broker.poll() is not None or time.time() > deadline:
                    raise RuntimeError("broker did not start (see %s/broker.log)" % tmp)
                time.sleep(0.02)

    def stop(self, record=False):
        """Stops the broker, deletes the capture (noting its size if record) and the directory."""
        if self.broker:
            self.broker.send_signal(signal.SIGTERM)
            try:
                self.broker.wait(15)
            except subprocess.TimeoutExpired:
                log("  broker %d ignored SIGTERM for 15 s; killing it" % self.broker.pid)
                self.broker.kill()
                self.broker.wait()
            self.broker = None
        if self.pcap_file and os.path.exists(self.pcap_file):
            if record:
                self.capture_bytes.append(os.path.getsize(self.pcap_file))
            os.unlink(self.pcap_file)
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def env(self, iface):
        env = clean_env()
        if self.kind == "loopback":
            return env
        env["SOCKET_WRAPPER_DIR"] = self.dir
        env["SOCKET_WRAPPER_DEFAULT_IFACE"] = str(iface)
        env["LD_PRELOAD"] = SWRAP_LIB if self.kind == "swrap" else self.sw_lib
        if self.kind == "swrap":
            env["SWRAP_BROKER"] = BROKER
        if self.pcap_file:
            env["SOCKET_WRAPPER_PCAP_FILE"] = self.pcap_file
        return env

    def broker_pid(self):
        return self.broker.pid if self.broker else None

    def status(self):
        """The broker's `swrap status --json` document."""
        out = subprocess.run([os.path.join(BIN, "swrap"), "status", "--dir", self.dir, "--json"],
                             env=clean_env(), capture_output=True, text=True, timeout=10)
        return json.loads(out.stdout)

    def check_active(self, port):
        """Called while a server listens on addr:port: is the wrapper in the path?"""
        if self.kind == "loopback":
            return
        if self.kind == "swrap":
            st = self.status()
            text = json.dumps(st.get("sockets") or [])
            if str(port) not in text or "127.0.0.10" not in text:
                raise RuntimeError("swrap broker does not list the server socket 127.0.0.10:%d: %s"
                                   % (port, text[:400]))
        else:
            files = os.listdir(self.dir)
            if not files:
                raise RuntimeError("socket_wrapper left no socket file in SOCKET_WRAPPER_DIR: not active?")
        self.verified = True


def clean_env():
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("SOCKET_WRAPPER_") or k in ("LD_PRELOAD", "SWRAP_BROKER"):
            del env[k]
    return env


# ---------------------------------------------------------------- processes

def _port_range():
    """Ports for servers: below the kernel's ephemeral range, so loopback clients
    (ours and other programs on the machine) never hold them."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        lo = 32768
    hi = max(lo - 1, 11000)
    return 10000, hi


_lo, _hi = _port_range()
_port = [_lo + (os.getpid() * 37) % (_hi - _lo)]


def _free(port):
    """Whether 127.0.0.1:port is free for TCP and UDP on the real kernel."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def next_port():
    for _ in range(1000):
        _port[0] += 1
        if _port[0] > _hi:
            _port[0] = _lo
        if _free(_port[0]):
            return _port[0]
    raise RuntimeError("no free port in %d..%d" % (_lo, _hi))


def kill(p, sig=signal.SIGTERM):
    if p is None or p.poll() is not None:
        return
    p.send_signal(sig)
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def run(cmd, env, timeout):
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (" ".join(os.path.basename(c) for c in cmd[:2]),
                                                 r.returncode, (r.stderr or r.stdout).strip()[-300:]))
    return r.stdout


def proc_status(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_mib(pid):
    kb = proc_status(pid, "VmRSS")
    return None if kb is None else kb / 1024


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


# ---------------------------------------------------------------- measures


def m_iperf_tcp(sysm, cfg):
    port = next_port()
    srv = start_server(["iperf3", "-s", "-1", "--forceflush", "-B", sysm.addr, "-p", str(port)],
                       sysm.env(SERVER_IFACE), "listening")
    try:
        if not sysm.verified:
            sysm.check_active(port)
        out = run(["iperf3", "-c", sysm.addr, "-p", str(port), "-t", str(cfg.t), "-J"],
                  sysm.env(CLIENT_IFACE), cfg.t + 30)
        j = json.loads(out)
        if "error" in j:
            raise RuntimeError("iperf3: " + j["error"])
        return {"tcp_gbps": j["end"]["sum_received"]["bits_per_second"] / 1e9}
    finally:
        kill(srv)


def m_iperf_udp(sysm, cfg):
    port = next_port()
    srv = start_server(["iperf3", "-s", "-1", "--forceflush", "-B", sysm.addr, "-p", str(port)],
                       sysm.env(SERVER_IFACE), "listening")
    try:
        out = run(["iperf3", "-c", sysm.addr, "-p", str(port), "-u", "-l", "1460", "-b", "0",
                   "-t", str(cfg.t), "-J"], sysm.env(CLIENT_IFACE), cfg.t + 30)
        j = json.loads(out)
        if "error" in j:
            raise RuntimeError("iperf3: " + j["error"])
        s = j["end"]["sum"]
        sent = s["bits_per_second"]
        loss = s.get("lost_percent", 0.0)
        return {"udp_sent_gbps": sent / 1e9, "udp_gbps": sent * (1 - loss / 100) / 1e9,
                "udp_loss_pct": loss}
    finally:
        kill(srv)


def m_rtt(proto):
    def m(sysm, cfg):
        port = next_port()
        srv = start_server([os.path.join(HELPERS, "rtt"), "server", proto, sysm.addr, str(port)],
                           sysm.env(SERVER_IFACE), "ready")
        try:
            if not sysm.verified:
                sysm.check_active(port)
            out = run([os.path.join(HELPERS, "rtt"), "client", proto, sysm.addr, str(port), str(cfg.rtts)],
                      sysm.env(CLIENT_IFACE), 120)
            srv.wait(10)
            return {proto + "_rtt_us": float(out.split()[0])}
        finally:
            kill(srv)
    return m


def seccomp_cmd(sysm, iface, cmd):
    """cmd under `swrap run --seccomp` on the swrap system's network, as host iface."""
    return [os.path.join(BIN, "swrap"), "run", "--seccomp", "--dir", sysm.dir, "--iface", str(iface), "--"] + cmd


def m_rtt_seccomp(sysm, cfg):
    """The C round-trip helper (dynamically linked) through seccomp user
    notification instead of LD_PRELOAD, in the swrap systems' turns."""
    if sysm.kind != "swrap":
        raise Skip()
    port = next_port()
    rtt = os.path.join(HELPERS, "rtt")
    srv = start_server(seccomp_cmd(sysm, SERVER_IFACE, [rtt, "server", "tcp", sysm.addr, str(port)]),
                       clean_env(), "ready")
    try:
        out = run(seccomp_cmd(sysm, CLIENT_IFACE, [rtt, "client", "tcp", sysm.addr, str(port), str(cfg.rtts)]),
                  clean_env(), 120)
        srv.wait(10)
        return {"tcp_rtt_seccomp_us": float(out.split()[0])}
    finally:
        kill(srv)


def m_go(sysm, cfg):
    """bench/gobench, a Go server and client (CGO_ENABLED=0): over kernel
    loopback in the loopback system's turn; in the swrap systems' turns
    through swrapnet (the Go client library), then unmodified under swrap
    run, which supervises them through seccomp user notification."""
    gobench = os.path.join(HELPERS, "gobench")
    if sysm.kind not in ("loopback", "swrap"):
        raise Skip()
    if not os.path.exists(gobench):
        raise RuntimeError("bin/bench/gobench missing (bench/run.sh builds it with go)")
    secs = str(max(1, cfg.t))

    def pair(suffix, wrap, extra_srv, extra_cli):
        port = next_port()
        addr = "%s:%d" % (sysm.addr, port)
        srv = start_server(wrap(SERVER_IFACE, [gobench, "server", addr] + extra_srv), clean_env(), "ready")
        try:
            g = run(wrap(CLIENT_IFACE, [gobench, "client", addr, "bulk", secs] + extra_cli), clean_env(), 120)
            r = run(wrap(CLIENT_IFACE, [gobench, "client", addr, "rtt", str(cfg.rtts)] + extra_cli),
                    clean_env(), 120)
            k = run(wrap(CLIENT_IFACE, [gobench, "client", addr, "conns", str(min(cfg.cycles, 1000))] + extra_cli),
                    clean_env(), 120)
            return {"go%s_gbps" % suffix: float(g.split()[0]), "go%s_rtt_us" % suffix: float(r.split()[0]),
                    "go%s_conn_us" % suffix: float(k.split()[0])}
        finally:
            kill(srv)

    if sysm.kind == "loopback":
        return pair("", lambda i, c: c, [], [])
    res = pair("", lambda i, c: c, [sysm.dir, str(SERVER_IFACE)], [sysm.dir, str(CLIENT_IFACE)])
    res.update(pair("_seccomp", lambda i, c: seccomp_cmd(sysm, i, c), [], []))
    return res


def m_relay(sysm, cfg):
    """The floor of a broker design: 1-byte round trips through a C relay
    process (bench/relay.c), measured in the loopback system's turn."""
    if sysm.kind != "loopback":
        raise Skip()
    out = run([os.path.join(HELPERS, "relay"), str(cfg.rtts)], clean_env(), 120)
    return {"relay_rtt_us": float(out.split()[0])}



# ---------------------------------------------------------------- real servers
#
# Debian's packaged servers with their packaged configuration, changed only in
# address, port, pid/log/data paths and whatever keeps them in the foreground;
# the server is host 10, the load generator host 11 (as tests/realservers_test.go).


def edit_conf(path, repl):
    """The text of the packaged configuration file path, each (old line, new
    line) of repl replaced; fails if a line is no longer there (the package changed)."""
    with open(path) as f:
        text = f.read()
    for old, new in repl:
        lines = text.split("\n")
        hits = [i for i, l in enumerate(lines) if l.strip() == old]
        if not hits:
            raise RuntimeError("%s no longer has the line %r" % (path, old))
        for i in hits:
            lines[i] = new
        text = "\n".join(lines)
    return text


# CAPTURE_DIR is where the +pcap systems write their captures (--capture-dir).
CAPTURE_DIR = None


def fs_type(path):
    """The type of the file system path is on (stat -f), e.g. ext2/ext3 or tmpfs."""
    try:
        return subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True).stdout.strip() or "?"
    except OSError:
        return "?"


def workdir(tmp, sysm, what):
    d = os.path.join(tmp, "%s.%s" % (what, sysm.name.replace("+", "_")))
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    os.chmod(d, 0o755)  # nginx's workers run as www-data
    return d


def kill_group(p):
    """Stops a server started with start_new_session and everything it forked."""
    if p is None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if p.poll() is None:
        p.wait()


def m_redis(sysm, cfg):
    """redis-server (Debian's redis.conf) on host 10; redis-benchmark SET from
    host 11, 50 clients, without and with -P 16."""
    d = workdir(cfg.tmp, sysm, "redis")
    port = next_port()
    conf = edit_conf("/etc/redis/redis.conf", [
        ("bind 127.0.0.1 -::1", "bind " + sysm.addr),
        ("port 6379", "port %d" % port),
        ("protected-mode yes", "protected-mode no"),  # clients on host 11 are not 127.0.0.1
        ("daemonize yes", "daemonize no"),
        ("pidfile /run/redis/redis-server.pid", "pidfile " + os.path.join(d, "redis.pid")),
        ("logfile /var/log/redis/redis-server.log", 'logfile ""'),
        ("dir /var/lib/redis", "dir " + d)])
    with open(os.path.join(d, "redis.conf"), "w") as f:
        f.write(conf)
    srv = start_server(["redis-server", os.path.join(d, "redis.conf")], sysm.env(SERVER_IFACE),
                       "Ready to accept connections")
    try:
        if not sysm.verified:
            sysm.check_active(port)
        res = {}
        for key, n, extra in (("redis_set_rps", cfg.redis_n, []),
                              ("redis_p16_rps", cfg.redis_n * 10, ["-P", "16"])):
            out = run(["redis-benchmark", "-h", sysm.addr, "-p", str(port), "-c", "50", "-n", str(n),
                       "-t", "set", "--csv"] + extra, sysm.env(CLIENT_IFACE), 300)
            rps = None
            for line in out.splitlines():
                f = [x.strip('"') for x in line.split(",")]
                if f and f[0] == "SET" and len(f) > 1:
                    rps = float(f[1])
            if rps is None:
                raise RuntimeError("redis-benchmark printed no SET figure: " + out[-300:])
            res[key] = rps
        return res
    finally:
        kill(srv)


INDEX_HTML = ("<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n</head>\n<body>\n"
              + "<p>" + "swrap benchmark page. " * 25 + "</p>\n</body>\n</html>\n")


def m_nginx(sysm, cfg):
    """nginx (Debian's nginx.conf and default site: 2 workers as www-data,
    sendfile, tcp_nopush) on host 10 serving a 612-byte index.html; from
    host 11 wrk -t2 -c32 over keep-alive connections, then ab -c50, one
    connection per request."""
    d = workdir(cfg.tmp, sysm, "nginx")
    www = os.path.join(d, "www")
    os.makedirs(www)
    os.chmod(www, 0o755)
    page = INDEX_HTML[:612]
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write(page)
    os.chmod(os.path.join(www, "index.html"), 0o644)
    port = next_port()
    pidf = os.path.join(d, "nginx.pid")
    conf = edit_conf("/etc/nginx/nginx.conf", [
        ("pid /run/nginx.pid;", "pid %s;" % pidf),
        ("error_log /var/log/nginx/error.log;", "error_log %s/error.log;" % d),
        ("access_log /var/log/nginx/access.log;", "access_log %s/access.log;" % d),
        ("include /etc/nginx/sites-enabled/*;", "include %s/site;" % d)])
    site = edit_conf("/etc/nginx/sites-available/default", [
        ("listen 80 default_server;", "listen %s:%d default_server;" % (sysm.addr, port)),
        ("listen [::]:80 default_server;", ""),
        ("root /var/www/html;", "root %s;" % www)])
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(conf)
    with open(os.path.join(d, "site"), "w") as f:
        f.write(site)
    srv = subprocess.Popen(["nginx", "-e", os.path.join(d, "error.log"), "-c", os.path.join(d, "nginx.conf"),
                            "-g", "daemon off;"], env=sysm.env(SERVER_IFACE), stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "stderr"), "w"),
                           start_new_session=True)
    try:
        # nginx writes its pid file after opening its listening sockets
        deadline = time.time() + 15
        while not os.path.exists(pidf):
            if srv.poll() is not None or time.time() > deadline:
                with open(os.path.join(d, "error.log")) as f:
                    raise RuntimeError("nginx did not start: " + f.read()[-300:])
            time.sleep(0.02)
        if not sysm.verified:
            sysm.check_active(port)
        url = "http://%s:%d/index.html" % (sysm.addr, port)
        out = run(["wrk", "-t2", "-c32", "-d%ds" % cfg.http_t, url], sysm.env(CLIENT_IFACE), cfg.http_t + 60)
        res = {}
        bad = 0
        for line in out.splitlines():
            line = line.strip()
            if line.startswith("Requests/sec:"):
                res["nginx_wrk_rps"] = float(line.split()[1])
            elif line.startswith("Non-2xx or 3xx responses:"):
                bad += int(line.split()[-1])
            elif line.startswith("Socket errors:"):
                bad += sum(int(x.strip(",")) for x in line.split()[3::2])
        if "nginx_wrk_rps" not in res:
            raise RuntimeError("wrk printed no Requests/sec: " + out[-300:])
        res["nginx_wrk_errors"] = bad
        # -n after -t: ab's -t alone stops at 50,000 requests
        out = run(["ab", "-q", "-c50", "-t", str(cfg.http_t), "-n", "100000000", url],
                  sysm.env(CLIENT_IFACE), cfg.http_t + 60)
        bad = 0
        for line in out.splitlines():
            if line.startswith("Requests per second:"):
                res["http_close_rps"] = float(line.split()[3])
            elif line.startswith("Failed requests:") or line.startswith("Non-2xx responses:"):
                bad += int(line.split()[-1])
            elif line.startswith("Document Length:") and int(line.split()[2]) != len(page):
                raise RuntimeError("ab: nginx served %s bytes, not %d" % (line.split()[2], len(page)))
        if "http_close_rps" not in res:
            raise RuntimeError("ab printed no Requests per second: " + out[-300:])
        res["http_close_errors"] = bad
        return res
    finally:
        kill_group(srv)


def m_cac(sysm, cfg):
    port = next_port()
    srv = start_server([os.path.join(HELPERS, "cac"), "server", sysm.addr, str(port)],
                       sysm.env(SERVER_IFACE), "ready")
    try:
        out = run([os.path.join(HELPERS, "cac"), "client", sysm.addr, str(port), str(cfg.cycles)],
                  sysm.env(CLIENT_IFACE), 180)
        return {"cac_us": float(out.split()[0])}
    finally:
        kill(srv)


def m_conns(n):
    def m(sysm, cfg):
        port = next_port()
        res = {}
        srv = start_server([os.path.join(HELPERS, "conns"), "server", sysm.addr, str(port)],
                           sysm.env(SERVER_IFACE), "ready")
        cli = None
        try:
            bpid = sysm.broker_pid()
            if bpid:
                time.sleep(0.3)
                res["broker_rss_before_mib"] = rss_mib(bpid)
            cli = start_server([os.path.join(HELPERS, "conns"), "client", sysm.addr, str(port), str(n)],
                               sysm.env(CLIENT_IFACE), "open ", timeout=300)
            time.sleep(1.0)  # let the server accept the last ones and the broker settle
            res.update(parse_conns(cli, n))
            if res.get("opened", 0) > 0 and sysm.kind == "socket_wrapper":
                res["sw_files"] = len(os.listdir(sysm.dir))
            if bpid:
                res["broker_rss_mib"] = rss_mib(bpid)
                res["broker_fds"] = fd_count(bpid)
            res["app_rss_mib"] = sum(filter(None, [rss_mib(srv.pid), rss_mib(cli.pid)]))
            res["app_fds"] = sum(filter(None, [fd_count(srv.pid), fd_count(cli.pid)]))
            return {"conns%d" % n: res}
        finally:
            if cli:
                cli.stdin.close()
                kill(cli)
            kill(srv)
    return m


def parse_conns(cli, n):
    # the client printed "open K of N in S s [error]"; start_server kept it in _last
    line = getattr(cli, "_last", "")
    parts = line.split()
    res = {"requested": n}
    try:
        res["opened"] = int(parts[1])
        res["open_s"] = float(parts[5])
        if len(parts) > 7:
            res["error"] = " ".join(parts[7:])
    except (IndexError, ValueError):
        res["error"] = "unparsed: " + line.strip()
    if res.get("opened", 0) < n and "error" not in res:
        res["error"] = "stopped early"
    if cli.poll() is not None:
        res["error"] = (res.get("error", "") + " client exited: " + cli.stderr.read().strip()[-200:]).strip()
    return res


def m_churn(n):
    """n connect+accept+close cycles in a row against one server (which closes
    first, so every connection ends in TIME_WAIT on its host), in two halves:
    the second half's µs per cycle, and for swrap the broker's RSS and host
    10's connections closing afterwards (SWRAP_TCP_MAX_TW bounds them)."""
    def m(sysm, cfg):
        port = next_port()
        srv = start_server([os.path.join(HELPERS, "cac"), "server", sysm.addr, str(port)],
                           sysm.env(SERVER_IFACE), "ready")
        try:
            res = {"cycles": n}
            bpid = sysm.broker_pid()
            if bpid:
                res["broker_rss_before_mib"] = rss_mib(bpid)
            for half in ("first", "second"):
                out = run([os.path.join(HELPERS, "cac"), "client", sysm.addr, str(port), str(n // 2)],
                          sysm.env(CLIENT_IFACE), 300)
                res[half + "_us"] = float(out.split()[0])
            if bpid:
                res["broker_rss_mib"] = rss_mib(bpid)
                st = sysm.status()
                res["closing"] = sum(h.get("tcp_closing", 0) for h in st.get("hosts") or [])
            return {"churn%d" % n: res}
        finally:
            kill(srv)
    return m


def m_hosts(nhosts):
    def m(sysm, cfg):
        bpid = sysm.broker_pid()
        if not bpid:
            raise Skip("no broker")
        res = {"broker_rss_idle_mib": rss_mib(bpid)}
        procs = []
        try:
            port = next_port()
            for h in range(1, nhosts + 1):
                procs.append(start_server([os.path.join(HELPERS, "idle"), "127.0.0.%d" % h, str(port)],
                                          sysm.env(h), "ready"))
            time.sleep(1.0)
            st = sysm.status()
            res["hosts_listed"] = len(st.get("hosts") or [])
            res["sockets_listed"] = len(st.get("sockets") or [])
            res["broker_rss_mib"] = rss_mib(bpid)
            res["broker_fds"] = fd_count(bpid)
            res["hosts"] = len(procs)
            return {"hosts%d" % nhosts: res}
        finally:
            for p in procs:
                p.stdin.close()
            for p in procs:
                kill(p)
    return m


def start_server(cmd, env, ready, timeout=15):
    """Starts cmd and waits for a stdout line containing `ready` (kept in p._last)."""
    p = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()

    def reader():  # a thread, not select(): the text wrapper buffers lines ahead
        for line in p.stdout:
            lines.put(line)
        lines.put(None)
    threading.Thread(target=reader, daemon=True).start()
    deadline = time.time() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.time()))
        except queue.Empty:
            kill(p)
            raise RuntimeError("%s: not ready after %ds" % (os.path.basename(cmd[0]), timeout))
        if line is None:
            p.wait()
            err = p.stderr.read()
            raise RuntimeError("%s exited (%s): %s" % (os.path.basename(cmd[0]), p.returncode,
                                                       err.strip()[-300:]))
        if ready in line:
            p._last = line
            return p


# ---------------------------------------------------------------- reporting

# key, label, unit, higher is better[, key of the loopback figure the ratio is to]
ROWS = [
    ("tcp_gbps", "iperf3 TCP bulk", "Gbit/s", True),
    ("udp_gbps", "iperf3 UDP -l 1460 -b 0, received", "Gbit/s", True),
    ("udp_loss_pct", "iperf3 UDP loss", "%", False),
    ("tcp_rtt_us", "1-byte TCP round trip", "µs", False),
    ("udp_rtt_us", "1-byte UDP round trip", "µs", False),
    ("cac_us", "connect+accept+close", "µs/cycle", False),
    ("redis_set_rps", "redis-benchmark SET, 50 clients", "req/s", True),
    ("redis_p16_rps", "redis-benchmark SET, 50 clients, -P 16", "req/s", True),
    ("nginx_wrk_rps", "nginx + wrk -c32, keep-alive, 612 B", "req/s", True),
    ("http_close_rps", "nginx + ab -c50, a connection per request", "req/s", True),
    ("tcp_rtt_seccomp_us", "1-byte TCP round trip, the C program via seccomp instead of LD_PRELOAD", "µs",
     False, "tcp_rtt_us"),
    ("go_gbps", "Go server + Go client TCP bulk (swrap: swrapnet)", "Gbit/s", True),
    ("go_seccomp_gbps", "Go server + Go client TCP bulk, unmodified via seccomp", "Gbit/s", True, "go_gbps"),
    ("go_rtt_us", "Go 1-byte TCP round trip (swrap: swrapnet)", "µs", False),
    ("go_seccomp_rtt_us", "Go 1-byte TCP round trip, unmodified via seccomp", "µs", False, "go_rtt_us"),
    ("go_conn_us", "Go dial + 1-byte echo + close, ≤ 1000 in a row (swrap: swrapnet)", "µs/conn.", False),
    ("go_seccomp_conn_us", "Go dial + 1-byte echo + close, ≤ 1000 in a row, unmodified via seccomp", "µs/conn.", False,
     "go_conn_us"),
    ("relay_rtt_us", "floor: 1-byte round trip through a relay process (ratio to loopback TCP)", "µs", False,
     "tcp_rtt_us"),
]


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, unit=""):
    if v is None:
        return "—"
    if unit == "Gbit/s":
        return "%.2f" % v
    if unit == "%":
        return "%.1f" % v
    if unit == "req/s":
        return "%.0f" % v if v < 1e6 else "%.2f M" % (v / 1e6)
    if abs(v) >= 100:
        return "%.0f" % v
    return "%.1f" % v


def report(cfg, systems, samples, footprint, errors, elapsed):
    names = [s.name for s in systems]
    lines = []
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines.append("# swrap benchmarks (%s)" % now)
    lines.append("")
    lines.append("%s mode: %d rounds, round-robin over the systems; iperf3 -t %d; %d round trips; "
                 "%d connect cycles; redis-benchmark -n %d (-P 16: -n %d), wrk and ab -t %d s. "
                 "Medians over rounds; (the ratio) is system ÷ kernel loopback "
                 "of the same run, [× sw] swrap ÷ socket_wrapper (with a capture: ÷ socket_wrapper+pcap) "
                 "of the same run. %d CPUs, %s, RLIMIT_NOFILE %d (every process, the broker too). "
                 "Took %.0f s."
                 % (cfg.mode, cfg.rounds, cfg.t, cfg.rtts, cfg.cycles, cfg.redis_n, cfg.redis_n * 10,
                    cfg.http_t, os.cpu_count(),
                    os.uname().release, resource.getrlimit(resource.RLIMIT_NOFILE)[0], elapsed))
    lines.append("")
    lines.append("| measure | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    meds = {}
    for key, label, unit, _, *base_key in ROWS:
        row = []
        bk = base_key[0] if base_key else key
        base = med(samples["loopback"].get(bk, [])) if "loopback" in samples else None
        for n in names:
            v = med(samples[n].get(key, []))
            meds[(n, key)] = v
            cell = fmt(v, unit)
            if (n != "loopback" or bk != key) and v is not None and base and key != "udp_loss_pct":
                cell += " (%.2f×)" % (v / base)
            # swrap beside socket_wrapper, with a capture beside with a capture
            swn = n.replace("swrap", "socket_wrapper", 1)
            sw = med(samples[swn].get(key, [])) if n.startswith("swrap") and swn in samples else None
            if v is not None and sw and key != "udp_loss_pct":
                cell += " [%.2f× sw]" % (v / sw)
            row.append(cell)
        lines.append("| %s (%s) | %s |" % (label, unit, " | ".join(row)))
    # footprint rows
    for key, label in (("conns1000", "1k idle TCP connections"), ("conns10000", "10k idle TCP connections")):
        if not any(key in footprint.get(n, {}) for n in names):
            continue
        row = []
        for n in names:
            r = footprint.get(n, {}).get(key)
            if r is None:
                row.append("—")
                continue
            if isinstance(r, str):
                row.append(r)
                continue
            cell = "%d/%d open in %.2f s" % (r.get("opened", 0), r["requested"], r.get("open_s", 0))
            if r.get("error"):
                cell += ", " + r["error"]
            if r.get("broker_rss_mib") is not None:
                cell += "; broker %.0f MiB RSS, %d fds" % (r["broker_rss_mib"], r.get("broker_fds") or 0)
            if r.get("app_rss_mib"):
                cell += "; apps %.0f MiB" % r["app_rss_mib"]
            row.append(cell)
        lines.append("| %s | %s |" % (label, " | ".join(row)))
    if any("hosts64" in footprint.get(n, {}) for n in names):
        row = []
        for n in names:
            r = footprint.get(n, {}).get("hosts64")
            if not isinstance(r, dict):
                row.append(r or "—")
                continue
            row.append("broker %.0f MiB RSS (idle %.0f), %d fds; %d hosts, %d sockets listed"
                       % (r["broker_rss_mib"], r["broker_rss_idle_mib"], r["broker_fds"] or 0,
                          r["hosts_listed"], r["sockets_listed"]))
        lines.append("| 64 idle hosts | %s |" % " | ".join(row))
    if any("churn20000" in footprint.get(n, {}) for n in names):
        row = []
        for n in names:
            r = footprint.get(n, {}).get("churn20000")
            if not isinstance(r, dict):
                row.append(r or "—")
                continue
            cell = "%.0f then %.0f µs/cycle" % (r["first_us"], r["second_us"])
            if r.get("broker_rss_mib") is not None:
                cell += "; broker %.0f MiB RSS (%.0f before), %d connections closing" % (
                    r["broker_rss_mib"], r["broker_rss_before_mib"], r.get("closing", 0))
            row.append(cell)
        lines.append("| 20k connect+accept+close cycles in a row (10k, then 10k more) | %s |" % " | ".join(row))
    bad = []
    for key, label in (("nginx_wrk_errors", "wrk"), ("http_close_errors", "ab")):
        for n in names:
            t = sum(samples[n].get(key, []))
            if t:
                bad.append("%s %s %d" % (n, label, t))
    if bad:
        lines.append("")
        lines.append("HTTP errors (failed requests, non-2xx answers, socket errors; summed over rounds): "
                     + ", ".join(bad))
    caps = [s for s in systems if s.capture_bytes]
    if caps:
        lines.append("")
        lines.append("Capture file of one round (every measure of the round; written to %s (file system %s); deleted after each system-run), median size: " % (
            cfg.capture_dir, cfg.capture_fs) + ", ".join(
            "%s %.0f MiB" % (s.name, statistics.median(s.capture_bytes) / 2**20) for s in caps))
    lines.append("")
    lines.append("Samples per system (tcp_gbps): " + "; ".join(
        "%s %s" % (n, ", ".join("%.2f" % v for v in samples[n].get("tcp_gbps", []))) for n in names))
    if errors:
        lines.append("")
        lines.append("Failures:")
        lines.append("")
        for e in errors:
            lines.append("- " + e)
    return "\n".join(lines) + "\n", meds


def chart(path, names, meds):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib not available (apt-get install python3-matplotlib): no chart")
        return None
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8), gridspec_kw={"width_ratios": [2, 3, 4]})
    colors = {"loopback": "#555555", "socket_wrapper": "#1f77b4", "socket_wrapper+pcap": "#9ecae1",
              "swrap": "#d62728", "swrap+pcap": "#fc9272"}

    def lab(v):
        if v >= 1e6:
            return "%.2fM" % (v / 1e6)
        if v >= 1e4:
            return "%.0fk" % (v / 1e3)
        return "%.2f" % v if v < 10 else "%.0f" % v

    def bars(ax, keys, labels, title, ylabel):
        width = 0.8 / len(names)
        for i, n in enumerate(names):
            vals = [meds.get((n, k)) or 0 for k in keys]
            xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(keys))]
            b = ax.bar(xs, vals, width, label=n, color=colors.get(n, "#999999"))
            ax.bar_label(b, labels=[lab(v) if v else "" for v in vals],
                         fontsize=7, rotation=90, padding=2)
        ax.set_xticks(range(len(keys)), labels)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.margins(y=0.18)

    bars(axes[0], ["tcp_gbps", "udp_gbps"], ["TCP bulk", "UDP 1460 B (received)"],
         "Throughput (higher is better)", "Gbit/s")
    bars(axes[1], ["tcp_rtt_us", "udp_rtt_us", "cac_us"],
         ["1-byte TCP RTT", "1-byte UDP RTT", "connect+accept+close"],
         "Latency (lower is better)", "µs")
    floor = meds.get(("loopback", "relay_rtt_us"))
    if floor:
        # The least a design with a broker process pays for a round trip.
        # over the two round-trip groups only
        axes[1].hlines(floor, -0.45, 1.45, color="#555555", linestyles="--", linewidth=1)
        axes[1].annotate("relay-process floor %.0f µs" % floor, (0.5, floor), xytext=(0, 4),
                         textcoords="offset points", fontsize=7, color="#555555", ha="center",
                         bbox=dict(facecolor="white", edgecolor="none", pad=1))
    bars(axes[2], ["redis_set_rps", "redis_p16_rps", "nginx_wrk_rps", "http_close_rps"],
         ["redis SET", "redis SET -P 16", "nginx keep-alive", "conn. per request"],
         "Real servers (higher is better)", "requests/s (log)")
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.suptitle("swrap vs socket_wrapper vs kernel loopback (medians of one run)")
    fig.tight_layout()
    fig.savefig(path)
    return path


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer rounds, shorter tests")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("-t", type=int, help="iperf3 seconds")
    ap.add_argument("--rtts", type=int)
    ap.add_argument("--cycles", type=int)
    ap.add_argument("--conns", default=None, help="comma-separated idle connection counts")
    ap.add_argument("--redis-n", dest="redis_n", type=int, help="redis-benchmark requests (-P 16: ten times more)")
    ap.add_argument("--http-t", dest="http_t", type=int, help="wrk and ab seconds")
    ap.add_argument("--measures", default=None,
                    help="comma-separated subset: iperf3 TCP,iperf3 UDP,TCP RTT,UDP RTT,TCP RTT seccomp,Go,connect cycle,"
                         "relay floor,redis,nginx,footprint (default all; footprint: the idle connection "
                         "and idle host rows, once per system)")
    ap.add_argument("--systems", default="loopback,socket_wrapper,socket_wrapper+pcap,swrap,swrap+pcap")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--capture-dir", dest="capture_dir", default="/var/tmp",
                    help="where the +pcap systems write their captures (a fresh directory below it): "
                         "a disk, as users' captures are (default /var/tmp); /dev/shm for tmpfs")
    cfg = ap.parse_args()
    cfg.mode = "quick" if cfg.quick else "full"
    dflt = dict(rounds=2, t=1, rtts=2000, cycles=500, conns="1000,10000", redis_n=20000, http_t=1) \
        if cfg.quick else \
        dict(rounds=5, t=3, rtts=5000, cycles=2000, conns="1000,10000", redis_n=60000, http_t=2)
    for k, v in dflt.items():
        if getattr(cfg, k) is None:
            setattr(cfg, k, v)

    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1 << 20, 1 << 20))
    except (ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    log("RLIMIT_NOFILE %s" % (resource.getrlimit(resource.RLIMIT_NOFILE),))

    sw_lib = next((p for p in SW_LIB_CANDIDATES if os.path.exists(p)), None)
    systems = []
    for name in cfg.systems.split(","):
        kind = name.split("+")[0]
        if kind == "socket_wrapper" and not sw_lib:
            log("socket_wrapper library not found (apt-get install libsocket-wrapper): skipping " + name)
            continue
        systems.append(System(name, kind, pcap=name.endswith("+pcap"), sw_lib=sw_lib))
    names = [s.name for s in systems]

    tmp = tempfile.mkdtemp(prefix="swrap-bench.", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.chmod(tmp, 0o755)  # nginx's workers (www-data) read their files below it
    cfg.tmp = tmp
    global CAPTURE_DIR
    if not os.path.isdir(cfg.capture_dir):
        cfg.capture_dir = tmp  # what the table then names
    CAPTURE_DIR = tempfile.mkdtemp(prefix="swrap-bench-capture.", dir=cfg.capture_dir)
    cfg.capture_fs = fs_type(CAPTURE_DIR)
    log("captures in %s (%s)" % (CAPTURE_DIR, cfg.capture_fs))
    measures = [("iperf3 TCP", m_iperf_tcp), ("iperf3 UDP", m_iperf_udp), ("TCP RTT", m_rtt("tcp")),
                ("UDP RTT", m_rtt("udp")), ("TCP RTT seccomp", m_rtt_seccomp), ("Go", m_go),
                ("connect cycle", m_cac), ("relay floor", m_relay),
                ("redis", m_redis), ("nginx", m_nginx)]
    if cfg.measures:
        want = cfg.measures.split(",")
        measures = [m for m in measures if m[0] in want]
    samples = {n: {} for n in names}
    footprint = {n: {} for n in names}
    errors = []
    t0 = time.time()

    def guard(sysm, label, fn, sink):
        try:
            try:
                r = fn(sysm, cfg)
            except RuntimeError as e:
                if "Address already in use" not in str(e):
                    raise
                log("  %s: %s; once more on another port" % (label, e))
                r = fn(sysm, cfg)
            sink(r)
            return r
        except Skip:
            return None
        except Exception as e:  # noqa: BLE001 - report and go on
            msg = "%s / %s: %s" % (sysm.name, label, str(e).strip().replace("\n", " ")[:400])
            log("  FAILED " + msg)
            errors.append(msg)
            return None

    try:
        for rnd in range(cfg.rounds if measures else 0):
            order = systems[rnd % len(systems):] + systems[:rnd % len(systems)]
            for sysm in order:
                log("round %d/%d: %s" % (rnd + 1, cfg.rounds, sysm.name))
                try:
                    sysm.start(tmp)
                except Exception as e:  # noqa: BLE001
                    errors.append("%s: start: %s" % (sysm.name, e))
                    log("  FAILED start: %s" % e)
                    continue
                try:
                    for label, fn in measures:
                        r = guard(sysm, label, fn, lambda r, n=sysm.name: [
                            samples[n].setdefault(k, []).append(v) for k, v in r.items()])
                        if r:
                            log("  %-14s %s" % (label, " ".join("%s=%.3g" % kv for kv in r.items())))
                finally:
                    sysm.stop(record=True)
        fp = [("conns%s" % n, m_conns(int(n))) for n in cfg.conns.split(",") if n]
        fp.append(("hosts64", m_hosts(64)))
        fp.append(("churn20000", m_churn(20000)))
        if cfg.measures and "footprint" not in cfg.measures.split(","):
            fp = []
        for label, fn in fp:
            for sysm in systems:
                if label == "hosts64" and sysm.kind != "swrap":
                    footprint[sysm.name][label] = "n/a (no broker)"
                    continue
                log("footprint %s: %s" % (label, sysm.name))
                sysm.start(tmp)
                try:
                    r = guard(sysm, label, fn, lambda r, n=sysm.name: footprint[n].update(r))
                    if r:
                        log("  " + json.dumps(r))
                    elif label not in footprint[sysm.name]:
                        footprint[sysm.name][label] = "failed (see below)"
                finally:
                    sysm.stop()
    finally:
        for s in systems:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(CAPTURE_DIR, ignore_errors=True)

    for s in systems:
        if s.kind != "loopback" and not s.verified and measures:
            errors.append("%s: the wrapper was never seen active; its figures are not trustworthy" % s.name)
    md, meds = report(cfg, systems, samples, footprint, errors, time.time() - t0)
    os.makedirs(cfg.out, exist_ok=True)
    png = chart(os.path.join(cfg.out, "latest.png"), names, meds)
    if png:
        md += "\n![throughput and round trips](latest.png)\n"
    with open(os.path.join(cfg.out, "latest.md"), "w") as f:
        f.write(md)
    with open(os.path.join(cfg.out, "latest.json"), "w") as f:
        json.dump({"config": vars(cfg), "samples": samples, "footprint": footprint, "errors": errors}, f,
                  indent=1)
    print(md)
    print("wrote %s/latest.md%s" % (cfg.out, " and latest.png" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
