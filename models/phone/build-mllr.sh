#!/usr/bin/env bash
# Build the telephone-channel MLLR transform (models/phone.mllr) for the
# en-us acoustic model, from Debian's packages alone:
#   models/phone/build-mllr.sh OUT.mllr
#
# Adaptation data: the Asterisk core prompts (asterisk-core-sounds-en-wav, one
# real speaker recorded for telephone use) with their transcripts
# (asterisk-core-sounds-en), each passed through G.711 u-law and GSM 06.10 as
# a call would carry it, then upsampled to 16 kHz exactly as vmscreen reads
# 8 kHz audio.  sphinxtrain's bw collects the statistics against the model
# and mllr_solve estimates ONE global transform of the Gaussian means: a
# single transform cannot learn the speaker's words or voice, only the
# channel, which is why it helps other speakers (measured: README,
# "Detection").  Never adapt on the synthetic test voices.
#
# Reproducible: the prompt list is sorted by the package's own order, sox
# runs with a fixed seed (-R), bw and mllr_solve are deterministic.
set -euo pipefail
out=${1:?usage: build-mllr.sh OUT.mllr}
here=$(cd "$(dirname "$0")" && pwd)
model=${VMS_EN_US:-/usr/share/pocketsphinx/model/en-us}
hmm=$model/en-us
dict=$model/cmudict-en-us.dict
sounds=${VMS_PROMPTS_DIR:-/usr/share/asterisk/sounds/en_US_f_Allison}
list=${VMS_PROMPTS_LIST:-/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz}
st=/usr/lib/sphinxtrain
for f in "$hmm/means" "$dict" "$list" "$sounds" "$st/bw" "$st/mllr_solve"; do
	[ -e "$f" ] || { echo "build-mllr.sh: $f is missing (run tests/deps.sh)" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SOX_OPTS=-R
python3 "$here/prompts.py" "$list" "$sounds" "$dict" >"$work/prompts.tsv"
mkdir -p "$work/wav"
: >"$work/fileids"
: >"$work/transcription"
while IFS=$'\t' read -r name words; do
	id=${name//\//_}; id=${id//./_}
	for codec in u-law gsm-full-rate; do
		tag=${codec%%-*}
		sox "$sounds/$name.wav" -r 8000 -c 1 -e "$codec" "$work/coded.wav" sinc 300-3400
		sox "$work/coded.wav" -r 16000 -b 16 -e signed-integer "$work/wav/$id-$tag.wav"
		echo "$id-$tag" >>"$work/fileids"
		echo "<s> $words </s> ($id-$tag)" >>"$work/transcription"
	done
done <"$work/prompts.tsv"
sphinx_fe -argfile "$hmm/feat.params" -samprate 16000 -c "$work/fileids" -di "$work/wav" \
	-do "$work/wav" -ei wav -eo mfc -mswav yes >"$work/fe.log" 2>&1
# bw wants the model with float mixture weights: Debian ships only the
# decoder's 8-bit sendump, so a copy of the model gets them converted.
mkdir -p "$work/hmm" "$work/acc"
for f in means variances transition_matrices noisedict feat.params; do ln -s "$hmm/$f" "$work/hmm/$f"; done
python3 "$here/sendump2mixw.py" "$hmm/sendump" "$work/hmm/mixture_weights"
pocketsphinx_mdef_convert -text "$hmm/mdef" "$work/mdef.txt" >/dev/null 2>&1
"$st/bw" -hmmdir "$work/hmm" -moddeffn "$work/mdef.txt" -ts2cbfn .ptm. -feat 1s_c_d_dd \
	-svspec 0-12/13-25/26-38 -cmn current -agc none -dictfn "$dict" -fdictfn "$hmm/noisedict" \
	-ctlfn "$work/fileids" -lsnfn "$work/transcription" -cepdir "$work/wav" -cepext mfc \
	-accumdir "$work/acc" >"$work/bw.log" 2>&1 || { tail -20 "$work/bw.log" >&2; exit 1; }
"$st/mllr_solve" -meanfn "$hmm/means" -varfn "$hmm/variances" -outmllrfn "$work/mllr" \
	-accumdir "$work/acc" >"$work/solve.log" 2>&1 || { tail -20 "$work/solve.log" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
mv "$work/mllr" "$out.tmp"
mv "$out.tmp" "$out"
echo "build-mllr.sh: $(wc -l <"$work/prompts.tsv") prompts x 2 codings -> $out" >&2
