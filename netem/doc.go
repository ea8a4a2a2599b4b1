// Package netem holds network conditions: what happens to the frames of one
// link of the fabric (from host A to host B, or all that a host sends or
// receives) — delay with jitter, random and bursty (Gilbert-Elliott) loss,
// duplication, reordering, a rate limit with a bounded queue, and a
// partition that drops everything until it is healed.
//
// A Spec says what a link does, a Selector which frames it applies to, and
// Parse reads both from the small text grammar that SWRAP_NETEM, the
// broker's --netem flag, the SETLINK operation and `swrap link set` share
// (see Parse). A Link applies a Spec to real frames: the fabric hands it
// the frames of the links that have conditions, and only those, so a link
// without conditions costs nothing. A Link copies each frame it keeps and
// sends it from its own goroutine at the due time, so a delayed frame never
// blocks its sender.
//
// Conditions are deterministic when given a seed: every Link draws from its
// own PRNG, seeded from the seed and the link's host ids, so the same seed
// and the same sequence of frames drop, duplicate and delay the same frames.
// The package does no routing and knows nothing of sockets: it is handed
// frames and an Output to send them to.
package netem
