#!/usr/bin/env bash
# The test command of polis: everything CI runs, in order.
#
#   1. scripts/install-deps.sh       redis-cli, redis-server, tcl, redis-py, pytest
#   2. scripts/fetch-redis-tests.sh  Redis 7.0.15's TCL suite into .cache/
#   3. cargo fmt --all --check               (formatting, as rustfmt.toml says)
#   4. cargo clippy --workspace --all-targets -- -D warnings
#   5. cargo build -j2 --workspace
#   6. cargo test -j2 --workspace --no-fail-fast   (every test binary runs)
#   7. python3 -m pytest -q tests/python     (redis-py and redis-cli against polis dev)
#   8. tests/redis-suite/run.sh              (Redis's own tests against polis dev)
#   9. tests/redis-suite/run.sh --server gateway   (the same through polis gateway, 3 shards)
#  10. tests/redis-suite/run.sh --tls unit/type/string unit/type/hash   (runtest --tls)
#      (8 runs beside 9 then 10)
#
# Every stage runs under `timeout`, and all of them within TEST_BUDGET_S
# (default 75 minutes; CI allows 90). A failing stage does not stop the
# stages that do not depend on it. The last line counts tests:
#   polis: N passed, N failed
# (cargo tests + pytest tests + TCL tests; a stage that failed without a
# count of its own counts as one failure). Exit status is non-zero when any
# stage failed.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

budget_s="${TEST_BUDGET_S:-4500}"
readonly budget_s
log_dir="$(mktemp -d "${TMPDIR:-/tmp}/polis-test.XXXXXX")"
trap 'rm -rf "$log_dir"' EXIT

passed_total=0
failed_total=0
stage_names=()
stage_results=()
failed_stages=0

banner() { printf '\n==== %s ====\n' "$*"; }

# Prints the seconds a stage may take: its own cap, or what is left of the
# budget if that is less.
stage_timeout_s() {
  local cap_s="$1" left_s=$((budget_s - SECONDS))
  ((left_s < 1)) && left_s=1
  ((cap_s < left_s)) && echo "$cap_s" || echo "$left_s"
}

# run_stage NAME CAP_S COMMAND...: runs COMMAND with its output shown and
# kept in $log_dir/NAME.log; returns its exit status.
run_stage() {
  local name="$1" cap_s="$2"
  shift 2
  local limit_s status=0
  limit_s="$(stage_timeout_s "$cap_s")"
  banner "$name (limit ${limit_s}s): $*"
  timeout --kill-after=30 "$limit_s" "$@" </dev/null 2>&1 | tee "$log_dir/$name.log" || status=$?
  if ((status == 124 || status == 137)); then
    echo "test.sh: $name timed out after ${limit_s}s" | tee -a "$log_dir/$name.log"
  fi
  return "$status"
}

# record NAME STATUS PASSED FAILED: adds a stage's counts to the totals.
record() {
  local name="$1" status="$2" passed="$3" failed="$4"
  if ((status != 0 && failed == 0)); then
    failed=1 # failed without a count of its own (build error, timeout, ...)
  fi
  passed_total=$((passed_total + passed))
  failed_total=$((failed_total + failed))
  stage_names+=("$name")
  if ((status == 0)); then
    stage_results+=("ok ($passed passed)")
  else
    stage_results+=("FAILED (exit $status; $passed passed, $failed failed)")
    failed_stages=$((failed_stages + 1))
  fi
}

not_run() {
  stage_names+=("$1")
  stage_results+=("not run: $2")
  failed_stages=$((failed_stages + 1))
}

# Sums "N passed" / "N failed" from cargo's "test result:" lines.
cargo_counts() {
  awk '/^test result:/ {
         for (i = 1; i <= NF; i++) {
           if ($(i+1) ~ /^passed/) passed += $i
           if ($(i+1) ~ /^failed/) failed += $i
         }
       }
       END { printf "%d %d\n", passed, failed }' "$1"
}

# Reads pytest's closing line ("3 failed, 20 passed, 1 error in 15.2s").
pytest_counts() {
  tail -n 5 "$1" | awk '/ in [0-9.]+s/ {
         passed = 0; failed = 0
         for (i = 1; i <= NF; i++) {
           word = $(i+1); gsub(/[,=]/, "", word)
           if (word == "passed") passed += $i
           if (word == "failed" || word == "error" || word == "errors") failed += $i
         }
       }
       END { printf "%d %d\n", passed, failed }'
}

# Reads the unit rows of tests/redis-suite/run.sh's table
# (unit ok err exception skip ignored result): ok tests passed; err and
# exception failed, or 1 for a unit that failed without any (no server, ...).
suite_counts() {
  awk '$1 ~ /^unit\// && NF >= 7 && $2 ~ /^[0-9]+$/ {
         ok += $2
         failed_here = $3 + $4
         if (failed_here == 0 && $7 != "pass") failed_here = 1
         failed += failed_here
       }
       END { printf "%d %d\n", ok, failed }' "$1"
}

