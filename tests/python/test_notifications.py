"""Keyspace notifications across a polis cluster, seen with `redis-cli
psubscribe` and redis-py: one CONFIG SET turns them on for every node;
each shard's leader publishes its events in log order to the subscribers
of every node. And PUBLISH inside MULTI is delivered when EXEC applies."""

from __future__ import annotations

import subprocess
import threading
import time

import redis
from redis.cluster import RedisCluster

from polis_cluster import HOST, wait_until
from test_pubsub import connect, next_message, subscribed

EVENT_TIMEOUT_S = 15.0


class CliSubscriber:
    """`redis-cli psubscribe <pattern>` on a node, its output lines kept."""

    def __init__(self, node, pattern: str):
        self.process = subprocess.Popen(
            ["redis-cli", "-h", HOST, "-p", str(node.resp_port), "--raw", "psubscribe", pattern],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def messages(self) -> list[tuple[str, str]]:
        """(channel, payload) of each pmessage so far."""
        found = []
        lines = list(self.lines)
        for index, line in enumerate(lines):
            if line == "pmessage" and index + 3 < len(lines):
                found.append((lines[index + 2], lines[index + 3]))
        return found

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def test_key_events_reach_redis_cli_on_every_node_in_log_order(cluster):
    first = connect(cluster.nodes[0])
    client = RedisCluster(host=HOST, port=cluster.nodes[0].resp_port, decode_responses=True, socket_timeout=10)
    watchers = []
    try:
        assert first.config_set("notify-keyspace-events", "KEA")
        for node in cluster.nodes:
            assert connect(node).config_get("notify-keyspace-events") == {"notify-keyspace-events": "AKE"}
        watchers = [CliSubscriber(node, "__keyspace@0__:pytest:ev:*") for node in cluster.nodes]
        wait_until(lambda: all(w.lines[:1] == ["psubscribe"] and len(w.lines) >= 3 for w in watchers),
                   EVENT_TIMEOUT_S, "redis-cli to subscribe")

        # Keys on several shards, several events per key.
        keys = ["pytest:ev:%d" % index for index in range(6)]
        expected: dict[str, list[str]] = {}
        for key in keys:
            client.rpush(key, "a", "b")
            client.lpop(key)
            client.expire(key, 100)
            client.rpop(key)  # empties the list: rpop, then del
            expected[key] = ["rpush", "lpop", "expire", "rpop", "del"]
        hash_key = "pytest:ev:hash"
        client.hset(hash_key, mapping={"f": "1"})
        client.hincrby(hash_key, "f", 2)
        client.delete(hash_key)
        expected[hash_key] = ["hset", "hincrby", "del"]

        def complete(watcher):
            got: dict[str, list[str]] = {}
            for channel, event in watcher.messages():
                got.setdefault(channel.split(":", 1)[1], []).append(event)
            return got if all(len(got.get(key, [])) >= len(events) for key, events in expected.items()) else None

        for watcher in watchers:
            got = wait_until(lambda: complete(watcher), EVENT_TIMEOUT_S, "every key's events")
            # Per key, the events in the order the writes were acknowledged,
            # each once.
            assert got == expected, got
    finally:
        for watcher in watchers:
            watcher.stop()
        first.config_set("notify-keyspace-events", "")
        first.close()
        client.close()


def test_expired_and_new_events_with_redis_py(cluster):
    admin = connect(cluster.nodes[0])
    subscriber = connect(cluster.nodes[2])
    writer = RedisCluster(host=HOST, port=cluster.nodes[1].resp_port, decode_responses=True, socket_timeout=10)
    pubsub = subscriber.pubsub()
    try:
        assert admin.config_set("notify-keyspace-events", "Exn")
        pubsub.psubscribe("__keyevent@0__:*")
        subscribed(pubsub, 1)
        # A short-lived key: created (new), then deleted by active expiry.
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        seen: list[tuple[str, str]] = []
        writer.set("pytest:short", "1", px=100)
        while ("__keyevent@0__:expired", "pytest:short") not in seen:
            assert time.monotonic() < deadline, seen
            message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if message is not None:
                seen.append((message["channel"], message["data"]))
        assert seen.index(("__keyevent@0__:new", "pytest:short")) < seen.index(
            ("__keyevent@0__:expired", "pytest:short"))
        assert writer.get("pytest:short") is None
    finally:
        admin.config_set("notify-keyspace-events", "")
        pubsub.close()
        for client in (admin, subscriber, writer):
            client.close()


def test_publish_inside_multi_is_delivered_when_exec_applies(cluster):
    node = cluster.nodes[0]
    subscriber = connect(node)
    client = connect(node)
    pubsub = subscriber.pubsub()
    try:
        pubsub.subscribe("pytest:multi")
        subscribed(pubsub, 1)
        key = "pytest:multi-key"
        owner = cluster.leader_for(key)
        transactional = connect(owner)
        try:
            pipe = transactional.pipeline(transaction=True)
            pipe.set(key, "1")
            pipe.publish("pytest:multi", "applied")
            replies = pipe.execute()
            assert replies[0] is True
            assert next_message(pubsub)["data"] == "applied"
            # A transaction WATCH aborts publishes nothing.
            pipe = transactional.pipeline(transaction=True)
            pipe.watch(key)
            other = connect(owner)
            other.set(key, "changed")
            other.close()
            pipe.multi()
            pipe.set(key, "2")
            pipe.publish("pytest:multi", "aborted")
            try:
                pipe.execute()
                raise AssertionError("the transaction ran though its watched key changed")
            except redis.WatchError:
                pass
            assert pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0) is None
        finally:
            transactional.close()
    finally:
        pubsub.close()
        subscriber.close()
        client.close()


