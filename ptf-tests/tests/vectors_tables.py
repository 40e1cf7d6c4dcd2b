"""Table level: every shared test vector on the vectors' raw table contents.

The one group that does not program the gateway through the controller. Some
vectors need tables no valid intent compiles to (a pool without buckets, buckets
naming a backend that has no entry: NO_BACKEND), and the vectors' expected
frames are byte-exact only with their own bucket fill (bucket b -> fill[b % len]),
which the controller's Maglev never produces. So for this module ptfctl tables
becomes the gateway's primary P4Runtime client (the controller stays standby
and writes nothing), saves what the gateway holds, writes the vector state
exactly, and after the module deletes it and writes back what it saved; then
the controller is primary again and the gateway in sync, which tearDownModule
checks. The drop counters are still read through the controller (a standby may
read).

Each case: the vector's frame on port 1 (a vlan case: its in_port); its expected frame exactly on its
port, and its mirror copy on the copy's port, or nothing out (drop; pass, which
on XDP must reach the gateway's kernel), with the reason counted once. The
session holds the case's state: ptfctl tables switches between the basic and
the mirror state on a "state NAME" line (the diff: the mirror rules), and the vlan
state's cases go into their case's port (in_port: port 1 accepts VID 100, port 3
sends VID 300).
"""

import os
import select
import subprocess

import graygw as gg

_session = None
_held = "basic"


def setUpModule():
    global _session
    cmd = gg._in_gw([os.path.join(gg.BIN, "ptfctl"), "tables", "-p4rt", gg.P4RT, "-vectors", gg.VECTORS, "-state", "basic"])
    _session = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = _ready_line()
    if not line.startswith("ready"):
        _session.kill()
        _, err = _session.communicate()
        raise RuntimeError("ptfctl tables did not get ready: %r %s" % (line, err))


def _ready_line():
    ready, _, _ = select.select([_session.stdout], [], [], 90)
    return _session.stdout.readline() if ready else ""


def hold(state):
    """Make the session hold vector state (written as a diff)."""
    global _held
    if state == _held:
        return
    _session.stdin.write("state %s\n" % state)
    _session.stdin.flush()
    line = _ready_line()
    if not line.startswith("ready: state %s" % state):
        raise AssertionError("ptfctl tables did not switch to state %s: %r" % (state, line))
    _held = state


def tearDownModule():
    global _session
    if _session is None:
        return
    out, err = _session.communicate(input="", timeout=120)
    rc, _session = _session.returncode, None
    if rc != 0 or "restored" not in out:
        raise RuntimeError("ptfctl tables did not restore the gateway: exit %d\n%s\n%s" % (rc, out, err))
    # The controller takes over again; the gateway must hold its intent.
    gg.wait_in_sync()


class TableCase(gg.GatewayTest):
    case = None

    def run_case(self):
        c = self.case
        frame = bytes.fromhex(c["packet"])
        if len(frame) < 14:
            self.skipTest("a veth cannot carry a %d-byte frame; ETH_TRUNCATED is covered by BPF_PROG_TEST_RUN "
                          "in agent/xdp and bpf/" % len(frame))
        if frame[12:14] == b"\x81\x00" and len(frame) < 20:
            self.skipTest("a veth cannot carry a %d-byte tagged frame (the kernel drops it before untagging); covered "
                          "by BPF_PROG_TEST_RUN in bpf/ and by internal/difftest on BMv2" % len(frame))
        hold(c["state"])
        e = c["expect"]
        # The vlan state's cases say their port (vlan_accept's key); the others
        # do not depend on it and go into port 1.
        port = c.get("in_port") or 1
        if e["verdict"] == "forward":
            with self.counted(None, 0):
                self.check_decision(frame, e, ingress=port)
            return
        with self.counted(e["reason"], len(frame)):
            self.check_decision(frame, e, ingress=port)


for _c in gg.vectors()["cases"]:
    _n = "table_" + _c["name"]
    globals()[_n] = type(_n, (TableCase,), {"case": _c, "runTest": TableCase.run_case, "__doc__": _c["description"]})
del _c, _n
