package fabric

import (
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkTCPBulk measures one TCP flow between two hosts, host 11 to
// host 10, at several fabric MTUs.
func BenchmarkTCPBulk(b *testing.B) {
	for _, mtu := range []uint32{1500, 9000, 65535} {
		b.Run(fmt.Sprint("mtu=", mtu), func(b *testing.B) {
			f := newFabric(b, Config{MTU: mtu})
			hs := hosts(b, f, 10, 11)
			server, client := tcpPair(b, hs[0], hs[1], false, 8000)
			defer client.Close()
			defer server.Close()
			buf := make([]byte, 256<<10)
			done := make(chan int64)
			go func() {
				n, _ := io.Copy(io.Discard, server)
				done <- n
			}()
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := client.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			client.Close()
			n := <-done
			b.StopTimer()
			if n != int64(b.N*len(buf)) {
				b.Errorf("received %d of %d bytes", n, b.N*len(buf))
			}
			b.ReportMetric(float64(n)*8/b.Elapsed().Seconds()/1e9, "Gbit/s")
			var drops uint64
			for _, h := range hs {
				drops += h.LinkStats().Dropped
			}
			b.ReportMetric(float64(drops), "dropped")
		})
	}
}

// BenchmarkRoundTrip measures 1-byte TCP ping-pongs between two hosts, on
// one connection and on 50 at once (redis-benchmark -c50's pattern), with
// the ACK policy on (the default) and off. Besides wall time it reports the
// process's CPU time and the frames on the fabric per round trip.
func BenchmarkRoundTrip(b *testing.B) {
	for _, ack := range []struct {
		name  string
		delay time.Duration
	}{{"acks=delayed", 0}, {"acks=every", -1}} {
		for _, conns := range []int{1, 50} {
			b.Run(fmt.Sprintf("%s/conns=%d", ack.name, conns), func(b *testing.B) {
				roundTrips(b, Config{AckDelay: ack.delay}, conns)
			})
		}
	}
}

func roundTrips(b *testing.B, cfg Config, conns int) {
	f := newFabric(b, cfg)
	hs := hosts(b, f, 10, 11)
	clients := make([]net.Conn, conns)
	for i := range clients {
		server, client := tcpPair(b, hs[0], hs[1], false, uint16(8000+i))
		defer server.Close()
		defer client.Close()
		clients[i] = client
		go func() {
			buf := make([]byte, 1)
			for {
				if _, err := server.Read(buf); err != nil {
					return
				}
				if _, err := server.Write(buf); err != nil {
					return
				}
			}
		}()
	}
	frames := func() (n uint64) {
		for _, h := range hs {
			n += h.LinkStats().TxFrames
		}
		return n
	}
	var ru0, ru1 syscall.Rusage
	f0 := frames()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	var wg sync.WaitGroup
	for c, client := range clients {
		n := b.N / conns
		if c < b.N%conns {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1)
			for range n {
				if _, err := client.Write(buf); err != nil {
					b.Error(err)
					return
				}
				if _, err := io.ReadFull(client, buf); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/op")
	b.ReportMetric(float64(frames()-f0)/float64(b.N), "frames/op")
}
