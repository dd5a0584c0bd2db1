"""RESP3 through redis-py (HELLO 3): maps, nulls and doubles keep their types."""

from __future__ import annotations

import redis

from polis_cluster import HOST


def test_hello_3_switches_the_connection_to_resp3(cluster, key):
    tag = "{%s}" % key("tag")
    leader = cluster.leader_for(tag)
    client = redis.Redis(host=HOST, port=leader.resp_port, protocol=3, decode_responses=True, socket_timeout=10)
    try:
        hello = client.execute_command("HELLO", "3")
        assert hello["proto"] == 3
        assert hello["server"] == "redis"
        name = tag + "h"
        client.hset(name, mapping={"a": "1", "b": "2"})
        # A RESP3 map reply arrives as a dict without pairing by the client.
        assert client.hgetall(name) == {"a": "1", "b": "2"}
        assert client.get(tag + "missing") is None
        assert client.incrbyfloat(tag + "f", 1.5) == 1.5
    finally:
        client.close()


def test_hello_rejects_unknown_protocol_versions(cluster):
    client = redis.Redis(host=HOST, port=cluster.nodes[0].resp_port, decode_responses=True, socket_timeout=10)
    try:
        try:
            client.execute_command("HELLO", "4")
        except redis.ResponseError as error:
            assert "unsupported protocol version" in str(error)
        else:
            raise AssertionError("HELLO 4 was accepted")
    finally:
        client.close()
