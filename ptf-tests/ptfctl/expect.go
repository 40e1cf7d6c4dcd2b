package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/p4src"
	"github.com/graygw/graygw/testvectors"
)

// decision is one frame's fate over the tables a gateway holds.
type decision struct {
	Verdict      string `json:"verdict"` // forward, drop, pass
	Reason       string `json:"reason"`
	Port         uint16 `json:"port"`
	Packet       string `json:"packet,omitempty"` // hex, forward only
	VIPID        uint16 `json:"vip_id"`
	TenantID     uint16 `json:"tenant_id"`
	IPv6         bool   `json:"ipv6"`          // an IPv6 flow: gray_rules_v6, key6
	RulePriority int64  `json:"rule_priority"` // -1: no rule (of gray_rules_v6 for an IPv6 flow)
	Pool         uint16 `json:"pool"`          // dataplane pool_id
	PoolBase     uint16 `json:"pool_base"`     // the intent's pool id
	SplitHash    uint16 `json:"split_hash"`
	HashKey      string `json:"hash_key,omitempty"`
	CRC          uint32 `json:"crc"`
	Bucket       uint16 `json:"bucket"`
	BackendID    uint16 `json:"backend_id"`
	// Copy is the mirror copy (docs/pipeline.md §10), absent when none is made.
	Copy *copyDecision `json:"copy,omitempty"`
}

// copyDecision is a mirror copy: where it goes and what it is.
type copyDecision struct {
	MirrorID  uint16 `json:"mirror_id"`
	Pool      uint16 `json:"pool"`
	PoolBase  uint16 `json:"pool_base"`
	BackendID uint16 `json:"backend_id"`
	Sent      bool   `json:"sent"` // false: the mirror pool has no backend for it
	Port      uint16 `json:"port"`
	Packet    string `json:"packet,omitempty"` // hex, sent only
}

func newDecision(r model.Result, s *model.State) decision {
	e := testvectors.ExpectFrom(r)
	d := decision{Verdict: e.Verdict, Reason: e.Reason, Port: e.Port, Packet: e.Packet, VIPID: e.VIPID, TenantID: e.TenantID,
		IPv6: e.IPv6, RulePriority: rulePriority(s, e), Pool: e.Pool, PoolBase: e.Pool &^ compile.SlotOffset, SplitHash: e.SplitHash,
		HashKey: e.HashKey, CRC: e.CRC, Bucket: e.Bucket, BackendID: e.BackendID}
	if c := e.Copy; c != nil {
		d.Copy = &copyDecision{MirrorID: c.MirrorID, Pool: c.Pool, PoolBase: c.Pool &^ compile.SlotOffset, BackendID: c.BackendID,
			Sent: c.Sent, Port: c.Port, Packet: c.Packet}
	}
	return d
}

type expectOutput struct {
	// Entries is the number of table entries read from the gateway.
	Entries int        `json:"entries"`
	Results []decision `json:"results"`
	// Mismatches (with -case) list how the decision differs from the vector's.
	Mismatches []string `json:"mismatches"`
}

func cmdExpect(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("expect", flag.ContinueOnError)
	addr := fs.String("p4rt", "127.0.0.1:9559", "the gateway's P4Runtime address")
	device := fs.Uint64("device-id", 1, "P4Runtime device id")
	vectors := fs.String("vectors", "testvectors/pipeline.json", "test vectors file (with -case)")
	caseName := fs.String("case", "", "run this vector case's frame and compare the decision with the vector's")
	port := fs.Uint("port", 1, "the port the frames are received on (vlan_accept's key; with -case, the case's)")
	timeout := fs.Duration("timeout", 20*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	var frames [][]byte
	var vc *testvectors.Case
	var vst testvectors.State
	if *caseName != "" {
		f, err := testvectors.Load(*vectors)
		if err != nil {
			return err
		}
		for i := range f.Cases {
			if f.Cases[i].Name == *caseName {
				vc = &f.Cases[i]
			}
		}
		if vc == nil {
			return fmt.Errorf("no case %q in %s", *caseName, *vectors)
		}
		vst = f.States[vc.State]
		fr, err := vc.Frame()
		if err != nil {
			return err
		}
		frames = append(frames, fr)
	} else {
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue
			}
			fr, err := hex.DecodeString(line)
			if err != nil {
				return fmt.Errorf("frame %d: %w", len(frames)+1, err)
			}
			frames = append(frames, fr)
		}
		if err := sc.Err(); err != nil {
			return err
		}
	}

	st, n, err := readState(ctx, *addr, *device)
	if err != nil {
		return err
	}
	out := expectOutput{Entries: n, Results: []decision{}, Mismatches: []string{}}
	for _, fr := range frames {
		in := uint16(*port)
		if vc != nil {
			in = vc.InPort
		}
		r := model.ProcessPort(st, in, fr)
		out.Results = append(out.Results, newDecision(r, st))
		if vc != nil {
			vm, err := vst.Model()
			if err != nil {
				return err
			}
			out.Mismatches = append(out.Mismatches, compareResult(vc, vm, fr, r, st)...)
		}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", " ")
	return enc.Encode(out)
}

// readState reads every table entry of the gateway (a P4Runtime Read needs no
// mastership) and loads them into the reference model.
func readState(ctx context.Context, addr string, device uint64) (*model.State, int, error) {
	info, err := p4info.Load(p4src.P4InfoText)
	if err != nil {
		return nil, 0, err
	}
	codec := engine.NewCodec(info)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close()
	stream, err := p4v1.NewP4RuntimeClient(conn).Read(ctx, &p4v1.ReadRequest{DeviceId: device,
		Entities: []*p4v1.Entity{{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{}}}}})
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", addr, err)
	}
	var entries []compile.Entry
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("read %s: %w", addr, err)
		}
		for _, ent := range resp.GetEntities() {
			te := ent.GetTableEntry()
			if te == nil {
				continue
			}
			e, err := codec.FromP4(te)
			if err != nil {
				return nil, 0, err
			}
			entries = append(entries, e)
		}
	}
	st, err := compile.ToModel(entries)
	if err != nil {
		return nil, 0, err
	}
	return st, len(entries), nil
}
