package intent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// SchemaVersion is the only value of Spec.Version this package reads.
const SchemaVersion = 1

// Spec is an intent document as written in YAML (docs/intent.md). Fields are kept
// as written, optional ones as pointers so that "absent" and "zero" differ;
// Validate turns a Spec into an Intent with every id, priority and address resolved.
type Spec struct {
	// Version of the schema; must be SchemaVersion.
	Version int `yaml:"version"`
	// Gateways are the gray gateways that all carry the same tables.
	Gateways []GatewaySpec `yaml:"gateways"`
	// VIPs are the anycast addresses the gateways serve.
	VIPs []VIPSpec `yaml:"vips"`
	// Pools are sets of weighted backends; a VIP or a rule sends traffic to one.
	Pools []PoolSpec `yaml:"pools"`
	// Tenants map VNIs to tenant ids (table vni_tenant).
	Tenants []TenantSpec `yaml:"tenants,omitempty"`
	// GrayRules steer selected traffic to another pool (table gray_rules).
	GrayRules []RuleSpec `yaml:"gray_rules,omitempty"`
	// VPCs is the optional inventory of the VPCs (by VNI): their VMs and route
	// tables, from which probes are derived. It compiles to no table entry.
	VPCs []VPCSpec `yaml:"vpcs,omitempty"`
}

// VPCSpec is one VPC of the inventory: what lives in a VNI and which
// destinations its VMs' traffic goes to. Probes are derived from it (one per VM
// and route); the dataplane never sees it.
type VPCSpec struct {
	// VNI is the VPC's VNI; it must be a VNI of some tenant.
	VNI int64 `yaml:"vni"`
	// CIDRs, when given, are the VPC's address ranges: every VM must be in one.
	CIDRs []string `yaml:"cidrs,omitempty"`
	// RouterMAC is the inner destination MAC of the VPC's probes (the VPC
	// router's); empty = the probe host's default.
	RouterMAC string `yaml:"router_mac,omitempty"`
	// Routes are the route table entries whose destinations probes check.
	Routes []RouteSpec `yaml:"routes"`
	// VMs are the VPC's VMs.
	VMs []VMSpec `yaml:"vms"`
}

// RouteSpec is one entry of a VPC's route table.
type RouteSpec struct {
	// Prefix is the route's destination prefix.
	Prefix string `yaml:"prefix"`
	// NextHop is the address the route sends to (the VPC router, a service
	// address); probes for this route go to it. Absent: probes go to the
	// prefix's first host address.
	NextHop string `yaml:"next_hop,omitempty"`
}

// VMSpec is one VM of a VPC.
type VMSpec struct {
	// Address is the VM's inner IPv4 or IPv6 address (the probes' inner source).
	Address string `yaml:"address"`
	// Name is an optional label (unique within the VPC).
	Name string `yaml:"name,omitempty"`
	// MAC is the VM's MAC address (informative; optional).
	MAC string `yaml:"mac,omitempty"`
}

// GatewaySpec is one gateway (a P4Runtime target).
type GatewaySpec struct {
	// Name identifies the gateway.
	Name string `yaml:"name"`
	// P4Runtime is the target's gRPC address, host:port.
	P4Runtime string `yaml:"p4runtime"`
	// DeviceID is the P4Runtime device id.
	DeviceID uint64 `yaml:"device_id"`
	// BGPNextHop is the IPv4 address the gateway announces the VIPs with.
	BGPNextHop string `yaml:"bgp_next_hop"`
	// BGPNextHopV6 is the IPv6 address the gateway announces the IPv6 VIPs
	// with; required when a VIP is IPv6.
	BGPNextHopV6 string `yaml:"bgp_next_hop_v6,omitempty"`
	// Ports maps the gateway's port numbers (the to_backend port) to interfaces.
	Ports map[int64]PortSpec `yaml:"ports"`
}

// PortSpec is one port of a gateway.
type PortSpec struct {
	// Interface is the Linux interface (XDP) or a label (P4 targets).
	Interface string `yaml:"interface"`
	// MAC is the port's MAC address: the source MAC of packets sent out of it.
	MAC string `yaml:"mac"`
	// VLAN is the port's 802.1Q configuration; absent: the port takes no
	// tagged frames for a VIP and sends untagged.
	VLAN *VLANSpec `yaml:"vlan,omitempty"`
}

// VLANSpec is a port's 802.1Q configuration (docs/pipeline.md §1, §8).
type VLANSpec struct {
	// Accept lists the VIDs (0-4094; 0 is a priority tag) whose tagged frames
	// to a VIP the port serves; any other tagged frame to a VIP is dropped
	// as VLAN_NOT_ACCEPTED. Untagged frames are always served.
	Accept []int64 `yaml:"accept,omitempty"`
	// Tag is the VID (1-4094) the frames leaving the port carry; absent,
	// they leave untagged.
	Tag *int64 `yaml:"tag,omitempty"`
}

