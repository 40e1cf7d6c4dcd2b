"""Step 4, gray_rules: every kind of cutover, priorities, rollbacks.

Each test moves traffic with the operator's own commands (graygw cutover,
rollback) and checks on the wire which pool each frame reaches: the base pool
(pool-1: be-11 and be-12 behind port 1, be-13 behind port 2) or the gray pool
(pool-2: be-21 and be-22 behind port 3). VNIs 6001-6099 are not named by the
baseline's rules; the baseline gives them a tenant (graygw.PTF_TENANT), since the
controller refuses a cutover of a VNI no tenant owns.
"""

import graygw as gg


def pools(test, frames):
    ds, _ = test.check_batch(frames)
    return [d["pool_base"] for d in ds], ds


class CutoverVM(gg.GatewayTest):
    """--vm moves one VM (VNI, inner source): its flows go gray, its
    neighbour's and the same address in another VNI stay; the rule's counter
    counts the moved frames."""

    @gg.autocleanup
    def runTest(self):
        gg.change("cutover", "--vm", "6001/192.168.1.5", "--pool", "pool-2", "--vip", "vip-1", "--name", "vm-a")
        r0 = gg.counters("rule")
        got, _ = pools(self, [gg.overlay(6001, "192.168.1.5"), gg.overlay(6001, "192.168.1.5", proto="udp", dport=53),
                              gg.overlay(6001, "192.168.1.6"), gg.overlay(6009, "192.168.1.5"),
                              gg.overlay(6001, "192.168.1.5", vip=gg.VIP2)])
        self.assertEqual(got, [2, 2, 1, 1, 1], "--vip vip-1 scopes the rule to VIP 1")
        r1 = gg.counters("rule")
        self.assertEqual(r1["vm-a"][0] - r0.get("vm-a", (0, 0))[0], 2)


class CutoverVNI(gg.GatewayTest):
    """--vni moves a whole VPC, on every VIP."""

    @gg.autocleanup
    def runTest(self):
        gg.change("cutover", "--vni", "6002", "--pool", "pool-2")
        got, _ = pools(self, [gg.overlay(6002, "192.168.2.5"), gg.overlay(6002, "192.168.2.77", proto="icmp"),
                              gg.overlay(6002, "192.168.2.5", vip=gg.VIP2), gg.overlay(6003, "192.168.2.5")])
        self.assertEqual(got, [2, 2, 2, 1])


class CutoverPrefix(gg.GatewayTest):
    """--prefix moves the VMs of a subnet of one VPC."""

    @gg.autocleanup
    def runTest(self):
        gg.change("cutover", "--vni", "6001", "--prefix", "192.168.1.0/28", "--pool", "pool-2", "--vip", "vip-1")
        got, _ = pools(self, [gg.overlay(6001, "192.168.1.5"), gg.overlay(6001, "192.168.1.15"),
                              gg.overlay(6001, "192.168.1.16"), gg.overlay(6002, "192.168.1.5")])
        self.assertEqual(got, [2, 2, 1, 1])


class CutoverFlow(gg.GatewayTest):
    """--flow moves exactly one 5-tuple: the next source port, another
    protocol or another destination stay."""

    @gg.autocleanup
    def runTest(self):
        gg.change("cutover", "--vni", "6001", "--flow", "tcp/192.168.1.5:33001/192.168.1.1:22", "--pool", "pool-2",
                  "--vip", "vip-1")
        got, _ = pools(self, [
            gg.overlay(6001, "192.168.1.5", "192.168.1.1", "tcp", 33001, 22),
            gg.overlay(6001, "192.168.1.5", "192.168.1.1", "tcp", 33002, 22),
            gg.overlay(6001, "192.168.1.5", "192.168.1.1", "udp", 33001, 22),
            gg.overlay(6001, "192.168.1.5", "192.168.1.2", "tcp", 33001, 22),
            gg.overlay(6001, "192.168.1.5", "192.168.1.1", "tcp", 33001, 23)])
        self.assertEqual(got, [2, 1, 1, 1, 1])


