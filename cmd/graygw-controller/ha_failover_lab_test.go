package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/graygw/graygw/agent/dataplane"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/leader"
	"github.com/graygw/graygw/internal/etcdlab"
	"github.com/graygw/graygw/internal/stack"
)

// writeLog is the gateway's record of who writes to it: a gRPC interceptor
// on the agent that notes every Write's election id (its high 64 bits are the
// writer's term), when the agent answered and with what. It can also hold a
// term's next Write before the agent sees it: a write delayed on its way.
type writeLog struct {
	mu       sync.Mutex
	writes   []writeRec
	holdTerm uint64
	held     chan struct{}
	release  chan struct{}
}

type writeRec struct {
	term uint64
	at   time.Time
	code codes.Code
}

func (w *writeLog) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	wr, ok := req.(*p4v1.WriteRequest)
	if !ok {
		return h(ctx, req)
	}
	term := wr.GetElectionId().GetHigh()
	w.mu.Lock()
	var release chan struct{}
	if w.holdTerm != 0 && term == w.holdTerm {
		w.holdTerm, release = 0, w.release
		close(w.held)
	}
	w.mu.Unlock()
	if release != nil {
		<-release
	}
	resp, err := h(ctx, req)
	w.mu.Lock()
	w.writes = append(w.writes, writeRec{term: term, at: time.Now(), code: status.Code(err)})
	w.mu.Unlock()
	return resp, err
}

// hold makes term's next Write wait, before the agent sees it, until release
// is called; held is closed when that Write arrives.
func (w *writeLog) hold(term uint64) (held <-chan struct{}, release func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.holdTerm, w.held, w.release = term, make(chan struct{}), make(chan struct{})
	var once sync.Once
	r := w.release
	return w.held, func() { once.Do(func() { close(r) }) }
}

// of returns the writes of term answered at or after since.
func (w *writeLog) of(term uint64, since time.Time) []writeRec {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []writeRec
	for _, r := range w.writes {
		if r.term == term && !r.at.Before(since) {
			out = append(out, r)
		}
	}
	return out
}

// withPools is the rollout lab's intent with n more pools (p3...), each of
// the base and the gray backend (n x 4096 more backend_select entries), and
// a gray rule per VM sending it to one of them: a large change whose every
// flow still reaches a real backend.
func withPools(t *testing.T, doc string, rl *rolloutLab, n int) string {
	t.Helper()
	var members []string
	for _, line := range strings.Split(doc, "\n") {
		if strings.Contains(line, "{name: base-1,") || strings.Contains(line, "{name: gray-1,") {
			members = append(members, line)
		}
	}
	i := strings.Index(doc, "tenants:")
	if len(members) != 2 || i < 0 || strings.Contains(doc, "gray_rules:") {
		t.Fatalf("the lab's intent is not what withPools knows:\n%s", doc)
	}
	var pools, rules strings.Builder
	for p := 3; p < 3+n; p++ {
		fmt.Fprintf(&pools, "  - name: p%d\n    id: %d\n    cluster: gray\n    backends:\n%s\n", p, p, strings.Join(members, "\n"))
	}
	k := 0
	for _, v := range rl.l.Topo.VPCs {
		for _, vm := range v.VMs {
			fmt.Fprintf(&rules, "  - name: r%d\n    match: {vip: vpc-router, vni: %d, src: %s}\n    pool: p%d\n", k, v.VNI, v.VMAddr(vm), 3+k%n)
			k++
		}
	}
	return doc[:i] + pools.String() + doc[i:] + "gray_rules:\n" + rules.String()
}

// waitStandby waits until the replica behind c answers reads (it stands by,
// or leads).
func waitStandby(t *testing.T, c graygwv1.ControllerClient) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := c.Get(context.Background(), &graygwv1.GetRequest{}); err == nil {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("the replica never answered: %v", err)
		}
	}
}

