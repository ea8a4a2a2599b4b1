package broker

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/swrap/swrap/netem"
)

// Network conditions (package netem): the SETLINK and GETLINKS operations,
// and the event log of what the links did to frames.

// doSetLink applies the conditions in body (netem.Parse's grammar). A text
// that does not parse changes nothing and gets EINVAL, with the parser's
// message as the reply body.
func (cc *ctlConn) doSetLink(body []byte) reply {
	r, err := netem.Parse(string(body))
	if err != nil {
		return reply{err: syscall.EINVAL, body: []byte(err.Error()), fd: -1}
	}
	cc.b.fab.SetLinks(r)
	cc.b.log.Info("network conditions", "set", string(body))
	return okReply(nil)
}

// getLinks is the GETLINKS reply: every link with conditions, as JSON.
func (b *Broker) getLinks() []byte {
	out, _ := json.Marshal(b.linkStatus())
	return out
}

// linkStatus lists the links with conditions; never nil, so that JSON shows
// an empty list rather than null.
func (b *Broker) linkStatus() []netem.Status {
	if l := b.fab.Links(); l != nil {
		return l
	}
	return []netem.Status{}
}

// eventRecord is one line of the event log.
type eventRecord struct {
	Time    string `json:"time"`
	Link    string `json:"link"`
	Event   string `json:"event"`
	Cause   string `json:"cause,omitempty"`
	DelayUS int64  `json:"delay_us,omitempty"` // "delayed": µs, rounded up
	Len     int    `json:"len"`
	Src     string `json:"src,omitempty"`
	Dst     string `json:"dst,omitempty"`
	Proto   string `json:"proto,omitempty"`
	SrcPort uint16 `json:"sport,omitempty"`
	DstPort uint16 `json:"dport,omitempty"`
	TCPSeq  uint32 `json:"tcp_seq,omitempty"`
	TCPLen  int    `json:"tcp_len,omitempty"`
}

// eventLog writes the links' events as JSON lines to a file next to the
// capture (CAPTURE.events): the frames a link drops are not in the
// capture, so this is where they are seen, with the frames it duplicates,
// reorders and delays. Events are queued on the packet path and written by
// a goroutine; when the queue is full they are counted as lost rather than
// stalling the link.
type eventLog struct {
	ch   chan eventRecord
	lost atomic.Uint64
	wg   sync.WaitGroup
}

// openEventLog starts the writer of path. The file is created with the
// first event, so that a run without conditions leaves no empty log.
func openEventLog(path string) (*eventLog, error) {
	l := &eventLog{ch: make(chan eventRecord, 4096)}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		var f *os.File
		var w *bufio.Writer
		var enc *json.Encoder
		for r := range l.ch {
			if f == nil {
				var err error
				if f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
					l.lost.Add(1)
					for range l.ch {
						l.lost.Add(1)
					}
					return
				}
				w = bufio.NewWriter(f)
				enc = json.NewEncoder(w)
				enc.SetEscapeHTML(false) // links read "10->11", greppable
			}
			enc.Encode(r)
			if len(l.ch) == 0 {
				w.Flush()
			}
		}
		if f != nil {
			w.Flush()
			f.Close()
		}
	}()
	return l, nil
}

// event is the fabric's netem.Config.Events hook: it decodes the frame's
// headers now (the frame is only valid during the call) and queues the
// record.
func (l *eventLog) event(e netem.Event) {
	r := eventRecord{Time: e.Time.UTC().Format(time.RFC3339Nano), Link: e.Link.String(),
		Event: e.Kind, Cause: string(e.Cause), DelayUS: delayMicros(e.Delay), Len: e.Len}
	describeFrame(&r, e.Frame)
	select {
	case l.ch <- r:
	default:
		l.lost.Add(1)
	}
}

// delayMicros is d in whole microseconds, rounded up so that a delayed
// frame never shows a delay of 0 (a small frame on a fast rate-limited link
// waits for less than a microsecond).
func delayMicros(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Microsecond - 1) / time.Microsecond)
}

// close flushes the log; no event may come after it.
func (l *eventLog) close() {
	close(l.ch)
	l.wg.Wait()
}

// describeFrame fills in addresses, protocol, ports and the TCP sequence
// number from an IP packet's headers, as far as b holds them.
func describeFrame(r *eventRecord, b []byte) {
	var proto byte
	var l4 []byte
	switch {
	case len(b) >= 20 && b[0]>>4 == 4:
		r.Src = netip.AddrFrom4([4]byte(b[12:16])).String()
		r.Dst = netip.AddrFrom4([4]byte(b[16:20])).String()
		proto = b[9]
		if ihl := int(b[0]&15) * 4; ihl >= 20 && len(b) >= ihl {
			l4 = b[ihl:]
			if tot := int(binary.BigEndian.Uint16(b[2:])); tot >= ihl {
				r.TCPLen = tot - ihl // the L4 length; trimmed to the payload below
			}
		}
	case len(b) >= 40 && b[0]>>4 == 6:
		r.Src = netip.AddrFrom16([16]byte(b[8:24])).String()
		r.Dst = netip.AddrFrom16([16]byte(b[24:40])).String()
		proto = b[6] // extension headers are not followed: swrap sends none
		l4 = b[40:]
		r.TCPLen = int(binary.BigEndian.Uint16(b[4:]))
	default:
		return
	}
	switch proto {
	case 6:
		r.Proto = "tcp"
		if len(l4) >= 20 {
			r.SrcPort, r.DstPort = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
			r.TCPSeq = binary.BigEndian.Uint32(l4[4:])
			r.TCPLen = max(r.TCPLen-int(l4[12]>>4)*4, 0)
			return
		}
	case 17:
		r.Proto = "udp"
		if len(l4) >= 4 {
			r.SrcPort, r.DstPort = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
		}
	case 1, 58:
		r.Proto = "icmp"
	}
	r.TCPLen = 0
}
