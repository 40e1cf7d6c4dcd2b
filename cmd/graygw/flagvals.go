package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
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

// vmFlag parses a --vm value, VNI/IPv4 (a VM: its VPC and inner source); a
// bad one is a usage error saying what to write.
func vmFlag(s string) (uint32, netip.Addr, error) {
	vs, ip, ok := strings.Cut(s, "/")
	vni, err := strconv.ParseInt(vs, 10, 64)
	addr, aerr := netip.ParseAddr(ip)
	if !ok || err != nil || vni < 1 || vni > 0xffffff || aerr != nil || !addr.Is4() {
		return 0, netip.Addr{}, usagef("--vm %q: want VNI/IPv4, e.g. 5001/192.168.1.5", s)
	}
	return uint32(vni), addr, nil
}
