#!/usr/bin/env python3
"""Turn the corpus (label<TAB>sentence lines, '#' comments) into fastText's
training format on standard output: '__label__LABEL words'.

The words are normalised as vmscreen's recogniser and `check --text` give
them (lower case, punctuation dropped, apostrophes removed), exact
duplicates are dropped, and the order is a seeded shuffle so that the
model is the same on every machine.  A malformed line is an error naming
the file and line: a corpus is reviewed text, not scraped data.
"""
import random, re, sys

LABELS = {"clean", "profanity", "insult", "hostility", "dismissive", "blame", "money",
          "survey_gaming"}

def words(s):
    s = s.lower().replace("'", "")
    return " ".join(re.findall(r"[a-z0-9]+", s))

def main(paths):
    seen, lines = set(), []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line.strip() or line.startswith("#"):
                    continue
                parts = line.split("\t")
                if len(parts) != 2 or parts[0] not in LABELS or not words(parts[1]):
                    sys.exit(f"prepare.py: {path}:{n}: expected LABEL<TAB>sentence, "
                             f"LABEL one of {sorted(LABELS)}")
                key = (parts[0], words(parts[1]))
                if key not in seen:
                    seen.add(key)
                    lines.append(f"__label__{key[0]} {key[1]}")
    lines.sort()
    random.Random(1).shuffle(lines)
    sys.stdout.write("\n".join(lines) + "\n")

if __name__ == "__main__":
    main(sys.argv[1:])
