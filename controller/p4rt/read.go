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
	return readAs(ctx, c, &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: q}}, (*p4v1.Entity).GetTableEntry)
}

// ReadCounter returns every cell of an indexed counter.
func (c *Client) ReadCounter(ctx context.Context, counterID uint32) ([]*p4v1.CounterEntry, error) {
	return readAs(ctx, c, &p4v1.Entity{Entity: &p4v1.Entity_CounterEntry{CounterEntry: &p4v1.CounterEntry{CounterId: counterID}}},
		(*p4v1.Entity).GetCounterEntry)
}

// readAs reads q and returns what get finds in each entity read (the
// entities of another kind, for which it is nil, are left out).
func readAs[T comparable](ctx context.Context, c *Client, q *p4v1.Entity, get func(*p4v1.Entity) T) ([]T, error) {
	ents, err := c.Read(ctx, q)
	if err != nil {
		return nil, err
	}
	var none T
	out := make([]T, 0, len(ents))
	for _, e := range ents {
		if v := get(e); v != none {
			out = append(out, v)
		}
	}
	return out, nil
}
