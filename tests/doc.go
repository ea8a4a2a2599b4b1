// Package tests holds swrap's integration tests: they start the real broker
// (bin/swrap-broker) and run real programs under the real shim
// (bin/libswrap.so). Build everything first with `make`; `make test` does.
//
// Network safety: every test sends traffic only to 127.0.0.0/8, ::1, or
// emulated addresses through the shim, and a test that uses emulated
// addresses outside loopback proves first that the shim is active.
package tests