// waitVersion waits until the replica on sock leads with its gateway in sync
// at version v, and returns how long after since it first answered as the
// leader (its API up, the gateway maybe not yet in sync) and how long until
// it was in sync.
func waitVersion(t *testing.T, sock string, c graygwv1.ControllerClient, v uint64, since time.Time, what string) (leads, synced time.Duration) {
	t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := c.Status(ctx, &graygwv1.StatusRequest{})
		cancel()
		if err == nil && leads == 0 {
			leads = time.Since(since)
		}
		if gs := st.GetGateways(); err == nil && len(gs) == 1 && gs[0].GetInSync() && gs[0].GetVersion() == v {
			return leads, time.Since(since)
		}
		if time.Since(since) > 60*time.Second {
			t.Fatalf("%s: the replica on %s never led with its gateway in sync at version %d", what, sock, v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// currentTerm is the term of the replica that leads under prefix; it fails
// t unless that is id.
func currentTerm(t *testing.T, etc *clientv3.Client, prefix, id string) leader.Term {
	t.Helper()
	term, ok, err := leader.Current(context.Background(), etc, prefix+"leader/")
	if err != nil || !ok || term.Leader != id {
		t.Fatalf("leader under %s: %+v %v %v, want %s", prefix, term, ok, err, id)
	}
	return term
}

// TestHAFailoverUnderTraffic is issue 14's item 5 in the namespace lab (real
// etcd, a real XDP gateway, controller processes) with a stream of datagrams
// from every VM through the gateway all along:
//
//   - The leader is SIGKILLed in the middle of writing a large change (24
//     pools, 98k entries; the agent holds its 11th bucket write). The other
//     replica brings the gateway to the committed version, whole (read back).
//   - The new leader is frozen (SIGSTOP: a long pause, a stalled VM) with a
//     write on its way to the gateway. The other replica takes over at the
//     end of the lease; then the frozen leader's write reaches the gateway
//     and is refused (PERMISSION_DENIED: its election id is a past term), the
//     gateway keeps the new leader's version, and the old leader, resumed,
//     exits without another write accepted.
//
// No datagram is lost, duplicated or reordered through any of it.
func TestHAFailoverUnderTraffic(t *testing.T) {
	g := &midWrite{reached: make(chan struct{}), release: make(chan struct{})}
	defer g.open()
	wl := &writeLog{}
	rl := newRolloutLabAgent(t, "gghaf", nil, "", func(dp dataplane.Dataplane) dataplane.Dataplane { g.Dataplane = dp; return g },
		grpc.UnaryInterceptor(wl.intercept))
	cl := etcdlab.Start(t, 3, false)
	etc := etcdlab.Client(t, cl.Endpoints()...)
	dir := t.TempDir()
	in := rl.flag(t, "--intent")
	ra, rb := startHAPair(t, dir, cl.Endpoints(), cl.Endpoints(), "/hat/", "", in)
	a, b := ra.proc, rb.proc
	waitStandby(t, rb.api)
	stream := startLabStream(t, rl)
	ctx := context.Background()

	// The leader SIGKILLed in the middle of a large apply.
	doc, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	const pools = 24
	big := withPools(t, string(doc), rl, pools)
	g.arm(10)
	resp, err := ra.api.Apply(ctx, &graygwv1.ApplyRequest{IntentYaml: big, Options: &graygwv1.ChangeOptions{Actor: "t"}})
	if err != nil || !resp.GetResult().GetApplied() || resp.GetResult().GetVersion() != 2 {
		t.Fatalf("large apply: %v %v", resp, err)
	}
	select {
	case <-g.reached:
	case <-time.After(30 * time.Second):
		t.Fatal("the leader never wrote the large change")
	}
	killed, atKill := time.Now(), stream.Mark()
	a.cmd.Process.Kill()
	g.open() // the dead leader's write in flight ends; the new leader's go through
	leads, took := waitVersion(t, rb.sock, rb.api, 2, killed, "after the kill in the large apply")
	atSync := stream.Mark()
	if v := gatewayHolds(t, rl.agent, rb.api, 1, 2); v != 2 {
		t.Fatalf("the gateway holds version %d, the store 2", v)
	}
	elected := electedAt(t, filepath.Join(dir, "b.log")).Sub(killed)
	t.Logf("leader SIGKILLed in the middle of writing %d pools: the other replica elected %s later, answering as the leader %s later, in sync at version 2 (the gateway holding it whole) %s later (%s after its election); %d datagrams sent meanwhile; b: %s",
		pools, elected.Round(time.Millisecond), leads.Round(time.Millisecond), took.Round(time.Millisecond), (took - elected).Round(time.Millisecond), atSync-atKill,
		takeoverTimeline(t, filepath.Join(dir, "b.log")))
	a = startChild(t, filepath.Join(dir, "a2.log"), ra.args...)
	waitStandby(t, ra.api)

	// The leader frozen with a write on its way; the other takes over; the
	// late write is refused by the gateway.
	termB := currentTerm(t, etc, "/hat/", "b")
	held, release := wl.hold(termB.ElectionID())
	defer release()
	v3 := strings.Replace(big, "    pool: p3\n", "    pool: gray-router\n", 1)
	if resp, err := rb.api.Apply(ctx, &graygwv1.ApplyRequest{IntentYaml: v3, Options: &graygwv1.ChangeOptions{Actor: "t"}}); err != nil ||
		resp.GetResult().GetVersion() != 3 {
		t.Fatalf("apply version 3 on b: %v %v", resp, err)
	}
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("b never wrote version 3")
	}
	pid := b.cmd.Process.Pid
	stopped, atStop := time.Now(), stream.Mark()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT)
	leads, took = waitVersion(t, ra.sock, ra.api, 3, stopped, "after b froze")
	atSync = stream.Mark()
	termA := currentTerm(t, etc, "/hat/", "a")
	released := time.Now()
	release()
	var late []writeRec
	for deadline := time.Now().Add(10 * time.Second); len(late) == 0; time.Sleep(10 * time.Millisecond) {
		if late = wl.of(termB.ElectionID(), released); len(late) == 0 && time.Now().After(deadline) {
			t.Fatal("the frozen leader's held write never reached the agent")
		}
	}
	if late[0].code != codes.PermissionDenied {
		t.Fatalf("the deposed leader's late write (term %d, the leader's %d) was answered %s, want PERMISSION_DENIED", termB.Number,
			termA.Number, late[0].code)
	}
	if v := gatewayHolds(t, rl.agent, ra.api, 3); v != 3 {
		t.Fatalf("the gateway holds version %d after the late write", v)
	}
	elected = electedAt(t, filepath.Join(dir, "a2.log")).Sub(stopped)
	t.Logf("leader b (term %d) frozen with a write on its way: a (term %d) elected %s later, answering as the leader %s later, in sync at version 3 %s later (%s after its election); b's late write refused by the gateway (%s); %d datagrams sent meanwhile; a: %s",
		termB.Number, termA.Number, elected.Round(time.Millisecond), leads.Round(time.Millisecond), took.Round(time.Millisecond), (took - elected).Round(time.Millisecond),
		late[0].code, atSync-atStop, takeoverTimeline(t, filepath.Join(dir, "a2.log")))
	resumed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-b.exit:
		t.Logf("b resumed: exited %d after %s", code, time.Since(resumed).Round(time.Millisecond))
		if code == 0 {
			t.Error("the deposed leader exited 0 after losing its lease")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the deposed leader did not exit after it was resumed")
	}
	for _, w := range wl.of(termB.ElectionID(), released) {
		if w.code == codes.OK {
			t.Fatalf("the gateway accepted a write of the deposed leader's term %d at %s", termB.Number, w.at.Format("15:04:05.000"))
		}
	}
	if v := gatewayHolds(t, rl.agent, ra.api, 3); v != 3 {
		t.Fatalf("the gateway holds version %d after the deposed leader exited", v)
	}
	stopLabStream(t, stream, "leader SIGKILLed in a large apply, then frozen with a write in flight")
}

// changer applies changes, one after the other, until stopped: the lab's
// intent with and without a gray rule for one VM, each waited for (the
// gateway written). It sends them to the first of its replicas and moves to
// the next when one refuses (a follower, a replica gone): a client that
// follows the leader. It records when each change landed, its latency, and
// the errors.
type changer struct {
	mu      sync.Mutex
	landed  []time.Time
	ok      []time.Duration
	errs    []error
	stopped chan struct{}
	done    chan struct{}
}

func startChanger(docs [2]string, cs ...graygwv1.ControllerClient) *changer {
	ch := &changer{stopped: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(ch.done)
		for i, at := 0, 0; ; i++ {
			select {
			case <-ch.stopped:
				return
			default:
			}
			t0 := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := cs[at].Apply(ctx, &graygwv1.ApplyRequest{IntentYaml: docs[i%2], Options: &graygwv1.ChangeOptions{Actor: "changer", Wait: true}})
			cancel()
			ch.mu.Lock()
			if err != nil {
				ch.errs = append(ch.errs, err)
			} else {
				ch.ok = append(ch.ok, time.Since(t0))
				ch.landed = append(ch.landed, time.Now())
			}
			ch.mu.Unlock()
			if err != nil {
				at = (at + 1) % len(cs)
				time.Sleep(50 * time.Millisecond)
			}
		}
	}()
	return ch
}

// stop stops the changer and returns the latencies of the changes that
// landed and the errors of those that did not.
func (ch *changer) stop() ([]time.Duration, []error) {
	close(ch.stopped)
	<-ch.done
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.ok, ch.errs
}

// firstAfter is when the first change after since landed.
func (ch *changer) firstAfter(since time.Time) (time.Time, bool) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	for _, at := range ch.landed {
		if at.After(since) {
			return at, true
		}
	}
	return time.Time{}, false
}

