package main

// The one source of swrap's documentation for users: `swrap help` (its list
// of commands), `swrap help environment`, each command's help, and the man
// page swrap(1), which `swrap help --roff` writes (make builds bin/swrap.1
// with it, so the page needs nothing but Go to build and cannot drift from
// the help).

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// command is one entry of the command table.
type command struct {
	name     string
	synopsis []string                      // usage lines, each after "swrap "
	summary  string                        // one line, for `swrap help`
	help     string                        // the command's help text, "Usage: ..." paragraph first
	man      string                        // the man page's text, if not help without its Usage paragraph
	flags    func(io.Writer) *flag.FlagSet // the command's flags (nil: none)
}

// commands lists every command `swrap help` and the man page describe.
var commands = []command{
	{
		name:     "run",
		synopsis: []string{"run [--iface N] [--dir D] [--pcap FILE] [--network NET] [--mtu N] [--seccomp] -- CMD [ARGS...]"},
		summary:  "run CMD wrapped, as host N",
		help:     runHelp,
		flags:    func(w io.Writer) *flag.FlagSet { fs, _ := runFlags(w); return fs },
	},
	{
		name:     "status",
		synopsis: []string{"status [--dir D] [--json]"},
		summary:  "show the hosts, sockets and captures of a running broker",
		help:     statusHelp,
		flags:    func(w io.Writer) *flag.FlagSet { fs, _ := statusFlags(w); return fs },
	},
	{
		name:     "link",
		synopsis: []string{"link set [--dir D] RULE...", "link clear [--dir D] [LINK...]", "link show [--dir D] [--json]"},
		summary:  "set, remove or list network conditions (delay, loss, rate, partition)",
		help:     linkUsage,
		man:      "Sets, removes (all, or those of the links named) or lists network conditions and the links' counters: frames, bytes, drops by cause. RULE and LINK are described under NETWORK CONDITIONS.\n",
	},
	{
		name:     "pcap",
		synopsis: []string{"pcap summary FILE"},
		summary:  "summarise a capture file (TCP connections, UDP flows, ICMP)",
		help:     pcapUsage,
	},
	{
		name:     "capture",
		synopsis: []string{"capture [--dir D] [--host N]... [--port P]... [-w FILE|-]"},
		summary:  "stream the network's frames live as pcapng (| wireshark -k -i -)",
		help:     captureUsage,
	},
	{
		name:     "extcap",
		synopsis: []string{"extcap --extcap-interfaces", "extcap --extcap-interface I --extcap-dlts", "extcap --extcap-interface I --extcap-config", "extcap --extcap-interface I --capture --fifo FIFO"},
		summary:  "Wireshark extcap entry point (link it into Wireshark's extcap folder)",
		help:     extcapUsage,
	},
	{
		name:     "version",
		synopsis: []string{"version"},
		summary:  "print the version",
		help:     "Usage: swrap version\n\nPrints swrap's version, commit, Go version and wire protocol version.\n",
	},
	{
		name:     "help",
		synopsis: []string{"help [COMMAND|environment]"},
		summary:  "print this help, a command's, or the environment variables",
		help:     "Usage: swrap help [COMMAND|environment]\n\nPrints the list of commands, a command's help with its flags, or the\nenvironment variables swrap and its shim read.\n",
	},
}

// envVar is one environment variable swrap, its shim or its broker reads.
type envVar struct{ name, meaning string }

