// Command swrap-broker runs the emulated network of one SOCKET_WRAPPER_DIR:
// a gVisor netstack per emulated host, the fabric between them, the capture,
// and the sessions of wrapped programs (see package broker).
//
// Wrapped programs start it on demand (--on-demand: it detaches its output
// into DIR/swrap/broker.log and exits once idle); it can also be run in the
// foreground by hand. Of many brokers started for one directory, exactly one
// serves; the others exit at once (status 0 in on-demand mode).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/swrap/swrap/addrplan"
	"github.com/swrap/swrap/broker"
	"github.com/swrap/swrap/names"
	"github.com/swrap/swrap/netem"
	"github.com/swrap/swrap/stack"
	"github.com/swrap/swrap/tap"
	"github.com/swrap/swrap/wire"
)

// The broker samples no allocations unless --memprofile asks: the
// profile's bucket table is 1.4 MiB once the first sample is taken, more
// than the broker holds per host (bench/PROFILE.md, "Footprint").
func init() { runtime.MemProfileRate = 0 }

func main() {
	reexecQuietSysmon()
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "swrap-broker: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		dir      = flag.String("dir", os.Getenv("SOCKET_WRAPPER_DIR"), "the `directory` to serve (SOCKET_WRAPPER_DIR)")
		onDemand = flag.Bool("on-demand", false, "started by a wrapped program: log to DIR/swrap/broker.log, exit when idle")
		idle     = flag.Duration("idle", 0, "exit after this long without programs or sockets (default 10s with --on-demand, never otherwise)")
		pcapFile = flag.String("pcap", os.Getenv("SOCKET_WRAPPER_PCAP_FILE"), "write every frame to this pcap `file` (SOCKET_WRAPPER_PCAP_FILE)")
		snaplen  = flag.Int("snaplen", 0, "bytes kept of each captured frame (0: all)")
		pcapFmt  = flag.String("pcap-format", os.Getenv("SWRAP_PCAP_FORMAT"), "pcapng: write capture files as pcapng whatever their name (SWRAP_PCAP_FORMAT; default: pcapng for *.pcapng, classic pcap otherwise)")
		pcapDir  = flag.String("pcap-dir", os.Getenv("SWRAP_PCAP_DIR"), "write one pcapng `directory`/hostN.pcapng per host, with the frames it sends and receives (SWRAP_PCAP_DIR)")
		mtu      = flag.Int("mtu", envInt("SOCKET_WRAPPER_MTU", 65535), "fabric IP MTU, 1280..65535 (SOCKET_WRAPPER_MTU)")
		network  = flag.String("network", os.Getenv("SOCKET_WRAPPER_IPV4_NETWORK"), "IPv4 network: 127.0.0.0 or 10.53.57.0 (SOCKET_WRAPPER_IPV4_NETWORK)")
		verbose  = flag.Bool("v", false, "log debug messages")
		cpuprof  = flag.String("cpuprofile", "", "write a CPU profile to `file` (for bench/ and perf work)")
		memprof  = flag.String("memprofile", "", "write a heap profile to `file` when the broker exits, after a GC (for bench/ and perf work)")
		netemArg = flag.String("netem", os.Getenv("SWRAP_NETEM"), "network `conditions` to start with, e.g. \"10->11 delay=50ms loss=5% seed=42; 11 rate=10mbit\" (SWRAP_NETEM)")
		netemF   = flag.String("netem-file", os.Getenv("SWRAP_NETEM_FILE"), "read network conditions from `file`, one rule a line, before --netem (SWRAP_NETEM_FILE)")
		sockets  = flag.Bool("fabric-sockets", os.Getenv("SWRAP_FABRIC_SOCKETS") == "1", "frames between hosts cross unix sockets instead of memory: slower, the path of a stack in another process (SWRAP_FABRIC_SOCKETS=1)")
		ackDelay = flag.Duration("ack-delay", envDuration("SWRAP_ACK_DELAY", tap.DefaultAckDelay), "longest a pure ACK of an interactive TCP connection waits for the answer to carry it, as Linux's delayed ACK; 0 sends every ACK at once (SWRAP_ACK_DELAY)")
		maxTW    = flag.Int("tcp-max-tw", envInt("SWRAP_TCP_MAX_TW", stack.DefaultMaxTimeWait), "most TCP connections a host keeps in TIME_WAIT, as Linux's net.ipv4.tcp_max_tw_buckets: past it a closing connection skips TIME_WAIT; 0 keeps them all (SWRAP_TCP_MAX_TW)")
		procs    = flag.Int("procs", envInt("SWRAP_BROKER_PROCS", defaultProcs()), "CPUs the broker's Go runtime uses (SWRAP_BROKER_PROCS; GOMAXPROCS wins if set)")
	)
	flag.Parse()
	if os.Getenv("GOMAXPROCS") == "" && *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	if *dir == "" {
		return errors.New("no directory: set SOCKET_WRAPPER_DIR or pass --dir")
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return fmt.Errorf("SOCKET_WRAPPER_DIR %s is not a usable directory: %v", abs, err)
	}
	plan, err := addrplan.New(*network)
	if err != nil {
		return err
	}
	if *mtu < 1280 || *mtu > 65535 {
		return fmt.Errorf("MTU %d out of range 1280..65535 (IPv6 needs at least 1280)", *mtu)
	}
	if *pcapDir != "" {
		if *pcapDir, err = filepath.Abs(*pcapDir); err != nil {
			return err
		}
	}
	if *pcapFmt != "" && *pcapFmt != "pcapng" && *pcapFmt != "pcap" {
		return fmt.Errorf("SWRAP_PCAP_FORMAT=%q: want pcap or pcapng", *pcapFmt)
	}
	if *pcapFile != "" && !filepath.IsAbs(*pcapFile) {
		if *pcapFile, err = filepath.Abs(*pcapFile); err != nil {
			return err
		}
	}
	links, err := netemRules(*netemF, *netemArg)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	out := os.Stderr
	if *onDemand {
		if *idle == 0 {
			*idle = 10 * time.Second
		}
		sub := filepath.Join(abs, wire.SubDir)
		if err := os.MkdirAll(sub, 0o700); err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(sub, wire.LogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		out = f
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))
	// SWRAP_HOSTS, NSS_WRAPPER_HOSTS, RESOLV_WRAPPER_HOSTS: a bad line is
	// one message (file:line) and is skipped; the good lines serve.
	table, nerrs := names.LoadEnv(plan, os.Getenv)
	for _, e := range nerrs {
		logger.Warn("names: " + e.Error())
	}
	b, err := broker.New(broker.Config{
		Dir: abs, Plan: plan, MTU: uint32(*mtu), PcapFile: *pcapFile, Snaplen: *snaplen,
		PcapFormat: *pcapFmt, PcapDir: *pcapDir,
		IdleTimeout: *idle, Log: logger, Links: links, FabricSockets: *sockets, Names: table,
		AckDelay: ackDelayConfig(*ackDelay), MaxTimeWait: maxTimeWaitConfig(*maxTW),
	})
	if errors.Is(err, broker.ErrLocked) {
		if *onDemand {
			return nil // another broker won the race: it serves
		}
		return fmt.Errorf("%s: %w", abs, err)
	}
	if err != nil {
		return err
	}
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *memprof != "" {
		runtime.MemProfileRate = 512 << 10 // Go's default
		defer writeHeapProfile(*memprof)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	signal.Ignore(syscall.SIGPIPE, syscall.SIGHUP)
	return b.Serve(ctx)
}

