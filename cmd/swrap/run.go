package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swrap/swrap/addrplan"
	"github.com/swrap/swrap/supervise"
	"github.com/swrap/swrap/wire"
)

// runOptions are the flags of `swrap run`.
type runOptions struct {
	iface   int
	dir     string
	pcap    string
	network string
	mtu     int
	seccomp bool
}

// runHelp is the help of `swrap run`, before its flags.
const runHelp = `Usage: swrap run [flags] [--] CMD [ARGS...]

Runs CMD under the swrap preload shim, as emulated host N. Its children are
wrapped too. The broker that serves the directory is started on demand by
the first socket. With no --dir (and no SOCKET_WRAPPER_DIR), the network is
private to CMD: it lives in a temporary directory that is removed, together
with its broker, when CMD exits. Signals are forwarded to CMD, and swrap
exits with CMD's status.

A statically linked program or a Go program ignores LD_PRELOAD: swrap run
wraps such a CMD through seccomp user notification instead, with swrap run
itself as the supervisor (it stays CMD's parent). --seccomp (or
SWRAP_SECCOMP=1) does that for any CMD and its whole tree, which is what a
shell script that starts Go or static programs needs.
`

// runFlags declares the flags of `swrap run`, with defaults taken from the
// socket_wrapper environment variables.
func runFlags(out io.Writer) (*flag.FlagSet, *runOptions) {
	o := &runOptions{}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(out)
	defIface := 1
	if n, err := strconv.Atoi(os.Getenv("SOCKET_WRAPPER_DEFAULT_IFACE")); err == nil && addrplan.ValidHost(n) {
		defIface = n
	}
	defMTU, _ := strconv.Atoi(os.Getenv("SOCKET_WRAPPER_MTU"))
	fs.IntVar(&o.iface, "iface", defIface, "the emulated host `N` (1..64) CMD runs as: 127.0.0.N, fd00::5357:5fNN (SOCKET_WRAPPER_DEFAULT_IFACE)")
	fs.StringVar(&o.dir, "dir", os.Getenv("SOCKET_WRAPPER_DIR"), "the network's `directory` (SOCKET_WRAPPER_DIR); programs sharing it share a network.\nWithout it, a fresh temporary directory is made, and it and its broker are removed when CMD exits")
	fs.StringVar(&o.pcap, "pcap", os.Getenv("SOCKET_WRAPPER_PCAP_FILE"), "append every frame to this pcap `file` (SOCKET_WRAPPER_PCAP_FILE)")
	fs.StringVar(&o.network, "network", os.Getenv("SOCKET_WRAPPER_IPV4_NETWORK"), "IPv4 network: 127.0.0.0 (default) or 10.53.57.0 (SOCKET_WRAPPER_IPV4_NETWORK)")
	fs.BoolVar(&o.seccomp, "seccomp", envTrue(os.Getenv("SWRAP_SECCOMP")), "wrap CMD and everything it runs through seccomp user notification instead of LD_PRELOAD (SWRAP_SECCOMP=1);\nautomatic for a static or Go CMD")
	fs.IntVar(&o.mtu, "mtu", defMTU, "the fabric's IP MTU, 1280..65535 (SOCKET_WRAPPER_MTU; 0: the broker's default, 65535)")
	fs.Usage = func() {
		fmt.Fprint(out, runHelp, "\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs, o
}

// cmdRun implements `swrap run`.
func cmdRun(args []string, stderr io.Writer) error {
	fs, o := runFlags(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	argv := fs.Args()
	if len(argv) == 0 {
		fmt.Fprintln(stderr, "swrap run: no command given (swrap run [flags] -- CMD [ARGS...])")
		return errUsage
	}
	if !addrplan.ValidHost(o.iface) {
		return fmt.Errorf("run: --iface %d out of range 1..%d", o.iface, addrplan.MaxHost)
	}
	if _, err := addrplan.New(o.network); err != nil {
		return fmt.Errorf("run: --network: %v", err)
	}
	if o.mtu != 0 && (o.mtu < 1280 || o.mtu > 65535) {
		return fmt.Errorf("run: --mtu %d out of range 1280..65535", o.mtu)
	}
	self, err := selfDir()
	if err != nil {
		return fmt.Errorf("run: %v", err)
	}
	shim, err := findShim(self)
	if err != nil {
		return fmt.Errorf("run: %v", err)
	}
	brokerBin, err := findBroker(self, filepath.Dir(shim))
	if err != nil {
		return fmt.Errorf("run: %v", err)
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		fmt.Fprintf(stderr, "swrap run: %v\n", err)
		return exitError(127)
	}
	why := unwrappableFile(path)
	useSeccomp := o.seccomp || why != ""
	if useSeccomp && !supervise.Supported() {
		if !o.seccomp {
			warnUnwrappable(path, stderr)
			useSeccomp = false
		} else {
			return fmt.Errorf("run: --seccomp: %s", supervise.Unsupported)
		}
	}

	created := false
	if o.dir == "" {
		if o.dir, err = os.MkdirTemp("", "swrap-"); err != nil {
			return fmt.Errorf("run: %v", err)
		}
		created = true
	} else if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return fmt.Errorf("run: --dir: %v", err)
	}
	if o.dir, err = filepath.Abs(o.dir); err != nil {
		return fmt.Errorf("run: --dir: %v", err)
	}
	if o.pcap != "" {
		if o.pcap, err = filepath.Abs(o.pcap); err != nil {
			return fmt.Errorf("run: --pcap: %v", err)
		}
	}

	env := setEnv(os.Environ(), "SOCKET_WRAPPER_DIR", o.dir)
	env = setEnv(env, "SOCKET_WRAPPER_DEFAULT_IFACE", strconv.Itoa(o.iface))
	env = setEnv(env, "SOCKET_WRAPPER_PCAP_FILE", o.pcap)
	env = setEnv(env, "SOCKET_WRAPPER_IPV4_NETWORK", o.network)
	if o.mtu != 0 {
		env = setEnv(env, "SOCKET_WRAPPER_MTU", strconv.Itoa(o.mtu))
	} else {
		env = setEnv(env, "SOCKET_WRAPPER_MTU", "")
	}
	env = setEnv(env, "SWRAP_BROKER", brokerBin)
	if useSeccomp {
		// The whole tree is supervised: the shim must not wrap again.
		env = setEnv(env, "LD_PRELOAD", removePreload(os.Getenv("LD_PRELOAD"), shim))
		env = setEnv(env, "SWRAP_SECCOMP", "1")
		cleanup := ""
		if created {
			cleanup = o.dir
		}
		return runSupervised(path, argv, env, o, brokerBin, cleanup, stderr)
	}
	env = setEnv(env, "LD_PRELOAD", prependPreload(os.Getenv("LD_PRELOAD"), shim))

	if !created {
		// Nothing to clean up afterwards: become CMD.
		err := syscall.Exec(path, argv, env)
		return fmt.Errorf("run: exec %s: %v", path, err)
	}
	return runChild(path, argv, env, o.dir, stderr)
}

// runChild runs CMD as a child, forwarding signals, then stops the broker of
// the private directory dir, removes dir, and exits as CMD did.
func runChild(path string, argv, env []string, dir string, stderr io.Writer) error {
	cmd := &exec.Cmd{Path: path, Args: argv, Env: env}
	return waitChild(cmd, nil, dir, stderr)
}

// runSupervised runs CMD under seccomp user notification, this process
// being the supervisor; cleanup is the private directory to remove after
// ("" none).
func runSupervised(path string, argv, env []string, o *runOptions, brokerBin, cleanup string, stderr io.Writer) error {
	sup, err := supervise.New(supervise.Config{Dir: o.dir, Broker: brokerBin, Pcap: o.pcap, Stderr: stderr})
	if err != nil {
		if cleanup != "" {
			os.RemoveAll(cleanup)
		}
		return fmt.Errorf("run: %v", err)
	}
	defer sup.Close()
	cmd, err := sup.Command(path, argv, env)
	if err != nil {
		return fmt.Errorf("run: %v", err)
	}
	return waitChild(cmd, func() error { return sup.Attach(cmd) }, cleanup, stderr)
}

// waitChild starts cmd with our stdio, calls attach (if not nil) once it
// has started, forwards signals, and waits; then, when dir is not "", it
// stops dir's broker and removes dir. It exits as CMD did.
func waitChild(cmd *exec.Cmd, attach func() error, dir string, stderr io.Writer) error {
	if dir != "" {
		defer os.RemoveAll(dir)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr

	// Signals are forwarded to CMD. SIGINT and SIGQUIT typed at the terminal
	// already reach CMD, which shares our foreground process group, so they
	// are forwarded only when they cannot have come from there.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGHUP,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGALRM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		if dir != "" {
			stopBroker(dir, stderr)
		}
		return fmt.Errorf("run: %v", err)
	}
	if attach != nil {
		if err := attach(); err != nil {
			// The helper gives up without running CMD.
			cmd.Wait()
			if dir != "" {
				stopBroker(dir, stderr)
			}
			return fmt.Errorf("run: %v", err)
		}
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				if (s == syscall.SIGINT || s == syscall.SIGQUIT) && inForeground() {
					continue
				}
				cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	if dir != "" {
		stopBroker(dir, stderr)
		os.RemoveAll(dir)
	}

	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ws, ok := ee.Sys().(syscall.WaitStatus)
		if ok && ws.Signaled() {
			// Die of the same signal, so our caller sees what CMD did.
			sig := ws.Signal()
			signal.Reset(sig)
			syscall.Kill(os.Getpid(), sig)
			time.Sleep(100 * time.Millisecond)
			return exitError(128 + int(sig))
		}
		return exitError(ee.ExitCode())
	}
	if err != nil {
		return fmt.Errorf("run: %v", err)
	}
	return nil
}

// inForeground reports whether stdin is a terminal whose foreground process
// group is ours: then a SIGINT or SIGQUIT most likely came from it.
func inForeground() bool {
	pg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	return err == nil && pg == unix.Getpgrp()
}

// stopBroker terminates the broker serving dir, if one runs, and waits until
// it has exited, so that its capture files are complete.
func stopBroker(dir string, stderr io.Writer) {
	f, err := os.Open(filepath.Join(dir, wire.SubDir, wire.LockFile))
	if err != nil {
		return // no broker was ever started
	}
	defer f.Close()
	fd := int(f.Fd())
	if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil {
		return // nobody holds the lock: no live broker
	}
	b, _ := io.ReadAll(f)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		fmt.Fprintf(stderr, "swrap run: cannot read the broker's pid from %s\n", f.Name())
		return
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		// The lock is released when the broker's process ends; it is not
		// our child, so "ended" also covers a zombie not yet reaped.
		if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil && !processRunning(pid) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Fprintf(stderr, "swrap run: broker %d did not exit within 10 s of SIGTERM; killing it\n", pid)
	syscall.Kill(pid, syscall.SIGKILL)
}

// processRunning reports whether pid exists and is not a zombie.
func processRunning(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	return s[i+2] != 'Z' && s[i+2] != 'X'
}

// selfDir is the directory holding the running swrap binary (symlinks
// resolved), where libswrap.so and swrap-broker are looked for.
func selfDir() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return filepath.Dir(exe), nil
}

