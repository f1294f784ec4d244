#!/usr/bin/env bash
# The plain alternative vmscreen is measured against: one
# pocketsphinx_continuous process per file (model loaded every time) and a
# grep for a word list.  Prints one JSON line per file in the shape score.py
# reads ("hold" when a listed word was heard; no open-line detection).
#   baseline.sh FILE...
set -uo pipefail
model=/usr/share/pocketsphinx/model/en-us
words='damn|hell|crap|shit|fuck|idiot|moron|stupid|shut up|fault|money|survey|ten|calm down|not my problem'
for f in "$@"; do
	tmp=$(mktemp --suffix=.wav)
	# pocketsphinx_continuous wants 16 kHz mono 16-bit
	if sox "$f" -r 16000 -c 1 -b 16 "$tmp" 2>/dev/null; then
		text=$(pocketsphinx_continuous -infile "$tmp" -hmm "$model/en-us" -lm "$model/en-us.lm.bin" \
			-dict "$model/cmudict-en-us.dict" -logfn /dev/null 2>/dev/null | tr '\n' ' ')
		if echo "$text" | grep -Eqw "$words"; then v=hold; else v=pass; fi
		alerts='[]'
		[ $v = hold ] && alerts='[{"type":"phrasing","category":"word_list"}]'
	else
		v=hold
		alerts='[{"type":"unscreenable"}]'
	fi
	rm -f "$tmp"
	printf '{"file": "%s", "verdict": "%s", "alerts": %s}\n' "$f" "$v" "$alerts"
done
