package broker

import (
	"syscall"

	"gvisor.dev/gvisor/pkg/syserr"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// errno returns the Linux errno for a netstack error, using gVisor's own
// table (the one its sentry gives applications), so that wrapped programs
// see what a Linux kernel would return. A nil error is 0.
func errno(err tcpip.Error) syscall.Errno {
	if err == nil {
		return 0
	}
	if _, ok := err.(*tcpip.ErrClosedForReceive); ok {
		return 0
	}
	return syscall.Errno(syserr.TranslateNetstackError(err).ToLinux())
}
