package pcap

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Iface describes the host behind an address, for the pcapng Interface
// Description Block that frames it sends are recorded on.
type Iface struct {
	ID          int    // the host's id; <= 0 for an address of no host
	Name        string // if_name: "host10"
	Description string // if_description, with the host's addresses
	Host        bool   // a real host (OpenDir gives it a file)
}

// Namer tells which host an address belongs to. It is called by the
// writer goroutine, never on the packet path, and must be safe for
// concurrent use.
type Namer func(netip.Addr) Iface

// Options configure a pcapng Writer.
type Options struct {
	// Snaplen bounds the bytes kept per frame; <= 0 means DefaultSnaplen.
	Snaplen int
	// QueueBytes bounds the frames waiting to be written; <= 0 means
	// DefaultQueueBytes. A frame that does not fit is dropped and counted.
	QueueBytes int
	// Namer names the interfaces; nil names every sender "other".
	Namer Namer
	// Hosts, if not empty, keeps only the frames sent or received by these
	// host ids (a live stream's --host).
	Hosts []int
	// Ports, if not empty, keeps only the TCP and UDP frames from or to
	// these ports (with Hosts: frames that pass both).
	Ports []uint16
	// Name is what Path returns for a stream.
	Name string
}

// IsNG tells whether path names a pcapng file by its extension.
func IsNG(path string) bool { return filepath.Ext(path) == ".pcapng" }

// ngMagic is the pcapng Section Header Block type, the first 4 bytes of
// every pcapng file.
const ngMagic = 0x0a0d0d0a

// OpenFile opens a pcapng capture at path: one interface per host, named
// for it, added when the host's first frame comes; netem's notes as packet
// comments; dropped frames on drop interfaces. A file that already holds
// pcapng gets a new section appended; any other non-empty file is refused.
func OpenFile(path string, o Options) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pcap: %w", err)
	}
	var h [4]byte
	if n, err := io.ReadFull(f, h[:]); n > 0 && (err != nil || binary.LittleEndian.Uint32(h[:]) != ngMagic) {
		f.Close()
		return nil, fmt.Errorf("pcap: %s: not a pcapng file, cannot append", path)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, fmt.Errorf("pcap: %w", err)
	}
	w := newQueue(f, o.Snaplen, o.QueueBytes)
	w.path, w.kind, w.drops = path, "file", true
	w.bw = bufio.NewWriterSize(fileOut(f), bufSize)
	w.sink = newNgSink(w.bw, w.snaplen, o)
	go w.run()
	return w, nil
}

// OpenDir writes one pcapng file per host into dir (created if needed):
// DIR/host10.pcapng holds every frame host 10 sent or received, made when
// the host's first frame comes.
func OpenDir(dir string, o Options) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("pcap: %w", err)
	}
	w := newQueue(nil, o.Snaplen, o.QueueBytes)
	w.path, w.kind, w.drops = dir, "dir", true
	ds := &dirSink{dir: dir, o: o, snaplen: w.snaplen, files: make(map[int]*dirFile)}
	w.sink, w.closer = ds, ds
	go w.run()
	return w, nil
}

// NewStream writes a live pcapng stream to out (a connection to a reader),
// flushed after every batch. Its queue is small (QueueBytes, 4 MiB by
// default): a reader that falls behind loses frames, which are counted
// (Stats.Dropped) and reported in the stream itself, as a comment and
// epb_dropcount on the next frame and in a final Interface Statistics
// Block. Close gives a stuck reader a second, then abandons what is queued.
func NewStream(out io.WriteCloser, o Options) *Writer {
	if o.QueueBytes <= 0 {
		o.QueueBytes = 4 << 20
	}
	w := newQueue(out, o.Snaplen, o.QueueBytes)
	w.path, w.kind, w.drops, w.eager = o.Name, "live", true, true
	w.closeWait = time.Second
	w.bw = bufio.NewWriterSize(out, 256<<10)
	w.sink = newNgSink(w.bw, w.snaplen, o)
	go w.run()
	return w
}

// ifKey identifies an interface of a pcapng section: a sender's host id,
// or a (sender, receiver) pair's drop interface.
type ifKey struct {
	src, dst int
	drop     bool
}

// ngSink writes one pcapng section with pcapgo's NgWriter. The section and
// its first interface are written with the first frame, so that the first
// interface is a host's; a capture that ends without frames gets a section
// with one "swrap" interface, so that it is still a valid file.
type ngSink struct {
	bw      *bufio.Writer
	snaplen int
	namer   Namer
	hosts   []int
	ports   []uint16
	ng      *pcapgo.NgWriter
	ifaces  map[ifKey]int
	names   map[netip.Addr]Iface // what Namer said of each address
	lost    uint64               // drops already reported in the stream
	opts    pcapgo.NgPacketOptions
}

