package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
)

// positiveDuration is a duration flag that refuses zero and negative values at
// parse time (exit 2): "--wait-timeout -5s" is a mistake, not "do not wait".
type positiveDuration struct{ d *time.Duration }

func (p positiveDuration) String() string {
	if p.d == nil {
		return ""
	}
	return p.d.String()
}

func (p positiveDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if d <= 0 {
		return fmt.Errorf("%s: a duration greater than zero is required", s)
	}
	*p.d = d
	return nil
}

func (positiveDuration) Type() string { return "duration" }

// positiveDurationVar defines a positiveDuration flag.
func positiveDurationVar(fs *pflag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var(positiveDuration{p}, name, usage)
}
