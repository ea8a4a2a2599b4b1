package stack

import (
	cryptorand "crypto/rand"
	"encoding/binary"
	"math/rand/v2"
	"sync"
)

// randSource is the stack's source of non-cryptographic random numbers
// (netstack's insecure RNG), safe for concurrent use as netstack requires.
// Netstack's own default is math/rand's 4.9 KiB generator per stack; a PCG
// holds 16 bytes, which matters for a broker with 64 idle hosts.
type randSource struct {
	mu  sync.Mutex
	pcg rand.PCG
}

// newRandSource returns a source seeded from crypto/rand, as netstack
// seeds its default.
func newRandSource() *randSource {
	var b [16]byte
	cryptorand.Read(b[:])
	s := &randSource{}
	s.pcg.Seed(binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:]))
	return s
}

// Int63 implements math/rand.Source.
func (s *randSource) Int63() int64 {
	s.mu.Lock()
	v := s.pcg.Uint64()
	s.mu.Unlock()
	return int64(v >> 1)
}

// Seed implements math/rand.Source.
func (s *randSource) Seed(seed int64) {
	s.mu.Lock()
	s.pcg.Seed(uint64(seed), 0)
	s.mu.Unlock()
}
