// Package p4rt is the controller's P4Runtime client for one target (a gateway):
// it keeps the StreamChannel open with the controller's election id, reconnecting
// with backoff, knows whether this controller is primary, pushes the pipeline when
// the target's cookie differs, writes in batches and decodes per-update errors, and
// reads entries and counters back.
package p4rt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// ErrNotPrimary is returned by writes while another controller is primary for the
// device, or while the stream is down.
var ErrNotPrimary = errors.New("p4rt: not the primary controller")

// Options configure a Client.
type Options struct {
	DeviceID   uint64
	ElectionID uint64 // low 64 bits; higher wins
	// ElectionIDHigh is the high 64 bits: an HA leader's term (docs/ha.md), so
	// a newer leader preempts and a deposed one is refused by the target. When
	// set the client never raises its id to take over a vacancy: only the
	// elected leader may be primary.
	ElectionIDHigh uint64
	Role           string // "" for the default role
	// Standby makes the session a backup that never takes over a vacancy
	// (an HA follower's warm stream, docs/ha.md): it stays connected and
	// arbitrated below the leader until SetElectionID raises its id.
	Standby bool
	// TLS, when set, secures the connection; nil means plaintext (loopback labs).
	TLS credentials.TransportCredentials
	// Backoff bounds for reconnecting the stream (defaults 100ms and 5s).
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
}

// Client is a P4Runtime session with one target. Its methods are safe for
// concurrent use.
type Client struct {
	addr string
	opts Options
	conn *grpc.ClientConn
	rt   p4v1.P4RuntimeClient
	log  *slog.Logger

	mu      sync.Mutex
	eidHigh uint64 // the election id in use: starts at Options.ElectionID,
	eidLow  uint64 // raised past the highest seen when taking over
	primary bool
	changed chan struct{} // closed and replaced whenever primary or up changes
	up      bool
	standby bool          // Options.Standby until SetElectionID
	rearb   chan struct{} // SetElectionID: arbitrate again on the open stream
	// rival is the election id of another controller that is primary (from
	// the last arbitration update), nil when there is none; displaced counts
	// the times another controller became primary. exhausted: the target's
	// highest election id is 2^128-1, so this client cannot take over.
	rival     *p4v1.Uint128
	displaced uint64
	exhausted bool

	cancel context.CancelFunc
	done   chan struct{}
}

// Dial connects to the target at addr and starts arbitration in the background.
// It returns at once; use WaitPrimary to wait for mastership.
func Dial(addr string, opts Options) (*Client, error) {
	if opts.MinBackoff == 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	creds := opts.TLS
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20), grpc.MaxCallSendMsgSize(256<<20)))
	if err != nil {
		return nil, fmt.Errorf("p4rt: dial %s: %w", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{addr: addr, opts: opts, conn: conn, rt: p4v1.NewP4RuntimeClient(conn),
		log:     opts.Logger.With("target", addr, "device_id", opts.DeviceID),
		changed: make(chan struct{}), cancel: cancel, done: make(chan struct{}), eidLow: opts.ElectionID, eidHigh: opts.ElectionIDHigh,
		standby: opts.Standby, rearb: make(chan struct{}, 1)}
	go c.streamLoop(ctx)
	return c, nil
}

// Close ends the session. The target keeps its entries.
func (c *Client) Close() error {
	c.cancel()
	<-c.done
	return c.conn.Close()
}

// Addr is the target's address.
func (c *Client) Addr() string { return c.addr }

// DeviceID is the target's device id.
func (c *Client) DeviceID() uint64 { return c.opts.DeviceID }

// IsPrimary reports whether this client is currently the primary controller.
func (c *Client) IsPrimary() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.primary && c.up
}

// Connected reports whether the stream to the target is up.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.up
}

// Changes returns a channel closed at the next change of connectivity or mastership.
func (c *Client) Changes() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// WaitPrimary blocks until this client is primary or ctx ends.
func (c *Client) WaitPrimary(ctx context.Context) error {
	for {
		ch := c.Changes()
		if c.IsPrimary() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("p4rt: %s: waiting to become primary: %w", c.addr, ctx.Err())
		}
	}
}

func (c *Client) setState(up, primary bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.up == up && c.primary == primary {
		return
	}
	c.up, c.primary = up, primary
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *Client) electionID() *p4v1.Uint128 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &p4v1.Uint128{High: c.eidHigh, Low: c.eidLow}
}

// raiseElectionID makes this client's election id one more than highest, the
// highest id the target has seen, when it is not already above it. The spec
// (§5.3) makes a primary's id at least the highest ever seen, so a backup takes
// over from a departed primary only with a higher id; the old primary, back
// with its old id, then stays backup instead of flapping mastership. At
// 2^128-1 there is no higher id: the id is left as it is (never wrapped to 0,
// which would make this client a backup for good) and it reports false.
func (c *Client) raiseElectionID(highest *p4v1.Uint128) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	hi, lo := highest.GetHigh(), highest.GetLow()
	if c.eidHigh > hi || (c.eidHigh == hi && c.eidLow > lo) {
		return true
	}
	if hi == math.MaxUint64 && lo == math.MaxUint64 {
		c.exhausted = true
		return false
	}
	c.eidHigh, c.eidLow = hi, lo+1
	if c.eidLow == 0 {
		c.eidHigh++
	}
	return true
}

