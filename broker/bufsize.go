package broker

import (
	"os"
	"strconv"
	"strings"
	"sync"
)

// bufLimits are the machine's socket buffer sysctls, which Linux's
// SO_RCVBUF/SO_SNDBUF answers follow: the defaults a new socket reports
// and the caps a setsockopt meets. Read once from /proc/sys so that a
// program sees under swrap the numbers it sees natively on the same
// machine; the fallbacks are Linux's built-in values.
type bufLimits struct {
	rmemMax, wmemMax         int // net.core.[rw]mem_max: SO_RCVBUF/SO_SNDBUF caps
	rmemDefault, wmemDefault int // net.core.[rw]mem_default: a UDP socket's sizes
	tcpRmem, tcpWmem         int // net.ipv4.tcp_[rw]mem[1]: a TCP socket's sizes
}

// Linux's floors for SO_RCVBUF/SO_SNDBUF (SOCK_MIN_RCVBUF, SOCK_MIN_SNDBUF
// on x86-64).
const (
	minRcvBuf = 2304
	minSndBuf = 4608
)

var sysBufLimits = sync.OnceValue(func() bufLimits {
	return bufLimits{
		rmemMax:     sysctlInt("net/core/rmem_max", 0, 212992),
		wmemMax:     sysctlInt("net/core/wmem_max", 0, 212992),
		rmemDefault: sysctlInt("net/core/rmem_default", 0, 212992),
		wmemDefault: sysctlInt("net/core/wmem_default", 0, 212992),
		tcpRmem:     sysctlInt("net/ipv4/tcp_rmem", 1, 131072),
		tcpWmem:     sysctlInt("net/ipv4/tcp_wmem", 1, 16384),
	}
})

// sysctlInt reads field i of /proc/sys/name, or def when it cannot.
func sysctlInt(name string, i, def int) int {
	b, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		return def
	}
	f := strings.Fields(string(b))
	if i >= len(f) {
		return def
	}
	v, err := strconv.Atoi(f[i])
	if err != nil || v <= 0 {
		return def
	}
	return v
}

// setBufSize is what Linux's sk_setsockopt stores for SO_RCVBUF (rcv) or
// SO_SNDBUF: the value taken as unsigned and capped at the sysctl
// maximum, unless force (SO_*BUFFORCE, where a negative value is 0), then
// doubled, at most INT_MAX, at least the floor.
func setBufSize(v int32, rcv, force bool) int {
	lim := sysBufLimits()
	var n int64
	switch {
	case force:
		n = int64(max(v, 0))
	case rcv:
		n = min(int64(uint32(v)), int64(lim.rmemMax))
	default:
		n = min(int64(uint32(v)), int64(lim.wmemMax))
	}
	n = min(n, (1<<31-1)/2) * 2
	floor := int64(minSndBuf)
	if rcv {
		floor = minRcvBuf
	}
	return int(max(n, floor))
}
