package engine_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/internal/stack"
)

// putCounting counts the records written to a store.
type putCounting struct {
	store.Store
	puts atomic.Int64
}

func (p *putCounting) Put(ctx context.Context, ns, key string, value []byte) error {
	p.puts.Add(1)
	return p.Store.Put(ctx, ns, key, value)
}

// TestWarmStandbyWritesNothingUntilLead: an HA follower's engine keeps a
// standby session to the gateway and the intent compiled against the
// leader's saved pool tables, writes nothing (gateway or store) even when
// the leader's session goes, and once Lead raises its election id on that
// session finds the gateway holding exactly its want: nothing written, no
// pipeline pushed.
func TestWarmStandbyWritesNothingUntilLead(t *testing.T) {
	a := startAgent(t, nil)
	mem := store.NewMemory()
	lead, err := engine.New(engine.Config{P4Info: stack.P4Info(t), ElectionIDHigh: 3, ElectionID: 7, Interval: time.Hour,
		Retry: 50 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Store: mem, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	stack.Commit(t, lead, load(t, intentYAML([]string{a.addr}, threeBackends())), 1)
	stack.WaitVersion(t, lead, 1)
	// A rebuilt table (not what a fresh compilation of four backends gives):
	// the standby must take it from the saved tables to match the gateway.
	in2 := load(t, intentYAML([]string{a.addr}, append(threeBackends(), backendSpec{"base-4", 14, 1, ""})))
	stack.Commit(t, lead, in2, 2)
	stack.WaitVersion(t, lead, 2)
	held := a.entries(t)

	counted := &putCounting{Store: mem}
	sb, err := engine.New(engine.Config{P4Info: stack.P4Info(t), Standby: true, ElectionID: 99, Interval: time.Hour,
		Retry: 50 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Store: counted, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(context.Background()) })
	if err := sb.ReloadSaved(ctx(t)); err != nil {
		t.Fatal(err)
	}
	stack.Commit(t, sb, in2, 2)
	waitStatus(t, sb, "a connected standby", func(s engine.GatewayStatus) bool { return s.Connected && !s.Primary && s.Standby })
	lead.Close(ctx(t)) // the leader's session ends: the gateway has no primary
	time.Sleep(300 * time.Millisecond)
	if st := sb.Status()[0]; st.Primary || st.Reconciles != 0 || st.EntriesWritten != 0 || counted.puts.Load() != 0 {
		t.Fatalf("the standby acted before Lead: %+v, %d store puts", st, counted.puts.Load())
	}
	if !sb.Standby() {
		t.Fatal("Standby() false before Lead")
	}

	if sb.KeepInForce(2) {
		t.Fatal("KeepInForce true on a standby")
	}

	sb.Lead(4, 7)
	// Elected, the version it compiled standing by stays in force as it is
	// (the change pipeline's Start then compiles nothing); another does not.
	if sb.KeepInForce(1) || !sb.KeepInForce(2) {
		t.Fatal("KeepInForce: want false for version 1, true for the version held (2)")
	}
	st := stack.WaitVersion(t, sb, 2)[0]
	if !st.Primary || st.Standby || st.EntriesWritten != 0 || st.PipelinePushes != 0 || st.ForeignRemoved != 0 {
		t.Fatalf("after Lead: %+v, want primary, nothing written or pushed", st)
	}
	sameEntries(t, a.entries(t), held)
	// Leading, it writes: a change lands.
	stack.Commit(t, sb, load(t, intentYAML([]string{a.addr}, threeBackends())), 3)
	if st := stack.WaitVersion(t, sb, 3)[0]; st.EntriesWritten == 0 {
		t.Fatalf("change after Lead wrote nothing: %+v", st)
	}
}
