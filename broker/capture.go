package broker

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swrap/swrap/fabric"
	"github.com/swrap/swrap/netem"
	"github.com/swrap/swrap/pcap"
	"github.com/swrap/swrap/wire"
)

// Captures beyond the classic file: pcapng files, per-host directories and
// live streams (CAPTURE). The formats and queues are package pcap's; this
// file only wires them to the fabric and the control connections.

// linkCaptureFrame is the fabric's LinkCapture: frames of links with
// conditions, with what the link did to them. Like captureFrame it only
// queues.
func (b *Broker) linkCaptureFrame(ts time.Time, parts [][]byte, n netem.Note) {
	ws := *b.captures.Load()
	if len(ws) == 0 {
		return
	}
	pn := pcap.Note{Delay: n.Delay, Dup: n.Dup, Reordered: n.Reordered, Drop: string(n.Drop)}
	if len(ws) > 1 {
		b.capOrder.Lock()
		defer b.capOrder.Unlock()
	}
	for _, w := range ws {
		w.FrameNote(ts, parts, pn)
	}
}

// namer names pcapng interfaces after the hosts of the address plan.
func (b *Broker) namer() pcap.Namer {
	plan := b.cfg.Plan
	return func(a netip.Addr) pcap.Iface {
		id, ok := plan.Host(a)
		if !ok {
			if a.Unmap() == plan.IPv4(fabric.RouterID) || a == plan.IPv6(fabric.RouterID) {
				return pcap.Iface{ID: fabric.RouterID, Name: "router",
					Description: fmt.Sprintf("the swrap fabric's ICMP errors: %s %s", plan.IPv4(fabric.RouterID), plan.IPv6(fabric.RouterID))}
			}
			return pcap.Iface{Name: "other", Description: "addresses of no swrap host"}
		}
		return pcap.Iface{ID: id, Name: "host" + strconv.Itoa(id), Host: true,
			Description: fmt.Sprintf("swrap host %d: %s %s", id, plan.IPv4(id), plan.IPv6(id))}
	}
}

// openCapture opens a capture file: pcapng if its name ends in .pcapng or
// Config.PcapFormat says so, classic pcap otherwise.
func (b *Broker) openCapture(path string) (*pcap.Writer, error) {
	if pcap.IsNG(path) || b.cfg.PcapFormat == "pcapng" {
		return pcap.OpenFile(path, pcap.Options{Snaplen: b.cfg.Snaplen, Namer: b.namer()})
	}
	return pcap.Open(path, b.cfg.Snaplen)
}

// addWriter makes w get every frame from now on.
func (b *Broker) addWriter(w *pcap.Writer) {
	b.capMu.Lock()
	defer b.capMu.Unlock()
	cur := *b.captures.Load()
	next := append(append([]*pcap.Writer{}, cur...), w)
	b.captures.Store(&next)
}

// removeWriter stops giving w frames; it does not close it.
func (b *Broker) removeWriter(w *pcap.Writer) bool {
	b.capMu.Lock()
	defer b.capMu.Unlock()
	cur := *b.captures.Load()
	i := slices.Index(cur, w)
	if i < 0 {
		return false
	}
	next := slices.Delete(slices.Clone(cur), i, i+1)
	b.captures.Store(&next)
	return true
}

// doCapture serves CAPTURE: a live pcapng stream on a new SOCK_STREAM
// socket whose other end is the reply's fd. The stream ends when the
// reader closes its end or shuts it down for writing (then the broker
// finishes the stream, so the reader gets whole blocks), or with the
// broker.
func (cc *ctlConn) doCapture(body []byte) reply {
	req, err := wire.ParseCapture(body)
	if err != nil {
		return errReply(syscall.EINVAL)
	}
	var hosts []int
	for _, h := range req.Hosts {
		hosts = append(hosts, int(h))
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return errReply(toErrno(err))
	}
	f := os.NewFile(uintptr(fds[0]), "capture")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		unix.Close(fds[1])
		return errReply(toErrno(err))
	}
	b := cc.b
	name := fmt.Sprintf("live:pid %d", cc.hello.PID)
	if len(hosts) > 0 {
		var s []string
		for _, h := range hosts {
			s = append(s, strconv.Itoa(h))
		}
		name += " hosts " + strings.Join(s, ",")
	}
	if len(req.Ports) > 0 {
		name += fmt.Sprintf(" ports %v", req.Ports)
	}
	w := pcap.NewStream(c, pcap.Options{Snaplen: int(req.Snaplen), QueueBytes: int(req.QueueKiB) << 10,
		Namer: b.namer(), Hosts: hosts, Ports: req.Ports, Name: name})
	b.mu.Lock()
	closing := b.closing
	b.mu.Unlock()
	if closing {
		w.Close()
		unix.Close(fds[1])
		return errReply(syscall.ENETDOWN)
	}
	b.addWriter(w)
	b.log.Info("live capture", "reader", name)
	go func() {
		// The reader sends nothing: a read returns when it closes or
		// shuts down its end.
		var buf [64]byte
		for {
			if _, err := c.Read(buf[:]); err != nil {
				break
			}
		}
		if b.removeWriter(w) {
			st := w.Stats()
			w.Close()
			b.log.Info("live capture ended", "reader", name, "frames", st.Frames, "dropped", st.Dropped)
		}
	}()
	return reply{fd: fds[1]}
}
