package broker

import (
	"syscall"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
)

func TestErrno(t *testing.T) {
	cases := []struct {
		err  tcpip.Error
		want syscall.Errno
	}{
		{nil, 0},
		{&tcpip.ErrConnectionRefused{}, syscall.ECONNREFUSED},
		{&tcpip.ErrConnectionReset{}, syscall.ECONNRESET},
		{&tcpip.ErrTimeout{}, syscall.ETIMEDOUT},
		{&tcpip.ErrNetworkUnreachable{}, syscall.ENETUNREACH},
		{&tcpip.ErrHostUnreachable{}, syscall.EHOSTUNREACH},
		{&tcpip.ErrPortInUse{}, syscall.EADDRINUSE},
		{&tcpip.ErrBadLocalAddress{}, syscall.EADDRNOTAVAIL},
		{&tcpip.ErrAlreadyBound{}, syscall.EINVAL},
		{&tcpip.ErrConnectStarted{}, syscall.EINPROGRESS},
		{&tcpip.ErrAlreadyConnecting{}, syscall.EALREADY},
		{&tcpip.ErrAlreadyConnected{}, syscall.EISCONN},
		{&tcpip.ErrNotConnected{}, syscall.ENOTCONN},
		{&tcpip.ErrClosedForSend{}, syscall.EPIPE},
		{&tcpip.ErrClosedForReceive{}, 0},
		{&tcpip.ErrBroadcastDisabled{}, syscall.EACCES},
		{&tcpip.ErrMessageTooLong{}, syscall.EMSGSIZE},
		{&tcpip.ErrWouldBlock{}, syscall.EAGAIN},
		{&tcpip.ErrUnknownProtocolOption{}, syscall.ENOPROTOOPT},
		{&tcpip.ErrInvalidOptionValue{}, syscall.EINVAL},
		{&tcpip.ErrNotSupported{}, syscall.EOPNOTSUPP},
	}
	for _, c := range cases {
		if got := errno(c.err); got != c.want {
			t.Errorf("errno(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
