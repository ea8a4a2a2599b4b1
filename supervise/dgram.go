package supervise

import (
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/swrap/swrap/wire"
)

// maxDgram bounds a datagram's payload (UDP's own limit).
const maxDgram = 65535

// iovec is one caller iovec.
type iovec struct{ base, len uint64 }

func (c *call) readIovecs(p uint64, n uint64) ([]iovec, syscall.Errno) {
	if n > 1024 {
		return nil, unix.EMSGSIZE
	}
	b := make([]byte, 16*n)
	if err := readMem(c.tid, p, b); err != nil && n > 0 {
		return nil, unix.EFAULT
	}
	v := make([]iovec, n)
	for i := range v {
		v[i] = iovec{ne.Uint64(b[16*i:]), ne.Uint64(b[16*i+8:])}
	}
	return v, 0
}

// sendDgram sends one datagram (header + payload) on the app end,
// waiting for room unless the socket or flags say not to.
func (c *call) sendDgram(d wire.Dgram, payload []byte, flags int) (int64, syscall.Errno) {
	// UDP's largest payloads: 65535 less the IP and UDP headers.
	if len(payload) > 65507 && c.info.family == unix.AF_INET || len(payload) > 65527 {
		return 0, unix.EMSGSIZE
	}
	if c.broadcastDenied(d.Peer) {
		return 0, unix.EACCES
	}
	msg := append(wire.AppendDgram(nil, d), payload...)
	if peer, ok := c.barePeer(); ok {
		// Connected, bare: only to the peer (see setBare).
		if d.Peer.Family != wire.AFUnspec && d.Peer != peer {
			return 0, unix.EISCONN
		}
		msg = payload
	}
	for {
		_, err := unix.SendmsgN(c.fd, msg, nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN && flags&unix.MSG_DONTWAIT == 0 && !c.nonblocking() {
			if en := c.wait(unix.POLLOUT); en != 0 {
				c.reply = en == errGone
				return 0, en
			}
			continue
		}
		if err != nil {
			return 0, err.(syscall.Errno)
		}
		return int64(len(payload)), 0
	}
}

// broadcastDenied says whether a is a broadcast address (255.255.255.255
// or the network's, as the shim's swrap_addr_is_broadcast) and the socket
// lacks SO_BROADCAST: Linux fails such a send with EACCES before anything
// is sent.
func (c *call) broadcastDenied(a wire.Addr) bool {
	if a.Family != wire.AFInet || !a.IP.Is4() {
		return false
	}
	b := a.IP.As4()
	if b[1] != 255 || b[2] != 255 || b[3] != 255 || (b[0] != 255 && b[0] != planOf(c.tgid).Network4().As4()[0]) {
		return false
	}
	rep, en := c.req(wire.OpGetSockOpt, wire.SockOpt{Level: unix.SOL_SOCKET, Name: unix.SO_BROADCAST, OptLen: 4}.Encode())
	return en == 0 && len(rep.Body) >= 4 && ne.Uint32(rep.Body) == 0
}

// recvDgram receives one datagram from the app end, waiting unless the
// socket or flags say not to. An error message from the broker is its
// errno.
func (c *call) recvDgram(flags int) (wire.Dgram, []byte, syscall.Errno) {
	buf := make([]byte, wire.DgramHeaderSize+maxDgram)
	rf := unix.MSG_DONTWAIT | flags&unix.MSG_PEEK
	for {
		n, _, _, _, err := unix.Recvmsg(c.fd, buf, nil, rf)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN && flags&unix.MSG_DONTWAIT == 0 && !c.nonblocking() {
			if en := c.wait(unix.POLLIN); en != 0 {
				c.reply = en == errGone
				return wire.Dgram{}, nil, en
			}
			continue
		}
		if err != nil {
			return wire.Dgram{}, nil, err.(syscall.Errno)
		}
		if peer, ok := c.barePeer(); ok {
			return c.bareDgram(c.dnsPeer(peer)), buf[:n], 0
		}
		d, payload, perr := wire.ParseDgram(buf[:n])
		if perr != nil {
			return wire.Dgram{}, nil, unix.EPROTO
		}
		if d.Flags&wire.DgramError != 0 {
			return wire.Dgram{}, nil, syscall.Errno(d.IfIndex)
		}
		d.Peer = c.dnsPeer(d.Peer)
		return d, payload, 0
	}
}

// bareDgram is the header of a datagram from a bare app end: from the
// connected peer, to the socket's own address when PKTINFO needs it.
func (c *call) bareDgram(peer wire.Addr) wire.Dgram {
	d := wire.Dgram{Peer: peer}
	c.s.mu.Lock()
	pi := c.s.pktinfo[c.id]
	c.s.mu.Unlock()
	if pi != 0 {
		if rep, en := c.req(wire.OpGetSockName, nil); en == 0 {
			if a, err := wire.ParseAddr(rep.Body); err == nil {
				a.Port = 0
				d.Local = a
			}
		}
	}
	return d
}

func (c *call) needPort() bool {
	return true // ICMP echo sockets carry no port; they are rare under seccomp
}

// sendto serves sendto with an address.
func (c *call) sendto() (int64, syscall.Errno) {
	bp, l, flags, ap, al := c.arg(1), c.arg(2), c.argInt(3), c.arg(4), c.argInt(5)
	if l > 1<<20 {
		l = 1 << 20
	}
	data := make([]byte, l)
	if err := readMem(c.tid, bp, data); err != nil {
		return 0, unix.EFAULT
	}
	if !c.info.dgram {
		// TCP ignores the address (Linux does too).
		n, err := unix.SendmsgN(c.fd, data, nil, nil, flags|unix.MSG_NOSIGNAL)
		if err != nil {
			return 0, err.(syscall.Errno)
		}
		return int64(n), 0
	}
	b, en := c.readAddr(ap, al)
	if en != 0 {
		return 0, en
	}
	a, en := addrIn(b, c.info.family, useSendto, c.needPort())
	if en != 0 {
		return 0, en
	}
	return c.sendDgram(wire.Dgram{Peer: c.dnsRedirect(a)}, data, flags)
}

// recvfrom serves recvfrom with an address.
func (c *call) recvfrom() (int64, syscall.Errno) {
	bp, l, flags, ap, alp := c.arg(1), c.arg(2), c.argInt(3), c.arg(4), c.arg(5)
	if !c.info.dgram {
		buf := make([]byte, min(l, 1<<20))
		n, _, err := unix.Recvfrom(c.fd, buf, flags)
		if err != nil {
			return 0, err.(syscall.Errno)
		}
		if err := writeMem(c.tid, bp, buf[:n]); err != nil {
			return 0, unix.EFAULT
		}
		if alp != 0 {
			writeMem(c.tid, alp, []byte{0, 0, 0, 0})
		}
		return int64(n), 0
	}
	d, payload, en := c.recvDgram(flags)
	if en != 0 || c.reply {
		return 0, en
	}
	n := min(uint64(len(payload)), l)
	if err := writeMem(c.tid, bp, payload[:n]); err != nil {
		return 0, unix.EFAULT
	}
	if en := c.writeAddr(ap, alp, d.Peer); en != 0 {
		return 0, en
	}
	if flags&unix.MSG_TRUNC != 0 {
		return int64(len(payload)), 0
	}
	return int64(n), 0
}

// msghdr field offsets (x86-64).
const (
	mhName       = 0
	mhNameLen    = 8
	mhIov        = 16
	mhIovLen     = 24
	mhControl    = 32
	mhControlLen = 40
	mhFlags      = 48
	mhSize       = 56
)

// sendmsg serves sendmsg on a UDP socket: name, iovecs, IP_PKTINFO.
func (c *call) sendmsg(mp uint64, flags int) (int64, syscall.Errno) {
	mh := make([]byte, mhSize)
	if err := readMem(c.tid, mp, mh); err != nil {
		return 0, unix.EFAULT
	}
	var d wire.Dgram
	if nl := int(int32(ne.Uint32(mh[mhNameLen:]))); ne.Uint64(mh[mhName:]) != 0 && nl > 0 {
		b, en := c.readAddr(ne.Uint64(mh[mhName:]), nl)
		if en != 0 {
			return 0, en
		}
		if d.Peer, en = addrIn(b, c.info.family, useSendto, c.needPort()); en != 0 {
			return 0, en
		}
		d.Peer = c.dnsRedirect(d.Peer)
	}
	iov, en := c.readIovecs(ne.Uint64(mh[mhIov:]), ne.Uint64(mh[mhIovLen:]))
	if en != 0 {
		return 0, en
	}
	var data []byte
	for _, v := range iov {
		if uint64(len(data))+v.len > maxDgram {
			return 0, unix.EMSGSIZE
		}
		b := make([]byte, v.len)
		if err := readMem(c.tid, v.base, b); err != nil {
			return 0, unix.EFAULT
		}
		data = append(data, b...)
	}
	if cl := ne.Uint64(mh[mhControlLen:]); cl > 0 && ne.Uint64(mh[mhControl:]) != 0 {
		if cl > 4096 {
			return 0, unix.ENOBUFS
		}
		cb := make([]byte, cl)
		if err := readMem(c.tid, ne.Uint64(mh[mhControl:]), cb); err != nil {
			return 0, unix.EFAULT
		}
		d.Local, d.IfIndex = pktinfo(cb)
	}
	return c.sendDgram(d, data, flags)
}

// pktinfo finds an IP_PKTINFO or IPV6_PKTINFO source in control messages.
func pktinfo(cb []byte) (wire.Addr, uint32) {
	msgs, err := unix.ParseSocketControlMessage(cb)
	if err != nil {
		return wire.Addr{}, 0
	}
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= 12:
			ip := netip.AddrFrom4([4]byte(m.Data[4:8]))
			return wire.Addr{Family: wire.AFInet, IP: ip}, ne.Uint32(m.Data)
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= 20:
			ip := netip.AddrFrom16([16]byte(m.Data[0:16]))
			return wire.Addr{Family: wire.AFInet6, IP: ip}, ne.Uint32(m.Data[16:])
		}
	}
	return wire.Addr{}, 0
}

