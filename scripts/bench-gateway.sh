#!/usr/bin/env bash
# What the gateway and TLS cost, with redis-benchmark (50 connections, SET
# and GET, one request in flight each), on one `polis dev --tls` cluster
# of 3 nodes and 3 shards, the four ways taken in turns, ROUNDS times:
#
#   direct       redis-benchmark --cluster against the nodes (a cluster client)
#   gateway      through the gateway's plaintext port
#   gateway-tls  through the gateway's TLS port (--tls --cacert)
#   node-tls     one node's TLS port against its plaintext port, on keys of
#   node-plain   the slots it leads alone (no MOVED: the TCL client's way)
#
# and, when nutcracker (twemproxy, Debian's package) and redis-server are
# installed, what a reference proxy costs on the same machine, same run:
#
#   redis        redis-benchmark against a redis-server
#   twemproxy    through nutcracker in front of that redis-server
#
# Prints every run and the ratios: gateway / direct (target: at least 0.9x
# and at most +0.3 ms p99) and TLS / plaintext (target: at least 0.8x).
#
#   scripts/bench-gateway.sh [OUT] [ROUNDS] [REQUESTS]   # default ./bench-gateway 2 100000
#
# Needs a release build (cargo build --release -j2 -p polis) and
# redis-benchmark; nutcracker and redis-server for the reference. Bounded:
# each run is REQUESTS requests.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
polis="$root/target/release/polis"
command -v redis-benchmark > /dev/null \
  || { echo "bench-gateway: needs redis-benchmark and redis-cli (scripts/install-deps.sh installs them)"; exit 1; }
[ -x "$polis" ] || { echo "bench-gateway: needs $polis (cargo build --release -j2 -p polis)"; exit 1; }
out=$(mkdir -p "${1:-bench-gateway}" && cd "${1:-bench-gateway}" && pwd)
rounds=${2:-2}
requests=${3:-100000}
port=$((20000 + RANDOM % 20000))
gateway=$((port + 300))
data="$out/data"
rm -rf "$data"

# shellcheck source=scripts/dev-start.sh
source "$root/scripts/dev-start.sh"
start_dev --tls --nodes 3 --shards 3 --port "$port" --data "$data"

ca="$data/tls/ca.crt"
# A key tag node 1 leads alone: node-tls and node-plain need no MOVED.
tag=""
for i in $(seq 1 2000); do
  if redis-cli -p "$port" set "{t$i}probe" x 2>/dev/null | grep -q OK; then tag="{t$i}"; break; fi
done
[ -n "$tag" ] || { echo "bench-gateway: node 1 leads no slot"; exit 1; }

value=$(head -c 100 /dev/zero | tr '\0' v)
run() { # NAME redis-benchmark-args... (ends with -t set,get or a command)
  local name=$1; shift
  redis-benchmark -c 50 -n "$requests" -r 100000 --csv "$@" 2>/dev/null \
    | tr -d '"' | awk -F, -v name="$name" '{split($1, w, " ")} w[1]=="SET"||w[1]=="GET" {printf "%s %s %.0f %.3f\n", name, w[1], $2, $7}' \
    | tee -a "$out/runs.txt"
}
node() { # NAME redis-benchmark-args...: SET then GET on node 1's own slots
  run "$@" SET "$tag:__rand_int__" "$value"
  run "$@" GET "$tag:__rand_int__"
}
: > "$out/runs.txt"
reference=""
redis_port=$((port + 500))
proxy_port=$((port + 501))
if command -v nutcracker > /dev/null && command -v redis-server > /dev/null; then
  reference=yes
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no > "$out/redis.log" 2>&1 &
  redis_pid=$!
  printf 'reference:\n  listen: 127.0.0.1:%s\n  hash: fnv1a_64\n  distribution: ketama\n  redis: true\n  servers:\n   - 127.0.0.1:%s:1\n' \
    "$proxy_port" "$redis_port" > "$out/nutcracker.yml"
  nutcracker -c "$out/nutcracker.yml" -o "$out/nutcracker.log" &
  proxy_pid=$!
  trap 'kill $proxy_pid $redis_pid 2>/dev/null || true; kill -INT $dev 2>/dev/null || true; wait $dev 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do redis-cli -p "$proxy_port" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
else
  echo "bench-gateway: no nutcracker or redis-server: the reference proxy is not measured (apt-get install nutcracker redis-server)"
fi
echo "name test requests/s p99_ms"
for round in $(seq 1 "$rounds"); do
  echo "# round $round"
  run direct --cluster -h 127.0.0.1 -p "$port" -d 100 -t set,get
  run gateway -h 127.0.0.1 -p "$gateway" -d 100 -t set,get
  if [ -n "$reference" ]; then
    run redis -h 127.0.0.1 -p "$redis_port" -d 100 -t set,get
    run twemproxy -h 127.0.0.1 -p "$proxy_port" -d 100 -t set,get
  fi
  run gateway-tls --tls --cacert "$ca" -h 127.0.0.1 -p $((gateway + 1)) -d 100 -t set,get
  node node-plain -h 127.0.0.1 -p "$port"
  node node-tls --tls --cacert "$ca" -h 127.0.0.1 -p $((port + 400))
done

ratio() { # NAME BASE TEST
  awk -v a="$1" -v b="$2" -v t="$3" '
    $1==a && $2==t {ra+=$3; pa+=$4; na++}
    $1==b && $2==t {rb+=$3; pb+=$4; nb++}
    END { if (na && nb) printf "%s / %s %s: %.3fx requests/s, p99 %+.3f ms\n", a, b, t, (ra/na)/(rb/nb), pa/na-pb/nb }' "$out/runs.txt"
}
for test in SET GET; do
  ratio gateway direct "$test"
  ratio gateway-tls gateway "$test"
  ratio node-tls node-plain "$test"
  ratio twemproxy redis "$test"
done
