module github.com/swrap/swrap

go 1.26.3

require (
	github.com/gopacket/gopacket v1.7.7 // indirect
	golang.org/x/sys v0.49.0 // indirect
	gvisor.dev/gvisor v0.0.0-20260905035102-160fafc42237 // indirect
)
