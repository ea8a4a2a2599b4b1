package pcap

import (
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
}

// File is a capture read back by ReadFile.
type File struct {
	Nanos    bool // timestamps have nanosecond resolution
	Snaplen  int
	LinkType uint32
	Records  []Record
}

// ReadFile reads a whole capture file with pcapgo. It exists so that tests
// and tools can check what a Writer wrote; it is not meant for huge files.
func ReadFile(path string) (*File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
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
