package storetest_test

import (
	"path/filepath"
	"testing"

	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/controller/store/storetest"
)

func TestBolt(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := store.OpenBolt(filepath.Join(t.TempDir(), "graygw.db"), store.BoltOptions{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return store.NewMemory() })
}
