"""graygw PTF library: the gateway under test, as the tests see it.

The tests change the gateway only through the controller (the graygw CLI over
its unix socket: apply, cutover, rollback), read its counters the same way, and
learn what a frame should become from the oracle (ptfctl expect: the Go
reference model run over the tables the gateway holds, read back over
P4Runtime). Nothing here writes a table; the table-level group
(vectors_tables.py) is the one exception and says so.

Parameters come from run.sh through PTF's --test-params:
  target      xdp or bmv2
  bin         directory of graygw, ptfctl
  controller  the controller's API address (unix:///path)
  gw_ns       the gateway's network namespace (ptfctl and the kernel sniffer
              run there)
  p4rt        the gateway's P4Runtime address inside gw_ns
  vectors     testvectors/pipeline.json
  vectors6    testvectors/ipv6.json (the IPv6 vectors: ipv6_tables.py)
  cases       ptfctl intent's classification of the vector cases
  work        run.sh's scratch directory (baseline.yaml)
"""

import contextlib
import ctypes
import functools
import glob
import json
import os
import select
import socket
import subprocess
import time
import zlib

import logging

import yaml
import ptf
import ptf.testutils as tu
from ptf.base_tests import BaseTest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)

PARAMS = tu.test_params_get() or {}
TARGET = PARAMS.get("target", "xdp")
BIN = PARAMS.get("bin", "build/bin")
CONTROLLER = PARAMS.get("controller", "unix:///run/graygw/controller.sock")
GW_NS = PARAMS.get("gw_ns", "")
P4RT = PARAMS.get("p4rt", "127.0.0.1:9559")
VECTORS = PARAMS.get("vectors", "testvectors/pipeline.json")
VECTORS6 = PARAMS.get("vectors6", "testvectors/ipv6.json")
CASES = PARAMS.get("cases", "")
WORK = PARAMS.get("work", "")

# The ports of the gateway that have an interface (PTF port N = gateway port N).
PORTS = (1, 2, 3)
# The baseline intent's VIPs and pools (ptfctl intent of the vectors' basic state).
VIP1, VIP2 = "10.255.0.1", "10.255.0.2"
BASE_POOL, GRAY_POOL = 1, 2  # pool-1 (base: be-11, be-12, be-13), pool-2 (gray: be-21, be-22)
HV = "10.1.0.10"  # the hypervisor (VTEP) the overlay frames come from
# The tenant the baseline intent gives VNIs 6001-6099 but 6030-6032 and
# 6070-6079 (ptfctl intent: ptfTenantID), the VNIs the tests cut over.
PTF_TENANT = 600
PORT_MAC = {1: "02:00:00:00:01:01", 2: "02:00:00:00:02:02", 3: "02:00:00:00:03:03"}


# How long a change may take to reach the gateway: a pool flip writes ~4k
# entries, well under a second; a failing gateway should fail its test fast.
WAIT = "20s"


class ControllerError(AssertionError):
    pass


# ----------------------------------------------------------------------------
# The controller, through the graygw CLI.


