package main

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"strings"
	"testing"
)

// fakeELF is what a synthetic ELF file holds.
type fakeELF struct {
	typ      elf.Type
	interp   bool   // a PT_INTERP segment
	flags1   uint64 // DT_FLAGS_1 in a PT_DYNAMIC segment, when dynamic
	dynamic  bool
	sections []string // section names (besides the null section and .shstrtab)
}

// bytes lays the file out: header, program headers, the segments' data,
// then, when there are sections, the string table and section headers.
func (e fakeELF) bytes(t *testing.T) []byte {
	t.Helper()
	le := binary.LittleEndian
	var progs []elf.Prog64
	var data bytes.Buffer
	nprog := 1
	if e.interp {
		nprog++
	}
	if e.dynamic {
		nprog++
	}
	dataOff := uint64(64 + 56*nprog)
	progs = append(progs, elf.Prog64{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X),
		Vaddr: 0x400000, Paddr: 0x400000, Filesz: dataOff, Memsz: dataOff, Align: 0x1000})
	if e.interp {
		s := "/lib64/ld-linux-x86-64.so.2\x00"
		progs = append(progs, elf.Prog64{Type: uint32(elf.PT_INTERP), Flags: uint32(elf.PF_R),
			Off: dataOff + uint64(data.Len()), Filesz: uint64(len(s)), Memsz: uint64(len(s)), Align: 1})
		data.WriteString(s)
	}
	if e.dynamic {
		var dyn []uint64
		dyn = append(dyn, uint64(elf.DT_DEBUG), 0)
		if e.flags1 != 0 {
			dyn = append(dyn, uint64(elf.DT_FLAGS_1), e.flags1)
		}
		dyn = append(dyn, uint64(elf.DT_NULL), 0)
		off := dataOff + uint64(data.Len())
		binary.Write(&data, le, dyn)
		progs = append(progs, elf.Prog64{Type: uint32(elf.PT_DYNAMIC), Flags: uint32(elf.PF_R | elf.PF_W),
			Off: off, Filesz: uint64(8 * len(dyn)), Memsz: uint64(8 * len(dyn)), Align: 8})
	}
	var shdrs []elf.Section64
	var strtab []byte
	if len(e.sections) > 0 {
		strtab = []byte{0}
		name := func(s string) uint32 {
			n := uint32(len(strtab))
			strtab = append(append(strtab, s...), 0)
			return n
		}
		shdrs = append(shdrs, elf.Section64{})
		for _, s := range e.sections {
			shdrs = append(shdrs, elf.Section64{Name: name(s), Type: uint32(elf.SHT_PROGBITS),
				Off: dataOff, Size: 0, Addralign: 1})
		}
		shdrs = append(shdrs, elf.Section64{Name: name(".shstrtab"), Type: uint32(elf.SHT_STRTAB),
			Off: dataOff + uint64(data.Len()), Size: uint64(len(strtab)), Addralign: 1})
		data.Write(strtab)
	}
	for data.Len()%8 != 0 {
		data.WriteByte(0)
	}
	h := elf.Header64{Type: uint16(e.typ), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Entry: 0x401000, Phoff: 64, Ehsize: 64, Phentsize: 56, Phnum: uint16(len(progs))}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	h.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	h.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	if len(shdrs) > 0 {
		h.Shoff = dataOff + uint64(data.Len())
		h.Shentsize, h.Shnum, h.Shstrndx = 64, uint16(len(shdrs)), uint16(len(shdrs)-1)
	}
	var out bytes.Buffer
	binary.Write(&out, le, h)
	binary.Write(&out, le, progs)
	out.Write(data.Bytes())
	binary.Write(&out, le, shdrs)
	if _, err := elf.NewFile(bytes.NewReader(out.Bytes())); err != nil {
		t.Fatalf("the synthetic ELF does not parse: %v", err)
	}
	return out.Bytes()
}

func TestUnwrappable(t *testing.T) {
	self, err := os.Executable() // this test binary: a Go program
	if err != nil {
		t.Fatal(err)
	}
	goProg, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	pie := uint64(elf.DF_1_PIE | elf.DF_1_NOW)
	for _, c := range []struct {
		name string
		file []byte
		want string
	}{
		{"dynamic executable", fakeELF{typ: elf.ET_EXEC, interp: true, dynamic: true}.bytes(t), ""},
		{"dynamic PIE", fakeELF{typ: elf.ET_DYN, interp: true, dynamic: true, flags1: pie}.bytes(t), ""},
		{"static executable", fakeELF{typ: elf.ET_EXEC}.bytes(t), reasonStatic},
		{"static executable with a dynamic segment", fakeELF{typ: elf.ET_EXEC, dynamic: true}.bytes(t), reasonStatic},
		{"static-pie", fakeELF{typ: elf.ET_DYN, dynamic: true, flags1: pie}.bytes(t), reasonStatic},
		{"shared object (ld.so as a command)", fakeELF{typ: elf.ET_DYN, dynamic: true}.bytes(t), ""},
		{"shared object, other DT_FLAGS_1", fakeELF{typ: elf.ET_DYN, dynamic: true, flags1: uint64(elf.DF_1_NOW)}.bytes(t), ""},
		{"shared object, no dynamic segment", fakeELF{typ: elf.ET_DYN}.bytes(t), ""},
		{"object file", fakeELF{typ: elf.ET_REL}.bytes(t), ""},
		{"Go build info section, undecodable", fakeELF{typ: elf.ET_EXEC, interp: true, dynamic: true, sections: []string{".go.buildinfo"}}.bytes(t), reasonGo},
		{"other sections only", fakeELF{typ: elf.ET_EXEC, interp: true, dynamic: true, sections: []string{".text", ".data"}}.bytes(t), ""},
		{"Go program (this test)", goProg, reasonGo},
		{"shell script", []byte("#!/bin/sh\necho hi\n"), ""},
		{"empty file", nil, ""},
		{"truncated ELF header", []byte("\x7fELF\x02\x01\x01"), ""},
		{"garbage", bytes.Repeat([]byte{0xff}, 4096), ""},
	} {
		if got := unwrappable(bytes.NewReader(c.file)); got != c.want {
			t.Errorf("%s: unwrappable = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestWarnUnwrappable(t *testing.T) {
	dir := t.TempDir()
	static := dir + "/static"
	if err := os.WriteFile(static, fakeELF{typ: elf.ET_EXEC}.bytes(t), 0o755); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	warnUnwrappable(static, &b)
	want := "swrap: warning: " + static + " is " + reasonStatic + ", its sockets will use the real network stack, not the emulated network\n"
	if b.String() != want {
		t.Errorf("warning %q, want %q", b.String(), want)
	}
	b.Reset()
	warnUnwrappable(dir+"/missing", &b)
	if b.Len() != 0 {
		t.Errorf("a missing file gave a warning: %q", b.String())
	}
}
