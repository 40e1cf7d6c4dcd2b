#!/usr/bin/env python3
"""Print a Tofino build's stage use, table placement and memories.

    tofino_resources.py OUTDIR

OUTDIR is bf-p4c's output directory (build/p4/tna), compiled with -g so that
pipe/logs/ holds table_summary.log and mau.resources.log. Prints one Markdown
table (stage: tables placed there, TCAM blocks, SRAM blocks, hash bits, VLIW
instructions) and the totals: docs/p4-targets.md quotes it. Compiler-made tables
(tbl_*, cond-*, checksum conditions) are named by what they do where that is known;
egress ones are "(egress)" (ingress and egress share each stage's memories).
"""

import re
import sys


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    logs = sys.argv[1] + "/pipe/logs/"
    try:
        summary = open(logs + "table_summary.log").read()
        resources = open(logs + "mau.resources.log").read()
    except OSError as e:
        print("tofino_resources: %s" % e)
        sys.exit(2)
    last = summary.split("Table allocation done")[-1]
    stages = int(re.search(r"Number of stages in table allocation: (\d+)", last).group(1))
    ingress = int(re.search(r"Number of stages for ingress table allocation: (\d+)", last).group(1))
    egress = int(re.search(r"Number of stages for egress table allocation: (\d+)", last).group(1))
    placed = {}
    for s, name in re.findall(r"\|\s+(\d+)\s+\|\s+\[[^\]]*\]\*?\s+\|\s+(\S+)\s+\|", last):
        name = name.replace("GrayIngress.", "")
        if name.startswith(("tbl_egress", "egress")):
            # GrayEgress: the mirror copy's rebuild (mirror.p4).
            name = "(egress)"
        elif name.startswith(("tbl_", "cond-")):
            name = "(glue)"
        elif "checksum_encode_update_condition" in name:
            name = "(checksum flags)"
        if name not in placed.setdefault(int(s), []):
            placed[int(s)].append(name)
    counts = {}
    for line in resources.split("Allocated Resource Usage")[0].splitlines():
        cells = [c.strip() for c in line.split("|")[1:-1]]
        if cells and re.fullmatch(r"\d+|Totals", cells[0]) and "%" not in line:
            # Stage, ExXbar, TernXbar, HashBit, HashDist, Gateway, SRAM, MapRAM, TCAM, VLIW
            counts[cells[0]] = (cells[8], cells[6], cells[3], cells[9])
    print("stages used: %d (ingress %d, egress %d)" % (stages, ingress, egress))
    print()
    print("| stage | tables | TCAM | SRAM | hash bits | VLIW |")
    print("|---|---|---|---|---|---|")
    for s in range(stages):
        t, r, h, v = counts.get(str(s), ("?",) * 4)
        print("| %d | %s | %s | %s | %s | %s |" % (s, ", ".join(placed.get(s, [])), t, r, h, v))
    t, r, h, v = counts.get("Totals", ("?",) * 4)
    print("| all | | %s of %d | %s of %d | %s | %s |" % (t, 24 * 12, r, 80 * 12, h, v))


if __name__ == "__main__":
    main()
