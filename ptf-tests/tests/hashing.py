"""Steps 5-7: hash masks, the CRC32 bucket, consistent backend selection.

The hash key, its CRC32 and the bucket are recomputed here in Python from
docs/pipeline.md (an implementation independent of the Go model and the
dataplanes) and compared with what the oracle says the gateway computes; the
backend each flow reaches is read off the wire. Pools and backends are changed
through graygw apply.
"""

import graygw as gg

PROTO = {"tcp": 6, "udp": 17, "icmp": 1}


def flows(n, vni=6020, src="192.168.20.5"):
    """n distinct TCP/UDP flows of one VM."""
    out = []
    for i in range(n):
        proto = "tcp" if i % 2 == 0 else "udp"
        out.append((vni, src, "192.168.1.%d" % (1 + i % 7), proto, 20000 + i, 80 + i % 3))
    return out


def frames(fl):
    return [gg.overlay(v, s, d, p, sp, dp) for v, s, d, p, sp, dp in fl]


class HashKeyAndBucket(gg.GatewayTest):
    """The base pool hashes every field: the gateway's key, CRC and bucket are
    the ones docs/pipeline.md defines (recomputed here), and flows of one VM
    spread over the pool's backends."""

    def runTest(self):
        fl = flows(40)
        ds, outs = self.check_batch(frames(fl))
        tenant = gg.PTF_TENANT  # VNI 6020's tenant in the baseline
        for (v, s, d, p, sp, dp), dec in zip(fl, ds):
            key = gg.flow_key(v, tenant, s, d, PROTO[p], sp, dp)
            crc, bucket = gg.bucket(key)
            self.assertEqual((dec["hash_key"], dec["crc"], dec["bucket"]), (key.hex(), crc, bucket))
        used = {d["backend_id"] for d in ds}
        self.assertGreater(len(used), 1, "40 flows of one VM all on backend %s" % used)


class GrayPoolHashesVMOnly(gg.GatewayTest):
    """The gray pool hashes [vni, src] only: every flow of a moved VM reaches
    the same gray backend, and the key has every other field masked to 0."""

    @gg.autocleanup
    def runTest(self):
        gg.change("cutover", "--vni", "6020", "--pool", "pool-2")
        fl = flows(12)
        ds, outs = self.check_batch(frames(fl))
        self.assertEqual({d["pool_base"] for d in ds}, {gg.GRAY_POOL})
        self.assertEqual(len({d["backend_id"] for d in ds}), 1, "one VM's flows spread over %s" % {d["backend_id"] for d in ds})
        self.assertEqual(len({bytes(o)[:14] + bytes(o)[26:34] for o in outs}), 1, "one MAC pair and outer address on the wire")
        for (v, s, d, p, sp, dp), dec in zip(fl, ds):
            key = gg.masked(gg.flow_key(v, 0, s, d, PROTO[p], sp, dp), ["vni", "src"])
            self.assertEqual((dec["hash_key"], dec["bucket"]), (key.hex(), gg.bucket(key)[1]))


class HashFieldsChanged(gg.GatewayTest):
    """Changing the base pool's hash_fields to [dst] (a new pool version,
    flipped make-before-break): every VM's flows to one destination reach one
    backend."""

    @gg.autocleanup
    def runTest(self):
        fl = [(6021 + i % 3, "192.168.21.%d" % (i + 2), "192.168.1.1", "tcp", 30000 + i, 443) for i in range(15)]
        pool0 = gg.expect(frames(fl[:1]))[0]["pool"]

        def dst_only(doc):
            gg.pool_of(doc, "pool-1")["hash_fields"] = ["dst"]
        self.assertTrue(gg.edit(dst_only)["applied"])
        ds, _ = self.check_batch(frames(fl))
        self.assertEqual(len({d["backend_id"] for d in ds}), 1)
        key = gg.masked(gg.flow_key(0, 0, "0.0.0.0", "192.168.1.1"), ["dst"])
        self.assertEqual({d["hash_key"] for d in ds}, {key.hex()})
        self.assertEqual({d["pool_base"] for d in ds}, {gg.BASE_POOL})
        self.assertEqual(ds[0]["pool"], pool0 ^ 0x8000, "the changed pool moved to its other version slot")


