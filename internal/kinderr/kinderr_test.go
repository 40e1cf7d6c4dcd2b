package kinderr

import (
	"errors"
	"testing"
)

func TestKindAndMessage(t *testing.T) {
	errStale := errors.New("stale")
	err := Errorf(errStale, "version %d moved", 3)
	if !errors.Is(err, errStale) || err.Error() != "version 3 moved" || errors.Is(err, errors.New("stale")) {
		t.Fatalf("%v", err)
	}
}
