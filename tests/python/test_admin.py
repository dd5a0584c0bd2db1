"""The admin HTTP endpoints and `polis status --json` agree on the cluster:
its nodes, its shards with their slots and leaders, each node's replicas."""

from __future__ import annotations

import json
import subprocess

from polis_cluster import slot_ranges

SLOT_COUNT = 16384


def test_status_names_nodes_shards_and_leaders(cluster):
    reference = cluster.wait_serving()
    assert reference["state"] == "ok"
    leaders = {shard["id"]: shard["leader_node"] for shard in reference["shards"]}
    # The default cluster: 3 shards, one led from each node.
    assert sorted(leaders.values()) == [1, 2, 3], leaders
    covered = sorted(rng for shard in reference["shards"] for rng in slot_ranges(shard))
    assert covered[0][0] == 0 and covered[-1][1] == SLOT_COUNT - 1
    assert sum(shard["slot_count"] for shard in reference["shards"]) == SLOT_COUNT
    for node in cluster.nodes:
        report = cluster.status(node)
        assert report["node_id"] == node.node_id
        assert report["map_version"] >= 1
        assert {entry["id"]: entry["resp_addr"] for entry in report["nodes"]} == {
            member.node_id: member.resp_addr for member in cluster.nodes
        }
        assert all(entry["up"] for entry in report["nodes"]), report["nodes"]
        for shard in report["shards"]:
            assert shard["leader_node"] == leaders[shard["id"]]
            assert shard["leader_resp_addr"] == cluster.node_by_id(leaders[shard["id"]]).resp_addr
            assert shard["term"] >= 1
            assert 0 <= shard["applied"] <= shard["last_log_index"]
            assert len(shard["replicas"]) == 3
        # The node's own replicas: the meta group's and one per shard.
        groups = sorted(replica["group_id"] for replica in report["replicas"])
        assert groups == [0, 1, 2, 3], groups


def test_http_status_matches_cli(cluster):
    cluster.wait_serving()
    for node in cluster.nodes:
        code, body = cluster.http_get(node, "/status")
        assert code == 200
        over_http = json.loads(body)
        assert over_http["node_id"] == node.node_id
        by_cli = cluster.status(node)
        assert [s["leader_node"] for s in over_http["shards"]] == [s["leader_node"] for s in by_cli["shards"]]


def test_polis_status_prints_every_shard(cluster):
    done = subprocess.run([str(cluster.binary), "status", "--node", cluster.nodes[0].admin_addr],
                          capture_output=True, text=True, timeout=10, check=True)
    lines = done.stdout.splitlines()
    assert any(line.startswith("SHARD") for line in lines), done.stdout
    for shard_id in (1, 2, 3):
        assert any(line.split()[:1] == [str(shard_id)] and "-" in line for line in lines), done.stdout


def test_health_endpoints(cluster):
    cluster.wait_serving()
    for node in cluster.nodes:
        assert cluster.http_get(node, "/health/live")[0] == 200
        assert cluster.http_get(node, "/health/ready")[0] == 200


def scrape(cluster, node) -> str:
    status, body = cluster.http_get(node, "/metrics")
    assert status == 200, body
    return body.decode()


def samples(text: str, name: str) -> dict[str, float]:
    """Returns the samples of metric `name`: their label text -> value."""
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, _, value = line.rpartition(" ")
            found[labels[len(name):]] = float(value)
    return found


def test_metrics_pass_promtool_and_count_commands_shards_and_latency(cluster, key):
    import redis

    cluster.wait_serving()
    key = key()
    leader = cluster.leader_for(key)
    connected = redis.Redis(host=leader.resp_addr.split(":")[0], port=leader.resp_port,
                            password=cluster.password(), socket_timeout=10)
    for index in range(20):
        assert connected.set(key, index)
    assert connected.get(key) == b"19"
    try:
        connected.incr(key + "-not-here")  # another shard's key: MOVED or a count
    except redis.ResponseError:
        pass
    connected.close()

    text = scrape(cluster, leader)
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                             text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    calls = samples(text, "polis_command_calls_total")
    assert calls.get('{command="set"}', 0) >= 20, calls
    buckets = samples(text, "polis_command_duration_seconds_bucket")
    infinite = [value for labels, value in buckets.items()
                if 'command="set"' in labels and 'le="+Inf"' in labels]
    assert infinite and infinite[0] >= 20, buckets
    assert samples(text, "polis_command_duration_seconds_count")['{command="set"}'] >= 20

    # Each shard is led by exactly one node, and every node agrees which.
    led = {}
    for node in cluster.nodes:
        for labels, value in samples(scrape(cluster, node), "polis_shard_led").items():
            led[labels] = led.get(labels, 0) + value
    assert len(led) == 3 and all(value == 1 for value in led.values()), led
    terms = samples(text, "polis_raft_term")
    assert terms and all(value >= 1 for value in terms.values()), terms
    # The leader's own proposals were timed (commit and apply), its
    # replicas' applies too; every shard it hosts counts leader changes.
    assert samples(text, "polis_raft_proposal_duration_seconds_count")[""] >= 20
    assert samples(text, "polis_raft_apply_duration_seconds_count")[""] >= 20
    changes = samples(text, "polis_raft_leader_changes_seen_total")
    assert len(changes) == 3, changes
    assert samples(text, "polis_memory_used_bytes")[""] > 0
    assert len(samples(text, "polis_expired_keys_total")) >= 1
