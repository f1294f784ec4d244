#!/usr/bin/env python3
"""List the Asterisk core prompts usable for adapting the acoustic model.

usage: prompts.py TRANSCRIPTS.txt[.gz] SOUNDS_DIR DICT > prompts.tsv

Reads Debian's asterisk-core-sounds-en transcript list ("name: Text."), keeps
the prompts whose audio exists and whose every word is in the recogniser's
dictionary, and prints `name<TAB>words` in the order of the list, so the same
package always gives the same adaptation set.  Tones ("[beep]"), spelled
letters and prompts with digits or unknown words are left out: a wrong
transcript teaches the transform the wrong sounds.
"""
import gzip, os, re, sys

def main(argv):
    if len(argv) != 4:
        sys.exit(__doc__)
    src, sounds, dict_path = argv[1:]
    known = set()
    with open(dict_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            known.add(line.split(" ", 1)[0].split("(", 1)[0])
    opener = gzip.open if src.endswith(".gz") else open
    with opener(src, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(";") or ":" not in line:
                continue
            name, text = (s.strip() for s in line.split(":", 1))
            if not text or "[" in text or re.search(r"[0-9]", text):
                continue
            if name.startswith(("letters/", "phonetic/", "silence/")):
                continue
            if not os.path.isfile(os.path.join(sounds, name + ".wav")):
                continue
            words = re.sub(r"[^a-z' ]", " ", text.lower().replace("-", " ")).split()
            words = [w.strip("'") for w in words]
            if words and all(w in known for w in words):
                print(f"{name}\t{' '.join(words)}")

if __name__ == "__main__":
    main(sys.argv)
