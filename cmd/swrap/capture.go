package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/swrap/swrap/swrapnet"
)

// captureUsage is the help of `swrap capture`.
const captureUsage = `Usage:
  swrap capture [--dir D] [--host N]... [--port P]... [--snaplen N] [-w FILE|-]

Streams the frames of a running network, from now on, as pcapng: one
interface per host (host10, host11, ...), netem's delays and duplicates as
packet comments, the frames it drops on "hostA->hostB dropped" interfaces.

  swrap capture -w - | wireshark -k -i -
  swrap capture --host 10 -w - | tshark -i -
  swrap capture --host 10 --host 11 --port 53 -w dns.pcapng

--host keeps the frames those hosts send or receive, --port the TCP and UDP
frames from or to those ports; given both, a frame must pass both.

The broker never waits for a capture: a reader slower than the network
loses frames, and the stream says how many (a packet comment, epb_dropcount),
as does 'swrap status'. Ends on SIGINT or SIGTERM (the broker finishes the
stream, so the output holds whole blocks) and when the reader of the output
goes away (SIGPIPE). 'swrap capture summary FILE' is 'swrap pcap summary'.
`

// hostList is a repeatable --host flag; it also takes "10,11".
type hostList []int

func (h *hostList) String() string { return fmt.Sprint([]int(*h)) }

func (h *hostList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 64 {
			return fmt.Errorf("host %q: want a host id 1..64", f)
		}
		*h = append(*h, n)
	}
	return nil
}

// portList is a repeatable --port flag; it also takes "53,80".
type portList []uint16

func (p *portList) String() string { return fmt.Sprint([]uint16(*p)) }

func (p *portList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q: want 1..65535", f)
		}
		*p = append(*p, uint16(n))
	}
	return nil
}

// cmdCapture implements `swrap capture`.
func cmdCapture(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "summary" {
		return cmdPcap(args, stdout, stderr)
	}
	fs := flag.NewFlagSet("capture", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dirFlag := fs.String("dir", os.Getenv("SOCKET_WRAPPER_DIR"), "the network's `directory` (SOCKET_WRAPPER_DIR)")
	var hosts hostList
	fs.Var(&hosts, "host", "capture only the frames host `N` sends or receives (repeatable, or 10,11)")
	var ports portList
	fs.Var(&ports, "port", "capture only the TCP/UDP frames from or to port `P` (repeatable, or 53,80)")
	snaplen := fs.Int("snaplen", 0, "bytes kept of each frame (0: all)")
	queue := fs.Int("queue", 0, "`bytes` the broker holds for this reader before it drops frames (0: 4 MiB)")
	out := fs.String("w", "-", "write the pcapng stream to `FILE` (- for standard output)")
	fs.Usage = func() { fmt.Fprint(stderr, captureUsage, "\nFlags:\n"); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "swrap capture: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if *dirFlag == "" {
		return errors.New("capture: no directory: pass --dir D or set SOCKET_WRAPPER_DIR")
	}
	var w io.Writer = stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("capture: %v", err)
		}
		defer f.Close()
		w = f
	}
	return liveCapture(*dirFlag, swrapnet.CaptureOptions{Hosts: hosts, Ports: ports, Snaplen: *snaplen, QueueBytes: *queue}, w)
}

// liveCapture copies a live capture of dir's network to w until a signal
// or a write error ends it. SIGINT and SIGTERM stop the stream cleanly;
// EPIPE (the reader of w went away) ends it without an error.
func liveCapture(dir string, o swrapnet.CaptureOptions, w io.Writer) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	// Host 1 is only the identity of the control connection: HELLO
	// creates no host.
	h, err := swrapnet.Join(dir, 1)
	if err != nil {
		return fmt.Errorf("capture: no broker is running for %s: %v", dir, err)
	}
	c, err := h.Capture(o)
	if err != nil {
		return fmt.Errorf("capture: %v", err)
	}
	defer c.Close()
	sigs := make(chan os.Signal, 2)
	// SIGPIPE is caught so that a write to a closed pipe returns EPIPE
	// instead of killing the process.
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
	defer signal.Stop(sigs)
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(w, c)
		done <- err
	}()
	for {
		select {
		case err := <-done:
			if err == nil || errors.Is(err, syscall.EPIPE) {
				return nil
			}
			return fmt.Errorf("capture: %v", err)
		case s := <-sigs:
			if s == syscall.SIGPIPE {
				continue // the copy sees EPIPE
			}
			// The broker writes what it has queued and closes; give it
			// a moment, then stop anyway.
			c.Stop()
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
		}
	}
}
