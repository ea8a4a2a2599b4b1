package supervise

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// A TCP socket starts as a placeholder: socket() returns a real kernel
// TCP socket of the program's family, never bound nor connected, and the
// broker's socket replaces it (SECCOMP_IOCTL_NOTIF_ADDFD with
// SECCOMP_ADDFD_FLAG_SETFD, at the same descriptor number) at the first
// stopped call that needs the broker (bind, connect, listen, a socket
// option...). read, write, recv, send, ioctl and poll are not stopped: on
// the placeholder they are the kernel's answers for a never-connected TCP
// socket (ENOTCONN, EPIPE with SIGPIPE, POLLOUT|POLLHUP), which the app
// end, a connected unix socket, could not give. The placeholder cannot
// reach the real network: every call that gives it an address is stopped
// (bind, connect, sendto/sendmsg with MSG_FASTOPEN are answered here).
//
// The swap replaces the descriptor in the caller's table, shared by its
// threads. Copies made before it (dup, fork, SCM_RIGHTS) still hold the
// placeholder; their own first stopped call swaps in the same app end,
// taken from where the first swap put it, or a new socket if that copy
// is gone. Until then their data calls are the unconnected socket's, and
// epoll registrations made on the placeholder do not follow the swap.
type holder struct {
	mu     sync.Mutex
	family int
	typ    int // SOCK_STREAM
	proto  int
	id     uint64 // the broker's socket once swapped (0 before)
	tgid   int    // where the first swap installed it
	fd     int
	done   atomic.Bool // id is set
}

// maxHolders bounds the placeholder records kept after their swap.
const maxHolders = 4096

// swapped is read under s.mu, which swap takes while it holds h.mu.
func (h *holder) swapped() bool { return h.done.Load() }

// newPlaceholder makes the placeholder of socket(domain, typ, proto) and
// records it; it returns our copy.
func (s *Supervisor) newPlaceholder(domain, typ, proto int) (int, syscall.Errno) {
	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return -1, err.(syscall.Errno)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, err.(syscall.Errno)
	}
	h := &holder{family: domain, typ: typ &^ (unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC), proto: proto}
	s.mu.Lock()
	if len(s.holders) >= maxHolders {
		// Swapped placeholders are kept only for copies of them that
		// have not been swapped yet, which are rare: forget those
		// (such a copy gets a socket of its own) before the map grows
		// without bound in a long-lived program.
		for ino, o := range s.holders {
			if o.swapped() {
				delete(s.holders, ino)
			}
		}
	}
	s.holders[st.Ino] = h
	s.mu.Unlock()
	return fd, 0
}

// placeholderOf returns the record of our copy fd when it is a placeholder.
func (s *Supervisor) placeholderOf(fd int) *holder {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holders[st.Ino]
}

// fdCloexec reads whether thread tid's descriptor fd is close-on-exec.
func fdCloexec(tid, fd int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%d", tid, fd))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "flags:"); ok {
			f, err := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
			return err == nil && f&unix.O_CLOEXEC != 0
		}
	}
	return false
}

// swap replaces the caller's placeholder (our copy ph, the caller's
// descriptor number cfd) by the broker's socket. It returns our copy of
// the app end, the socket's id, and whether the socket was made for this
// call (so in state NEW).
func (s *Supervisor) swap(n *notif, tid, tgid int, h *holder, ph, cfd int) (int, uint64, bool, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	app, id := -1, uint64(0)
	if h.id != 0 {
		// Swapped already through another copy: the same socket, if
		// its descriptor is still where the first swap put it.
		if fd, err := takeFD(h.tgid, h.fd); err == nil {
			if got, err := s.classify(fd); err == nil && got == h.id {
				app, id = fd, got
			} else {
				unix.Close(fd)
			}
		}
	}
	made := app < 0
	if made {
		nid, fd, en := s.brokerSocket(tgid, h.family, h.typ, h.proto)
		if en != 0 {
			return -1, 0, false, en
		}
		app, id = fd, nid
	}
	// O_NONBLOCK belongs to the open file: the placeholder's (set by
	// socket(), fcntl or FIONBIO) goes over.
	if fl, err := unix.FcntlInt(uintptr(ph), unix.F_GETFL, 0); err == nil {
		unix.SetNonblock(app, fl&unix.O_NONBLOCK != 0)
	}
	if _, err := addFD(s.listener, n.ID, app, cfd, fdCloexec(tid, cfd)); err != nil {
		unix.Close(app)
		if err == unix.ENOENT {
			return -1, 0, false, errGone
		}
		return -1, 0, false, err.(syscall.Errno)
	}
	s.mu.Lock()
	s.socks[id] = sockInfo{family: h.family}
	s.mu.Unlock()
	h.id, h.tgid, h.fd = id, tgid, cfd // the latest copy: still open
	h.done.Store(true)
	return app, id, made, 0
}
