// Package e2e tests the BGP speaker of package bgp against a real BIRD 2.
//
// Every test builds its own pair of network namespaces joined by a veth: the
// gateway side runs the speaker on port 179, the peer side runs BIRD with two
// sessions to it, one iBGP and one eBGP. Go cannot move a running process into
// a namespace (setns is per thread), so a test that drives a speaker in process
// re-executes the test binary under `ip netns exec`, and the graceful-restart
// test runs each speaker as a child process it can SIGKILL. The tests skip
// unless run as root with bird and birdc installed.
package e2e
