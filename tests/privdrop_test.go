package tests

// Programs that change uid (issue 9, point 3): a wrapped server started as
// root that drops to nobody keeps the network, in the children it forks
// afterwards too; a process of another user that was never part of the
// wrapped tree is refused, with one line on stderr saying why.

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swrap/swrap/broker"
	"github.com/swrap/swrap/swrapnet"
	"github.com/swrap/swrap/wire"
)

// needRoot skips outside CI when the test cannot change uid; CI runs as root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root (CI runs the suite as root)")
	}
	t.Skip("needs root: it drops privileges")
}

// TestPrivDropKeepsNetwork runs tests/testdata/privdrop.c wrapped as root on
// host 10, as nginx runs: the master listens and forks a worker, the worker
// (its control connections closed by the fork) drops to nobody, optionally
// after chroot() to an empty directory (as sshd's privilege-separated child
// does), through libc or raw syscall(); or the master drops itself, its
// pooled control connections still open (inproc). Then the worker accepts a
// connection from host 11, sets TCP_NODELAY and SO_KEEPALIVE on it, echoes
// 1 MiB intact (SHA-256), opens a new socket to host 12, and forks a child
// that opens one too. The broker's STATUS lists both outbound connections
// with the pids of the worker and of its child, and nothing is refused.
// One case forks 16 children at once, which all get their connections
// through the one ticket they share with the worker.
func TestPrivDropKeepsNetwork(t *testing.T) {
	needRoot(t)
	bin := buildTestdataC(t, "privdrop")
	for _, c := range []struct {
		name, mode string
		chroot     bool
		children   int
	}{
		{"libc", "libc", false, 1},
		{"libc-chroot", "libc", true, 1},
		{"syscall-chroot", "syscall", true, 1},
		{"inproc-chroot", "inproc", true, 1},
		// 16 children at once share their parent's ticket.
		{"libc-16-children", "libc", false, 16},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := swrapDir(t)
			requireShimActive(t, dir, bin)
			h11, err := swrapnet.Join(dir, 11)
			if err != nil {
				t.Fatal(err)
			}
			h12, err := swrapnet.Join(dir, 12)
			if err != nil {
				t.Fatal(err)
			}
			ln, err := h12.Listen("tcp", "127.0.0.12:9012")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			// Host 12 keeps the two connections open until the status
			// has been checked, then closes them: the worker and its
			// child read EOF and exit.
			lines := make(chan string, 1+c.children)
			var mu sync.Mutex
			var conns []net.Conn
			go func() {
				for i := 0; i < 1+c.children; i++ {
					cn, err := ln.Accept()
					if err != nil {
						return
					}
					mu.Lock()
					conns = append(conns, cn)
					mu.Unlock()
					go func() {
						l, _ := bufio.NewReader(cn).ReadString('\n')
						lines <- strings.TrimSpace(l)
					}()
				}
			}()
			closeConns := func() {
				mu.Lock()
				defer mu.Unlock()
				for _, cn := range conns {
					cn.Close()
				}
			}
			defer closeConns()

			args := []string{"server", "8010", "127.0.0.12", "9012", c.mode}
			if c.chroot {
				args = append(args, t.TempDir())
			}
			ctx := testCtx(t, 60*time.Second)
			env := wrapEnv(t, dir, 10, fmt.Sprintf("PRIVDROP_CHILDREN=%d", c.children))
			p := startProc(t, newCmd(ctx, env, bin, args...), false)
			p.expectLine(t, "listening")
			p.expectLine(t, "dropped 65534 65534")

			conn, err := h11.Dial("tcp", "127.0.0.10:8010")
			if err != nil {
				t.Fatalf("dial the dropped worker: %v\n%s", err, p.describe())
			}
			data := make([]byte, 1<<20)
			rng := rand.New(rand.NewPCG(9, 3))
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			go func() {
				conn.Write(data)
				conn.(*swrapnet.Conn).CloseWrite()
			}()
			conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			back, err := io.ReadAll(conn)
			conn.Close()
			if err != nil || sha256.Sum256(back) != sha256.Sum256(data) {
				t.Fatalf("echo through the dropped worker: %d of %d bytes, intact=%v, err %v\n%s",
					len(back), len(data), sha256.Sum256(back) == sha256.Sum256(data), err, p.describe())
			}

			var pids string
			select {
			case pids = <-p.stdout.lines:
			case <-time.After(20 * time.Second):
				t.Fatalf("no pids line: %s", p.describe())
			}
			f := strings.Fields(pids)
			if len(f) != 2+c.children || f[0] != "pids" {
				t.Fatalf("printed %q: %s", pids, p.describe())
			}
			var pidList []uint32
			want := map[string]bool{}
			for i, s := range f[1:] {
				pid := uint32(atoi(s))
				pidList = append(pidList, pid)
				if i == 0 {
					want[fmt.Sprintf("worker %d", pid)] = true
				} else {
					want[fmt.Sprintf("child %d", pid)] = true
				}
			}
			got := map[string]bool{}
			for i := 0; i < 1+c.children; i++ {
				select {
				case l := <-lines:
					got[l] = true
				case <-time.After(20 * time.Second):
					t.Fatalf("host 12 got %v, want the worker's and the children's lines: %s", got, p.describe())
				}
			}
			for w := range want {
				if !got[w] {
					t.Fatalf("host 12 got %v, want %v", got, want)
				}
			}
			// Sockets the dropped processes made are the broker's,
			// under their own pids (HELLO on connections they got
			// through their ticket).
			st, err := shimStatus(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, pid := range pidList {
				ok := false
				for _, s := range st.Sockets {
					if s.PID == pid && s.Host == 10 && s.TCP == "ESTABLISHED" && s.Remote == "127.0.0.12:9012" {
						ok = true
					}
				}
				if !ok {
					t.Errorf("STATUS lists no connection to 127.0.0.12:9012 of pid %d: %+v", pid, st.Sockets)
				}
			}
			closeConns()
			p.mustSucceed(t, 20*time.Second)
			if !strings.HasSuffix(p.stdout.String(), "done\n") {
				t.Errorf("worker did not finish: %s", p.describe())
			}
			if s := p.stderr.String(); s != "" {
				t.Errorf("stderr not empty: %q", s)
			}
		})
	}
}

