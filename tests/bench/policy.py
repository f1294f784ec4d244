#!/usr/bin/env python3
"""How the learned layer's confidence policy was chosen (issue 17): replay
the findings of `vmscreen check --json` runs under other thresholds.

usage: policy.py RESULTS_DIR [EVAL_DIR]

RESULTS_DIR holds NAME.jsonl (check --json output) for labelled sets whose
renders and truth are in EVAL_DIR/NAME/ (default build/eval, as tests/eval.sh
leaves them), and real-speech.jsonl for ../shared/eval/real-speech/.  Run
the sets with learned_sure high enough to keep nothing (the replay needs
only each learned finding's score and word confidence).  For each policy
"hold when score x word confidence >= 0.7, or score >= S and word
confidence >= C" it prints: hold recall and right-category recall on the
recordings held for phrasing alone, clean recordings held, and real speech
recordings held.
"""
import json, os, sys

def load(results, evald, kit):
    files, real = [], []
    kinds = {}
    for line in open(os.path.join(kit, "real-speech", "kinds.tsv")):
        if line.strip() and not line.startswith("#"):
            f, k = line.rstrip("\n").split("\t")[:2]
            kinds[f] = k
    for name in sorted(os.listdir(results)):
        path = os.path.join(results, name)
        if name == "real-speech.jsonl":
            real = [json.loads(l)["alerts"] for l in open(path)
                    if kinds.get(os.path.basename(json.loads(l)["file"])) != "noise"]
            continue
        truth_path = os.path.join(evald, name[:-6], "truth.jsonl")
        if not name.endswith(".jsonl") or not os.path.exists(truth_path):
            continue
        truth = {json.loads(l)["file"]: json.loads(l)["expect"] for l in open(truth_path)}
        for line in open(path):
            r = json.loads(line)
            files.append((truth[os.path.basename(r["file"])], r["alerts"]))
    return files, real

def holds(a, sure, words):
    if a["type"] != "phrasing":
        return a["severity"] != "low"
    if not a["rule"].startswith("learned."):
        return a["severity"] != "low"
    sc = a.get("score", 0)
    wc = a.get("word_confidence", a.get("confidence", 0) / sc if sc else 0)
    return sc * wc >= 0.7 or (sure is not None and sc >= sure and wc >= words)

def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    kit = os.environ.get("VMS_EVAL_KIT", os.path.join(top, "..", "shared", "eval"))
    files, real = load(argv[1], argv[2] if len(argv) > 2 else os.path.join(top, "build", "eval"),
                       kit)
    print(f"{'learned_sure':>12s} {'words':>6s} {'held':>6s} {'category':>8s} "
          f"{'clean held':>10s} {'real held':>9s}")
    for sure, words in [(None, 0)] + [(s, w) for s in (0.95, 0.98, 0.99, 0.995)
                                      for w in (0.4, 0.45, 0.5, 0.55, 0.6)]:
        he = hh = ch = pe = ph = 0
        for exp, alerts in files:
            held = any(holds(a, sure, words) for a in alerts)
            if exp["verdict"] == "hold" and exp["types"] == ["phrasing"]:
                he += 1
                hh += held
                ch += any(holds(a, sure, words) and a.get("category") in exp["categories"]
                          for a in alerts)
            elif exp["verdict"] == "pass":
                pe += 1
                ph += held
        rh = sum(any(holds(a, sure, words) for a in al) for al in real)
        print(f"{'off' if sure is None else sure:>12} {words:>6} {hh / max(he, 1):6.3f} "
              f"{ch / max(he, 1):8.3f} {ph:>4d}/{pe:<5d} {rh:>3d}/{len(real)}")

if __name__ == "__main__":
    main(sys.argv)
