#!/usr/bin/env python3
"""Screen ../shared/eval/real-speech/ and count false alarms.

usage: eval_real.py VMSCREEN REAL_SPEECH_DIR [max_speech_held=N] [max_noise_findings=N]

None of that speech is unprofessional and none of the noise is speech (kinds.tsv):
a hold on a speech file, or any finding on a noise file, is a false alarm.  Prints
each one with its evidence, then the counts; exits 1 when a bound is not met.
"""
import json, os, subprocess, sys

def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    exe, d = argv[1], argv[2]
    bounds = dict(a.split("=", 1) for a in argv[3:] if "=" in a)
    kinds = {}
    for line in open(os.path.join(d, "kinds.tsv")):
        if line.strip() and not line.startswith("#"):
            f, k = line.rstrip("\n").split("\t")[:2]
            kinds[f] = k
    files = [os.path.join(d, f) for f in sorted(kinds)]
    out = subprocess.run([exe, "check", "--json"] + files, capture_output=True, text=True)
    if out.returncode not in (0, 1):
        sys.exit(f"eval_real.py: vmscreen failed ({out.returncode}): {out.stderr.strip()}")
    held = noisy = n_speech = n_noise = 0
    for line in out.stdout.splitlines():
        r = json.loads(line)
        f = os.path.basename(r["file"])
        noise = kinds[f] == "noise"
        n_noise += noise
        n_speech += not noise
        ev = "; ".join(f'{a["type"]}/{a["category"]}/{a["severity"]} {a["evidence"][:70]}'
                       for a in r["alerts"])
        if noise and r["alerts"]:
            noisy += 1
            print(f"NOISE FINDING {f}: {ev}")
        elif not noise and r["verdict"] == "hold":
            held += 1
            print(f"SPEECH HELD {f}: {ev}")
    print(f"max_speech_held {held} of {n_speech}  max_noise_findings {noisy} of {n_noise}")
    fail = [k for k, v in (("max_speech_held", held), ("max_noise_findings", noisy))
            if k in bounds and v > int(bounds[k])]
    if fail:
        print("FAILED: " + ", ".join(fail))
        return 1
    return 0

if __name__ == "__main__":
    sys.exit(main(sys.argv))
