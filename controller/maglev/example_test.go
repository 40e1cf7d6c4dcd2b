package maglev_test

import (
	"fmt"

	"github.com/graygw/graygw/controller/maglev"
)

// A pool of three backends loses one, then gains a heavier one. Rebuild moves only
// the leaver's buckets, then only buckets to the newcomer.
func ExampleRebuild() {
	pool := []maglev.Backend{{ID: "web-a", Weight: 1}, {ID: "web-b", Weight: 1}, {ID: "web-c", Weight: 1}}
	t0, err := maglev.Build(pool, maglev.DefaultSize)
	if err != nil {
		panic(err)
	}
	fmt.Println(t0.Counts())

	t1, err := maglev.Rebuild(t0, pool[:2])
	if err != nil {
		panic(err)
	}
	fmt.Println(t1.Counts(), "moved", len(t0.Diff(t1)))

	t2, err := maglev.Rebuild(t1, append(pool[:2:2], maglev.Backend{ID: "web-d", Weight: 2}))
	if err != nil {
		panic(err)
	}
	fmt.Println(t2.Counts(), "moved", len(t1.Diff(t2)))

	// Output:
	// map[web-a:1366 web-b:1365 web-c:1365]
	// map[web-a:2048 web-b:2048] moved 1365
	// map[web-a:1024 web-b:1024 web-d:2048] moved 2048
}

func ExampleBuild_errors() {
	_, err := maglev.Build([]maglev.Backend{{ID: "a"}, {ID: "b"}}, 4096)
	fmt.Println(err)
	_, err = maglev.Build([]maglev.Backend{{ID: "a", Weight: 1}}, 1000)
	fmt.Println(err)
	// Output:
	// maglev: no backend has a positive weight: all 2 backends have weight 0
	// maglev: table size must be a power of two between 1 and 65536: got 1000
}
