//go:build linux

package bpf

import "errors"

// Sentinel errors. Errors returned by this package wrap one of them (or an
// error of the kernel or cilium/ebpf) so callers can test with errors.Is.
var (
	// ErrIncompatiblePin means the maps pinned under the pin directory were
	// made by a program with a different layout. The message says which map
	// and what differs; fix it by removing the pins (graygw-agent --repin, or
	// Options.Repin), which starts from empty tables and zero counters.
	ErrIncompatiblePin = errors.New("pinned maps are incompatible with this program")
	// ErrInvalid means an argument is out of range (a bucket beyond
	// pipeline.Buckets, a zero priority, a VNI wider than 24 bits...).
	ErrInvalid = errors.New("invalid argument")
	// ErrNotFound means the entry to delete, modify or read does not exist.
	ErrNotFound = errors.New("entry not found")
	// ErrExists means an entry with the same key is already installed.
	ErrExists = errors.New("entry already exists")
	// ErrFull means a table is full, or a target bound is reached: the
	// tuple-space search's mask list (MaxMasks), the pools that own buckets
	// (MaxPools).
	ErrFull = errors.New("table full")
	// ErrNotAttached means the interface has no program attached by graygw.
	ErrNotAttached = errors.New("not attached")
)
