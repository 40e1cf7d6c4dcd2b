"""Step 2, the vip table: a VIP's traffic is ours, anything else is not.

Programmed through the controller: VIPs added, removed and repointed with
graygw apply and rollback.
"""

import graygw as gg


class VipMatch(gg.GatewayTest):
    """A VXLAN frame to VIP 1 from a VNI no rule names goes to VIP 1's default
    (base) pool; the VIP's and the backend's direct counters count it."""

    def runTest(self):
        f = gg.overlay(6001, "192.168.1.5")
        vips0, bes0 = gg.counters("vip"), gg.counters("backend")
        d, out = self.forward(f)
        self.assertEqual((d["vip_id"], d["pool_base"], d["rule_priority"]), (1, gg.BASE_POOL, -1))
        be = gg.backends()[d["backend_id"]]
        vips1, bes1 = gg.counters("vip"), gg.counters("backend")
        self.assertEqual(vips1["vip-1"][0] - vips0["vip-1"][0], 1)
        self.assertEqual(vips1["vip-1"][1] - vips0["vip-1"][1], len(f), "vip_counter counts the frame as received")
        self.assertEqual(bes1[be["name"]][0] - bes0[be["name"]][0], 1)
        self.assertEqual(vips1["vip-2"], vips0["vip-2"])


class VipMatchSecond(gg.GatewayTest):
    """VIP 2 is matched as itself (vip_id 2), same default pool."""

    def runTest(self):
        d, _ = self.forward(gg.overlay(6001, "192.168.1.5", vip=gg.VIP2))
        self.assertEqual((d["vip_id"], d["pool_base"]), (2, gg.BASE_POOL))


class VipMiss(gg.GatewayTest):
    """A VXLAN frame to an address that is no VIP is not for us: XDP passes it
    to the gateway's kernel untouched (P4 drops it), counted NOT_VIP."""

    def runTest(self):
        f = bytes(gg.overlay(6001, "192.168.1.5", vip="10.255.0.99"))
        d = gg.expect([f])[0]
        self.assertEqual((d["verdict"], d["reason"]), ("pass", "NOT_VIP"))
        with self.counted("NOT_VIP", len(f)):
            self.check_decision(f, d)


class VipAddedAndRolledBack(gg.GatewayTest):
    """graygw apply adds VIP 10.255.0.3: its traffic, not ours before, is
    forwarded after; graygw rollback --step removes it again."""

    @gg.autocleanup
    def runTest(self):
        f = bytes(gg.overlay(6001, "192.168.1.5", vip="10.255.0.3"))
        self.assertEqual(gg.expect([f])[0]["reason"], "NOT_VIP")
        res = gg.edit(lambda doc: doc["vips"].append({"name": "vip-3", "id": 3, "address": "10.255.0.3", "default_pool": "pool-1"}))
        self.assertTrue(res["applied"], res)
        d, _ = self.forward(f)
        self.assertEqual((d["vip_id"], d["pool_base"]), (3, gg.BASE_POOL))
        gg.change("rollback", "--step")
        d = gg.expect([f])[0]
        self.assertEqual(d["reason"], "NOT_VIP")
        with self.counted("NOT_VIP", len(f)):
            self.check_decision(f, d)


class VipDefaultPoolChanged(gg.GatewayTest):
    """Repointing the VIPs' default pool to the gray pool moves their unruled
    traffic there. Repointing one VIP only is refused (exit 3): the baseline's
    VIP-less rules would then span two services. Nothing changes then."""

    @gg.autocleanup
    def runTest(self):
        v0, _ = gg.intent()
        doc = gg.yaml.safe_load(gg.intent()[1])
        next(v for v in doc["vips"] if v["name"] == "vip-1")["default_pool"] = "pool-2"
        path = gg.os.path.join(gg.WORK, "vip-refused.yaml")
        with open(path, "w") as fh:
            gg.yaml.safe_dump(doc, fh, sort_keys=False)
        code, out, err = gg.cli("apply", "-f", path, "--actor", "ptf", ok=(3,))
        self.assertIn("different default pools", out + err)
        self.assertEqual(gg.intent()[0], v0, "a refused apply stores nothing")

        def repoint(doc):
            for v in doc["vips"]:
                v["default_pool"] = "pool-2"
        self.assertTrue(gg.edit(repoint)["applied"])
        ds, _ = self.check_batch([gg.overlay(6001, "192.168.1.5"), gg.overlay(6001, "192.168.1.5", vip=gg.VIP2)])
        self.assertEqual([d["pool_base"] for d in ds], [gg.GRAY_POOL, gg.GRAY_POOL])
        self.assertEqual({d["port"] for d in ds}, {3}, "the gray pool's backends are behind port 3")
