package p4rt

import (
	"context"
	"errors"
	"fmt"
	"io"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

// Read streams the entities matching the wildcard or exact entities given and
// returns them all.
func (c *Client) Read(ctx context.Context, entities ...*p4v1.Entity) ([]*p4v1.Entity, error) {
	stream, err := c.rt.Read(ctx, &p4v1.ReadRequest{DeviceId: c.opts.DeviceID, Role: c.opts.Role, Entities: entities})
	if err != nil {
		return nil, fmt.Errorf("p4rt: %s: read: %w", c.addr, err)
	}
	var out []*p4v1.Entity
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("p4rt: %s: read: %w", c.addr, err)
		}
		out = append(out, resp.GetEntities()...)
	}
}

// ReadTable returns every entry of the table (all tables when tableID is 0),
// with their direct counters when withCounters is set.
func (c *Client) ReadTable(ctx context.Context, tableID uint32, withCounters bool) ([]*p4v1.TableEntry, error) {
	q := &p4v1.TableEntry{TableId: tableID}
	if withCounters {
		q.CounterData = &p4v1.CounterData{}
	}
	ents, err := c.Read(ctx, &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: q}})
	if err != nil {
		return nil, err
	}
	out := make([]*p4v1.TableEntry, 0, len(ents))
	for _, e := range ents {
		if te := e.GetTableEntry(); te != nil {
			out = append(out, te)
		}
	}
	return out, nil
}

// ReadCounter returns every cell of an indexed counter.
func (c *Client) ReadCounter(ctx context.Context, counterID uint32) ([]*p4v1.CounterEntry, error) {
	ents, err := c.Read(ctx, &p4v1.Entity{Entity: &p4v1.Entity_CounterEntry{CounterEntry: &p4v1.CounterEntry{CounterId: counterID}}})
	if err != nil {
		return nil, err
	}
	out := make([]*p4v1.CounterEntry, 0, len(ents))
	for _, e := range ents {
		if ce := e.GetCounterEntry(); ce != nil {
			out = append(out, ce)
		}
	}
	return out, nil
}
