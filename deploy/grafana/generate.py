"""Writes deploy/grafana/polis-dashboard.json: edit the panels here, then
run `python3 deploy/grafana/generate.py > deploy/grafana/polis-dashboard.json`
(tests/python/test_dashboard_json.py checks the two agree)."""
import json

SEL = '{job=~"$job", instance=~"$instance"}'
DS = {"type": "prometheus", "uid": "${datasource}"}

panels = []
next_id = [1]
y = [0]
x = [0]
row_h = [0]


def new_id():
    value = next_id[0]
    next_id[0] += 1
    return value


def row(title):
    if x[0]:
        y[0] += row_h[0]
        x[0] = 0
    panels.append({"type": "row", "id": new_id(), "title": title, "collapsed": False,
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": y[0]}, "panels": []})
    y[0] += 1
    row_h[0] = 0


def panel(kind, title, description, targets, unit="short", w=8, h=8, extra=None, legend=True):
    if x[0] + w > 24:
        y[0] += row_h[0]
        x[0] = 0
        row_h[0] = 0
    refs = "ABCDEFGH"
    built = {
        "type": kind,
        "id": new_id(),
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"h": h, "w": w, "x": x[0], "y": y[0]},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [
            {"refId": refs[i], "datasource": DS, "expr": expr % {"s": SEL}, "legendFormat": legend_format,
             "range": True}
            for i, (expr, legend_format) in enumerate(targets)
        ],
    }
    if kind == "timeseries":
        built["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "line", "lineWidth": 1,
                                                       "fillOpacity": 0, "showPoints": "never"}
        built["options"] = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": legend},
                            "tooltip": {"mode": "multi", "sort": "desc"}}
    elif kind == "stat":
        built["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                            "colorMode": "value", "graphMode": "area", "textMode": "auto",
                            "orientation": "auto", "justifyMode": "auto"}
    elif kind == "state-timeline":
        built["options"] = {"showValue": "auto", "mergeValues": True, "rowHeight": 0.9,
                            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False},
                            "tooltip": {"mode": "single", "sort": "none"}}
    if extra:
        for key, value in extra.items():
            if key == "defaults":
                built["fieldConfig"]["defaults"].update(value)
            else:
                built[key] = value
    panels.append(built)
    x[0] += w
    row_h[0] = max(row_h[0], h)


def thresholds(*steps):
    return {"thresholds": {"mode": "absolute",
                           "steps": [{"color": color, "value": value} for color, value in steps]}}


# --- Cluster overview -------------------------------------------------------
row("Cluster overview")
panel("stat", "Nodes up",
      "Nodes whose admin port answered Prometheus's last scrape (up), out of the nodes scraped. "
      "Fewer than all: see the PolisNodeDown runbook in docs/operations.md.",
      [('sum(up%(s)s)', "up"), ('count(up%(s)s)', "scraped")], w=4, h=5,
      extra={"options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                         "colorMode": "value", "graphMode": "none", "textMode": "value_and_name",
                         "orientation": "horizontal", "justifyMode": "auto"}})
panel("stat", "Shards serving (lowest view)",
      "The fewest shards any node sees with a leader serving their slots (polis_shards_serving). "
      "Below the cluster's shard count, some slots refuse reads and writes.",
      [('min(polis_shards_serving%(s)s)', "serving")], w=4, h=5)
panel("stat", "Keys",
      "Keys in the cluster: polis_keys counts the keys of the shards each node leads, so the sum "
      "over the nodes counts each key once.",
      [('sum(polis_keys%(s)s)', "keys")], w=4, h=5)
panel("stat", "Cluster map versions",
      "The lowest and highest cluster map version the nodes route from (polis_map_version). "
      "Different for long: a node does not learn map changes.",
      [('min(polis_map_version%(s)s)', "lowest"), ('max(polis_map_version%(s)s)', "highest")], w=4, h=5,
      extra={"options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                         "colorMode": "value", "graphMode": "none", "textMode": "value_and_name",
                         "orientation": "horizontal", "justifyMode": "auto"}})
panel("stat", "Raft groups parked",
      "Raft groups parked while idle, summed over the nodes (polis_groups_parked). Parked groups "
      "wake on their next request.",
      [('sum(polis_groups_parked%(s)s)', "parked")], w=4, h=5)
panel("stat", "Commands per second",
      "Commands the cluster processed per second (rate of polis_commands_total over 1m, summed over the nodes).",
      [('sum(rate(polis_commands_total%(s)s[1m]))', "commands/s")], unit="ops", w=4, h=5)
