#!/usr/bin/env python3
"""Word error rate of `vmscreen check --json` transcripts against the text a
scenario file says (synth.py format), for comparing decoder settings.

usage: wer.py SCENARIOS.jsonl RESULTS.jsonl
Numbers are written as words by the scenarios already; punctuation is dropped.
"""
import json, os, re, sys

def words(text):
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()

def ref_text(sc):
    parts = sc.get("parts") or [p for ch in sc.get("channels", []) for p in ch]
    return words(" ".join(p.get("say", "") for p in parts))

def edits(a, b):
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]

def main():
    scen = {}
    for line in open(sys.argv[1]):
        line = line.strip()
        if line and not line.startswith("#"):
            sc = json.loads(line)
            if not sc.get("corrupt") and not sc.get("copy"):
                scen[sc["id"]] = ref_text(sc)
    errs = total = 0
    for line in open(sys.argv[2]):
        r = json.loads(line)
        sid = os.path.splitext(os.path.basename(r["file"]))[0]
        if sid not in scen:
            continue
        hyp = words(r.get("transcript", {}).get("text", ""))
        errs += edits(scen[sid], hyp)
        total += len(scen[sid])
    print(f"wer {errs / max(total, 1):.3f} ({errs} errors / {total} words)")

if __name__ == "__main__":
    main()
