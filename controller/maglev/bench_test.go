package maglev

import (
	"fmt"
	"testing"
)

func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{4, 16, 64} {
		bs := equal(n)
		b.Run(fmt.Sprintf("N=%d/M=4096", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := Build(bs, 4096); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRebuild times the common update: one backend of N leaves.
func BenchmarkRebuild(b *testing.B) {
	for _, n := range []int{4, 16, 64} {
		bs := equal(n)
		prev, err := Build(bs, 4096)
		if err != nil {
			b.Fatal(err)
		}
		rest := without(bs, n/2)
		b.Run(fmt.Sprintf("remove/N=%d/M=4096", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := Rebuild(prev, rest); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBuildMaxSize is the largest table the pipeline allows.
func BenchmarkBuildMaxSize(b *testing.B) {
	bs := equal(64)
	for b.Loop() {
		if _, err := Build(bs, MaxSize); err != nil {
			b.Fatal(err)
		}
	}
}
