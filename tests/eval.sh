#!/usr/bin/env bash
# Render a scenario file with the evaluation kit's synth.py, screen every
# recording with `vmscreen check --json`, and score it with score.py.
#   tests/eval.sh [SCENARIOS.jsonl] [score.py requirements...]
# Defaults to ../shared/eval/dev.jsonl.  Renders are cached under build/eval.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
kit=${VMS_EVAL_KIT:-$top/../shared/eval}
scen=${1:-$kit/dev.jsonl}
shift || true
bin=${VMS_BIN_DIR:-$top/build/rel}
name=$(basename "$scen" .jsonl)
# synth.py's sox steps add dither and pink noise from a random seed, so two
# renders differ and a score could move by a file between runs.  sox reads
# its default options from SOX_OPTS; -R seeds its generators with a fixed
# number, so the gate in make check sees the same audio every time.
export SOX_OPTS=${SOX_OPTS:--R}
out=$top/build/eval/$name
if [ ! -f "$out/truth.jsonl" ] || [ "$scen" -nt "$out/truth.jsonl" ]; then
	rm -rf "$out"
	mkdir -p "$out"
	python3 "$kit/synth.py" "$scen" "$out" 2>"$out.synth.log"
fi
python3 -c 'import json,sys; [print(sys.argv[1]+"/"+json.loads(l)["file"]) for l in open(sys.argv[1]+"/truth.jsonl")]' "$out" \
	| xargs "$bin/vmscreen" check ${VMS_CHECK_CONFIG:+--config "$VMS_CHECK_CONFIG"} --json >"$out.results.jsonl" 2>"$out.check.log" || true
python3 "$kit/score.py" "$out/truth.jsonl" "$out.results.jsonl" "$@"
