package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/internal/birdlab"
	"github.com/graygw/graygw/internal/etcdlab"
	"github.com/graygw/graygw/internal/stack"
)

// startReplica starts controller replica id (ha: on the etcd cluster eps,
// reached from the hypervisor's namespace, where it runs) and returns its API
// socket. Its process is "controller-<id>" in the lab.
func (s *speakerLab) startReplica(id string, eps []string) string {
	s.t.Helper()
	sock := filepath.Join(s.dir, id+".sock")
	s.startControllerOn("controller-"+id, fmt.Sprintf("store:\n  etcd:\n    endpoints: [%s]\n    prefix: /spk/\nha: {id: %s, ttl: 2s}", strings.Join(eps, ", "), id), sock)
	return sock
}

// leadsInSync reports whether the replica behind c leads (a follower refuses
// Status) with both gateways in sync.
func leadsInSync(c graygwv1.ControllerClient) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := c.Status(ctx, &graygwv1.StatusRequest{})
	if err != nil || len(st.GetGateways()) != 2 {
		return false
	}
	for _, g := range st.GetGateways() {
		if !g.GetInSync() {
			return false
		}
	}
	return true
}

// birdPoller reads BIRD's paths to the VIP as fast as BIRD answers until
// stopped, and records every read that lacks one of want.
type birdPoller struct {
	reads int
	bad   []string
	stop  chan struct{}
	done  chan struct{}
}

func (s *speakerLab) pollBIRD(want ...string) *birdPoller {
	p := &birdPoller{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			got, err := s.hops()
			p.reads++
			if err != nil || !slices.Equal(got, want) {
				p.bad = append(p.bad, fmt.Sprintf("%s: %v %v", time.Now().Format("15:04:05.000"), got, err))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return p
}

func (p *birdPoller) end() { close(p.stop); <-p.done }

// TestBGPContinuityAcrossAnElection is issue 14's item 4 in the lab: two
// controller replicas (ha:, a 2s lease) on a 3-member etcd, with
// bgp.announceFrom: gateways (a speaker beside each gateway, fed by whichever
// replica answers its policy stream). The leader is SIGKILLed; the other is
// elected. BIRD is read every few milliseconds from before the kill until a
// second after the new leader is in sync: its route to the VIP never loses a
// path, and pings through the gateways never lose an echo. Then a drain on
// the new leader reaches BIRD (the speakers follow the new leader), and the
// dead replica comes back as a follower. GRAYGW_HA_BGP_ROUNDS (default 1)
// repeats the kill, alternating the leader.
func TestBGPContinuityAcrossAnElection(t *testing.T) {
	s := buildSpeakerLab(t)
	cl := etcdlab.StartIn(t, 3, false, s.topo.HV)
	rounds := 1
	if v := os.Getenv("GRAYGW_HA_BGP_ROUNDS"); v != "" {
		var err error
		if rounds, err = strconv.Atoi(v); err != nil || rounds < 1 {
			t.Fatalf("GRAYGW_HA_BGP_ROUNDS=%q: want a count", v)
		}
	}
	ids := []string{"a", "b"}
	socks := map[string]string{}
	apis := map[string]graygwv1.ControllerClient{}
	socks["a"] = s.startReplica("a", cl.Endpoints())
	apis["a"] = stack.Dial(t, socks["a"])
	birdlab.WaitFor(t, 30*time.Second, "replica a leads", func() (bool, string) {
		_, err := apis["a"].Get(context.Background(), &graygwv1.GetRequest{})
		return err == nil && leadsInSync(apis["a"]), fmt.Sprint(err)
	})
	socks["b"] = s.startReplica("b", cl.Endpoints())
	apis["b"] = stack.Dial(t, socks["b"])
	addrs := []string{"unix://" + socks["a"], "unix://" + socks["b"]}
	s.startSpeakers(addrs...)
	took := birdlab.WaitFor(t, 60*time.Second, "both gateways announced", s.hopsAre(gw1Hop, gw2Hop))
	t.Logf("both paths at BIRD %s after the speakers started", took.Round(time.Millisecond))

	lead := 0
	for round := 1; round <= rounds; round++ {
		old, next := ids[lead], ids[1-lead]
		pings := s.ping(6 * time.Second)
		poll := s.pollBIRD(gw1Hop, gw2Hop)
		time.Sleep(500 * time.Millisecond)
		s.kill("controller-" + old)
		took := birdlab.WaitFor(t, 30*time.Second, "the other replica leads, both gateways in sync", func() (bool, string) {
			return leadsInSync(apis[next]), ""
		})
		time.Sleep(time.Second)
		poll.end()
		pings.wait(t, fmt.Sprintf("round %d: pings through the gateways across the election", round), 0)
		t.Logf("round %d: leader %s SIGKILLed, %s leads with both gateways in sync %s later; BIRD read %d times from 0.5s before the kill to 1s after: %d reads lacked a path",
			round, old, next, took.Round(time.Millisecond), poll.reads, len(poll.bad))
		if len(poll.bad) > 0 || poll.reads < 100 {
			t.Fatalf("round %d: BIRD's route to the VIP lost a path across the election (%d of %d reads): %v", round, len(poll.bad), poll.reads,
				poll.bad[:min(5, len(poll.bad))])
		}
		// The speakers follow the new leader's policy.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := apis[next].DrainGateway(ctx, &graygwv1.DrainGatewayRequest{Gateway: "gw1", Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: drain gw1 on the new leader -> its path gone at BIRD after %s", round,
			birdlab.WaitFor(t, 10*time.Second, "gw1 drained by the new leader", s.hopsAre(gw2Hop)).Round(time.Millisecond))
		if _, err := apis[next].UndrainGateway(ctx, &graygwv1.UndrainGatewayRequest{Gateway: "gw1", Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		cancel()
		birdlab.WaitFor(t, 10*time.Second, "gw1 undrained", s.hopsAre(gw1Hop, gw2Hop))
		// The dead replica comes back as a follower.
		s.startReplica(old, cl.Endpoints())
		birdlab.WaitFor(t, 30*time.Second, "the restarted replica stands by", func() (bool, string) {
			_, err := apis[old].Get(context.Background(), &graygwv1.GetRequest{})
			return err == nil, fmt.Sprint(err)
		})
		lead = 1 - lead
	}
}
