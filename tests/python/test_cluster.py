"""Cluster behaviour seen by cluster-aware clients: MOVED to the leader of
a key's shard, READONLY reads from a follower replica, CLUSTER SLOTS,
SHARDS and NODES rendered alike by every node, and the node-wide commands
(DBSIZE, SCAN, KEYS) covering the shards a node leads."""

from __future__ import annotations

import re

import pytest
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from polis_cluster import HOST, RespError, resp_call, slot_ranges, wait_until

SLOT_COUNT = 16384


def test_a_node_not_leading_the_keys_shard_answers_moved_to_its_leader(cluster, key):
    name = key()
    leader = cluster.leader_for(name)
    for node in cluster.nodes:
        if node == leader:
            continue
        for command in (("SET", name, "v"), ("GET", name)):
            reply = resp_call(node.resp_port, *command)
            assert isinstance(reply, RespError), (command, reply)
            assert str(reply) == "MOVED %d %s" % (key_slot(name.encode()), leader.resp_addr), command


def test_a_node_holding_no_replica_redirects_too(big_cluster, key):
    name = key()
    leader = big_cluster.leader_for(name)
    strangers = big_cluster.strangers_to(name)
    assert strangers, "with 5 nodes and 3 replicas two nodes hold none"
    for node in strangers:
        reply = resp_call(node.resp_port, "GET", name)
        assert str(reply) == "MOVED %d %s" % (key_slot(name.encode()), leader.resp_addr)


def test_redis_py_sees_moved_error(cluster, key):
    name = key()
    leader = cluster.leader_for(name)
    other = next(node for node in cluster.nodes if node != leader)
    client = redis.Redis(host=HOST, port=other.resp_port, socket_timeout=10)
    try:
        with pytest.raises(redis.exceptions.MovedError) as moved:
            client.set(name, "v")
    finally:
        client.close()
    assert moved.value.slot_id == key_slot(name.encode())
    assert "%s:%d" % (moved.value.host, moved.value.port) == leader.resp_addr


@pytest.mark.parametrize("which", ["cluster", "big_cluster"])
def test_redis_cluster_client_from_any_node(request, key, which):
    target = request.getfixturevalue(which)
    for start in target.nodes:
        client = RedisCluster(host=HOST, port=start.resp_port, decode_responses=True, socket_timeout=10)
        try:
            names = [key("many") for _ in range(100)]
            # Keys spread over many slots, so over every shard.
            assert len({key_slot(name.encode()) for name in names}) > 80
            for index, name in enumerate(names):
                assert client.set(name, str(index)) is True
            for index, name in enumerate(names):
                assert client.get(name) == str(index)
            counter = key("counter")
            assert [client.incr(counter) for _ in range(5)] == [1, 2, 3, 4, 5]
            hash_name = key("hash")
            client.hset(hash_name, mapping={"f": "v"})
            assert client.hgetall(hash_name) == {"f": "v"}
            # redis-py takes every leader as a primary.
            primaries = {node.port for node in client.get_primaries()}
            assert primaries == {node.resp_port for node in target.nodes}
        finally:
            client.close()


def test_readonly_reads_from_a_follower_replica(cluster, client, key):
    name = key()
    assert client.set(name, "propagated") is True
    leader = cluster.leader_for(name)
    for follower in cluster.followers_for(name):
        reader = redis.Redis(host=HOST, port=follower.resp_port, decode_responses=True,
                             socket_timeout=10, single_connection_client=True)
        try:
            assert reader.execute_command("READONLY") in ("OK", True)
            wait_until(lambda: reader.get(name) == "propagated", 15.0,
                       "follower %d to apply the write" % follower.node_id)
            # Still a follower of that shard: writes are redirected.
            with pytest.raises(redis.exceptions.MovedError) as moved:
                reader.set(name, "from a follower")
            assert "%s:%d" % (moved.value.host, moved.value.port) == leader.resp_addr
        finally:
            reader.close()


def _address(entry) -> str:
    host, port = entry[0], entry[1]
    if isinstance(host, bytes):
        host = host.decode()
    return "%s:%d" % (host, port)


