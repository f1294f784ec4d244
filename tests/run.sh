#!/usr/bin/env bash
# Run the whole suite: Check unit tests and Python integration tests, first
# against the optimised build (build/rel), then against the ASan+UBSan build
# (build/asan).  Prints one closing line "N passed, N failed".
#   tests/run.sh [--unit-only] [--flavour rel|asan]
# VMS_VALGRIND=1 runs the unit tests under valgrind's leak checker instead.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
unit_only=0
flavours=(rel asan)
while [ $# -gt 0 ]; do
	case $1 in
	--unit-only) unit_only=1 ;;
	--flavour) flavours=("$2"); shift ;;
	*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
[ -n "${VMS_VALGRIND:-}" ] && flavours=(rel)
passed=0
failed=0
failures=()
log=build/test-logs
mkdir -p "$log"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export VMSCREEN_MODELS=$top/models

record() { # name status logfile
	if [ "$2" -eq 0 ]; then
		passed=$((passed + 1))
		printf 'PASS %s\n' "$1"
	else
		failed=$((failed + 1))
		failures+=("$1")
		printf 'FAIL %s (log: %s)\n' "$1" "$3"
		tail -n 30 "$3" | sed 's/^/    /'
	fi
}

if [ $unit_only -eq 0 ]; then
	make --no-print-directory format-check >"$log/format.log" 2>&1
	record "format/clang-format" $? "$log/format.log"
fi
for fl in "${flavours[@]}"; do
	bin=build/$fl
	for t in "$bin"/tests/test_*; do
		[ -x "$t" ] || continue
		name="$fl/unit/$(basename "$t")"
		out="$log/$fl-$(basename "$t").log"
		if [ -n "${VMS_VALGRIND:-}" ]; then
			valgrind --leak-check=full --errors-for-leak-kinds=definite \
				--error-exitcode=3 --suppressions="$top/tests/valgrind.supp" -q \
				"$t" >"$out" 2>&1
		else
			"$t" >"$out" 2>&1
		fi
		rc=$?
		grep -E '^[0-9]+%: Checks' "$out" | sed "s|^|    $name: |"
		record "$name" $rc "$out"
	done
	[ $unit_only -eq 1 ] && continue
	for t in tests/integration/test_*.py; do
		[ -f "$t" ] || continue
		name="$fl/integration/$(basename "$t" .py)"
		out="$log/$fl-$(basename "$t" .py).log"
		VMS_BIN_DIR=$top/$bin VMS_FLAVOUR=$fl timeout 1800 python3 "$t" -v >"$out" 2>&1
		rc=$?
		grep -E '^(Ran|OK|FAILED)' "$out" | sed "s|^|    $name: |"
		record "$name" $rc "$out"
	done
