#!/usr/bin/python3
"""graygw's lab in mininet: hypervisors with VMs in two VPCs, a BGP router, the
gray gateway, and a base and a gray backend server.

    hv1 10.1.1.10 ──┐                         ┌── p2 ── base1 10.2.0.11 ──┐
      VMs 5001: .5 .6, 5002: .5               │   (VPC routers 192.168.N.1)│
                    r1 (BIRD, AS 65000) ── p1 gw ─┤                      r1 (replies)
    hv2 10.1.2.10 ──┘  10.1.0.1      10.1.0.2 └── p3 ── gray1 10.3.0.21 ──┘
      VMs 5001: .7, 5002: .6 .7

* hv1, hv2: VTEPs. Each VM is an address on the hypervisor's VXLAN device of its
  VPC (VNI 5001: 192.168.1.0/24, VNI 5002: 192.168.2.0/24); every VM frame is
  encapsulated towards the VIP 10.255.0.1.
* r1: the hypervisors' router. BIRD learns the VIP from the controller's BGP
  speaker (next hop: the gateway, 10.1.0.2) and routes the VMs' traffic there.
* gw: the gateway node. It runs BMv2 (simple_switch_grpc, started without a
  program; the controller pushes build/p4/graygw.json) when BMv2 is installed
  and the program is built, and the XDP agent (graygw-agent) otherwise; the
  same controller (graygw-controller, API on a unix socket, BGP to r1) drives
  either over P4Runtime on 127.0.0.1:9559.
* base1, gray1: backend servers, Linux kernel VXLAN endpoints that answer the
  VMs' pings to their VPC router address (192.168.N.1), as the base and gray
  clusters of a cloud's VPC routers would; they answer the hypervisors
  directly through r1, not through the gateway.

No switches: every link is a veth pair between two nodes, so neither Open
vSwitch nor bridge-utils is needed.

Usage (root; the Go binaries in build/bin, see topo/mininet/smoke.sh):
    /usr/bin/python3 topo/mininet/graygw_topo.py            # build, start, mininet CLI
    /usr/bin/python3 topo/mininet/graygw_topo.py --check    # smoke check, then tear down
    /usr/bin/python3 topo/mininet/graygw_topo.py --clean    # remove what a killed run left

--check: every VM pings its VPC router through the gateway (base cluster), the
VMs of VNI 5001 over IPv6 too (fd00:1::/64: inner IPv6 in VXLAN); one VM is
moved to the gray cluster with graygw cutover and its pings must be answered by
gray1 (and its neighbour's still by base1); graygw rollback --step moves it
back; then the same for an IPv6 VM (graygw cutover --vm 5001/fd00:1::5). Exits non-zero when any step fails. Everything the script
started is stopped by PID, on failure and Ctrl-C too.
"""

import argparse
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

try:
    from mininet.cli import CLI
    from mininet.log import info, setLogLevel
    from mininet.net import Mininet
    from mininet.node import Host
    MININET_MISSING = None
except ImportError as e:  # --clean works without it; everything else says what to install
    MININET_MISSING = e

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STATE_DIR = "/run/graygw-mininet"
EXIT_NO_MININET = 77  # mininet is not installed (smoke.sh reports a skip)