// VIPSpec is one VIP.
type VIPSpec struct {
	// Name identifies the VIP.
	Name string `yaml:"name"`
	// ID is the vip_id (1-65535); derived from Name when absent.
	ID *int64 `yaml:"id,omitempty"`
	// Address is the VIP's IPv4 address (outer destination).
	Address string `yaml:"address"`
	// DefaultPool names the pool that serves the VIP's traffic no rule selects.
	DefaultPool string `yaml:"default_pool"`
}

// PoolSpec is one pool of backends.
type PoolSpec struct {
	// Name identifies the pool.
	Name string `yaml:"name"`
	// ID is the pool's base id (1-32767); derived from Name when absent. The
	// dataplane pool_id is ID + 32768*slot (see docs/intent.md, Versions).
	ID *int64 `yaml:"id,omitempty"`
	// Cluster is "base" or "gray".
	Cluster string `yaml:"cluster"`
	// HashFields lists the flow fields that feed the pool's consistent hash: a
	// non-empty subset of vni, tenant, src, dst, proto, sport, dport. Absent = all.
	HashFields []string `yaml:"hash_fields,omitempty"`
	// HealthFailover moves the buckets of a member that health checks declare
	// down to the pool's other members, and back when it recovers
	// (controller/failover, docs/health.md). Off by default.
	HealthFailover bool `yaml:"health_failover,omitempty"`
	// Backends are the pool's members.
	Backends []BackendSpec `yaml:"backends"`
}

// BackendSpec is one member of a pool. A backend (by name) may be a member of
// several pools; all its declarations must then agree on everything but Weight.
type BackendSpec struct {
	// Name identifies the backend across pools.
	Name string `yaml:"name"`
	// ID is the backend_id (1-65535); derived from Name when absent.
	ID *int64 `yaml:"id,omitempty"`
	// UnderlayIP is the backend's IPv4 address (new outer destination).
	UnderlayIP string `yaml:"underlay_ip"`
	// MAC is the next hop's MAC address toward the backend (new outer dst MAC).
	MAC string `yaml:"mac"`
	// Port is the gateway port number the backend is reached through.
	Port int64 `yaml:"port"`
	// Weight is the backend's relative share in this pool (0-1000000, default 1);
	// 0 drains it.
	Weight *int64 `yaml:"weight,omitempty"`
}

// TenantSpec is one tenant and its VNIs.
type TenantSpec struct {
	// Name identifies the tenant.
	Name string `yaml:"name"`
	// ID is the tenant_id (1-65535; 0 means "no tenant"); derived from Name when absent.
	ID *int64 `yaml:"id,omitempty"`
	// VNIs are the tenant's VXLAN network ids (24 bits).
	VNIs []int64 `yaml:"vnis"`
}

// RuleSpec is one gray rule.
type RuleSpec struct {
	// Name identifies the rule (in logs and counters).
	Name string `yaml:"name"`
	// Match selects the traffic; absent fields match anything.
	Match MatchSpec `yaml:"match"`
	// Percent, when present, moves only that sticky share (0 < p <= 100) of the
	// selected VMs: a VM (VNI, inner source) is always on the same side.
	Percent *float64 `yaml:"percent,omitempty"`
	// Pool names the pool the selected traffic goes to.
	Pool string `yaml:"pool"`
	// Priority overrides the derived priority (1 to 2147483647, larger wins).
	Priority *int64 `yaml:"priority,omitempty"`
	// Mirror, when present, also sends a copy of the selected traffic to
	// another pool, whose answers its gateways discard (docs/pipeline.md §10).
	Mirror *MirrorSpec `yaml:"mirror,omitempty"`
}

// MirrorSpec is a gray rule's mirror: shadow traffic to a pool.
type MirrorSpec struct {
	// Pool names the pool that receives the copies.
	Pool string `yaml:"pool"`
	// Rate N copies the frames of 1 in N VMs (sticky per VM); absent or 1:
	// every VM.
	Rate *int64 `yaml:"rate,omitempty"`
}

// MatchSpec is a gray rule's selector.
type MatchSpec struct {
	// VIP names a VIP; absent = every VIP.
	VIP string `yaml:"vip,omitempty"`
	// VNI is a VXLAN network id; 0 selects plain (non-VXLAN) traffic.
	VNI *int64 `yaml:"vni,omitempty"`
	// Tenant names a tenant.
	Tenant string `yaml:"tenant,omitempty"`
	// Src is an inner source IPv4 prefix ("10.0.0.0/24") or address (= /32).
	Src string `yaml:"src,omitempty"`
	// Dst is an inner destination IPv4 prefix or address.
	Dst string `yaml:"dst,omitempty"`
	// Proto is "tcp", "udp", "icmp" or a protocol number 0-255.
	Proto string `yaml:"proto,omitempty"`
	// SPort is an inner source port (TCP or UDP).
	SPort *int64 `yaml:"sport,omitempty"`
	// DPort is an inner destination port (TCP or UDP).
	DPort *int64 `yaml:"dport,omitempty"`
}

