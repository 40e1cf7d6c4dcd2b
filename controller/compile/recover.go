package compile

import (
	"fmt"
	"slices"
	"strings"

	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/maglev"
	"github.com/graygw/graygw/pipeline"
)

// Recover rebuilds, from the entries a gateway holds (as read back after a
// controller restart), the pool versions installed there, to pass to Compile as
// prev: unchanged pools then keep their slot and buckets, and changed ones are
// rebuilt from the dataplane's own tables, so a restart moves no flow.
//
// Backend ids are named through in; an id in unknown to in stays as
// "backend-id-N", so a Rebuild treats it as a backend that left. A pool_id whose
// base id no pool of in has is kept as "pool-id-N", so Compile does not reuse it
// before it is deleted. A pool with both versions installed (a flip was
// interrupted) is taken at the version the vip and gray_rules entries reference
// most (slot 0 on a tie); the other version is left out when nothing references
// it (Compile may overwrite it) and reserved otherwise (then a change to that pool
// is refused with ErrTransition until the flip is finished). A version whose
// backend_select buckets are incomplete is left out too. Only the Pools of the
// result are filled.
func Recover(in *intent.Intent, entries []Entry) (*Result, error) {
	names := map[uint16]string{}
	for _, b := range in.Backends {
		names[b.ID] = b.Name
	}
	pools := map[uint16]string{}
	for _, p := range in.Pools {
		pools[p.ID] = p.Name
	}
	buckets := map[uint16][]string{}
	ids := map[uint16][]uint16{}
	hash := map[uint16]pipeline.FlowKey{}
	refs := map[uint16]int{}
	st, err := ToModel(entries)
	if err != nil {
		return nil, fmt.Errorf("compile: recover: %w", err)
	}
	for k, id := range st.BackendSelect {
		if int(k.Bucket) >= pipeline.Buckets {
			continue // not a table Compile would have written: not in service
		}
		if buckets[k.Pool] == nil {
			buckets[k.Pool] = make([]string, pipeline.Buckets)
			ids[k.Pool] = make([]uint16, pipeline.Buckets)
		}
		name, ok := names[id]
		if !ok {
			name = fmt.Sprintf("backend-id-%d", id)
		}
		buckets[k.Pool][k.Bucket], ids[k.Pool][k.Bucket] = name, id
	}
	for id, m := range st.PoolHash {
		hash[id] = m
	}
	for _, v := range st.VIPs {
		refs[v.DefaultPool]++
	}
	for _, r := range st.GrayRules {
		refs[r.Pool]++
	}
	res := &Result{}
	byBase := map[uint16][]Pool{}
	for id, bs := range buckets {
		if slices.Contains(bs, "") {
			continue // incomplete
		}
		table, err := maglev.NewTable(bs)
		if err != nil {
			return nil, fmt.Errorf("%w: recover pool_id %d: %w", ErrMaglev, id, err)
		}
		p := Pool{ID: id, BaseID: id % SlotOffset, Slot: uint8(id / SlotOffset), Table: table, Buckets: ids[id], Hash: pipeline.AllOnes}
		if m, ok := hash[id]; ok {
			p.Hash = m
		}
		byBase[p.BaseID] = append(byBase[p.BaseID], p)
	}
	for base, versions := range byBase {
		slices.SortFunc(versions, func(a, b Pool) int { return int(a.Slot) - int(b.Slot) })
		name, known := pools[base]
		if !known {
			// Not in the intent: reserve every installed version's id.
			for _, p := range versions {
				p.Name = fmt.Sprintf("pool-id-%d", p.ID)
				res.Pools = append(res.Pools, p)
			}
			continue
		}
		cur := versions[0]
		if len(versions) == 2 && refs[versions[1].ID] > refs[versions[0].ID] {
			cur = versions[1]
		}
		cur.Name = name
		res.Pools = append(res.Pools, cur)
		for _, p := range versions {
			if p.ID != cur.ID && refs[p.ID] > 0 {
				// The other version is still in service for some entries: it
				// stays reserved until they are repointed and it is deleted.
				p.Name = fmt.Sprintf("pool-id-%d", p.ID)
				res.Pools = append(res.Pools, p)
			}
		}
	}
	slices.SortFunc(res.Pools, func(a, b Pool) int { return strings.Compare(a.Name, b.Name) })
	return res, nil
}