VIP = "10.255.0.1"
ROUTER_MAC = "02:00:00:00:10:fe"  # the VPC router's MAC, the same on base1 and gray1
GW_P1 = "10.1.0.2"  # the gateway's address towards r1: BGP session and next hop
R1_GW = "10.1.0.1"
P4RT = "127.0.0.1:9559"
ASN_R1, ASN_GW = 65000, 65001
VPCS = {5001: 1, 5002: 2}  # VNI -> third octet of its 192.168.N.0/24
# Dual-stack VPCs: VNI -> its IPv6 prefix (a VM is PREFIX + its last octet in
# hex, the VPC router PREFIX1), carried as inner IPv6 in the same VXLAN.
VPCS6 = {5001: "fd00:1::"}
# Hypervisors: underlay address, r1's address on the link, VMs per VNI (last octets).
HVS = {
    "hv1": ("10.1.1.10", "10.1.1.1", {5001: [5, 6], 5002: [5]}),
    "hv2": ("10.1.2.10", "10.1.2.1", {5001: [7], 5002: [6, 7]}),
}
# Backends: underlay address (gateway side), gateway's address there, gateway port,
# r1-side link (backend address, r1 address).
BACKENDS = {
    "base1": ("10.2.0.11", "10.2.0.1", 2, ("10.12.0.11", "10.12.0.1")),
    "gray1": ("10.3.0.21", "10.3.0.1", 3, ("10.13.0.21", "10.13.0.1")),
}

INTENT = """# graygw mininet lab: one gateway, one VIP, a base and a gray cluster of one server each.
version: 1
gateways:
  - name: gw1
    p4runtime: {p4rt}
    device_id: 1
    bgp_next_hop: {gw_p1}
    ports:
      1: {{interface: p1, mac: "{mac_p1}"}}
      2: {{interface: p2, mac: "{mac_p2}"}}
      3: {{interface: p3, mac: "{mac_p3}"}}
vips:
  - {{name: vpc-router, id: 1, address: {vip}, default_pool: base-router}}
pools:
  - name: base-router
    id: 1
    cluster: base
    backends:
      - {{name: base-1, id: 11, underlay_ip: 10.2.0.11, mac: "{mac_base}", port: 2}}
  - name: gray-router
    id: 2
    cluster: gray
    hash_fields: [vni, src]
    backends:
      - {{name: gray-1, id: 21, underlay_ip: 10.3.0.21, mac: "{mac_gray}", port: 3}}
tenants:
  - {{name: acme, id: 7, vnis: [5001, 5002]}}
"""

CONTROLLER = """# graygw mininet lab controller
store: {work}/controller.db
intent: {work}/intent.yaml
election_id: 10
interval: 10s
listen: {{unix: {sock}}}
log: {{level: info, format: text}}
p4runtime: {{{device_configs}}}
bgp:
  asn: {asn_gw}
  routerID: {gw_p1}
  listenAddress: {gw_p1}
  neighbors:
    - {{address: {r1}, asn: {asn_r1}, holdTime: 9s, connectRetry: 1s}}
  healthCheck: reconciled
"""

BIRD = """# graygw mininet lab: r1, the hypervisors' router, learning the VIPs by BGP.
router id {r1};
log "{work}/bird.log" all;
protocol device {{}}
protocol kernel {{
	ipv4 {{ import none; export all; }};
}}
protocol bgp graygw {{
	local {r1} as {asn_r1};
	neighbor {gw_p1} as {asn_gw};
	hold time 9;
	connect retry time 1;
	ipv4 {{ import all; export none; }};
}}
"""


def log(msg):
    print("graygw-mininet: " + msg, flush=True)