// recvmsg serves recvmsg on a UDP socket: name and iovecs; no control
// messages (msg_controllen comes back 0).
func (c *call) recvmsg(mp uint64, flags int) (int64, syscall.Errno) {
	mh := make([]byte, mhSize)
	if err := readMem(c.tid, mp, mh); err != nil {
		return 0, unix.EFAULT
	}
	iov, en := c.readIovecs(ne.Uint64(mh[mhIov:]), ne.Uint64(mh[mhIovLen:]))
	if en != 0 {
		return 0, en
	}
	d, payload, en := c.recvDgram(flags)
	if en != 0 || c.reply {
		return 0, en
	}
	rest := payload
	for _, v := range iov {
		if len(rest) == 0 {
			break
		}
		n := min(uint64(len(rest)), v.len)
		if err := writeMem(c.tid, v.base, rest[:n]); err != nil {
			return 0, unix.EFAULT
		}
		rest = rest[n:]
	}
	got := len(payload) - len(rest)
	var mflags uint32
	if len(rest) > 0 {
		mflags |= unix.MSG_TRUNC
	}
	if np := ne.Uint64(mh[mhName:]); np != 0 {
		b := addrOut(d.Peer)
		nl := int(int32(ne.Uint32(mh[mhNameLen:])))
		if nl > 0 {
			if err := writeMem(c.tid, np, b[:min(nl, len(b))]); err != nil {
				return 0, unix.EFAULT
			}
		}
		ne.PutUint32(mh[mhNameLen:], uint32(len(b)))
	} else {
		ne.PutUint32(mh[mhNameLen:], 0)
	}
	c.s.mu.Lock()
	want := c.s.pktinfo[c.id]
	c.s.mu.Unlock()
	var msgs [][]byte
	if want&2 != 0 {
		msgs = append(msgs, pktinfoCmsg(d, true))
	}
	if want&1 != 0 {
		msgs = append(msgs, pktinfoCmsg(d, false))
	}
	cp, cl := ne.Uint64(mh[mhControl:]), ne.Uint64(mh[mhControlLen:])
	used, trunc, err := c.putCmsgs(cp, cl, msgs)
	if err != nil {
		return 0, unix.EFAULT
	}
	if trunc {
		mflags |= unix.MSG_CTRUNC
	}
	ne.PutUint64(mh[mhControlLen:], used)
	ne.PutUint32(mh[mhFlags:], mflags)
	if err := writeMem(c.tid, mp, mh); err != nil {
		return 0, unix.EFAULT
	}
	if flags&unix.MSG_TRUNC != 0 {
		return int64(len(payload)), 0
	}
	return int64(got), 0
}