// TestPrivDropStrangerRefused runs tests/testdata/privdrop.c as uid nobody
// against a broker of root's, with a SOCKET_WRAPPER_DIR that nobody may
// use (mode 0777). Three socket() calls fail with EACCES (socket(2)'s "not
// permitted to create a socket", what the directory's permissions give),
// and stderr has exactly one line that names the process's uid, the owner
// of the broker's directory and that the process holds no connection of
// the wrapped tree. Cases:
//   - stranger: setpriv (not wrapped) switches to nobody and execs the
//     wrapped program: connect() to broker.sock fails (0700 directory);
//   - hello refused: the broker's directory and socket are opened to all,
//     so the connection gets through and the broker's SO_PEERCRED check
//     answers HELLO with EACCES; its log says why;
//   - exec after drop: setpriv itself is wrapped (it takes a ticket before
//     setresuid), but the ticket is close-on-exec: the program it execs as
//     nobody is refused alike (a documented limitation).
func TestPrivDropStrangerRefused(t *testing.T) {
	needRoot(t)
	setpriv := needTool(t, "setpriv")
	bin := buildTestdataC(t, "privdrop")
	for _, c := range []string{"stranger", "hello refused", "exec after drop"} {
		t.Run(strings.ReplaceAll(c, " ", "-"), func(t *testing.T) {
			dir := swrapDir(t)
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			b := startBroker(t, dir)
			// nobody must be able to run the program: t.TempDir() is 0700.
			prog := filepath.Join(dir, "privdrop")
			if data, err := os.ReadFile(bin); err != nil || os.WriteFile(prog, data, 0o755) != nil {
				t.Fatalf("copying %s: %v", bin, err)
			}
			sub := filepath.Join(dir, "swrap")
			if c == "hello refused" {
				if err := os.Chmod(sub, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(filepath.Join(sub, "broker.sock"), 0o777); err != nil {
					t.Fatal(err)
				}
			}
			wrapped := wrapEnv(t, dir, 10)
			drop := []string{"--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"}
			var cmdEnv []string
			var args []string
			if c == "exec after drop" {
				cmdEnv = wrapped
				args = append(drop, prog, "stranger", "3")
			} else {
				// setpriv runs unwrapped; env puts the shim on the
				// program it execs as nobody.
				cmdEnv = cleanEnv()
				args = append(append(drop, "env"), wrapped...)
				args = append(args, prog, "stranger", "3")
			}
			out, stderr, err := runCmd(newCmd(testCtx(t, 30*time.Second), cmdEnv, setpriv, args...))
			if err != nil {
				t.Fatalf("%v\nstdout %q\nstderr %q", err, out, stderr)
			}
			if out != "13\n13\n13\n" {
				t.Errorf("socket() results %q, want EACCES (13) three times", out)
			}
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if len(lines) != 1 {
				t.Errorf("stderr has %d lines, want exactly one: %q", len(lines), stderr)
			}
			for _, want := range []string{"access refused", "runs as uid 65534", sub + " is owned by uid 0",
				"holds no connection of the wrapped tree"} {
				if !strings.Contains(lines[0], want) {
					t.Errorf("stderr %q does not say %q", lines[0], want)
				}
			}
			if c == "hello refused" {
				b.stop()
				if log := b.log.String(); !strings.Contains(log, "refused control connection") ||
					!strings.Contains(log, "peer_uid=65534") {
					t.Errorf("broker log does not say why it refused:\n%s", log)
				}
			}
		})
	}
}

// TestNewCtl drives NEWCTL on the real broker: on a connection that has not
// done HELLO it is EPROTO, with a body EINVAL; otherwise the reply carries
// a SOCK_SEQPACKET fd that needs its own HELLO (EPROTO before it) and then
// serves SOCKET like any control connection, still after the connection it
// came from is closed; STATUS counts it.
func TestNewCtl(t *testing.T) {
	dir := swrapDir(t)
	startBroker(t, dir)
	path := filepath.Join(dir, "swrap", "broker.sock")
	c := rawCtl(t, path)
	if r, _ := c.call(t, wire.OpNewCtl, nil); r.Err != syscall.EPROTO {
		t.Errorf("NEWCTL before HELLO: %v, want EPROTO", r.Err)
	}
	c.hello(t)
	if r, fd := c.call(t, wire.OpNewCtl, []byte{1}); r.Err != syscall.EINVAL || fd >= 0 {
		t.Errorf("NEWCTL with a body: %v fd %d, want EINVAL and no fd", r.Err, fd)
	}
	r, fd := c.call(t, wire.OpNewCtl, nil)
	if r.Err != 0 || fd < 0 {
		t.Fatalf("NEWCTL: %v fd %d", r.Err, fd)
	}
	if typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_SEQPACKET {
		t.Errorf("NEWCTL fd type %d, %v; want SOCK_SEQPACKET", typ, err)
	}
	unix.Close(c.fd) // the new connection does not depend on it
	n := &ctlFD{fd: fd}
	n.timeout()
	sock := wire.Socket{Family: 2, Type: 1, Iface: 10}.Encode()
	if r, _ := n.call(t, wire.OpSocket, sock); r.Err != syscall.EPROTO {
		t.Errorf("SOCKET before HELLO on the new connection: %v, want EPROTO", r.Err)
	}
	n.hello(t)
	r, sfd := n.call(t, wire.OpSocket, sock)
	if r.Err != 0 || sfd < 0 {
		t.Fatalf("SOCKET on the new connection: %v fd %d", r.Err, sfd)
	}
	unix.Close(sfd)
	r, _ = n.call(t, wire.OpStatus, nil)
	var st broker.Status
	if err := json.Unmarshal(r.Body, &st); err != nil || st.ControlConns < 1 {
		t.Errorf("STATUS on the new connection: %v, control_connections %d", err, st.ControlConns)
	}
	unix.Close(fd)
}

// ctlFD is a raw control connection for protocol tests.
type ctlFD struct{ fd int }

func rawCtl(t *testing.T, path string) *ctlFD {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	c := &ctlFD{fd: fd}
	c.timeout()
	return c
}

func (c *ctlFD) timeout() {
	unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5})
}

