package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunWarnsUnwrappable: `swrap run` no longer warns when CMD (looked up
// on PATH) is statically linked (static or static-pie, built with gcc
// here) or a Go program (built with go here): it wraps it through seccomp
// (supervise/) and exits with its status. Nothing gets a warning (on
// linux/amd64, where the seccomp path exists), and a file that is not ELF
// gets exec's error.
func TestRunWarnsUnwrappable(t *testing.T) {
	gcc := needTool(t, "gcc")
	gotool := needTool(t, "go")
	bindir := t.TempDir()
	src := filepath.Join(repoRoot, "tests", "testdata", "exitcode.c")
	for name, flags := range map[string][]string{
		"static-c":     {"-static"},
		"static-pie-c": {"-static-pie"},
		"dynamic-c":    nil,
	} {
		args := append([]string{"-Wall", "-Wextra", "-Werror", "-O1"}, flags...)
		args = append(args, "-o", filepath.Join(bindir, name), src)
		if b, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
			t.Fatalf("gcc %s: %v\n%s", strings.Join(args, " "), err, b)
		}
	}
	// A Go program of its own module, built without cgo: statically linked
	// too, but what it is told as is a Go program.
	gosrc := t.TempDir()
	if err := os.WriteFile(filepath.Join(gosrc, "go.mod"), []byte("module goprog\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	main := "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() {\n\tfmt.Printf(\"%s ran\\n\", os.Args[0])\n\tos.Exit(4)\n}\n"
	if err := os.WriteFile(filepath.Join(gosrc, "main.go"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	gobuild := exec.Command(gotool, "build", "-o", filepath.Join(bindir, "go-prog"), ".")
	gobuild.Dir = gosrc
	gobuild.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local")
	if b, err := gobuild.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	if err := os.WriteFile(filepath.Join(bindir, "script"), []byte("#!/bin/sh\necho \"$0 ran\"\nexit 6\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bindir, "not-elf"), []byte("\x7fELF but not really\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	const static, goprog = "", "" // wrapped through seccomp: no warning
	env := append(cleanEnv(), "PATH="+bindir+":"+os.Getenv("PATH"))
	for _, c := range []struct {
		args []string // after "swrap run"
		warn string   // the reason, "" for none
		out  string   // the program's own output
		code int
	}{
		{[]string{"--", "static-c"}, static, "static-c ran\n", 3},
		{[]string{"--", "static-pie-c"}, static, "static-pie-c ran\n", 3},
		{[]string{"--", "go-prog"}, goprog, "go-prog ran\n", 4},
		// With --dir too.
		{[]string{"--dir", swrapDir(t), "--", "static-c"}, static, "static-c ran\n", 3},
		{[]string{"--", "dynamic-c"}, "", "dynamic-c ran\n", 3},
		{[]string{"--", "true"}, "", "", 0},
		{[]string{"--", "script"}, "", filepath.Join(bindir, "script") + " ran\n", 6},
	} {
		name := strings.Join(c.args, " ")
		// One pipe for stdout and stderr: the order shows the warning
		// comes before the program runs.
		out, code := runCombined(t, env, append([]string{"run"}, c.args...)...)
		want := c.out
		if c.warn != "" {
			want = "swrap: warning: " + filepath.Join(bindir, c.args[len(c.args)-1]) + " " + c.warn + c.out
		}
		if out != want || code != c.code {
			t.Errorf("swrap run %s: exit %d, output\n%q\nwant exit %d, output\n%q", name, code, out, c.code, want)
		}
	}
	// Not ELF after all: exec's own error, no warning.
	out, code := runCombined(t, env, "run", "--", "not-elf")
	if code == 0 || strings.Contains(out, "warning") || !strings.Contains(out, "exec format error") {
		t.Errorf("swrap run -- not-elf: exit %d, output %q; want exec's error and no warning", code, out)
	}
}

// runCombined runs bin/swrap with args in env, its stdout and stderr on one
// pipe, and returns what it wrote and its exit status.
func runCombined(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binPath(t, "swrap"), args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	cmd.Wait()
	return out.String(), cmd.ProcessState.ExitCode()
}