// environment lists them, in the order of the README's table.
var environment = []envVar{
	{"SOCKET_WRAPPER_DIR", "turns wrapping on and names the network: the broker keeps its files in D/swrap/. Unset or empty: every call goes to libc untouched."},
	{"SOCKET_WRAPPER_DEFAULT_IFACE", "the program's host id, 1..64 (anything else means 1): its source address, and what binds to 0.0.0.0 and :: mean."},
	{"SOCKET_WRAPPER_IPV4_NETWORK", "127.0.0.0 (default) or 10.53.57.0."},
	{"SOCKET_WRAPPER_PCAP_FILE", "append every frame to this pcap file (LINKTYPE_RAW); written once, by the broker. Classic pcap, unless the name ends in .pcapng or SWRAP_PCAP_FORMAT=pcapng."},
	{"SWRAP_PCAP_FORMAT", "pcapng: capture files are pcapng whatever their name; read by the broker."},
	{"SWRAP_PCAP_DIR", "write DIR/hostN.pcapng per host, each with every frame host N sends or receives; read by the broker."},
	{"SOCKET_WRAPPER_MTU", "the emulated network's IP MTU, 1280..65535 (default 65535); read by the broker."},
	{"SOCKET_WRAPPER_MAX_SOCKETS", "wrapped sockets per process before socket() fails with ENFILE (default 65535, at most 262140)."},
	{"SOCKET_WRAPPER_DEBUGLEVEL", "shim log level on stderr: 0..3 or error, warn, debug, trace."},
	{"SOCKET_WRAPPER_DISABLE_DEEPBIND", "accepted for compatibility; no effect (the shim never dlopens libc)."},
	{"SWRAP_NETEM", "network conditions the broker starts with, e.g. \"10->11 delay=50ms loss=5% seed=42; 11 rate=10mbit\" (see NETWORK CONDITIONS, or swrap help link)."},
	{"SWRAP_NETEM_FILE", "the same, from a file: one rule a line, # comments."},
	{"SWRAP_HOSTS", "a hosts(5) file of names for the emulated network; read by the broker at start."},
	{"NSS_WRAPPER_HOSTS", "the same, as nss_wrapper users set it."},
	{"RESOLV_WRAPPER_HOSTS", "DNS records in resolv_wrapper's format (A, AAAA, SRV, URI, CNAME, PTR, NS, TXT, SOA; one a line); read by the broker at start."},
	{"SWRAP_RESOLVE_OUTSIDE", "1: a name that is not in the table goes to the machine's resolver (off by default: not found)."},
	{"SWRAP_SECCOMP", "1: swrap run wraps CMD and its whole tree through seccomp user notification instead of LD_PRELOAD (--seccomp; automatic for static and Go programs)."},
	{"SWRAP_SUPERVISE_DEBUG", "1: under the seccomp path, swrap run logs on stderr every errno the broker answers a trapped call with."},
	{"SWRAP_BROKER", "the swrap-broker the shim starts; default: next to the shim library, else in swrap/ beside it (an installed LIBDIR/swrap/swrap-broker), else on PATH."},
	{"SWRAP_ACK_DELAY", "the longest a pure ACK of an interactive TCP connection waits for the answer to carry it, as Linux's delayed ACK (Go duration, default 40ms; 0 sends every ACK at once); read by the broker."},
	{"SWRAP_TCP_MAX_TW", "the most TCP connections a host keeps in TIME_WAIT (default 2048; 0: no bound): past it a closing connection skips TIME_WAIT, as on Linux past net.ipv4.tcp_max_tw_buckets; read by the broker."},
	{"SWRAP_FABRIC_SOCKETS", "1: frames between hosts cross the hosts' unix datagram sockets in D/swrap/host/ instead of being handed over in memory inside the broker; same routing, conditions and capture, slower."},
	{"GODEBUG", "read by the broker's Go runtime; the broker adds schedtrace=2147483647 (keeps its sysmon thread from deep sleep, for faster round trips) unless GODEBUG already sets schedtrace (schedtrace=0 opts out)."},
	{"SWRAP_BROKER_PROCS", "CPUs the broker's Go runtime uses; default half the machine's, at least 1."},
}

// files lists the files swrap uses and installs, for the man page.
var files = []envVar{
	{"D/swrap/broker.sock", "the control socket of the broker serving network directory D."},
	{"D/swrap/broker.lock", "held by that broker; holds its pid."},
	{"FILE, FILE.events", "the capture (SOCKET_WRAPPER_PCAP_FILE), and one JSON line per frame dropped, duplicated, reordered or delayed by the network conditions."},
	{"LIBDIR/libswrap.so", "the preload shim (soname libsocket_wrapper.so.0); libsocket_wrapper.so.0 and libsocket_wrapper.so are links to it, so LD_PRELOAD=libsocket_wrapper.so works."},
	{"LIBDIR/swrap/swrap-broker", "the broker, started on demand by the shim, which finds it relative to its own location."},
	{"LIBDIR/libsocket_wrapper_noop.so.0", "socket_wrapper_enabled() and socket_wrapper_indicate_no_inet_fd() as no-ops, for programs that call them and also run unwrapped (include socket_wrapper.h, link with -lsocket_wrapper_noop)."},
	{"LIBDIR/pkgconfig/socket_wrapper.pc, socket_wrapper_noop.pc", "for pkg-config; socket_wrapper.pc's libsocket_wrapper_so_path variable and its Libs name the library to preload."},
	{"LIBDIR/cmake/socket_wrapper/socket_wrapper-config.cmake", "for CMake's find_package(socket_wrapper): SOCKET_WRAPPER_LIBRARY is the library to preload; target socket_wrapper_noop links the noop library."},
}