class CutoverPlainFlow(gg.GatewayTest):
    """--vni 0 --flow selects plain (non-VXLAN) traffic by its outer 5-tuple."""

    @gg.autocleanup
    def runTest(self):
        gg.change("cutover", "--vni", "0", "--flow", "udp/10.9.0.5:5000/10.255.0.1:53", "--pool", "pool-2", "--vip", "vip-1")
        got, _ = pools(self, [gg.plain("10.9.0.5", "udp", 5000, 53), gg.plain("10.9.0.5", "udp", 5001, 53),
                              gg.overlay(0, "10.9.0.5", "10.255.0.1", "udp", 5000, 53)])
        self.assertEqual(got[:2], [2, 1])
        # VXLAN VNI 0 is overlay traffic whose inner addresses are the flow's:
        # the rule (vni 0, src, dst, ports) matches it as well.
        self.assertEqual(got[2], 2)


class CutoverPercent(gg.GatewayTest):
    """--percent moves a sticky share of a VPC's VMs: a VM is gray exactly
    when its split hash (CRC32 of VNI and source, computed here independently)
    is below the threshold; raising the share with the same rule name keeps
    every gray VM gray."""

    @gg.autocleanup
    def runTest(self):
        vms = ["192.168.4.%d" % i for i in range(1, 49)]
        gg.change("cutover", "--vni", "6004", "--percent", "50", "--pool", "pool-2", "--name", "pct-6004")
        got50, ds = pools(self, [gg.overlay(6004, vm) for vm in vms])
        want50 = [2 if gg.split_hash(6004, vm) < 32768 else 1 for vm in vms]
        self.assertEqual(got50, want50)
        self.assertEqual([d["split_hash"] for d in ds], [gg.split_hash(6004, vm) for vm in vms])
        self.assertTrue(0 < got50.count(2) < len(vms), "a 50%% split of %d VMs put %d gray" % (len(vms), got50.count(2)))

        gg.change("cutover", "--vni", "6004", "--percent", "75", "--pool", "pool-2", "--name", "pct-6004")
        got75, _ = pools(self, [gg.overlay(6004, vm) for vm in vms])
        self.assertEqual(got75, [2 if gg.split_hash(6004, vm) < 49152 else 1 for vm in vms])
        for vm, a, b in zip(vms, got50, got75):
            self.assertFalse(a == 2 and b == 1, "VM %s went back to base when the share grew" % vm)


class SplitSticky(gg.GatewayTest):
    """A split is per VM, not per flow: every flow of a VM (other
    destinations, ports, protocols) lands on the VM's side, and on one backend
    of that side's pool when the pool hashes [vni, src] (the gray pool)."""

    @gg.autocleanup
    def runTest(self):
        gg.change("cutover", "--vni", "6008", "--percent", "50", "--pool", "pool-2", "--name", "pct-6008")
        vms = ["192.168.8.%d" % i for i in range(2, 14)]
        flows = [("192.168.1.1", "tcp", 40000, 80), ("192.168.1.2", "tcp", 40001, 443), ("10.8.8.8", "udp", 5353, 53),
                 ("192.168.1.1", "icmp", 7, 0)]
        frames = [gg.overlay(6008, vm, d, p, sp, dp) for vm in vms for d, p, sp, dp in flows]
        got, ds = pools(self, frames)
        sides = {}
        for i, vm in enumerate(vms):
            mine = ds[i * len(flows):(i + 1) * len(flows)]
            self.assertEqual(len({d["pool_base"] for d in mine}), 1, "VM %s split across pools: %s" % (vm, [d["pool_base"] for d in mine]))
            sides[vm] = mine[0]["pool_base"]
            self.assertEqual(sides[vm], 2 if gg.split_hash(6008, vm) < 32768 else 1)
            if sides[vm] == 2:
                self.assertEqual(len({d["backend_id"] for d in mine}), 1, "a gray VM's flows on several gray backends")
        self.assertEqual(set(sides.values()), {1, 2}, "12 VMs all on one side of a 50% split")


