package tap

import (
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/qdisc/fifo"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// QDisc is the endpoint's queueing discipline: a fifo qdisc that frames
// skip when they can be delivered at once. A frame for hosts of this
// process (LocalPorts, shaped or not) is routed, captured and handed to the
// receiving netstack on the sending goroutine, as netstack's own loopback
// link does, which saves the qdisc goroutine's wake-up per frame (a
// request/response crosses four of them). Everything else takes the fifo:
// frames for socket Ports, which may park on a full peer and must not stall
// netstack; ICMP errors the endpoint makes up for its own stack; frames a
// host sends while a frame is being delivered to it (a reply made inside
// the delivery, which the peer's goroutine would then carry back into the
// sender's stack with its locks held); and any frame while earlier ones
// still wait in the fifo, so that frames leave in order.
type QDisc struct {
	e    *Endpoint
	fifo stack.QueueingDiscipline
	// queued counts frames given to the fifo and not yet written.
	queued atomic.Int64
}

var _ stack.QueueingDiscipline = (*QDisc)(nil)

// NewQDisc returns e's queueing discipline, with a fifo of queueLen frames
// behind it; pass it as stack.NICOptions.QDisc.
func NewQDisc(e *Endpoint, queueLen int) *QDisc {
	q := &QDisc{e: e}
	q.fifo = fifo.New(fifoWriter{q}, 1, queueLen)
	return q
}

// WritePacket implements stack.QueueingDiscipline.
func (q *QDisc) WritePacket(pkt *stack.PacketBuffer) tcpip.Error {
	if q.queued.Load() == 0 && q.e.writeDirect(pkt) {
		return nil
	}
	q.queued.Add(1)
	err := q.fifo.WritePacket(pkt)
	if err != nil {
		q.queued.Add(-1)
	}
	return err
}

// Close implements stack.QueueingDiscipline.
func (q *QDisc) Close() { q.fifo.Close() }

// fifoWriter is the link the fifo writes to: the endpoint, counting the
// frames out of the queue once they are sent.
type fifoWriter struct{ q *QDisc }

func (w fifoWriter) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	n := pkts.Len()
	_, err := w.q.e.WritePackets(pkts)
	w.q.queued.Add(int64(-n))
	return n, err
}

// writeDirect sends pkt on the caller's goroutine if every destination is
// a host of this process and nothing is being delivered to this endpoint,
// and drops it if the route says so; false means the caller must queue it
// (see QDisc).
func (e *Endpoint) writeDirect(pkt *stack.PacketBuffer) bool {
	if e.injecting.Load() != 0 {
		return false
	}
	b := firstView(pkt)
	dst, ok := destination(b)
	if !ok {
		return false
	}
	e.txMu.Lock()
	tx := &e.tx
	ports, v := e.cfg.Route(dst, tx.probe[:0])
	direct := v == Deliver
	for _, p := range ports {
		if p.local == nil && p.shaper == nil {
			direct = false
		}
	}
	clear(ports)
	tx.probe = ports[:0]
	if v == Drop {
		// Decided: the route function has counted it too (going through
		// the fifo would ask, and count, again).
		e.txMu.Unlock()
		e.dropped.Add(1)
		return true
	}
	if !direct {
		e.txMu.Unlock()
		return false
	}
	inj := injections.Get().(*[]injection)
	tx.one[0] = pkt
	e.txRound(tx.one[:], inj)
	tx.one[0] = nil
	e.txMu.Unlock()
	e.deliverInjections(inj)
	return true
}

// firstView returns the first non-empty slice of pkt's data: it holds all
// of netstack's headers.
func firstView(pkt *stack.PacketBuffer) []byte {
	views, off := pkt.AsViewList()
	for v := views.Front(); v != nil; v = v.Next() {
		b := v.AsSlice()
		if off >= len(b) {
			off -= len(b)
			continue
		}
		return b[off:]
	}
	return nil
}