panel("timeseries", "Shards serving, per node",
      "Shards with a leader serving their slots, as each node knows (polis_shards_serving). "
      "Nodes disagreeing for long: one of them does not hear from the leaders.",
      [('polis_shards_serving%(s)s', "{{instance}}")])
panel("timeseries", "Shards led and hosted, per node",
      "Shards each node leads (polis_shards_led) and shard replicas it holds (polis_shards_hosted). "
      "Leadership piling up on one node concentrates the write load on it.",
      [('polis_shards_led%(s)s', "led {{instance}}"), ('polis_shards_hosted%(s)s', "hosted {{instance}}")])
panel("timeseries", "Cluster map version, per node",
      "The version of the cluster map each node routes from (polis_map_version). It steps up with "
      "every map change (resharding, added nodes, replica moves).",
      [('polis_map_version%(s)s', "{{instance}}")], extra={"defaults": {"decimals": 0}})

# --- Throughput -------------------------------------------------------------
row("Throughput")
panel("timeseries", "Commands per second, per node",
      "Commands each node processed per second (rate of polis_commands_total over 1m).",
      [('sum by (instance) (rate(polis_commands_total%(s)s[1m]))', "{{instance}}")], unit="ops")
panel("timeseries", "Top 10 commands",
      "The ten commands called most per second over the cluster (rate of polis_command_calls_total "
      "over 1m, by command; subcommands as container|subcommand).",
      [('topk(10, sum by (command) (rate(polis_command_calls_total%(s)s[1m])))', "{{command}}")], unit="ops")
panel("timeseries", "Writes proposed and reads served",
      "Per second over the cluster: writes proposed to Raft (polis_writes_proposed_total), reads "
      "served after a ReadIndex round (polis_linearizable_reads_total) and reads served from a "
      "replica's own copy under READONLY (polis_local_reads_total).",
      [('sum(rate(polis_writes_proposed_total%(s)s[1m]))', "writes proposed"),
       ('sum(rate(polis_linearizable_reads_total%(s)s[1m]))', "linearizable reads"),
       ('sum(rate(polis_local_reads_total%(s)s[1m]))', "local reads")], unit="ops")
panel("timeseries", "Redirects per second, per node",
      "MOVED and other redirect replies per second (rate of polis_redirects_total over 1m). "
      "Sustained redirects: clients route from a stale slot map.",
      [('sum by (instance) (rate(polis_redirects_total%(s)s[1m]))', "{{instance}}")], unit="ops", w=24, h=6)

# --- Latency ----------------------------------------------------------------
row("Latency")
panel("timeseries", "Command latency p50 and p99",
      "The 50th and 99th percentile of the time commands took over the cluster, from "
      "polis_command_duration_seconds over 1m (a pipeline's time is shared out over its commands).",
      [('histogram_quantile(0.50, sum by (le) (rate(polis_command_duration_seconds_bucket%(s)s[1m])))', "p50"),
       ('histogram_quantile(0.99, sum by (le) (rate(polis_command_duration_seconds_bucket%(s)s[1m])))', "p99")],
      unit="s")
panel("timeseries", "p99 latency by command",
      "The 99th percentile of each command's time over 1m (polis_command_duration_seconds by command).",
      [('histogram_quantile(0.99, sum by (le, command) (rate(polis_command_duration_seconds_bucket%(s)s[1m])))',
        "{{command}}")], unit="s")
panel("timeseries", "p50 latency by command",
      "The median of each command's time over 1m (polis_command_duration_seconds by command).",
      [('histogram_quantile(0.50, sum by (le, command) (rate(polis_command_duration_seconds_bucket%(s)s[1m])))',
        "{{command}}")], unit="s")
panel("timeseries", "p99 command latency, per node",
      "The 99th percentile of the time commands took on each node over 1m: one slow node stands out here.",
      [('histogram_quantile(0.99, sum by (le, instance) (rate(polis_command_duration_seconds_bucket%(s)s[1m])))',
        "{{instance}}")], unit="s", w=12)
panel("timeseries", "Mean latency by command",
      "Each command's mean time over 1m: the rate of polis_command_duration_seconds_sum over the "
      "rate of polis_command_duration_seconds_count.",
      [('sum by (command) (rate(polis_command_duration_seconds_sum%(s)s[1m])) / '
        'sum by (command) (rate(polis_command_duration_seconds_count%(s)s[1m]))', "{{command}}")],
      unit="s", w=12)