class PriorityVMInsideVNI(gg.GatewayTest):
    """A VPC moved to gray with one VM pinned back to base: the VM rule's
    derived priority (tier vm) beats the VNI rule's; a flow rule beats both."""

    @gg.autocleanup
    def runTest(self):
        gg.change("cutover", "--vni", "6005", "--pool", "pool-2")
        gg.change("cutover", "--vm", "6005/192.168.5.5", "--pool", "pool-1")
        gg.change("cutover", "--vni", "6005", "--flow", "tcp/192.168.5.5:4000/192.168.1.1:443", "--pool", "pool-2")
        got, ds = pools(self, [gg.overlay(6005, "192.168.5.6"), gg.overlay(6005, "192.168.5.5"),
                               gg.overlay(6005, "192.168.5.5", "192.168.1.1", "tcp", 4000, 443)])
        self.assertEqual(got, [2, 1, 2])
        prio = [d["rule_priority"] for d in ds]
        self.assertTrue(prio[0] < prio[1] < prio[2], "priorities vni < vm < flow: %s" % prio)


class PriorityExplicit(gg.GatewayTest):
    """An explicit priority above every derived one (10000) wins over a more
    specific rule, and one below 1000 loses to every derived one."""

    @gg.autocleanup
    def runTest(self):
        def rules(doc):
            doc.setdefault("gray_rules", []).extend([
                {"name": "vni-6006-pinned", "match": {"vni": 6006}, "pool": "pool-2", "priority": 10000},
                {"name": "vm-6006-5", "match": {"vni": 6006, "src": "192.168.6.5"}, "pool": "pool-1"},
                {"name": "vni-6007-low", "match": {"vni": 6007}, "pool": "pool-1", "priority": 500},
                {"name": "vm-6007-5", "match": {"vni": 6007, "src": "192.168.7.5"}, "pool": "pool-2"},
            ])
        self.assertTrue(gg.edit(rules)["applied"])
        got, ds = pools(self, [gg.overlay(6006, "192.168.6.5"), gg.overlay(6007, "192.168.7.5"),
                               gg.overlay(6007, "192.168.7.6")])
        self.assertEqual(got, [2, 2, 1])
        self.assertEqual([d["rule_priority"] for d in ds], [10000, 5056, 500])


class EqualPriorityOverlapRefused(gg.GatewayTest):
    """Two rules of equal priority that can match the same packet are refused
    (exit 3, overlap) and nothing is stored or written."""

    @gg.autocleanup
    def runTest(self):
        gg.change("cutover", "--vni", "6001", "--flow", "tcp/192.168.1.5:1000/192.168.1.1", "--pool", "pool-2", "--name", "f1")
        v, doc = gg.intent()
        code, out, err = gg.change("cutover", "--vni", "6001", "--flow", "tcp/192.168.1.5/192.168.1.1:80", "--pool", "pool-2",
                                   "--name", "f2", ok=(3,))
        self.assertIn("overlap", out + err)
        self.assertEqual(gg.intent(), (v, doc))
        got, _ = pools(self, [gg.overlay(6001, "192.168.1.5", "192.168.1.1", "tcp", 1000, 80),
                              gg.overlay(6001, "192.168.1.5", "192.168.1.1", "tcp", 1001, 80)])
        self.assertEqual(got, [2, 1])


class RollbackStep(gg.GatewayTest):
    """rollback --step undoes the last change only: two cutovers, one step
    back, the first cutover stays."""

    @gg.autocleanup
    def runTest(self):
        gg.change("cutover", "--vni", "6010", "--pool", "pool-2")
        gg.change("cutover", "--vni", "6011", "--pool", "pool-2")
        frames = [gg.overlay(6010, "192.168.10.5"), gg.overlay(6011, "192.168.11.5")]
        self.assertEqual(pools(self, frames)[0], [2, 2])
        gg.change("rollback", "--step")
        self.assertEqual(pools(self, frames)[0], [2, 1])
        gg.change("rollback", "--step")
        self.assertEqual(pools(self, frames)[0], [1, 1])


class RollbackAll(gg.GatewayTest):
    """rollback --all removes every gray rule, the baseline's too: the VPC
    the baseline moves (VNI 5002) and the cutover's go back to base."""

    @gg.autocleanup
    def runTest(self):
        gg.change("cutover", "--vni", "6012", "--pool", "pool-2")
        frames = [gg.overlay(6012, "192.168.12.5"), gg.overlay(5002, "10.0.0.9")]
        self.assertEqual(pools(self, frames)[0], [2, 2])
        gg.change("rollback", "--all")
        self.assertEqual(pools(self, frames)[0], [1, 1])
        self.assertEqual(gg.cli_json("get", "--rules") or [], [])
