//go:build linux

package bpf

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// TestUpdatesAreAtomicForPackets runs one packet over and over while another
// goroutine keeps changing its decision: a rule with a new mask that moves it
// comes and goes (mask list republished each time) and its gray backend is
// rewritten between two values. Every output must be one the model gives for
// one of the states the writer passes through, never a mix.
func TestUpdatesAreAtomicForPackets(t *testing.T) {
	d := openTest(t)
	ms := basicModel(t)
	applyState(t, d, ms)
	aimPorts(t, d, portsOf(ms), -1)
	frame, _ := vectorCase(t, "overlay_vm_cutover") // vni 5001 src 10.0.0.5 -> gray

	// The writer's states: backends A or B for the gray pool, rule R present or not.
	back := model.Process(ms, frame).BackendID
	beA := ms.Backends[back]
	beB := beA
	beB.DMAC = [6]byte{2, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb}
	beB.UnderlayIP = 0x0a090909
	mover := model.GrayRule{Priority: 300, Match: pipeline.FlowKey{VNI: 5001, Src: 0x0a000005, Dst: 0xc0a80101},
		Mask: pipeline.FlowKey{VNI: pipeline.MaxVNI, Src: 0xffffffff, Dst: 0xffffffff}, Action: model.SetPool, Pool: 1}
	valid := map[string]bool{}
	for _, be := range []model.Backend{beA, beB} {
		for _, withRule := range []bool{false, true} {
			s := *ms
			s.Backends = map[uint16]model.Backend{}
			for id, b := range ms.Backends {
				s.Backends[id] = b
			}
			s.Backends[back] = be
			s.GrayRules = append([]model.GrayRule(nil), ms.GrayRules...)
			if withRule {
				s.GrayRules = append(s.GrayRules, mover)
			}
			valid[string(model.Process(&s, frame).Frame)] = true
		}
	}
	if len(valid) != 3 {
		t.Fatalf("%d distinct valid outputs, want 3 (base, gray A, gray B)", len(valid))
	}

	var stop atomic.Bool
	var wg sync.WaitGroup
	var writes atomic.Int64
	errc := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := mover
		for i := 0; !stop.Load(); i++ {
			be := beA
			if i%2 == 1 {
				be = beB
			}
			err := d.SetBackendEntry(back, be)
			if err == nil {
				if i%3 == 0 {
					err = d.InsertRule(r)
				} else if i%3 == 2 {
					err = d.DeleteRule(r)
				}
			}
			if err != nil {
				errc <- err
				return
			}
			writes.Add(1)
		}
	}()
	seen := map[string]int{}
	deadline := time.Now().Add(time.Second)
	n := 0
	for ; time.Now().Before(deadline); n++ {
		ret, out := run(t, d.Program(), frame)
		if ret != xdpRedirect || !valid[string(out)] {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("packet %d: verdict %s, output %x is none of the writer's states", n, verdictName(ret), out)
		}
		seen[string(out)]++
	}
	stop.Store(true)
	wg.Wait()
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
	t.Logf("%d packets, %d writes, %d distinct outputs", n, writes.Load(), len(seen))
	if len(seen) < 2 || writes.Load() < 10 {
		t.Fatalf("the writer did not interleave with the packets (%d outputs, %d writes)", len(seen), writes.Load())
	}
}
