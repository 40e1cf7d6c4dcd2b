package engine

import (
	"context"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/controller/p4rt"
	"github.com/graygw/graygw/pipeline"
)

// MirrorSession is the clone session the mirror copies through
// (docs/pipeline.md §10) on a target of P4 architecture arch (the P4Info's
// pkg_info.arch): one replica, whose port is pipe 0's recirculation port on
// Tofino ("tna": 68, "t2na": 6), where the copy goes back to ingress, and 0
// elsewhere, where it is never used (BMv2 recirculates the copy in egress;
// the XDP agent keeps the session without needing it).
func MirrorSession(arch string) *p4v1.Entity {
	var port uint32
	switch arch {
	case "tna":
		port = pipeline.MirrorPortTofino
	case "t2na":
		port = pipeline.MirrorPortTofino2
	}
	return &p4v1.Entity{Entity: &p4v1.Entity_PacketReplicationEngineEntry{PacketReplicationEngineEntry: &p4v1.PacketReplicationEngineEntry{
		Type: &p4v1.PacketReplicationEngineEntry_CloneSessionEntry{CloneSessionEntry: &p4v1.CloneSessionEntry{
			SessionId: pipeline.MirrorSessionID,
			Replicas:  []*p4v1.Replica{{PortKind: &p4v1.Replica_EgressPort{EgressPort: port}, Instance: 1}},
		}}}}}
}

// ensureMirrorSession makes sure a gateway whose P4Info has the mirror (a
// build older than the mirror needs none) holds its MirrorSession, once per
// pipeline cookie:
// it reads the target's clone sessions first and writes only when the session
// is missing or differs, so a controller restart writes nothing. A target that
// refuses it (an agent older than clone sessions) is logged, not an error: its
// tables are still written, and only its mirror copies are missing.
func (g *gateway) ensureMirrorSession(ctx context.Context, info *p4info.Info, cookie uint64) {
	if !hasMirror(info) {
		return
	}
	g.mu.Lock()
	done := g.mirrorCookie == cookie && g.mirrorOK
	g.mu.Unlock()
	if done {
		return
	}
	want := MirrorSession(info.P4Info().GetPkgInfo().GetArch())
	typ, same := p4v1.Update_INSERT, false
	have, err := g.client.Read(ctx, &p4v1.Entity{Entity: &p4v1.Entity_PacketReplicationEngineEntry{
		PacketReplicationEngineEntry: &p4v1.PacketReplicationEngineEntry{Type: &p4v1.PacketReplicationEngineEntry_CloneSessionEntry{
			CloneSessionEntry: &p4v1.CloneSessionEntry{}}}}})
	if err == nil {
		for _, e := range have {
			if cs := e.GetPacketReplicationEngineEntry().GetCloneSessionEntry(); cs.GetSessionId() == pipeline.MirrorSessionID {
				typ, same = p4v1.Update_MODIFY, proto.Equal(e, want)
			}
		}
	}
	ok := same
	if !same {
		err = g.client.Write(ctx, []*p4v1.Update{{Type: typ, Entity: want}}, 1)
		ok = err == nil || p4rt.IsCode(err, codes.AlreadyExists)
	}
	if !ok {
		g.log.Warn("mirror clone session not written: set_pool_mirror rules make no copy on this gateway", "err", err)
	}
	g.mu.Lock()
	g.mirrorCookie, g.mirrorOK = cookie, ok
	g.mu.Unlock()
}

// hasMirror reports whether info, a gateway's P4Info, has set_pool_mirror
// (under an older bf-p4c's "pipe." prefix too).
func hasMirror(info *p4info.Info) bool {
	_, err := info.Action(pipeline.ActionSetPoolMirror)
	if err != nil {
		_, err = info.Action(p4info.TNAPrefix + pipeline.ActionSetPoolMirror)
	}
	return err == nil
}