// SetElectionID changes the session's election id and arbitrates again on
// the open stream (without reconnecting), as an HA follower does when it is
// elected: with the new leader's id the target makes it primary at once. It
// also ends Options.Standby; a non-zero high keeps the session from raising
// its id to take over a vacancy, as Options.ElectionIDHigh does.
func (c *Client) SetElectionID(high, low uint64) {
	c.mu.Lock()
	c.eidHigh, c.eidLow, c.standby = high, low, false
	c.mu.Unlock()
	select {
	case c.rearb <- struct{}{}:
	default:
	}
}

// Standby reports whether the session is a warm standby (Options.Standby,
// until SetElectionID).
func (c *Client) Standby() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.standby
}

// mayTakeOver reports whether the session raises its id past a departed
// primary's: not for an HA session (high bits set) nor a standby.
func (c *Client) mayTakeOver() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.eidHigh == 0 && !c.standby
}

// Rival returns the election id of another controller that is primary for the
// target (the last arbitration update said so), and how many times another
// controller has become primary since Dial. A rival the operator did not start
// is a rogue client: docs/security.md.
func (c *Client) Rival() (id *p4v1.Uint128, displaced uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rival, c.displaced
}

// ElectionExhausted reports that the target's highest election id is 2^128-1:
// no controller can take over by raising its id until the agent's arbitration
// state is reset (graygw-agent --reset-election-ids, or a reboot).
func (c *Client) ElectionExhausted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exhausted
}

// noteArbitration records who is primary after an arbitration update and
// reports a new rival at once (an Error log), not at the next reconcile pass.
func (c *Client) noteArbitration(code codes.Code, id *p4v1.Uint128) {
	c.mu.Lock()
	was, prev := c.primary && c.up, c.rival
	ours := &p4v1.Uint128{High: c.eidHigh, Low: c.eidLow}
	if code == codes.AlreadyExists {
		c.rival = id
		if prev == nil || prev.GetHigh() != id.GetHigh() || prev.GetLow() != id.GetLow() {
			c.displaced++
		}
	} else {
		c.rival = nil
	}
	standby := c.standby
	c.mu.Unlock()
	if code == codes.AlreadyExists && standby {
		if prev == nil {
			c.log.Info("standing by: the leader is primary for this gateway", "leader_election_id_high", id.GetHigh(),
				"leader_election_id_low", id.GetLow())
		}
		return
	}
	if code == codes.AlreadyExists && (prev == nil || was) {
		c.log.Error("another controller is primary for this gateway: writes from this controller are refused until it goes; "+
			"if no other controller replica should be running, it is a rogue client (docs/security.md)",
			"rival_election_id_high", id.GetHigh(), "rival_election_id_low", id.GetLow(),
			"our_election_id_high", ours.GetHigh(), "our_election_id_low", ours.GetLow(), "we_were_primary", was)
	}
}

func (c *Client) role() *p4v1.Role {
	if c.opts.Role == "" {
		return nil
	}
	return &p4v1.Role{Name: c.opts.Role}
}

// streamLoop keeps a StreamChannel open, re-arbitrating after every reconnect.
func (c *Client) streamLoop(ctx context.Context) {
	defer close(c.done)
	backoff := c.opts.MinBackoff
	for ctx.Err() == nil {
		start := time.Now()
		err := c.runStream(ctx)
		c.setState(false, false)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > 10*time.Second {
			backoff = c.opts.MinBackoff
		}
		c.log.Warn("p4runtime stream down, reconnecting", "err", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(backoff*2, c.opts.MaxBackoff)
	}
}

func (c *Client) runStream(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rt.StreamChannel(sctx)
	if err != nil {
		return err
	}
	var sendMu sync.Mutex // Send is not safe for concurrent use
	arbitrate := func() error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Arbitration{
			Arbitration: &p4v1.MasterArbitrationUpdate{DeviceId: c.opts.DeviceID, ElectionId: c.electionID(), Role: c.role()}}})
	}
	select {
	case <-c.rearb: // this first arbitration already carries the id set
	default:
	}
	if err := arbitrate(); err != nil {
		return err
	}
	go func() {
		for {
			select {
			case <-c.rearb:
				if err := arbitrate(); err != nil {
					cancel() // Recv then ends the stream, and it reconnects
					return
				}
			case <-sctx.Done():
				return
			}
		}
	}()
	reclaimed := false
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		arb := msg.GetArbitration()
		if arb == nil {
			continue // packet-in, digests, idle timeouts: not used by graygw
		}
		code := codes.Code(arb.GetStatus().GetCode())
		// NOT_FOUND: the primary went away and the target elected nobody. Take
		// over (once per vacancy) with an id above the highest the target saw.
		c.noteArbitration(code, arb.GetElectionId())
		if code == codes.NotFound && !reclaimed && c.mayTakeOver() {
			reclaimed = true
			if !c.raiseElectionID(arb.GetElectionId()) {
				c.log.Error("cannot take over: the gateway's highest election id is 2^128-1 (set by a rogue client?); " +
					"no controller can become primary until the agent is restarted with --reset-election-ids (docs/security.md)")
			} else {
				c.log.Info("p4runtime primary gone, taking over", "election_id", c.electionID().GetLow())
				if err := arbitrate(); err != nil {
					return err
				}
			}
		} else if code != codes.NotFound {
			reclaimed = false
		}
		primary := code == codes.OK
		if was := c.IsPrimary(); was != primary || !c.Connected() {
			c.log.Info("p4runtime arbitration", "primary", primary, "status", arb.GetStatus().GetMessage())
		}
		c.setState(true, primary)
	}
}