done
# Detection quality on the labelled evaluation kit, when it is beside us
# (CI clones next to shared/): the figures issue 2 asks for, as a gate.
kit=${VMS_EVAL_KIT:-$top/../shared/eval}
eval_gate() { # name scenarios.jsonl score.py-bounds...
	local name=$1 scen=$2 out="$log/rel-eval-$1.log" rc
	shift 2
	VMS_BIN_DIR=$top/build/rel bash tests/eval.sh "$scen" "$@" >"$out" 2>&1
	rc=$?
	tail -n 1 "$out" | sed "s|^|    rel/eval/$name: |"
	record "rel/eval/$name" $rc "$out"
}
if [ $unit_only -eq 0 ] && [[ " ${flavours[*]} " == *" rel "* ]] && [ -f "$kit/dev.jsonl" ]; then
	eval_gate dev "$kit/dev.jsonl" hold_recall=0.95 false_hold_rate=0.10 \
		category_recall=0.90 unscreenable_recall=1.0
	# Our own held-out sets, as regression guards a file or two below what
	# they score today (held-out 2 and 3 were written blind to the rules).
	eval_gate heldout tests/scenarios/heldout.jsonl hold_recall=0.90 false_hold_rate=0.10 \
		unscreenable_recall=1.0
	eval_gate heldout2 tests/scenarios/heldout2.jsonl hold_recall=0.83 false_hold_rate=0.10 \
		unscreenable_recall=1.0
	eval_gate heldout3 tests/scenarios/heldout3.jsonl hold_recall=0.72 false_hold_rate=0.12 \
		unscreenable_recall=1.0
	# Issue 9: real noise after a message is no open line, real speech is.
	eval_gate realtrail tests/scenarios/realtrail.jsonl open_line_recall=0.87 \
		open_line_false_alarm_rate=0.10 false_hold_rate=0.10
	eval_gate heldout4 tests/scenarios/heldout4.jsonl hold_recall=0.80 false_hold_rate=0.05
	# Issue 17: writers 1-6's voicemails, most of them phone-coded, a file
	# below what they score today (first scores: tests/LEDGER.md).
	eval_gate heldout5-w1 tests/scenarios/heldout5-w1.jsonl hold_recall=0.60 false_hold_rate=0.25
	eval_gate heldout5-w2 tests/scenarios/heldout5-w2.jsonl hold_recall=0.66 false_hold_rate=0.09
	eval_gate heldout5-w3 tests/scenarios/heldout5-w3.jsonl hold_recall=0.77 false_hold_rate=0.25
	eval_gate heldout6-w4 tests/scenarios/heldout6-w4.jsonl hold_recall=0.77 false_hold_rate=0.34
	eval_gate heldout6-w5 tests/scenarios/heldout6-w5.jsonl hold_recall=0.83 false_hold_rate=0.09
	eval_gate heldout6-w6 tests/scenarios/heldout6-w6.jsonl hold_recall=0.55 false_hold_rate=0.42
	# Real recordings: a hold on clean speech or a finding on noise is a false alarm.
	out="$log/rel-eval-real-speech.log"
	# Issue 17: 4 of 76 since the confidence policy (learned_sure) that holds
	# 0.846 of the unprofessional recordings instead of 0.750 (README).
	python3 tests/eval_real.py "$top/build/rel/vmscreen" "$kit/real-speech" max_speech_held=4 \
		max_noise_findings=0 >"$out" 2>&1
	rc=$?
	tail -n 1 "$out" | sed "s|^|    rel/eval/real-speech: |"
	record "rel/eval/real-speech" $rc "$out"
	# The phrasing layers on text (check --text): the blind text set.
	out="$log/rel-eval-text-blind4.log"
	python3 tests/eval_text.py "$top/build/rel/vmscreen" tests/phrases/blind4.tsv min_right=0.92 \
		max_clean_held=0.02 >"$out" 2>&1
	rc=$?
	tail -n 1 "$out" | sed "s|^|    rel/eval/text-blind4: |"
	record "rel/eval/text-blind4" $rc "$out"
	# Issue 17: the blind text sets of writers 1-6, as regression guards a
	# line or two below what they score today (their first scores, the
	# figures to quote, are in tests/LEDGER.md).
	for g in "blind5-w1 0.78 0.03" "blind5-w2 0.80 0.02" "blind5-w3 0.75 0.05" \
		"blind6-w4 0.77 0.035" "blind6-w5 0.76 0.035" "blind6-w6 0.62 0.02"; do
		read -r set right clean <<<"$g"
		out="$log/rel-eval-text-$set.log"
		python3 tests/eval_text.py "$top/build/rel/vmscreen" "tests/phrases/$set.tsv" \
			min_right="$right" max_clean_held="$clean" >"$out" 2>&1
		rc=$?
		tail -n 1 "$out" | sed "s|^|    rel/eval/text-$set: |"
		record "rel/eval/text-$set" $rc "$out"
	done
elif [ $unit_only -eq 0 ]; then
	echo "SKIP rel/eval/dev: no evaluation kit at $kit"
fi
if [ ${#failures[@]} -gt 0 ]; then
	printf 'failed: %s\n' "${failures[*]}"
fi
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
