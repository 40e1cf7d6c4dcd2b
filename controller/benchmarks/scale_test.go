package benchmarks

import (
	"errors"
	"testing"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/compile/compiletest"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/pipeline"
)

// The full-size intent is valid, has the size, and compiles to the
// entries Scale.Entries counts: 63 x 4096 backend_select entries, 10k rules.
func TestFullIntentCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles 63 Maglev tables")
	}
	s := Gateway("127.0.0.1:9559")
	if err := Fill(s, Full); err != nil {
		t.Fatal(err)
	}
	doc, err := intent.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	in := compiletest.Load(t, string(doc))
	if len(in.Pools) != intent.MaxPools || len(in.Rules) != 10000 {
		t.Fatalf("%d pools, %d rules; want %d and 10000", len(in.Pools), len(in.Rules), intent.MaxPools)
	}
	res, err := compile.Compile(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, e := range res.Gateways[0].Entries {
		per[e.Table]++
	}
	if n := len(res.Gateways[0].Entries); n != Full.Entries() {
		t.Errorf("%d entries, Scale.Entries says %d (%v)", n, Full.Entries(), per)
	}
	if per[pipeline.TableBackendSelect] != intent.MaxPools*pipeline.Buckets || per[pipeline.TableGrayRules] != 10000 {
		t.Errorf("per table: %v", per)
	}
	type mask struct {
		vip  uint16
		flow pipeline.FlowKey
	}
	masks := map[mask]bool{}
	for _, r := range in.Rules {
		masks[mask{r.Key.VIPMask, r.Key.Mask}] = true
	}
	if len(masks) != 3 {
		t.Errorf("%d distinct rule masks, want 3 (VNI, /24, /32)", len(masks))
	}
	// Explicit pool ids keep every pool_id of a fresh target below 64 (the XDP
	// dataplane's bucket array before pool slots).
	for _, p := range res.Pools {
		if p.ID >= 64 {
			t.Errorf("pool %s has pool_id %d", p.Name, p.ID)
		}
	}
}

// 63 pools is the most an intent may have: one backend_select slot stays free so
// that a pool can always be rebuilt make-before-break. A 64th is refused.
func Test64PoolsRefused(t *testing.T) {
	s := Gateway("127.0.0.1:9559")
	sc := Scale{Pools: intent.MaxPools + 1, BackendsPerPool: 1, VIPs: 1, Rules: 1}
	if err := Fill(s, sc); err != nil {
		t.Fatal(err)
	}
	doc, err := intent.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := intent.Load(doc); !errors.Is(err, intent.ErrCapacity) {
		t.Fatalf("64 pools: %v, want ErrCapacity", err)
	}
	sc.Pools = intent.MaxPools
	s = Gateway("127.0.0.1:9559")
	if err := Fill(s, sc); err != nil {
		t.Fatal(err)
	}
	if doc, err = intent.Marshal(s); err != nil {
		t.Fatal(err)
	}
	if _, err := intent.Load(doc); err != nil {
		t.Fatalf("63 pools: %v", err)
	}
}

// Fill grows an existing document (the lab's) without touching what it has and
// refuses a spec without a gateway.
func TestFillKeepsTheBase(t *testing.T) {
	s := Gateway("127.0.0.1:9559")
	id := int64(1)
	s.Pools = []intent.PoolSpec{{Name: "base", ID: &id, Cluster: "base", Backends: []intent.BackendSpec{
		{Name: "b1", UnderlayIP: "10.2.0.11", MAC: "02:00:00:00:20:11", Port: 2}}}}
	s.VIPs = []intent.VIPSpec{{Name: "vpc", Address: "10.255.0.1", DefaultPool: "base"}}
	if err := Fill(s, Scale{Pools: 5, BackendsPerPool: 2, VIPs: 3, Tenants: 1, VNIsPerTenant: 2, Rules: 50}); err != nil {
		t.Fatal(err)
	}
	if s.Pools[0].Name != "base" || s.VIPs[0].Name != "vpc" || len(s.Pools) != 5 || len(s.VIPs) != 3 || len(s.GrayRules) != 50 {
		t.Fatalf("pools %d (first %s), vips %d, rules %d", len(s.Pools), s.Pools[0].Name, len(s.VIPs), len(s.GrayRules))
	}
	for _, p := range s.Pools[1:] {
		if *p.ID == 1 {
			t.Errorf("pool %s reuses id 1", p.Name)
		}
	}
	doc, err := intent.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := intent.Load(doc); err != nil {
		t.Fatal(err)
	}
	if err := Fill(&intent.Spec{}, Full); err == nil {
		t.Fatal("Fill of a spec without gateway: no error")
	}
}
