// ferry-sandbox runs one program confined by the kernel, so that a tenant's input cannot make it read, write or
// reach anything the controller can. It is the fence around kustomize (and later helm): their own checks on what
// a kustomization may name have been bypassed before (Flux's CVE-2022-24877 and CVE-2022-24817), so the process
// itself is given access to the build copy alone.
//
//	ferry-sandbox [--read DIR]... --exec PROGRAM [--max-memory BYTES] [--max-cpu-seconds N] [--probe] -- ARGS...
//
// Landlock (Linux 5.13+) needs no privilege and no namespace, so it works as the non-root user of a restricted pod
// where mount and user namespaces are refused. Everything Landlock knows how to deny is denied except reading the
// --read directories and executing PROGRAM; TCP is denied where the kernel can (ABI 4+), and so are signals and
// abstract Unix sockets outside the sandbox (ABI 6+). Resource limits bound memory, CPU time and open files.
//
// Exit codes: the program's own, or 125 when the sandbox cannot be set up (the reason on stderr), so that the
// caller never mistakes an unconfined run for a confined one.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"unsafe"
)

// Landlock's system calls have the same numbers on every architecture (they come after the unified table).
const (
	sysLandlockCreateRuleset = 444
	sysLandlockAddRule       = 445
	sysLandlockRestrictSelf  = 446
	createRulesetVersion     = 1
	rulePathBeneath          = 1
	prSetNoNewPrivs          = 38
	setupFailed              = 125
	// RLIMIT_DATA counts the private writable memory a process maps (Linux 4.7+). The address-space limit would be
	// the obvious choice, but a Go program (kustomize) reserves hundreds of MiB of address space just to start.
	rlimitData = 2
	// O_PATH (not in package syscall): a handle that names a path for the rule without opening it for reading.
	oPath = 0x200000
)

// Filesystem rights by the ABI that introduced them.
const (
	fsExecute               = 1 << 0
	fsWriteFile             = 1 << 1
	fsReadFile              = 1 << 2
	fsReadDir               = 1 << 3
	fsRemoveDir             = 1 << 4
	fsRemoveFile            = 1 << 5
	fsMakeChar              = 1 << 6
	fsMakeDir               = 1 << 7
	fsMakeReg               = 1 << 8
	fsMakeSock              = 1 << 9
	fsMakeFifo              = 1 << 10
	fsMakeBlock             = 1 << 11
	fsMakeSym               = 1 << 12
	fsAllV1                 = 1<<13 - 1
	fsRefer                 = 1 << 13 // ABI 2
	fsTruncate              = 1 << 14 // ABI 3
	fsIoctlDev              = 1 << 15 // ABI 5
	netBindTCP              = 1 << 0  // ABI 4
	netConnTCP              = 1 << 1  // ABI 4
	scopeAbstractUnixSocket = 1 << 0  // ABI 6
	scopeSignal             = 1 << 1  // ABI 6
)

// rulesetAttr is struct landlock_ruleset_attr as of ABI 6; the kernel takes the size it is given.
type rulesetAttr struct {
	handledAccessFS  uint64
	handledAccessNet uint64
	scoped           uint64
}

type pathBeneathAttr struct {
	allowedAccess uint64
	parentFd      int32
}

type options struct {
	read          []string
	exec          string
	maxMemory     uint64
	maxCPUSeconds uint64
	probe         bool
	args          []string
}

type stringList []string

func (list *stringList) String() string         { return strings.Join(*list, ",") }
func (list *stringList) Set(value string) error { *list = append(*list, value); return nil }

func parseOptions() (options, error) {
	var parsed options
	var read stringList
	flags := flag.NewFlagSet("ferry-sandbox", flag.ContinueOnError)
	flags.Var(&read, "read", "directory the program may read (repeatable)")
	flags.StringVar(&parsed.exec, "exec", "", "absolute path of the program to run")
	flags.Uint64Var(&parsed.maxMemory, "max-memory", 0, "limit on private writable memory in bytes (0: none)")
	flags.Uint64Var(&parsed.maxCPUSeconds, "max-cpu-seconds", 0, "CPU time limit in seconds (0: none)")
	flags.BoolVar(&parsed.probe, "probe", false, "print the Landlock ABI version and exit (0 when confinement works)")
	if err := flags.Parse(os.Args[1:]); err != nil {
		return parsed, err
	}
	parsed.read = read
	parsed.args = flags.Args()
	if !parsed.probe && !strings.HasPrefix(parsed.exec, "/") {
		return parsed, errors.New("--exec must be an absolute path")
	}
	return parsed, nil
}

func landlockABI() int {
	version, _, errno := syscall.Syscall(sysLandlockCreateRuleset, 0, 0, createRulesetVersion)
	if errno != 0 {
		return 0
	}
	return int(version)
}

