package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/bgp"
	"github.com/graygw/graygw/internal/syncbuf"
)

const vip = "198.51.100.10"

func TestMain(m *testing.M) {
	if spec := os.Getenv(envSpeaker); spec != "" {
		os.Exit(runSpeakerChild(spec))
	}
	os.Exit(m.Run())
}

// speakerSpec is what a speaker child process runs.
type speakerSpec struct {
	Config bgp.Config `json:"config"`
	Input  bgp.Input  `json:"input"`
}

// runSpeakerChild is the whole life of a speaker child process: start, announce
// the input, and on SIGTERM stop withdrawing everything (a graceful shutdown).
// SIGKILL is the crash the graceful-restart test needs.
func runSpeakerChild(spec string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var sp speakerSpec
	if err := json.Unmarshal([]byte(spec), &sp); err != nil {
		log.Error("bad spec", "err", err)
		return 2
	}
	s, err := bgp.New(sp.Config, bgp.WithLogger(log))
	if err != nil {
		log.Error("config", "err", err)
		return 2
	}
	d, err := bgp.Decide(sp.Input)
	if err != nil {
		log.Error("input", "err", err)
		return 2
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	if err := s.Start(context.Background(), d); err != nil {
		log.Error("start", "err", err)
		return 1
	}
	fmt.Println("speaker ready")
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx, true); err != nil {
		log.Error("stop", "err", err)
		return 1
	}
	return 0
}

// startSpeakerChild runs a speaker as a child process inside the gateway
// namespace; its log goes to dir/name.log.
func (p *peerLab) startSpeakerChild(t *testing.T, name string, in bgp.Input) *exec.Cmd {
	t.Helper()
	return p.startSpeakerChildWith(t, name, speakerConfig(), in)
}

// startSpeakerChildWith is startSpeakerChild with cfg instead of
// speakerConfig (its second neighbor made passive the same way).
func (p *peerLab) startSpeakerChildWith(t *testing.T, name string, cfg bgp.Config, in bgp.Input) *exec.Cmd {
	t.Helper()
	// The eBGP session waits for BIRD to dial, 3s after it notices the
	// crash: it comes up well after the iBGP one (see
	// TestControllerRestartKeepsRoutes).
	cfg.Neighbors[1].Passive = true
	spec, err := json.Marshal(speakerSpec{Config: cfg, Input: in})
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(p.Dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	t.Setenv(envSpeaker, string(spec))
	cmd, err := p.l.Start(p.GWNS, logf, os.Args[0])
	os.Unsetenv(envSpeaker)
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}

// speakerConfig peers with both BIRD sessions; short timers keep tests fast.
func speakerConfig() bgp.Config {
	n := func(addr string, as uint32, local string) bgp.Neighbor {
		return bgp.Neighbor{Address: addr, ASN: as, LocalAddress: local, ConnectRetry: time.Second, HoldTime: 9 * time.Second}
	}
	return bgp.Config{
		ASN:             localAS,
		RouterID:        gwAddr,
		Neighbors:       []bgp.Neighbor{n(ibgpAddr, localAS, gwAddr), n(ebgpAddr, peerAS, gwEAddr)},
		GracefulRestart: bgp.GracefulRestart{Enabled: true, RestartTime: 120 * time.Second, DeferralTime: 10 * time.Second},
	}
}

func u32(v uint32) *uint32 { return &v }

// healthyInput is one VIP served by two healthy gateways.
func healthyInput() bgp.Input {
	return bgp.Input{
		Gateways: []bgp.Gateway{
			{Name: "gw1", NextHop: netip.MustParseAddr(gw1Addr), P4RuntimeConnected: true, HealthCheckOK: true},
			{Name: "gw2", NextHop: netip.MustParseAddr(gw2Addr), P4RuntimeConnected: true, HealthCheckOK: true},
		},
		VIPs: []bgp.VIP{{
			Address: netip.MustParseAddr(vip),
			Pools:   []bgp.Pool{{Name: "base", HealthyBackends: 3}},
			Attributes: bgp.Attributes{
				Communities: []string{"65000:100", "65000:200"},
				MED:         u32(50),
				LocalPref:   u32(300),
			},
		}},
	}
}

// startSpeaker starts an in-process speaker (the caller must be inside the
// gateway namespace) and waits for both sessions.
func startSpeaker(t *testing.T, cfg bgp.Config, in bgp.Input) (*bgp.Speaker, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	s, err := bgp.New(cfg, bgp.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	d, err := bgp.Decide(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Stop(context.Background(), false)
		t.Logf("speaker log:\n%s", logs)
	})
	return s, logs
}

// status is s's status; it fails t if s cannot say.
func status(t *testing.T, s *bgp.Speaker) bgp.Status {
	t.Helper()
	st, err := s.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// sessionsUp is a birdlab.WaitFor condition: every neighbor is established.
func sessionsUp(s *bgp.Speaker) func() (bool, string) {
	return func() (bool, string) {
		st, err := s.Status(context.Background())
		if err != nil {
			return false, err.Error()
		}
		state := ""
		up := 0
		for _, n := range st.Neighbors {
			state += n.Address + "=" + n.State + " "
			if n.Up {
				up++
			}
		}
		return up == len(st.Neighbors), state
	}
}