// Parse decodes one YAML intent document strictly: unknown fields, wrong types and
// trailing documents are errors. It does not validate; see Validate and Load. On
// error it returns nil and an *Errors whose problems name the field (or the line)
// and wrap ErrSyntax or ErrUnknownField.
func Parse(data []byte) (*Spec, error) {
	var ps problems
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Spec
	err := dec.Decode(&s)
	switch {
	case errors.Is(err, io.EOF):
		ps.add(ErrRequired, "", "empty document")
		return nil, ps.err()
	case err != nil:
		yamlProblems(&ps, data, err)
		return nil, ps.err()
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		ps.add(ErrSyntax, "", "more than one YAML document")
		return nil, ps.err()
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err == nil {
		checkIntegers(&ps, &doc, reflect.TypeFor[Spec](), "")
		if err := ps.err(); err != nil {
			return nil, err
		}
	}
	return &s, nil
}

// Load parses and validates an intent document.
func Load(data []byte) (*Intent, error) {
	s, err := Parse(data)
	if err != nil {
		return nil, err
	}
	return s.Validate()
}

// LoadFile reads, parses and validates the intent document at path.
func LoadFile(path string) (*Intent, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("intent: %w", err)
	}
	in, err := Load(data)
	if err != nil {
		return nil, fmt.Errorf("intent: %s: %w", path, err)
	}
	return in, nil
}

// Marshal encodes s as YAML (comments are not kept). Parse(Marshal(s)) equals s.
func Marshal(s *Spec) ([]byte, error) { return encodeYAML(s, "marshal") }

// encodeYAML encodes v as the intent's YAML is written (two-space indent);
// op names the operation in errors.
func encodeYAML(v any, op string) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("intent: %s: %w", op, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("intent: %s: %w", op, err)
	}
	return b.Bytes(), nil
}

var (
	lineRE    = regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownRE = regexp.MustCompile(`^field (\S+) not found in type`)
	valueRE   = regexp.MustCompile("^cannot unmarshal !!\\w+ `([^`]*)`")
)

// yamlProblems turns a yaml.v3 error into problems, naming the field by its path
// where the line tells it.
func yamlProblems(ps *problems, data []byte, err error) {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		ps.add(ErrSyntax, "", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return
	}
	lines := lineKeys(data)
	for _, msg := range te.Errors {
		path, class := "", ErrSyntax
		var keys []lineKey
		if m := lineRE.FindStringSubmatch(msg); m != nil {
			n, _ := strconv.Atoi(m[1])
			keys, msg, path = lines[n], m[2], "line "+m[1]
		}
		if len(keys) > 0 {
			path = keys[0].path
		}
		if m := unknownRE.FindStringSubmatch(msg); m != nil {
			class, msg = ErrUnknownField, fmt.Sprintf("unknown field %q", m[1])
			for _, k := range keys {
				if k.key == m[1] {
					path = k.path
					break
				}
			}
		} else if m := valueRE.FindStringSubmatch(msg); m != nil {
			for _, k := range keys {
				// yaml.v3 shortens long values to 7 characters and "...".
				if k.value == m[1] || strings.HasSuffix(m[1], "...") && strings.HasPrefix(k.value, strings.TrimSuffix(m[1], "...")) {
					path = k.path
					break
				}
			}
		}
		ps.add(class, path, "%s", msg)
	}
}

// lineKey is a mapping key (or a sequence item) met on a line of the document.
type lineKey struct {
	path, key, value string // value: the scalar value, if any
}

// lineKeys lists, for each line, the keys and items that start on it, in order.
func lineKeys(data []byte) map[int][]lineKey {
	out := map[int][]lineKey{}
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return out
	}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := idx(path, i)
				if c.Kind == yaml.ScalarNode {
					out[c.Line] = append(out[c.Line], lineKey{path: p, value: c.Value})
				}
				walk(c, p)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := dot(path, k.Value)
				if strings.HasSuffix(path, ".ports") {
					p = path + "[" + k.Value + "]"
				}
				lk := lineKey{path: p, key: k.Value}
				if v.Kind == yaml.ScalarNode {
					lk.value = v.Value
				}
				out[k.Line] = append(out[k.Line], lk)
				walk(v, p)
			}
		}
	}
	walk(&root, "")
	return out
}
