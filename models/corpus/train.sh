#!/usr/bin/env bash
# Train the learned phrasing layer (models/phrasing.ftz) from the labelled
# agent-speech corpus in models/corpus/*.tsv (label<TAB>sentence).
#   models/corpus/train.sh OUT.ftz
# Reproducible: the lines are de-duplicated and put in a fixed order (a
# seeded shuffle: fastText reads its input in order, and a file sorted by
# label would teach it the last label best), one thread, fixed seed.  The
# model is quantised (.ftz): a few MB instead of the full matrix's tens of
# MB, shared read-only by every worker.
set -euo pipefail
out=${1:?usage: train.sh OUT.ftz}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 "$here/prepare.py" "$here"/*.tsv >"$work/train.txt"
fasttext supervised -input "$work/train.txt" -output "$work/m" -thread 1 -seed 1 \
	-epoch 30 -lr 0.5 -wordNgrams 2 -minn 0 -maxn 0 -dim 50 -bucket 200000 \
	-loss ova -verbose 0
fasttext quantize -input "$work/train.txt" -output "$work/m" -thread 1 -seed 1 \
	-qnorm -retrain -cutoff 50000 -epoch 30 -lr 0.5 -verbose 0
mkdir -p "$(dirname "$out")"
mv "$work/m.ftz" "$out.tmp"
mv "$out.tmp" "$out"
