package tests

// Network conditions (issue 5, package netem): loss, delay, rate limits,
// partitions and seeds, applied by a real broker to real frames, driven
// through the Go client and the swrap command.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/swrap/swrap/broker"
	"github.com/swrap/swrap/netem"
	"github.com/swrap/swrap/pcap"
	"github.com/swrap/swrap/swrapnet"
)

// tcpSegment is one captured TCP segment with data.
type tcpSegment struct {
	src     string // ip:port
	seq     uint32
	payload int
}

// captureTCPData returns the TCP segments with data in a capture.
func captureTCPData(t *testing.T, path string) []tcpSegment {
	t.Helper()
	f, err := pcap.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []tcpSegment
	for _, r := range f.Records {
		p := gopacket.NewPacket(r.Data, layers.LayerTypeIPv4, gopacket.Default)
		ip, ok := p.NetworkLayer().(*layers.IPv4)
		tcp, ok2 := p.TransportLayer().(*layers.TCP)
		if !ok || !ok2 || len(tcp.Payload) == 0 {
			continue
		}
		out = append(out, tcpSegment{src: fmt.Sprintf("%s:%d", ip.SrcIP, tcp.SrcPort), seq: tcp.Seq, payload: len(tcp.Payload)})
	}
	return out
}

// retransmissions counts the data segments whose sequence number was
// already sent: what tshark calls tcp.analysis.retransmission, roughly.
func retransmissions(segs []tcpSegment) int {
	seen := map[tcpSegment]bool{}
	n := 0
	for _, s := range segs {
		k := tcpSegment{src: s.src, seq: s.seq}
		if seen[k] {
			n++
		}
		seen[k] = true
	}
	return n
}

// sendAndDigest sends n pseudo-random bytes from host c to a fresh
// listener on host s at addr and returns whether they arrived intact.
func sendAndDigest(t *testing.T, s, c *swrapnet.Host, addr string, n int64) {
	t.Helper()
	ln, err := s.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan [32]byte, 1)
	go func() {
		var sum [32]byte
		conn, err := ln.Accept()
		if err != nil {
			got <- sum
			return
		}
		defer conn.Close()
		h := sha256.New()
		if m, err := io.Copy(h, conn); err != nil || m != n {
			t.Errorf("received %d of %d bytes: %v", m, n, err)
		}
		copy(sum[:], h.Sum(nil))
		got <- sum
	}()
	conn, err := c.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	want := sha256.New()
	if _, err := io.Copy(io.MultiWriter(conn, want), newStream(5, n)); err != nil {
		t.Fatal(err)
	}
	conn.(*swrapnet.Conn).CloseWrite()
	select {
	case sum := <-got:
		if !bytes.Equal(sum[:], want.Sum(nil)) {
			t.Fatalf("the data arrived corrupted")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the transfer did not finish within 60 s")
	}
}

func linkStats(t *testing.T, h *swrapnet.Host, name string) netem.Stats {
	t.Helper()
	links, err := h.Links()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Link == name {
			return l.Stats
		}
	}
	t.Fatalf("no link %s in %+v", name, links)
	return netem.Stats{}
}

// TestNetemLoss: 5 % random loss both ways; a 20 MB transfer completes
// intact, the capture shows retransmissions, and the event log names the
// frames that were lost (which the capture does not hold).
func TestNetemLoss(t *testing.T) {
	capFile := filepath.Join(t.TempDir(), "loss.pcap")
	dir, hosts := brokerWithHosts(t, []string{"SOCKET_WRAPPER_PCAP_FILE=" + capFile,
		"SWRAP_NETEM=10-11 loss=5% seed=1"}, 10, 11)
	_ = dir
	sendAndDigest(t, hosts[10], hosts[11], "127.0.0.10:7000", 20<<20)
	st := linkStats(t, hosts[10], "11->10")
	if st.DropLoss == 0 || st.Frames < 100 {
		t.Errorf("11->10: %+v, want about 5%% lost", st)
	}
	if p := float64(st.DropLoss) / float64(st.Frames); p < 0.02 || p > 0.10 {
		t.Errorf("11->10 lost %d of %d frames (%.1f%%), want about 5%%", st.DropLoss, st.Frames, 100*p)
	}
	stopBroker(t, dir)

	segs := captureTCPData(t, capFile)
	if n := retransmissions(segs); n == 0 {
		t.Errorf("no retransmission among %d data segments in the capture", len(segs))
	}
	if tshark, err := findTool("tshark"); err == nil {
		frames := tsharkDecode(t, tshark, capFile, "tcp.analysis.retransmission")
		if len(frames) == 0 {
			t.Errorf("tshark finds no tcp.analysis.retransmission in %s", capFile)
		}
		t.Logf("tshark: %d retransmissions", len(frames))
	}
	// Every drop is in the event log, with the frame's TCP header.
	f, err := os.Open(capFile + ".events")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	drops := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e struct{ Link, Event, Cause, Proto string }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("event log line %q: %v", sc.Text(), err)
		}
		if e.Link == "11->10" && e.Event == "drop" && e.Cause == "loss" && e.Proto == "tcp" {
			drops++
		}
	}
	if uint64(drops) != st.DropLoss {
		t.Errorf("%d loss drops logged on 11->10, counters say %d", drops, st.DropLoss)
	}
}

