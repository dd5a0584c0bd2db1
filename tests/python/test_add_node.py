"""`polis dev --add-node`: a fourth node joins the running local cluster,
shard replicas move to it until no node holds two more than another, and
redis-cli and redis-py find a consistent cluster of four nodes, with every
key written before the move still there. Then `polis cluster remove-node`
drains it again: its process stops, and the three nodes left hold every
key and agree about the slots."""

from __future__ import annotations

import signal
import subprocess

from redis.cluster import RedisCluster

from polis_cluster import HOST, Cluster, Node, polis_binary, wait_until

ADD_NODE_TIMEOUT_S = 120.0


def replicas_per_node(status: dict) -> dict[int, int]:
    held: dict[int, int] = {}
    for shard in status["shards"]:
        for replica in shard["replicas"]:
            held[replica["node_id"]] = held.get(replica["node_id"], 0) + 1
    return held


def test_a_node_added_to_polis_dev_takes_its_share_and_tools_agree():
    cluster = Cluster(polis_binary(), nodes=3, shards=3, spare_nodes=1)
    adder = None
    try:
        client = RedisCluster(host=HOST, port=cluster.nodes[0].resp_port, decode_responses=True,
                              socket_timeout=10)
        written = {"add-node:%d" % i: "v%d" % i for i in range(200)}
        for name, value in written.items():
            client.set(name, value)
        client.close()

        log = open(cluster.data_dir.parent / "add-node.log", "wb")
        adder = subprocess.Popen(
            [str(cluster.binary), "dev", "--add-node", "--port", str(cluster.base_port),
             "--data", str(cluster.data_dir)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        fourth = Node(node_id=4, resp_port=cluster.base_port + 3, admin_port=cluster.base_port + 103)
        cluster.nodes.append(fourth)

        def balanced():
            assert adder.poll() is None, (cluster.data_dir.parent / "add-node.log").read_text()
            status = cluster.status(cluster.nodes[0])
            held = replicas_per_node(status)
            if len(status["nodes"]) != 4 or len(held) != 4:
                return None
            if max(held.values()) - min(held.values()) > 1:
                return None
            return status

        status = wait_until(balanced, ADD_NODE_TIMEOUT_S, "the replicas to spread over four nodes")
        assert sum(replicas_per_node(status).values()) == 9
        cluster.wait_serving(timeout_s=ADD_NODE_TIMEOUT_S)

        def checked():
            done = subprocess.run(["redis-cli", "--cluster", "check", "%s:%d" % (HOST, fourth.resp_port)],
                                  capture_output=True, text=True, timeout=30)
            return done if done.returncode == 0 and "[OK] All 16384 slots covered" in done.stdout else None

        report = wait_until(checked, 60.0, "redis-cli --cluster check to pass from node 4")
        assert "[OK] All nodes agree about slots configuration." in report.stdout, report.stdout

        client = RedisCluster(host=HOST, port=fourth.resp_port, decode_responses=True, socket_timeout=10)
        assert {name: client.get(name) for name in written} == written
        client.close()

        removal = subprocess.run(
            [str(cluster.binary), "cluster", "remove-node", "4", "--node", cluster.nodes[0].admin_addr,
             "--timeout-secs", str(int(ADD_NODE_TIMEOUT_S))],
            capture_output=True, text=True, timeout=ADD_NODE_TIMEOUT_S + 30,
        )
        assert removal.returncode == 0, removal.stdout + removal.stderr
        assert "node 4 removed" in removal.stdout, removal.stdout
        adder.wait(timeout=60)
        cluster.nodes.remove(fourth)
        status = cluster.status(cluster.nodes[0])
        assert set(replicas_per_node(status)) == {1, 2, 3}, status
        cluster.wait_serving(timeout_s=ADD_NODE_TIMEOUT_S)

        def checked_without_4():
            done = subprocess.run(["redis-cli", "--cluster", "check", "%s:%d" % (HOST, cluster.nodes[0].resp_port)],
                                  capture_output=True, text=True, timeout=30)
            agreed = done.returncode == 0 and "[OK] All 16384 slots covered" in done.stdout
            return done if agreed and ":%d" % fourth.resp_port not in done.stdout else None

        wait_until(checked_without_4, 60.0, "redis-cli --cluster check to pass without node 4")
        client = RedisCluster(host=HOST, port=cluster.nodes[0].resp_port, decode_responses=True, socket_timeout=10)
        assert {name: client.get(name) for name in written} == written
        client.close()
    finally:
        adder_log = ""
        if adder is not None:
            if adder.poll() is None:
                adder.send_signal(signal.SIGINT)
                try:
                    adder.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    adder.kill()
                    adder.wait(timeout=30)
            adder_log = (cluster.data_dir.parent / "add-node.log").read_text(errors="replace")
        code = cluster.stop()
    assert adder.returncode == 0, adder_log
    assert "polis dev: node 4 joined" in adder_log, adder_log
    assert "polis dev: node 4 exited" in adder_log, adder_log
    assert code == 0
