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

// MirrorSession is the clone session the v1model program's mirror clones to
// (docs/pipeline.md §10): one replica, whose port is never used (the copy is
// recirculated before it leaves). The XDP agent keeps it without needing it.
func MirrorSession() *p4v1.Entity {
	return &p4v1.Entity{Entity: &p4v1.Entity_PacketReplicationEngineEntry{PacketReplicationEngineEntry: &p4v1.PacketReplicationEngineEntry{
		Type: &p4v1.PacketReplicationEngineEntry_CloneSessionEntry{CloneSessionEntry: &p4v1.CloneSessionEntry{
			SessionId: pipeline.MirrorSessionID,
			Replicas:  []*p4v1.Replica{{PortKind: &p4v1.Replica_EgressPort{EgressPort: 0}, Instance: 1}},
		}}}}}
}

// ensureMirrorSession makes sure a gateway whose P4Info has the mirror (a TNA
// build without it needs none) holds MirrorSession, once per pipeline cookie:
// it reads the target's clone sessions first and writes only when the session
// is missing or differs, so a controller restart writes nothing. A target that
// refuses it (an agent older than clone sessions) is logged, not an error: its
// tables are still written, and only its mirror copies are missing.
func (g *gateway) ensureMirrorSession(ctx context.Context, info *p4info.Info, cookie uint64) {
	if _, err := info.Action(pipeline.ActionSetPoolMirror); err != nil {
		return
	}
	g.mu.Lock()
	done := g.mirrorCookie == cookie && g.mirrorOK
	g.mu.Unlock()
	if done {
		return
	}
	want := MirrorSession()
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
