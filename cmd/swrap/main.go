// Command swrap is the command users type to work with swrap, the successor
// of cwrap's socket_wrapper: unmodified programs run under an LD_PRELOAD
// shim (libswrap.so) as if on an emulated host N (IPv4 127.0.0.N, IPv6
// fd00::5357:5fNN), with a real TCP/IP stack in a broker process
// (swrap-broker).
//
// Usage:
//
//	swrap run [--iface N] [--dir D] [--pcap FILE] [--network NET] [--mtu N] -- CMD [ARGS...]
//	swrap status [--dir D] [--json]
//	swrap link set|clear|show [--dir D] ...
//	swrap pcap summary FILE
//	swrap capture [--dir D] [--host N]... [-w FILE|-]
//	swrap extcap --extcap-interfaces | --capture ... (Wireshark's extcap)
//	swrap version
//	swrap help [COMMAND]
//
// `swrap run` sets the socket_wrapper environment (SOCKET_WRAPPER_DIR,
// SOCKET_WRAPPER_DEFAULT_IFACE, ...) plus LD_PRELOAD and SWRAP_BROKER, and
// runs CMD. `swrap status` asks a running broker what it serves. `swrap pcap
// summary` describes a capture file written with SOCKET_WRAPPER_PCAP_FILE.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/swrap/swrap/supervise"
	"github.com/swrap/swrap/wire"
)

// exitError carries an exit status out of a subcommand without printing
// anything more (the message, if any, was already printed).
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// errUsage marks an error in the command line; it makes swrap exit with 2.
var errUsage = errors.New("usage")

func main() {
	if len(os.Args) > 1 && os.Args[1] == supervise.HelperArg {
		supervise.Helper() // never returns
	}
	os.Exit(mainArgs(os.Args[1:], os.Stdout, os.Stderr))
}

// mainArgs runs the subcommand named by args[0] and returns the exit status.
func mainArgs(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage())
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(args[1:], stderr)
	case "status":
		err = cmdStatus(args[1:], stdout, stderr)
	case "link":
		err = cmdLink(args[1:], stdout, stderr)
	case "pcap":
		err = cmdPcap(args[1:], stdout, stderr)
	case "capture":
		err = cmdCapture(args[1:], stdout, stderr)
	case "extcap":
		err = cmdExtcap(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, versionString())
	case "help", "-h", "-help", "--help":
		return cmdHelp(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "swrap: unknown command %q\n\n%s", args[0], topUsage())
		return 2
	}
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return int(ee)
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "swrap: %v\n", err)
		return 1
	}
}

// cmdHelp prints the top-level help, one command's, the environment
// variables, or (--roff [VERSION], which make runs) the man page swrap(1).
func cmdHelp(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stdout, topUsage())
		return 0
	}
	switch args[0] {
	case "--roff":
		version := "(devel)"
		if len(args) > 1 {
			version = args[1]
		}
		date := time.Now().UTC()
		if sec, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
			date = time.Unix(sec, 0).UTC()
		}
		writeManPage(stdout, version, date)
		return 0
	case "environment", "env":
		fmt.Fprint(stdout, environmentHelp())
		return 0
	}
	c := findCommand(args[0])
	if c == nil {
		fmt.Fprintf(stderr, "swrap: unknown command %q\n", args[0])
		return 2
	}
	fmt.Fprint(stdout, c.help)
	if c.flags != nil {
		fmt.Fprint(stdout, "\nFlags:\n")
		fs := c.flags(stdout)
		fs.PrintDefaults()
	}
	return 0
}

// versionString names this build: the module version (a VCS pseudo-version
// when built from a git checkout), the commit, and the wire protocol version.
func versionString() string {
	v := "(devel)"
	var extra []string
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if modified == "true" {
				rev += "+dirty"
			}
			extra = append(extra, "commit "+rev)
		}
		extra = append(extra, bi.GoVersion)
	}
	extra = append(extra, fmt.Sprintf("protocol v%d", wire.Version))
	return fmt.Sprintf("swrap %s (%s)", v, strings.Join(extra, ", "))
}
