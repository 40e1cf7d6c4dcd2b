// Package p4infotest gives tests the committed P4Info (package p4src),
// loaded: the schema every agent and controller test programs against.
package p4infotest

import (
	"testing"

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