// libTriplets names the Debian multiarch directory of each GOARCH, where
// `make install` puts the libraries (LIBDIR = PREFIX/lib/TRIPLET).
var libTriplets = map[string]string{
	"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu", "386": "i386-linux-gnu",
	"arm": "arm-linux-gnueabihf", "ppc64le": "powerpc64le-linux-gnu", "s390x": "s390x-linux-gnu",
	"riscv64": "riscv64-linux-gnu",
}

// findShim locates libswrap.so: next to swrap (the build tree's bin/), else
// in the installed LIBDIR beside swrap's BINDIR (../lib/TRIPLET, ../lib64,
// ../lib).
func findShim(self string) (string, error) {
	cands := []string{filepath.Join(self, "libswrap.so")}
	if t := libTriplets[runtime.GOARCH]; t != "" {
		cands = append(cands, filepath.Join(self, "..", "lib", t, "libswrap.so"))
	}
	cands = append(cands, filepath.Join(self, "..", "lib64", "libswrap.so"), filepath.Join(self, "..", "lib", "libswrap.so"))
	for _, p := range cands {
		if _, err := os.Stat(p); err == nil {
			return filepath.Clean(p), nil
		}
	}
	return "", fmt.Errorf("the preload shim libswrap.so is missing next to swrap (%s) and in its ../lib (build it with make)", self)
}

