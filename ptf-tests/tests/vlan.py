"""802.1Q at table level: the shared vectors' vlan state (docs/pipeline.md §1,
§8) on the vectors' raw tables.

As vectors_tables.py, but with the vlan state: ptfctl tables becomes the
gateway's primary P4Runtime client, saves what the gateway holds, writes the
vlan state exactly (vlan_accept: port 1 accepts VID 100; port_vlan: port 3
sends VID 300), and after the module writes back what it saved. Each case's
frame goes into its case's port; its expected frame must leave exactly (tag
pushed, rewritten or removed) on its port, or nothing (drop; pass, which on
XDP must reach the gateway's kernel), with the reason counted once.
"""

import os
import select
import subprocess

import graygw as gg

_session = None


def setUpModule():
    global _session
    cmd = gg._in_gw([os.path.join(gg.BIN, "ptfctl"), "tables", "-p4rt", gg.P4RT, "-vectors", gg.VECTORS, "-state", "vlan"])
    _session = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([_session.stdout], [], [], 90)
    line = _session.stdout.readline() if ready else ""
    if not line.startswith("ready"):
        _session.kill()
        _, err = _session.communicate()
        raise RuntimeError("ptfctl tables did not get ready: %r %s" % (line, err))


def tearDownModule():
    global _session
    if _session is None:
        return
    out, err = _session.communicate(input="", timeout=120)
    rc, _session = _session.returncode, None
    if rc != 0 or "restored" not in out:
        raise RuntimeError("ptfctl tables did not restore the gateway: exit %d\n%s\n%s" % (rc, out, err))
    gg.wait_in_sync()


class VLANCase(gg.GatewayTest):
    case = None

    def run_case(self):
        c = self.case
        frame = bytes.fromhex(c["packet"])
        if len(frame) < 20:
            self.skipTest("a veth cannot carry a %d-byte tagged frame (the kernel drops it before untagging); "
                          "covered by BPF_PROG_TEST_RUN in bpf/ and by internal/difftest on BMv2" % len(frame))
        e = c["expect"]
        if e.get("copy"):
            self.skipTest("a mirror copy: internal/difftest TestVLANVectors sends it on both targets")
        port = c.get("in_port", 0)
        if e["verdict"] == "forward":
            with self.counted(None, 0):
                self.check_decision(frame, e, ingress=port)
            return
        with self.counted(e["reason"], len(frame)):
            self.check_decision(frame, e, ingress=port)


for _c in gg.vectors()["cases"]:
    if _c["state"] != "vlan":
        continue
    _n = "vlan_" + _c["name"]
    globals()[_n] = type(_n, (VLANCase,), {"case": _c, "runTest": VLANCase.run_case, "__doc__": _c["description"]})
del _c, _n
