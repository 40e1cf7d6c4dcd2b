package speaker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/bgp"
	"github.com/graygw/graygw/internal/tlsfiles"
)

// savedPolicy is the policy file: the policy and when and from where it came.
type savedPolicy struct {
	Policy bgp.Policy `json:"policy"`
	// IntentVersion is the controller's intent version it was made from.
	IntentVersion uint64 `json:"intentVersion"`
	// Received is when the speaker received it; From the controller's address.
	Received time.Time `json:"received"`
	From     string    `json:"from"`
}

// loadPolicy reads the policy file. A missing file is (nil, nil): no policy
// yet, nothing is announced until a controller gives one.
func loadPolicy(path string) (*savedPolicy, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("speaker: policy file: %w", err)
	}
	var sp savedPolicy
	if err := json.Unmarshal(b, &sp); err != nil {
		return nil, fmt.Errorf("speaker: policy file %s: %w", path, err)
	}
	if err := sp.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("speaker: policy file %s: %w", path, err)
	}
	return &sp, nil
}

// savePolicy writes the policy file atomically (a temporary file renamed over
// it, after fsync), so a crash leaves the old policy or the new one.
func savePolicy(path string, sp *savedPolicy) error {
	b, err := json.MarshalIndent(sp, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("speaker: save policy: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("speaker: save policy: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("speaker: save policy: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("speaker: save policy: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("speaker: save policy: %w", err)
	}
	return nil
}

// policyFromProto converts and validates what a controller sent.
func policyFromProto(p *graygwv1.SpeakerPolicy) (bgp.Policy, error) {
	out := bgp.Policy{Gateway: p.GetGateway(), Drained: p.GetDrained(), VIPs: []bgp.PolicyVIP{}}
	var errs []error
	var err error
	if out.NextHop, err = netip.ParseAddr(p.GetNextHop()); err != nil {
		errs = append(errs, fmt.Errorf("nextHop: %w", err))
	}
	if p.GetNextHopV6() != "" {
		if out.NextHopV6, err = netip.ParseAddr(p.GetNextHopV6()); err != nil {
			errs = append(errs, fmt.Errorf("nextHopV6: %w", err))
		}
	}
	for i, v := range p.GetVips() {
		pv := bgp.PolicyVIP{Name: v.GetName(), Attributes: bgp.Attributes{Communities: v.GetCommunities(), MED: v.Med, LocalPref: v.LocalPref}}
		if pv.Address, err = netip.ParseAddr(v.GetAddress()); err != nil {
			errs = append(errs, fmt.Errorf("vips[%d].address: %w", i, err))
		}
		for _, r := range v.GetWithdraw() {
			pv.Withdraw = append(pv.Withdraw, bgp.Reason(r))
		}
		out.VIPs = append(out.VIPs, pv)
	}
	if err := errors.Join(errs...); err != nil {
		return bgp.Policy{}, err
	}
	return out, out.Validate()
}

// ControllerConfig is how the speaker reaches the controllers.
type ControllerConfig struct {
	// Addresses are the controllers' API addresses, tried in turn:
	// unix:///path (no TLS; the controller authenticates the uid) or
	// host:port (mutual TLS with the three files below).
	Addresses []string `yaml:"addresses"`
	TLSCert   string   `yaml:"tls_cert"`
	TLSKey    string   `yaml:"tls_key"`
	TLSCA     string   `yaml:"tls_ca"`
	// Retry is the pause between two rounds over the addresses (default 1s).
	Retry time.Duration `yaml:"retry"`
}

func (c ControllerConfig) dial(addr string) (*grpc.ClientConn, error) {
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		return grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if c.TLSCert == "" || c.TLSKey == "" || c.TLSCA == "" {
		return nil, fmt.Errorf("controller %s: a tcp address needs controllers.tls_cert, tls_key and tls_ca (mutual TLS)", addr)
	}
	cfg, err := tlsfiles.Client(c.TLSCert, c.TLSKey, c.TLSCA, "controllers.tls_cert/tls_key", "controllers.tls_ca")
	if err != nil {
		return nil, err
	}
	return grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
}

// watchPolicy follows the policy of gateway from the controllers until ctx
// ends, calling got for every policy received. A controller that is down or
// refuses is logged and the next one tried; nothing a controller does (or
// fails to do) ever withdraws a path by itself.
func (c ControllerConfig) watchPolicy(ctx context.Context, gateway string, log *slog.Logger, got func(bgp.Policy, uint64, string)) {
	retry := c.Retry
	if retry <= 0 {
		retry = time.Second
	}
	lastErr := map[string]string{}
	for ctx.Err() == nil {
		for _, addr := range c.Addresses {
			err := c.watchOne(ctx, addr, gateway, got)
			if ctx.Err() != nil {
				return
			}
			if msg := fmt.Sprint(err); lastErr[addr] != msg { // log each new failure once
				log.Warn("speaker: policy stream from the controller ended; announcing from the policy kept on disk meanwhile",
					"controller", addr, "err", err)
				lastErr[addr] = msg
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(retry):
		}
	}
}

// leaderTrailer is api/service.LeaderTrailer: a standby controller replica
// refuses the stream naming the leader's address there (docs/ha.md).
const leaderTrailer = "graygw-leader"

// watchOne follows the policy stream of the controller at addr. A standby
// replica refuses it naming the leader: the stream is then opened there, once.
func (c ControllerConfig) watchOne(ctx context.Context, addr, gateway string, got func(bgp.Policy, uint64, string)) error {
	leaderAddr, err := c.watchAt(ctx, addr, gateway, got)
	if leaderAddr == "" || leaderAddr == addr {
		return err
	}
	if _, ferr := c.watchAt(ctx, leaderAddr, gateway, got); ferr != nil {
		return fmt.Errorf("%w; following the leader at %s: %w", err, leaderAddr, ferr)
	}
	return err
}

// watchAt follows the policy stream of the controller at addr until it ends;
// leader is the leader's address a standby replica named in refusing it.
func (c ControllerConfig) watchAt(ctx context.Context, addr, gateway string, got func(bgp.Policy, uint64, string)) (leader string, err error) {
	conn, err := c.dial(addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	stream, err := graygwv1.NewControllerClient(conn).WatchSpeakerPolicy(ctx, &graygwv1.WatchSpeakerPolicyRequest{Gateway: gateway})
	if err != nil {
		return "", err
	}
	for received := false; ; received = true {
		msg, err := stream.Recv()
		if err != nil {
			if l := stream.Trailer().Get(leaderTrailer); !received && status.Code(err) == codes.Unavailable && len(l) > 0 {
				return l[0], err
			}
			return "", err
		}
		p, err := policyFromProto(msg)
		if err != nil {
			return "", fmt.Errorf("bad policy from the controller (kept the previous one): %w", err)
		}
		if p.Gateway != gateway {
			return "", fmt.Errorf("the controller sent the policy of gateway %q, not %q", p.Gateway, gateway)
		}
		got(p, msg.GetIntentVersion(), addr)
	}
}