// findTool is exec.LookPath without skipping: optional extra checks.
func findTool(name string) (string, error) {
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("not found")
}

// TestNetemDelay: 50 ms each way makes the TCP round trip 100 ms, the
// conditions change at run time, and the event log has every delayed frame
// with its delay.
func TestNetemDelay(t *testing.T) {
	capFile := filepath.Join(t.TempDir(), "delay.pcap")
	dir, hosts := brokerWithHosts(t, []string{"SOCKET_WRAPPER_PCAP_FILE=" + capFile,
		"SWRAP_NETEM=10-11 delay=50ms"}, 10, 11)
	ln, err := hosts[10].Listen("tcp", "127.0.0.10:7001")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := acceptOne(t, ln, func(c net.Conn) { io.Copy(c, c) })
	start := time.Now()
	c, err := hosts[11].Dial("tcp", "127.0.0.10:7001")
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("the handshake took %v over a 100 ms round trip", d)
	}
	rtts := pingPong(t, c, 7)
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	if rtts[0] < 100*time.Millisecond || rtts[len(rtts)/2] >= 150*time.Millisecond {
		t.Errorf("round trips %v, want ≥ 100 ms and < 150 ms", rtts)
	}

	// Faster at run time, from the Go client.
	if err := hosts[11].SetLinks("10-11 delay=10ms"); err != nil {
		t.Fatal(err)
	}
	rtts = pingPong(t, c, 5)
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	if rtts[0] < 20*time.Millisecond || rtts[len(rtts)/2] >= 70*time.Millisecond {
		t.Errorf("round trips %v after delay=10ms, want 20..70 ms", rtts)
	}
	if err := hosts[11].SetLinks("10-11 delay=10"); err == nil || !strings.Contains(err.Error(), "duration") {
		t.Errorf("a bad rule: %v", err)
	}
	c.Close()
	<-done
	stopBroker(t, dir)

	// Every frame was delayed, by 50 ms and then by 10 ms (no jitter: to
	// the microsecond).
	f, err := os.Open(capFile + ".events")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	delayed := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e struct {
			Link, Event, Proto string
			DelayUS            int64 `json:"delay_us"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("event log line %q: %v", sc.Text(), err)
		}
		if e.Event != "delayed" || e.Proto != "tcp" || e.DelayUS != 50000 && e.DelayUS != 10000 {
			t.Errorf("event %s, want delayed TCP frames by 50000 or 10000 µs", sc.Text())
			continue
		}
		delayed[fmt.Sprintf("%s %d", e.Link, e.DelayUS)]++
	}
	for _, k := range []string{"10->11 50000", "11->10 50000", "10->11 10000", "11->10 10000"} {
		if delayed[k] < 5 {
			t.Errorf("%d frames logged as delayed on %s µs, want at least 5 (%v)", delayed[k], k, delayed)
		}
	}
}

// pingPong measures n one-byte round trips on an echoing connection.
func pingPong(t *testing.T, c net.Conn, n int) []time.Duration {
	t.Helper()
	var out []time.Duration
	b := []byte{0}
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		out = append(out, time.Since(start))
	}
	return out
}

// TestNetemRate: a 10 Mbit/s link carries 10 Mbit/s, within 15 %.
func TestNetemRate(t *testing.T) {
	_, hosts := brokerWithHosts(t, []string{"SWRAP_NETEM=11->10 rate=10mbit"}, 10, 11)
	ln, err := hosts[10].Listen("tcp", "127.0.0.10:7002")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var received atomic.Int64
	done := acceptOne(t, ln, func(c net.Conn) {
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			received.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	c, err := hosts[11].Dial("tcp", "127.0.0.10:7002")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	go func() {
		buf := make([]byte, 64<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	// Past slow start, measure for 3 s.
	time.Sleep(500 * time.Millisecond)
	n0, t0 := received.Load(), time.Now()
	time.Sleep(3 * time.Second)
	n1, t1 := received.Load(), time.Now()
	close(stop)
	// Not waiting for the receiver: the link still holds seconds of data,
	// which the broker's shutdown discards.
	c.Close()
	_ = done
	mbit := float64(n1-n0) * 8 / t1.Sub(t0).Seconds() / 1e6
	t.Logf("%.2f Mbit/s", mbit)
	if mbit < 8.5 || mbit > 11.5 {
		t.Errorf("%.2f Mbit/s over a 10 Mbit/s link", mbit)
	}
}

// TestNetemPartition: a partition stalls a transfer, healing resumes it
// intact; a connect across a partition times out with ETIMEDOUT.
func TestNetemPartition(t *testing.T) {
	_, hosts := brokerWithHosts(t, nil, 10, 11)
	ln, err := hosts[10].Listen("tcp", "127.0.0.10:7003")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 16 << 20
	var received atomic.Int64
	got := make(chan []byte, 1)
	acceptOne(t, ln, func(c net.Conn) {
		h := sha256.New()
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			h.Write(buf[:n])
			received.Add(int64(n))
			if err != nil {
				break
			}
		}
		got <- h.Sum(nil)
	})
	c, err := hosts[11].Dial("tcp", "127.0.0.10:7003")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := sha256.New()
	sent := make(chan error, 1)
	go func() {
		// Slowly enough that the cut comes mid-transfer.
		src := newStream(9, size)
		buf := make([]byte, 256<<10)
		for {
			n, err := src.Read(buf)
			if err == io.EOF {
				sent <- c.(*swrapnet.Conn).CloseWrite()
				return
			}
			want.Write(buf[:n])
			if _, err := c.Write(buf[:n]); err != nil {
				sent <- err
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	for received.Load() < 1<<20 {
		time.Sleep(5 * time.Millisecond)
	}
	if err := hosts[11].SetLinks("10-11 partition"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // what was past the cut arrives
	stalled := received.Load()
	time.Sleep(time.Second)
	if now := received.Load(); now != stalled || now >= size {
		t.Fatalf("%d bytes arrived across the partition (%d before)", now-stalled, stalled)
	}
	if st := linkStats(t, hosts[11], "11->10"); st.DropPartition == 0 {
		t.Errorf("no frames dropped by the partition: %+v", st)
	}

	// A connect across the partition gives up when asked to.
	start := time.Now()
	_, err = hosts[11].DialTimeout("tcp", "127.0.0.10:7003", 500*time.Millisecond)
	if !errors.Is(err, syscall.ETIMEDOUT) {
		t.Errorf("dial across a partition: %v, want ETIMEDOUT", err)
	}
	if d := time.Since(start); d < 500*time.Millisecond || d > 5*time.Second {
		t.Errorf("the dial gave up after %v, asked 500ms", d)
	}

	// Heal: the transfer resumes and completes intact.
	if err := hosts[11].SetLinks("10-11"); err != nil {
		t.Fatal(err)
	}
	select {
	case sum := <-got:
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		if received.Load() != size || !bytes.Equal(sum, want.Sum(nil)) {
			t.Fatalf("received %d of %d bytes, digest match %v", received.Load(), size, bytes.Equal(sum, want.Sum(nil)))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the transfer did not resume after healing: %d of %d bytes", received.Load(), size)
	}
	if links, _ := hosts[11].Links(); len(links) != 0 {
		t.Errorf("links after healing: %+v", links)
	}
}

// TestNetemSeed: the same seed twice drops the same frames.
func TestNetemSeed(t *testing.T) {
	run := func() []int {
		capFile := filepath.Join(t.TempDir(), "seed.pcap")
		dir, hosts := brokerWithHosts(t, []string{"SOCKET_WRAPPER_PCAP_FILE=" + capFile,
			"SWRAP_NETEM=11->10 loss=20% dup=2% seed=42"}, 10, 11)
		pc, err := hosts[10].ListenPacket("udp", "127.0.0.10:5300")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		c, err := hosts[11].Dial("udp", "127.0.0.10:5300")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := 0; i < 300; i++ {
			if _, err := fmt.Fprintf(c, "%04d", i); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			st := linkStats(t, hosts[11], "11->10")
			if st.Frames == 300 && st.Queued == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		stopBroker(t, dir)
		f, err := pcap.ReadFile(capFile)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int
		for _, r := range f.Records {
			p := gopacket.NewPacket(r.Data, layers.LayerTypeIPv4, gopacket.Default)
			if udp, ok := p.TransportLayer().(*layers.UDP); ok && len(udp.Payload) == 4 {
				seqs = append(seqs, atoi(string(udp.Payload)))
			}
		}
		return seqs
	}
	a, b := run(), run()
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("the same seed crossed different frames:\n%v\n%v", a, b)
	}
	if len(a) < 200 || len(a) > 280 {
		t.Errorf("%d of 300 datagrams crossed with 20%% loss", len(a))
	}
}

// TestNetemCLI sets, shows and clears conditions with the swrap command.
func TestNetemCLI(t *testing.T) {
	dir, hosts := brokerWithHosts(t, nil, 10, 11)
	env := []string{"SOCKET_WRAPPER_DIR=" + dir}
	if _, stderr, code := cliRun(t, env, "link", "set", "10->11", "delay=5ms", "loss=1%;", "12", "rate=1mbit"); code != 0 {
		t.Fatalf("swrap link set: exit %d: %s", code, stderr)
	}
	stdout, stderr, code := cliRun(t, env, "link", "show", "--json")
	if code != 0 {
		t.Fatalf("swrap link show --json: exit %d: %s", code, stderr)
	}
	var links []netem.Status
	if err := json.Unmarshal([]byte(stdout), &links); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Link+" "+l.Spec)
	}
	want := "[*->12 rate=1mbit 10->11 delay=5ms loss=1% 12->* rate=1mbit]"
	if fmt.Sprint(names) != want {
		t.Errorf("links %v, want %s", names, want)
	}
	stdout, _, _ = cliRun(t, env, "link", "show")
	if !strings.Contains(stdout, "10->11") || !strings.Contains(stdout, "delay=5ms loss=1%") {
		t.Errorf("swrap link show:\n%s", stdout)
	}
	stdout, _, _ = cliRun(t, env, "status")
	if !strings.Contains(stdout, "Links with network conditions (3)") {
		t.Errorf("swrap status has no links:\n%s", stdout)
	}
	if _, stderr, code := cliRun(t, env, "link", "set", "10->11", "loss=5"); code == 0 || !strings.Contains(stderr, "out of range") {
		t.Errorf("a bad rule: exit %d, %s", code, stderr)
	}
	if _, stderr, code := cliRun(t, env, "link", "clear", "12"); code != 0 {
		t.Fatalf("swrap link clear 12: exit %d: %s", code, stderr)
	}
	if l, _ := hosts[10].Links(); len(l) != 1 {
		t.Errorf("after clearing 12: %+v", l)
	}
	cliRun(t, env, "link", "clear")
	if l, _ := hosts[10].Links(); len(l) != 0 {
		t.Errorf("after clear: %+v", l)
	}
	if st := status(t, hosts[10]); st.Links == nil {
		t.Errorf("STATUS has no links list")
	}
}

// TestNetemIperf3: iperf3 between wrapped programs over a 10 Mbit/s link
// reports 10 Mbit/s at the receiver, within 15 %.
func TestNetemIperf3(t *testing.T) {
	iperf := needTool(t, "iperf3")
	dir := swrapDir(t)
	startBroker(t, dir, "SWRAP_NETEM=11->10 rate=10mbit")
	ctx := testCtx(t, 30*time.Second)
	srv := newCmd(ctx, wrapEnv(t, dir, 10), iperf, "-s", "-B", "127.0.0.10", "-p", "5201", "-1")
	var srvOut bytes.Buffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Wait()
	waitSocket(t, dir, "iperf3 listening", func(s broker.SocketStatus) bool { return s.Local == "127.0.0.10:5201" && s.State == "listening" })
	out, stderr, err := runCmd(newCmd(ctx, wrapEnv(t, dir, 11), iperf, "-c", "127.0.0.10", "-p", "5201", "-t", "3", "-J"))
	if err != nil {
		t.Fatalf("iperf3 -c: %v\n%s\n%s\nserver:\n%s", err, stderr, out, srvOut.String())
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("iperf3 -J: %v\n%s", err, out)
	}
	mbit := res.End.SumReceived.BitsPerSecond / 1e6
	t.Logf("iperf3: %.2f Mbit/s received", mbit)
	if mbit < 8.5 || mbit > 11.5 {
		t.Errorf("iperf3 received %.2f Mbit/s over a 10 Mbit/s link", mbit)
	}
}