// topUsage is the text of `swrap help`.
func topUsage() string {
	var b strings.Builder
	b.WriteString(`swrap runs unmodified programs on an emulated network: each wrapped
program is a host N (127.0.0.N, fd00::5357:5fNN) whose sockets go through a
real TCP/IP stack in swrap-broker.

Usage:
`)
	for _, c := range commands {
		for i, s := range c.synopsis {
			line := "  swrap " + s
			if i == len(c.synopsis)-1 {
				if len(line) < 22 {
					line += strings.Repeat(" ", 22-len(line)) + c.summary
				} else {
					line += "\n" + strings.Repeat(" ", 22) + c.summary
				}
			}
			b.WriteString(line + "\n")
		}
	}
	b.WriteString("\nEnvironment ('swrap help environment'):\n")
	var names []string
	for _, v := range environment {
		names = append(names, v.name)
	}
	b.WriteString(wrapText(strings.Join(names, " "), "  ", 76))
	b.WriteString("\nRun 'swrap help CMD' for a command's flags; 'man swrap' for all of it.\n")
	return b.String()
}

// environmentHelp is the text of `swrap help environment`.
func environmentHelp() string {
	var b strings.Builder
	b.WriteString("Environment variables read by swrap, its preload shim and its broker:\n\n")
	for _, v := range environment {
		b.WriteString("  " + v.name + "\n")
		b.WriteString(wrapText(v.meaning, "      ", 76))
	}
	return b.String()
}

// wrapText fills words into lines of at most width characters, each
// starting with indent.
func wrapText(s, indent string, width int) string {
	var b strings.Builder
	line := indent
	for _, w := range strings.Fields(s) {
		if len(line) > len(indent) && len(line)+1+len(w) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += w
	}
	if len(line) > len(indent) {
		b.WriteString(line + "\n")
	}
	return b.String()
}