class HashOnTenant(gg.GatewayTest):
    """hash_fields [tenant]: the VPCs of one tenant share a backend, whatever
    the VMs and flows."""

    @gg.autocleanup
    def runTest(self):
        def tenant_hash(doc):
            gg.pool_of(doc, "pool-1")["hash_fields"] = ["tenant"]
            doc["tenants"].append({"name": "t-hash", "id": 60, "vnis": [6030, 6031, 6032]})
        self.assertTrue(gg.edit(tenant_hash)["applied"])
        fl = [(6030 + i % 3, "192.168.30.%d" % (i + 2), "192.168.1.%d" % (i % 5 + 1), "udp", 1000 + i, 53) for i in range(9)]
        ds, _ = self.check_batch(frames(fl))
        self.assertEqual({d["tenant_id"] for d in ds}, {60})
        self.assertEqual(len({d["backend_id"] for d in ds}), 1)


class ConsistentDrain(gg.GatewayTest):
    """Draining a backend (weight 0) moves only the flows it served: every
    other flow keeps its backend, seen on the wire."""

    @gg.autocleanup
    def runTest(self):
        fl = flows(60, vni=6040, src="192.168.40.5")
        ds0, _ = self.check_batch(frames(fl))
        before = [d["backend_id"] for d in ds0]
        self.assertIn(13, before, "no flow on be-13 to drain")

        def drain(doc):
            for b in gg.pool_of(doc, "pool-1")["backends"]:
                if b["id"] == 13:
                    b["weight"] = 0
        self.assertTrue(gg.edit(drain)["applied"])
        ds1, _ = self.check_batch(frames(fl))
        after = [d["backend_id"] for d in ds1]
        for f, a, b in zip(fl, before, after):
            if a == 13:
                self.assertNotEqual(b, 13, "flow %s still on the drained backend" % (f,))
            else:
                self.assertEqual(a, b, "flow %s moved from %d to %d although its backend stayed" % (f, a, b))


class ConsistentAdd(gg.GatewayTest):
    """Adding a backend moves flows only to it (about a quarter of them with
    four equal backends), none between the old ones."""

    @gg.autocleanup
    def runTest(self):
        fl = flows(60, vni=6041, src="192.168.41.5")
        ds0, _ = self.check_batch(frames(fl))
        before = [d["backend_id"] for d in ds0]

        def add(doc):
            gg.pool_of(doc, "pool-1")["backends"].append(
                {"name": "be-14", "id": 14, "underlay_ip": "10.2.0.14", "mac": "02:00:00:00:0e:0e", "port": 2, "weight": 1})
        self.assertTrue(gg.edit(add)["applied"])
        ds1, outs = self.check_batch(frames(fl))
        after = [d["backend_id"] for d in ds1]
        moved = [(a, b) for a, b in zip(before, after) if a != b]
        self.assertTrue(all(b == 14 for _, b in moved), "flows moved between old backends: %s" % moved)
        self.assertTrue(5 <= len(moved) <= 30, "%d of 60 flows moved to the new backend" % len(moved))
        for o, b in zip(outs, after):
            if b == 14:
                self.assertEqual(gg.socket.inet_ntoa(bytes(o)[30:34]), "10.2.0.14")


class BackendChangedInPlace(gg.GatewayTest):
    """A backend's own attributes (next-hop MAC, underlay address) are not a
    pool change: its entry is modified in place, no flow changes backend, and
    its flows leave with the new MAC and address."""

    @gg.autocleanup
    def runTest(self):
        fl = flows(30, vni=6042, src="192.168.42.5")
        ds0, _ = self.check_batch(frames(fl))
        pool0 = ds0[0]["pool"]

        def readdress(doc):
            for p in doc["pools"]:
                for b in p["backends"]:
                    if b["id"] == 12:
                        b["mac"], b["underlay_ip"] = "02:00:00:00:0c:99", "10.2.0.112"
        self.assertTrue(gg.edit(readdress)["applied"])
        ds1, outs = self.check_batch(frames(fl))
        self.assertEqual([d["backend_id"] for d in ds0], [d["backend_id"] for d in ds1])
        self.assertEqual(ds1[0]["pool"], pool0, "the pool kept its version")
        hit = 0
        for o, d in zip(outs, ds1):
            if d["backend_id"] == 12:
                hit += 1
                self.assertEqual(bytes(o)[:6].hex(), "02000000" + "0c99")
                self.assertEqual(gg.socket.inet_ntoa(bytes(o)[30:34]), "10.2.0.112")
        self.assertGreater(hit, 0, "no flow on be-12")
