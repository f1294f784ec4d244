#!/usr/bin/env bash
# make bench: speed and detection of vmscreen, side by side with the plain
# alternative (tests/bench/baseline.sh), on rendered corpora:
# tests/scenarios/bench.jsonl (long voicemails) and ../shared/eval/dev.jsonl.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
bin=${VMS_BIN_DIR:-$top/build/rel}
kit=${VMS_EVAL_KIT:-$top/../shared/eval}
out=build/bench
mkdir -p "$out"
corpora=(tests/scenarios/bench.jsonl)
[ -f "$kit/dev.jsonl" ] && corpora+=("$kit/dev.jsonl")
for scen in "${corpora[@]}"; do
	name=$(basename "$scen" .jsonl)
	dir=$out/$name
	if [ ! -f "$dir/truth.jsonl" ] || [ "$scen" -nt "$dir/truth.jsonl" ]; then
		rm -rf "$dir"
		python3 "$kit/synth.py" "$scen" "$dir" 2>/dev/null
	fi
	python3 -c 'import json,sys; [print(sys.argv[1]+"/"+json.loads(l)["file"]) for l in open(sys.argv[1]+"/truth.jsonl")]' "$dir" >"$dir.files"
	n=$(wc -l <"$dir.files")
	audio=$(python3 -c 'import json,sys; print(sum(json.loads(l)["duration_s"] for l in open(sys.argv[1])))' "$dir/truth.jsonl")
	# vmscreen, one process, one worker: CPU seconds and peak RSS
	/usr/bin/time -f '%U %S %M %e' -o "$dir.time" "$bin/vmscreen" check --json $(cat "$dir.files") \
		>"$dir.vms.jsonl" 2>/dev/null || true
	read -r u s rss wall1 < <(tail -n 1 "$dir.time")
	# wall-clock throughput with two processes (one per core)
	start=$(date +%s.%N)
	xargs -P 2 -n $(((n + 1) / 2)) "$bin/vmscreen" check --json <"$dir.files" >/dev/null 2>&1 || true
	wall2=$(echo "$(date +%s.%N) - $start" | bc)
	# the plain alternative
	/usr/bin/time -f '%U %S %M %e' -o "$dir.base.time" bash tests/bench/baseline.sh $(cat "$dir.files") \
		>"$dir.base.jsonl" 2>/dev/null || true
	read -r bu bs brss bwall < <(tail -n 1 "$dir.base.time")
	score() { python3 "$kit/score.py" "$dir/truth.jsonl" "$1" | awk '/^(hold_recall|false_hold_rate|open_line_recall|category_recall) /{printf "%s=%s ", $1, $2}'; }
	echo "== $name: $n files, $audio s of audio"
	python3 - "$u" "$s" "$rss" "$wall1" "$wall2" "$bu" "$bs" "$bwall" "$audio" <<'PY'
import sys
u, s, rss, w1, w2, bu, bs, bw, audio = map(float, sys.argv[1:])
cpu, bcpu = u + s, bu + bs
print(f"vmscreen   CPU {cpu:7.1f} s  RTF {cpu/audio:.3f}  wall(1 proc) {w1:6.1f} s  wall(2 procs) {w2:6.1f} s  "
      f"throughput {audio/w2:6.1f} audio-s/s  peak RSS {rss/1024:.0f} MB")
print(f"baseline   CPU {bcpu:7.1f} s  RTF {bcpu/audio:.3f}  wall(1 proc) {bw:6.1f} s")
print(f"ratio      speed {bcpu/cpu:.2f}x the baseline (CPU)")
PY
	echo "vmscreen   $(score "$dir.vms.jsonl")"
	echo "baseline   $(score "$dir.base.jsonl")"
done
echo "== daemon latency (tests/bench/latency.py)"
VMS_BIN_DIR=$bin python3 tests/bench/latency.py
