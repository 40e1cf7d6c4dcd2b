"""Table level: every shared test vector on the vectors' raw table contents.

With ipv6_tables.py (the IPv6 vectors), the groups that do not program the
gateway through the controller. Some
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

import graygw as gg

setUpModule, tearDownModule = gg.table_cases(globals(), gg.VECTORS, "basic", "table_")