# --- Errors -----------------------------------------------------------------
row("Errors")
panel("timeseries", "Error replies by code",
      "Error replies per second over the cluster by their Redis prefix (ERR, WRONGTYPE, MOVED, "
      "CLUSTERDOWN, ...), from polis_errors_total over 1m.",
      [('sum by (code) (rate(polis_errors_total%(s)s[1m]))', "{{code}}")], unit="ops")
panel("timeseries", "Error replies per node",
      "Error replies each node sent per second (rate of polis_error_replies_total over 1m).",
      [('sum by (instance) (rate(polis_error_replies_total%(s)s[1m]))', "{{instance}}")], unit="ops")
panel("timeseries", "Raft requests failed",
      "Proposals and ReadIndex rounds that failed per second on each node (polis_raft_requests_failed_total): "
      "no quorum in time, a group stopping; the client got CLUSTERDOWN. Redirects are not counted.",
      [('sum by (instance) (rate(polis_raft_requests_failed_total%(s)s[1m]))', "{{instance}}")], unit="ops",
      extra={"defaults": thresholds(("green", None), ("red", 0.001))})
panel("timeseries", "Failed calls by command (top 10)",
      "Calls that ran and answered an error, per second, by command (polis_command_failed_calls_total).",
      [('topk(10, sum by (command) (rate(polis_command_failed_calls_total%(s)s[1m])))', "{{command}}")],
      unit="ops")
panel("timeseries", "Rejected calls by command (top 10)",
      "Calls refused before they ran (arity, routing, a redirect), per second, by command "
      "(polis_command_rejected_calls_total).",
      [('topk(10, sum by (command) (rate(polis_command_rejected_calls_total%(s)s[1m])))', "{{command}}")],
      unit="ops")
panel("timeseries", "Protocol errors and TLS handshake failures",
      "Clients closed for a protocol error (polis_protocol_errors_total) and TLS clients refused at "
      "their handshake (polis_tls_handshake_failures_total), per second per node.",
      [('sum by (instance) (rate(polis_protocol_errors_total%(s)s[1m]))', "protocol {{instance}}"),
       ('sum by (instance) (rate(polis_tls_handshake_failures_total%(s)s[1m]))', "TLS {{instance}}")],
      unit="ops")

# --- Raft -------------------------------------------------------------------
row("Raft")
panel("state-timeline", "Shard leaders",
      "The node leading each shard, as the nodes know it (the highest polis_shard_leader_node over "
      "the nodes; 0: no leader known, the shard's slots refuse reads and writes).",
      [('max by (shard) (polis_shard_leader_node%(s)s)', "shard {{shard}}")], unit="none", w=12,
      extra={"defaults": {"decimals": 0, "color": {"mode": "palette-classic"}}})
panel("timeseries", "Raft term by shard",
      "The Raft term of each shard (polis_raft_term, highest over the nodes). Each election raises "
      "it: a term climbing often is a shard changing leaders (PolisFrequentLeaderChanges).",
      [('max by (shard) (polis_raft_term%(s)s)', "shard {{shard}}")], unit="none", w=12,
      extra={"defaults": {"decimals": 0}})
panel("timeseries", "Committed and applied index by shard",
      "The commit index (polis_raft_committed_index), applied index (polis_raft_applied_index) and "
      "last log index (polis_raft_last_log_index) of each shard, highest over the nodes.",
      [('max by (shard) (polis_raft_committed_index%(s)s)', "committed shard {{shard}}"),
       ('max by (shard) (polis_raft_applied_index%(s)s)', "applied shard {{shard}}"),
       ('max by (shard) (polis_raft_last_log_index%(s)s)', "last log shard {{shard}}")], unit="none")
panel("timeseries", "Entries committed but not applied",
      "Per shard, the commit index minus the applied index on the node reporting them "
      "(polis_raft_committed_index - polis_raft_applied_index): a growing gap is a state machine "
      "falling behind its log.",
      [('max by (shard) (polis_raft_committed_index%(s)s - polis_raft_applied_index%(s)s)', "shard {{shard}}")],
      unit="none")
panel("timeseries", "Replica lag",
      "Log entries each replica is behind its shard's leader (polis_replica_lag_entries, reported by "
      "the leader, by shard and the replica's node).",
      [('max by (shard, node) (polis_replica_lag_entries%(s)s)', "shard {{shard}} node {{node}}")],
      unit="none")

