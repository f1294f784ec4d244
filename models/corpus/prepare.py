#!/usr/bin/env python3
"""Turn the corpus (label<TAB>sentence lines, '#' comments) into fastText's
training format on standard output: '__label__LABEL words'.

The words are normalised as vmscreen's recogniser and `check --text` give
them (lower case, punctuation dropped, apostrophes removed) and as the
learned layer reads them (three or more number words in a row, a phone or
account number, become one token "digitstring": a number read out is not a
survey score), exact
duplicates are dropped, and the order is a seeded shuffle so that the
model is the same on every machine.  A malformed line is an error naming
the file and line: a corpus is reviewed text, not scraped data.
"""
import random, re, sys

LABELS = {"clean", "profanity", "insult", "hostility", "dismissive", "blame", "money",
          "survey_gaming"}

NUMBER_WORDS = {"zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight",
                "nine", "ten", "double", "triple"}
DIGIT_RUN = 3  # as src/core/learned.c: this many number words in a row are a digit string

WHOLE = {"can't": "can not", "won't": "will not", "ain't": "is not", "shan't": "shall not",
         "let's": "let us"}
TAILS = [("n't", " not"), ("'re", " are"), ("'m", " am"), ("'ll", " will"), ("'ve", " have"),
         ("'d", " would")]
IS_WORDS = {"it", "that", "he", "she", "what", "there", "here", "who", "where", "how"}

def expand(w):
    """Contractions as learned.c expands them ("isn't" -> "is not")."""
    if "'" not in w:
        return w
    if w in WHOLE:
        return WHOLE[w]
    for t, r in TAILS:
        if len(w) > len(t) and w.endswith(t):
            return w[:-len(t)] + r
    if len(w) > 2 and w.endswith("'s"):
        return w[:-2] + " is" if w[:-2] in IS_WORDS else w[:-2]
    return w.replace("'", "")

def words(s):
    """The classifier's view of a sentence, exactly as learned.c builds it."""
    s = " ".join(expand(w) for w in s.lower().replace("\u2019", "'").split())
    out, run = [], []
    for w in re.findall(r"[a-z0-9]+", s.replace("'", "")) + [""]:
        if w in NUMBER_WORDS:
            run.append(w)
            continue
        out += ["digitstring"] if len(run) >= DIGIT_RUN else run
        run = []
        if w:
            out.append(w)
    return " ".join(out)

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
