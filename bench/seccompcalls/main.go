// Command seccompcalls measures what one trapped socket call costs a Go
// program under swrap's seccomp path: it connects to ADDR, then times
// 5000 setsockopt(TCP_NODELAY) and 5000 getsockname on that socket, each
// of which the supervisor serves (bench/PROFILE.md).
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
	var opt, name time.Duration
	raw.Control(func(fd uintptr) {
		t0 := time.Now()
		for i := 0; i < n; i++ {
			syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		}
		opt = time.Since(t0)
		t0 = time.Now()
		for i := 0; i < n; i++ {
			syscall.Getsockname(int(fd))
		}
		name = time.Since(t0)
	})
	fmt.Printf("setsockopt %.1f us, getsockname %.1f us per call\n",
		float64(opt.Microseconds())/n, float64(name.Microseconds())/n)
}
