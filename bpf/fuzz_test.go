//go:build linux

package bpf

import (
	"bytes"
	"flag"
	"fmt"
	"testing"

	"github.com/graygw/graygw/internal/difftest"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

var (
	fuzzSeed    = flag.Uint64("bpf.seed", 20261122, "seed of TestDifferential")
	fuzzStates  = flag.Int("bpf.states", 10, "random table states in TestDifferential")
	fuzzPackets = flag.Int("bpf.packets", 200, "random packets per state in TestDifferential")
)

// TestDifferential runs random packets, valid and broken, over random table
// states through the program and the reference model and requires the same
// decision: verdict, drop reason, port and output bytes. Reproduce a failure
// with -bpf.seed=N (printed on failure).
func TestDifferential(t *testing.T) {
	skipUnlessBPF(t)
	seen := map[string]int{} // what the packets exercised, by the model's account
	for s := range *fuzzStates {
		seed := *fuzzSeed + uint64(s)
		g := difftest.NewGen(seed)
		g.IPv6 = true
		st, owners := g.State()
		frames := make([][]byte, *fuzzPackets)
		for i := range frames {
			frames[i] = g.Frame(st)
		}
		g.Fill(st, owners, frames)
		owns := map[uint16]bool{}
		for k := range st.BackendSelect {
			owns[k.Pool] = true
		}
		d := openTest(t)
		if s%2 == 1 {
			churnSlots(t, d, st)
		}
		applyState(t, d, st)
		receiveOn(t, d, 0) // the frames come in on port 0 (model.Process)
		ports := portsOf(st)
		compared := 0
		for i, frame := range frames {
			if len(frame) < minFrame {
				continue
			}
			want := model.Process(st, frame)
			aimPorts(t, d, ports, int(want.Port))
			before, err := d.DropCounters()
			if err != nil {
				t.Fatal(err)
			}
			ret, out := run(t, d.Program(), frame)
			after, err := d.DropCounters()
			if err != nil {
				t.Fatal(err)
			}
			got := pipeline.None
			for r := range pipeline.NumReasons {
				if after[r].Packets != before[r].Packets {
					got = pipeline.Reason(r)
				}
			}
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("seed %d (state %d) packet %d: %s\nframe %x\nmodel %s %s port %d rule %d pool %d bucket %d",
					seed, s, i, fmt.Sprintf(format, args...), frame, want.Verdict, want.Reason, want.Port,
					want.Rule, want.Pool, want.Bucket)
			}
			if c := want.Copy; c != nil && c.Sent {
				// A mirrored frame (docs/xdp.md, "Mirror"): passed up with
				// its prefix for graygw_tc, which sends the served frame and
				// the copy it makes from the prefix's mirror_meta.
				const metaLen = 14 + 36 // MIRROR_PREFIX
				switch {
				case ret != xdpPass:
					fail("mirrored: verdict %s (reason %s), want PASS with the mirror prefix", verdictName(ret), got)
				case len(out) != metaLen+len(want.Frame) || !bytes.Equal(out[metaLen:], want.Frame):
					fail("mirrored: passed up\n got %x\nwant a %d-byte prefix and %x", out, metaLen, want.Frame)
				case !bytes.Equal(tcCopy(out[metaLen:], out[14:metaLen]), c.Frame):
					fail("mirrored: copy from the prefix\n got %x\nwant %x", tcCopy(out[metaLen:], out[14:metaLen]), c.Frame)
				}
				seen["mirror copy"]++
			} else {
				if ret != wantVerdict(want.Verdict) {
					fail("verdict %s (reason %s), want %s", verdictName(ret), got, verdictName(wantVerdict(want.Verdict)))
				}
				if want.Verdict == model.Forward && !bytes.Equal(out, want.Frame) {
					fail("output\n got %x\nwant %x", out, want.Frame)
				}
			}
			if got != want.Reason {
				fail("reason %s, want %s", got, want.Reason)
			}
			compared++
			seen[want.Verdict.String()+" "+want.Reason.String()]++
			if want.Verdict == model.Forward && want.Pool >= MaxPools {
				seen["forward pool >= 64"]++
			}
			if want.Reason == pipeline.NoBackend {
				if owns[want.Pool] {
					seen["NO_BACKEND pool with buckets"]++
				} else {
					seen["NO_BACKEND pool without buckets"]++
				}
			}
			if want.RuleV6 >= 0 && want.IPv6 {
				seen["gray rule v6 "+[...]string{"", "set_pool", "split_pool"}[st.GrayRulesV6[want.RuleV6].Action]]++
			}
			if want.Rule >= 0 {
				seen["gray rule "+[...]string{"", "set_pool", "split_pool", "set_pool_mirror"}[st.GrayRules[want.Rule].Action]]++
			}
			if want.IPv6 {
				seen["IPv6 flow "+want.Verdict.String()]++
			}
			if want.Verdict == model.Forward {
				m, ok := st.PoolHash[want.Pool]
				switch b := hashBits(m, ok); {
				case b == poolHashLookup:
					seen["forward, hash mask from pool_hash"]++
				case b != 0:
					seen["forward, hash mask from pool_slot bits"]++
				default:
					seen["forward, every field hashed"]++
				}
			}
		}
		if compared < *fuzzPackets/2 {
			t.Fatalf("seed %d: only %d of %d packets were long enough to compare", seed, compared, *fuzzPackets)
		}
	}
	t.Logf("exercised: %v", seen)
	for _, k := range []string{"forward NONE", "pass NOT_VIP", "drop NO_BACKEND", "drop TTL_EXPIRED",
		"drop L4_TRUNCATED", "drop VXLAN_BAD_FLAGS", "gray rule set_pool", "gray rule split_pool",
		"forward pool >= 64", "NO_BACKEND pool with buckets", "NO_BACKEND pool without buckets",
		"forward, hash mask from pool_hash", "forward, hash mask from pool_slot bits", "forward, every field hashed",
		"gray rule v6 set_pool", "gray rule v6 split_pool", "IPv6 flow forward", "drop BACKEND_FAMILY",
		"drop IPV6_EXTENSION", "drop INNER_IPV6_EXTENSION"} {
		if seen[k] == 0 && *fuzzStates >= 8 {
			t.Errorf("no packet exercised %q: the generator lost coverage", k)
		}
	}
}