def test_redis_py_and_redis_cli_subscribers_keep_receiving_when_the_leader_is_killed():
    """A cluster of its own (one shard): SIGKILL of the shard's leader,
    found by its INFO process_id; redis-py's PubSub and `redis-cli
    subscribe` on the surviving nodes keep their subscriptions and receive
    what is published after it, and the key events the new leader
    publishes."""
    import os
    import signal

    from polis_cluster import Cluster, polis_binary, resp_call

    cluster = Cluster(polis_binary(), nodes=3, shards=1)
    watcher = None
    clients = []
    try:
        leader = cluster.leader_for("anything")
        survivors = [node for node in cluster.nodes if node.node_id != leader.node_id]
        publisher = connect(survivors[0])
        subscriber = connect(survivors[1])
        clients += [publisher, subscriber]
        assert publisher.config_set("notify-keyspace-events", "E$")
        pubsub = subscriber.pubsub()
        pubsub.subscribe("pytest:failover")
        pubsub.psubscribe("__keyevent@0__:set")
        subscribed(pubsub, 2)
        watcher = CliSubscriber(survivors[0], "pytest:*")
        wait_until(lambda: len(watcher.lines) >= 3, EVENT_TIMEOUT_S, "redis-cli to subscribe")

        info = resp_call(leader.resp_port, "INFO", "server").decode()
        pid = int(next(line.split(":")[1] for line in info.splitlines() if line.startswith("process_id:")))
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: cluster.status(survivors[0])["shards"][0]["leader_node"] in
                   [node.node_id for node in survivors] and cluster.status(survivors[0])["state"] == "ok",
                   60.0, "a new leader")

        # Plain pub/sub goes on from any surviving node.
        def received(message: str):
            publisher.publish("pytest:failover", message)
            got = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            return got if got is not None and got["channel"] == "pytest:failover" else None

        assert wait_until(lambda: received("after"), EVENT_TIMEOUT_S, "a message after the kill")["data"] == "after"
        wait_until(lambda: any(channel == "pytest:failover" for channel, _ in watcher.messages()),
                   EVENT_TIMEOUT_S, "redis-cli to receive a message after the kill")

        # The new leader publishes the key events of what it applies.
        writer = RedisCluster(host=HOST, port=survivors[0].resp_port, decode_responses=True, socket_timeout=10)
        clients.append(writer)
        def written():
            try:
                return writer.set("pytest:after-failover", "1")
            except redis.RedisError:
                return None

        wait_until(written, 60.0, "a write acknowledged after the kill")
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        seen = []
        while ("__keyevent@0__:set", "pytest:after-failover") not in seen:
            assert time.monotonic() < deadline, seen
            message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if message is not None:
                seen.append((message["channel"], message["data"]))
        pubsub.close()
    finally:
        if watcher is not None:
            watcher.stop()
        for client in clients:
            client.close()
        cluster.stop()