def cli(*args, ok=(0,), timeout=90):
    """Run graygw ARGS against the controller; return (exit code, stdout, stderr).
    A code outside ok fails the test with the CLI's own words."""
    cmd = [os.path.join(BIN, "graygw"), "--controller", CONTROLLER] + [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if ok is not None and p.returncode not in ok:
        raise ControllerError("%s: exit %d\nstdout:\n%s\nstderr:\n%s" % (" ".join(cmd[1:]), p.returncode, p.stdout, p.stderr))
    return p.returncode, p.stdout, p.stderr


def cli_json(*args, **kw):
    _, out, _ = cli(*(list(args) + ["-o", "json"]), **kw)
    return json.loads(out)


def intent():
    """The intent in force: (version, YAML text)."""
    g = cli_json("get")
    return g["version"], g["intent"]


def apply(doc, name="intent"):
    """graygw apply -f DOC --wait; return the CLI's JSON result."""
    path = os.path.join(WORK or "/tmp", "%s-%d.yaml" % (name, os.getpid()))
    with open(path, "w") as f:
        f.write(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
    code, out, err = cli("apply", "-f", path, "--wait", "--wait-timeout", WAIT, "--actor", "ptf", "-o", "json", ok=None)
    try:
        res = json.loads(out)
    except ValueError:
        res = None
    if code != 0 or res is None:
        why = (res or {}).get("wait_error") or err.strip() or out.strip()
        raise ControllerError("graygw apply -f %s: exit %d: %s%s\n(the controller's log says more: build/ptf-logs/controller.log)"
                              % (path, code, why, gateway_errors()))
    return res


def gateway_errors():
    """The gateways' last reconcile errors (graygw status), for a failure message."""
    try:
        st = cli_json("status", timeout=10)
    except (ControllerError, ValueError, subprocess.TimeoutExpired):
        return ""
    errs = ["%s: %s" % (g["name"], g["last_error"][:600]) for g in st.get("gateways") or [] if g.get("last_error")]
    return ("\ngateway errors:\n  " + "\n  ".join(errs)) if errs else ""


def change(*args, ok=(0,)):
    """A change command (cutover, rollback) with --wait; returns (code, out, err)."""
    return cli(*(list(args) + ["--wait", "--wait-timeout", WAIT, "--actor", "ptf"]), ok=ok)


def wait_in_sync(timeout=30):
    """Wait until every gateway is connected, has this controller as primary and
    holds the intent in force."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = cli_json("status", timeout=10)
            gws = last.get("gateways") or []
            if gws and all(g["connected"] and g["primary"] and g["in_sync"] and g["version"] == last["intent_version"] for g in gws):
                return last
        except (ControllerError, ValueError, subprocess.TimeoutExpired) as e:
            last = e
        time.sleep(0.2)
    raise ControllerError("gateways not in sync after %ds: %s%s" % (timeout, last, gateway_errors()))


def counters(kind):
    """Counters of one kind (rule, vip, pool, backend, drop) as {name: (packets, bytes)}."""
    out = {}
    for row in cli_json("counters", "--kind", kind).get("counters") or []:
        if row["kind"] == kind:
            p, b = out.get(row["name"], (0, 0))
            out[row["name"]] = (p + row["packets"], b + row["bytes"])
    return out


def autocleanup(f):
    """Restore the intent in force before the test after it, whatever the test
    changed (fabric-tna's @autocleanup, at the level the tests work at: the
    intent, not table entries). The restore goes through the controller too."""

    @functools.wraps(f)
    def wrapper(self, *a, **kw):
        _, before = intent()
        try:
            return f(self, *a, **kw)
        finally:
            _, now = intent()
            if now != before:
                apply(before, name="restore")
            wait_in_sync()

    return wrapper


def edit(fn, name="edit"):
    """Apply the intent in force as changed by fn(doc) (doc: the parsed YAML,
    changed in place); return the CLI's result."""
    doc = yaml.safe_load(intent()[1])
    fn(doc)
    return apply(doc, name=name)


def pool_of(doc, name):
    return next(p for p in doc["pools"] if p["name"] == name)


def backends(doc=None):
    """The intent's backends: {backend id: {name, underlay_ip, mac, port}}."""
    if doc is None:
        doc = yaml.safe_load(intent()[1])
    out = {}
    for p in doc["pools"]:
        for b in p["backends"]:
            out[int(b["id"])] = {"name": b["name"], "underlay_ip": b["underlay_ip"], "mac": b["mac"].lower(), "port": int(b["port"])}
    return out


def baseline():
    """The suite's baseline intent (the vectors' basic state), as seeded."""
    with open(os.path.join(WORK, "baseline.yaml")) as f:
        return f.read()


def state_intent(state):
    """Vector state as an intent (ptfctl intent, written by run.sh): the
    baseline for basic, intent-STATE.yaml for another."""
    if state == "basic":
        return baseline()
    with open(os.path.join(WORK, "intent-%s.yaml" % state)) as f:
        return f.read()


def ensure_intent(doc):
    """Make doc the intent in force unless it already is (inside an
    @autocleanup test, which puts the previous one back)."""
    _, now = intent()
    if now != doc:
        apply(doc, name="ensure")


# ----------------------------------------------------------------------------
# The oracle: the reference model over what the gateway holds.


def _in_gw(cmd):
    return ["nsenter", "--net=/run/netns/" + GW_NS, "--"] + cmd if GW_NS else cmd


def expect(frames, ingress=1):
    """What each frame, received on port ingress, becomes over the tables the
    gateway holds now (ptfctl expect): a list of decision dicts (verdict,
    reason, port, packet hex, vip_id, tenant_id, rule_priority, pool,
    pool_base, split_hash, hash_key, crc, bucket, backend_id)."""
    frames = [bytes(f) for f in frames]
    p = subprocess.run(_in_gw([os.path.join(BIN, "ptfctl"), "expect", "-p4rt", P4RT, "-port", str(ingress)]),
                       input="".join(f.hex() + "\n" for f in frames), capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("ptfctl expect: exit %d: %s" % (p.returncode, p.stderr))
    return json.loads(p.stdout)["results"]


def expect_case(name):
    """The vector case's frame over the tables the gateway holds, and how the
    decision differs from the vector's (ptfctl expect -case)."""
    p = subprocess.run(_in_gw([os.path.join(BIN, "ptfctl"), "expect", "-p4rt", P4RT, "-vectors", VECTORS, "-case", name]),
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("ptfctl expect -case %s: exit %d: %s" % (name, p.returncode, p.stderr))
    out = json.loads(p.stdout)
    return out["results"][0], out["mismatches"]


def vectors(path=None):
    with open(path or VECTORS) as f:
        return json.load(f)


def case_classes():
    """Which vector cases an intent reproduces (ptfctl intent -cases): the
    basic state's in CASES, another state's in cases-STATE.json beside it."""
    out = {}
    if not CASES or not os.path.exists(CASES):
        return out
    for path in [CASES] + sorted(glob.glob(os.path.join(os.path.dirname(CASES), "cases-*.json"))):
        with open(path) as f:
            out.update(json.load(f))
    return out


class TableSession:
    """ptfctl tables: the table-level groups' P4Runtime session. It becomes
    the gateway's primary client (the controller stays standby and writes
    nothing), saves what the gateway holds and writes vector state exactly;
    hold switches states (a diff); close puts back what it saved, and the
    controller must then find its intent in place."""

    def __init__(self, vectors_path, state):
        cmd = _in_gw([os.path.join(BIN, "ptfctl"), "tables", "-p4rt", P4RT, "-vectors", vectors_path, "-state", state])
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.held = state
        line = self._line()
        if not line.startswith("ready"):
            self.proc.kill()
            _, err = self.proc.communicate()
            raise RuntimeError("ptfctl tables did not get ready: %r %s" % (line, err))

    def _line(self):
        ready, _, _ = select.select([self.proc.stdout], [], [], 90)
        return self.proc.stdout.readline() if ready else ""

    def hold(self, state):
        """Make the session hold vector state (written as a diff)."""
        if state == self.held:
            return
        self.proc.stdin.write("state %s\n" % state)
        self.proc.stdin.flush()
        line = self._line()
        if not line.startswith("ready: state %s" % state):
            raise AssertionError("ptfctl tables did not switch to state %s: %r" % (state, line))
        self.held = state

    def close(self):
        out, err = self.proc.communicate(input="", timeout=120)
        if self.proc.returncode != 0 or "restored" not in out:
            raise RuntimeError("ptfctl tables did not restore the gateway: exit %d\n%s\n%s" % (self.proc.returncode, out, err))
        # The controller takes over again; the gateway must hold its intent.
        wait_in_sync()


# ----------------------------------------------------------------------------
# The gateway's own kernel: what XDP passes (not for us) must arrive there.

CLONE_NEWNET = 0x40000000
PACKET_OUTGOING = 4
_libc = ctypes.CDLL(None, use_errno=True)


class KernelSniffer:
    """AF_PACKET sockets on the gateway's port interfaces, opened inside its
    namespace (a socket stays in the namespace it was made in): they see the
    frames the gateway's kernel receives, which on XDP are exactly the frames
    the program passed (XDP_TX, redirects and drops never reach them)."""

    def __init__(self, ifnames=("p1", "p2", "p3")):
        self.socks = []
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open("/run/netns/" + GW_NS, os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into " + GW_NS)
            try:
                for name in ifnames:
                    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
                    s.bind((name, 0))
                    s.setblocking(False)
                    self.socks.append((name, s))
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back")
        finally:
            os.close(own)
            os.close(target)

    def _read(self):
        for name, s in self.socks:
            while True:
                try:
                    data, addr = s.recvfrom(65535)
                except BlockingIOError:
                    break
                if addr[2] != PACKET_OUTGOING:
                    yield name, data

    def drain(self):
        for _ in self._read():
            pass

    def wait_for(self, frame, timeout=1.0):
        """Whether the kernel received frame (on any port) within timeout. The
        kernel strips an 802.1Q or 802.1ad tag (the outer one) before packet
        sockets see the frame."""
        frame = bytes(frame)
        want = {frame}
        if frame[12:14] in (b"\x81\x00", b"\x88\xa8"):
            want.add(frame[:12] + frame[16:])
        deadline = time.time() + timeout
        while time.time() < deadline:
            for _, data in self._read():
                if data in want:
                    return True
            time.sleep(0.01)
        return False


_sniffer = None


def kernel_sniffer():
    global _sniffer
    if _sniffer is None:
        _sniffer = KernelSniffer()
    return _sniffer


# ----------------------------------------------------------------------------
# Frames.

VM_MAC, ROUTER_MAC = "02:00:00:00:aa:01", "02:00:00:00:10:fe"
SRC_MAC = "02:00:00:00:ee:01"  # the hypervisor's (or its router's) MAC


def inner_l4(proto, sport, dport, payload):
    if proto == "tcp":
        return TCP(sport=sport, dport=dport, flags="S", seq=1000) / Raw(payload)
    if proto == "udp":
        return UDP(sport=sport, dport=dport) / Raw(payload)
    if proto == "icmp":
        return ICMP(type=8, id=sport, seq=1) / Raw(payload)
    return Raw(payload)


def overlay(vni, src, dst="192.168.1.1", proto="tcp", sport=40000, dport=80, vip=VIP1, ttl=64,
            outer_src=HV, outer_sport=49152, payload=b"graygw-ptf-probe", ingress=1):
    """A VXLAN frame from the hypervisor to the VIP: VM src -> dst in vni."""
    inner = Ether(src=VM_MAC, dst=ROUTER_MAC) / IP(src=src, dst=dst, ttl=64, id=1) / inner_l4(proto, sport, dport, payload)
    return (Ether(src=SRC_MAC, dst=PORT_MAC.get(ingress, PORT_MAC[1])) /
            IP(src=outer_src, dst=vip, ttl=ttl, id=7, flags="DF") /
            UDP(sport=outer_sport, dport=4789) / VXLAN(vni=vni, flags=0x08) / inner)


def plain(src, proto="tcp", sport=40000, dport=80, vip=VIP1, ttl=64, payload=b"graygw-ptf-plain", ingress=1):
    """A plain (non-VXLAN) frame to the VIP."""
    return (Ether(src=SRC_MAC, dst=PORT_MAC.get(ingress, PORT_MAC[1])) /
            IP(src=src, dst=vip, ttl=ttl, id=9) / inner_l4(proto, sport, dport, payload))


# IPv6 (docs/pipeline.md: flow fields, key6, split_hash6). ULA addresses only.
VIP6 = "fd00:ff::1"   # the IPv6 VIP ipv6.py adds (vip-6)
HV6 = "fd00:10::10"   # the hypervisor's IPv6 underlay address


def inner_l4_6(proto, sport, dport, payload):
    if proto == "icmpv6":
        return ICMPv6EchoRequest(id=sport, seq=1, data=payload)
    return inner_l4(proto, sport, dport, payload)


def overlay6(vni, src, dst="fd00:1::1", proto="tcp", sport=40000, dport=80, vip=VIP6, hlim=64,
             outer_src=None, outer_sport=49152, payload=b"graygw-ptf-probe6", ingress=1):
    """A VXLAN frame to vip, whose family (IPv4 or IPv6) is the outer
    header's; the inner packet's family is src's. An IPv6 outer UDP checksum
    is computed (RFC 8200 wants one)."""
    inner_ip = (IPv6(src=src, dst=dst, hlim=64) if ":" in src else IP(src=src, dst=dst, ttl=64, id=1))
    inner_proto = "icmpv6" if proto == "icmp" and ":" in src else proto
    inner = Ether(src=VM_MAC, dst=ROUTER_MAC) / inner_ip / inner_l4_6(inner_proto, sport, dport, payload)
    if ":" in vip:
        outer = IPv6(src=outer_src or HV6, dst=vip, hlim=hlim)
    else:
        outer = IP(src=outer_src or HV, dst=vip, ttl=hlim, id=7, flags="DF")
    return (Ether(src=SRC_MAC, dst=PORT_MAC.get(ingress, PORT_MAC[1])) / outer /
            UDP(sport=outer_sport, dport=4789) / VXLAN(vni=vni, flags=0x08) / inner)


def plain6(src, proto="tcp", sport=40000, dport=80, vip=VIP6, hlim=64, payload=b"graygw-ptf-plain6", ingress=1):
    """A plain (non-VXLAN) IPv6 packet to an IPv6 VIP."""
    return (Ether(src=SRC_MAC, dst=PORT_MAC.get(ingress, PORT_MAC[1])) /
            IPv6(src=src, dst=vip, hlim=hlim) / inner_l4_6(proto, sport, dport, payload))


def ip6(a):
    return socket.inet_pton(socket.AF_INET6, a)


def flow_key6(vni=0, tenant=0, src="::", dst="::", proto=0, sport=0, dport=0):
    """The 42-byte IPv6 hash key (docs/pipeline.md section 6), unmasked."""
    return _key(ip6, vni, tenant, src, dst, proto, sport, dport)


def split_hash6(vni, src):
    """split_pool's hash for an IPv6 flow: low 16 bits of CRC32 over vni
    (3 bytes) ++ src (16 bytes)."""
    return zlib.crc32(vni.to_bytes(3, "big") + ip6(src)) & 0xffff


def ip4(a):
    return socket.inet_aton(a)


def flow_key(vni=0, tenant=0, src="0.0.0.0", dst="0.0.0.0", proto=0, sport=0, dport=0):
    """The 18-byte hash key of docs/pipeline.md section 6, unmasked."""
    return _key(ip4, vni, tenant, src, dst, proto, sport, dport)


def _key(addr, vni, tenant, src, dst, proto, sport, dport):
    """A hash key, its addresses packed by addr (ip4 or ip6)."""
    return (vni.to_bytes(3, "big") + tenant.to_bytes(2, "big") + addr(src) + addr(dst) +
            proto.to_bytes(1, "big") + sport.to_bytes(2, "big") + dport.to_bytes(2, "big"))


def key_fields(alen):
    """Per hash field: (offset, length) in a key whose addresses are alen
    bytes (4: the 18-byte key, 16: the 42-byte key6)."""
    return {"vni": (0, 3), "tenant": (3, 2), "src": (5, alen), "dst": (5 + alen, alen),
            "proto": (5 + 2 * alen, 1), "sport": (6 + 2 * alen, 2), "dport": (8 + 2 * alen, 2)}


KEY_FIELDS, KEY6_FIELDS = key_fields(4), key_fields(16)


def masked(key, fields):
    """key (the 18-byte key, or the 42-byte key6) with every field not in
    fields zeroed (a pool's hash_fields)."""
    layout = KEY_FIELDS if len(key) == 18 else KEY6_FIELDS
    out = bytearray(len(key))
    for f in fields:
        o, n = layout[f]
        out[o:o + n] = key[o:o + n]
    return bytes(out)


def bucket(key):
    """CRC32/IEEE of the masked key, and its bucket (BUCKETS = 4096)."""
    crc = zlib.crc32(key) & 0xffffffff
    return crc, crc & 4095


def split_hash(vni, src):
    """split_pool's hash: low 16 bits of CRC32 over vni (3 bytes) ++ src."""
    return zlib.crc32(vni.to_bytes(3, "big") + ip4(src)) & 0xffff


# ----------------------------------------------------------------------------
# The base test.


class GatewayTest(BaseTest):
    """Base of every test: PTF's dataplane plus the checks the tests share. No
    runTest here, so PTF does not collect it."""

    def setUp(self):
        BaseTest.setUp(self)
        self.dataplane = ptf.dataplane_instance
        self.dataplane.flush()

    def tearDown(self):
        BaseTest.tearDown(self)

    # -- sending and checking ------------------------------------------------

    def send(self, frame, port=1):
        tu.send_packet(self, port, bytes(frame))

    def verify_exact(self, frame, port, timeout=2.0, what=""):
        """The first frame out of port is exactly frame (PTF's own match ignores
        bytes past a short expected frame and skips non-matching ones)."""
        frame = bytes(frame)
        res = tu.dp_poll(self, port_number=port, timeout=timeout)
        if not isinstance(res, self.dataplane.PollSuccess):
            self.fail("%sno frame out of port %d; expected\n%s" % (what, port, Ether(frame).show2(dump=True)))
        got = bytes(res.packet)
        if got != frame:
            self.fail("%sframe out of port %d differs\n got: %s\nwant: %s\n--- got\n%s--- want\n%s" % (
                what, port, got.hex(), frame.hex(), Ether(got).show2(dump=True), Ether(frame).show2(dump=True)))
        return got

    def verify_nothing_out(self):
        tu.verify_no_other_packets(self, timeout=0.2)

    def check_decision(self, frame, d, ingress=1):
        """Send frame and check the gateway does what decision d (from the
        oracle, or a vector) says: the exact frame out of the port, and its
        mirror copy out of the copy's port when one is sent (docs/pipeline.md
        §10), or nothing out and (XDP, not for us) the frame in the gateway's
        kernel."""
        frame = bytes(frame)
        if d["verdict"] == "forward":
            self.send(frame, ingress)
            out = self.verify_exact(bytes.fromhex(d["packet"]), d["port"], what="served: ")
            c = d.get("copy")
            if c and c["sent"]:
                copy = self.verify_exact(bytes.fromhex(c["packet"]), c["port"], what="copy: ")
                tos = 19 if copy[12:14] == b"\x81\x00" else 15  # behind an 802.1Q tag, or not
                self.assertEqual(copy[tos] >> 2, 1, "the copy's outer DSCP is not Lower-Effort")
            self.verify_nothing_out()
            return out
        if d["verdict"] == "pass" and TARGET == "xdp":
            k = kernel_sniffer()
            k.drain()
            self.send(frame, ingress)
            self.assertTrue(k.wait_for(frame), "a not-for-us frame (%s) did not reach the gateway's kernel" % d["reason"])
            self.verify_nothing_out()
            return None
        # drop, and pass on P4 targets (which drop what is not for them)
        self.send(frame, ingress)
        self.verify_nothing_out()
        return None

    def check_batch(self, frames, ingress=1):
        """Send each frame and check it (oracle decisions for all of them, read
        once); one negative check at the end. Returns the decisions and the
        frames that came out (None for frames not forwarded)."""
        frames = [bytes(f) for f in frames]
        ds = expect(frames)
        outs = []
        for i, (f, d) in enumerate(zip(frames, ds)):
            if d["verdict"] == "forward":
                self.send(f, ingress)
                outs.append(self.verify_exact(bytes.fromhex(d["packet"]), d["port"], what="frame %d: " % i))
            else:
                self.send(f, ingress)
                outs.append(None)
        self.verify_nothing_out()
        return ds, outs

    def forward(self, frame, ingress=1):
        """Send frame, check it leaves as the oracle says, return (decision, output)."""
        d = expect([frame])[0]
        self.assertEqual(d["verdict"], "forward", "oracle: %s" % d)
        return d, self.check_decision(frame, d, ingress)

    @contextlib.contextmanager
    def counted(self, reason, frame_len, packets=1):
        """The block makes drop_reasons[reason] count packets frames of
        frame_len bytes, and no other reason move (read through the controller's
        counters API). reason None: no reason moves (forwarded frames)."""
        before = counters("drop")
        yield
        after = counters("drop")
        for _ in range(20 if reason else 0):  # let the last packet land
            if after.get(reason, (0, 0))[0] - before.get(reason, (0, 0))[0] >= packets:
                break
            time.sleep(0.05)
            after = counters("drop")
        for r in set(before) | set(after):
            dp = after.get(r, (0, 0))[0] - before.get(r, (0, 0))[0]
            db = after.get(r, (0, 0))[1] - before.get(r, (0, 0))[1]
            if r == reason:
                self.assertEqual((dp, db), (packets, packets * frame_len),
                                 "drop_reasons[%s] moved by %d packets / %d bytes" % (r, dp, db))
            else:
                self.assertEqual(dp, 0, "drop_reasons[%s] moved by %d packets, expected only %s" % (r, dp, reason))


    def skip_unsendable(self, frame):
        """Skip a vector case whose frame a veth cannot carry."""
        if len(frame) < 14:
            self.skipTest("a veth cannot carry a %d-byte frame (the kernel refuses frames shorter than an Ethernet "
                          "header); ETH_TRUNCATED is covered by BPF_PROG_TEST_RUN in agent/xdp and bpf/" % len(frame))
        if frame[12:14] == b"\x81\x00" and len(frame) < 20:
            self.skipTest("a veth cannot carry a %d-byte tagged frame (the kernel drops it before untagging); covered "
                          "by BPF_PROG_TEST_RUN in bpf/ and by internal/difftest on BMv2" % len(frame))

    def check_counted(self, frame, e, d, ingress=1):
        """check_decision of frame by decision d, with the drop reason of
        expectation e counted once for it (none moves for a forwarded frame)."""
        reason, n = (None, 0) if e["verdict"] == "forward" else (e["reason"], len(frame))
        with self.counted(reason, n):
            self.check_decision(frame, d, ingress=ingress)


def cut(pkt, n):
    """The first n bytes of pkt (lengths in headers keep their full values)."""
    return bytes(pkt)[:n]


class DropTest(GatewayTest):
    """Base of the drop-reason groups (drops.py, ipv6.py): each subclass names
    a reason and its frames. The oracle must give each frame that reason, and
    the gateway must count it once and send nothing out."""
    reason = None
    frames = ()

    def __init_subclass__(cls, **kw):
        # A subclass runs check_frames unless it says otherwise; this class
        # has no runTest, so PTF does not collect it.
        super().__init_subclass__(**kw)
        if "runTest" not in cls.__dict__:
            cls.runTest = cls.check_frames

    def check_frames(self):
        for i, f in enumerate(self.frames):
            f = bytes(f)
            d = expect([f])[0]
            self.assertEqual(d["reason"], self.reason, "frame %d: oracle says %s" % (i, d))
            self.check_counted(f, d, d)


# ----------------------------------------------------------------------------
# The table-level groups (vectors_tables.py, ipv6_tables.py).


class TableCase(GatewayTest):
    """One vector case on the vector state's raw tables: the case's frame on
    port 1 (a vlan case: its in_port); its expected frame exactly on its port,
    and its mirror copy on the copy's port, or nothing out (drop; pass, which
    on XDP must reach the gateway's kernel), with the reason counted once."""
    case = None
    session = None  # [TableSession] of the module, set by setUpModule

    def run_case(self):
        c = self.case
        frame = bytes.fromhex(c["packet"])
        self.skip_unsendable(frame)
        self.session[0].hold(c["state"])
        # The vlan states' cases say their port (vlan_accept's key); the others
        # do not depend on it and go into port 1.
        self.check_counted(frame, c["expect"], c["expect"], ingress=c.get("in_port") or 1)


def table_cases(module, vectors_path, state, prefix):
    """Put a TableCase per case of vectors_path into module (a module's
    globals()), named prefix + case name, and return the module's
    (setUpModule, tearDownModule): a TableSession holding state first."""
    holder = []
    for c in vectors(vectors_path)["cases"]:
        n = prefix + c["name"]
        # __module__: unittest runs the module's setUpModule for the classes
        # it says are its own.
        module[n] = type(n, (TableCase,), {"case": c, "session": holder, "runTest": TableCase.run_case,
                                           "__doc__": c["description"], "__module__": module["__name__"]})

    def setup():
        holder[:] = [TableSession(vectors_path, state)]

    def teardown():
        if holder:
            s = holder.pop()
            s.close()
    return setup, teardown
