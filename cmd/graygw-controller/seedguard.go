package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/graygw/graygw/controller/intent"
)

// seedProbeTimeout bounds the look at each gateway before seeding.
const seedProbeTimeout = 5 * time.Second

// unexplainedState lists the gateways of doc that already hold table entries. It
// runs before an empty store is seeded: entries on a gateway mean some store
// programmed it, so an empty store here is more likely a lost or truncated one
// than a first start, and seeding would replace the live state (gray rules
// included) with the seed document. It only reads (no arbitration, so it does not
// disturb a running primary). A gateway it cannot reach is logged and not
// counted: it cannot be shown to hold anything.
func unexplainedState(ctx context.Context, doc []byte, creds credentials.TransportCredentials, log *slog.Logger) ([]string, error) {
	in, err := intent.Load(doc)
	if err != nil {
		return nil, err
	}
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	var mu sync.Mutex
	var holding []string
	var wg sync.WaitGroup
	for _, g := range in.Gateways {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := countEntries(ctx, g.P4Runtime, g.DeviceID, creds)
			if err != nil {
				log.Warn("seed check: gateway not readable; assuming it holds nothing", "gateway", g.Name, "err", err)
				return
			}
			if n > 0 {
				mu.Lock()
				holding = append(holding, fmt.Sprintf("%s (%s) holds %d entries", g.Name, g.P4Runtime, n))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return holding, nil
}

func countEntries(ctx context.Context, addr string, device uint64, creds credentials.TransportCredentials) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, seedProbeTimeout)
	defer cancel()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	rd, err := p4v1.NewP4RuntimeClient(conn).Read(ctx, &p4v1.ReadRequest{DeviceId: device,
		Entities: []*p4v1.Entity{{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{}}}}})
	n := 0
	for err == nil {
		var resp *p4v1.ReadResponse
		if resp, err = rd.Recv(); err == nil {
			n += len(resp.GetEntities())
		}
	}
	switch {
	case status.Code(err) == codes.FailedPrecondition: // no pipeline: nothing programmed
		return 0, nil
	case err != nil && err.Error() != "EOF":
		return 0, err
	}
	return n, nil
}
