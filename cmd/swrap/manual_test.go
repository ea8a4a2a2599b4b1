package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestManPageCoversTheTables: the man page has a COMMANDS entry for every
// command and an ENVIRONMENT entry for every variable, each command's flags
// as options, and no line that roff would take for a request by accident.
func TestManPageCoversTheTables(t *testing.T) {
	var b bytes.Buffer
	writeManPage(&b, "1.2.3", time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC))
	page := b.String()
	if !strings.HasPrefix(strings.SplitN(page, "\n", 3)[1], `.TH SWRAP 1 "2026-01-02" "swrap 1.2.3"`) {
		t.Errorf("title line: %q", strings.SplitN(page, "\n", 3)[1])
	}
	for _, c := range commands {
		if !strings.Contains(page, "\n.SS "+c.name+"\n") {
			t.Errorf("no entry for command %s", c.name)
		}
	}
	for _, v := range environment {
		if !strings.Contains(page, "\n.TP\n.B "+v.name+"\n") {
			t.Errorf("no entry for variable %s", v.name)
		}
		if !strings.Contains(topUsage(), v.name) || !strings.Contains(environmentHelp(), "  "+v.name+"\n") {
			t.Errorf("swrap help or swrap help environment lacks %s", v.name)
		}
	}
	for _, flag := range []string{`\fB\-\-iface\fR \fIN\fR`, `\fB\-\-pcap\fR \fIfile\fR`, `\fB\-\-json\fR`} {
		if !strings.Contains(page, flag) {
			t.Errorf("no option %s", flag)
		}
	}
	requests := map[string]bool{"TH": true, "SH": true, "SS": true, "TP": true, "B": true, "I": true, "PP": true, "RS": true, "RE": true, "nf": true, "fi": true, "nh": true, "ad": true, "sp": true}
	for _, l := range strings.Split(page, "\n") {
		if strings.HasPrefix(l, ".\\\"") {
			continue
		}
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			if f := strings.Fields(l[1:]); len(f) == 0 || !requests[f[0]] {
				t.Errorf("stray request line %q", l)
			}
		}
	}
}

// TestRoffEscape: backslashes, hyphens and a leading period are escaped.
func TestRoffEscape(t *testing.T) {
	for in, want := range map[string]string{`a\b`: `a\eb`, "--dir": `\-\-dir`, ".hidden": `\&.hidden`, "'q": `\&'q`} {
		if got := roffEscape(in); got != want {
			t.Errorf("roffEscape(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestHelpForEveryCommand: `swrap help CMD` prints each command's help
// (with its flags where it has some), and fails for an unknown one.
func TestHelpForEveryCommand(t *testing.T) {
	for _, c := range commands {
		var out, errOut bytes.Buffer
		if rc := cmdHelp([]string{c.name}, &out, &errOut); rc != 0 || !strings.HasPrefix(out.String(), "Usage:") {
			t.Errorf("swrap help %s: %d %q %q", c.name, rc, out.String(), errOut.String())
		}
		if c.flags != nil && !strings.Contains(out.String(), "\nFlags:\n  -dir") {
			t.Errorf("swrap help %s shows no flags: %q", c.name, out.String())
		}
	}
	var out, errOut bytes.Buffer
	if rc := cmdHelp([]string{"nosuch"}, &out, &errOut); rc != 2 {
		t.Errorf("swrap help nosuch: %d", rc)
	}
}

// TestFindShimInstalled: the shim is found next to swrap, else in the
// installed ../lib/TRIPLET, and the broker in the shim's swrap/.
func TestFindShimInstalled(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(root, "bin")
	lib := filepath.Join(root, "lib", libTriplets[runtime.GOARCH])
	if libTriplets[runtime.GOARCH] == "" {
		lib = filepath.Join(root, "lib")
	}
	for _, d := range []string{bin, filepath.Join(lib, "swrap")} {
		os.MkdirAll(d, 0o755)
	}
	if _, err := findShim(bin); err == nil {
		t.Errorf("findShim found a shim in an empty tree")
	}
	os.WriteFile(filepath.Join(lib, "libswrap.so"), nil, 0o644)
	os.WriteFile(filepath.Join(lib, "swrap", "swrap-broker"), nil, 0o755)
	shim, err := findShim(bin)
	if err != nil || shim != filepath.Join(lib, "libswrap.so") {
		t.Fatalf("findShim = %q, %v", shim, err)
	}
	t.Setenv("SWRAP_BROKER", "")
	t.Setenv("PATH", "")
	if b, err := findBroker(bin, filepath.Dir(shim)); err != nil || b != filepath.Join(lib, "swrap", "swrap-broker") {
		t.Errorf("findBroker = %q, %v", b, err)
	}
	os.WriteFile(filepath.Join(bin, "libswrap.so"), nil, 0o644)
	if shim, _ := findShim(bin); shim != filepath.Join(bin, "libswrap.so") {
		t.Errorf("findShim prefers %q to the one next to swrap", shim)
	}
}