panel("timeseries", "Leader changes by shard (15m)",
      "Leader changes each shard's replicas saw in the last 15 minutes (increase of "
      "polis_raft_leader_changes_seen_total, highest over the nodes). Each costs the shard's clients "
      "an election timeout.",
      [('max by (shard) (increase(polis_raft_leader_changes_seen_total%(s)s[15m]))', "shard {{shard}}")],
      unit="none")
panel("timeseries", "Proposal latency p50 and p99, per node",
      "From a proposal on its leader to its applied reply: the commit (a quorum has the entry on disk) "
      "and the apply (polis_raft_proposal_duration_seconds over 1m).",
      [('histogram_quantile(0.99, sum by (le, instance) (rate(polis_raft_proposal_duration_seconds_bucket%(s)s[1m])))',
        "p99 {{instance}}"),
       ('histogram_quantile(0.50, sum by (le, instance) (rate(polis_raft_proposal_duration_seconds_bucket%(s)s[1m])))',
        "p50 {{instance}}")], unit="s")
panel("timeseries", "Apply latency p99, per node",
      "The 99th percentile of the time applying one log entry took on each node over 1m "
      "(polis_raft_apply_duration_seconds): a slow apply holds every write behind it.",
      [('histogram_quantile(0.99, sum by (le, instance) (rate(polis_raft_apply_duration_seconds_bucket%(s)s[1m])))',
        "{{instance}}")], unit="s")

# --- Storage ----------------------------------------------------------------
row("Storage")
panel("timeseries", "Fsync latency p50 and p99, per node",
      "The 50th and 99th percentile of the time each log fsync (group commit) took on each node over "
      "1m (polis_fsync_duration_seconds). Every write waits for one.",
      [('histogram_quantile(0.99, sum by (le, instance) (rate(polis_fsync_duration_seconds_bucket%(s)s[1m])))',
        "p99 {{instance}}"),
       ('histogram_quantile(0.50, sum by (le, instance) (rate(polis_fsync_duration_seconds_bucket%(s)s[1m])))',
        "p50 {{instance}}")], unit="s")
panel("timeseries", "Fsyncs per second, per node",
      "Log fsyncs (group commits) each node made per second (rate of polis_fsyncs_total over 1m).",
      [('sum by (instance) (rate(polis_fsyncs_total%(s)s[1m]))', "{{instance}}")], unit="ops")
panel("timeseries", "Appends per fsync, per node",
      "Log appends each fsync made durable, on average over 1m: rate(polis_fsync_appends_total) / "
      "rate(polis_fsyncs_total). Above 1, group commit batches writes.",
      [('sum by (instance) (rate(polis_fsync_appends_total%(s)s[1m])) / '
        'sum by (instance) (rate(polis_fsyncs_total%(s)s[1m]))', "{{instance}}")], unit="none")

# --- Clients ----------------------------------------------------------------
row("Clients")
panel("timeseries", "Connected clients, per node",
      "Clients connected to each node (polis_connected_clients).",
      [('polis_connected_clients%(s)s', "{{instance}}")], unit="none")
panel("timeseries", "New connections per second, per node",
      "Client connections each node accepted per second (rate of polis_connections_received_total "
      "over 1m). High with few clients connected: clients that do not reuse connections.",
      [('sum by (instance) (rate(polis_connections_received_total%(s)s[1m]))', "{{instance}}")], unit="ops")
panel("timeseries", "Connections rejected (maxclients)",
      "Client connections each node refused at maxclients in the last 5 minutes "
      "(increase of polis_connections_rejected_total).",
      [('sum by (instance) (increase(polis_connections_rejected_total%(s)s[5m]))', "{{instance}}")],
      unit="none", extra={"defaults": thresholds(("green", None), ("red", 1))})

# --- Keys -------------------------------------------------------------------
row("Keys")
panel("timeseries", "Keys, per node",
      "Keys in the shards each node leads (polis_keys): a node's count moves with the leadership of "
      "its shards, not only with writes.",
      [('polis_keys%(s)s', "{{instance}}")], unit="none", w=12)
panel("timeseries", "Keys in the cluster",
      "The keys of the cluster: polis_keys summed over the nodes (each shard counted on its leader).",
      [('sum(polis_keys%(s)s)', "keys")], unit="none", w=12)

