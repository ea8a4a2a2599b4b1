package tests

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The version the installed pkg-config and CMake files claim
// (SOCKET_WRAPPER_VERSION in the Makefile), and the minimum recent Samba's
// build asks pkg-config for.
const (
	claimedVersion = "1.5.2"
	sambaMinimum   = "1.5.1"
)

// installedFiles is what `make install PREFIX=/usr` puts under DESTDIR, and
// for symlinks their targets ("" for regular files).
func installedFiles(libdir string) map[string]string {
	l := strings.TrimPrefix(libdir, "/")
	return map[string]string{
		"usr/bin/swrap":                                                 "",
		l + "/swrap/swrap-broker":                                       "",
		"usr/share/man/man1/swrap.1":                                    "",
		l + "/libswrap.so":                                              "",
		l + "/libsocket_wrapper.so.0":                                   "libswrap.so",
		l + "/libsocket_wrapper.so":                                     "libsocket_wrapper.so.0",
		l + "/libsocket_wrapper_noop.so.0":                              "",
		l + "/libsocket_wrapper_noop.so":                                "libsocket_wrapper_noop.so.0",
		"usr/include/socket_wrapper.h":                                  "",
		l + "/pkgconfig/socket_wrapper.pc":                              "",
		l + "/pkgconfig/socket_wrapper_noop.pc":                         "",
		l + "/cmake/socket_wrapper/socket_wrapper-config.cmake":         "",
		l + "/cmake/socket_wrapper/socket_wrapper-config-version.cmake": "",
	}
}

// libDir is LIBDIR for PREFIX=/usr, as the Makefile computes it.
func libDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(needTool(t, "gcc"), "-print-multiarch").Output()
	if err != nil {
		t.Fatalf("gcc -print-multiarch: %v", err)
	}
	if m := strings.TrimSpace(string(out)); m != "" {
		return "/usr/lib/" + m
	}
	return "/usr/lib"
}

