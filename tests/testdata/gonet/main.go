// Command gonet is an unmodified Go network program for the seccomp tests:
// it uses only the standard library, built with CGO_ENABLED=0, so LD_PRELOAD
// cannot reach it.
//
//	gonet serve ADDR            HTTP server: GET /blob?n=N returns N bytes of a fixed pattern
//	gonet get URL               prints "LEN SHA256" of the body
//	gonet udpecho ADDR          answers each datagram with "FROM-ADDR PAYLOAD"
//	gonet udpsend LADDR RADDR MSG  sends MSG from LADDR, prints the reply and its source
//	gonet connects ADDR G N     G goroutines each make N connections to ADDR, each
//	                            writes a line and reads it back; prints "ok G*N"
//	gonet echo ADDR             TCP echo server
//	gonet hold ADDR             connects, prints "connected LOCAL", holds until stdin ends
//	gonet udpdial RADDR MSG     net.Dial("udp"), Write MSG, Read the reply (connected UDP:
//	                            read and write, no address); prints "LOCAL REPLY"
//	gonet lookup NAME           prints NAME's addresses (net.LookupHost), sorted, one line
package main

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: gonet serve|get|udpecho|udpsend|connects|echo ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		ln, err := net.Listen("tcp", os.Args[2])
		check(err)
		fmt.Println("listening", ln.Addr())
		http.HandleFunc("/blob", func(w http.ResponseWriter, r *http.Request) {
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			w.Header().Set("X-Peer", r.RemoteAddr)
			w.Write(pattern(n))
		})
		check(http.Serve(ln, nil))
	case "get":
		c := &http.Client{Timeout: 60 * time.Second}
		resp, err := c.Get(os.Args[2])
		check(err)
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		check(err)
		fmt.Printf("%d %x %s\n", n, h.Sum(nil), resp.Header.Get("X-Peer"))
	case "udpecho":
		pc, err := net.ListenPacket("udp", os.Args[2])
		check(err)
		fmt.Println("listening", pc.LocalAddr())
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			check(err)
			_, err = pc.WriteTo([]byte(from.String()+" "+string(buf[:n])), from)
			check(err)
		}
	case "udpsend":
		pc, err := net.ListenPacket("udp", os.Args[2])
		check(err)
		to, err := net.ResolveUDPAddr("udp", os.Args[3])
		check(err)
		_, err = pc.WriteTo([]byte(os.Args[4]), to)
		check(err)
		pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 65536)
		n, from, err := pc.ReadFrom(buf)
		check(err)
		fmt.Printf("%s %s\n", from, buf[:n])
	case "udpdial":
		c, err := net.Dial("udp", os.Args[2])
		check(err)
		_, err = c.Write([]byte(os.Args[3]))
		check(err)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 65536)
		n, err := c.Read(buf)
		check(err)
		fmt.Printf("%s %s\n", c.LocalAddr(), buf[:n])
	case "udpdialempty":
		// An empty datagram, then ARG, on one connected socket: the
		// server's two answers, one line each.
		c, err := net.Dial("udp", os.Args[2])
		check(err)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 65536)
		for _, p := range []string{"", os.Args[3]} {
			_, err = c.Write([]byte(p))
			check(err)
			n, err := c.Read(buf)
			check(err)
			fmt.Printf("%q\n", buf[:n])
		}
	case "echo":
		ln, err := net.Listen("tcp", os.Args[2])
		check(err)
		fmt.Println("listening", ln.Addr())
		for {
			c, err := ln.Accept()
			check(err)
			go func() { io.Copy(c, c); c.Close() }()
		}
	case "hold":
		c, err := net.Dial("tcp", os.Args[2])
		check(err)
		fmt.Println("connected", c.LocalAddr())
		io.Copy(io.Discard, os.Stdin)
		c.Close()
	case "connects":
		g, _ := strconv.Atoi(os.Args[3])
		n, _ := strconv.Atoi(os.Args[4])
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for i := 0; i < g; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				for j := 0; j < n; j++ {
					c, err := net.Dial("tcp", os.Args[2])
					if err != nil {
						fmt.Fprintln(os.Stderr, "dial:", err)
						continue
					}
					line := fmt.Sprintf("hello %d %d\n", i, j)
					io.WriteString(c, line)
					got, err := bufio.NewReader(c).ReadString('\n')
					c.Close()
					if err != nil || got != line {
						fmt.Fprintf(os.Stderr, "echo: %q %v\n", got, err)
						continue
					}
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}(i)
		}
		wg.Wait()
		fmt.Println("ok", ok)
	case "lookup":
		addrs, err := net.LookupHost(os.Args[2])
		check(err)
		sort.Strings(addrs)
		fmt.Println(strings.Join(addrs, " "))
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "gonet:", err)
		os.Exit(1)
	}
}
