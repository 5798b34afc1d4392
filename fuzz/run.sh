#!/usr/bin/env bash
# Runs libFuzzer targets for a fixed time each and prints one line per target:
#   fuzz_headers       1234567 execs  OK
# Usage: fuzz/run.sh BUILD_DIR SECONDS TARGET...   (make fuzz passes them)
# SECONDS=0 only replays each repository corpus once (the seeds and every input that
# once crashed a target), without fuzzing: a regression check for make test.
#
# Each target works on a copy of fuzz/corpus/TARGET under BUILD_DIR/corpus, so the
# inputs it finds accumulate there across runs while the repository's seed corpus
# stays small. A crash leaves its input in BUILD_DIR/artifacts/TARGET/ and the whole
# log in BUILD_DIR/logs/TARGET.log; the run goes on with the other targets and exits
# non-zero at the end.
set -uo pipefail
cd "$(dirname "$0")/.."

build=$1 seconds=$2
shift 2
case "$seconds" in '' | *[!0-9]*) echo "fuzz: FUZZ_SECONDS must be a whole number"; exit 2 ;; esac

if [ "$seconds" -eq 0 ]; then
  for t in "$@"; do
    # Files, not the directory: given a directory libFuzzer would also write to it.
    if ! "$build/fuzz_$t" fuzz/corpus/"$t"/* >"$build/replay-$t.log" 2>&1; then
      echo "fuzz_$t: a corpus input fails:"
      grep -E 'Running: |ERROR: |runtime error|check failed' "$build/replay-$t.log" | tail -n 5
      exit 1
    fi
    printf '%-22s %3d inputs replayed  OK\n' "fuzz_$t" "$(ls fuzz/corpus/"$t" | wc -l)"
  done
  exit 0
fi

echo "fuzz: $# targets, $seconds s each"
crashed=()
for t in "$@"; do
  bin="$build/fuzz_$t"
  corpus="$build/corpus/$t"
  artifacts="$build/artifacts/$t/"
  log="$build/logs/$t.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  if [ -d "fuzz/corpus/$t" ]; then cp -p "fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null; fi
  # -timeout: a single input running for 10 s is a hang worth reporting.
  "$bin" -max_total_time="$seconds" -print_final_stats=1 \
    -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$artifacts" "$corpus" >"$log" 2>&1
  status=$?
  execs=$(sed -nE 's/^stat::number_of_executed_units:[[:space:]]*([0-9]+).*/\1/p' "$log" | tail -n 1)
  if [ "$status" -eq 0 ]; then
    printf '%-22s %12s execs  OK\n' "fuzz_$t" "${execs:-?}"
  else
    printf '%-22s %12s execs  CRASH (exit %d; log %s, input in %s)\n' "fuzz_$t" "${execs:-?}" \
      "$status" "$log" "$artifacts"
    grep -m 1 -E 'ERROR: |runtime error|check failed' "$log" | sed 's/^/    /'
    crashed+=("$t")
  fi
done

if [ ${#crashed[@]} -gt 0 ]; then
  echo "fuzz: ${#crashed[@]} target(s) crashed: ${crashed[*]}"
  exit 1
fi
echo "fuzz: no crash"