class Lab:
    """The topology and its daemons. stop() removes everything start() made."""

    def __init__(self, args):
        self.args = args
        self.bin = os.path.abspath(args.bin)
        self.work = tempfile.mkdtemp(prefix="graygw-mn-")
        self.sock = os.path.join(self.work, "controller.sock")
        self.pins = "/sys/fs/bpf/graygw"  # in the gateway node's own bpffs
        self.state = os.path.join(STATE_DIR, "%d.json" % os.getpid())
        self.procs = []  # (name, Popen), started last first stopped
        self.net = None
        self.target = self.pick_target()

    def pick_target(self):
        want = self.args.target
        self.bmv2_bin = find_bmv2()
        have_bmv2 = self.bmv2_bin is not None and os.path.exists(self.args.bmv2_json)
        if want == "bmv2" and not have_bmv2:
            raise SystemExit("graygw-mininet: --target bmv2 needs simple_switch_grpc and %s" % self.args.bmv2_json)
        if want == "auto":
            want = "bmv2" if have_bmv2 else "xdp"
        return want

    # -- state file, so that --clean can undo a run that was killed ----------

    def save_state(self):
        os.makedirs(STATE_DIR, exist_ok=True)
        pids = [(n, p.pid) for n, p in self.procs]
        if self.net:
            pids += [("node " + h.name, h.pid) for h in self.net.hosts if h.pid]
        with open(self.state, "w") as f:
            json.dump({"pids": pids, "work": self.work}, f)

    # -- build ---------------------------------------------------------------

    def build(self):
        log("building the topology (target %s)" % self.target)
        net = Mininet(topo=None, controller=None, build=False, autoSetMacs=False, waitConnected=False)
        self.net = net
        for name in ["hv1", "hv2", "r1", "gw", "base1", "gray1"]:
            net.addHost(name, cls=Host, ip=None)
        r1, gw = net.get("r1"), net.get("gw")
        for hv, (addr, raddr, _) in HVS.items():
            net.addLink(net.get(hv), r1, intfName1="eth0", intfName2="r1-" + hv,
                        params1={"ip": addr + "/24"}, params2={"ip": raddr + "/24"})
        net.addLink(gw, r1, intfName1="p1", intfName2="r1-gw", params1={"ip": GW_P1 + "/24"}, params2={"ip": R1_GW + "/24"})
        for be, (addr, gwaddr, port, (raddr_be, raddr_r1)) in BACKENDS.items():
            net.addLink(gw, net.get(be), intfName1="p%d" % port, intfName2="u0",
                        params1={"ip": gwaddr + "/24"}, params2={"ip": addr + "/24"})
            net.addLink(net.get(be), r1, intfName1="u1", intfName2="r1-" + be,
                        params1={"ip": raddr_be + "/24"}, params2={"ip": raddr_r1 + "/24"})
        net.build()
        self.save_state()
        self.configure()

    def sh(self, node, cmd):
        """Run cmd in node; fail on a non-zero exit."""
        out = node.cmd(cmd + "; echo __rc=$?")
        m = re.search(r"__rc=(\d+)\s*$", out)
        if not m or m.group(1) != "0":
            raise RuntimeError("%s: %s: %s" % (node.name, cmd, out.strip()))
        return out[:m.start()]

    def mac(self, node, ifname):
        return self.sh(node, "cat /sys/class/net/%s/address" % ifname).strip()

    def configure(self):
        net = self.net
        r1, gw = net.get("r1"), net.get("gw")
        self.sh(r1, "sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0")
        for be, (addr, _, _, (raddr_be, _)) in BACKENDS.items():
            # Backends answer from their underlay address through r1.
            self.sh(r1, "ip route add %s/32 via %s" % (addr, raddr_be))
        # The gateway's kernel only sees what is not for the dataplane (BGP,
        # ARP): it routes nothing.
        self.sh(gw, "sysctl -qw net.ipv4.ip_forward=0")
        # mnexec gives each node its own mount namespace with a fresh /sys, without
        # the host's bpffs: the agent pins its maps in a bpffs of the gateway node's
        # own, which goes away (pins and all) with the node.
        self.sh(gw, "mount -t bpf bpf /sys/fs/bpf")
        self.hv_mac = {}
        for hv, (addr, raddr, vms) in HVS.items():
            node = net.get(hv)
            self.sh(node, "ip route add default via %s" % raddr)
            for vni, hosts in vms.items():
                n, dev = VPCS[vni], "vx%d" % vni
                self.sh(node, "ip link add %s mtu 1450 type vxlan id %d local %s remote %s dstport 4789 nolearning" % (dev, vni, addr, VIP))
                self.sh(node, "ip link set %s up" % dev)
                self.sh(node, "ip neigh add 192.168.%d.1 lladdr %s dev %s nud permanent" % (n, ROUTER_MAC, dev))
                for h in hosts:
                    self.sh(node, "ip addr add 192.168.%d.%d/24 dev %s" % (n, h, dev))
                if vni in VPCS6:
                    # nodad: usable at once; the router's MAC fixed, as for IPv4.
                    for h in hosts:
                        self.sh(node, "ip addr add %s%x/64 dev %s nodad" % (VPCS6[vni], h, dev))
                    self.sh(node, "ip -6 neigh add %s1 lladdr %s dev %s nud permanent" % (VPCS6[vni], ROUTER_MAC, dev))
                self.hv_mac[(hv, vni)] = self.mac(node, dev)
        for be, (addr, _, _, (raddr_be, raddr_r1)) in BACKENDS.items():
            node = net.get(be)
            self.sh(node, "sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0")
            self.sh(node, "ip route add default via %s" % raddr_r1)
            # XDP_REDIRECT from the gateway into this veth needs NAPI here: GRO.
            self.sh(node, "ethtool -K u0 gro on >/dev/null")
            for vni, n in VPCS.items():
                dev = "vx%d" % vni
                self.sh(node, "ip link add %s mtu 1450 type vxlan id %d local %s dstport 4789 nolearning" % (dev, vni, addr))
                self.sh(node, "ip link set %s address %s" % (dev, ROUTER_MAC))
                self.sh(node, "ip addr add 192.168.%d.1/24 dev %s" % (n, dev))
                if vni in VPCS6:
                    self.sh(node, "ip addr add %s1/64 dev %s nodad" % (VPCS6[vni], dev))
                self.sh(node, "ip link set %s up" % dev)
                for hv, (hv_addr, _, vms) in HVS.items():
                    if vni not in vms:
                        continue
                    hv_mac = self.hv_mac[(hv, vni)]
                    self.sh(node, "bridge fdb append %s dev %s dst %s" % (hv_mac, dev, hv_addr))
                    for h in vms[vni]:
                        self.sh(node, "ip neigh add 192.168.%d.%d lladdr %s dev %s nud permanent" % (n, h, hv_mac, dev))
                        if vni in VPCS6:
                            self.sh(node, "ip -6 neigh add %s%x lladdr %s dev %s nud permanent" % (VPCS6[vni], h, hv_mac, dev))
        self.sh(r1, "ethtool -K r1-gw gro on >/dev/null")

    # -- daemons -------------------------------------------------------------

    def start(self, name, node, cmd):
        logf = open(os.path.join(self.work, name + ".log"), "w")
        p = node.popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
        self.procs.append((name, p))
        self.save_state()
        return p

    def wait(self, what, cond, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if cond():
                return True
            for name, p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError("%s exited (%s); its log:\n%s" % (name, p.returncode, self.tail(name)))
            time.sleep(0.2)
        raise RuntimeError("%s: not after %ds" % (what, timeout))

    def tail(self, name, n=20):
        try:
            with open(os.path.join(self.work, name + ".log")) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def start_daemons(self):
        net = self.net
        gw, r1 = net.get("gw"), net.get("r1")
        for b in ("graygw-agent", "graygw-controller", "graygw"):
            if not os.access(os.path.join(self.bin, b), os.X_OK):
                raise SystemExit("graygw-mininet: %s missing in %s: go build -o build/bin ./cmd/... (or topo/mininet/smoke.sh)" % (b, self.bin))
        if self.target == "xdp":
            log("gateway: graygw-agent (XDP) on p1 p2 p3")
            self.start("agent", gw, [os.path.join(self.bin, "graygw-agent"), "--port", "1=p1", "--port", "2=p2", "--port", "3=p3",
                                     "--pin-dir", self.pins, "--state-dir", os.path.join(self.work, "agent"), "--addr", P4RT])
            device_configs = ""
        else:
            log("gateway: simple_switch_grpc (BMv2) on p1 p2 p3, program pushed by the controller")
            self.start("bmv2", gw, [self.bmv2_bin, "--no-p4", "--device-id", "1", "-i", "1@p1", "-i", "2@p2", "-i", "3@p3",
                                    "--", "--grpc-server-addr", P4RT])
            device_configs = "device_configs: {gw1: %s}" % os.path.abspath(self.args.bmv2_json)
        host, port = P4RT.split(":")
        self.wait("P4Runtime on the gateway", lambda: "__up" in gw.cmd(
            "bash -c 'exec 3<>/dev/tcp/%s/%s' 2>/dev/null && echo __up" % (host, port)), 20)

        macs = {"mac_p%d" % i: self.mac(gw, "p%d" % i) for i in (1, 2, 3)}
        with open(os.path.join(self.work, "intent.yaml"), "w") as f:
            f.write(INTENT.format(p4rt=P4RT, gw_p1=GW_P1, vip=VIP, mac_base=self.mac(net.get("base1"), "u0"),
                                  mac_gray=self.mac(net.get("gray1"), "u0"), **macs))
        with open(os.path.join(self.work, "controller.yaml"), "w") as f:
            f.write(CONTROLLER.format(work=self.work, sock=self.sock, device_configs=device_configs, asn_gw=ASN_GW,
                                      asn_r1=ASN_R1, gw_p1=GW_P1, r1=R1_GW))
        log("controller: graygw-controller on the gateway node, API unix://%s" % self.sock)
        self.start("controller", gw, [os.path.join(self.bin, "graygw-controller"), "--config", os.path.join(self.work, "controller.yaml")])

        with open(os.path.join(self.work, "bird.conf"), "w") as f:
            f.write(BIRD.format(work=self.work, r1=R1_GW, gw_p1=GW_P1, asn_r1=ASN_R1, asn_gw=ASN_GW))
        log("r1: BIRD, BGP with the controller's speaker")
        self.start("bird", r1, ["bird", "-f", "-c", os.path.join(self.work, "bird.conf"), "-s", os.path.join(self.work, "bird.ctl")])

        self.wait("the gateway in sync with the intent", self.in_sync, 60)
        log("gateway in sync")
        self.wait("r1's route to the VIP learned by BGP", lambda: ("via " + GW_P1) in r1.cmd("ip route show %s" % VIP), 90)
        log("r1 routes %s via %s (BGP)" % (VIP, GW_P1))

    def graygw(self, *args, check=True):
        p = subprocess.run([os.path.join(self.bin, "graygw"), "--controller", "unix://" + self.sock] + list(args),
                           capture_output=True, text=True, timeout=90)
        if check and p.returncode != 0:
            raise RuntimeError("graygw %s: exit %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
        return p.stdout

    def in_sync(self):
        try:
            st = json.loads(self.graygw("status", "-o", "json", "--timeout", "3s"))
        except (RuntimeError, ValueError, subprocess.TimeoutExpired):
            return False
        gws = st.get("gateways") or []
        return bool(gws) and all(g["in_sync"] and g["primary"] for g in gws)

    # -- the smoke check -----------------------------------------------------

    def ping(self, hv, vm, router, count=3):
        family = "-6" if ":" in vm else "-4"
        out = self.net.get(hv).cmd("ping %s -q -n -c %d -i 0.2 -W 1 -I %s %s" % (family, count, vm, router))
        m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        return int(m.group(2)) if m else 0

    def echoes(self, be, v6):
        """Echo requests backend be's kernel received (ICMP, or ICMPv6 when v6):
        exactly the VMs' pings, where a VXLAN frame count would also see the
        hypervisors' own IPv6 multicast (MLD, router solicitations), which the
        gateway serves like any inner IPv6 flow."""
        if v6:
            out = self.net.get(be).cmd("awk '$1 == \"Icmp6InEchos\" {print $2}' /proc/net/snmp6")
        else:
            # The Icmp: header line names the columns, the next holds the values.
            out = self.net.get(be).cmd("awk '$1 == \"Icmp:\" {n++; for (i = 2; i <= NF; i++) if (n == 1 && $i == \"InEchos\") c = i; "
                                       "if (n == 2) print $c}' /proc/net/snmp")
        return int(out.strip() or 0)

    def check(self):
        results = []

        def step(name, ok, detail=""):
            results.append(ok)
            log("%s %s%s" % ("ok  " if ok else "FAIL", name, (": " + detail) if detail else ""))

        vms = [(hv, vni, "192.168.%d.%d" % (VPCS[vni], h)) for hv, (_, _, v) in HVS.items() for vni, hs in v.items() for h in hs]
        for hv, vni, vm in vms:
            router = "192.168.%d.1" % VPCS[vni]
            self.ping(hv, vm, router, count=1)  # the first may wait for r1's ARP of the gateway
            got = self.ping(hv, vm, router)
            step("VM %s (VNI %d on %s) pings its VPC router %s" % (vm, vni, hv, router), got == 3, "%d/3 answered" % got)

        for hv, (_, _, v) in HVS.items():
            for vni, hs in v.items():
                if vni not in VPCS6:
                    continue
                for h in hs:
                    vm, router = "%s%x" % (VPCS6[vni], h), VPCS6[vni] + "1"
                    got = self.ping(hv, vm, router)
                    step("IPv6 VM %s (VNI %d on %s) pings its VPC router %s" % (vm, vni, hv, router), got == 3, "%d/3 answered" % got)

        def router_of(vm, vni):
            return VPCS6[vni] + "1" if ":" in vm else "192.168.%d.1" % VPCS[vni]

        # One IPv4 VM moved and rolled back, then one IPv6 VM (inner IPv6,
        # gray_rules_v6), each with its neighbour staying on base1.
        for moved, stay in ((("hv1", 5001, "192.168.1.5"), ("hv1", 5001, "192.168.1.6")),
                            (("hv1", 5001, "fd00:1::5"), ("hv1", 5001, "fd00:1::6"))):
            try:
                self.graygw("cutover", "--vm", "%d/%s" % (moved[1], moved[2]), "--pool", "gray-router", "--vip", "vpc-router",
                            "--name", "smoke-vm", "--wait", "--actor", "mininet-smoke")
                step("graygw cutover --vm %d/%s --pool gray-router" % (moved[1], moved[2]), True)
            except RuntimeError as e:
                step("graygw cutover --vm %d/%s" % (moved[1], moved[2]), False, str(e))
                return all(results)
            v6 = ":" in moved[2]
            for (hv, vni, vm), want in ((moved, "gray1"), (stay, "base1")):
                before = {be: self.echoes(be, v6) for be in BACKENDS}
                got = self.ping(hv, vm, router_of(vm, vni))
                after = {be: self.echoes(be, v6) for be in BACKENDS}
                delta = {be: after[be] - before[be] for be in BACKENDS}
                other = [be for be in BACKENDS if be != want][0]
                step("VM %s answered by %s" % (vm, want), got == 3 and delta[want] >= 3 and delta[other] == 0,
                     "%d/3 answered, echo requests received: %s" % (got, delta))
            try:
                self.graygw("rollback", "--step", "--wait", "--actor", "mininet-smoke")
                before = self.echoes("base1", v6)
                got = self.ping(moved[0], moved[2], router_of(moved[2], moved[1]))
                step("graygw rollback --step: VM %s back on base1" % moved[2], got == 3 and self.echoes("base1", v6) - before >= 3)
            except RuntimeError as e:
                step("graygw rollback --step", False, str(e))
        bgp = self.net.get("r1").cmd("birdc -s %s show protocols graygw" % os.path.join(self.work, "bird.ctl"))
        step("BIRD's session with the gateway is Established", "Established" in bgp, bgp.strip().splitlines()[-1] if bgp.strip() else "")
        log("mininet smoke: %d passed, %d failed" % (results.count(True), results.count(False)))
        return all(results)

    # -- teardown ------------------------------------------------------------

    def stop(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []
        if self.net is not None:
            self.net.stop()  # the node shells; their namespaces and veths go with them
            self.net = None
        logs = os.path.join(ROOT, "build", "mininet-logs")
        shutil.rmtree(logs, ignore_errors=True)
        os.makedirs(logs, exist_ok=True)
        for f in glob.glob(os.path.join(self.work, "*.log")) + glob.glob(os.path.join(self.work, "*.yaml")) + \
                glob.glob(os.path.join(self.work, "*.conf")):
            shutil.copy(f, logs)
        shutil.rmtree(self.work, ignore_errors=True)
        try:
            os.remove(self.state)
        except OSError:
            pass
        log("stopped; logs in build/mininet-logs/")


def clean():
    """Undo runs of this script that were killed before their teardown: stop the
    processes they recorded (by PID, only while the PID is still what was
    recorded) and remove their scratch directories. The agent's pins live in
    the gateway node's own bpffs and go with its last process."""
    n = 0
    for path in glob.glob(os.path.join(STATE_DIR, "*.json")):
        owner = int(os.path.basename(path).split(".")[0])
        if os.path.exists("/proc/%d" % owner):
            continue  # that run is still going
        with open(path) as f:
            st = json.load(f)
        for name, pid in reversed(st["pids"]):
            try:
                cmdline = open("/proc/%d/cmdline" % pid, "rb").read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if name.startswith("node ") and "mininet:" not in cmdline and "bash" not in cmdline:
                continue
            if not name.startswith("node ") and st["work"] not in cmdline and "simple_switch" not in cmdline:
                continue
            os.kill(pid, signal.SIGKILL)
            n += 1
        shutil.rmtree(st["work"], ignore_errors=True)
        os.remove(path)
    log("clean: %d leftover processes stopped" % n)


def find_bmv2():
    """simple_switch_grpc on PATH, else under $P4TOOLS/bin or /opt/p4tools/bin
    (where scripts/p4tools.sh installs the bundle); None when absent."""
    found = shutil.which("simple_switch_grpc")
    for d in (os.environ.get("P4TOOLS"), "/opt/p4tools"):
        if found is None and d and os.access(os.path.join(d, "bin", "simple_switch_grpc"), os.X_OK):
            found = os.path.join(d, "bin", "simple_switch_grpc")
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="run the smoke check and tear down (exit 1 on failure)")
    ap.add_argument("--clean", action="store_true", help="remove what killed runs of this script left, and exit")
    ap.add_argument("--target", choices=["auto", "xdp", "bmv2"], default="auto",
                    help="gateway dataplane: bmv2 when simple_switch_grpc and the program are there (auto), else xdp")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"), help="directory of the graygw binaries")
    ap.add_argument("--bmv2-json", default=os.path.join(ROOT, "build", "p4", "graygw.json"), help="BMv2 program (p4c output)")
    ap.add_argument("--verbose", action="store_true", help="mininet's own log at info level")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("graygw-mininet: run as root (mininet, XDP)")
    if args.clean:
        clean()
        return 0
    if MININET_MISSING is not None:
        log("needs mininet for Debian's /usr/bin/python3 (%s): apt-get install --no-install-recommends mininet, "
            "or topo/mininet/smoke.sh, which installs it" % MININET_MISSING)
        return EXIT_NO_MININET
    setLogLevel("info" if args.verbose else "output")
    lab = Lab(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ok = False
    try:
        lab.build()
        lab.start_daemons()
        if args.check:
            ok = lab.check()
        else:
            info("")
            log("ready. In the CLI, e.g.:  hv1 ping -I 192.168.1.5 192.168.1.1")
            log("operator CLI (another shell): %s/graygw --controller unix://%s status" % (lab.bin, lab.sock))
            CLI(lab.net)
            ok = True
    except KeyboardInterrupt:
        log("interrupted")
    except (RuntimeError, OSError) as e:
        log("FAILED: %s" % e)
    finally:
        lab.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
