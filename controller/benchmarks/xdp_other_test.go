//go:build !linux

package benchmarks

// xdpKinds: the XDP dataplane is Linux only.
func xdpKinds() ([]dpKind, string) { return nil, "the XDP dataplane needs Linux" }