// handledRights lists every right this kernel can deny, so that each one not granted below is denied.
func handledRights(abi int) rulesetAttr {
	attr := rulesetAttr{handledAccessFS: fsAllV1}
	if abi >= 2 {
		attr.handledAccessFS |= fsRefer
	}
	if abi >= 3 {
		attr.handledAccessFS |= fsTruncate
	}
	if abi >= 4 {
		attr.handledAccessNet = netBindTCP | netConnTCP
	}
	if abi >= 5 {
		attr.handledAccessFS |= fsIoctlDev
	}
	if abi >= 6 {
		attr.scoped = scopeAbstractUnixSocket | scopeSignal
	}
	return attr
}

func attrSize(abi int) uintptr {
	switch {
	case abi >= 6:
		return 24
	case abi >= 4:
		return 16
	default:
		return 8
	}
}

func allow(ruleset int, path string, rights uint64) error {
	fd, err := syscall.Open(path, oPath|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cannot open %s: %w", path, err)
	}
	defer syscall.Close(fd)
	var stat syscall.Stat_t
	if err := syscall.Fstat(fd, &stat); err != nil {
		return fmt.Errorf("cannot stat %s: %w", path, err)
	}
	if stat.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		// Directory rights on a file are refused by the kernel; only file rights apply.
		rights &= fsExecute | fsReadFile | fsWriteFile | fsTruncate | fsIoctlDev
	}
	rule := pathBeneathAttr{allowedAccess: rights, parentFd: int32(fd)}
	_, _, errno := syscall.Syscall6(sysLandlockAddRule, uintptr(ruleset), rulePathBeneath, uintptr(unsafe.Pointer(&rule)), 0, 0, 0)
	if errno != 0 {
		return fmt.Errorf("cannot allow %s: %w", path, errno)
	}
	return nil
}

func confine(opts options, abi int) error {
	attr := handledRights(abi)
	ruleset, _, errno := syscall.Syscall(sysLandlockCreateRuleset, uintptr(unsafe.Pointer(&attr)), attrSize(abi), 0)
	if errno != 0 {
		return fmt.Errorf("landlock_create_ruleset: %w", errno)
	}
	defer syscall.Close(int(ruleset))
	for _, dir := range opts.read {
		if err := allow(int(ruleset), dir, fsReadFile|fsReadDir); err != nil {
			return err
		}
	}
	if opts.exec != "" {
		if err := allow(int(ruleset), opts.exec, fsExecute|fsReadFile); err != nil {
			return err
		}
	}
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRCTL, prSetNoNewPrivs, 1, 0, 0, 0, 0); errno != 0 {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", errno)
	}
	if _, _, errno := syscall.RawSyscall(sysLandlockRestrictSelf, ruleset, 0, 0); errno != 0 {
		return fmt.Errorf("landlock_restrict_self: %w", errno)
	}
	return nil
}

func limit(resource int, value uint64) error {
	if value == 0 {
		return nil
	}
	return syscall.Setrlimit(resource, &syscall.Rlimit{Cur: value, Max: value})
}

func setLimits(opts options) error {
	if err := limit(rlimitData, opts.maxMemory); err != nil {
		return fmt.Errorf("memory limit: %w", err)
	}
	if opts.maxCPUSeconds > 0 {
		// The soft limit sends SIGXCPU; the hard limit a second later kills a program that ignores it.
		if err := syscall.Setrlimit(syscall.RLIMIT_CPU, &syscall.Rlimit{Cur: opts.maxCPUSeconds, Max: opts.maxCPUSeconds + 1}); err != nil {
			return fmt.Errorf("CPU limit: %w", err)
		}
	}
	if err := limit(syscall.RLIMIT_CORE, 0); err != nil {
		return fmt.Errorf("core limit: %w", err)
	}
	return limit(syscall.RLIMIT_NOFILE, 256)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "ferry-sandbox: "+format+"\n", args...)
	os.Exit(setupFailed)
}

// probe confines this process to nothing and checks that the root directory has become unreadable, so a kernel or
// seccomp profile that accepts the calls but does not enforce them is caught before any tenant input is built.
func probe(abi int) {
	if err := confine(options{}, abi); err != nil {
		fail("%v", err)
	}
	if fd, err := syscall.Open("/", syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0); err == nil {
		syscall.Close(fd)
		fail("Landlock accepted the rules but did not enforce them")
	}
	fmt.Println(abi)
}

func main() {
	opts, err := parseOptions()
	if err != nil {
		fail("%v", err)
	}
	abi := landlockABI()
	if abi < 1 {
		fail("Landlock is not available (Linux 5.13 or newer with landlock in the kernel's lsm= list is needed)")
	}
	// Landlock and no_new_privs restrict the calling thread, and execve keeps that thread's restrictions: the
	// goroutine must not move to another OS thread between the two.
	runtime.LockOSThread()
	if opts.probe {
		probe(abi)
		return
	}
	if err := setLimits(opts); err != nil {
		fail("%v", err)
	}
	if err := confine(opts, abi); err != nil {
		fail("%v", err)
	}
	err = syscall.Exec(opts.exec, append([]string{opts.exec}, opts.args...), os.Environ())
	fail("cannot run %s: %v", opts.exec, err)
}
