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
	"text/tabwriter"

	"github.com/swrap/swrap/netem"
	"github.com/swrap/swrap/swrapnet"
	"github.com/swrap/swrap/wire"
)

// linkUsage is the help of `swrap link`.
const linkUsage = `Usage:
  swrap link set [--dir D] RULE [RULE...]   set network conditions
  swrap link clear [--dir D] [LINK...]      remove them (all, or those of the links named)
  swrap link show [--dir D] [--json]        list the links with conditions and their counters

` + conditionsHelp

// conditionsHelp describes network conditions: the body of `swrap help
// link` and the man page's NETWORK CONDITIONS section.
const conditionsHelp = `A RULE is a link and its conditions; the words of the command line are joined
with blanks, and ";" separates rules:

  swrap link set 10->11 delay=50ms jitter=5ms loss=5% seed=42
  swrap link set 10-11 partition         # cut both directions
  swrap link set 10-11                   # heal: no conditions
  swrap link set '11 rate=10mbit queue=100; 12->* ge=1%,25%'

Links: A->B, A<-B, A<->B or A-B (both directions), A->* (all A sends),
*->A (all A receives), A (both). A frame from A to B gets the conditions of
A->B, else of A->*, else of *->B.
Options: partition, delay=DUR, jitter=DUR, dist=uniform|normal, loss=P%,
ge=P%,R%[,LOSS_BAD%[,LOSS_GOOD%]] (bursty loss), dup=P%, reorder=P% (needs a
delay), rate=N{bit,kbit,mbit,gbit}, queue=FRAMES (default 1000), seed=N.
A rule replaces all the conditions of its link. The broker can start with
conditions too: SWRAP_NETEM="RULES" or SWRAP_NETEM_FILE=FILE.

The conditions act on real frames, so TCP reacts for real and the capture
shows it: a delayed frame is captured when it leaves the link, a lost one
not at all. With a capture file, every frame dropped, duplicated, reordered
or delayed is a JSON line in FILE.events.
`

// cmdLink implements `swrap link`.
func cmdLink(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, linkUsage)
		return errUsage
	}
	fs := flag.NewFlagSet("link", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dirFlag := fs.String("dir", os.Getenv("SOCKET_WRAPPER_DIR"), "the network's `directory` (SOCKET_WRAPPER_DIR)")
	asJSON := fs.Bool("json", false, "show: print the links as JSON")
	fs.Usage = func() { fmt.Fprint(stderr, linkUsage, "\nFlags:\n"); fs.PrintDefaults() }
	sub := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	var text string
	switch sub {
	case "set":
		if fs.NArg() == 0 {
			fmt.Fprintln(stderr, "swrap link set: no rule (e.g. swrap link set 10->11 loss=5%)")
			return errUsage
		}
		text = strings.Join(fs.Args(), " ")
	case "clear":
		text = "clear"
		if fs.NArg() > 0 {
			// Each link named alone: a rule without options heals it.
			text = strings.Join(fs.Args(), ";")
		}
	case "show":
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "swrap link show: unexpected argument %q\n", fs.Arg(0))
			return errUsage
		}
	case "help":
		fmt.Fprint(stdout, linkUsage)
		return nil
	default:
		fmt.Fprintf(stderr, "swrap link: unknown subcommand %q\n\n%s", sub, linkUsage)
		return errUsage
	}
	if text != "" {
		// Mistakes are reported before a broker is looked for.
		if _, err := netem.Parse(text); err != nil {
			return fmt.Errorf("link %s: %v", sub, err)
		}
	}
	h, err := joinBroker(*dirFlag, "link")
	if err != nil {
		return err
	}
	if text != "" {
		return h.SetLinks(text)
	}
	links, err := h.Links()
	if err != nil {
		return err
	}
	if *asJSON {
		if links == nil {
			links = []netem.Status{}
		}
		b, _ := json.Marshal(links)
		_, err := fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	return printLinks(stdout, links)
}

// joinBroker connects to the broker serving dir, for commands about the
// whole network (host 1 is only the connection's identity: HELLO creates no
// host).
func joinBroker(dir, cmd string) (*swrapnet.Host, error) {
	if dir == "" {
		return nil, fmt.Errorf("%s: no directory: pass --dir D or set SOCKET_WRAPPER_DIR", cmd)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(abs, wire.SubDir, wire.CtlSock)); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("%s: %s", cmd, refusedMsg(abs))
		}
		return nil, fmt.Errorf("%s: no broker is running for %s", cmd, abs)
	}
	h, err := swrapnet.Join(abs, 1)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("%s: %s", cmd, refusedMsg(abs))
		}
		return nil, fmt.Errorf("%s: no broker is running for %s: %v", cmd, abs, err)
	}
	return h, nil
}

// printLinks writes the links with conditions as a table.
func printLinks(w io.Writer, links []netem.Status) error {
	if len(links) == 0 {
		_, err := fmt.Fprintln(w, "  no network conditions")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  Link\tFrames\tBytes\tSent\tLoss\tPartition\tQueue\tDelayed\tDup\tReordered\tQueued\tConditions")
	for _, l := range links {
		s := l.Stats
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", l.Link, s.Frames, s.Bytes, s.Sent,
			s.DropLoss, s.DropPartition, s.DropQueue, s.Delayed, s.Duplicated, s.Reordered, s.Queued, l.Spec)
	}
	return tw.Flush()
}
