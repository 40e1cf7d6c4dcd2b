package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graygw/graygw/internal/etcdlab"
	"github.com/graygw/graygw/internal/stack"
)

// TestHAControllersSpeakingBGP: issue 14's item 4 with bgp.announceFrom:
// controller (the controllers are the BGP speakers, not the gateways). Two
// replicas (ha:, a 2s lease) on a 3-member etcd, in the lab's gateway
// namespace, with the same BGP identity (address, router id): only the
// leader runs BGP. The leader is SIGKILLed: BIRD sees its session drop and
// keeps the paths, stale (graceful restart, 120s); the other replica is
// elected, starts BGP, re-announces, and the graceful restart ends. BIRD's
// table is read every few milliseconds through all of it: both paths are
// there at every read.
//
// Replicas on different hosts have different addresses: BIRD then has one
// session per replica, keeps the dead one's paths stale for the restart time
// and gets the new leader's on the other session (not tested here).
func TestHAControllersSpeakingBGP(t *testing.T) {
	b, ok := insideBirdLab(t, newBirdLab)
	if !ok {
		return
	}
	cl := etcdlab.Start(t, 3, false) // inside the lab's namespace, as the test is
	a1, a2 := startStoppableAgent(t), startStoppableAgent(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "intent.yaml")
	if err := os.WriteFile(in, []byte(twoGatewayIntent(a1.Addr, a2.Addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	ra, rb := startHAPair(t, dir, cl.Endpoints(), cl.Endpoints(), "/bgp/", bgpSection(), in)
	a := ra.proc
	waitStandby(t, rb.api)
	b.waitHops(t, 30*time.Second, "announced by the leader", birdGW1, birdGW2)

	var lost atomic.Value
	reads := atomic.Int64{}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if hops, err := b.nextHops(); (err != nil || len(hops) != 2) && lost.Load() == nil {
				lost.Store(fmt.Sprintf("%v %v at %s", hops, err, time.Now().Format(time.StampMicro)))
			}
			reads.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	killed := time.Now()
	a.cmd.Process.Kill()
	gr := time.Duration(0)
	for time.Since(killed) < 10*time.Second && gr == 0 {
		if b.grActive() {
			gr = time.Since(killed)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if gr == 0 {
		t.Fatal("BIRD never held the paths in graceful restart after the leader's death")
	}
	leads, _ := waitLeads(t, rb.sock, stack.Dial(t, rb.sock), killed, "after the kill")
	for deadline := time.Now().Add(60 * time.Second); b.grActive(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the graceful restart never ended")
		}
	}
	done := time.Since(killed)
	b.waitHops(t, 5*time.Second, "refreshed by the new leader", birdGW1, birdGW2)
	close(stop)
	<-stopped
	t.Logf("leader SIGKILLed: BIRD in graceful restart after %s, b leads (in sync) after %s, graceful restart over (b's session up, paths refreshed) after %s; BIRD read %d times: %s",
		gr.Round(time.Millisecond), leads.Round(time.Millisecond), done.Round(time.Millisecond), reads.Load(),
		map[bool]string{true: "both paths every time", false: fmt.Sprint("a path missing: ", lost.Load())}[lost.Load() == nil])
	if v := lost.Load(); v != nil {
		t.Fatalf("BIRD lost a path across the election: %s", v)
	}
}