func newNgSink(bw *bufio.Writer, snaplen int, o Options) *ngSink {
	return &ngSink{bw: bw, snaplen: snaplen, namer: o.Namer, hosts: o.Hosts, ports: o.Ports,
		ifaces: make(map[ifKey]int), names: make(map[netip.Addr]Iface)}
}

// frameAddrs returns the source and destination addresses of an IP packet.
func frameAddrs(b []byte) (src, dst netip.Addr) {
	switch {
	case len(b) >= 20 && b[0]>>4 == 4:
		return netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
	case len(b) >= 40 && b[0]>>4 == 6:
		return netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
	}
	return netip.Addr{}, netip.Addr{}
}

// framePorts returns the ports of a TCP or UDP packet (not of a later
// fragment).
func framePorts(b []byte) (src, dst uint16, ok bool) {
	var proto byte
	var l4 []byte
	switch {
	case len(b) >= 20 && b[0]>>4 == 4:
		ihl := int(b[0]&15) * 4
		if binary.BigEndian.Uint16(b[6:])&0x1fff != 0 || len(b) < ihl {
			return 0, 0, false
		}
		proto, l4 = b[9], b[ihl:]
	case len(b) >= 40 && b[0]>>4 == 6:
		proto, l4 = b[6], b[40:] // swrap sends no extension headers
	default:
		return 0, 0, false
	}
	if (proto != 6 && proto != 17) || len(l4) < 4 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:]), true
}

// name is the Iface of addr.
func (s *ngSink) name(a netip.Addr) Iface {
	if s.namer == nil || !a.IsValid() {
		return Iface{Name: "other", Description: "frames from no swrap host"}
	}
	return s.namer(a)
}

// iface returns the interface index of key, writing its IDB (and, for the
// first, the section header) when it is new.
func (s *ngSink) iface(k ifKey, src, dst Iface) (int, error) {
	if i, ok := s.ifaces[k]; ok {
		return i, nil
	}
	intf := pcapgo.NgInterface{Name: src.Name, Description: src.Description, OS: runtime.GOOS,
		LinkType: layers.LinkTypeRaw, SnapLength: uint32(s.snaplen), TimestampResolution: 9}
	if k.drop {
		intf.Name = src.Name + "->" + dst.Name + " dropped"
		intf.Description = "frames from " + src.Name + " to " + dst.Name + " that netem dropped: they never arrived"
	}
	var i int
	var err error
	if s.ng == nil {
		opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
			Hardware: runtime.GOARCH, OS: runtime.GOOS, Application: "swrap"}}
		// NgWriter wraps s.bw in a bufio.Writer, which returns s.bw itself
		// as it is big enough: one buffer in front of the output.
		s.ng, err = pcapgo.NewNgWriterInterface(s.bw, intf, opts)
	} else {
		i, err = s.ng.AddInterface(intf)
	}
	if err != nil {
		return 0, err
	}
	s.ifaces[k] = i
	return i, nil
}

// lookup names the host of a, asking Namer once per address.
func (s *ngSink) lookup(a netip.Addr) Iface {
	if i, ok := s.names[a]; ok {
		return i
	}
	i := s.name(a)
	if len(s.names) < 4096 {
		s.names[a] = i
	}
	return i
}

