package p4rt

import (
	"context"
	"fmt"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

// Cookie reads the cookie of the target's forwarding pipeline; ok is false when the
// target has no pipeline yet.
func (c *Client) Cookie(ctx context.Context) (cookie uint64, ok bool, err error) {
	resp, err := c.rt.GetForwardingPipelineConfig(ctx, &p4v1.GetForwardingPipelineConfigRequest{
		DeviceId: c.opts.DeviceID, ResponseType: p4v1.GetForwardingPipelineConfigRequest_COOKIE_ONLY})
	if err != nil {
		return 0, false, fmt.Errorf("p4rt: %s: get pipeline cookie: %w", c.addr, err)
	}
	if resp.GetConfig().GetCookie() == nil {
		return 0, false, nil
	}
	return resp.GetConfig().GetCookie().GetCookie(), true, nil
}

// EnsurePipeline pushes info (and the target-specific device config, nil for the XDP
// agent) with VERIFY_AND_COMMIT unless the target already runs a pipeline with the
// same cookie. It reports whether it pushed.
func (c *Client) EnsurePipeline(ctx context.Context, info *p4configv1.P4Info, deviceConfig []byte, cookie uint64) (bool, error) {
	have, ok, err := c.Cookie(ctx)
	if err != nil {
		return false, err
	}
	if ok && have == cookie {
		return false, nil
	}
	_, err = c.rt.SetForwardingPipelineConfig(ctx, &p4v1.SetForwardingPipelineConfigRequest{
		DeviceId: c.opts.DeviceID, ElectionId: c.electionID(), Role: c.opts.Role,
		Action: p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT,
		Config: &p4v1.ForwardingPipelineConfig{P4Info: info, P4DeviceConfig: deviceConfig,
			Cookie: &p4v1.ForwardingPipelineConfig_Cookie{Cookie: cookie}},
	})
	if err != nil {
		return false, fmt.Errorf("p4rt: %s: set pipeline: %w", c.addr, err)
	}
	c.log.Info("pushed forwarding pipeline", "cookie", cookie)
	return true, nil
}