// findCommand returns the table entry of a command (or an alias of one).
func findCommand(name string) *command {
	if name == "capture" {
		name = "pcap"
	}
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// writeManPage writes swrap(1) in roff (man macros) from the tables above,
// the commands' help texts and their flag sets.
func writeManPage(w io.Writer, version string, date time.Time) {
	fmt.Fprintf(w, ".\\\" swrap(1), generated by `swrap help --roff` from cmd/swrap/manual.go; do not edit.\n")
	fmt.Fprintf(w, ".TH SWRAP 1 %q %q \"User Commands\"\n", date.Format("2006-01-02"), "swrap "+version)
	// No hyphenation, ragged right: variable names and flags stay whole.
	fmt.Fprintf(w, ".nh\n.ad l\n")
	fmt.Fprintf(w, ".SH NAME\nswrap \\- run unmodified programs on an emulated network (socket_wrapper's successor)\n")
	fmt.Fprintf(w, ".SH SYNOPSIS\n.nf\n")
	for _, c := range commands {
		for _, s := range c.synopsis {
			fmt.Fprintf(w, "\\fBswrap\\fR %s\n", roffEscape(s))
		}
	}
	fmt.Fprintf(w, ".fi\n.SH DESCRIPTION\n")
	writeRoffText(w, `swrap runs unmodified programs on an emulated network, as cwrap's socket_wrapper does, and understands the same environment variables. A program started with the preload shim (LD_PRELOAD=libsocket_wrapper.so, or with swrap run) is host N: IPv4 127.0.0.N (or 10.53.57.N), IPv6 fd00::5357:5fNN. Its sockets are real TCP/IP endpoints of a gVisor network stack in a broker process (swrap-broker), started on demand by the first wrapped socket, so handshakes, windows, retransmission, RSTs and ICMP behave as on Linux, and the capture file holds the frames exactly as they crossed the emulated wire. No root, no network namespace, no real network traffic.

Programs that share a SOCKET_WRAPPER_DIR share a network. Programs can be wrapped by hand, as with socket_wrapper:

  LD_PRELOAD=libsocket_wrapper.so SOCKET_WRAPPER_DIR=/tmp/net SOCKET_WRAPPER_DEFAULT_IFACE=10 nc -l 127.0.0.10 7
`)
	fmt.Fprintf(w, ".SH COMMANDS\n")
	for _, c := range commands {
		fmt.Fprintf(w, ".SS %s\n", c.name)
		fmt.Fprintf(w, ".nf\n")
		for _, s := range c.synopsis {
			fmt.Fprintf(w, "\\fBswrap\\fR %s\n", roffEscape(s))
		}
		fmt.Fprintf(w, ".fi\n")
		if c.man != "" {
			writeRoffText(w, c.man)
		} else {
			writeRoffText(w, dropUsage(c.help))
		}
		if c.flags != nil {
			fs := c.flags(io.Discard)
			fs.VisitAll(func(f *flag.Flag) {
				arg, usage := flag.UnquoteUsage(f)
				fmt.Fprintf(w, ".TP\n\\fB\\-\\-%s\\fR", roffEscape(f.Name))
				if arg != "" {
					fmt.Fprintf(w, " \\fI%s\\fR", roffEscape(arg))
				}
				fmt.Fprintf(w, "\n%s\n", roffEscape(strings.ReplaceAll(usage, "\n", " ")))
			})
		}
	}
	fmt.Fprintf(w, ".SH ENVIRONMENT\n")
	for _, v := range environment {
		fmt.Fprintf(w, ".TP\n.B %s\n%s\n", v.name, roffEscape(v.meaning))
	}
	fmt.Fprintf(w, ".SH NETWORK CONDITIONS\n")
	writeRoffText(w, conditionsHelp)
	fmt.Fprintf(w, ".SH FILES\n")
	writeRoffText(w, "D is the network directory (SOCKET_WRAPPER_DIR); LIBDIR is where the libraries are installed (PREFIX/lib/TRIPLET, e.g. /usr/lib/x86_64-linux-gnu).\n")
	for _, f := range files {
		fmt.Fprintf(w, ".TP\n.I %s\n%s\n", roffEscape(f.name), roffEscape(f.meaning))
	}
	fmt.Fprintf(w, ".SH SEE ALSO\n\\fBsocket_wrapper\\fR(1), \\fBld.so\\fR(8), \\fBtshark\\fR(1), \\fBpkg\\-config\\fR(1)\n")
}

// dropUsage removes a help text's first paragraph (its "Usage:" lines,
// which the man page shows as the synopsis).
func dropUsage(s string) string {
	if i := strings.Index(s, "\n\n"); i >= 0 && strings.HasPrefix(s, "Usage:") {
		return s[i+2:]
	}
	return s
}

// writeRoffText converts help text to roff: paragraphs of unindented lines
// are filled; indented lines are kept as they are, as an example.
func writeRoffText(w io.Writer, s string) {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	inPara, inEx := false, false
	for _, l := range lines {
		switch {
		case strings.TrimSpace(l) == "":
			if inEx {
				fmt.Fprintf(w, ".fi\n.RE\n")
				inEx = false
			}
			inPara = false
		case strings.HasPrefix(l, " "):
			if !inEx {
				fmt.Fprintf(w, ".sp\n.RS 4\n.nf\n")
				inEx, inPara = true, false
			}
			fmt.Fprintf(w, "%s\n", roffEscape(strings.TrimPrefix(l, "  ")))
		default:
			if inEx {
				fmt.Fprintf(w, ".fi\n.RE\n")
				inEx = false
			}
			if !inPara {
				fmt.Fprintf(w, ".PP\n")
				inPara = true
			}
			fmt.Fprintf(w, "%s\n", roffEscape(l))
		}
	}
	if inEx {
		fmt.Fprintf(w, ".fi\n.RE\n")
	}
}

// roffEscape makes text safe as roff input: backslashes, and a leading
// period or apostrophe (which would start a request); hyphens become \-
// so that options and names render (and copy) as ASCII minus.
func roffEscape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
