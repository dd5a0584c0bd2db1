# Sourced by the measuring scripts (profile.sh, bench-gateway.sh):
# start_dev FLAGS... runs `$polis dev FLAGS...` in the background with its
# output in $out/dev.log, sets $dev to its PID, stops it when the script
# exits, and waits (60 s at most) until it says it is ready.
start_dev() {
  "$polis" dev "$@" > "$out/dev.log" 2>&1 &
  dev=$!
  trap 'kill -INT $dev 2>/dev/null || true; wait $dev 2>/dev/null || true' EXIT
  for _ in $(seq 1 300); do
    grep -q "polis dev: ready" "$out/dev.log" && return 0
    kill -0 $dev 2>/dev/null || { cat "$out/dev.log"; exit 1; }
    sleep 0.2
  done
  echo "$(basename "$0"): polis dev did not get ready (see $out/dev.log)"
  exit 1
}
