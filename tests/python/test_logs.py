"""The nodes' logs: every line names its node (and a group's lines the
group), JSON with --log-format json, and nothing written while a healthy
cluster idles."""

from __future__ import annotations

import json
import time

import redis

from polis_cluster import HOST, Cluster, polis_binary

QUIET_WATCH_S = 5.0


def node_logs(cluster: Cluster) -> dict[int, str]:
    return {node.node_id: (cluster.data_dir / ("node-%d.log" % node.node_id)).read_text()
            for node in cluster.nodes}


def test_every_text_line_names_its_node(cluster):
    cluster.wait_serving()
    for node_id, text in node_logs(cluster).items():
        lines = text.splitlines()
        assert lines, "node %d logged nothing" % node_id
        unnamed = [line for line in lines if "node{id=%d}" % node_id not in line]
        assert not unnamed, unnamed[:3]
        assert "\x1b[" not in text, "colors in a log file"


def test_json_lines_name_node_and_group_and_an_idle_cluster_is_quiet():
    cluster = Cluster(polis_binary(), nodes=3, shards=3, node_args=("--log-format", "json"))
    try:
        # Some traffic first: serving it logs nothing either.
        client = redis.Redis(host=HOST, port=cluster.leader_for("k").resp_port, socket_timeout=10)
        for index in range(50):
            client.set("k", index)
        client.close()
        sizes = {node.node_id: (cluster.data_dir / ("node-%d.log" % node.node_id)).stat().st_size
                 for node in cluster.nodes}
        # Watch the logs for a while: any line written fails at once.
        deadline = time.monotonic() + QUIET_WATCH_S
        while time.monotonic() < deadline:
            for node in cluster.nodes:
                path = cluster.data_dir / ("node-%d.log" % node.node_id)
                grown = path.read_bytes()[sizes[node.node_id]:]
                assert not grown, "node %d logged while idle: %s" % (node.node_id, grown[:400])
            time.sleep(0.25)
        for node_id, text in node_logs(cluster).items():
            groups_started = 0
            for line in text.splitlines():
                record = json.loads(line)
                spans = record.get("spans", [])
                assert spans and spans[0] == {"name": "node", "id": str(node_id)}, line
                if record["fields"].get("message") == "group started":
                    groups_started += 1
                    assert spans[-1]["name"] == "group", line
            # The meta group and the shards this node holds a replica of.
            assert groups_started == 4, text
    finally:
        cluster.stop()


def test_a_key_file_others_can_read_is_warned_of_in_the_log(tmp_path):
    import subprocess

    from polis_cluster import wait_until

    key = tmp_path / "master.key"
    subprocess.run([str(polis_binary()), "encryption", "new-key", str(key)], check=True,
                   capture_output=True, timeout=30)
    key.chmod(0o644)
    log = tmp_path / "node.log"
    with open(log, "wb") as output:
        node = subprocess.Popen(
            [str(polis_binary()), "server", "--node-id", "1", "--data-dir", str(tmp_path / "data"),
             "--resp-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--peer-addr", "127.0.0.1:0",
             "--encryption-key-file", str(key)],
            stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: "node listening" in log.read_text(), 30, "the node to listen")
        finally:
            node.terminate()
            node.wait(timeout=30)
    warned = [line for line in log.read_text().splitlines() if "readable by others" in line]
    assert warned and "node{id=1}" in warned[0], log.read_text()[:2000]