func (s *ngSink) write(r *record, lost uint64) error {
	srcA, dstA := frameAddrs(r.data)
	src, dst := s.lookup(srcA), s.lookup(dstA)
	if len(s.hosts) > 0 && !(src.ID > 0 && slices.Contains(s.hosts, src.ID)) && !(dst.ID > 0 && slices.Contains(s.hosts, dst.ID)) {
		return errSkip
	}
	if len(s.ports) > 0 {
		sp, dp, ok := framePorts(r.data)
		if !ok || !slices.Contains(s.ports, sp) && !slices.Contains(s.ports, dp) {
			return errSkip
		}
	}
	k := ifKey{src: src.ID}
	if src.ID <= 0 {
		k.src = -1
	}
	if r.note.Drop != "" {
		k = ifKey{src: k.src, dst: dst.ID, drop: true}
	}
	idx, err := s.iface(k, src, dst)
	if err != nil {
		return err
	}
	s.opts.Comments = s.opts.Comments[:0]
	s.opts.DropCount = nil
	n := r.note
	var link string // "host10->host11", made only for a frame with a note
	if n != (Note{}) {
		link = src.Name + "->" + dst.Name
	}
	if n.Drop != "" {
		s.opts.Comments = append(s.opts.Comments, fmt.Sprintf("netem %s: dropped (%s); the frame never arrived", link, n.Drop))
	}
	if n.Delay > 0 {
		s.opts.Comments = append(s.opts.Comments, fmt.Sprintf("netem %s: delayed by %s", link, n.Delay.Round(time.Microsecond)))
	}
	if n.Dup {
		s.opts.Comments = append(s.opts.Comments, fmt.Sprintf("netem %s: duplicate (second copy)", link))
	}
	if n.Reordered {
		s.opts.Comments = append(s.opts.Comments, fmt.Sprintf("netem %s: reordered (sent without the delay of the frames before it)", link))
	}
	if lost > s.lost {
		d := lost - s.lost
		s.lost = lost
		s.opts.Comments = append(s.opts.Comments, fmt.Sprintf("swrap: %d frames lost before this one: the capture's reader was slower than the network (the network was not slowed)", d))
		s.opts.DropCount = &d
	}
	ci := gopacket.CaptureInfo{Timestamp: r.ts, CaptureLength: len(r.data), Length: r.length, InterfaceIndex: idx}
	return s.ng.WritePacketWithOptions(ci, r.data, s.opts)
}

func (s *ngSink) finish(lost uint64) error {
	if s.ng == nil {
		var err error
		s.ng, err = pcapgo.NewNgWriterInterface(s.bw, pcapgo.NgInterface{Name: "swrap",
			Description: "swrap capture (no frames)", OS: runtime.GOOS, LinkType: layers.LinkTypeRaw,
			SnapLength: uint32(s.snaplen), TimestampResolution: 9},
			pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Hardware: runtime.GOARCH, OS: runtime.GOOS, Application: "swrap"}})
		if err != nil {
			return err
		}
	}
	if lost > 0 {
		// The capture's own losses, for readers that show interface
		// statistics (capinfos, Wireshark's Capture File Properties).
		st := pcapgo.NgInterfaceStatistics{LastUpdate: time.Now(), PacketsReceived: pcapgo.NgNoValue64, PacketsDropped: lost}
		return s.ng.WriteInterfaceStats(0, st)
	}
	return nil
}

func (s *ngSink) flush() error { return s.bw.Flush() }

// dirSink writes one pcapng file per host.
type dirSink struct {
	dir     string
	o       Options
	snaplen int
	files   map[int]*dirFile
	namer   *ngSink // resolves addresses only
}

// dirFile is one host's file.
type dirFile struct {
	f    *os.File
	sink *ngSink
}

func (d *dirSink) file(ifc Iface) (*dirFile, error) {
	if df, ok := d.files[ifc.ID]; ok {
		return df, nil
	}
	f, err := os.OpenFile(filepath.Join(d.dir, ifc.Name+".pcapng"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	o := d.o
	o.Hosts = nil
	df := &dirFile{f: f, sink: newNgSink(bufio.NewWriterSize(fileOut(f), 256<<10), d.snaplen, o)}
	d.files[ifc.ID] = df
	return df, nil
}

func (d *dirSink) write(r *record, lost uint64) error {
	if d.namer == nil {
		d.namer = newNgSink(nil, 0, d.o)
	}
	srcA, dstA := frameAddrs(r.data)
	src, dst := d.namer.lookup(srcA), d.namer.lookup(dstA)
	wrote := false
	for _, h := range [2]Iface{src, dst} {
		if !h.Host || (wrote && h.ID == src.ID) {
			continue
		}
		df, err := d.file(h)
		if err != nil {
			return err
		}
		if err := df.sink.write(r, lost); err != nil {
			return err
		}
		wrote = true
	}
	if !wrote {
		return errSkip
	}
	return nil
}

func (d *dirSink) finish(lost uint64) error {
	var errs []error
	for _, df := range d.files {
		errs = append(errs, df.sink.finish(lost))
	}
	return errors.Join(errs...)
}

// Close closes the files, after the Writer's last flush.
func (d *dirSink) Close() error {
	var errs []error
	for _, df := range d.files {
		errs = append(errs, df.f.Close())
	}
	return errors.Join(errs...)
}

func (d *dirSink) flush() error {
	var errs []error
	for _, df := range d.files {
		errs = append(errs, df.sink.flush())
	}
	return errors.Join(errs...)
}