// longestPause is the longest time between two changes landing (or from
// the first to since) after since.
func (ch *changer) longestPause(since time.Time) time.Duration {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	var longest time.Duration
	prev := since
	for _, at := range ch.landed {
		if at.After(since) {
			longest = max(longest, at.Sub(prev))
			prev = at
		}
	}
	return longest
}

// TestHAEtcdTroubleUnderTraffic is the store's side of issue 14's item 5 in
// the namespace lab, with a stream through the XDP gateway and changes
// applied all along:
//
//   - The controller's leader is partitioned from etcd (its connections cut)
//     while it reaches the gateway: it exits before its lease could run out,
//     the gateway accepts none of its writes after that, and the other
//     replica takes over.
//   - etcd's own leader member is SIGKILLed (quorum kept) under changes:
//     every change lands, the controller's leader stays the same.
//   - Two of three members are killed (quorum lost): the leader steps down, a
//     change is refused with a clear UNAVAILABLE; with the members back, a
//     replica leads again and changes land.
//
// No datagram is lost, duplicated or reordered through any of it.
func TestHAEtcdTroubleUnderTraffic(t *testing.T) {
	wl := &writeLog{}
	rl := newRolloutLabAgent(t, "gghae", nil, "", nil, grpc.UnaryInterceptor(wl.intercept))
	cl := etcdlab.Start(t, 3, false)
	eps := cl.Endpoints()
	etc := etcdlab.Client(t, eps...)
	proxies, viaProxy := proxiesTo(t, eps)
	dir := t.TempDir()
	in := rl.flag(t, "--intent")
	ra, rb := startHAPair(t, dir, viaProxy, eps, "/hae/", "", in)
	a, b := ra.proc, rb.proc
	waitStandby(t, rb.api)
	doc, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	v := rl.l.Topo.VPCs[0]
	docs := [2]string{string(doc) + fmt.Sprintf("gray_rules:\n  - name: one\n    match: {vip: vpc-router, vni: %d, src: %s}\n    pool: gray-router\n",
		v.VNI, v.VMAddr(v.VMs[0])), string(doc)}
	stream := startLabStream(t, rl)
	termA := currentTerm(t, etc, "/hae/", "a")

	// The controller's leader partitioned from etcd under changes.
	ch := startChanger(docs, ra.api, rb.api)
	time.Sleep(time.Second)
	atCut := stream.Mark()
	cut := partition(t, proxies, a)
	took, _ := waitLeads(t, rb.sock, rb.api, cut, "after the cut")
	atSync := stream.Mark()
	// The changes landing again: the first on b (one a had in flight may
	// land just after the cut).
	electedB := electedAt(t, filepath.Join(dir, "b.log"))
	var resumed time.Duration
	for deadline := time.Now().Add(10 * time.Second); resumed == 0; time.Sleep(10 * time.Millisecond) {
		if at, ok := ch.firstAfter(electedB); ok {
			resumed = at.Sub(cut)
		} else if time.Now().After(deadline) {
			t.Fatal("no change landed on the new leader")
		}
	}
	ok, errs := ch.stop()
	cur, err := rb.api.Get(context.Background(), &graygwv1.GetRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if v := gatewayHolds(t, rl.agent, rb.api, cur.GetVersion()); v != cur.GetVersion() {
		t.Fatalf("after the takeover the gateway holds %d, the store %d", v, cur.GetVersion())
	}
	var lastA time.Time
	for _, w := range wl.of(termA.ElectionID(), time.Time{}) {
		if w.code == codes.OK {
			lastA = w.at
		}
	}
	t.Logf("b elected %s after the cut, in sync at version %d %s after it, the changes (sent to a, then to b) landing again on b %s after it; a's last write accepted by the gateway at cut%+dms (%d changes landed, %d refused); %d datagrams sent meanwhile; b: %s",
		electedB.Sub(cut).Round(time.Millisecond), cur.GetVersion(), took.Round(time.Millisecond),
		resumed.Round(time.Millisecond), lastA.Sub(cut).Milliseconds(), len(ok), len(errs), atSync-atCut, takeoverTimeline(t, filepath.Join(dir, "b.log")))
	if !lastA.Before(cut.Add(2 * time.Second)) {
		t.Errorf("the gateway accepted a write of the partitioned leader %s after the cut, past its 2s lease", lastA.Sub(cut))
	}

	// An etcd member killed under changes (b leads, a2 stands by): one that
	// does not lead etcd, then etcd's leader member.
	argsA2, sockA2 := haReplica(t, dir, "a2", eps, "/hae/", "", in)
	a2 := startChild(t, filepath.Join(dir, "a2.log"), argsA2...)
	ca2 := stack.Dial(t, sockA2)
	waitStandby(t, ca2)
	termB := currentTerm(t, etc, "/hae/", "b")
	ch = startChanger(docs, rb.api)
	time.Sleep(time.Second)
	m := (etcdlab.Leader(t, etc, eps) + 1) % 3
	cl.Kill(m)
	time.Sleep(3 * time.Second)
	ok, errs = ch.stop()
	if len(errs) > 0 || len(ok) < 4 {
		t.Fatalf("changes with an etcd member killed: %d landed, errors %v", len(ok), errs)
	}
	if term := currentTerm(t, etc, "/hae/", "b"); term.Number != termB.Number {
		t.Fatalf("the controller's leader changed with one etcd member killed: %+v, was %+v", term, termB)
	}
	t.Logf("etcd member m%d (a follower in etcd) SIGKILLed: %d changes landed (each waited for at the gateway), none refused, the slowest in %s; the controller's leader unchanged",
		m, len(ok), slicesMax(ok).Round(time.Millisecond))
	cl.Restart(m)
	cl.WaitHealthy(30 * time.Second)

	// etcd's leader member: etcd elects another leader (about a second
	// without answers under load). The controller's leader keeps leading if
	// its renewals got through within 3/4 of its 2s lease, else it steps
	// down and a2 takes over; changes go on either way, after a pause.
	ch = startChanger(docs, rb.api, ca2)
	time.Sleep(time.Second)
	m = etcdlab.Leader(t, etc, eps)
	killedAt := time.Now()
	cl.Kill(m)
	time.Sleep(5 * time.Second)
	pause := ch.longestPause(killedAt)
	ok, errs = ch.stop()
	cl.Restart(m)
	cl.WaitHealthy(30 * time.Second)
	var term leader.Term
	for deadline := time.Now().Add(10 * time.Second); term.Leader == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		term, _, _ = leader.Current(context.Background(), etc, "/hae/leader/")
	}
	t.Logf("etcd member m%d (etcd's leader) SIGKILLed: changes paused at most %s, %d landed in the 5s after the kill, %d refused; then the controller's leader is %s (term %d; b's was %d)",
		m, pause.Round(time.Millisecond), len(ok), len(errs), term.Leader, term.Number, termB.Number)
	if pause > 5*time.Second || len(ok) == 0 {
		t.Fatalf("changes stopped with etcd's leader member killed: longest pause %s, %d landed, errors %v", pause, len(ok), errs)
	}
	lead, sbySock, sby := b, sockA2, ca2
	if term.Leader != "b" {
		// b stepped down, a2 leads: b comes back as a follower.
		startChild(t, filepath.Join(dir, "b2.log"), rb.args...)
		waitStandby(t, rb.api)
		lead, sbySock, sby = a2, rb.sock, rb.api
	}

	// Quorum lost.
	lost, atLost := time.Now(), stream.Mark()
	cl.Kill((m + 1) % 3)
	cl.Kill((m + 2) % 3)
	select {
	case code := <-lead.exit:
		t.Logf("quorum lost: the leader exited %d after %s", code, time.Since(lost).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("the leader did not step down without a quorum")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	asked := time.Now()
	_, err = sby.Apply(ctx, &graygwv1.ApplyRequest{IntentYaml: docs[0], Options: &graygwv1.ChangeOptions{Actor: "t"}})
	cancel()
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "no replica leads") {
		t.Fatalf("a change without a quorum: %v, want UNAVAILABLE saying no replica leads", err)
	}
	t.Logf("quorum lost: a change is refused after %s: %v", time.Since(asked).Round(time.Millisecond), err)
	if time.Since(asked) > 5*time.Second {
		t.Errorf("the refusal took %s: a client should not wait for its own deadline", time.Since(asked))
	}
	time.Sleep(2 * time.Second) // forwarding with no controller leading and no quorum
	back, atBack := time.Now(), stream.Mark()
	cl.Restart((m + 1) % 3)
	cl.Restart((m + 2) % 3)
	took, _ = waitLeads(t, sbySock, sby, back, "quorum back")
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	resp, err := sby.Apply(ctx, &graygwv1.ApplyRequest{IntentYaml: docs[0], Options: &graygwv1.ChangeOptions{Actor: "t", Wait: true}})
	cancel()
	if err != nil || !resp.GetResult().GetApplied() && !resp.GetResult().GetUnchanged() {
		t.Fatalf("a change with the quorum back: %v %v", resp, err)
	}
	t.Logf("quorum back: the other replica leads, in sync, %s after the members' restart; a change lands (version %d); %d datagrams sent without a quorum",
		took.Round(time.Millisecond), resp.GetResult().GetVersion(), atBack-atLost)
	stopLabStream(t, stream, "leader partitioned from etcd, etcd member killed, quorum lost")
}

func slicesMax(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