// FuzzProgram compares the program with the model on arbitrary frames over
// the test vectors' basic state: go test -fuzz=FuzzProgram ./bpf/
func FuzzProgram(f *testing.F) {
	vf, err := testvectors.Committed()
	if err != nil {
		f.Fatal(err)
	}
	fuzzOver(f, vf, "basic")
}

// FuzzProgramIPv6 is FuzzProgram over ipv6.json's state, seeded with its
// cases: go test -fuzz=FuzzProgramIPv6 ./bpf/
func FuzzProgramIPv6(f *testing.F) {
	vf, err := testvectors.IPv6()
	if err != nil {
		f.Fatal(err)
	}
	fuzzOver(f, vf, "ipv6")
}

// fuzzOver fuzzes the program against the model over vf's state, seeded
// with vf's frames.
func fuzzOver(f *testing.F, vf *testvectors.File, state string) {
	for _, c := range vf.Cases {
		if b, err := c.Frame(); err == nil {
			f.Add(b)
		}
	}
	s := vf.States[state]
	st, err := s.Model()
	if err != nil {
		f.Fatal(err)
	}
	d := openTest(f)
	applyState(f, d, st)
	aimPorts(f, d, portsOf(st), -1)
	receiveOn(f, d, 0) // the frames come in on port 0 (model.Process)
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < minFrame || len(frame) > 1500 {
			return
		}
		want := model.Process(st, frame)
		ret, out := run(t, d.Program(), frame)
		wantRet := wantVerdict(want.Verdict)
		if wantRet == xdpTX {
			wantRet = xdpRedirect // every port aimed elsewhere
		}
		if ret != wantRet {
			t.Fatalf("verdict %s, model %s %s", verdictName(ret), want.Verdict, want.Reason)
		}
		if want.Verdict == model.Forward && !bytes.Equal(out, want.Frame) {
			t.Fatalf("output\n got %x\nwant %x", out, want.Frame)
		}
	})
}

// churnSlots gives 64 other pools buckets pointing at a backend of st, then
// takes them back: st's pools then reuse slots that held cells (each freed
// slot must come back empty, after a grace period).
func churnSlots(t testing.TB, d *Dataplane, st *model.State) {
	t.Helper()
	ids := make([]uint16, pipeline.Buckets)
	for id := range st.Backends {
		for i := range ids {
			ids[i] = id
		}
		break
	}
	// Even pools get every bucket and lose them with ClearPool; odd ones get
	// 16 and lose them one by one with DeleteBucket.
	for k := range uint16(MaxPools) {
		first, n := uint16(0), pipeline.Buckets
		if k%2 == 1 {
			first, n = 16*k, 16
		}
		if err := d.SetBuckets(20000+k, first, ids[:n]); err != nil {
			t.Fatal(err)
		}
	}
	for k := range uint16(MaxPools) {
		var err error
		if k%2 == 0 {
			err = d.ClearPool(20000 + k)
		} else {
			for b := 16 * k; b < 16*k+16 && err == nil; b++ {
				err = d.DeleteBucket(20000+k, b)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(d.Pools()); n != 0 {
		t.Fatalf("%d pools own buckets after the churn", n)
	}
}
