package tests

// Captures people look at (issue 13): pcapng with an interface per host,
// netem's events inside the capture, per-host files, live streams through
// `swrap capture` and the Go client, and Wireshark's extcap entry point.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/swrap/swrap/pcap"
	"github.com/swrap/swrap/swrapnet"
)

// tsharkFields runs tshark on file (a pcapng may have comments) and
// returns the fields of the frames that match filter, one slice a frame.
func tsharkFields(t *testing.T, tshark, file, filter string, fields ...string) [][]string {
	t.Helper()
	args := []string{"-n", "-r", file, "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
		"-o", "udp.check_checksum:TRUE", "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=|"}
	if filter != "" {
		args = append(args, "-Y", filter)
	}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(tshark, args...)
	cmd.Env = cleanEnv()
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %v: %v\n%s", args, err, stderr.Bytes())
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows
}

// ngFrame is one frame of a pcapng capture read with pcapgo.
type ngFrame struct {
	iface    string
	data     string // the bytes, as a map key
	comments []string
	drops    uint64
}

// readNgCapture reads a pcapng stream or file with gopacket's NgReader and
// returns its frames and interface names (in IDB order).
func readNgCapture(t *testing.T, r io.Reader) ([]ngFrame, []string) {
	t.Helper()
	nr, err := pcapgo.NewNgReader(r, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatalf("not a pcapng stream: %v", err)
	}
	var out []ngFrame
	for {
		data, ci, opts, err := nr.ReadPacketDataWithOptions()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			t.Fatalf("pcapng record %d: %v", len(out), err)
		}
		intf, _ := nr.Interface(ci.InterfaceIndex)
		f := ngFrame{iface: intf.Name, data: string(data), comments: opts.Comments}
		if opts.DropCount != nil {
			f.drops = *opts.DropCount
		}
		out = append(out, f)
	}
	var names []string
	for i := 0; i < nr.NInterfaces(); i++ {
		intf, _ := nr.Interface(i)
		names = append(names, intf.Name)
	}
	return out, names
}

// exchange sends n bytes from host c to a listener of host s on port and
// checks that they arrive intact.
func exchange(t *testing.T, hosts map[int]*swrapnet.Host, c, s, port int, n int64) {
	t.Helper()
	sendAndDigest(t, hosts[s], hosts[c], fmt.Sprintf("127.0.0.%d:%d", s, port), n)
}

