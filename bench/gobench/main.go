// Command gobench is the Go server and client of `make bench`'s Go rows: the
// same two small programs over kernel loopback, through swrapnet (the Go
// client library) and, unmodified, under `swrap run` (seccomp user
// notification; built with CGO_ENABLED=0, so LD_PRELOAD cannot reach it).
//
//	gobench server ADDR [DIR IFACE]          prints "ready", then serves
//	gobench client ADDR bulk SECS [DIR IFACE]  prints the bulk rate, Gbit/s
//	gobench client ADDR rtt N [DIR IFACE]      prints the 1-byte round trip, µs
//	gobench client ADDR conns N [DIR IFACE]    N connections, each dial, 1-byte echo,
//	                                           close: prints µs per connection
//
// With DIR and IFACE the program joins the network of DIR as host IFACE
// with swrapnet instead of using package net. A connection's first byte
// picks what the server does: 'B' reads until EOF and answers the byte
// count (8 bytes), 'R' echoes every byte.
package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/swrap/swrap/swrapnet"
)

func main() {
	if len(os.Args) < 3 {
		fail(fmt.Errorf("usage: gobench server ADDR [DIR IFACE] | client ADDR bulk SECS|rtt N [DIR IFACE]"))
	}
	addr := os.Args[2]
	var host *swrapnet.Host
	join := func(args []string) {
		if len(args) == 2 {
			n, err := strconv.Atoi(args[1])
			if err != nil {
				fail(err)
			}
			if host, err = swrapnet.Join(args[0], n); err != nil {
				fail(err)
			}
		}
	}
	switch os.Args[1] {
	case "server":
		join(os.Args[3:])
		var ln net.Listener
		var err error
		if host != nil {
			ln, err = host.Listen("tcp", addr)
		} else {
			ln, err = net.Listen("tcp", addr)
		}
		if err != nil {
			fail(err)
		}
		fmt.Println("ready")
		for {
			c, err := ln.Accept()
			if err != nil {
				fail(err)
			}
			go serve(c)
		}
	case "client":
		if len(os.Args) < 5 {
			fail(fmt.Errorf("client ADDR bulk SECS|rtt N"))
		}
		join(os.Args[5:])
		dial := func() (net.Conn, error) {
			if host != nil {
				return host.Dial("tcp", addr)
			}
			return net.Dial("tcp", addr)
		}
		n, err := strconv.Atoi(os.Args[4])
		if err != nil {
			fail(err)
		}
		if os.Args[3] == "conns" {
			if err := conns(dial, n); err != nil {
				fail(err)
			}
			return
		}
		c, err := dial()
		if err != nil {
			fail(err)
		}
		switch os.Args[3] {
		case "bulk":
			err = bulk(c, time.Duration(n)*time.Second)
		case "rtt":
			err = rtt(c, n)
		default:
			err = fmt.Errorf("unknown measure %s", os.Args[3])
		}
		if err != nil {
			fail(err)
		}
	default:
		fail(fmt.Errorf("unknown mode %s", os.Args[1]))
	}
}

func serve(c net.Conn) {
	defer c.Close()
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return
	}
	switch b[0] {
	case 'B':
		n, _ := io.Copy(io.Discard, c)
		var r [8]byte
		binary.BigEndian.PutUint64(r[:], uint64(n))
		c.Write(r[:])
	case 'R':
		for {
			if _, err := io.ReadFull(c, b[:]); err != nil {
				return
			}
			if _, err := c.Write(b[:]); err != nil {
				return
			}
		}
	}
}

// bulk writes for d, half-closes, and reports what the server counted.
func bulk(c net.Conn, d time.Duration) error {
	buf := make([]byte, 128<<10)
	buf[0] = 'B'
	if _, err := c.Write(buf[:1]); err != nil {
		return err
	}
	t0 := time.Now()
	for time.Since(t0) < d {
		if _, err := c.Write(buf); err != nil {
			return err
		}
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		return err
	}
	var r [8]byte
	if _, err := io.ReadFull(c, r[:]); err != nil {
		return err
	}
	el := time.Since(t0)
	fmt.Printf("%.3f\n", float64(binary.BigEndian.Uint64(r[:]))*8/el.Seconds()/1e9)
	return nil
}

// rtt makes n 1-byte round trips and reports the mean in µs.
func rtt(c net.Conn, n int) error {
	b := []byte{'R'}
	if _, err := c.Write(b); err != nil {
		return err
	}
	b[0] = 'x'
	t0 := time.Now()
	for i := 0; i < n; i++ {
		if _, err := c.Write(b); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return err
		}
	}
	fmt.Printf("%.1f\n", float64(time.Since(t0).Microseconds())/float64(n))
	return nil
}

// conns makes n connections one after another, each dialled, used for one
// 1-byte echo and closed, and reports the mean in µs per connection: what
// a Go client making a connection per request pays.
func conns(dial func() (net.Conn, error), n int) error {
	b := make([]byte, 2)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		c, err := dial()
		if err != nil {
			return err
		}
		b[0], b[1] = 'R', byte(i)
		if _, err := c.Write(b); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, b[:1]); err != nil {
			return err
		}
		if b[0] != byte(i) {
			return fmt.Errorf("connection %d: echoed %q", i, b[0])
		}
		c.Close()
	}
	fmt.Printf("%.1f\n", float64(time.Since(t0).Microseconds())/float64(n))
	return nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gobench:", err)
	os.Exit(1)
}
