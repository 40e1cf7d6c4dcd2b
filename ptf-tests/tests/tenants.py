"""Step 3, vni_tenant: VNIs to tenants, and rules by tenant.

Tenants are changed with graygw apply; the tenant a frame gets is what the
oracle reads from the gateway's tables and what the hash key carries.
"""

import graygw as gg


class TenantOfVNI(gg.GatewayTest):
    """A listed VNI gets its tenant, an unlisted one tenant 0, plain traffic
    the tenant VNI 0 is listed under (the baseline lists it as tenant-100)."""

    def runTest(self):
        ds, _ = self.check_batch([gg.overlay(5001, "192.168.1.9"), gg.overlay(6070, "192.168.70.5"),
                                  gg.plain("10.70.0.5", "udp", 1000, 53)])
        self.assertEqual([d["tenant_id"] for d in ds], [7, 0, 100])
        # The tenant is part of the base pool's hash key (bytes 3-4).
        self.assertEqual([bytes.fromhex(d["hash_key"])[3:5] for d in ds], [b"\x00\x07", b"\x00\x00", b"\x00\x64"])


class TenantRule(gg.GatewayTest):
    """A rule by tenant moves all of the tenant's VPCs, and a VNI added to the
    tenant later follows it; other VNIs stay."""

    @gg.autocleanup
    def runTest(self):
        def tenant(doc):
            doc["tenants"].append({"name": "t-ptf", "id": 50, "vnis": [6071, 6072]})
            doc["gray_rules"].append({"name": "tenant-t-ptf", "match": {"vip": "vip-1", "tenant": "t-ptf"}, "pool": "pool-2"})
        self.assertTrue(gg.edit(tenant)["applied"])
        frames = [gg.overlay(6071, "192.168.71.5"), gg.overlay(6072, "192.168.72.5"), gg.overlay(6073, "192.168.73.5")]
        ds, _ = self.check_batch(frames)
        self.assertEqual([(d["tenant_id"], d["pool_base"]) for d in ds], [(50, 2), (50, 2), (0, 1)])

        def grow(doc):
            next(t for t in doc["tenants"] if t["name"] == "t-ptf")["vnis"].append(6073)
        self.assertTrue(gg.edit(grow)["applied"])
        ds, _ = self.check_batch(frames)
        self.assertEqual([(d["tenant_id"], d["pool_base"]) for d in ds], [(50, 2), (50, 2), (50, 2)])