// findBroker locates swrap-broker: next to swrap, else where the shim
// itself looks (libDir/swrap/, as installed), else $SWRAP_BROKER, else on
// PATH.
func findBroker(self, libDir string) (string, error) {
	for _, p := range []string{filepath.Join(self, "swrap-broker"), filepath.Join(libDir, "swrap", "swrap-broker")} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p := os.Getenv("SWRAP_BROKER"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("swrap-broker")
	if err != nil {
		return "", fmt.Errorf("cannot find swrap-broker next to swrap (%s), in %s or on PATH (build it with make)", self, filepath.Join(libDir, "swrap"))
	}
	return filepath.Abs(p)
}

// prependPreload puts lib first in an LD_PRELOAD list, unless it is already
// in it.
func prependPreload(cur, lib string) string {
	for _, f := range strings.FieldsFunc(cur, func(r rune) bool { return r == ':' || r == ' ' }) {
		if f == lib {
			return cur
		}
	}
	if strings.TrimSpace(cur) == "" {
		return lib
	}
	return lib + ":" + cur
}

// removePreload takes lib out of an LD_PRELOAD list.
func removePreload(cur, lib string) string {
	var keep []string
	for _, f := range strings.FieldsFunc(cur, func(r rune) bool { return r == ':' || r == ' ' }) {
		if f != lib {
			keep = append(keep, f)
		}
	}
	return strings.Join(keep, ":")
}

// envTrue reads a boolean environment variable: set, and not 0/false/no.
func envTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "false", "no", "off":
		return false
	}
	return true
}

// setEnv sets key=value in env (replacing every earlier setting); an empty
// value removes the variable.
func setEnv(env []string, key, value string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	if value != "" {
		out = append(out, key+"="+value)
	}
	return out
}
