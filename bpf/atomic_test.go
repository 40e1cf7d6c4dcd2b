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

	w := startWriter(func(i int) error {
		be := beA
		if i%2 == 1 {
			be = beB
		}
		err := d.SetBackendEntry(back, be)
		if err == nil {
			if i%3 == 0 {
				err = d.InsertRule(mover)
			} else if i%3 == 2 {
				err = d.DeleteRule(mover)
			}
		}
		return err
	})
	seen := map[string]int{}
	deadline := time.Now().Add(time.Second)
	n := 0
	for ; time.Now().Before(deadline); n++ {
		ret, out := run(t, d.Program(), frame)
		if ret != xdpRedirect || !valid[string(out)] {
			w.stop()
			t.Fatalf("packet %d: verdict %s, output %x is none of the writer's states", n, verdictName(ret), out)
		}
		seen[string(out)]++
	}
	writes := w.finish(t)
	t.Logf("%d packets, %d writes, %d distinct outputs", n, writes, len(seen))
	if len(seen) < 2 || writes < 10 {
		t.Fatalf("the writer did not interleave with the packets (%d outputs, %d writes)", len(seen), writes)
	}
}

// writer is a goroutine writing under the packets of the atomicity tests.
type writer struct {
	done   atomic.Bool
	wg     sync.WaitGroup
	writes atomic.Int64
	err    error // what ended the writes early, read after wg.Wait
}

// startWriter calls write(0), write(1), ... on another goroutine until stop
// or an error.
func startWriter(write func(i int) error) *writer {
	w := &writer{}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for i := 0; !w.done.Load(); i++ {
			if err := write(i); err != nil {
				w.err = err
				return
			}
			w.writes.Add(1)
		}
	}()
	return w
}

// stop ends the writes and waits for the last one.
func (w *writer) stop() {
	w.done.Store(true)
	w.wg.Wait()
}

// finish stops the writer and returns how many writes succeeded; a write
// that failed fails the test.
func (w *writer) finish(t *testing.T) int64 {
	t.Helper()
	w.stop()
	if w.err != nil {
		t.Fatal(w.err)
	}
	return w.writes.Load()
}
