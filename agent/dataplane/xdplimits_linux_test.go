//go:build linux

package dataplane_test

import (
	"testing"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/bpf"
	"github.com/graygw/graygw/pipeline"
)

// TestXDPLimitsMatchBPF keeps dataplane.XDPLimits equal to the XDP dataplane's
// bounds (package bpf), which the Memory dataplane imitates in the agent's tests.
func TestXDPLimitsMatchBPF(t *testing.T) {
	want := dataplane.Limits{MaxPools: bpf.MaxPools, Buckets: pipeline.Buckets, MaxMasks: bpf.MaxMasks, MaxMasks6: bpf.MaxMasks6}
	if got := dataplane.XDPLimits(); got != want {
		t.Fatalf("XDPLimits() = %+v, bpf has %+v", got, want)
	}
}
