package swrapnet

import (
	"fmt"
	"net"
	"os"
	"time"

	"github.com/swrap/swrap/addrplan"
	"github.com/swrap/swrap/wire"
)

// CaptureOptions configure a live capture.
type CaptureOptions struct {
	// Hosts, if not empty, keeps only the frames these hosts send or
	// receive.
	Hosts []int
	// Ports, if not empty, keeps only the TCP and UDP frames from or to
	// these ports (with Hosts: the frames that pass both).
	Ports []uint16
	// Snaplen bounds the bytes kept per frame; 0 keeps all.
	Snaplen int
	// QueueBytes bounds the frames the broker holds for this reader; 0
	// means the broker's default (4 MiB). A reader that falls further
	// behind loses frames: the stream says how many.
	QueueBytes int
}

// Capture is a live capture: a pcapng stream of the network's frames from
// the moment it started (docs/protocol.md, CAPTURE). Read it like a file;
// Stop ends it cleanly.
type Capture struct {
	c *net.UnixConn
}

// Capture starts a live capture of the broker's whole network (or of
// o.Hosts). The broker never waits for the reader: a reader slower than
// the network loses frames, counted in the stream (a packet comment and
// epb_dropcount) and in STATUS.
func (h *Host) Capture(o CaptureOptions) (*Capture, error) {
	req := wire.Capture{Snaplen: uint32(max(o.Snaplen, 0)), QueueKiB: uint32(max(o.QueueBytes, 0) >> 10), Ports: o.Ports}
	for _, id := range o.Hosts {
		if !addrplan.ValidHost(id) {
			return nil, fmt.Errorf("swrapnet: capture: host id %d out of range 1..%d", id, addrplan.MaxHost)
		}
		req.Hosts = append(req.Hosts, uint8(id))
	}
	_, fd, err := h.call(wire.OpCapture, 0, req.Encode())
	if err != nil {
		return nil, fmt.Errorf("swrapnet: CAPTURE: %w", err)
	}
	if fd < 0 {
		return nil, fmt.Errorf("swrapnet: CAPTURE reply without a stream")
	}
	f := os.NewFile(uintptr(fd), "capture")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("swrapnet: CAPTURE: not a unix socket")
	}
	return &Capture{c: uc}, nil
}

// Read reads the pcapng stream.
func (c *Capture) Read(p []byte) (int, error) { return c.c.Read(p) }

// Stop asks the broker to end the stream: it writes what it has queued
// and closes, so that reading on until io.EOF gives whole pcapng blocks.
func (c *Capture) Stop() error { return c.c.CloseWrite() }

// SetReadDeadline sets a deadline for Read.
func (c *Capture) SetReadDeadline(t time.Time) error { return c.c.SetReadDeadline(t) }

// Close ends the capture at once; the broker stops when it notices.
func (c *Capture) Close() error { return c.c.Close() }