panel("timeseries", "Memory used and maxmemory, per node",
      "The keyspace footprint of every shard replica on each node (polis_memory_used_bytes) against "
      "its maxmemory (polis_memory_max_bytes; 0: no limit).",
      [('polis_memory_used_bytes%(s)s', "used {{instance}}"),
       ('polis_memory_max_bytes%(s)s > 0', "maxmemory {{instance}}")], unit="bytes", w=12)
panel("timeseries", "Keys expired and evicted per second",
      "Keys removed at their expiry (polis_expired_keys_total) and evicted for maxmemory "
      "(polis_evicted_keys_total) per second over the cluster, counted on each shard's leader.",
      [('sum(rate(polis_expired_keys_total%(s)s[1m]))', "expired"),
       ('sum(rate(polis_evicted_keys_total%(s)s[1m]))', "evicted")], unit="ops", w=12)

# --- Migrations and replica moves -------------------------------------------
row("Migrations and replica moves")
panel("timeseries", "Migrations and replica moves under way",
      "Slot migrations by phase (polis_migrations: copying, switched) and replicas joining or leaving "
      "their shards by phase (polis_replica_moves: adding, catching-up, leaving), highest over the nodes.",
      [('max by (phase) (polis_migrations%(s)s)', "migrations {{phase}}"),
       ('max by (phase) (polis_replica_moves%(s)s)', "replica moves {{phase}}")], unit="none")
panel("timeseries", "Migration progress",
      "The share of each migration's source keyspace the bulk copy has read (polis_migration_copied_ratio, "
      "on the node driving it, the source's leader).",
      [('max by (source, target) (polis_migration_copied_ratio%(s)s)', "{{source}} -> {{target}}")],
      unit="percentunit")
panel("timeseries", "Migration bytes per second",
      "Bytes each migration ships to its target per second (rate of polis_migration_sent_bytes), and "
      "its age (polis_migration_seconds; PolisMigrationStuck fires past 30 minutes with nothing shipped).",
      [('max by (source, target) (rate(polis_migration_sent_bytes%(s)s[1m]))', "{{source}} -> {{target}}"),
       ('max by (source, target) (polis_migration_seconds%(s)s)', "age {{source}} -> {{target}} (s)")],
      unit="Bps")

# --- Eventual namespaces ----------------------------------------------------
row("Eventual namespaces")
panel("timeseries", "Eventual reads and writes",
      "Eventual (AP) reads and writes each node coordinated per second (polis_eventual_reads_total, "
      "polis_eventual_writes_total), and requests it forwarded to a replica of their slot "
      "(polis_eventual_forwarded_total).",
      [('sum by (instance) (rate(polis_eventual_writes_total%(s)s[1m]))', "writes {{instance}}"),
       ('sum by (instance) (rate(polis_eventual_reads_total%(s)s[1m]))', "reads {{instance}}"),
       ('sum by (instance) (rate(polis_eventual_forwarded_total%(s)s[1m]))', "forwarded {{instance}}")],
      unit="ops")
panel("timeseries", "Eventual requests refused or unknown",
      "Per second over the cluster: writes answered OUTCOMEUNKNOWN, fewer than W replicas acknowledging "
      "(polis_eventual_outcome_unknown_total); reads refused, fewer than R replicas answering "
      "(polis_eventual_reads_short_total); merges refused as stamped before the purge horizon "
      "(polis_eventual_stale_refused_total); remote timestamps refused as too far ahead "
      "(polis_eventual_clock_refused_total).",
      [('sum(rate(polis_eventual_outcome_unknown_total%(s)s[1m]))', "outcome unknown"),
       ('sum(rate(polis_eventual_reads_short_total%(s)s[1m]))', "reads short"),
       ('sum(rate(polis_eventual_stale_refused_total%(s)s[1m]))', "stale refused"),
       ('sum(rate(polis_eventual_clock_refused_total%(s)s[1m]))', "clock refused")], unit="ops")
panel("timeseries", "Read repairs",
      "Replicas sent merged states because a read found them behind, per second per node "
      "(polis_eventual_read_repairs_total).",
      [('sum by (instance) (rate(polis_eventual_read_repairs_total%(s)s[1m]))', "{{instance}}")], unit="ops")
