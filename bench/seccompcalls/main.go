// Command seccompcalls measures what one trapped socket call costs a Go
// program under swrap's seccomp path: it connects to ADDR, then times
// 5000 getsockname and 5000 setsockopt(TCP_NODELAY) on that socket, each
// of which the supervisor serves (bench/PROFILE.md). The setsockopts are
// timed twice: until the last returned, and until the broker had served
// them all (a getsockopt after them).
//
//	swrap run --iface 11 -- bin/seccompcalls 127.0.0.10:PORT
package main

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: seccompcalls ADDR")
		os.Exit(2)
	}
	c, err := net.Dial("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "seccompcalls:", err)
		os.Exit(1)
	}
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		fmt.Fprintln(os.Stderr, "seccompcalls:", err)
		os.Exit(1)
	}
	const n = 5000
	var opt, served, name time.Duration
	raw.Control(func(fd uintptr) {
		t0 := time.Now()
		for i := 0; i < n; i++ {
			syscall.Getsockname(int(fd))
		}
		name = time.Since(t0)
		t0 = time.Now()
		for i := 0; i < n; i++ {
			syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		}
		opt = time.Since(t0)
		// The supervisor sends TCP_NODELAY without waiting for the
		// broker: a getsockopt after them waits until all are served.
		syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
		served = time.Since(t0)
	})
	fmt.Printf("getsockname %.1f us, setsockopt %.1f us per call (%.1f us until the broker served them)\n",
		us(name, n), us(opt, n), us(served, n))
}

func us(d time.Duration, n int) float64 { return float64(d.Microseconds()) / float64(n) }
