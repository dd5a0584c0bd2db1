#!/usr/bin/env bash
# Runs units of Redis 7.0.15's own TCL test suite against polis, one fresh
# local cluster per unit (`polis dev --nodes 3 --shards 1`: one shard serves
# every slot), with the TCL client pointed at that shard's leader (the TCL
# client does not follow MOVED).
#
#   tests/redis-suite/run.sh                  # polis, the default units
#   tests/redis-suite/run.sh --server redis   # control: a fresh redis-server per unit
#   tests/redis-suite/run.sh --server gateway # through polis gateway, 3 nodes, 3 shards
#   tests/redis-suite/run.sh --tls unit/type/string  # over TLS (polis dev --tls, runtest --tls)
#   tests/redis-suite/run.sh unit/type/incr   # only the units named
#   tests/redis-suite/run.sh --verbose        # print every unit's full output
#   tests/redis-suite/run.sh -- --cluster-mode   # extra runtest flags after --
#
# Environment: POLIS_BIN (default target/debug/polis), READY_TIMEOUT_S,
# UNIT_TIMEOUT_S, STOP_TIMEOUT_S.
#
# The suite comes from scripts/fetch-redis-tests.sh (.cache/redis-7.0.15).
# Tests named in tests/redis-suite/skip.txt are skipped for polis, never for
# the control run: real Redis must pass every test we run. Through the
# gateway, those of skip-gateway.txt are skipped too, each with its reason.
#
# Exit status: 0 only when every unit ran at least one test and had no [err]
# nor [exception].
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/../.." && pwd)"
readonly script_dir repo_root
readonly fetched_suite_dir="$repo_root/.cache/redis-7.0.15"
readonly skip_list="$script_dir/skip.txt"
readonly gateway_skip_list="$script_dir/skip-gateway.txt"

readonly default_units=(
  unit/type/string unit/type/incr unit/type/hash unit/keyspace unit/expire
  unit/type/list unit/type/list-2 unit/type/list-3 unit/type/set unit/type/zset
  unit/type/stream unit/type/stream-cgroups unit/multi unit/scan unit/bitops unit/bitfield
  unit/pubsub
)
# The design's command line: tags for what needs a real single Redis process
# (DEBUG, replication, SAVE, RESET, CONFIG RESETSTAT, PFDEBUG). Tests that
# set maxmemory run: polis keeps it, per node (docs/eviction.md).
readonly runtest_flags=(
  --singledb --ignore-encoding --ignore-digest
  --tags -needs:debug --tags -needs:repl --tags -needs:save
  --tags -needs:reset
  --tags -needs:config-resetstat --tags -needs:pfdebug
  # polis is a cluster: multi-key commands need one slot (-CROSSSLOT), as in
  # Redis Cluster. Redis's suite tags the tests that assume otherwise
  # `cluster:skip` and skips them in this mode (one test in these units:
  # keyspace's "Untagged multi-key commands").
  --cluster-mode
)

ready_timeout_s="${READY_TIMEOUT_S:-90}"
unit_timeout_s="${UNIT_TIMEOUT_S:-600}"
stop_timeout_s="${STOP_TIMEOUT_S:-30}"
polis_bin="${POLIS_BIN:-${CARGO_TARGET_DIR:-$repo_root/target}/debug/polis}"

server_kind=polis
tls=0
verbose=0
units=()
extra_runtest_args=()

usage() {
  sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while (($# > 0)); do
  case "$1" in
    --server) server_kind="${2:-}"; shift 2 ;;
    --server=*) server_kind="${1#*=}"; shift ;;
    --polis) polis_bin="${2:-}"; shift 2 ;;
    --tls) tls=1; shift ;;
    --verbose | -v) verbose=1; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; extra_runtest_args=("$@"); break ;;
    -*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) units+=("$1"); shift ;;
  esac
done
((${#units[@]} > 0)) || units=("${default_units[@]}")

case "$server_kind" in
  polis | gateway)
    [[ -x "$polis_bin" ]] || { echo "run.sh: no polis binary at $polis_bin (cargo build first)" >&2; exit 2; } ;;
  redis)
    command -v redis-server >/dev/null || { echo "run.sh: redis-server missing (scripts/install-deps.sh)" >&2; exit 2; } ;;
  *) echo "run.sh: --server must be polis, gateway or redis, not '$server_kind'" >&2; exit 2 ;;
esac
if ((tls)) && [[ "$server_kind" != polis ]]; then
  echo "run.sh: --tls runs against polis nodes only (--server polis)" >&2
  exit 2
