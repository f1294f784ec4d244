#!/usr/bin/env bash
# Fill build/fuzz/corpus/<harness>/ with seed inputs (never committed:
# build/ is git-ignored).  Safe to re-run: seeds are rewritten, what the
# fuzzer added to a corpus stays.
#   tests/fuzz/seed.sh [CORPUS_ROOT]
# Sources: the evaluation kit's malformed/ recordings ($VMS_EVAL_KIT,
# default ../shared/eval), short WAV/FLAC/Ogg/raw renders made here with
# sox (< 0.5 s each), models/rules/*.rules, models/signoffs.txt,
# etc/vmscreend.conf, tests/fuzz/seeds/ and tests/fuzz/regressions/.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
root=${1:-build/fuzz/corpus}
kit=${VMS_EVAL_KIT:-$top/../shared/eval}
mkdir -p "$root"/{audio,sidecar,rules,config}

# --- audio --------------------------------------------------------------
a=$root/audio
if [ -d "$kit/malformed" ]; then
	for f in "$kit"/malformed/*; do
		[ -f "$f" ] && cp -f "$f" "$a/kit-$(basename "$f")" && chmod u+w "$a/kit-$(basename "$f")"
	done
else
	echo "seed.sh: no evaluation kit at $kit (malformed/ seeds skipped)" >&2
fi
if command -v sox >/dev/null 2>&1; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	# a tone burst with a gap: enough signal for the level analysis
	gen() { sox -n -r "$1" -c "$2" "${@:3}" synth 0.12 sine 440 pad 0 0.05 synth 0.12 sine 300 2>/dev/null; }
	gen 16000 1 -b 16 "$a/pcm16-16k-mono.wav"
	gen 8000 1 -b 16 "$a/pcm16-8k-mono.wav"
	gen 8000 2 -b 16 "$a/pcm16-8k-stereo.wav"
	gen 44100 1 -b 24 "$a/pcm24-44k.wav"
	gen 22050 1 -e floating-point -b 32 "$a/float32-22k.wav"
	gen 48000 2 -b 32 "$a/pcm32-48k-stereo.wav"
	gen 8000 1 -e u-law "$a/ulaw-8k.wav"
	gen 8000 1 -e a-law "$a/alaw-8k.wav"
	gen 8000 1 -e gsm-full-rate -t wav "$a/gsm-8k.wav"
	gen 11025 1 -e ima-adpcm "$a/ima-11k.wav"
	gen 16000 1 -b 8 -e unsigned "$a/u8-16k.wav"
	gen 16000 1 -C 0 "$a/short.flac"
	gen 8000 2 "$a/stereo.flac"
	gen 16000 1 "$a/short.ogg" || true
	gen 8000 1 -t aiff "$a/short.aiff" || true
	gen 8000 1 -t au "$a/short.au" || true
	# headerless telephony: the harness takes a first byte 1..4 as the
	# extension (.ulaw .alaw .gsm .sln), so prefix it
	raw() { # byte sox-args...
		local out=$1 byte=$2
		shift 2
		sox -n -r 8000 -c 1 "$@" "$tmp/raw" synth 0.2 sine 440 2>/dev/null
		{ printf "\\x0$byte"; cat "$tmp/raw"; } >"$a/$out"
	}
	raw raw.ulaw 1 -t ul
	raw raw.alaw 2 -t al
	raw raw.gsm 3 -t gsm
	raw raw.sln 4 -t sln
	# a WAV truncated mid-data and one with its data length doubled
	head -c 3000 "$a/pcm16-16k-mono.wav" >"$a/truncated.wav"
	python3 - "$a/pcm16-8k-mono.wav" "$a/long-header.wav" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
i = b.find(b"data")
n = struct.unpack_from("<I", b, i + 4)[0]
struct.pack_into("<I", b, i + 4, 2 * n)
open(sys.argv[2], "wb").write(b)
PY
else
	echo "seed.sh: sox not found: rendered audio seeds skipped (make deps)" >&2
fi
for f in tests/fuzz/regressions/audio/*; do [ -f "$f" ] && cp -f "$f" "$a/"; done

# --- sidecar ------------------------------------------------------------
for f in tests/fuzz/seeds/sidecar/* tests/fuzz/regressions/sidecar/*; do
	[ -f "$f" ] && cp -f "$f" "$root/sidecar/"
done

# --- rules --------------------------------------------------------------
for f in models/rules/*.rules models/signoffs.txt tests/fuzz/seeds/rules/* \
	tests/fuzz/regressions/rules/*; do
	[ -f "$f" ] && cp -f "$f" "$root/rules/$(basename "$f")"
done
# each pack again, led by sentences it should fire on (as comments: the
# harness matches the input's own words, the first ones first)
if [ -f tests/phrases/positive.tsv ]; then
	for f in models/rules/*.rules; do
		c=$(basename "$f" .rules)
		{
			awk -F'\t' -v c="$c" '$1 == c { print "# " $2 }' tests/phrases/positive.tsv | head -n 2
			cat "$f"
		} >"$root/rules/with-phrases-$c.rules"
	done
fi

# --- config -------------------------------------------------------------
for f in etc/vmscreend.conf tests/fuzz/seeds/config/* tests/fuzz/regressions/config/*; do
	[ -f "$f" ] && cp -f "$f" "$root/config/$(basename "$f")"
done

for h in audio sidecar rules config; do
	printf 'seed.sh: %-8s %4d files\n' "$h" "$(find "$root/$h" -type f | wc -l)"
done
