// Package p4infotest gives tests the committed P4Info (package p4src),
// loaded: the schema every agent and controller test programs against.
package p4infotest

import (
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/p4src"
)

// Committed returns the committed P4Info, failing t if it does not load.
func Committed(t testing.TB) *p4info.Info {
	t.Helper()
	info, err := p4info.Load(p4src.P4InfoText)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// ThroughBinary returns pi marshalled to its binary encoding and read back,
// as a controller's P4Info arrives over P4Runtime; it fails t on an error.
func ThroughBinary(t testing.TB, pi *p4configv1.P4Info) *p4configv1.P4Info {
	t.Helper()
	bin, err := proto.Marshal(pi)
	if err != nil {
		t.Fatal(err)
	}
	var out p4configv1.P4Info
	if err := proto.Unmarshal(bin, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}
