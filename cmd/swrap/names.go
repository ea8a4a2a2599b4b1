package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/swrap/swrap/broker"
	"github.com/swrap/swrap/names"
)

// printNames writes the name table: the files' records one a line, the
// default names (hostN and their reverse names) as one summary line.
func printNames(w io.Writer, ns []broker.NameStatus) {
	defaults := 0
	var rest []broker.NameStatus
	for _, n := range ns {
		if n.Source == names.SourceDefault {
			defaults++
		} else {
			rest = append(rest, n)
		}
	}
	fmt.Fprintf(w, "\nNames (%d records; DNS server on host %d, port 53):\n", len(ns), names.ServerID)
	if defaults > 0 {
		fmt.Fprintf(w, "  host1 .. host64: A, AAAA and PTR of every host (%d default records)\n", defaults)
	}
	if len(rest) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  Name\tType\tValue\tSource")
	for _, n := range rest {
		name := n.Name
		// A reverse name is shown as its address: ip6.arpa names are
		// 72 characters long.
		if a, ok := names.ReverseAddr(name); ok && n.Type == "PTR" {
			name = a.String() + " (reverse)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", name, n.Type, n.Value, n.Source)
	}
	tw.Flush()
}
