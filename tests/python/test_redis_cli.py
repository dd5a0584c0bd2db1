"""redis-cli: cluster mode (-c) follows MOVED to the shard that owns a key,
`--cluster check` finds every node agreeing and every slot covered, and
redis-benchmark in cluster mode runs without errors; against the default
3-node cluster and a 5-node, 10-shard one."""

from __future__ import annotations

import re
import subprocess

import pytest

from polis_cluster import HOST


def redis_cli(port: int, *args: str) -> str:
    done = subprocess.run(["redis-cli", "-c", "-h", HOST, "-p", str(port), *args],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, "redis-cli %s exited %d: %s %s" % (
        " ".join(args), done.returncode, done.stdout, done.stderr)
    return done.stdout.strip()


@pytest.fixture(params=["cluster", "big_cluster"])
def any_cluster(request):
    return request.getfixturevalue(request.param)


def test_redis_cli_follows_moved(any_cluster, key):
    for attempt in range(6):
        name = key()
        elsewhere = [node for node in any_cluster.nodes if node != any_cluster.leader_for(name)]
        start = elsewhere[attempt % len(elsewhere)]
        assert redis_cli(start.resp_port, "set", name, "v%d" % attempt) == "OK"
        assert redis_cli(start.resp_port, "get", name) == "v%d" % attempt


def test_cluster_check_finds_every_node_agreeing(any_cluster):
    any_cluster.wait_serving()
    for node in any_cluster.nodes:
        done = subprocess.run(["redis-cli", "--cluster", "check", node.resp_addr],
                              capture_output=True, text=True, timeout=60)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        assert "[OK] All nodes agree about slots configuration." in output, output
        assert "[OK] All 16384 slots covered." in output, output
        assert "[ERR]" not in output, output


def test_redis_benchmark_in_cluster_mode_completes_without_errors(any_cluster):
    any_cluster.wait_serving()
    done = subprocess.run(
        ["redis-benchmark", "--cluster", "-h", HOST, "-p", str(any_cluster.nodes[0].resp_port),
         "-t", "set,get", "-n", "2000", "-c", "10", "-r", "1000", "-q"],
        capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    for command in ("SET", "GET"):
        match = re.search(r"%s: ([0-9.]+) requests per second" % command, output)
        assert match and float(match.group(1)) > 0, output
    assert "error" not in output.lower(), output
