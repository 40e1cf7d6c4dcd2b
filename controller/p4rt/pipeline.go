package p4rt

import (
	"context"
	"fmt"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// noPipeline reports whether err is a target's way of saying it has no forwarding
// pipeline yet. The spec leaves the answer open: the XDP agent returns an empty
// config, BMv2's PI server FAILED_PRECONDITION ("No forwarding pipeline config set
// for this device"). Both mean "push one", not "the target is broken".
func noPipeline(err error) bool {
	return status.Code(err) == codes.FailedPrecondition
}

// Cookie reads the cookie of the target's forwarding pipeline; ok is false when the
// target has no pipeline yet.
func (c *Client) Cookie(ctx context.Context) (cookie uint64, ok bool, err error) {
	resp, err := c.rt.GetForwardingPipelineConfig(ctx, &p4v1.GetForwardingPipelineConfigRequest{
		DeviceId: c.opts.DeviceID, ResponseType: p4v1.GetForwardingPipelineConfigRequest_COOKIE_ONLY})
	if noPipeline(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("p4rt: %s: get pipeline cookie: %w", c.addr, err)
	}
	if resp.GetConfig().GetCookie() == nil {
		return 0, false, nil
	}
	return resp.GetConfig().GetCookie().GetCookie(), true, nil
}

// EnsurePipeline pushes info (and the target-specific device config, nil for the XDP
// agent) unless the target already runs a pipeline with the same cookie: with
// RECONCILE_AND_COMMIT over a running pipeline (entries kept), else
// VERIFY_AND_COMMIT. It reports whether it pushed.
func (c *Client) EnsurePipeline(ctx context.Context, info *p4configv1.P4Info, deviceConfig []byte, cookie uint64) (bool, error) {
	have, ok, err := c.Cookie(ctx)
	if err != nil {
		return false, err
	}
	if ok && have == cookie {
		return false, nil
	}
	set := func(action p4v1.SetForwardingPipelineConfigRequest_Action) error {
		_, err := c.rt.SetForwardingPipelineConfig(ctx, &p4v1.SetForwardingPipelineConfigRequest{
			DeviceId: c.opts.DeviceID, ElectionId: c.electionID(), Role: c.opts.Role, Action: action,
			Config: &p4v1.ForwardingPipelineConfig{P4Info: info, P4DeviceConfig: deviceConfig,
				Cookie: &p4v1.ForwardingPipelineConfig_Cookie{Cookie: cookie}},
		})
		return err
	}
	// A target already running a pipeline keeps its entries through
	// RECONCILE_AND_COMMIT when the new one is compatible (spec §14.2): a cookie
	// scheme change must not wipe a gateway that forwards traffic. A target that
	// cannot reconcile gets VERIFY_AND_COMMIT, which starts it empty.
	action := p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT
	reconcileFailed := false
	if ok {
		action = p4v1.SetForwardingPipelineConfigRequest_RECONCILE_AND_COMMIT
		if err = set(action); err != nil {
			c.log.Warn("target cannot reconcile the pipeline, replacing it", "err", err)
			action = p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT
			reconcileFailed = true
		}
	}
	if action == p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT {
		err = set(action)
		if err != nil && reconcileFailed {
			// BMv2 keeps the config it failed to reconcile loaded but not
			// committed, and refuses every later push ("Error in first phase
			// of device update") until a COMMIT ends that update
			// (docs/bmv2.md). Commit it (a target with nothing saved refuses,
			// harmlessly), then replace it.
			c.log.Warn("target refuses the pipeline after a failed reconcile; committing its pending update and pushing again", "err", err)
			if cerr := set(p4v1.SetForwardingPipelineConfigRequest_COMMIT); cerr == nil {
				err = set(action)
			}
		}
	}
	if err != nil {
		return false, fmt.Errorf("p4rt: %s: set pipeline: %w", c.addr, err)
	}
	c.log.Info("pushed forwarding pipeline", "cookie", cookie, "action", action)
	return true, nil
}

// Pipeline reads the P4Info and the cookie of the target's forwarding pipeline
// (P4INFO_AND_COOKIE). ok is false when the target has no pipeline yet; info is
// nil when the target does not return its P4Info.
func (c *Client) Pipeline(ctx context.Context) (info *p4configv1.P4Info, cookie uint64, ok bool, err error) {
	resp, err := c.rt.GetForwardingPipelineConfig(ctx, &p4v1.GetForwardingPipelineConfigRequest{
		DeviceId: c.opts.DeviceID, ResponseType: p4v1.GetForwardingPipelineConfigRequest_P4INFO_AND_COOKIE})
	if noPipeline(err) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, fmt.Errorf("p4rt: %s: get pipeline: %w", c.addr, err)
	}
	cfg := resp.GetConfig()
	if cfg.GetCookie() == nil && cfg.GetP4Info() == nil {
		return nil, 0, false, nil
	}
	return cfg.GetP4Info(), cfg.GetCookie().GetCookie(), true, nil
}
