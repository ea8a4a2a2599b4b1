package pcap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
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

// ReadFile reads a whole little-endian classic pcap file. It exists so that
// tests and tools can check what Writer wrote without another dependency;
// it is not meant for huge files.
func ReadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 24 {
		return nil, fmt.Errorf("pcap: %s: %w", path, io.ErrUnexpectedEOF)
	}
	f := &File{}
	switch binary.LittleEndian.Uint32(b[0:4]) {
	case magicMicros:
	case magicNanos:
		f.Nanos = true
	default:
		return nil, fmt.Errorf("pcap: %s: %w", path, errors.New("not a little-endian pcap file"))
	}
	f.Snaplen = int(binary.LittleEndian.Uint32(b[16:20]))
	f.LinkType = binary.LittleEndian.Uint32(b[20:24])
	b = b[24:]
	for len(b) > 0 {
		if len(b) < recHdr {
			return f, fmt.Errorf("pcap: %s: truncated record header: %w", path, io.ErrUnexpectedEOF)
		}
		sec := int64(binary.LittleEndian.Uint32(b[0:4]))
		frac := int64(binary.LittleEndian.Uint32(b[4:8]))
		caplen := int(binary.LittleEndian.Uint32(b[8:12]))
		length := int(binary.LittleEndian.Uint32(b[12:16]))
		if !f.Nanos {
			frac *= 1e3
		}
		b = b[recHdr:]
		if len(b) < caplen {
			return f, fmt.Errorf("pcap: %s: truncated record: %w", path, io.ErrUnexpectedEOF)
		}
		f.Records = append(f.Records, Record{Timestamp: time.Unix(sec, frac), Length: length, Data: b[:caplen:caplen]})
		b = b[caplen:]
	}
	return f, nil
}
