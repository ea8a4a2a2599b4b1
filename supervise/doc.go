// Package supervise puts programs that LD_PRELOAD cannot reach (static
// binaries, Go programs) on the emulated network through seccomp user
// notification (SECCOMP_RET_USER_NOTIF).
//
// A helper (this binary re-executed with HelperArg) installs a filter on
// its own thread and execs the program; the filter is inherited by every
// thread, fork and exec of the program's tree. The filter stops only the
// calls that need the broker: socket() for AF_INET/AF_INET6, the calls
// that take or return addresses or socket state, sendto/recvfrom only when
// an address is given, and the message calls. read, write, readv, writev,
// poll and epoll are never stopped: a wrapped socket is a unix socket whose
// peer is the broker, so they work on it as they are.
//
// The supervisor is the process that started the helper (swrap run): it
// holds the listener, reads and writes the callers' memory with
// process_vm_readv/writev and takes their descriptors with pidfd_getfd,
// all of which need ptrace-level access, which Yama grants to ancestors.
// The broker is not the program's ancestor (any wrapped process may have
// started it), so it cannot be the supervisor. For each stopped call the
// supervisor takes the descriptor, recognises a wrapped socket by the
// abstract name of its app end (as the shim does), and either answers the
// call with the broker's operations (wire) and installs new descriptors
// with SECCOMP_IOCTL_NOTIF_ADDFD, or lets it continue in the kernel
// (SECCOMP_USER_NOTIF_FLAG_CONTINUE). A call the broker answers at once
// (setsockopt, getsockname, getpeername) is served on the receiving loop;
// every other by a goroutine of its own, so no caller waits for another's
// connect or accept. A setsockopt Linux cannot refuse (TCP_NODELAY and
// the keep-alive options that Go sets on every connection) is sent
// without waiting for the broker's reply, as the shim does; a process's
// next request waits until the broker has confirmed it (wire.OpServed),
// so that its requests stay in order.
package supervise