// call sends one request and returns the reply and the fd it carried (-1).
func (c *ctlFD) call(t *testing.T, op wire.Op, body []byte) (wire.Reply, int) {
	t.Helper()
	if _, err := retryEINTR(func() (int, error) {
		return len(body), unix.Sendmsg(c.fd, wire.AppendRequest(nil, op, 0, body), nil, nil, 0)
	}); err != nil {
		t.Fatalf("%v: send: %v", op, err)
	}
	buf := make([]byte, wire.MaxMessage)
	oob := make([]byte, unix.CmsgSpace(4))
	var n, oobn int
	_, err := retryEINTR(func() (int, error) {
		var err error
		n, oobn, _, _, err = unix.Recvmsg(c.fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		return n, err
	})
	if err != nil {
		t.Fatalf("%v: no reply: %v", op, err)
	}
	r, err := wire.ParseReply(buf[:n])
	if err != nil || r.Op != op {
		t.Fatalf("%v: reply %+v, %v", op, r, err)
	}
	fd := -1
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) > 0 {
		if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil && len(fds) > 0 {
			fd = fds[0]
		}
	}
	return r, fd
}

func (c *ctlFD) hello(t *testing.T) {
	t.Helper()
	if r, _ := c.call(t, wire.OpHello, wire.Hello{PID: uint32(os.Getpid()), Iface: 10, Comm: "newctl"}.Encode()); r.Err != 0 {
		t.Fatalf("HELLO: %v", r.Err)
	}
}

// TestCLIRefusedUser runs `swrap status` and `swrap link show` as nobody
// against root's broker: each fails saying that the broker belongs to uid 0
// and refuses uid 65534, not that no broker runs.
func TestCLIRefusedUser(t *testing.T) {
	needRoot(t)
	setpriv := needTool(t, "setpriv")
	dir := swrapDir(t)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	startBroker(t, dir)
	swrap := binPath(t, "swrap")
	for _, args := range [][]string{{"status"}, {"link", "show"}} {
		argv := append([]string{"--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", swrap}, args...)
		argv = append(argv, "--dir", dir)
		out, stderr, err := runCmd(newCmd(testCtx(t, 20*time.Second), cleanEnv(), setpriv, argv...))
		want := "the broker of " + dir + " belongs to uid 0 and refuses this user (uid 65534)"
		if err == nil || !strings.Contains(stderr, want) {
			t.Errorf("swrap %v as nobody: %v, stdout %q, stderr %q; want a failure saying %q", args, err, out, stderr, want)
		}
	}
}
