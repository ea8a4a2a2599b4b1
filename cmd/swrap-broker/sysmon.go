package main

import (
	"os"
	"strings"
	"syscall"
)

// quietSysmon is the GODEBUG setting the broker runs with: it keeps the Go
// runtime's sysmon thread out of its deep sleep.
//
// Why: the broker's work comes in short bursts (one frame, one control
// message) between idle moments, and on its one P (see --procs) every idle
// moment lets sysmon sleep on a note; the next system call then wakes it
// (entersyscall) with a futex, and it ticks at 20 µs for a while, each
// wake-up a context switch or an IPI that also takes CPU from the wrapped
// programs. With schedtrace set, sysmon never deep-sleeps and settles at one
// tick per 10 ms. Measured on 2 vCPUs (bench/rtt.c, bench/cac.c): 1-byte
// TCP round trip 140 -> 84 µs, connect+accept+close 455 -> 320 µs.
//
// The period is the largest the runtime accepts (about 24.8 days), so the
// trace line it exists for is printed at most once per that period (and
// once at start on a machine up for longer than that).
const quietSysmon = "schedtrace=2147483647"

// reexecQuietSysmon re-executes the broker with quietSysmon added to
// GODEBUG, which the runtime reads only at start. It returns if GODEBUG
// already sets schedtrace (so GODEBUG=schedtrace=0 opts out) or if exec
// fails; on success it does not return.
func reexecQuietSysmon() {
	cur := os.Getenv("GODEBUG")
	if strings.Contains(cur, "schedtrace=") {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	val := quietSysmon
	if cur != "" {
		val = cur + "," + quietSysmon
	}
	// Replace GODEBUG rather than append: the runtime reads the first.
	env := []string{"GODEBUG=" + val}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			env = append(env, kv)
		}
	}
	syscall.Exec(exe, os.Args, env)
}
