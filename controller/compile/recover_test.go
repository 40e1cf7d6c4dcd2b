package compile

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/graygw/graygw/pipeline"
)

// After a restart, Compile over the recovered pools gives exactly what it gives
// over the Result that was installed: same slots, same buckets.
func TestRecoverEqualsInstalledResult(t *testing.T) {
	a := load(t, withRules)
	r0 := mustCompile(t, a, nil)
	b := load(t, strings.Replace(withRules, `      - {name: g2,`, `      - {name: g3, underlay_ip: 10.3.0.23, mac: "02:00:00:00:30:23", port: 3}
      - {name: g2,`, 1))
	r1 := mustCompile(t, b, r0)                                                                                                         // gray in slot 1, rebuilt
	c := load(t, strings.Replace(withRules, `{name: b4, underlay_ip: 10.2.0.14, mac: "02:00:00:00:20:14", port: 2, weight: 2}`, ``, 1)) // b4 leaves base
	for _, installed := range []*Result{r0, r1} {
		rec, err := Recover(b, installed.Gateways[0].Entries)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range []string{"b", "c"} {
			target := b
			if in == "c" {
				target = c
			}
			want := mustCompile(t, target, installed)
			got := mustCompile(t, target, rec)
			if !reflect.DeepEqual(want.Gateways, got.Gateways) {
				t.Fatalf("intent %s over recovered pools differs from over the installed result", in)
			}
		}
	}
}

// An interrupted flip: both versions of gray installed, one rule repointed.
func TestRecoverInterruptedFlip(t *testing.T) {
	a := load(t, withRules)
	r0 := mustCompile(t, a, nil)
	gray := `{name: g2, underlay_ip: 10.3.0.22, mac: "02:00:00:00:30:22", port: 3}`
	b := load(t, strings.Replace(withRules, gray, strings.Replace(gray, "}", ", weight: 5}", 1), 1))
	r1 := mustCompile(t, b, r0)
	have := map[string]Entry{}
	applyPhase(have, r0.Gateways[0].Entries, TableOrder...)
	applyPhase(have, r1.Gateways[0].Entries, pipeline.TableBackend, pipeline.TablePoolHash, pipeline.TableBackendSelect)
	for _, e := range r1.Gateways[0].Entries {
		if e.Origin == "rule vm" {
			have[e.Key()] = e
		}
	}
	var es []Entry
	for _, e := range have {
		es = append(es, e)
	}
	sortEntries(es)
	rec, err := Recover(b, es)
	if err != nil {
		t.Fatal(err)
	}
	g0, _ := r0.Pool("gray")
	if g, _ := rec.Pool("gray"); g.ID != g0.ID {
		t.Fatalf("current gray version %d, want %d (slot 0 on a tie of references)", g.ID, g0.ID)
	}
	// Finishing the change: the new version already installed is reused as is.
	got, err := Compile(b, rec)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Gateways, r1.Gateways) {
		t.Fatal("finishing the interrupted flip does not give the intended entries")
	}
	// A third content for gray has no free slot until the flip is finished.
	c := load(t, strings.Replace(withRules, gray, strings.Replace(gray, "}", ", weight: 7}", 1), 1))
	if _, err := Compile(c, rec); !errors.Is(err, ErrTransition) {
		t.Fatalf("err = %v, want ErrTransition", err)
	}
}

func TestRecoverKeepsUnknownPoolsReserved(t *testing.T) {
	a := load(t, withRules)
	r0 := mustCompile(t, a, nil)
	// The intent drops pool gray's rules and the pool itself.
	b := load(t, strings.Split(world, "  - name: gray\n")[0]+"tenants: []\n")
	rec, err := Recover(b, r0.Gateways[0].Entries)
	if err != nil {
		t.Fatal(err)
	}
	g0, _ := r0.Pool("gray")
	if p, ok := rec.PoolByID(g0.ID); !ok || !strings.HasPrefix(p.Name, "pool-id-") {
		t.Fatalf("removed pool's id %d not reserved: %+v", g0.ID, rec.Pools)
	}
}
