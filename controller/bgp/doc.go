// Package bgp announces graygw's VIPs to the network with an embedded GoBGP
// speaker.
//
// Each VIP is announced as a /32 once per healthy gateway serving it, with that
// gateway's address as the next hop, so the upstream routers spread traffic over
// the gateways by ECMP and stop sending it to a gateway the moment its path is
// withdrawn. Three pieces keep GoBGP out of the rest of the controller:
//
//   - [Config] says who we are and whom we talk to; [Config.Validate] names the
//     offending field of a bad config.
//   - [Decide] is the "should announce" check (MetalLB's pattern): from the state
//     of every gateway (P4Runtime connected, health check, operator drain) and of
//     every VIP (a healthy backend in one of its pools) it computes the set of
//     (VIP, next hop) paths to announce and, for every other one, the reasons
//     not to.
//   - [Speaker] reconciles GoBGP's locally originated paths to a [Decision]
//     (AddPath, DeletePath by the UUID AddPath returned), reports [Status] for the
//     CLI and exports Prometheus metrics read at scrape time.
//
// The speaker learns nothing: the global import policy rejects every route that
// a peer sends. Graceful restart (RFC 4724) keeps the VIPs at the peers while the
// controller restarts; see docs/bgp.md for what that needs from GoBGP and from
// the way the process stops.
package bgp