fi
if ((tls)) && ! echo 'puts [package require tls]' | tclsh >/dev/null 2>&1; then
  echo "run.sh: --tls needs Tcl's tls package (Debian tcl-tls; scripts/install-deps.sh)" >&2
  exit 2
fi
[[ -x "$fetched_suite_dir/runtest" ]] || { echo "run.sh: no suite at $fetched_suite_dir (scripts/fetch-redis-tests.sh)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "run.sh: python3 missing" >&2; exit 2; }

log() { printf 'redis-suite: %s\n' "$*"; }

work_dir="$(mktemp -d "${TMPDIR:-/tmp}/polis-redis-suite.XXXXXX")"
# runtest runs from a copy of the suite of its own (its tests/tmp and, with
# --tls, the certificates of this run's cluster), so that runs side by
# side (scripts/test.sh runs two) share no files.
suite_dir="$work_dir/suite"
mkdir -p "$suite_dir"
cp -a "$fetched_suite_dir/runtest" "$fetched_suite_dir/tests" "$fetched_suite_dir/src" "$suite_dir/"
server_pid=""
server_address=""
runtest_pid=""

# Prints a base port P such that every port the server will bind is free on
# 127.0.0.1: for polis dev --nodes 3, P..P+2 (RESP), P+100..P+102 (admin),
# P+200..P+202 (peer); for redis-server, P alone. Candidates lie below the
# kernel's ephemeral range so that outgoing connections do not take them.
free_base_port() {
  python3 - "$server_kind" "$tls" <<'PY'
import random
import socket
import sys

blocks = (0, 100, 200, 400) if sys.argv[2] == "1" else (0, 100, 200)
offsets = [0] if sys.argv[1] == "redis" else [i + block for block in blocks for i in range(3)]

def free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True

rng = random.SystemRandom()
for _ in range(200):
    base = rng.randrange(20000, 31000 - 300)
    if all(free(base + offset) for offset in offsets):
        print(base)
        sys.exit(0)
sys.exit("no free base port found")
PY
}

# True while the process exists and is not a zombie waiting to be reaped.
alive() {
  local pid="$1" state
  [[ -r "/proc/$pid/stat" ]] || return 1
  state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# Stops the server this script started: SIGINT to its PID, a deadline, then
# SIGKILL to the process group it leads (started with setsid, so the group
# holds only that server and its children, the cluster's nodes).
stop_server() {
  local pid="$server_pid"
  [[ -n "$pid" ]] || return 0
  server_pid=""
server_address=""
runtest_pid=""
  if alive "$pid"; then
    kill -INT "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + stop_timeout_s))
    while alive "$pid" && ((SECONDS < deadline)); do
      sleep 0.1
    done
    if alive "$pid"; then
      log "server pid $pid still running ${stop_timeout_s}s after SIGINT: SIGKILL to its process group"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
  # Nodes left behind by a server that died on its own are killed with it.
  kill -KILL -- "-$pid" 2>/dev/null || true
  return 0
}

cleanup() {
  if [[ -n "$runtest_pid" ]]; then
    # `timeout` passes the signal on to runtest and its test clients.
    kill -TERM "$runtest_pid" 2>/dev/null || true
    wait "$runtest_pid" 2>/dev/null || true
  fi
  stop_server
  rm -rf "$work_dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints "host:port" of the RESP listener of shard 1's leader once every
# node reports the cluster serving with the same leader, and that leader's
# own replica says it leads; waits up to timeout_s.
polis_leader() {
  local base="$1" timeout_s="$2"
  python3 - "$polis_bin" "$base" "$timeout_s" <<'PY'
import json
import subprocess
import sys
import time

polis, base = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + float(sys.argv[3])

def status(admin_addr):
    try:
        done = subprocess.run([polis, "status", "--node", admin_addr, "--json"],
                              capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        return None
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        return None

def shard_one(report):
    shards = [shard for shard in report.get("shards", []) if shard.get("id") == 1]
    return shards[0] if shards else {}

last = None
while time.monotonic() < deadline:
    reports = [status("127.0.0.1:%d" % (base + 100 + node)) for node in range(3)]
    last = next((report for report in reports if report), last)
    if all(report and report.get("state") == "ok" for report in reports):
        leaders = {shard_one(report).get("leader_node") for report in reports}
        if len(leaders) == 1 and None not in leaders:
            leader = leaders.pop()
            confirmed = status("127.0.0.1:%d" % (base + 100 + leader - 1))
            replicas = (confirmed or {}).get("replicas", [])
            if any(r.get("group_id") == 1 and r.get("state") == "Leader" for r in replicas):
                print(shard_one(reports[0])["leader_resp_addr"])
                sys.exit(0)
    time.sleep(0.2)
sys.exit("no leader before the deadline; last status: %s" % json.dumps(last))
PY
}

# Starts a fresh server for one unit; sets server_pid and server_address,
# the host:port the TCL client must use.
start_server() {
  local unit_dir="$1" base
  base="$(free_base_port)"
  local deadline=$((SECONDS + ready_timeout_s))
  case "$server_kind" in
    polis)
      local tls_flag=()
      ((tls)) && tls_flag=(--tls)
      setsid "$polis_bin" dev --nodes 3 --shards 1 --port "$base" --gateway-port 0 --data "$unit_dir/data" \
        "${tls_flag[@]}" >"$unit_dir/server.log" 2>&1 </dev/null &
      server_pid=$!
      until grep -q '^polis dev: ready' "$unit_dir/server.log" 2>/dev/null; do
        if ! alive "$server_pid"; then
          log "polis dev exited before ready; its output:" >&2
          cat "$unit_dir/server.log" >&2
          return 1
        fi
        if ((SECONDS >= deadline)); then
          log "polis dev not ready after ${ready_timeout_s}s; its output:" >&2
          cat "$unit_dir/server.log" >&2
          return 1
        fi
        sleep 0.1
      done
      server_address="$(polis_leader "$base" $((deadline - SECONDS + 1)))" || return 1
      if ((tls)); then
        # The leader's TLS port (polis dev --tls: RESP port + 400), and
        # the certificates this cluster made, where runtest --tls reads
        # them (tests/tls: ca.crt, client.crt, client.key).
        server_address="${server_address%:*}:$((${server_address##*:} + 400))"
        mkdir -p "$suite_dir/tests/tls"
        cp "$unit_dir/data/tls/ca.crt" "$unit_dir/data/tls/client.crt" "$unit_dir/data/tls/client.key" \
          "$suite_dir/tests/tls/"
      fi
      ;;
    gateway)
      # Three shards, one led from each node: the TCL client sees one
      # endpoint, the gateway, and the keys of a unit spread over shards.
      # Leaders stay where they were elected (no balancing, no wait for
      # it): the gateway serves whoever leads.
      setsid "$polis_bin" dev --nodes 3 --shards 3 --no-settle --port "$base" --gateway-port 0 --data "$unit_dir/data" \
        -- --leader-moves-per-minute 0 >"$unit_dir/server.log" 2>&1 </dev/null &
      server_pid=$!
      until grep -q '^polis dev: ready' "$unit_dir/server.log" 2>/dev/null; do
        if ! alive "$server_pid" || ((SECONDS >= deadline)); then
          log "polis dev with a gateway not ready; its output:" >&2
          cat "$unit_dir/server.log" >&2
          return 1
        fi
        sleep 0.1
      done
      server_address="$(sed -n 's/^gateway: resp \([0-9.:]*\).*/\1/p' "$unit_dir/server.log" | head -1)"
      [[ -n "$server_address" ]] || { log "polis dev started no gateway:" >&2; cat "$unit_dir/server.log" >&2; return 1; }
      ;;
    redis)
      mkdir -p "$unit_dir/data"
      setsid redis-server --port "$base" --bind 127.0.0.1 --dir "$unit_dir/data" \
        --save "" --appendonly no --daemonize no \
        >"$unit_dir/server.log" 2>&1 </dev/null &
      server_pid=$!
      until [[ "$(redis-cli -h 127.0.0.1 -p "$base" ping 2>/dev/null)" == PONG ]]; do
        if ! alive "$server_pid" || ((SECONDS >= deadline)); then
          log "redis-server did not answer PING; its output:" >&2
          cat "$unit_dir/server.log" >&2
          return 1
        fi
        sleep 0.1
      done
      server_address="127.0.0.1:$base"
      ;;
  esac
}

skip_args=()
if [[ "$server_kind" != redis && -f "$skip_list" ]]; then
  # runtest's --skipfile reads every line as a name; give it names only.
  skip_lists=("$skip_list")
  [[ "$server_kind" == gateway && -f "$gateway_skip_list" ]] && skip_lists+=("$gateway_skip_list")
  cat "${skip_lists[@]}" | grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' >"$work_dir/skipfile" || true
  if [[ -s "$work_dir/skipfile" ]]; then
    skip_args=(--skipfile "$work_dir/skipfile")
    log "skipping $(wc -l <"$work_dir/skipfile") test(s) listed in tests/redis-suite/skip.txt"
  fi
fi

tls_runtest_flag=()
((tls)) && tls_runtest_flag=(--tls)

declare -A count_ok count_err count_exception count_skip count_ignore unit_result
failed_units=0

for unit in "${units[@]}"; do
  unit_dir="$work_dir/$(echo "$unit" | tr '/' '_')"
  mkdir -p "$unit_dir"
  count_ok[$unit]=0 count_err[$unit]=0 count_exception[$unit]=0
  count_skip[$unit]=0 count_ignore[$unit]=0

  unit_started_s=$SECONDS
  log "$unit: starting a fresh $server_kind"
  if ! start_server "$unit_dir"; then
    unit_result[$unit]="no server"
    failed_units=$((failed_units + 1))
    stop_server
    continue
  fi
  host="${server_address%:*}"
  port="${server_address##*:}"
  log "$unit: runtest against $server_kind at $host:$port"

  # In the background with `wait`, so that a signal to this script runs its
  # trap at once (bash defers traps until a foreground command ends).
  (cd "$suite_dir" && TERM=dumb exec timeout --kill-after=10 "$unit_timeout_s" \
    ./runtest --host "$host" --port "$port" "${runtest_flags[@]}" "${tls_runtest_flag[@]}" \
    "${skip_args[@]}" "${extra_runtest_args[@]}" --single "$unit") >"$unit_dir/runtest.log" 2>&1 </dev/null &
  runtest_pid=$!
  runtest_status=0
  wait "$runtest_pid" || runtest_status=$?
  runtest_pid=""
  stop_server

  # runtest colours its status words when TERM looks like xterm: strip escapes.
  sed 's/\x1b\[[0-9;]*m//g' "$unit_dir/runtest.log" >"$unit_dir/runtest.plain"
  for status in ok err exception skip ignore; do
    n="$(grep -c "^\[$status\]: " "$unit_dir/runtest.plain" || true)"
    case "$status" in
      ok) count_ok[$unit]=$n ;;
      err) count_err[$unit]=$n ;;
      exception) count_exception[$unit]=$n ;;
      skip) count_skip[$unit]=$n ;;
      ignore) count_ignore[$unit]=$n ;;
    esac
  done

  result=pass
  if ((runtest_status == 124 || runtest_status == 137)); then
    result="timeout"
  elif ((count_err[$unit] > 0 || count_exception[$unit] > 0)); then
    result=FAIL
  elif ((runtest_status != 0)); then
    result="exit $runtest_status"
  elif ((count_ok[$unit] == 0)); then
    result="no test ran"
  fi
  unit_result[$unit]="$result"

  if [[ "$result" != pass ]]; then
    failed_units=$((failed_units + 1))
    log "$unit: $result; runtest output:"
    cat "$unit_dir/runtest.plain"
    if [[ "$server_kind" != redis ]]; then
      log "$unit: last lines of polis dev output:"
      tail -n 40 "$unit_dir/server.log"
    fi
  elif ((verbose)); then
    cat "$unit_dir/runtest.plain"
  fi
  log "$unit: $result (ok ${count_ok[$unit]}, err ${count_err[$unit]}, exception ${count_exception[$unit]}, skip ${count_skip[$unit]}) in $((SECONDS - unit_started_s)) s"
done

echo
printf 'Redis 7.0.15 TCL suite against %s%s\n' "$server_kind" "$( ((tls)) && echo ' over TLS')"
printf '%-20s %5s %5s %9s %5s %7s  %s\n' unit ok err exception skip ignored result
total_ok=0 total_err=0 total_exception=0 total_skip=0 total_ignore=0
for unit in "${units[@]}"; do
  printf '%-20s %5d %5d %9d %5d %7d  %s\n' "$unit" "${count_ok[$unit]}" "${count_err[$unit]}" \
    "${count_exception[$unit]}" "${count_skip[$unit]}" "${count_ignore[$unit]}" "${unit_result[$unit]}"
  total_ok=$((total_ok + count_ok[$unit]))
  total_err=$((total_err + count_err[$unit]))
  total_exception=$((total_exception + count_exception[$unit]))
  total_skip=$((total_skip + count_skip[$unit]))
  total_ignore=$((total_ignore + count_ignore[$unit]))
done
printf '%-20s %5d %5d %9d %5d %7d  %d/%d units passed\n' total "$total_ok" "$total_err" \
  "$total_exception" "$total_skip" "$total_ignore" $((${#units[@]} - failed_units)) "${#units[@]}"

((failed_units == 0))
