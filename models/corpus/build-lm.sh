#!/usr/bin/env bash
# Build the agent-talk language model (models/agent.lm.bin) from the corpus:
# every agent line of passes that hold agent speech (clean and unprofessional
# alike: the decoder should expect "pissed off" as readily as "call me back"),
# a trigram model with improved Kneser-Ney smoothing by IRSTLM, converted to
# pocketsphinx's binary form.  Deterministic: same corpus, same model.
#   models/corpus/build-lm.sh OUT.lm.bin
set -euo pipefail
out=${1:?usage: build-lm.sh OUT.lm.bin}
here=$(cd "$(dirname "$0")" && pwd)
export IRSTLM=${IRSTLM:-/usr/lib/irstlm}
export PATH=$IRSTLM/bin:$PATH
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The agent passes: not the general-English ones, which teach the
# classifier what is not agent talk.
agent=$(grep -L '^# pass [0-9]*: general English' "$here"/pass*.tsv)
python3 "$here/prepare.py" $agent | cut -d' ' -f2- | sort >"$work/text.txt"
add-start-end.sh <"$work/text.txt" >"$work/text.se"
(cd "$work" && build-lm.sh -i text.se -n 3 -o lm.ilm.gz -k 1 -s improved-kneser-ney -t "$work/tmp" >/dev/null 2>&1)
compile-lm --text=yes "$work/lm.ilm.gz" "$work/lm.arpa" >/dev/null 2>&1
sphinx_lm_convert -i "$work/lm.arpa" -o "$work/agent.lm.bin" >/dev/null 2>&1
mkdir -p "$(dirname "$out")"
mv "$work/agent.lm.bin" "$out.tmp"
mv "$out.tmp" "$out"
