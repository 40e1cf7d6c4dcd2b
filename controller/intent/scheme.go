package intent

import (
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/graygw/graygw/pipeline"
)

// HashFields is the set of flow fields that feed a pool's consistent hash.
type HashFields uint8

// The hash fields, in the order of the hash key.
const (
	HashVNI HashFields = 1 << iota
	HashTenant
	HashSrc
	HashDst
	HashProto
	HashSPort
	HashDPort

	// HashAll is every field: the default, and the pool_hash miss behaviour.
	HashAll = HashVNI | HashTenant | HashSrc | HashDst | HashProto | HashSPort | HashDPort
)

var hashFieldNames = []string{"vni", "tenant", "src", "dst", "proto", "sport", "dport"}

// ParseHashField returns the field with the given schema name.
func ParseHashField(name string) (HashFields, bool) {
	for i, n := range hashFieldNames {
		if n == name {
			return 1 << i, true
		}
	}
	return 0, false
}

// Names returns the schema names of the fields in the set, in key order.
func (h HashFields) Names() []string {
	var out []string
	for i, n := range hashFieldNames {
		if h&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// String returns the names joined by commas.
func (h HashFields) String() string { return strings.Join(h.Names(), ",") }

// Mask returns the pool_hash masks of the set: all-ones for a field in the set,
// zero otherwise.
func (h HashFields) Mask() pipeline.FlowKey {
	a := pipeline.AllOnes
	return pipeline.FlowKey{
		VNI: onlyIf(h&HashVNI != 0, a.VNI), Tenant: onlyIf(h&HashTenant != 0, a.Tenant),
		Src: onlyIf(h&HashSrc != 0, a.Src), Dst: onlyIf(h&HashDst != 0, a.Dst),
		Proto: onlyIf(h&HashProto != 0, a.Proto),
		SPort: onlyIf(h&HashSPort != 0, a.SPort), DPort: onlyIf(h&HashDPort != 0, a.DPort),
	}
}

// onlyIf returns v when on, the zero value otherwise.
func onlyIf[T any](on bool, v T) T {
	if on {
		return v
	}
	var zero T
	return zero
}

// Tier is the specificity class of a gray rule's selector. A rule's derived
// priority is Tier*TierStep + Key.Bits(), so a rule of a higher tier always beats
// one of a lower tier, and within a tier the rule fixing more bits (a longer
// prefix, an added VIP or VNI) wins.
type Tier uint8

// The tiers, from the widest selector to the narrowest. A rule's tier is that of
// the most specific field it sets: any of proto/sport/dport makes it TierFlow; else
// a /32 (IPv6: /128) src makes it TierVM; else any src/dst prefix makes it TierPrefix; else a
// vni TierVNI; else a tenant TierTenant; else (a VIP alone) TierVIP.
const (
	TierVIP Tier = iota + 1
	TierTenant
	TierVNI
	TierPrefix
	TierVM
	TierFlow
)

// TierStep separates the tiers' priority ranges; it exceeds the largest Key.Bits
// (160 for IPv4, 352 for IPv6).
const TierStep = 1000

var tierNames = [...]string{"", "vip", "tenant", "vni", "prefix", "vm", "flow"}

// String returns the tier's name.
func (t Tier) String() string {
	if int(t) < len(tierNames) && t > 0 {
		return tierNames[t]
	}
	return fmt.Sprintf("tier%d", uint8(t))
}

// DerivedPriority is the priority of a rule of tier t whose key fixes bits bits.
func DerivedPriority(t Tier, bits int) int32 { return int32(t)*TierStep + int32(bits) }

// tierOf classifies a selector.
func tierOf(m *Match) Tier {
	switch {
	case m.HasProto || m.HasSPort || m.HasDPort:
		return TierFlow
	case m.Src.IsValid() && m.Src.IsSingleIP():
		return TierVM
	case m.Src.IsValid() || m.Dst.IsValid():
		return TierPrefix
	case m.HasVNI:
		return TierVNI
	case m.Tenant != "":
		return TierTenant
	default:
		return TierVIP
	}
}

// Kinds of objects with numeric ids, as used by DerivedID.
const (
	KindVIP     = "vip"
	KindPool    = "pool"
	KindBackend = "backend"
	KindTenant  = "tenant"
)

// DerivedID is the id an object of the given kind gets when the document gives it
// none: 1 + FNV-1a-32(kind + "/" + name) mod max. It depends on nothing but the
// object's own kind and name, so adding, removing or renaming other objects never
// changes it; two objects whose derived ids collide are refused (ErrDuplicate) and
// one of them must be given an explicit id.
func DerivedID(kind, name string, max int) uint16 {
	h := fnv.New32a()
	h.Write([]byte(kind + "/" + name))
	return uint16(1 + h.Sum32()%uint32(max))
}
