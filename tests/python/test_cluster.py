"""Cluster behaviour seen by cluster-aware clients: MOVED, READONLY,
CLUSTER SLOTS and CLUSTER NODES, with every slot owned by one Raft group."""

from __future__ import annotations

import re

import pytest
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from polis_cluster import HOST, RespError, resp_call, wait_until

SLOT_COUNT = 16384


def test_follower_answers_moved_with_leader_address(cluster, key):
    leader = cluster.leader()
    for follower in cluster.followers():
        name = key()
        for command in (("SET", name, "v"), ("GET", name)):
            reply = resp_call(follower.resp_port, *command)
            assert isinstance(reply, RespError), (command, reply)
            assert str(reply) == "MOVED %d %s" % (key_slot(name.encode()), leader.resp_addr), command


def test_redis_py_sees_moved_error(cluster, key):
    leader = cluster.leader()
    follower = cluster.followers()[0]
    name = key()
    client = redis.Redis(host=HOST, port=follower.resp_port, socket_timeout=10)
    try:
        with pytest.raises(redis.exceptions.MovedError) as moved:
            client.set(name, "v")
    finally:
        client.close()
    assert moved.value.slot_id == key_slot(name.encode())
    assert "%s:%d" % (moved.value.host, moved.value.port) == leader.resp_addr


@pytest.mark.parametrize("node_index", [0, 1, 2])
def test_redis_cluster_client_from_any_node(cluster, key, node_index):
    start = cluster.nodes[node_index]
    client = RedisCluster(host=HOST, port=start.resp_port, decode_responses=True, socket_timeout=10)
    try:
        names = [key("many") for _ in range(200)]
        # Keys spread over many slots.
        assert len({key_slot(name.encode()) for name in names}) > 150
        for index, name in enumerate(names):
            assert client.set(name, str(index)) is True
        for index, name in enumerate(names):
            assert client.get(name) == str(index)
        counter = key("counter")
        assert [client.incr(counter) for _ in range(5)] == [1, 2, 3, 4, 5]
        hash_name = key("hash")
        client.hset(hash_name, mapping={"f": "v"})
        assert client.hgetall(hash_name) == {"f": "v"}
    finally:
        client.close()


def test_readonly_follower_reads_after_propagation(cluster, leader_client, key):
    name = key()
    assert leader_client.set(name, "propagated") is True
    for follower in cluster.followers():
        client = redis.Redis(host=HOST, port=follower.resp_port, decode_responses=True,
                             socket_timeout=10, single_connection_client=True)
        try:
            assert client.execute_command("READONLY") in ("OK", True)
            wait_until(lambda: client.get(name) == "propagated", 15.0,
                       "follower %d to apply the write" % follower.node_id)
            # Still a follower: writes on this connection are redirected.
            with pytest.raises(redis.exceptions.MovedError):
                client.set(name, "from a follower")
        finally:
            client.close()


def _address(entry) -> str:
    host, port = entry[0], entry[1]
    if isinstance(host, bytes):
        host = host.decode()
    return "%s:%d" % (host, port)


@pytest.mark.parametrize("node_index", [0, 1, 2])
def test_cluster_slots_shape(cluster, node_index):
    node = cluster.nodes[node_index]
    leader = cluster.leader()
    members = {member.resp_addr for member in cluster.nodes}
    # [[start, end, [host, port, id, ...], [replica host, port, id, ...]...], ...]
    ranges = resp_call(node.resp_port, "CLUSTER", "SLOTS")
    assert isinstance(ranges, list) and ranges, ranges
    covered = []
    for entry in ranges:
        start, end, primary, *replicas = entry
        assert 0 <= start <= end < SLOT_COUNT
        covered.append((start, end))
        assert _address(primary) == leader.resp_addr
        if len(primary) > 2:
            node_id = primary[2].decode() if isinstance(primary[2], bytes) else primary[2]
            assert re.fullmatch(r"[0-9a-f]{40}", node_id), node_id
        for replica in replicas:
            assert _address(replica) in members - {leader.resp_addr}
    covered.sort()
    assert covered[0][0] == 0 and covered[-1][1] == SLOT_COUNT - 1
    for (_, previous_end), (next_start, _) in zip(covered, covered[1:]):
        assert next_start == previous_end + 1, "gap or overlap in %r" % covered


@pytest.mark.parametrize("node_index", [0, 1, 2])
def test_cluster_nodes_shape(cluster, node_index):
    node = cluster.nodes[node_index]
    leader = cluster.leader()
    reply = resp_call(node.resp_port, "CLUSTER", "NODES")
    assert isinstance(reply, bytes), reply
    text = reply.decode()
    client = redis.Redis(host=HOST, port=node.resp_port, socket_timeout=10, decode_responses=True)
    try:
        parsed = client.execute_command("CLUSTER NODES")
    finally:
        client.close()
    # <id> <ip:port@cport[,hostname]> <flags> <master> <ping-sent> <pong-recv>
    # <config-epoch> <link-state> <slot> ... (Redis Cluster specification)
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == len(cluster.nodes), text
    by_address = {}
    for line in lines:
        fields = line.split(" ")
        assert len(fields) >= 8, line
        node_id, address, flags = fields[0], fields[1], fields[2].split(",")
        assert re.fullmatch(r"[0-9a-f]{40}", node_id), line
        assert fields[7] == "connected", line
        by_address[address.split("@")[0]] = (node_id, flags, fields)
    assert set(by_address) == {member.resp_addr for member in cluster.nodes}
    assert len({node_id for node_id, _, _ in by_address.values()}) == len(lines)

    leader_id, leader_flags, leader_fields = by_address[leader.resp_addr]
    assert "master" in leader_flags
    assert leader_fields[8:] == ["0-%d" % (SLOT_COUNT - 1)], leader_fields
    myself = [address for address, (_, flags, _) in by_address.items() if "myself" in flags]
    assert myself == [node.resp_addr]
    for address, (_, flags, fields) in by_address.items():
        if address != leader.resp_addr:
            assert "slave" in flags and "master" not in flags, fields
            assert fields[3] == leader_id, fields
    # redis-py parses it too.
    assert set(parsed) == set(by_address)
