"""The gateway `polis dev` starts, with clients that know nothing of
clusters: redis-py's plain client (RESP2 and RESP3), redis-cli without
-c, and redis-benchmark, against 3 nodes and 3 shards."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from polis_cluster import HOST, established_peer_ports, gateway_process


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def plain(cluster, request):
    connected = redis.Redis(host=HOST, port=cluster.gateway_port(), protocol=request.param,
                            decode_responses=True, socket_timeout=10)
    yield connected
    connected.close()


def test_keys_of_every_shard_through_one_endpoint(plain, key):
    key = key()
    names = ["%s:%d" % (key, index) for index in range(60)]
    for index, name in enumerate(names):
        assert plain.set(name, index)
    assert plain.mget(names + ["%s:missing" % key]) == [str(index) for index in range(60)] + [None]
    assert plain.exists(*names) == 60
    found = set(plain.scan_iter(match="%s:*" % key, count=7))
    assert found == set(names)
    assert plain.delete(*names) == 60
    with pytest.raises(redis.ResponseError, match="don.t hash to the same slot"):
        plain.mset({"%s:a" % key: 1, "%s:b" % key: 2})


def test_a_transaction_and_a_watch(plain, key):
    key = key()
    tagged = "{%s}" % key
    pipe = plain.pipeline(transaction=True)
    pipe.set(tagged + "a", 1).incr(tagged + "a").get(tagged + "a")
    assert pipe.execute() == [True, 2, "2"]
    with plain.pipeline(transaction=True) as pipe:
        pipe.watch(tagged + "a")
        plain.set(tagged + "a", "changed elsewhere")
        pipe.multi()
        pipe.set(tagged + "a", "mine")
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert plain.get(tagged + "a") == "changed elsewhere"


def test_redis_cli_without_cluster_mode(cluster, key):
    key = key()
    def cli(*args: str) -> str:
        done = subprocess.run(["redis-cli", "-h", HOST, "-p", str(cluster.gateway_port()), *args],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    for index in range(20):
        assert cli("set", "%s:%d" % (key, index), "v") == "OK"
    assert int(cli("dbsize")) >= 20
    assert cli("get", "%s:7" % key) == "v"


def test_redis_benchmark_through_the_gateway_has_no_errors(cluster):
    done = subprocess.run(
        ["redis-benchmark", "-h", HOST, "-p", str(cluster.gateway_port()), "-c", "10", "-n", "2000",
         "-t", "set,get", "-q"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "SET:" in done.stdout and "GET:" in done.stdout, done.stdout
    assert "ERR" not in done.stdout + done.stderr, done.stdout + done.stderr


def listener_pid(port: int) -> int:
    """Returns the PID of the process listening on `port` (from /proc)."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
            inode = fields[9]
    assert inode is not None, "nothing listens on port %d" % port
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd) == "socket:[%s]" % inode:
                return int(fd.parts[2])
        except OSError:
            continue
    raise AssertionError("no process holds the socket listening on port %d" % port)


def established_to(pid: int, ports: list[int]) -> dict[int, int]:
    """Counts the established TCP connections of process `pid` to each of
    `ports`."""
    peers = established_peer_ports(pid)
    return {port: peers.count(port) for port in ports}


def test_many_clients_share_few_node_connections_and_get_their_own_replies(cluster, key):
    """Forty clients pipelining at once through a gateway of their own:
    every reply reaches the client that asked, and while they are all
    connected the gateway holds a few shared connections to each node
    (lanes, at most 4 per node), not one per client."""
    key = key()
    clients = 40
    seeds = ",".join(node.resp_addr for node in cluster.nodes)
    with gateway_process(seeds) as (port, _):
        pid = listener_pid(port)
        connected = [redis.Redis(host=HOST, port=port, decode_responses=True, socket_timeout=20)
                     for _ in range(clients)]

        def work(client: int) -> None:
            for round_ in range(25):
                pipe = connected[client].pipeline(transaction=False)
                for index in range(4):
                    pipe.set("%s:%d:%d" % (key, client, index), "%d-%d-%d" % (client, round_, index))
                for index in range(4):
                    pipe.get("%s:%d:%d" % (key, client, index))
                pipe.incr("%s:counter:%d" % (key, client))
                replies = pipe.execute()
                assert replies[:4] == [True] * 4
                assert replies[4:8] == ["%d-%d-%d" % (client, round_, index) for index in range(4)]
                assert replies[8] == round_ + 1

        try:
            with ThreadPoolExecutor(max_workers=clients) as pool:
                for done in [pool.submit(work, client) for client in range(clients)]:
                    done.result(timeout=120)
            # Every client still connected: lanes, plus perhaps a topology
            # or health check under way; one connection per client would
            # be 40 to each node.
            counts = established_to(pid, [node.resp_port for node in cluster.nodes])
            assert all(1 <= count <= 6 for count in counts.values()), counts
        finally:
            for client in connected:
                client.close()
