//go:build linux

// Package bpftest holds what the tests of package bpf, inside and outside
// it, need of the machine.
package bpftest

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// NeedPins skips t unless maps can be pinned: the process is root (why says
// what else root is needed for) and bpffs is mounted at /sys/fs/bpf.
func NeedPins(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root to %s (run go test as root)", why)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs("/sys/fs/bpf", &fs); err != nil || fs.Type != unix.BPF_FS_MAGIC {
		t.Skip("no bpffs mounted at /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf)")
	}
}
