#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) under libFuzzer for a bounded
# time, keeping each target's corpus in fuzz/corpus/TARGET between runs and
# any crash in fuzz/artifacts/TARGET/, then prints one line per target:
# executions, executions per second, corpus size, new crashes.
#
#   fuzz/run.sh                 # every target, 60 s each
#   fuzz/run.sh 300 ts_demux    # 300 s, only the named targets
#
# Builds with the pinned stable toolchain: the coverage instrumentation
# cargo-fuzz would add (SanitizerCoverage, `--cfg fuzzing`) is passed as
# plain rustc codegen flags, so neither cargo-fuzz nor nightly is needed;
# no AddressSanitizer (the workspace has no unsafe code). Debug assertions
# and overflow checks are on: an overflow is a crash. A crash is
# reproduced with `fuzz/target/HOST/release/TARGET fuzz/artifacts/TARGET/crash-…`
# and becomes a unit test next to the parser.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-60}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  for f in fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

export RUSTFLAGS="-Cpasses=sancov-module \
  -Cllvm-args=-sanitizer-coverage-level=4 \
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
  -Cllvm-args=-sanitizer-coverage-pc-table \
  -Cllvm-args=-sanitizer-coverage-trace-compares \
  --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps the instrumentation out of build scripts and
# proc macros (which run on the host and link without libFuzzer).
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --release --locked --bins --target "$host"
bin="target/$host/release"

summary=()
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  before=$(find "artifacts/$t" -type f ! -name last-run.log | wc -l)
  log="artifacts/$t/last-run.log"
  # -rss_limit_mb: a parser that allocates without bound is a crash too.
  if ! "$bin/$t" "corpus/$t" \
      -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
    status=1
  fi
  after=$(find "artifacts/$t" -type f ! -name last-run.log | wc -l)
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  corpus=$(find "corpus/$t" -type f | wc -l)
  summary+=("$(printf '%-16s %12s runs %9s/s  corpus %6s  crashes %s' \
    "$t" "$runs" "$speed" "$corpus" "$((after - before))")")
done
printf '%s\n' "${summary[@]}"
exit "$status"
