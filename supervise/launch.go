package supervise

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// HelperArg, as the first argument of this binary, makes it the helper that
// installs the filter and execs the program (see Helper).
const HelperArg = "__swrap-seccomp-exec"

// The helper's two pipes, as ExtraFiles: it reports the listener's fd
// number on the first and waits on the second until the supervisor has
// taken the listener.
const (
	helperReportFD = 3
	helperGoFD     = 4
)

// Helper is the helper's main: os.Args is [self, HelperArg, PATH, ARGV...].
// It installs the filter on this thread, tells the supervisor the
// listener's number, waits until the supervisor holds it, and execs PATH
// on this same thread, so the program and everything it starts run under
// the filter. It never returns; it exits 126 when the filter cannot be
// installed (the program never runs unwrapped) and 127 when PATH cannot be
// executed.
func Helper() {
	if len(os.Args) < 4 || os.Args[1] != HelperArg {
		fmt.Fprintln(os.Stderr, "swrap: internal error: bad helper arguments")
		os.Exit(126)
	}
	path, argv := os.Args[2], os.Args[3:]
	// The filter is per thread until exec, which keeps only this one.
	runtime.LockOSThread()
	report := os.NewFile(helperReportFD, "report")
	goAhead := os.NewFile(helperGoFD, "go")
	unix.CloseOnExec(helperReportFD)
	unix.CloseOnExec(helperGoFD)
	fd, err := installFilter()
	if err != nil {
		fmt.Fprintf(os.Stderr, "swrap: cannot put %s under seccomp user notification, not running it: %v\n", path, err)
		os.Exit(126)
	}
	// From here on, only calls the filter lets through: write, read, close, execve.
	if _, err := report.Write([]byte(strconv.Itoa(fd) + "\n")); err != nil {
		os.Exit(126)
	}
	var b [1]byte
	if n, _ := goAhead.Read(b[:]); n != 1 {
		os.Exit(126) // the supervisor gave up: do not run unsupervised
	}
	unix.Close(fd)
	err = syscall.Exec(path, argv, os.Environ())
	fmt.Fprintf(os.Stderr, "swrap run: exec %s: %v\n", path, err)
	os.Exit(127)
}

// Command returns the command that runs path (argv, env) under the filter,
// through the helper. Start it, then call Attach with it.
func (s *Supervisor) Command(path string, argv, env []string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	rr, rw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	gr, gw, err := os.Pipe()
	if err != nil {
		rr.Close()
		rw.Close()
		return nil, err
	}
	cmd := &exec.Cmd{Path: self, Args: append([]string{self, HelperArg, path}, argv...), Env: env,
		ExtraFiles: []*os.File{rw, gr}}
	s.pending = &pendingHelper{report: rr, reportW: rw, goR: gr, goW: gw}
	return cmd, nil
}

type pendingHelper struct {
	report, reportW, goR, goW *os.File
}

// Attach takes the listener from the started helper cmd and starts
// serving its notifications. On error the helper is told to give up, so
// the program never runs unsupervised.
func (s *Supervisor) Attach(cmd *exec.Cmd) error {
	p := s.pending
	s.pending = nil
	if p == nil {
		return errors.New("supervise: Attach without Command")
	}
	p.reportW.Close()
	p.goR.Close()
	defer p.report.Close()
	defer p.goW.Close()
	// One line: the helper keeps the pipe open until it execs.
	line, err := bufio.NewReader(io.LimitReader(p.report, 32)).ReadString('\n')
	if err != nil {
		return errors.New("supervise: the helper could not install the seccomp filter")
	}
	n, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return errors.New("supervise: the helper could not install the seccomp filter")
	}
	pidfd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
	if err != nil {
		return fmt.Errorf("supervise: pidfd_open: %w", err)
	}
	defer unix.Close(pidfd)
	lfd, err := unix.PidfdGetfd(pidfd, n, 0)
	if err != nil {
		return fmt.Errorf("supervise: pidfd_getfd (the listener): %w", err)
	}
	unix.CloseOnExec(lfd)
	s.listener = lfd
	go s.serve()
	if _, err := p.goW.Write([]byte{1}); err != nil {
		return err
	}
	return nil
}

// Unsupported says why Supported is false.
const Unsupported = "seccomp user notification is implemented for linux/amd64 only"

// Supported reports whether this build can supervise programs (the
// filter and the message layouts are x86-64's).
func Supported() bool { return runtime.GOOS == "linux" && runtime.GOARCH == "amd64" }
