#!/usr/bin/env bash
# Profiles polis under the `set` workload of `polis bench compare`: a fresh
# 3-node cluster in one group (`polis dev --shards 1`), 100,000 keys of
# 100-byte values, then SET from 50 connections, one request in flight
# each, while `perf record` samples the leader and one follower. Prints
# where each spends its CPU
# (scripts/profile_breakdown.py) and leaves perf-leader.data and
# perf-follower.data in OUT for `perf report -i`.
#
#   scripts/profile.sh [OUT]        # default OUT: ./profile-results
#
# Needs perf (Debian linux-perf) and a release build
# (cargo build --release -j2 -p polis). Bounded: 10 s of load.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
polis="$root/target/release/polis"
out=$(mkdir -p "${1:-profile-results}" && cd "${1:-profile-results}" && pwd)
port=$((20000 + RANDOM % 20000))
data="$out/data"
rm -rf "$data"

# shellcheck source=scripts/dev-start.sh
source "$root/scripts/dev-start.sh"
start_dev --shards 1 --port "$port" --data "$data"

leader=$(grep -o "leader: node [0-9]*" "$out/dev.log" | grep -o "[0-9]*$")
leader_resp="127.0.0.1:$((port + leader - 1))"
leader_pid=$(pgrep -P $dev -f -- "--node-id $leader ")
follower_pid=$(pgrep -P $dev | grep -vx "$leader_pid" | head -1)

"$polis" bench run --resp "$leader_resp" --workload write-only --keys 100000 \
  --pipeline 16 --duration-secs 0.5 --warmup-secs 0 > /dev/null
perf record -F 250 --call-graph dwarf,16384 -p "$leader_pid" \
  -o "$out/perf-leader.data" -- sleep 8 > /dev/null 2>&1 &
leader_perf=$!
perf record -F 250 --call-graph dwarf,16384 -p "$follower_pid" \
  -o "$out/perf-follower.data" -- sleep 8 > /dev/null 2>&1 &
follower_perf=$!
"$polis" bench run --resp "$leader_resp" --workload write-only --keys 100000 \
  --skip-load --duration-secs 10 --warmup-secs 1 | tail -2
wait $leader_perf $follower_perf

python3 "$root/scripts/profile_breakdown.py" "$out/perf-leader.data" "$out/perf-follower.data"