def test_every_node_renders_the_same_slots_with_each_shards_leader_first(cluster):
    status = cluster.wait_serving()
    owner = {}
    for shard in status["shards"]:
        leader = cluster.node_by_id(shard["leader_node"]).resp_addr
        replicas = {cluster.node_by_id(replica["node_id"]).resp_addr for replica in shard["replicas"]}
        for start, end in slot_ranges(shard):
            for slot in range(start, end + 1):
                owner[slot] = (leader, replicas)
    for node in cluster.nodes:
        # [[start, end, [host, port, id, ...], [replica host, port, id, ...]...], ...]
        ranges = resp_call(node.resp_port, "CLUSTER", "SLOTS")
        assert isinstance(ranges, list) and ranges, ranges
        covered = 0
        seen_as = {}
        for start, end, primary, *replicas in ranges:
            leader, members = owner[start]
            assert owner[end][0] == leader
            assert _address(primary) == leader
            node_id = primary[2].decode() if isinstance(primary[2], bytes) else primary[2]
            assert re.fullmatch(r"[0-9a-f]{40}", node_id), node_id
            assert {_address(replica) for replica in replicas} <= members - {leader}
            covered += end - start + 1
            # Every leader appears as a primary before it appears as a replica.
            seen_as.setdefault(_address(primary), "primary")
            for replica in replicas:
                seen_as.setdefault(_address(replica), "replica")
        assert covered == SLOT_COUNT
        leaders = {cluster.node_by_id(shard["leader_node"]).resp_addr for shard in status["shards"]}
        assert all(seen_as[leader] == "primary" for leader in leaders), seen_as


def test_cluster_shards_lists_a_master_and_two_replicas_per_shard(cluster):
    cluster.wait_serving()
    client = redis.Redis(host=HOST, port=cluster.nodes[1].resp_port, socket_timeout=10)
    try:
        shards = client.execute_command("CLUSTER SHARDS")
    finally:
        client.close()
    assert len(shards) == 3, shards
    covered = 0
    for shard in shards:
        fields = dict(zip(shard[::2], shard[1::2])) if isinstance(shard, list) else shard
        slots = fields[b"slots"] if b"slots" in fields else fields["slots"]
        nodes = fields[b"nodes"] if b"nodes" in fields else fields["nodes"]
        covered += sum(end - start + 1 for start, end in zip(slots[::2], slots[1::2]))
        roles = []
        for entry in nodes:
            entry = dict(zip(entry[::2], entry[1::2])) if isinstance(entry, list) else entry
            role = entry.get(b"role", entry.get("role"))
            roles.append(role.decode() if isinstance(role, bytes) else role)
        assert sorted(roles) == ["master", "replica", "replica"], roles
    assert covered == SLOT_COUNT


@pytest.mark.parametrize("node_index", [0, 1, 2])
def test_cluster_nodes_shows_each_node_as_master_of_its_shards(cluster, node_index):
    status = cluster.wait_serving()
    led = {}
    for shard in status["shards"]:
        # A range of one slot is the slot alone, as Redis writes it.
        led.setdefault(cluster.node_by_id(shard["leader_node"]).resp_addr, []).extend(
            "%d" % start if start == end else "%d-%d" % (start, end)
            for start, end in slot_ranges(shard))
    node = cluster.nodes[node_index]
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
    epochs = set()
    for line in lines:
        fields = line.split(" ")
        assert len(fields) >= 8, line
        node_id, address, flags = fields[0], fields[1].split("@")[0], fields[2].split(",")
        assert re.fullmatch(r"[0-9a-f]{40}", node_id), line
        assert fields[7] == "connected", line
        assert "master" in flags, line
        assert sorted(fields[8:]) == sorted(led[address]), line
        assert ("myself" in flags) == (address == node.resp_addr), line
        epochs.add(fields[6])
    assert epochs == {str(status["map_version"])}, epochs
    # redis-py parses it too.
    assert set(parsed) == {member.resp_addr for member in cluster.nodes}


def test_node_wide_commands_cover_the_shards_a_node_leads(cluster, client, key):
    names = [key("wide") for _ in range(60)]
    for name in names:
        client.set(name, "x")

    def count_everywhere():
        total = 0
        seen = set()
        for node in cluster.nodes:
            plain = redis.Redis(host=HOST, port=node.resp_port, decode_responses=True, socket_timeout=10)
            try:
                total += plain.dbsize()
                # SCAN walks every shard the node leads, COUNT keys at a time.
                cursor, scanned = 0, set()
                for _ in range(10_000):
                    cursor, page = plain.scan(cursor=cursor, count=7)
                    scanned.update(page)
                    if cursor == 0:
                        break
                assert cursor == 0, "SCAN did not finish"
                assert set(plain.keys("*")) == scanned
                assert not scanned & seen, "two nodes reported one key"
                seen |= scanned
            finally:
                plain.close()
        assert set(names) <= seen
        # DBSIZE counts keys that expired but were not deleted yet, as
        # Redis does: wait for active expiry of other tests' keys.
        return total == len(seen)

    wait_until(count_everywhere, 10.0, "DBSIZE summed over the masters to be the keyspace")
