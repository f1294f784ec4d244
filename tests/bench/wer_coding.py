#!/usr/bin/env python3
"""Word error rate of vmscreen's transcripts on REAL speech, per telephone coding.

usage: wer_coding.py VMSCREEN [--config FILE] [--codings 16k,ulaw,alaw,gsm] [--work DIR]

Every recording of ../shared/eval/real-speech/ that has a reference transcript
(kinds.tsv: speech+ref) and the five of ../shared/eval/real/ is screened as it
is ("16k", after resampling to 16 kHz) and after passing through each
telephone coding the way synth.py does it (8 kHz, 300-3400 Hz, G.711 u-law,
A-law, GSM 06.10).  None of these speakers is the one the telephone transform
was estimated on (models/phone/build-mllr.sh), so the figures say what the
transform does for other people.  Prints one line per coding and a last line
`WER real <16k> <ulaw> <alaw> <gsm>`.
"""
import json, os, re, subprocess, sys, tempfile

from wer import edits  # tests/bench/wer.py: the same edit distance

KIT = os.environ.get("VMS_EVAL_KIT") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "eval")
CODE = {"ulaw": ["-e", "u-law"], "alaw": ["-e", "a-law"], "gsm": ["-e", "gsm-full-rate"]}

def words(text):
    return re.sub(r"[^a-z' ]", " ", text.lower()).split()

def references(kit):
    refs = {}
    kinds = {}
    for line in open(os.path.join(kit, "real-speech", "kinds.tsv")):
        if line.strip() and not line.startswith("#"):
            f, k = line.rstrip("\n").split("\t")[:2]
            kinds[f] = k
    for sub in ("real-speech", "real"):
        for line in open(os.path.join(kit, sub, "transcripts.tsv")):
            if "\t" in line:
                f, t = line.rstrip("\n").split("\t", 1)
                if sub == "real" or kinds.get(f) == "speech+ref":
                    refs[os.path.join(kit, sub, f)] = words(t)
    return refs

def render(src, coding, out):
    if coding == "16k":
        fx = ["sox", src, "-r", "16000", "-c", "1", "-b", "16", out]
    else:
        fx = ["sox", src, "-r", "8000", "-c", "1"] + CODE[coding] + [out, "sinc", "300-3400"]
    subprocess.run(fx, check=True, capture_output=True, env={**os.environ, "SOX_OPTS": "-R"})

def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    exe, cfg, codings, work = argv[1], None, ["16k", "ulaw", "alaw", "gsm"], None
    i = 2
    while i < len(argv):
        if argv[i] == "--config":
            cfg = argv[i + 1]; i += 2
        elif argv[i] == "--codings":
            codings = argv[i + 1].split(","); i += 2
        elif argv[i] == "--work":
            work = argv[i + 1]; i += 2
        else:
            sys.exit(f"wer_coding.py: unknown argument {argv[i]}")
    refs = references(os.path.normpath(KIT))
    work = work or tempfile.mkdtemp(prefix="vms-wer-")
    figures = []
    for coding in codings:
        d = os.path.join(work, coding)
        os.makedirs(d, exist_ok=True)
        files = {}
        for src in sorted(refs):
            out = os.path.join(d, os.path.basename(src))
            if not os.path.exists(out):
                render(src, coding, out)
            files[out] = refs[src]
        cmd = [exe, "check", "--json"] + (["--config", cfg] if cfg else ["--no-config"]) + list(files)
        res = subprocess.run(cmd, capture_output=True, text=True)
        errs = total = 0
        for line in res.stdout.splitlines():
            r = json.loads(line)
            ref = files.get(r["file"])
            if ref is None:
                continue
            hyp = words(r.get("transcript", {}).get("text", ""))
            errs += edits(ref, hyp)
            total += len(ref)
        wer = errs / max(total, 1)
        figures.append(f"{wer:.3f}")
        print(f"{coding:5s} wer {wer:.3f} ({errs} errors / {total} words, {len(files)} recordings)", flush=True)
    print("WER real " + " ".join(figures))

if __name__ == "__main__":
    main(sys.argv)
