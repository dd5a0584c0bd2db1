#!/bin/sh
# The polis node of one StatefulSet pod (docs/operations.md, "Kubernetes").
#
#   polis-entrypoint.sh [server]   starts the node (the container's command)
#   polis-entrypoint.sh pre-stop   the preStop hook: fails while the cluster
#                                  map still places shard replicas on the node
#
# The pod's name (its hostname, `polis-3`) gives everything else: node id
# ordinal + 1, and the addresses `polis-3.$POLIS_PEER_DOMAIN:PORT` the node
# listens on and is known by (polis announces the addresses it binds).
#
# A data directory without polis's identity file is a new node:
#   pod 0    --init, with the first POLIS_INITIAL_NODES pods as --member:
#            creates the cluster map unless a member already has one (then
#            it registers with the cluster instead);
#   others   --join the first pods' peer addresses: registers with the
#            running cluster, then receives replicas.
# A data directory with one is a restarted node: it starts with no flags
# (polis ignores --init, --join and --member once it has an identity).
#
# Environment (set by the StatefulSet):
#   POLIS_PEER_DOMAIN    polis-peers.<namespace>.svc.<cluster domain>
#   POLIS_DATA_DIR       the node's data directory, on its volume
#   POLIS_INITIAL_NODES  how many pods the cluster was created with (3)
#   POLIS_RESP_PORT, POLIS_ADMIN_PORT, POLIS_PEER_PORT (7000, 7100, 7200)
#   POLIS_USER, POLIS_PASSWORD  for pre-stop, once the admin API wants them
set -eu

say() { printf 'polis-entrypoint: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

pod=$(uname -n)
ordinal=${pod##*-}
set_name=${pod%-*}
case "$ordinal" in
'' | *[!0-9]*) die "hostname '$pod' does not end in a StatefulSet ordinal (polis-0, polis-1, ...)" ;;
esac
[ "$set_name" != "$pod" ] || die "hostname '$pod' is not a StatefulSet pod's name"
domain=${POLIS_PEER_DOMAIN:?set POLIS_PEER_DOMAIN to the headless Service domain, polis-peers.NAMESPACE.svc.cluster.local}
resp_port=${POLIS_RESP_PORT:-7000}
admin_port=${POLIS_ADMIN_PORT:-7100}
peer_port=${POLIS_PEER_PORT:-7200}
initial=${POLIS_INITIAL_NODES:-3}
node_id=$((ordinal + 1))
host="$pod.$domain"

# The address of the pod with ordinal $1 on port $2.
addr_of() { printf '%s-%s.%s:%s' "$set_name" "$1" "$domain" "$2"; }

# Prints "STATE REPLICAS" of node $node_id as the admin API at $1 sees it
# (`absent` when the map has no such node); fails when it does not answer.
# `polis status` prints a table of nodes: columns are found by their names.
node_in_map() {
  table=$(polis status --node "$1" 2>/dev/null) || return 1
  printf '%s\n' "$table" | awk -v id="$node_id" '
    $1 == "NODE" && $2 == "UP" { for (i = 1; i <= NF; i++) column[$i] = i; in_nodes = 1; next }
    in_nodes && NF == 0 { exit }
    in_nodes && $1 == id { print $column["STATE"], $column["REPLICAS"]; found = 1; exit }
    END { if (!found) print "absent" }'
}

pre_stop() {
  # This node's admin API first; once removed, the node has stopped, and
  # the first pods answer for it. Bounded: at most POLIS_INITIAL_NODES + 1.
  candidates="$host:$admin_port"
  i=0
  while [ "$i" -lt "$initial" ]; do
    [ "$i" -eq "$ordinal" ] || candidates="$candidates $(addr_of "$i" "$admin_port")"
    i=$((i + 1))
  done
  for admin in $candidates; do
    seen=$(node_in_map "$admin") || continue
    state=${seen% *}
    replicas=${seen#* }
    if [ "$seen" = absent ]; then
      say "node $node_id ($pod) is not in the cluster map ($admin): nothing to move"
      exit 0
    fi
    if [ "$state" = removed ] || [ "$replicas" = 0 ]; then
      say "node $node_id ($pod) is $state and holds no shard replica ($admin): it may stop"
      exit 0
    fi
    say "refusing: node $node_id ($pod) is $state and still holds $replicas shard replicas ($admin)." \
      "remove-node first: polis cluster remove-node $node_id --node $admin," \
      "wait until it holds nothing, then scale the StatefulSet down"
    exit 1
  done
  die "refusing: no admin API answered ($candidates), so whether node $node_id ($pod) still holds" \
    "shard replicas is unknown. remove-node first (polis cluster remove-node $node_id) if it is leaving"
}

server() {
  data=${POLIS_DATA_DIR:?set POLIS_DATA_DIR to a directory on the pod volume}
  mkdir -p "$data"
  export POLIS_NODE_ID="$node_id"
  export POLIS_RESP_ADDR="$host:$resp_port"
  export POLIS_ADMIN_ADDR="$host:$admin_port"
  export POLIS_PEER_ADDR="$host:$peer_port"
  # polis's identity file (crates/polis-server/src/bootstrap.rs): written
  # once the node has a place in a cluster. A fresh volume's lost+found,
  # or the token of a start that never registered, do not count.
  if [ -f "$data/node-identity" ]; then
    say "$pod is node $node_id; $data holds its identity: starting it"
    exec polis server
  fi
  if [ "$ordinal" -eq 0 ]; then
    members=""
    i=0
    while [ "$i" -lt "$initial" ]; do
      member="$((i + 1))=$(addr_of "$i" "$peer_port")/$(addr_of "$i" "$resp_port")/$(addr_of "$i" "$admin_port")"
      members="${members:+$members,}$member"
      i=$((i + 1))
    done
    export POLIS_MEMBERS="$members"
    say "$pod is node $node_id; $data is empty: --init with members $members"
    exec polis server --init
  fi
  seeds=""
  i=0
  while [ "$i" -lt "$initial" ]; do
    [ "$i" -eq "$ordinal" ] || seeds="${seeds:+$seeds,}$(addr_of "$i" "$peer_port")"
    i=$((i + 1))
  done
  say "$pod is node $node_id; $data is empty: --join $seeds"
  exec polis server --join "$seeds"
}

case "${1:-server}" in
server) server ;;
pre-stop) pre_stop ;;
*) die "usage: $0 [server|pre-stop]" ;;
esac
