#!/usr/bin/env bash
# Compiles the graygw P4 programs (`make p4` runs this).
#
#   v1model: p4test (when installed), then p4c-bm2-ss -> build/p4/graygw.json and
#            build/p4/graygw.p4info.txtpb, which must mean the same as the
#            committed p4src/graygw.p4info.txtpb (scripts/p4info_diff.py).
#   TNA:     bf-p4c when installed (skipped otherwise) -> build/p4/tna/, with
#            $P4C_TNA_FLAGS (default -DGRAY_RULES_TABLE_SIZE=9216
#            -DGRAY_RULES_V6_TABLE_SIZE=1024: the defaults, 16384 and 4096,
#            cannot place on Tofino 1, docs/p4-targets.md "Tofino fit"; set it
#            empty for the default sizes, e.g. on Tofino 2); its P4Info
#            must mean the same as the committed p4src/tna/graygw_tna.p4info.txtpb
#            (the Tofino 1 build's contract).
#            P4C_TNA=0 skips it (v1model only: what BMv2 runs need).
#   Tofino 2: the same program with bf-p4c --target tofino2 --arch t2na at the
#            default sizes, without CLOTs -> build/p4/t2na/ (it must compile and place: Tofino 2
#            has failed where Tofino 1 compiled); its resources are printed.
#            No committed P4Info. P4C_TNA2=0 skips it (and P4C_TNA=0).
#
# Exit status: 0 all good; 1 a compiler failed or the P4Info differs;
# 2 p4c-bm2-ss is not installed. Output directory: $P4_OUT (default build/p4).
# Commands and flags: docs/p4-targets.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/p4src"
OUT="${P4_OUT:-$ROOT/build/p4}"
V1MODEL="$SRC/v1model/graygw_v1model.p4"
TNA="$SRC/tna/graygw_tna.p4"
P4INFO="$SRC/graygw.p4info.txtpb"
TNA_P4INFO="$SRC/tna/graygw_tna.p4info.txtpb"
P4C_TNA_FLAGS="${P4C_TNA_FLAGS--DGRAY_RULES_TABLE_SIZE=9216 -DGRAY_RULES_V6_TABLE_SIZE=1024}"
# PATH, then $P4TOOLS, then the bundle beside the clone (scripts/p4tools.sh).
eval "$(bash "$ROOT/scripts/p4tools.sh")"

if ! command -v p4c-bm2-ss >/dev/null 2>&1; then
    echo "p4c-bm2-ss not found: install p4c with its BMv2 backend (p4lang/p4c) to compile p4src/ and check the P4Info; see docs/p4-targets.md" >&2
    exit 2
fi

mkdir -p "$OUT"

if command -v p4test >/dev/null 2>&1; then
    echo "p4test: $V1MODEL"
    p4test "$V1MODEL"
else
    echo "p4test not found: skipping it"
fi

echo "p4c-bm2-ss: $V1MODEL"
# p4c picks the P4Info format from the file name; ".txt" means text format in
# every release, ".txtpb" only in recent ones.
p4c-bm2-ss -o "$OUT/graygw.json" --p4runtime-files "$OUT/graygw.p4info.txt" "$V1MODEL"
mv -f "$OUT/graygw.p4info.txt" "$OUT/graygw.p4info.txtpb"

echo "p4info_diff: p4src/graygw.p4info.txtpb vs $OUT/graygw.p4info.txtpb"
python3 "$ROOT/scripts/p4info_diff.py" "$P4INFO" "$OUT/graygw.p4info.txtpb"
echo "P4Info matches the committed one"

if [ "${P4C_TNA:-1}" = 0 ]; then
    echo "P4C_TNA=0: skipping the TNA program"
elif command -v bf-p4c >/dev/null 2>&1; then
    echo "bf-p4c: $TNA"
    mkdir -p "$OUT/tna"
    # Standard P4Runtime counters (not Tofino extern messages), as Stratum wants.
    # shellcheck disable=SC2086 # P4C_TNA_FLAGS is a list of flags
    bf-p4c --target tofino --arch tna -g -o "$OUT/tna" \
        --p4runtime-files "$OUT/tna/graygw_tna.p4info.txt" \
        --p4runtime-force-std-externs \
        $P4C_TNA_FLAGS "$TNA"
    # The Tofino 1 build's own contract: what bf-p4c emits for it, committed
    # and checked like the v1model one, so a drift fails here and the
    # controller's tests run on the real thing (controller/engine mixed-fleet).
    echo "p4info_diff: p4src/tna/graygw_tna.p4info.txtpb vs $OUT/tna/graygw_tna.p4info.txt"
    python3 "$ROOT/scripts/p4info_diff.py" "$TNA_P4INFO" "$OUT/tna/graygw_tna.p4info.txt"
    echo "TNA P4Info matches the committed one"
    # Informational: how it differs from the v1model contract (sizes, the
    # counter ids bf-p4c derives from names, Tofino's port metadata extern;
    # docs/p4-targets.md says why the controller accepts each).
    python3 "$ROOT/scripts/p4info_diff.py" --strip-prefix pipe. --ignore-arch \
            "$P4INFO" "$OUT/tna/graygw_tna.p4info.txt" | sed 's/^/  vs v1model: /' || true
    # Hash parity without a Tofino: the compiler's own hash configuration,
    # evaluated against the shared vectors (docs/p4-targets.md, "Hash parity").
    python3 "$ROOT/scripts/tofino_hash_check.py" "$OUT/tna" "$ROOT/testvectors/pipeline.json" \
            "$ROOT/testvectors/ipv6.json"
    echo "Tofino resources ($OUT/tna/pipe/logs/; docs/p4-targets.md, \"Tofino fit\"):"
    python3 "$ROOT/scripts/tofino_resources.py" "$OUT/tna"
    if [ "${P4C_TNA2:-1}" != 0 ]; then
        echo "bf-p4c (Tofino 2, t2na): $TNA"
        mkdir -p "$OUT/t2na"
        # --no-clot: with CLOTs, bf-p4c 9.13's Tofino 2 backend deparses
        # the outer IPv6 header from a CLOT its parser never fills ("No
        # length for clot 7", docs/p4-targets.md "Tofino fit").
        bf-p4c --target tofino2 --arch t2na -g -o "$OUT/t2na" \
            --p4runtime-files "$OUT/t2na/graygw_t2na.p4info.txt" \
            --p4runtime-force-std-externs -Xp4c=--no-clot "$TNA"
        echo "Tofino 2 resources ($OUT/t2na/pipe/logs/):"
        python3 "$ROOT/scripts/tofino_resources.py" "$OUT/t2na" | sed -n 1p
    fi
else
    echo "bf-p4c not found: skipping the TNA program"
fi