// runMake runs make in the repository with args; "-o all" keeps it from
// rebuilding bin/ (make test built it) while other tests use it.
func runMake(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(needTool(t, "make"), append([]string{"-s", "-o", "all"}, args...)...)
	cmd.Dir = repoRoot
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// installTree runs `make install DESTDIR=T PREFIX=/usr` into a fresh T.
func installTree(t *testing.T) string {
	t.Helper()
	binPath(t, "swrap.1")
	dest := filepath.Join(t.TempDir(), "T")
	runMake(t, "install", "DESTDIR="+dest, "PREFIX=/usr")
	return dest
}

// filesUnder lists the non-directories under root, relative to it.
func filesUnder(t *testing.T, root string) []string {
	t.Helper()
	var got []string
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			rel, _ := filepath.Rel(root, p)
			got = append(got, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	return got
}

// checkInstalled asserts that root holds exactly the installed files:
// regular files or the right symlinks, the sonames and the noop library's
// exports.
func checkInstalled(t *testing.T, root, libdir string) {
	t.Helper()
	want := installedFiles(libdir)
	var names []string
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	if got := filesUnder(t, root); strings.Join(got, "\n") != strings.Join(names, "\n") {
		t.Errorf("installed files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(names, "\n"))
	}
	for name, target := range want {
		p := filepath.Join(root, name)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if target != "" {
			if got, _ := os.Readlink(p); got != target {
				t.Errorf("%s -> %q, want a symlink to %q", name, got, target)
			}
			continue
		}
		if !fi.Mode().IsRegular() {
			t.Errorf("%s is %v, want a regular file", name, fi.Mode())
		}
		exe := strings.HasSuffix(name, "bin/swrap") || strings.HasSuffix(name, "swrap-broker")
		if exe != (fi.Mode()&0o111 != 0) {
			t.Errorf("%s has mode %v", name, fi.Mode())
		}
	}
	l := filepath.Join(root, libdir)
	for lib, soname := range map[string]string{"libswrap.so": "libsocket_wrapper.so.0", "libsocket_wrapper_noop.so.0": "libsocket_wrapper_noop.so.0"} {
		f, err := elf.Open(filepath.Join(l, lib))
		if err != nil {
			t.Errorf("%s: %v", lib, err)
			continue
		}
		if got, err := f.DynString(elf.DT_SONAME); err != nil || len(got) != 1 || got[0] != soname {
			t.Errorf("%s: soname %q (%v), want %s", lib, got, err, soname)
		}
		syms, _ := f.DynamicSymbols()
		exported := map[string]bool{}
		for _, s := range syms {
			if s.Section != elf.SHN_UNDEF && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
				exported[s.Name] = true
			}
		}
		for _, fn := range []string{"socket_wrapper_enabled", "socket_wrapper_indicate_no_inet_fd"} {
			if !exported[fn] {
				t.Errorf("%s does not export %s", lib, fn)
			}
		}
		f.Close()
	}
	h, _ := os.ReadFile(filepath.Join(root, "usr/include/socket_wrapper.h"))
	for _, proto := range []string{"bool socket_wrapper_enabled(void);", "void socket_wrapper_indicate_no_inet_fd(int fd);"} {
		if !bytes.Contains(h, []byte(proto)) {
			t.Errorf("socket_wrapper.h lacks %q", proto)
		}
	}
}

// TestInstallAndUninstall: `make install DESTDIR=T PREFIX=/usr` puts every
// file in place (the list, symlinks, sonames, the noop library's exports,
// the header's prototypes), and `make uninstall` with the same variables
// leaves no file behind.
func TestInstallAndUninstall(t *testing.T) {
	libdir := libDir(t)
	dest := installTree(t)
	checkInstalled(t, dest, libdir)
	runMake(t, "uninstall", "DESTDIR="+dest, "PREFIX=/usr")
	if left := filesUnder(t, dest); len(left) > 0 {
		t.Errorf("make uninstall left %q", left)
	}
	for _, d := range []string{libdir + "/swrap", libdir + "/cmake/socket_wrapper"} {
		if _, err := os.Stat(filepath.Join(dest, d)); !os.IsNotExist(err) {
			t.Errorf("make uninstall left the directory %s (%v)", d, err)
		}
	}
}

// copyProgram copies a program of bin/ into dir, so that nothing runs from
// the build tree.
func copyProgram(t *testing.T, name, dir string) string {
	t.Helper()
	b, err := os.ReadFile(binPath(t, name))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// installedEnv is an environment that knows nothing of the build tree: no
// SWRAP_BROKER, PATH only the system's, plus extra.
func installedEnv(extra ...string) []string {
	var env []string
	for _, kv := range cleanEnv() {
		if !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	return append(append(env, "PATH=/usr/bin:/bin"), extra...)
}

// brokerExe is the executable of the broker serving dir (its pid from
// broker.lock), once it runs.
func brokerExe(t *testing.T, dir string) (int, string) {
	t.Helper()
	for i := 0; i < 400; i++ {
		b, err := os.ReadFile(filepath.Join(dir, "swrap", "broker.lock"))
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
			if err == nil {
				return pid, exe
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("no broker for %s", dir)
	return 0, ""
}

// TestInstalledTreeRunsAlone installs into T, moves T elsewhere (a relocated
// prefix), and runs a wrapped server and client from it alone: the server
// with LD_PRELOAD=<moved T>/LIBDIR/libsocket_wrapper.so.0 and no
// SWRAP_BROKER or build tree on PATH, the client with the installed
// `swrap run`. The lines cross, and the broker the shim started is the
// installed LIBDIR/swrap/swrap-broker of the moved tree.
func TestInstalledTreeRunsAlone(t *testing.T) {
	libdir := libDir(t)
	moved := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.Rename(installTree(t), moved); err != nil {
		t.Fatal(err)
	}
	progs := t.TempDir()
	server, client := copyProgram(t, "demo-server", progs), copyProgram(t, "demo-client", progs)
	dir := swrapDir(t)

	srv := exec.Command(server, "127.0.0.10", "7")
	srv.Env = installedEnv("LD_PRELOAD="+filepath.Join(moved, libdir, "libsocket_wrapper.so.0"),
		"SOCKET_WRAPPER_DIR="+dir, "SOCKET_WRAPPER_DEFAULT_IFACE=10")
	srv.Stdin = strings.NewReader("from the server\n")
	var srvOut bytes.Buffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()

	_, exe := brokerExe(t, dir)
	if want := filepath.Join(moved, libdir, "swrap", "swrap-broker"); exe != want {
		t.Errorf("the broker runs %s, want the installed %s", exe, want)
	}
	swrap := filepath.Join(moved, "usr/bin/swrap")
	for i := 0; ; i++ {
		st := exec.Command(swrap, "status", "--dir", dir)
		st.Env = installedEnv()
		out, _ := st.CombinedOutput()
		if strings.Contains(string(out), "127.0.0.10:7") {
			break
		}
		if i == 200 {
			t.Fatalf("the server does not listen on 127.0.0.10:7:\n%s\nserver: %s", out, srvOut.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
	cl := exec.Command(swrap, "run", "--dir", dir, "--iface", "11", "--", client, "127.0.0.10", "7")
	cl.Env = installedEnv()
	cl.Stdin = strings.NewReader("from the client\n")
	out, err := cl.CombinedOutput()
	if err != nil {
		t.Fatalf("installed swrap run demo-client: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "from the server") {
		t.Errorf("the client received %q, want the server's line", out)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	select {
	case err := <-done:
		if err != nil || !strings.Contains(srvOut.String(), "from the client") {
			t.Errorf("server: %v, received %q, want the client's line", err, srvOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the server did not end:\n%s", srvOut.String())
	}
}

// buildProbe compiles tests/testdata/noop_probe.c with the given compiler
// and linker flags.
func buildProbe(t *testing.T, flags ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "noop_probe")
	args := append([]string{"-Wall", "-Wextra", "-Werror", "-o", out, filepath.Join(repoRoot, "tests", "testdata", "noop_probe.c")}, flags...)
	if b, err := exec.Command(needTool(t, "gcc"), args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return out
}

// runProbe runs the probe with env and returns its output.
func runProbe(t *testing.T, probe string, env []string) string {
	t.Helper()
	cmd := exec.Command(probe)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", probe, err, out)
	}
	return string(out)
}

// checkProbeNeedsNoop asserts that the probe was linked with the noop
// library, by soname.
func checkProbeNeedsNoop(t *testing.T, probe string) {
	t.Helper()
	f, err := elf.Open(probe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, _ := f.ImportedLibraries()
	if !strings.Contains(strings.Join(libs, " "), "libsocket_wrapper_noop.so.0") {
		t.Errorf("the probe needs %q, want libsocket_wrapper_noop.so.0", libs)
	}
}

// TestPkgConfigAndNoopLibrary: with PKG_CONFIG_PATH into T (and the .pc
// files' prefix relocated to T by PKG_CONFIG_SYSROOT_DIR, or by
// --define-variable=prefix), pkg-config reports socket_wrapper 1.5.2 (at
// least Samba's minimum), its Libs and libsocket_wrapper_so_path name T's
// library, and socket_wrapper_noop's flags build a program that prints
// false unwrapped, false under the preload with no SOCKET_WRAPPER_DIR, and
// true (with host 11's source address) under the preload with one.
func TestPkgConfigAndNoopLibrary(t *testing.T) {
	pc := needTool(t, "pkg-config")
	libdir := libDir(t)
	dest := installTree(t)
	pcEnv := append(cleanEnv(), "PKG_CONFIG_PATH="+filepath.Join(dest, libdir, "pkgconfig"),
		"PKG_CONFIG_LIBDIR=/nonexistent", "PKG_CONFIG_SYSROOT_DIR="+dest)
	query := func(env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command(pc, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("pkg-config %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if v := query(pcEnv, "--modversion", "socket_wrapper"); v != claimedVersion {
		t.Errorf("pkg-config --modversion socket_wrapper = %q, want %s", v, claimedVersion)
	}
	query(pcEnv, "--atleast-version="+sambaMinimum, "socket_wrapper")
	lib := filepath.Join(dest, libdir, "libsocket_wrapper.so")
	if got := query(pcEnv, "--libs", "socket_wrapper"); got != lib {
		t.Errorf("pkg-config --libs socket_wrapper = %q, want %s", got, lib)
	}
	noSysroot := append(cleanEnv(), "PKG_CONFIG_PATH="+filepath.Join(dest, libdir, "pkgconfig"), "PKG_CONFIG_LIBDIR=/nonexistent")
	if got := query(noSysroot, "--define-variable=prefix="+dest+"/usr", "--variable=libsocket_wrapper_so_path", "socket_wrapper"); got != lib {
		t.Errorf("libsocket_wrapper_so_path with prefix=%s/usr is %q, want %s", dest, got, lib)
	}
	if _, err := os.Stat(lib); err != nil {
		t.Errorf("the library pkg-config names: %v", err)
	}
	flags := strings.Fields(query(pcEnv, "--cflags", "--libs", "socket_wrapper_noop"))
	if want := []string{"-I" + dest + "/usr/include", "-L" + dest + libdir, "-lsocket_wrapper_noop"}; strings.Join(flags, " ") != strings.Join(want, " ") {
		t.Errorf("pkg-config --cflags --libs socket_wrapper_noop = %q, want %q", flags, want)
	}
	probe := buildProbe(t, flags...)
	checkProbeNeedsNoop(t, probe)

	ldPath := "LD_LIBRARY_PATH=" + filepath.Join(dest, libdir)
	if out := runProbe(t, probe, append(cleanEnv(), ldPath)); !strings.Contains(out, "socket_wrapper_enabled: false\n") {
		t.Errorf("unwrapped, the probe printed %q, want false", out)
	}
	if out := runProbe(t, probe, append(cleanEnv(), ldPath, "LD_PRELOAD="+lib)); !strings.Contains(out, "socket_wrapper_enabled: false\n") {
		t.Errorf("preloaded without SOCKET_WRAPPER_DIR, the probe printed %q, want false", out)
	}
	dir := swrapDir(t)
	out := runProbe(t, probe, installedEnv(ldPath, "LD_PRELOAD="+lib, "SOCKET_WRAPPER_DIR="+dir, "SOCKET_WRAPPER_DEFAULT_IFACE=11"))
	if !strings.Contains(out, "socket_wrapper_enabled: true\n") || !strings.Contains(out, "local address: 127.0.0.11\n") {
		t.Errorf("wrapped, the probe printed %q, want true and 127.0.0.11", out)
	}
}

// TestCMakeFindPackage writes a small CMake project that calls
// find_package(socket_wrapper 1.5.1), links its probe with the
// socket_wrapper_noop target and runs it as a test with
// LD_PRELOAD=${SOCKET_WRAPPER_LIBRARY}: it configures against T through
// CMAKE_PREFIX_PATH, SOCKET_WRAPPER_LIBRARY lies in T, and the test is
// wrapped (socket_wrapper_enabled() true, host 11's address).
func TestCMakeFindPackage(t *testing.T) {
	cmake, ctest := needTool(t, "cmake"), needTool(t, "ctest")
	needTool(t, "make")
	libdir := libDir(t)
	dest := installTree(t)
	dir := swrapDir(t)
	src, build := t.TempDir(), t.TempDir()
	probeSrc, _ := os.ReadFile(filepath.Join(repoRoot, "tests", "testdata", "noop_probe.c"))
	os.WriteFile(filepath.Join(src, "probe.c"), probeSrc, 0o644)
	os.WriteFile(filepath.Join(src, "CMakeLists.txt"), []byte(`cmake_minimum_required(VERSION 3.13)
project(swrap_probe C)
find_package(socket_wrapper `+sambaMinimum+` REQUIRED)
file(WRITE "${CMAKE_BINARY_DIR}/library.txt" "${SOCKET_WRAPPER_LIBRARY}")
enable_testing()
add_executable(probe probe.c)
target_link_libraries(probe PRIVATE socket_wrapper_noop)
add_test(NAME wrapped COMMAND probe expect-wrapped)
set_tests_properties(wrapped PROPERTIES ENVIRONMENT
    "LD_PRELOAD=${SOCKET_WRAPPER_LIBRARY};SOCKET_WRAPPER_DIR=`+dir+`;SOCKET_WRAPPER_DEFAULT_IFACE=11")
`), 0o644)
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = build
		cmd.Env = installedEnv()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run(cmake, "-DCMAKE_PREFIX_PATH="+dest+"/usr", src)
	run(cmake, "--build", ".")
	lib, _ := os.ReadFile(filepath.Join(build, "library.txt"))
	if want := filepath.Join(dest, libdir, "libsocket_wrapper.so"); string(lib) != want {
		t.Errorf("SOCKET_WRAPPER_LIBRARY = %q, want %s", lib, want)
	}
	checkProbeNeedsNoop(t, filepath.Join(build, "probe"))
	out := run(ctest, "-V")
	if !strings.Contains(out, "socket_wrapper_enabled: true") || !strings.Contains(out, "local address: 127.0.0.11") {
		t.Errorf("the CMake project's test was not wrapped:\n%s", out)
	}
	// The version file refuses a newer socket_wrapper than it claims.
	os.WriteFile(filepath.Join(src, "CMakeLists.txt"), []byte("cmake_minimum_required(VERSION 3.13)\nproject(p C)\nfind_package(socket_wrapper 9.0 REQUIRED)\n"), 0o644)
	cmd := exec.Command(cmake, "-DCMAKE_PREFIX_PATH="+dest+"/usr", src)
	cmd.Dir = t.TempDir()
	if b, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("find_package(socket_wrapper 9.0) succeeded:\n%s", b)
	}
}

// TestManPageMatchesHelp: bin/swrap.1 (made by make) is what the swrap
// binary generates now, man renders it without warnings, and it lists the
// same commands and environment variables as `swrap help` and `swrap help
// environment`, which are those of the README's Environment table.
func TestManPageMatchesHelp(t *testing.T) {
	swrap := binPath(t, "swrap")
	page, err := os.ReadFile(binPath(t, "swrap.1"))
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := exec.Command(swrap, "help", "--roff", "0.1.0").Output()
	if err != nil {
		t.Fatal(err)
	}
	noDate := regexp.MustCompile(`(?m)^\.TH .*$`)
	if !bytes.Equal(noDate.ReplaceAll(page, nil), noDate.ReplaceAll(fresh, nil)) {
		t.Errorf("bin/swrap.1 is not what `swrap help --roff` writes now (run make)")
	}
	help, _ := exec.Command(swrap, "help").Output()
	envHelp, _ := exec.Command(swrap, "help", "environment").Output()

	helpCmds := uniq(regexp.MustCompile(`(?m)^  swrap ([a-z]+)`).FindAllSubmatch(help, -1))
	manCmds := uniq(regexp.MustCompile(`(?m)^\.SS ([a-z]+)$`).FindAllSubmatch(page, -1))
	if len(helpCmds) < 6 || helpCmds != manCmds {
		t.Errorf("commands: swrap help lists %q, the man page %q", helpCmds, manCmds)
	}
	envRe := regexp.MustCompile(`(?m)^  ([A-Z][A-Z0-9_]+)$`)
	helpEnv := uniq(envRe.FindAllSubmatch(envHelp, -1))
	manEnv := uniq(regexp.MustCompile(`(?m)^\.TP\n\.B ([A-Z][A-Z0-9_]+)$`).FindAllSubmatch(page, -1))
	readme, _ := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	readmeEnv := uniq(regexp.MustCompile("(?m)^\\| `([A-Z][A-Z0-9_]+)` \\|").FindAllSubmatch(readme, -1))
	if len(helpEnv) < 10 || helpEnv != manEnv || helpEnv != readmeEnv {
		t.Errorf("environment: swrap help environment lists %q,\nthe man page %q,\nthe README %q", helpEnv, manEnv, readmeEnv)
	}
	for _, v := range strings.Fields(helpEnv) {
		if !bytes.Contains(help, []byte(v)) {
			t.Errorf("swrap help does not name %s", v)
		}
	}
	for _, sec := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "ENVIRONMENT", "NETWORK CONDITIONS", "FILES"} {
		if !bytes.Contains(page, []byte("\n.SH "+sec+"\n")) {
			t.Errorf("the man page has no %s section", sec)
		}
	}

	man := needTool(t, "man")
	cmd := exec.Command(man, "-l", "--warnings", binPath(t, "swrap.1"))
	cmd.Env = append(cleanEnv(), "MANWIDTH=80", "MAN_KEEP_FORMATTING=0", "PAGER=cat", "MANPAGER=cat")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Errorf("man -l bin/swrap.1: %v\n%s", err, stderr.String())
	}
	text := regexp.MustCompile(".\b").ReplaceAllString(stdout.String(), "")
	for _, want := range append(strings.Fields(helpEnv), "swrap link set [--dir D] RULE...", "10->11 delay=50ms jitter=5ms loss=5% seed=42", "--iface N") {
		if !strings.Contains(text, want) {
			t.Errorf("the rendered man page lacks %q", want)
		}
	}
}

// uniq is the sorted, de-duplicated first submatches, joined by blanks.
func uniq(ms [][][]byte) string {
	set := map[string]bool{}
	for _, m := range ms {
		set[string(m[1])] = true
	}
	var s []string
	for k := range set {
		s = append(s, k)
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

// TestDebPackage: `make deb` builds bin/swrap_VERSION_ARCH.deb of the
// PREFIX=/usr tree, with the control fields a CI machine's apt needs
// (Depends on libc6, and it takes libsocket-wrapper's place). Under CI=true,
// or as root with SWRAP_TEST_DPKG=1, it is installed into the real system
// with dpkg -i: dpkg -L lists every file, a program preloading the bare
// name libsocket_wrapper.so is wrapped by it (broker started from
// /usr/LIBDIR/swrap/), and dpkg -r removes every file again.
func TestDebPackage(t *testing.T) {
	dpkgDeb := needTool(t, "dpkg-deb")
	needTool(t, "objdump")
	libdir := libDir(t)
	arch, err := exec.Command(needTool(t, "dpkg"), "--print-architecture").Output()
	if err != nil {
		t.Fatal(err)
	}
	runMake(t, "deb")
	deb := filepath.Join(repoRoot, "bin", "swrap_0.1.0_"+strings.TrimSpace(string(arch))+".deb")
	fields, err := exec.Command(dpkgDeb, "--field", deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb --field %s: %v", deb, err)
	}
	for _, want := range []string{
		"Package: swrap\n", "Version: 0.1.0\n", "Architecture: " + strings.TrimSpace(string(arch)) + "\n",
		"Depends: libc6 (>= 2.", "Provides: libsocket-wrapper (= " + claimedVersion + ")\n",
		"Conflicts: libsocket-wrapper\n", "Replaces: libsocket-wrapper\n",
	} {
		if !strings.Contains(string(fields), want) {
			t.Errorf("control lacks %q:\n%s", want, fields)
		}
	}
	contents, err := exec.Command(dpkgDeb, "--contents", deb).Output()
	if err != nil {
		t.Fatal(err)
	}
	for name, target := range installedFiles(libdir) {
		want := " ./" + name
		if target != "" {
			want += " -> " + target
		}
		if !strings.Contains(string(contents), want+"\n") {
			t.Errorf("the package lacks %s:\n%s", want, contents)
		}
	}
	if strings.Count(string(contents), "root/root") != strings.Count(string(contents), "\n") {
		t.Errorf("files not owned by root/root:\n%s", contents)
	}

	if os.Getenv("CI") != "true" && (os.Geteuid() != 0 || os.Getenv("SWRAP_TEST_DPKG") != "1") {
		t.Skip("not installing into the system: set CI=true, or SWRAP_TEST_DPKG=1 as root")
	}
	dpkg := needTool(t, "dpkg")
	if exec.Command(dpkg, "-s", "swrap").Run() == nil || exec.Command(dpkg, "-s", "libsocket-wrapper").Run() == nil {
		t.Skip("swrap or libsocket-wrapper is installed already; not touching the system's")
	}
	if out, err := exec.Command(dpkg, "-i", deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	removed := false
	t.Cleanup(func() {
		if !removed {
			exec.Command(dpkg, "-r", "swrap").Run()
		}
	})
	listed, err := exec.Command(dpkg, "-L", "swrap").Output()
	if err != nil {
		t.Fatal(err)
	}
	for name := range installedFiles(libdir) {
		p := "/" + name
		if !strings.Contains(string(listed), p+"\n") {
			t.Errorf("dpkg -L swrap does not list %s", p)
		}
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("installed: %v", err)
		}
	}
	// The system's pkg-config and ld.so find it with no paths given.
	if pc, err := exec.LookPath("pkg-config"); err == nil {
		if v, _ := exec.Command(pc, "--modversion", "socket_wrapper").Output(); strings.TrimSpace(string(v)) != claimedVersion {
			t.Errorf("system pkg-config --modversion socket_wrapper = %q", v)
		}
	}
	probe := buildProbe(t, "-lsocket_wrapper_noop")
	if out := runProbe(t, probe, cleanEnv()); !strings.Contains(out, "socket_wrapper_enabled: false\n") {
		t.Errorf("unwrapped, the probe printed %q", out)
	}
	dir := swrapDir(t)
	out := runProbe(t, probe, installedEnv("LD_PRELOAD=libsocket_wrapper.so", "SOCKET_WRAPPER_DIR="+dir, "SOCKET_WRAPPER_DEFAULT_IFACE=11"))
	if !strings.Contains(out, "socket_wrapper_enabled: true\n") || !strings.Contains(out, "local address: 127.0.0.11\n") {
		t.Errorf("with LD_PRELOAD=libsocket_wrapper.so, the probe printed %q", out)
	}
	if _, exe := brokerExe(t, dir); exe != filepath.Join(libdir, "swrap", "swrap-broker") {
		t.Errorf("the broker runs %s, want the installed one", exe)
	}
	stopBroker(t, dir)

	if out, err := exec.Command(dpkg, "-r", "swrap").CombinedOutput(); err != nil {
		t.Fatalf("dpkg -r: %v\n%s", err, out)
	}
	removed = true
	for name := range installedFiles(libdir) {
		if _, err := os.Lstat("/" + name); !os.IsNotExist(err) {
			t.Errorf("after dpkg -r, /%s remains (%v)", name, err)
		}
	}
	if out, _ := exec.Command("dpkg-query", "-W", "-f", "${Status}", "swrap").CombinedOutput(); strings.Contains(string(out), "installed") && !strings.Contains(string(out), "not-installed") {
		t.Errorf("after dpkg -r, swrap's status is %q", out)
	}
}
