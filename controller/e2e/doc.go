// Package e2e holds end-to-end tests of the controller against a real gateway:
// network namespaces built by the test, graygw's XDP program attached to the
// gateway's port, the agent's P4Runtime server (agent/server over agent/xdp) on
// a loopback port, and the controller engine (controller/engine with a bbolt
// store) driving it. VXLAN frames are crafted with internal/testpkt and sent
// with AF_PACKET from the client side; an AF_PACKET socket on the backend side
// reads, per received frame, the backend underlay address the gateway chose and
// the inner flow. The tests are Linux-only and skip when not run as root
// (docs/testing.md, "Controller end to end with packets").
package e2e
