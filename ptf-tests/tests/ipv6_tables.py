"""Table level: every IPv6 vector (testvectors/ipv6.json) on its raw tables.

vectors_tables.py's group for the IPv6 vectors: ptfctl tables writes the ipv6
state exactly (vip_v6, gray_rules_v6, to_backend_v6 and the IPv4 tables beside
them, built by compile.FromModel from the vector state: no hand-built entry),
each case's frame goes in on port 1 (a vlan case: its in_port) and must come
out byte for byte as the vector says (checksums after the rewrite, hop limit,
the bucket of the 42-byte key6 with the vectors' bucket fill), or not at all
with its reason counted once in drop_reasons: every IPv6 reason
(IPV6_TRUNCATED, IPV6_MALFORMED, IPV6_EXTENSION, INNER_IPV6_MALFORMED,
INNER_IPV6_EXTENSION, BACKEND_FAMILY both ways), NO_BACKEND, and the IPv6 cases
of the older reasons. An intent cannot write BACKEND_FAMILY's or NO_BACKEND's
tables, so they are reached here only.
"""

import graygw as gg

setUpModule, tearDownModule = gg.table_cases(globals(), gg.VECTORS6, "ipv6", "table6_")
