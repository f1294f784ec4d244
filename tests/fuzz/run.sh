#!/usr/bin/env bash
# Run libFuzzer harnesses (built by `make fuzz`) for a bounded time each,
# one after the other, from build/fuzz/corpus/<harness>/ (seed.sh) and
# tests/fuzz/regressions/<harness>/, and print each one's final figures.
#   tests/fuzz/run.sh [HARNESS...]      (default: every build/fuzz/fuzz_*)
# FUZZ_SECONDS (60): time per harness.  FUZZ_TIMEOUT (20): seconds one input
# may take before it counts as a hang.  FUZZ_RSS_MB (2048): memory limit.
# FUZZ_FLAGS: more libFuzzer flags.  Exit 1 when any harness found a crash,
# a leak, a hang or an out-of-memory (artifact in build/fuzz/artifacts/<h>/).
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
secs=${FUZZ_SECONDS:-60}
out=build/fuzz
harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then
	for b in "$out"/fuzz_*; do
		[ -x "$b" ] && harnesses+=("${b##*/fuzz_}")
	done
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=0}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tests/fuzz/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export VMSCREEN_MODELS=$top/models
failed=()
mkdir -p "$out/logs"
for h in "${harnesses[@]}"; do
	bin=$out/fuzz_$h
	if [ ! -x "$bin" ]; then
		echo "fuzz: $bin is missing (make fuzz builds it)" >&2
		failed+=("$h")
		continue
	fi
	corpus=$out/corpus/$h
	art=$out/artifacts/$h/
	log=$out/logs/$h.log
	mkdir -p "$corpus" "$art"
	dirs=("$corpus")
	[ -d tests/fuzz/regressions/$h ] && dirs+=(tests/fuzz/regressions/$h)
	dict=()
	[ -f tests/fuzz/dict/$h.dict ] && dict=(-dict=tests/fuzz/dict/$h.dict)
	echo "fuzz: $h for ${secs}s (log: $log)"
	# shellcheck disable=SC2086
	"$bin" -max_total_time="$secs" -print_final_stats=1 -timeout="${FUZZ_TIMEOUT:-20}" \
		-rss_limit_mb="${FUZZ_RSS_MB:-2048}" -artifact_prefix="$art" "${dict[@]}" \
		${FUZZ_FLAGS:-} "${dirs[@]}" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
	last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
	printf 'fuzz: %-8s %s execs, cov %s, ft %s, corpus %s, peak rss %s MB: %s\n' "$h" \
		"${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}" \
		"$([ $rc -eq 0 ] && echo clean || echo "FAILED (exit $rc)")"
	if [ $rc -ne 0 ]; then
		failed+=("$h")
		grep -E 'ERROR: |SUMMARY: |runtime error|Test unit written|artifact_prefix' "$log" |
			head -n 8 | sed 's/^/    /'
	fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: FAILED: ${failed[*]} (make each artifact a regression input:" \
		"tests/fuzz/regressions/<harness>/, and fix the bug)"
	exit 1
fi
echo "fuzz: ${#harnesses[@]} harness(es) clean"
