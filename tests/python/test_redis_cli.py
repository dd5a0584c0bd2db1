"""redis-cli in cluster mode (-c) follows MOVED from a follower."""

from __future__ import annotations

import subprocess

from polis_cluster import HOST


def redis_cli(port: int, *args: str) -> str:
    done = subprocess.run(["redis-cli", "-c", "-h", HOST, "-p", str(port), *args],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, "redis-cli %s exited %d: %s %s" % (
        " ".join(args), done.returncode, done.stdout, done.stderr)
    return done.stdout.strip()


def test_redis_cli_follows_moved_from_follower(cluster, key):
    follower = cluster.followers()[0]
    name = key()
    assert redis_cli(follower.resp_port, "set", name, "v") == "OK"
    assert redis_cli(follower.resp_port, "get", name) == "v"
