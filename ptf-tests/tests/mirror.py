"""Mirror (shadow traffic, docs/pipeline.md §10), through the controller.

graygw mirror copies a VPC's traffic to the gray pool (pool-2, be-21 and be-22
behind port 3) while the VIP's default pool (pool-1) still serves it: each frame
must leave exactly as it did before the mirror, and its copy, rewritten for the
gray backend the same consistent hash picks and marked DSCP 1 (Lower-Effort),
must leave on that backend's port; nothing else. The copies are counted exactly
(graygw counters --kind mirror), 1-in-N sampling copies the VMs the split hash
says and stays within its bound, and once the mirror stops nothing is copied.
On BMv2 the copy is a clone recirculated through ingress (the controller
writes clone session 1 with the pipeline); on XDP a tc program sends it.
"""

import graygw as gg

VNI = 6081  # a VNI of the baseline's PTF tenant no other module uses


def vms(n, third=71):
    return [gg.overlay(VNI, "192.168.%d.%d" % (third, 10 + i)) for i in range(n)]


class MirrorTest(gg.GatewayTest):
    def check_mirrored(self, frames, served_before):
        """Send each frame; its served frame must equal the one before the
        mirror, and its copy (when the oracle says one is sent) must leave on
        its port, marked. Returns the number of copies seen."""
        ds = gg.expect(frames)
        copies = 0
        for f, d, b in zip(frames, ds, served_before):
            self.assertEqual(d["verdict"], "forward")
            self.assertEqual(d["packet"], b["packet"], "the mirror changed the served frame")
            self.assertEqual(d["port"], b["port"])
            self.send(f, 1)
            self.verify_exact(bytes.fromhex(d["packet"]), d["port"], what="served: ")
            c = d.get("copy")
            if c and c["sent"]:
                copy = self.verify_exact(bytes.fromhex(c["packet"]), c["port"], what="copy: ")
                self.assertEqual(copy[15] >> 2, 1, "the copy's outer DSCP is not Lower-Effort")
                self.assertEqual(c["pool_base"], 2, "the copy is not for the gray pool")
                copies += 1
            self.verify_nothing_out()
        return copies


class MirrorVPC(MirrorTest):
    """Every VM of the VPC: served as before, one copy each to gray, counted
    exactly; after graygw mirror --stop, served alone."""

    @gg.autocleanup
    def runTest(self):
        frames = vms(12)
        before = gg.expect(frames)
        gg.change("mirror", "--vni", str(VNI), "--pool", "pool-2", "--vip", "vip-1", "--name", "mirror-vpc")
        m0 = gg.counters("mirror").get("mirror-vpc", (0, 0))[0]
        self.assertEqual(self.check_mirrored(frames, before), len(frames))
        m1 = gg.counters("mirror").get("mirror-vpc", (0, 0))[0]
        self.assertEqual(m1 - m0, len(frames), "mirror_counter of the rule")
        gg.change("mirror", "--stop")
        ds = gg.expect(frames)
        for f, d in zip(frames, ds):
            self.assertNotIn("copy", d)
            self.check_decision(f, d)


class MirrorSampled(MirrorTest):
    """--rate 1/4 over 40 VMs: exactly the VMs whose split hash is within the
    sample are copied, more than none and well under half."""

    @gg.autocleanup
    def runTest(self):
        frames = vms(40, third=72)
        before = gg.expect(frames)
        gg.change("mirror", "--vni", str(VNI), "--pool", "pool-2", "--vip", "vip-1", "--rate", "1/4", "--name", "mirror-4")
        n = self.check_mirrored(frames, before)
        self.assertTrue(1 <= n <= 20, "1 in 4 of 40 VMs: %d copied" % n)
