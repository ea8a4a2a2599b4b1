package main

import (
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"io"
	"os"
)

// The reasons unwrappable gives; they complete "PATH is ...".
const (
	reasonStatic = "a statically linked program: LD_PRELOAD cannot reach it"
	reasonGo     = "a Go program: Go makes its system calls itself, not through libc, so LD_PRELOAD cannot reach it"
)

// unwrappableFile is unwrappable for the file at path ("" when it cannot
// be read or is not ELF).
func unwrappableFile(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	return unwrappable(f)
}

// warnUnwrappable tells stderr, before CMD runs, when the program at path is
// one the preload shim cannot wrap: the user would otherwise see it use the
// real network without a word. Only where the seccomp path is not
// available (supervise.Supported), which otherwise wraps such a program. A file that cannot be read or is not ELF
// (a script, say) gets no warning; exec reports its own errors.
func warnUnwrappable(path string, stderr io.Writer) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	if why := unwrappable(f); why != "" {
		fmt.Fprintf(stderr, "swrap: warning: %s is %s, its sockets will use the real network stack, not the emulated network\n", path, why)
	}
}

// unwrappable reads an executable and says why LD_PRELOAD cannot reach it,
// or "" when it can (or when r is not an ELF file: scripts, garbage).
//
//   - A Go program (build info, or a .go.buildinfo section when the build
//     info cannot be decoded), static or not: Go issues socket system calls
//     directly, so even a cgo binary's sockets bypass the shim.
//   - A statically linked program: no PT_INTERP, so no dynamic loader runs
//     to honour LD_PRELOAD. That is ET_EXEC, or ET_DYN marked DF_1_PIE
//     (static-pie). An ET_DYN without PT_INTERP and without DF_1_PIE is a
//     shared object, such as ld.so run as a command, which does honour
//     LD_PRELOAD for the program it loads.
func unwrappable(r io.ReaderAt) string {
	f, err := elf.NewFile(r)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := buildinfo.Read(r); err == nil || f.Section(".go.buildinfo") != nil {
		return reasonGo
	}
	var dynamic *elf.Prog
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			return ""
		case elf.PT_DYNAMIC:
			dynamic = p
		}
	}
	switch f.Type {
	case elf.ET_EXEC:
		return reasonStatic
	case elf.ET_DYN:
		if dynamic != nil && dynFlags1(f, dynamic)&uint64(elf.DF_1_PIE) != 0 {
			return reasonStatic
		}
	}
	return ""
}

// dynFlags1 returns the DT_FLAGS_1 entry of the PT_DYNAMIC segment p (0 when
// there is none). The segment is read directly, not the .dynamic section,
// so that binaries without section headers are understood too.
func dynFlags1(f *elf.File, p *elf.Prog) uint64 {
	size := int64(16) // Elf64_Dyn: tag, value
	if f.Class == elf.ELFCLASS32 {
		size = 8
	}
	buf := make([]byte, size)
	// A real dynamic section has a few dozen entries; the bound keeps a
	// malformed file from making us read for long.
	for off := int64(0); off+size <= int64(p.Filesz) && off < 1<<16; off += size {
		if _, err := p.ReadAt(buf, off); err != nil {
			return 0
		}
		var tag, val uint64
		if size == 16 {
			tag, val = f.ByteOrder.Uint64(buf), f.ByteOrder.Uint64(buf[8:])
		} else {
			tag, val = uint64(f.ByteOrder.Uint32(buf)), uint64(f.ByteOrder.Uint32(buf[4:]))
		}
		switch elf.DynTag(tag) {
		case elf.DT_NULL:
			return 0
		case elf.DT_FLAGS_1:
			return val
		}
	}
	return 0
}
