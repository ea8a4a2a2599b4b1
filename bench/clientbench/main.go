// Command clientbench measures swrap's broker through the Go client
// (swrapnet) beside kernel loopback, in the same run: bulk TCP throughput
// and the 1-byte TCP round trip between two emulated hosts. The systems are
// measured interleaved, round after round, so that machine drift affects
// all alike; it prints the medians and the ratios to kernel loopback.
//
//	go run ./bench/clientbench [-rounds 5] [-bulk 1s] [-rtts 20000]
//
// It starts its own broker (bin/swrap-broker, built by make) in a
// temporary directory.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/swrap/swrap/swrapnet"
)

// system is one way of making a TCP connection between two endpoints.
type system struct {
	name   string
	listen func() (net.Listener, error)
	dial   func(addr string) (net.Conn, error)
}

func main() {
	rounds := flag.Int("rounds", 5, "measurement rounds (medians are reported)")
	bulk := flag.Duration("bulk", time.Second, "duration of each bulk transfer")
	rtts := flag.Int("rtts", 20000, "round trips per latency measurement")
	broker := flag.String("broker", "bin/swrap-broker", "the broker binary")
	mtu := flag.Int("mtu", 65535, "fabric MTU")
	flag.Parse()
	if err := run(*rounds, *bulk, *rtts, *broker, *mtu); err != nil {
		fmt.Fprintln(os.Stderr, "clientbench:", err)
		os.Exit(1)
	}
}

func run(rounds int, bulk time.Duration, rtts int, brokerBin string, mtu int) error {
	dir, err := os.MkdirTemp("", "swrap-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command(brokerBin, "--dir", dir, "--mtu", fmt.Sprint(mtu))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the broker: %w", err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	for i := 0; ; i++ {
		if _, err := os.Stat(filepath.Join(dir, "swrap", "broker.sock")); err == nil {
			break
		}
		if i > 500 {
			return errors.New("the broker did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	h10, err := swrapnet.Join(dir, 10)
	if err != nil {
		return err
	}
	h11, err := swrapnet.Join(dir, 11)
	if err != nil {
		return err
	}
	systems := []system{
		{"kernel loopback",
			func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") },
			func(a string) (net.Conn, error) { return net.Dial("tcp", a) }},
		{"swrap (Go client, two hosts)",
			func() (net.Listener, error) { return h10.Listen("tcp", "127.0.0.10:0") },
			func(a string) (net.Conn, error) { return h11.Dial("tcp", a) }},
	}
	gbps := make([][]float64, len(systems))
	lat := make([][]time.Duration, len(systems))
	for r := 0; r < rounds; r++ {
		for i, s := range systems {
			g, err := measureBulk(s, bulk)
			if err != nil {
				return fmt.Errorf("%s bulk: %w", s.name, err)
			}
			l, err := measureRTT(s, rtts)
			if err != nil {
				return fmt.Errorf("%s rtt: %w", s.name, err)
			}
			gbps[i] = append(gbps[i], g)
			lat[i] = append(lat[i], l)
		}
	}
	fmt.Printf("TCP between two endpoints, %d rounds, medians (fabric MTU %d)\n\n", rounds, mtu)
	fmt.Printf("| system | bulk Gbit/s | × loopback | 1-byte RTT µs | × loopback |\n|---|---|---|---|---|\n")
	g0, l0 := median(gbps[0]), median(lat[0])
	for i, s := range systems {
		g, l := median(gbps[i]), median(lat[i])
		fmt.Printf("| %s | %.2f | %.2f× | %.1f | %.2f× |\n", s.name, g, g/g0,
			float64(l)/float64(time.Microsecond), float64(l)/float64(l0))
	}
	return nil
}

// measureBulk sends for d and returns the receiver's rate in Gbit/s.
func measureBulk(s system, d time.Duration) (float64, error) {
	ln, err := s.listen()
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	type res struct {
		n   int64
		dur time.Duration
		err error
	}
	got := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- res{err: err}
			return
		}
		defer c.Close()
		start := time.Now()
		n, err := io.CopyBuffer(io.Discard, c, make([]byte, 256<<10))
		got <- res{n, time.Since(start), err}
	}()
	c, err := s.dial(ln.Addr().String())
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 256<<10)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, err := c.Write(buf); err != nil {
			c.Close()
			return 0, err
		}
	}
	c.Close()
	r := <-got
	if r.err != nil {
		return 0, r.err
	}
	return float64(r.n) * 8 / r.dur.Seconds() / 1e9, nil
}

// measureRTT returns the median 1-byte round trip over n exchanges.
func measureRTT(s system, n int) (time.Duration, error) {
	ln, err := s.listen()
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		nodelay(c)
		b := make([]byte, 1)
		for {
			if _, err := io.ReadFull(c, b); err != nil {
				return
			}
			if _, err := c.Write(b); err != nil {
				return
			}
		}
	}()
	c, err := s.dial(ln.Addr().String())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	nodelay(c)
	b := make([]byte, 1)
	samples := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		t := time.Now()
		if _, err := c.Write(b); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return 0, err
		}
		samples = append(samples, time.Since(t))
	}
	return median(samples), nil
}

// nodelay turns Nagle off, as latency-sensitive programs do.
func nodelay(c net.Conn) {
	switch c := c.(type) {
	case *net.TCPConn:
		c.SetNoDelay(true)
	case *swrapnet.Conn:
		c.SetNoDelay(true)
	}
}

func median[T int64 | float64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
