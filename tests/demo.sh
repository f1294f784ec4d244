#!/usr/bin/env bash
# make demo: render a handful of sample voicemails with flite and sox, then
# screen them with the real `vmscreen check`, as a reviewer would see it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${VMS_BIN_DIR:-$top/build/rel}
out=$top/build/demo
# sox dithers with a random seed unless told otherwise: -R makes every
# render the same, so the demo shows the same verdicts every time.
export SOX_OPTS=${SOX_OPTS:--R}
mkdir -p "$out"
say() { # name voice gain text
	flite -voice "$2" -t "$4" -o "$out/.$1.raw.wav"
	sox "$out/.$1.raw.wav" -r 16000 -c 1 -b 16 "$out/$1.wav" vol "$3"dB
	rm -f "$out/.$1.raw.wav"
}
if [ ! -f "$out/5-broken.wav" ]; then
	echo "Rendering sample voicemails into $out ..."
	say 1-clean slt 0 "Hi Mister Johnson, this is Dave from Acme Communications. The technician will be there on Wednesday at ten. Please call me back at five five five, one two one two. Thanks, bye."
	sox "$out/1-clean.wav" "$out/1-clean.tmp.wav" pad 0 1 && mv "$out/1-clean.tmp.wav" "$out/1-clean.wav"
	say 2-hostile rms 0 "Mister Grant, this is Bill from Titan Telecom. I need you to shut up and listen for once. Your order ships next week. Bye."
	say 3-survey slt 0 "Hi, this is Jeff from Sunrise Motors. When you get the survey, please score me a ten. Anything less than a ten and I get in trouble. Bye."
	say .4a slt 0 "Hi Carol, it is Henry from Westside Auto Glass. Your windshield is in stock and we can install it on Thursday. Talk to you soon."
	say .4b awb -8 "What an idiot. This guy calls us five times a day about the same stupid bill."
	sox -n -r 16000 -c 1 -b 16 "$out/.gap.wav" trim 0 1.5
	sox "$out/.4a.wav" "$out/.gap.wav" "$out/.4b.wav" "$out/4-open-line.wav" pad 0 1
	rm -f "$out"/.4a.wav "$out"/.4b.wav "$out"/.gap.wav
	head -c 44 "$out/1-clean.wav" >"$out/5-broken.wav"
	printf 'garbage' >>"$out/5-broken.wav"
fi
echo
echo "== vmscreen check $out/*.wav"
set +e
"$bin/vmscreen" check "$out"/*.wav
rc=$?
set -e
echo "(exit status $rc: 0 = all passed, 1 = something held)"
echo
echo "== vmscreen check --json $out/2-hostile.wav (abridged)"
"$bin/vmscreen" check --json "$out/2-hostile.wav" | python3 -c '
import json, sys
r = json.loads(sys.stdin.readline())
r["transcript"]["words"] = r["transcript"]["words"][:3] + ["..."]
print(json.dumps(r, indent=2))' || true