// mmsg serves sendmmsg (send) or recvmmsg on a UDP socket, one message at
// a time; after the first, a receive does not wait (MSG_WAITFORONE-like,
// the timeout argument is not honoured).
func (c *call) mmsg(send bool) (int64, syscall.Errno) {
	vp, vlen, flags := c.arg(1), c.arg(2), c.argInt(3)
	vlen = min(vlen, 1024)
	var done int64
	for i := uint64(0); i < vlen; i++ {
		mp := vp + 64*i
		f := flags
		if !send && i > 0 && (flags&unix.MSG_WAITFORONE != 0 || c.arg(4) != 0) {
			// Without MSG_WAITFORONE and a timeout Linux waits for
			// every message; the timeout is not kept, so with one
			// only the first is waited for.
			f |= unix.MSG_DONTWAIT
		}
		var n int64
		var en syscall.Errno
		if send {
			n, en = c.sendmsg(mp, f&^unix.MSG_WAITFORONE)
		} else {
			n, en = c.recvmsg(mp, f&^unix.MSG_WAITFORONE)
		}
		if c.reply {
			return 0, 0
		}
		if en != 0 {
			if done > 0 {
				return done, 0
			}
			return 0, en
		}
		var lb [4]byte
		ne.PutUint32(lb[:], uint32(n))
		writeMem(c.tid, mp+mhSize, lb[:])
		done++
	}
	return done, 0
}

