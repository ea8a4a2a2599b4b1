package fabric

import (
	"fmt"
	"io"
	"testing"
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

// BenchmarkRoundTrip measures a 1-byte TCP ping-pong between two hosts.
func BenchmarkRoundTrip(b *testing.B) {
	f := newFabric(b, Config{})
	hs := hosts(b, f, 10, 11)
	server, client := tcpPair(b, hs[0], hs[1], false, 8000)
	defer client.Close()
	defer server.Close()
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
	buf := make([]byte, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := client.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(client, buf); err != nil {
			b.Fatal(err)
		}
	}
}
