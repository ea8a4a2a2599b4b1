package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/swrap/swrap/broker"
	"github.com/swrap/swrap/swrapnet"
	"github.com/swrap/swrap/wire"
)

// statusOptions are the flags of `swrap status`.
type statusOptions struct {
	dir  string
	json bool
}

// statusHelp is the help of `swrap status`, before its flags.
const statusHelp = `Usage: swrap status [--dir D] [--json]

Asks the broker serving D what it runs: its hosts and their links, every
wrapped socket (like ss -tanp), its capture files and counters.
`

// statusFlags declares the flags of `swrap status`.
func statusFlags(out io.Writer) (*flag.FlagSet, *statusOptions) {
	o := &statusOptions{}
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.dir, "dir", os.Getenv("SOCKET_WRAPPER_DIR"), "the network's `directory` (SOCKET_WRAPPER_DIR)")
	fs.BoolVar(&o.json, "json", false, "print the broker's STATUS document (JSON, docs/protocol.md) as it is")
	fs.Usage = func() {
		fmt.Fprint(out, statusHelp, "\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs, o
}

// cmdStatus implements `swrap status`.
func cmdStatus(args []string, stdout, stderr io.Writer) error {
	fs, o := statusFlags(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "swrap status: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if o.dir == "" {
		return errors.New("status: no directory: pass --dir D or set SOCKET_WRAPPER_DIR")
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	raw, err := fetchStatus(dir)
	if err != nil {
		return err
	}
	if o.json {
		_, err := fmt.Fprintf(stdout, "%s\n", raw)
		return err
	}
	var st broker.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("status: the broker's reply is not a STATUS document: %v", err)
	}
	return printStatus(stdout, &st)
}

// fetchStatus asks the broker serving dir for its STATUS document.
func fetchStatus(dir string) ([]byte, error) {
	sock := filepath.Join(dir, wire.SubDir, wire.CtlSock)
	if _, err := os.Stat(sock); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("status: %s", refusedMsg(dir))
		}
		return nil, fmt.Errorf("status: no broker is running for %s (no %s)", dir, sock)
	}
	// Host 1 is only the identity of this control connection: HELLO
	// creates no host, and STATUS is about the whole network.
	h, err := swrapnet.Join(dir, 1)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("status: %s", refusedMsg(dir))
		}
		return nil, fmt.Errorf("status: no broker is running for %s: %v", dir, err)
	}
	raw, err := h.Status()
	if err != nil {
		return nil, fmt.Errorf("status: %v", err)
	}
	return raw, nil
}

// printStatus writes st for people.
func printStatus(w io.Writer, st *broker.Status) error {
	up := time.Duration(st.UptimeS * float64(time.Second)).Round(100 * time.Millisecond)
	fmt.Fprintf(w, "broker pid %d, protocol v%d, instance %s, MTU %d, up %s\n", st.PID, st.Version, st.Instance, st.MTU, up)
	if st.Dir != "" {
		fmt.Fprintf(w, "directory %s\n", st.Dir)
	}

	fmt.Fprintf(w, "\nHosts (%d):\n", len(st.Hosts))
	if len(st.Hosts) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  Host\tIPv4\tIPv6\tTx frames\tTx bytes\tRx frames\tRx bytes\tUnreachable\tDropped\tTCP closing")
		for _, h := range st.Hosts {
			l := h.Link
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", h.ID, h.IPv4, h.IPv6,
				l.TxFrames, l.TxBytes, l.RxFrames, l.RxBytes, l.Unreachable, l.Dropped, h.TCPClosing)
		}
		tw.Flush()
	}

	fmt.Fprintf(w, "\nSockets (%d):\n", len(st.Sockets))
	if len(st.Sockets) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  Netid\tState\tLocal Address:Port\tPeer Address:Port\tHost\tProcess")
		for _, s := range st.Sockets {
			state := s.State
			if s.TCP != "" {
				state = s.TCP
			}
			remote := s.Remote
			if remote == "" {
				remote = "*:*"
			}
			netid := s.Proto
			if s.Family == "ipv6" {
				netid += "6"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%s\n", netid, state, s.Local, remote, s.Host, process(s.PID))
		}
		tw.Flush()
	}

	fmt.Fprintf(w, "\nLinks with network conditions (%d):\n", len(st.Links))
	printLinks(w, st.Links)

	printNames(w, st.Names)

	fmt.Fprintf(w, "\nCaptures (%d):\n", len(st.Captures))
	for _, c := range st.Captures {
		what := c.File
		switch c.Kind {
		case "dir":
			what = "per-host files in " + c.File
		case "live":
			what = "live capture (" + strings.TrimPrefix(c.File, "live:") + ")"
		}
		fmt.Fprintf(w, "  %s: %d frames, %d bytes, %d dropped\n", what, c.Frames, c.Bytes, c.Dropped)
	}

	fmt.Fprintf(w, "\nCounters: %d control connections, %d sessions, %d goroutines, %d fds, %d datagrams dropped (%d on receive, %d on send)\n",
		st.ControlConns, st.Sessions, st.Goroutines, st.FDs, st.DgramDrops+st.DgramSendDrops, st.DgramDrops, st.DgramSendDrops)
	return nil
}

// process names a socket's owner the way ss -p does, when it still runs on
// this machine: ("comm",pid=N).
func process(pid uint32) string {
	if pid == 0 {
		return "-"
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return fmt.Sprintf("pid=%d", pid)
	}
	return fmt.Sprintf("(%q,pid=%d)", strings.TrimSpace(string(b)), pid)
}

// refusedMsg explains a broker that refuses us: its directory and control
// socket are for its own uid (docs/protocol.md, Files).
func refusedMsg(dir string) string {
	owner := "another user"
	if fi, err := os.Stat(filepath.Join(dir, wire.SubDir)); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			owner = fmt.Sprintf("uid %d", st.Uid)
		}
	} else if fi, err := os.Stat(dir); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			owner = fmt.Sprintf("uid %d (the owner of %s)", st.Uid, dir)
		}
	}
	return fmt.Sprintf("the broker of %s belongs to %s and refuses this user (uid %d): run as that user", dir, owner, os.Getuid())
}