// defaultProcs is half the CPUs, at least one. Every byte the broker moves
// passes a chain of goroutine hand-offs (program socket, netstack, fabric,
// netstack, program socket); spread over more threads each hand-off becomes
// a cross-CPU wake-up, and the wrapped programs need CPUs too. Measured on 2
// vCPUs (bench/clientbench, iperf3): one P instead of two gives a 1-byte
// round trip of 127 µs instead of 220 µs and 8.5 Gbit/s instead of 6.4.
func defaultProcs() int { return max(1, runtime.NumCPU()/2) }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// envDuration is the duration in environment variable name (Go syntax:
// "1ms", "500us", "0"), def if unset or malformed.
func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// ackDelayConfig maps --ack-delay to broker.Config.AckDelay, where 0 means
// the default: 0 on the command line turns holding off.
func ackDelayConfig(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// maxTimeWaitConfig maps --tcp-max-tw to broker.Config.MaxTimeWait, where
// 0 means the default: 0 on the command line removes the bound.
func maxTimeWaitConfig(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}

// netemRules reads the starting network conditions: the file's, then the
// text's, which therefore wins for a link both name.
func netemRules(file, text string) (netem.Rules, error) {
	all := text
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return netem.Rules{}, fmt.Errorf("network conditions: %w", err)
		}
		all = string(b) + "\n" + text
	}
	r, err := netem.Parse(all)
	if err != nil {
		return netem.Rules{}, fmt.Errorf("network conditions (SWRAP_NETEM, --netem, --netem-file): %w", err)
	}
	return r, nil
}

// writeHeapProfile writes the heap profile (what is live after a GC) to
// file; an error is only logged: the broker is exiting.
func writeHeapProfile(file string) {
	f, err := os.Create(file)
	if err == nil {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		// What the heap profile does not show: stacks, and what the
		// runtime holds but no object uses.
		fmt.Fprintf(os.Stderr, "swrap-broker: memory (MiB): heap in use %.1f, heap idle %.1f (released %.1f), stacks %.1f, runtime %.1f, total from the system %.1f\n",
			mib(ms.HeapInuse), mib(ms.HeapIdle), mib(ms.HeapReleased), mib(ms.StackInuse),
			mib(ms.MSpanSys+ms.MCacheSys+ms.BuckHashSys+ms.GCSys+ms.OtherSys), mib(ms.Sys))
		err = pprof.WriteHeapProfile(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "swrap-broker: --memprofile: %v\n", err)
	}
}

// mib is n bytes in MiB.
func mib(n uint64) float64 { return float64(n) / (1 << 20) }
