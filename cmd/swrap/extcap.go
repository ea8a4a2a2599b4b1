package main

import (
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/swrap/swrap/swrapnet"
	"github.com/swrap/swrap/wire"
)

// extcapUsage is the help of `swrap extcap`.
const extcapUsage = `Usage:
  swrap extcap --extcap-interfaces
  swrap extcap --extcap-interface I --extcap-dlts
  swrap extcap --extcap-interface I --extcap-config
  swrap extcap --extcap-interface I --capture --fifo FIFO [--host N,...] [--snaplen N]

Wireshark runs these (its extcap interface; see README, "Wireshark"). To use
it, link the swrap binary into Wireshark's personal extcap folder as a program
that runs 'swrap extcap "$@"' (Help > About > Folders names the folder), and
every running swrap network appears in Wireshark's interface list. The
networks listed are SOCKET_WRAPPER_DIR's, those in SWRAP_EXTCAP_DIRS (a
colon-separated list of directories or glob patterns), and the private
networks of 'swrap run' ($TMPDIR/swrap-*).
`

// extcapNetwork is one running network, as an extcap interface.
type extcapNetwork struct {
	value, dir string
}

// extcapValue names the network of dir as an extcap interface: a stable
// name without path separators, which Wireshark puts in file names.
func extcapValue(dir string) string {
	h := fnv.New32a()
	h.Write([]byte(dir))
	return fmt.Sprintf("swrap-%08x", h.Sum32())
}

// extcapNetworks lists the directories that a live broker serves.
func extcapNetworks() []extcapNetwork {
	var cands []string
	if d := os.Getenv("SOCKET_WRAPPER_DIR"); d != "" {
		cands = append(cands, d)
	}
	for _, p := range filepath.SplitList(os.Getenv("SWRAP_EXTCAP_DIRS")) {
		if m, err := filepath.Glob(p); err == nil {
			cands = append(cands, m...)
		}
	}
	if m, err := filepath.Glob(filepath.Join(os.TempDir(), "swrap-*")); err == nil {
		cands = append(cands, m...)
	}
	seen := map[string]bool{}
	var out []extcapNetwork
	for _, d := range cands {
		abs, err := filepath.Abs(d)
		if err != nil || seen[abs] {
			continue
		}
		seen[abs] = true
		if _, err := os.Stat(filepath.Join(abs, wire.SubDir, wire.CtlSock)); err != nil {
			continue
		}
		if _, err := swrapnet.Join(abs, 1); err != nil {
			continue // a stale socket: no broker answers
		}
		out = append(out, extcapNetwork{value: extcapValue(abs), dir: abs})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].dir < out[j].dir })
	return out
}

// cmdExtcap implements `swrap extcap`, Wireshark's extcap protocol.
func cmdExtcap(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("extcap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listIfaces := fs.Bool("extcap-interfaces", false, "list the running swrap networks")
	fs.String("extcap-version", "", "Wireshark's version (ignored)")
	iface := fs.String("extcap-interface", "", "the `interface` the other queries are about")
	dlts := fs.Bool("extcap-dlts", false, "list the interface's link types")
	config := fs.Bool("extcap-config", false, "list the interface's options")
	capture := fs.Bool("capture", false, "capture into --fifo")
	fifo := fs.String("fifo", "", "the `FIFO` to write pcapng to")
	filter := fs.String("extcap-capture-filter", "", "capture filter: 'host N' and 'port P' terms joined by 'or'/'and' (see parseFilter)")
	var hosts hostList
	fs.Var(&hosts, "host", "capture only these host ids (10,11)")
	var ports portList
	fs.Var(&ports, "port", "capture only these TCP/UDP ports (53,80)")
	snaplen := fs.Int("snaplen", 0, "bytes kept of each frame (0: all)")
	// Options Wireshark may pass that swrap has no use for.
	fs.String("extcap-control-in", "", "ignored")
	fs.String("extcap-control-out", "", "ignored")
	fs.String("extcap-reload-option", "", "ignored")
	fs.Bool("debug", false, "ignored")
	fs.String("debug-file", "", "ignored")
	fs.Usage = func() { fmt.Fprint(stderr, extcapUsage, "\nFlags:\n"); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	switch {
	case *listIfaces:
		fmt.Fprintf(stdout, "extcap {version=%s}{help=https://github.com/swrap/swrap}\n", strings.TrimPrefix(versionString(), "swrap "))
		for _, n := range extcapNetworks() {
			fmt.Fprintf(stdout, "interface {value=%s}{display=swrap network %s}\n", n.value, n.dir)
		}
		return nil
	case *iface == "":
		fmt.Fprintln(stderr, "swrap extcap: --extcap-interface is required")
		return errUsage
	}
	var dir string
	for _, n := range extcapNetworks() {
		if n.value == *iface {
			dir = n.dir
		}
	}
	if dir == "" {
		return fmt.Errorf("extcap: no running swrap network is interface %q", *iface)
	}
	switch {
	case *dlts:
		fmt.Fprintf(stdout, "dlt {number=101}{name=RAW}{display=Raw IPv4/IPv6, one pcapng interface per swrap host}\n")
	case *config:
		fmt.Fprint(stdout, "arg {number=0}{call=--host}{display=Hosts}{type=string}{tooltip=Host ids to capture, comma-separated (empty: every host)}{group=Capture}\n")
		fmt.Fprint(stdout, "arg {number=1}{call=--snaplen}{display=Snapshot length}{type=integer}{range=0,262144}{default=0}{tooltip=Bytes kept of each frame (0: all)}{group=Capture}\n")
		fmt.Fprint(stdout, "arg {number=2}{call=--port}{display=Ports}{type=string}{tooltip=TCP/UDP ports to capture, comma-separated (empty: every port)}{group=Capture}\n")
	case *capture:
		if *fifo == "" {
			fmt.Fprintln(stderr, "swrap extcap: --capture needs --fifo")
			return errUsage
		}
		if *filter != "" {
			h, p, err := parseFilter(*filter)
			if err != nil {
				return fmt.Errorf("extcap: capture filter: %v", err)
			}
			hosts, ports = append(hosts, h...), append(ports, p...)
		}
		f, err := os.OpenFile(*fifo, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("extcap: %v", err)
		}
		defer f.Close()
		return liveCapture(dir, swrapnet.CaptureOptions{Hosts: hosts, Ports: ports, Snaplen: *snaplen}, f)
	default:
		fmt.Fprintln(stderr, "swrap extcap: say --extcap-dlts, --extcap-config or --capture")
		return errUsage
	}
	return nil
}

// parseFilter understands a simple capture filter, not BPF: "host N" and
// "port P" terms (N a host id) joined by "or" or "and". A frame passes if
// it is of one of the hosts (or there are none) and of one of the ports
// (or there are none): "host 10 or host 11 and port 53".
func parseFilter(s string) (hostList, portList, error) {
	var hosts hostList
	var ports portList
	f := strings.Fields(s)
	for i := 0; i < len(f); i += 3 {
		if i+1 >= len(f) || (i+2 < len(f) && f[i+2] != "or" && f[i+2] != "and") || i+2 == len(f)-1 {
			return nil, nil, fmt.Errorf("%q: want 'host N' and 'port P' terms joined by 'or' or 'and'", s)
		}
		var err error
		switch f[i] {
		case "host":
			err = hosts.Set(f[i+1])
		case "port":
			err = ports.Set(f[i+1])
		default:
			err = fmt.Errorf("%q: unknown term %q: only host and port are understood", s, f[i])
		}
		if err != nil {
			return nil, nil, err
		}
	}
	return hosts, ports, nil
}
