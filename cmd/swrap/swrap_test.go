package main

import (
	"strings"
	"testing"
)

func TestTCPDirCountsEachByteOnce(t *testing.T) {
	var d tcpDir
	isn := uint32(0xfffffff0)
	d.started, d.nextSeq = true, isn+1 // after a SYN at isn
	d.add(isn+1, 100)                  // wraps past 2^32
	d.add(isn+1, 100)                  // a retransmission
	d.add(isn+51, 100)                 // overlaps: 50 new bytes
	d.add(isn+151, 0)                  // a pure ACK
	if d.bytes != 150 {
		t.Errorf("bytes = %d, want 150", d.bytes)
	}
}

func TestPrependPreload(t *testing.T) {
	for _, c := range []struct{ cur, want string }{
		{"", "/x/libswrap.so"},
		{"/y/a.so", "/x/libswrap.so:/y/a.so"},
		{"/y/a.so /x/libswrap.so", "/y/a.so /x/libswrap.so"},
	} {
		if got := prependPreload(c.cur, "/x/libswrap.so"); got != c.want {
			t.Errorf("prependPreload(%q) = %q, want %q", c.cur, got, c.want)
		}
	}
}

func TestSetEnv(t *testing.T) {
	env := setEnv([]string{"A=1", "B=2", "A=3"}, "A", "4")
	if strings.Join(env, " ") != "B=2 A=4" {
		t.Errorf("setEnv: %q", env)
	}
	if env := setEnv(env, "A", ""); strings.Join(env, " ") != "B=2" {
		t.Errorf("setEnv empty: %q", env)
	}
}

// TestParseFilter: the extcap capture filter's terms, and what it refuses.
func TestParseFilter(t *testing.T) {
	h, p, err := parseFilter("host 10 or host 11 and port 53")
	if err != nil || len(h) != 2 || h[0] != 10 || h[1] != 11 || len(p) != 1 || p[0] != 53 {
		t.Errorf("got hosts %v ports %v, %v", h, p, err)
	}
	for _, bad := range []string{"host", "host 10 or", "tcp port 80", "host 99", "port 0", "host 10 xor host 11", "net 10"} {
		if _, _, err := parseFilter(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
