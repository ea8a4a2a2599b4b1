package pcap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcapgo"
)

// Record is one frame read back from a capture file.
type Record struct {
	Timestamp time.Time
	Length    int    // the frame's original length
	Data      []byte // the captured bytes, len(Data) <= Length
	// Of pcapng files only:
	Iface    string   // the name of the interface the frame is on
	Comments []string // its packet comments
}

// File is a capture read back by ReadFile.
type File struct {
	Nanos    bool // timestamps have nanosecond resolution
	Snaplen  int
	LinkType uint32
	Records  []Record
}

// ReadFile reads a whole capture file, classic pcap or pcapng, with pcapgo.
// It exists so that tests and tools can check what a Writer wrote; it is
// not meant for huge files. Of a pcapng file, LinkType and Snaplen are
// its first interface's.
func ReadFile(path string) (*File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	var magic [4]byte
	if _, err := io.ReadFull(fd, magic[:]); err == nil && binary.LittleEndian.Uint32(magic[:]) == ngMagic {
		fd.Seek(0, io.SeekStart)
		return readNg(path, fd)
	}
	fd.Seek(0, io.SeekStart)
	r, err := pcapgo.NewReader(fd)
	if err != nil {
		return nil, fmt.Errorf("pcap: %s: %w", path, err)
	}
	f := &File{
		Nanos:    r.Resolution() == gopacket.TimestampResolutionNanosecond,
		Snaplen:  int(r.Snaplen()),
		LinkType: uint32(r.LinkType()),
	}
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		if err != nil {
			return f, fmt.Errorf("pcap: %s: record %d: %w", path, len(f.Records), err)
		}
		f.Records = append(f.Records, Record{Timestamp: ci.Timestamp, Length: ci.Length, Data: data})
	}
}

// readNg reads a pcapng file, all its sections.
func readNg(path string, fd io.Reader) (*File, error) {
	r, err := pcapgo.NewNgReader(fd, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		return nil, fmt.Errorf("pcap: %s: %w", path, err)
	}
	f := &File{Nanos: true, LinkType: uint32(r.LinkType())}
	if intf, err := r.Interface(0); err == nil {
		f.Snaplen = int(intf.SnapLength)
	}
	for {
		data, ci, opts, err := r.ReadPacketDataWithOptions()
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		if err != nil {
			return f, fmt.Errorf("pcap: %s: record %d: %w", path, len(f.Records), err)
		}
		rec := Record{Timestamp: ci.Timestamp, Length: ci.Length, Data: data, Comments: opts.Comments}
		if intf, err := r.Interface(ci.InterfaceIndex); err == nil {
			rec.Iface = intf.Name
		}
		f.Records = append(f.Records, rec)
	}
}