# A one-shot build gains nothing from incremental caches; they only take disk.
if [[ "${CI:-}" == "true" ]]; then
  export CARGO_INCREMENTAL=0
fi

# The build and its test binaries need several GiB; a linker that runs out
# of disk dies with a bus error, so say up front when space is short.
free_kib="$(df -Pk . | awk 'NR == 2 { print $4 }')"
echo "test.sh: $((free_kib / 1024 / 1024)) GiB free on the disk of $repo_root"
if ((free_kib < 10 * 1024 * 1024)); then
  echo "test.sh: warning: under 10 GiB free; the build may run out of disk"
fi

status=0
run_stage install-deps 900 ./scripts/install-deps.sh || status=$?
record install-deps "$status" 0 0
deps_ok=$((status == 0))

status=0
run_stage fetch-redis-tests 600 ./scripts/fetch-redis-tests.sh || status=$?
record fetch-redis-tests "$status" 0 0
suite_fetched=$((status == 0))

status=0
run_stage cargo-fmt 300 cargo fmt --all --check || status=$?
record cargo-fmt "$status" 0 0

status=0
run_stage cargo-clippy 2700 cargo clippy -j2 --workspace --all-targets -- -D warnings || status=$?
record cargo-clippy "$status" 0 0

status=0
run_stage cargo-build 2700 cargo build -j2 --workspace || status=$?
record cargo-build "$status" 0 0
built=$((status == 0))

if ((built)); then
  status=0
  run_stage cargo-test 2100 cargo test -j2 --workspace --no-fail-fast || status=$?
  read -r passed failed < <(cargo_counts "$log_dir/cargo-test.log")
  record cargo-test "$status" "$passed" "$failed"
else
  not_run cargo-test "the build failed"
fi

if ((built && deps_ok)); then
  status=0
  run_stage pytest 900 python3 -m pytest -q tests/python || status=$?
  read -r passed failed < <(pytest_counts "$log_dir/pytest.log")
  # pytest exits 5 when it collected no test: that is a failure here.
  record pytest "$status" "$passed" "$failed"
else
  not_run pytest "needs the build and the dependencies"
fi

# Redis's suite against one shard, and through the gateway then over TLS,
# run side by side: each waits mostly on round trips, runs its own clusters
# on ports of its own, and runtest from a copy of the suite of its own
# (tests/redis-suite/run.sh) with a --baseport of its own. Each side's
# output is shown when both ended.
suite_single() {
  local status=0
  run_stage redis-suite 1500 ./tests/redis-suite/run.sh >/dev/null || status=$?
  echo "$status" >"$log_dir/redis-suite.status"
}
# runtest's own test server listens just below its --baseport (default
# 21111): the side runs take another, so the two never reach for one port.
readonly side_baseport=23111
suite_gateway_then_tls() {
  local status=0
  run_stage redis-suite-gateway 1200 ./tests/redis-suite/run.sh --server gateway -- --baseport "$side_baseport" \
    >/dev/null || status=$?
  echo "$status" >"$log_dir/redis-suite-gateway.status"
  status=0
  run_stage redis-suite-tls 600 ./tests/redis-suite/run.sh --tls unit/type/string unit/type/hash \
    -- --baseport "$side_baseport" >/dev/null || status=$?
  echo "$status" >"$log_dir/redis-suite-tls.status"
}

if ((built && deps_ok && suite_fetched)); then
  banner "redis-suite, and redis-suite-gateway then redis-suite-tls, side by side"
  suite_single &
  single_pid=$!
  suite_gateway_then_tls &
  gateway_pid=$!
  wait "$single_pid" || true
  wait "$gateway_pid" || true
  for name in redis-suite redis-suite-gateway redis-suite-tls; do
    banner "$name"
    cat "$log_dir/$name.log" 2>/dev/null || echo "test.sh: $name wrote no output"
    status="$(cat "$log_dir/$name.status" 2>/dev/null || echo 1)"
    read -r passed failed < <(suite_counts "$log_dir/$name.log" 2>/dev/null || echo "0 0")
    record "$name" "$status" "$passed" "$failed"
  done
else
  for name in redis-suite redis-suite-gateway redis-suite-tls; do
    not_run "$name" "needs the build, the dependencies and the fetched suite"
  done
fi

banner "summary (${SECONDS}s)"
for i in "${!stage_names[@]}"; do
  printf '  %-18s %s\n' "${stage_names[$i]}" "${stage_results[$i]}"
done
echo
# One word and a colon before the counts: the closing-line format CI reads.
echo "polis: $passed_total passed, $failed_total failed"
((failed_stages == 0))
