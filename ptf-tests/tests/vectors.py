"""The shared test vectors (testvectors/pipeline.json), driven by the controller.

Each vector state is an intent (ptfctl intent, written by run.sh; the basic
state is the suite's baseline, seeded into the controller; the mirror and vlan
states' are applied for their cases and the baseline put back after each: the
vlan state's ports carry 802.1Q configuration, compiled by the controller). For each case the oracle runs
the case's frame over the tables the gateway holds and must reach the vector's
decision: verdict, drop reason, VIP, tenant, winning rule (by priority), pool,
split hash, hash key, CRC and bucket, and the mirror copy's pool, hash key,
CRC, bucket and whether it is sent. Only the backend picked from a pool (and
the mirror id, which the intent numbers itself) may differ (the vectors fill
bucket b with fill[b % len], the controller with Maglev), and then the output
frame and the copy must be the vector's rewrites with those backends. The frame is sent on port 1 (a vlan case: its in_port) and must come out exactly so, or (drop,
pass) not at all, with the reason counted once through the controller's
counters API; on XDP a passed frame must reach the gateway's kernel.

Cases the intent cannot express (NO_BACKEND by a pool without buckets or a
bucket naming a missing backend) are skipped here with the reason; the
table-level group (vectors_tables.py) runs every case on the raw vector state.
"""

import graygw as gg


class VectorCase(gg.GatewayTest):
    case = None  # set per generated class

    @gg.autocleanup
    def run_case(self):
        c = self.case
        frame = bytes.fromhex(c["packet"])
        self.skip_unsendable(frame)
        cls = gg.case_classes().get(c["name"])
        if cls is not None and not cls["intent"]:
            self.skipTest("an intent cannot express this case's tables (%s); run at table level" % cls["why"])
        gg.ensure_intent(gg.state_intent(c["state"]))
        d, mismatches = gg.expect_case(c["name"])
        self.assertEqual(mismatches, [], "the controller's tables do not reach the vector's decision")
        port = c.get("in_port") or 1  # the vlan state's cases say theirs
        self.check_counted(frame, c["expect"], d, ingress=port)


def _make(c):
    name = "vector_" + c["name"]
    return name, type(name, (VectorCase,), {"case": c, "runTest": VectorCase.run_case, "__doc__": c["description"]})


for _c in gg.vectors()["cases"]:
    _n, _cls = _make(_c)
    globals()[_n] = _cls
del _c, _n, _cls