// quietTxFrames waits until the network is quiet and returns the frames
// its hosts sent, by the fabric's counters.
func quietTxFrames(t *testing.T, h *swrapnet.Host) uint64 {
	t.Helper()
	var last uint64
	for i := 0; i < 100; i++ {
		var n uint64
		for _, hs := range status(t, h).Hosts {
			n += hs.Link.TxFrames
		}
		if i > 0 && n == last {
			return n
		}
		last = n
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatal("the network never became quiet")
	return 0
}

// TestPcapngThreeHosts: a pcapng capture of a three-host exchange, read by
// tshark, has one interface per host named for it, every frame on its
// sender's interface, no bad checksum, and each frame once (as many frames
// as the hosts sent).
func TestPcapngThreeHosts(t *testing.T) {
	tshark := needTool(t, "tshark")
	capFile := filepath.Join(t.TempDir(), "three.pcapng")
	dir, hosts := brokerWithHosts(t, []string{"SOCKET_WRAPPER_PCAP_FILE=" + capFile}, 10, 11, 12)
	exchange(t, hosts, 11, 10, 7000, 256<<10)
	exchange(t, hosts, 12, 10, 7001, 256<<10)
	exchange(t, hosts, 12, 11, 7002, 64<<10)
	sent := quietTxFrames(t, hosts[10])
	stopBroker(t, dir)

	rows := tsharkFields(t, tshark, capFile, "", "frame.interface_name", "frame.interface_description",
		"ip.src", "ip.checksum.status", "tcp.checksum.status")
	if uint64(len(rows)) != sent {
		t.Errorf("%d frames in the capture, the hosts sent %d: each frame must be there once", len(rows), sent)
	}
	ifaces := map[string]int{}
	bad := 0
	for _, r := range rows {
		name, desc, src := r[0], r[1], r[2]
		ifaces[name]++
		if want := "host" + strings.TrimPrefix(src, "127.0.0."); name != want {
			t.Errorf("frame from %s on interface %q, want %q", src, name, want)
		}
		if !strings.Contains(desc, src) {
			t.Errorf("interface %q's description %q lacks its address %s", name, desc, src)
		}
		if r[3] == "0" || r[4] == "0" {
			bad++
		}
	}
	if bad != 0 {
		t.Errorf("%d frames with a bad checksum", bad)
	}
	if len(ifaces) != 3 || ifaces["host10"] == 0 || ifaces["host11"] == 0 || ifaces["host12"] == 0 {
		t.Errorf("frames per interface %v, want host10, host11 and host12", ifaces)
	}
	f, err := os.Open(capFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, names := readNgCapture(t, f); len(names) != 3 {
		t.Errorf("interfaces %q, want exactly three", names)
	}
}

// TestPcapngNetem: with 10->11 delay=20ms loss=10% seed=1, the delayed
// frames carry a comment with the delay, the dropped frames are only on
// the drop interface with their cause, and the counts match the link's
// counters.
func TestPcapngNetem(t *testing.T) {
	tshark := needTool(t, "tshark")
	capFile := filepath.Join(t.TempDir(), "netem.pcapng")
	dir, hosts := brokerWithHosts(t, []string{"SOCKET_WRAPPER_PCAP_FILE=" + capFile,
		"SWRAP_NETEM=10->11 delay=20ms loss=10% seed=1"}, 10, 11)
	exchange(t, hosts, 10, 11, 7000, 1<<20)
	quietTxFrames(t, hosts[10])
	st := linkStats(t, hosts[10], "10->11")
	stopBroker(t, dir)
	if st.DropLoss == 0 || st.Delayed == 0 {
		t.Fatalf("10->11: %+v: want drops and delays", st)
	}

	delayed := tsharkFields(t, tshark, capFile, `frame.comment contains "delayed by"`, "frame.interface_name", "frame.comment")
	if uint64(len(delayed)) != st.Delayed {
		t.Errorf("%d frames with a delay comment, the link delayed %d", len(delayed), st.Delayed)
	}
	re := regexp.MustCompile(`netem host10->host11: delayed by (2\d|19)\.?\d*ms`)
	for _, r := range delayed {
		if r[0] != "host10" || !re.MatchString(r[1]) {
			t.Errorf("delayed frame on %q with comment %q", r[0], r[1])
			break
		}
	}
	dropped := tsharkFields(t, tshark, capFile, `frame.interface_name == "host10->host11 dropped"`, "frame.comment")
	if uint64(len(dropped)) != st.DropLoss {
		t.Errorf("%d frames on the drop interface, the link dropped %d", len(dropped), st.DropLoss)
	}
	for _, r := range dropped {
		if !strings.Contains(r[0], "dropped (loss)") {
			t.Errorf("dropped frame's comment %q names no cause", r[0])
			break
		}
	}
	if n := len(tsharkFields(t, tshark, capFile, `frame.comment contains "dropped" && !(frame.interface_name contains "dropped")`, "frame.number")); n != 0 {
		t.Errorf("%d frames with a drop comment on a delivered interface", n)
	}
	// A dropped frame's bytes are on no delivered interface.
	f, err := os.Open(capFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	frames, _ := readNgCapture(t, f)
	delivered := map[string]bool{}
	for _, fr := range frames {
		if !strings.HasSuffix(fr.iface, " dropped") {
			delivered[fr.data] = true
		}
	}
	for _, fr := range frames {
		if strings.HasSuffix(fr.iface, " dropped") && delivered[fr.data] {
			t.Errorf("a dropped frame is also on a delivered interface")
			break
		}
	}
	// swrap pcap summary does not count them as traffic, and says so.
	sum := exec.Command(binPath(t, "swrap"), "pcap", "summary", capFile)
	sum.Env = cleanEnv()
	sout, err := sum.CombinedOutput()
	if want := fmt.Sprintf("%d frames that netem dropped", st.DropLoss); err != nil || !strings.Contains(string(sout), want) {
		t.Errorf("swrap pcap summary (%v) lacks %q:\n%s", err, want, sout)
	}
	// pcap.ReadFile reads pcapng with interfaces and comments.
	pf, err := pcap.ReadFile(capFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(pf.Records) != len(frames) || pf.Records[0].Iface == "" {
		t.Errorf("pcap.ReadFile: %d records (first on %q), tshark/pcapgo %d", len(pf.Records), pf.Records[0].Iface, len(frames))
	}
	// The JSON events file stays.
	if _, err := os.Stat(capFile + ".events"); err != nil {
		t.Errorf("no events file: %v", err)
	}
}

// TestPcapDir: SWRAP_PCAP_DIR gets one file per host, each with the frames
// the host sent or received and no other.
func TestPcapDir(t *testing.T) {
	tshark := needTool(t, "tshark")
	pdir := filepath.Join(t.TempDir(), "caps")
	dir, hosts := brokerWithHosts(t, []string{"SWRAP_PCAP_DIR=" + pdir}, 10, 11, 12)
	exchange(t, hosts, 11, 10, 7000, 64<<10)
	exchange(t, hosts, 12, 10, 7001, 64<<10)
	quietTxFrames(t, hosts[10])
	var tx = map[string]uint64{}
	var rx = map[string]uint64{}
	for _, h := range status(t, hosts[10]).Hosts {
		tx[fmt.Sprint(h.ID)], rx[fmt.Sprint(h.ID)] = h.Link.TxFrames, h.Link.RxFrames
	}
	stopBroker(t, dir)
	ents, err := os.ReadDir(pdir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if strings.Join(names, " ") != "host10.pcapng host11.pcapng host12.pcapng" {
		t.Fatalf("files %q, want one per host", names)
	}
	for _, id := range []string{"10", "11", "12"} {
		addr := "127.0.0." + id
		rows := tsharkFields(t, tshark, filepath.Join(pdir, "host"+id+".pcapng"), "", "ip.src", "ip.dst")
		var sent, recv uint64
		for _, r := range rows {
			switch addr {
			case r[0]:
				sent++
			case r[1]:
				recv++
			default:
				t.Errorf("host%s.pcapng holds a frame %s -> %s", id, r[0], r[1])
			}
		}
		if sent != tx[id] || recv != rx[id] {
			t.Errorf("host%s.pcapng: %d sent, %d received; the host sent %d, received %d", id, sent, recv, tx[id], rx[id])
		}
	}
	// Host 11 never talked to host 12.
	if n := len(tsharkFields(t, tshark, filepath.Join(pdir, "host11.pcapng"), "ip.addr == 127.0.0.12", "frame.number")); n != 0 {
		t.Errorf("host11.pcapng holds %d frames of host 12", n)
	}
}

// pacedTransfer sends chunks of 1 KiB from host c to host s every 20 ms
// for d, and returns when done.
func pacedTransfer(t *testing.T, hosts map[int]*swrapnet.Host, c, s, port int, d time.Duration) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.%d:%d", s, port)
	ln, err := hosts[s].Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			io.Copy(io.Discard, conn)
			conn.Close()
		}
	}()
	conn, err := hosts[c].Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 1024)
	for end := time.Now().Add(d); time.Now().Before(end); {
		if _, err := conn.Write(buf); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLiveCaptureTshark: `swrap capture -w -` piped into `tshark -i -`
// shows the frames of a transfer while it runs.
func TestLiveCaptureTshark(t *testing.T) {
	tshark := needTool(t, "tshark")
	dir, hosts := brokerWithHosts(t, nil, 10, 11)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	capCmd := exec.CommandContext(ctx, binPath(t, "swrap"), "capture", "--dir", dir, "-w", "-")
	capCmd.Env = cleanEnv()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	capCmd.Stdout = pw
	var capErr bytes.Buffer
	capCmd.Stderr = &capErr
	ts := exec.CommandContext(ctx, tshark, "-n", "-l", "-i", "-", "-T", "fields", "-e", "frame.interface_name", "-e", "ip.src", "-e", "tcp.dstport")
	ts.Env = cleanEnv()
	ts.Stdin = pr
	tsOut, err := ts.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := capCmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := ts.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	pr.Close()
	// Lines seen, with when.
	type line struct {
		at   time.Time
		text string
	}
	lines := make(chan line, 1000)
	go func() {
		sc := bufio.NewScanner(tsOut)
		for sc.Scan() {
			lines <- line{time.Now(), sc.Text()}
		}
		close(lines)
	}()
	// tshark takes seconds to start under load: send a few frames until
	// it shows one, so that what follows measures the stream, not that.
	for ready := false; !ready; {
		exchange(t, hosts, 11, 10, 7299, 1)
		select {
		case _, ok := <-lines:
			if !ok {
				t.Fatalf("tshark ended early:\n%s", capErr.Bytes())
			}
			ready = true
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("tshark never showed a frame")
		}
	}
	pacedTransfer(t, hosts, 11, 10, 7300, 2*time.Second)
	ended := time.Now()
	capCmd.Process.Signal(syscall.SIGINT)
	if err := capCmd.Wait(); err != nil {
		t.Errorf("swrap capture after SIGINT: %v\n%s", err, capErr.Bytes())
	}
	ts.Wait()
	var before, all int
	for l := range lines {
		all++
		if l.at.Before(ended) && strings.HasPrefix(l.text, "host11\t127.0.0.11\t7300") {
			before++
		}
	}
	if before < 10 {
		t.Errorf("tshark showed %d frames of host 11 to port 7300 before the transfer ended (%d lines in all), want them live", before, all)
	}
	t.Logf("tshark: %d frames before the transfer ended, %d in all", before, all)
}

// collect reads a live capture until it ends.
func collect(c *swrapnet.Capture) <-chan []byte {
	ch := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(c)
		ch <- b
	}()
	return ch
}

// TestLiveCaptureTwo: two live captures at once (Go client) get the same
// frames, the frames of the transfer.
func TestLiveCaptureTwo(t *testing.T) {
	_, hosts := brokerWithHosts(t, nil, 10, 11)
	var caps []*swrapnet.Capture
	var outs []<-chan []byte
	for i := 0; i < 2; i++ {
		c, err := hosts[10].Capture(swrapnet.CaptureOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		caps = append(caps, c)
		outs = append(outs, collect(c))
	}
	if st := status(t, hosts[10]); len(st.Captures) != 2 || st.Captures[0].Kind != "live" {
		t.Errorf("status captures %+v, want two live ones", st.Captures)
	}
	exchange(t, hosts, 11, 10, 7000, 1<<20)
	quietTxFrames(t, hosts[10])
	var got [][]ngFrame
	for i, c := range caps {
		c.Stop()
		select {
		case b := <-outs[i]:
			frames, _ := readNgCapture(t, bytes.NewReader(b))
			got = append(got, frames)
		case <-time.After(20 * time.Second):
			t.Fatal("a stopped capture did not end")
		}
	}
	if len(got[0]) < 20 {
		t.Fatalf("%d frames captured", len(got[0]))
	}
	if len(got[0]) != len(got[1]) {
		t.Fatalf("the captures got %d and %d frames", len(got[0]), len(got[1]))
	}
	for i := range got[0] {
		if got[0][i].data != got[1][i].data || got[0][i].iface != got[1][i].iface {
			t.Fatalf("frame %d differs between the captures", i)
		}
	}
}

// timedTransfer is exchange's duration.
func timedTransfer(t *testing.T, hosts map[int]*swrapnet.Host, port int, n int64) time.Duration {
	start := time.Now()
	exchange(t, hosts, 11, 10, port, n)
	return time.Since(start)
}

// TestLiveCaptureSlowReader: a reader that stops reading loses frames,
// counted in STATUS and in the stream, while the transfer runs as fast as
// without the capture.
func TestLiveCaptureSlowReader(t *testing.T) {
	dir, hosts := brokerWithHosts(t, nil, 10, 11)
	const n = 64 << 20
	timedTransfer(t, hosts, 6999, 4<<20) // warm up
	base := timedTransfer(t, hosts, 7000, n)
	c, err := hosts[10].Capture(swrapnet.CaptureOptions{QueueBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	with := timedTransfer(t, hosts, 7001, n)
	t.Logf("64 MiB: %v without a capture, %v with a reader that does not read", base, with)
	if with > 3*base+time.Second {
		t.Errorf("the transfer took %v with a stalled live capture, %v without", with, base)
	}
	var dropped uint64
	for _, cs := range status(t, hosts[10]).Captures {
		if cs.Kind == "live" {
			dropped = cs.Dropped
		}
	}
	if dropped == 0 {
		t.Fatalf("STATUS shows no dropped frames for the stalled capture")
	}
	// swrap status says so too.
	stCmd := exec.Command(binPath(t, "swrap"), "status", "--dir", dir)
	stCmd.Env = cleanEnv()
	stOut, err := stCmd.CombinedOutput()
	if m := regexp.MustCompile(`live capture \(pid \d+\): \d+ frames, \d+ bytes, ([1-9]\d*) dropped`).FindSubmatch(stOut); err != nil || m == nil {
		t.Errorf("swrap status shows no drops of the live capture (%v):\n%s", err, stOut)
	}
	// Now read: the stream says it lost frames.
	out := collect(c)
	exchange(t, hosts, 11, 10, 7002, 64<<10) // frames after the loss
	c.Stop()
	var b []byte
	select {
	case b = <-out:
	case <-time.After(20 * time.Second):
		t.Fatal("the capture did not end")
	}
	frames, _ := readNgCapture(t, bytes.NewReader(b))
	var reported uint64
	comment := false
	for _, f := range frames {
		reported += f.drops
		for _, cm := range f.comments {
			if strings.Contains(cm, "frames lost") {
				comment = true
			}
		}
	}
	if !comment || reported < dropped {
		t.Errorf("the stream reports %d lost frames (comment %v); STATUS had already counted %d", reported, comment, dropped)
	}
}

// extcapRun runs `swrap extcap ARGS` and returns its output lines.
func extcapRun(t *testing.T, dir string, args ...string) []string {
	t.Helper()
	cmd := exec.Command(binPath(t, "swrap"), append([]string{"extcap"}, args...)...)
	cmd.Env = append(cleanEnv(), "SOCKET_WRAPPER_DIR="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("swrap extcap %v: %v\n%s", args, err, stderr.Bytes())
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// extcapSentence parses an extcap line: "kind {k=v}{k=v}...".
func extcapSentence(t *testing.T, line string) (string, map[string]string) {
	t.Helper()
	m := regexp.MustCompile(`^(\w+) ((?:\{[a-z]+=[^{}]*\})+)$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("not an extcap sentence: %q", line)
	}
	kv := map[string]string{}
	for _, f := range regexp.MustCompile(`\{([a-z]+)=([^{}]*)\}`).FindAllStringSubmatch(m[2], -1) {
		kv[f[1]] = f[2]
	}
	return m[1], kv
}

// TestExtcap: `swrap extcap` answers Wireshark's queries, and a --capture
// --fifo run writes a pcapng that tshark reads.
func TestExtcap(t *testing.T) {
	tshark := needTool(t, "tshark")
	dir, hosts := brokerWithHosts(t, nil, 10, 11)
	var iface string
	lines := extcapRun(t, dir, "--extcap-interfaces", "--extcap-version=4.2")
	if kind, kv := extcapSentence(t, lines[0]); kind != "extcap" || kv["version"] == "" {
		t.Errorf("first line %q, want extcap {version=...}", lines[0])
	}
	for _, l := range lines[1:] {
		kind, kv := extcapSentence(t, l)
		if kind == "interface" && strings.HasSuffix(kv["display"], dir) {
			iface = kv["value"]
		}
	}
	if iface == "" || strings.ContainsAny(iface, "/ ") {
		t.Fatalf("no interface for %s (or a bad name %q) in %q", dir, iface, lines)
	}
	dlts := extcapRun(t, dir, "--extcap-interface", iface, "--extcap-dlts")
	if kind, kv := extcapSentence(t, dlts[0]); kind != "dlt" || kv["number"] != "101" || kv["name"] == "" {
		t.Errorf("dlts %q", dlts)
	}
	config := extcapRun(t, dir, "--extcap-interface", iface, "--extcap-config")
	calls := map[string]bool{}
	for _, l := range config {
		kind, kv := extcapSentence(t, l)
		if kind != "arg" || kv["number"] == "" || kv["type"] == "" || kv["display"] == "" {
			t.Errorf("config line %q", l)
		}
		calls[kv["call"]] = true
	}
	if !calls["--host"] || !calls["--snaplen"] {
		t.Errorf("config offers %v", calls)
	}

	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "extcap.pcapng")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r, err := os.Open(fifo) // as Wireshark does, before the capture
		if err != nil {
			t.Error(err)
			return
		}
		defer r.Close()
		f, err := os.Create(out)
		if err != nil {
			t.Error(err)
			return
		}
		io.Copy(f, r)
		f.Close()
	}()
	cmd := exec.Command(binPath(t, "swrap"), "extcap", "--capture", "--extcap-interface", iface, "--fifo", fifo, "--host", "11",
		"--extcap-capture-filter", "port 7000")
	cmd.Env = append(cleanEnv(), "SOCKET_WRAPPER_DIR="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	exchange(t, hosts, 11, 10, 7000, 256<<10)
	exchange(t, hosts, 11, 10, 7001, 16<<10) // not port 7000
	quietTxFrames(t, hosts[10])
	cmd.Process.Signal(syscall.SIGTERM) // how Wireshark stops an extcap
	if err := cmd.Wait(); err != nil {
		t.Errorf("swrap extcap --capture: %v\n%s", err, stderr.Bytes())
	}
	wg.Wait()
	rows := tsharkFields(t, tshark, out, "", "frame.interface_name", "ip.src", "ip.dst", "tcp.port")
	if len(rows) < 10 {
		t.Fatalf("tshark reads %d frames from the extcap's fifo", len(rows))
	}
	for _, r := range rows {
		if r[1] != "127.0.0.11" && r[2] != "127.0.0.11" || !strings.Contains("|"+r[3]+"|", "|7000|") {
			t.Errorf("frame %v passed --host 11 and the filter \"port 7000\"", r)
			break
		}
	}
}

// TestLiveCaptureSIGPIPE: `swrap capture -w - | head -c N` ends cleanly
// (status 0) when head has what it wanted, and the broker drops the
// capture.
func TestLiveCaptureSIGPIPE(t *testing.T) {
	dir, hosts := brokerWithHosts(t, nil, 10, 11)
	cmd := exec.Command("bash", "-c", `"$0" capture --dir "$1" -w - | head -c 2000 >/dev/null; echo "${PIPESTATUS[0]}"`, binPath(t, "swrap"), dir)
	cmd.Env = cleanEnv()
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for i := 0; ; i++ {
		exchange(t, hosts, 11, 10, 7000+i, 64<<10)
		select {
		case err := <-done:
			if err != nil || strings.TrimSpace(out.String()) != "0" {
				t.Fatalf("swrap capture | head: %v, exit status %q", err, out.String())
			}
			for i := 0; i < 50 && len(status(t, hosts[10]).Captures) > 0; i++ {
				time.Sleep(100 * time.Millisecond)
			}
			if c := status(t, hosts[10]).Captures; len(c) != 0 {
				t.Errorf("the broker still has the capture: %+v", c)
			}
			return
		case <-time.After(200 * time.Millisecond):
		}
		if i > 50 {
			t.Fatal("swrap capture did not end when its reader went away")
		}
	}
}

// TestPcapFormatVariable: SWRAP_PCAP_FORMAT=pcapng makes a .pcap name
// pcapng; without it the file stays classic pcap.
func TestPcapFormatVariable(t *testing.T) {
	for _, tc := range []struct {
		env   []string
		magic uint32
	}{{nil, 0xa1b23c4d}, {[]string{"SWRAP_PCAP_FORMAT=pcapng"}, 0x0a0d0d0a}} {
		capFile := filepath.Join(t.TempDir(), "c.pcap")
		dir, hosts := brokerWithHosts(t, append(tc.env, "SOCKET_WRAPPER_PCAP_FILE="+capFile), 10, 11)
		exchange(t, hosts, 11, 10, 7000, 1<<10)
		stopBroker(t, dir)
		b, err := os.ReadFile(capFile)
		if err != nil || len(b) < 4 {
			t.Fatalf("%v: %v", tc.env, err)
		}
		if m := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24; m != tc.magic {
			t.Errorf("%v: magic %#x, want %#x", tc.env, m, tc.magic)
		}
	}
}

// TestLiveCaptureBrokerStops: a broker with live captures whose readers
// do not read still stops promptly on SIGTERM, and the reader then
// sees the stream end.
func TestLiveCaptureBrokerStops(t *testing.T) {
	dir, hosts := brokerWithHosts(t, nil, 10, 11)
	var caps []*swrapnet.Capture
	for i := 0; i < 5; i++ {
		c, err := hosts[10].Capture(swrapnet.CaptureOptions{QueueBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		caps = append(caps, c)
	}
	exchange(t, hosts, 11, 10, 7000, 16<<20)
	start := time.Now()
	stopBroker(t, dir)
	// Each stalled stream gets a second to take what is queued: all at
	// once, not one after the other.
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the broker took %v to stop with five stalled live captures", d)
	}
	out := collect(caps[0])
	select {
	case <-out:
	case <-time.After(10 * time.Second):
		t.Error("the stream did not end with the broker")
	}
}