panel("timeseries", "Hinted handoff",
      "Hints waiting for replicas that missed writes (polis_eventual_hints_pending), and hints stored, "
      "delivered and dropped past the hint window per second (polis_eventual_hints_written_total, "
      "polis_eventual_hints_delivered_total, polis_eventual_hints_expired_total), over the cluster.",
      [('sum(polis_eventual_hints_pending%(s)s)', "pending"),
       ('sum(rate(polis_eventual_hints_written_total%(s)s[1m]))', "written/s"),
       ('sum(rate(polis_eventual_hints_delivered_total%(s)s[1m]))', "delivered/s"),
       ('sum(rate(polis_eventual_hints_expired_total%(s)s[1m]))', "expired/s")], unit="none")
panel("timeseries", "Anti-entropy",
      "Anti-entropy rounds run per second (polis_eventual_anti_entropy_rounds_total) and the bytes of "
      "keys and states they sent and received (polis_eventual_anti_entropy_bytes_total), per node.",
      [('sum by (instance) (rate(polis_eventual_anti_entropy_rounds_total%(s)s[1m]))', "rounds/s {{instance}}"),
       ('sum by (instance) (rate(polis_eventual_anti_entropy_bytes_total%(s)s[1m]))', "bytes/s {{instance}}")],
      unit="none", extra={"fieldConfig": {"defaults": {"unit": "none", "custom": {
          "drawStyle": "line", "lineWidth": 1, "fillOpacity": 0, "showPoints": "never"}},
          "overrides": [{"matcher": {"id": "byRegexp", "options": "^bytes/s.*"},
                         "properties": [{"id": "unit", "value": "Bps"},
                                        {"id": "custom.axisPlacement", "value": "right"}]}]}})
panel("timeseries", "Tombstones and handoff",
      "Dead keys waiting out the quiet period (polis_eventual_tombstones_waiting), dead keys purged per "
      "second once every replica held the same state (polis_eventual_tombstones_purged_total), and keys "
      "handed to the new replicas of their slot per second (polis_eventual_handed_off_total).",
      [('sum(polis_eventual_tombstones_waiting%(s)s)', "waiting"),
       ('sum(rate(polis_eventual_tombstones_purged_total%(s)s[1m]))', "purged/s"),
       ('sum(rate(polis_eventual_handed_off_total%(s)s[1m]))', "handed off/s")], unit="none")
panel("timeseries", "Injected clock offset",
      "The clock offset injected into each node for fault injection (polis_eventual_clock_offset_seconds, "
      "its size either way). Anything but 0 outside a test is a mistake.",
      [('polis_eventual_clock_offset_seconds%(s)s', "{{instance}}")], unit="s", w=24, h=6)

dashboard = {
    "__inputs": [],
    "annotations": {"list": [{
        "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
        "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"}]},
    "description": "Operating a polis cluster: nodes and shards, throughput, latency, errors, Raft, "
                   "storage, clients, keys and eventual namespaces, from the metrics each node serves "
                   "at its admin port's /metrics. Checked against a live scrape by "
                   "tests/python/test_dashboard_json.py.",
    "editable": True,
    "fiscalYearStartMonth": 0,
    "graphTooltip": 1,
    "id": None,
    "links": [],
    "liveNow": False,
    "panels": panels,
    "refresh": "30s",
    "schemaVersion": 39,
    "tags": ["polis"],
    "templating": {"list": [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0, "includeAll": False, "multi": False, "options": [], "refresh": 1,
         "regex": "", "skipUrlSync": False},
        {"name": "job", "label": "Job", "type": "query", "datasource": DS,
         "definition": "label_values(polis_map_version, job)",
         "query": {"query": "label_values(polis_map_version, job)", "refId": "PrometheusVariableQueryEditor-job"},
         "current": {}, "hide": 0, "includeAll": False, "multi": False, "options": [], "refresh": 2,
         "regex": "", "skipUrlSync": False, "sort": 1},
        {"name": "instance", "label": "Node", "type": "query", "datasource": DS,
         "definition": 'label_values(polis_map_version{job=~"$job"}, instance)',
         "query": {"query": 'label_values(polis_map_version{job=~"$job"}, instance)',
                   "refId": "PrometheusVariableQueryEditor-instance"},
         "current": {}, "hide": 0, "includeAll": True, "allValue": ".*", "multi": True, "options": [],
         "refresh": 2, "regex": "", "skipUrlSync": False, "sort": 1},
    ]},
    "time": {"from": "now-1h", "to": "now"},
    "timepicker": {},
    "timezone": "",
    "title": "polis cluster",
    "uid": "polis-cluster",
    "version": 1,
    "weekStart": "",
}

print(json.dumps(dashboard, indent=2))
