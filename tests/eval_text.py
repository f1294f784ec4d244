#!/usr/bin/env python3
"""Score the phrasing layers on labelled text, without audio.

usage: eval_text.py VMSCREEN LABELLED.tsv [min_right=0.85] [max_clean_held=0.02] [--misses]

LABELLED.tsv holds `label<TAB>sentence` lines (label: a phrasing category or `clean`;
`#` comments).  Every sentence goes through `vmscreen check --text --json`.  An
unprofessional line counts as right when it is held with a finding of its own category;
a clean line counts against us when it is held at all.  Prints the figures, per
category, and exits 1 when a bound given on the command line is not met.
"""
import json, subprocess, sys, tempfile

def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    exe, path = argv[1], argv[2]
    bounds = dict(a.split("=", 1) for a in argv[3:] if "=" in a)
    show = "--misses" in argv
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                label, text = line.rstrip("\n").split("\t", 1)
                rows.append((label, text))
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as tmp:
        tmp.write("\n".join(t for _, t in rows) + "\n")
        tmp.flush()
        out = subprocess.run([exe, "check", "--json", "--text", tmp.name],
                             capture_output=True, text=True)
    if out.returncode not in (0, 1):
        sys.exit(f"eval_text.py: vmscreen failed ({out.returncode}): {out.stderr.strip()}")
    results = [json.loads(l) for l in out.stdout.splitlines() if l.strip()]
    if len(results) != len(rows):
        sys.exit(f"eval_text.py: {len(rows)} lines but {len(results)} results")
    per = {}
    for (label, text), r in zip(rows, results):
        held = r["verdict"] == "hold"
        cats = {a["category"] for a in r["alerts"]
                if a["type"] == "phrasing" and a["severity"] != "low"}
        ok = (not held) if label == "clean" else (held and label in cats)
        n, k = per.get(label, (0, 0))
        per[label] = (n + 1, k + ok)
        if show and not ok:
            ev = "; ".join(f'{a["category"]}/{a["severity"]} {a["rule"]}: {a["evidence"]}'
                           for a in r["alerts"])
            print(f"MISS {label}: {text}  -> {r['verdict']} {ev}")
    bad = [l for l in per if l != "clean"]
    n_bad = sum(per[l][0] for l in bad)
    right = sum(per[l][1] for l in bad) / n_bad if n_bad else 1.0
    n_clean, ok_clean = per.get("clean", (0, 0))
    clean_held = (n_clean - ok_clean) / n_clean if n_clean else 0.0
    for l in sorted(per):
        n, k = per[l]
        what = "passed" if l == "clean" else "held in category"
        print(f"  {l:14s} {k:4d}/{n:<4d} {what}")
    print(f"min_right {right:.3f} ({n_bad} unprofessional lines)  "
          f"max_clean_held {clean_held:.3f} ({n_clean} clean lines)")
    fail = []
    if "min_right" in bounds and right < float(bounds["min_right"]):
        fail.append(f"min_right {right:.3f} < {bounds['min_right']}")
    if "max_clean_held" in bounds and clean_held > float(bounds["max_clean_held"]):
        fail.append(f"max_clean_held {clean_held:.3f} > {bounds['max_clean_held']}")
    if fail:
        print("FAILED: " + "; ".join(fail))
        return 1
    return 0

if __name__ == "__main__":
    sys.exit(main(sys.argv))
