#!/usr/bin/env python3
"""Detection per telephone coding and per voice (issue 17), so that a
regression on GSM, or on one synthetic voice, shows even when the mean
improves.

usage: by_coding.py SCENARIOS.jsonl RESULTS.jsonl [SCENARIOS.jsonl RESULTS.jsonl ...]

RESULTS.jsonl is `vmscreen check --json` output for the files synth.py
rendered from SCENARIOS.jsonl.  A recording expected to hold counts towards
hold recall, one expected to pass towards false holds; unscreenable
scenarios (broken files) are left out.
"""
import collections, json, os, sys

def main(argv):
    if len(argv) < 3 or len(argv) % 2 == 0:
        sys.exit(__doc__)
    rows = collections.defaultdict(lambda: [0, 0, 0, 0])  # hold exp, held, pass exp, held
    for scen_path, res_path in zip(argv[1::2], argv[2::2]):
        scen = {}
        for line in open(scen_path):
            if line.strip() and not line.startswith("#"):
                s = json.loads(line)
                scen[s["id"]] = s
        for line in open(res_path):
            r = json.loads(line)
            s = scen.get(os.path.splitext(os.path.basename(r["file"]))[0])
            if s is None or "unscreenable" in s["expect"]["types"]:
                continue
            held = r["verdict"] == "hold"
            coding = s.get("phone") or "16k"
            voice = s.get("voice", "slt")
            for key in ("coding " + coding, "voice " + voice, "all"):
                row = rows[key]
                if s["expect"]["verdict"] == "hold":
                    row[0] += 1
                    row[1] += held
                else:
                    row[2] += 1
                    row[3] += held
    print(f"{'':16s} {'hold recall':>16s} {'false holds':>16s}")
    for key in sorted(rows, key=lambda k: (k == "all", k)):
        he, hh, pe, ph = rows[key]
        rec = f"{hh / he:.3f} ({hh}/{he})" if he else "-"
        fh = f"{ph / pe:.3f} ({ph}/{pe})" if pe else "-"
        print(f"{key:16s} {rec:>16s} {fh:>16s}")

if __name__ == "__main__":
    main(sys.argv)