// putCmsgs writes control messages (each CMSG_LEN long, unpadded) to the
// caller's buffer as Linux's put_cmsg does: a message that does not fit
// is cut (its cmsg_len too) and sets MSG_CTRUNC; each takes CMSG_SPACE
// while room lasts. It returns the msg_controllen to report.
func (c *call) putCmsgs(p, room uint64, msgs [][]byte) (uint64, bool, error) {
	var used uint64
	trunc := false
	for _, m := range msgs {
		if m == nil {
			continue
		}
		if p == 0 || room-used < uint64(unix.CmsgLen(0)) {
			trunc = true
			break
		}
		m = append([]byte(nil), m...)
		l := uint64(len(m))
		if room-used < l {
			trunc = true
			l = room - used
			m = m[:l]
			(*unix.Cmsghdr)(unsafe.Pointer(&m[0])).SetLen(int(l))
		}
		if err := writeMem(c.tid, p+used, m); err != nil {
			return 0, false, err
		}
		used += min(uint64(unix.CmsgSpace(len(m)-unix.CmsgLen(0))), room-used)
	}
	return used, trunc, nil
}

// pktinfoCmsg is the IPV6_PKTINFO (v6) or IP_PKTINFO control message for
// a received datagram, CMSG_LEN long: the address it was sent to, and the
// interface; nil when there is none (IP_PKTINFO for an IPv6 datagram).
func pktinfoCmsg(d wire.Dgram, v6 bool) []byte {
	fam := d.Local.Family
	if v6 {
		fam = wire.AFInet6
	} else if fam == wire.AFInet6 && d.Local.IP.Is4In6() {
		fam = wire.AFInet
	}
	switch fam {
	case wire.AFInet:
		b := make([]byte, unix.CmsgLen(12))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(12))
		data := b[unix.CmsgLen(0):]
		ne.PutUint32(data, d.IfIndex)
		ip := d.Local.IP.Unmap().As4()
		copy(data[4:], ip[:])
		copy(data[8:], ip[:])
		return b
	case wire.AFInet6:
		b := make([]byte, unix.CmsgLen(20))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
		h.SetLen(unix.CmsgLen(20))
		data := b[unix.CmsgLen(0):]
		ip := d.Local.IP.As16()
		copy(data, ip[:])
		ne.PutUint32(data[16:], d.IfIndex)
		return b
	}
	return nil
}
