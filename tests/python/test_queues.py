"""The queue options of consumer groups through redis-py (docs/queues.md):
a message a consumer never acknowledges goes to the next reader after the
group's ack-wait, then to the dead-letter stream after max deliveries;
XNACK makes it due at once or after a delay; XINFO and XPENDING show it.

Leader changes are in crates/polis/tests/queue.rs, whose harness can kill
the leader (this one runs `polis dev` and sees only its process)."""

from __future__ import annotations

import threading
import time

import pytest
import redis
from redis.crc import key_slot

from polis_cluster import HOST, wait_until

ACK_WAIT_MS = 1000


def leader_client(cluster, key, timeout=10):
    leader = cluster.leader_for(key)
    return redis.Redis(host=HOST, port=leader.resp_port, decode_responses=True,
                       socket_timeout=timeout, single_connection_client=True)


def queue_names(key):
    """A stream and its dead-letter stream, in one slot by their hash tag."""
    stream = "{%s}" % key("orders")
    return stream, stream + ":dead"


def read_new(client, stream, consumer, count=10):
    """XREADGROUP of new entries; returns [(id, fields)] (empty: nothing)."""
    reply = client.xreadgroup("workers", consumer, {stream: ">"}, count=count)
    return [entry for _, entries in reply for entry in entries] if reply else []


def group_info(client, stream):
    (group,) = client.xinfo_groups(stream)
    return group


def test_an_unacknowledged_message_is_redelivered_then_dead_lettered(client, key):
    stream, dead = queue_names(key)
    assert client.execute_command(
        "XGROUP", "CREATE", stream, "workers", "$", "MKSTREAM",
        "ACKWAIT", ACK_WAIT_MS, "MAXDELIVERIES", 2, "DEADLETTER", dead) in ("OK", True)
    message_id = client.xadd(stream, {"order": "42"})

    # alice takes it and never acknowledges (she crashed).
    before_delivery = time.monotonic()
    assert read_new(client, stream, "alice") == [(message_id, {"order": "42"})]
    # Within the ack-wait, nobody else gets it (checked while the machine
    # is quick enough to be still within it).
    if time.monotonic() - before_delivery < ACK_WAIT_MS / 1000 / 2:
        assert read_new(client, stream, "bob") == []
        pending = client.xpending_range(stream, "workers", "-", "+", 10)
        assert [(p["consumer"], p["times_delivered"]) for p in pending] == [("alice", 1)]

    # After it, the next reader gets it, claimed for him at apply.
    redelivered = wait_until(lambda: read_new(client, stream, "bob"), 10, "the redelivery to bob")
    assert redelivered == [(message_id, {"order": "42"})]
    assert time.monotonic() - before_delivery >= ACK_WAIT_MS / 1000
    pending = client.xpending_range(stream, "workers", "-", "+", 10)
    assert [(p["message_id"], p["consumer"], p["times_delivered"]) for p in pending] == [
        (message_id, "bob", 2)]
    group = group_info(client, stream)
    assert group["ack-wait"] == ACK_WAIT_MS
    assert group["max-deliveries"] == 2
    assert group["dead-letter"] == dead
    assert group["redeliveries"] == 1

    # bob does not acknowledge either: delivered twice, it is due again,
    # and XPENDING DUE says so.
    due = wait_until(lambda: client.execute_command("XPENDING", stream, "workers", "DUE", "-", "+", 10,
                                                    parse_detail=True),
                     10, "the message due again")
    assert [(entry["message_id"], entry["times_delivered"]) for entry in due] == [(message_id, 2)]
    assert group_info(client, stream)["due"] == 1

    # The next read moves it to the dead-letter stream instead.
    assert read_new(client, stream, "carol") == []
    assert client.xpending(stream, "workers")["pending"] == 0
    ((dead_id, fields),) = client.xrange(dead)
    assert fields == {
        "source-stream": stream, "source-group": "workers", "source-id": message_id,
        "last-consumer": "bob", "deliveries": "2", "reason": "max-deliveries", "order": "42",
    }
    group = group_info(client, stream)
    assert (group["dead-lettered"], group["pending"]) == (1, 0)
    # Nothing comes back.
    assert read_new(client, stream, "alice") == []


def test_a_blocked_reader_is_woken_when_the_ack_wait_passes(cluster, key):
    stream, _ = queue_names(key)
    admin = leader_client(cluster, stream)
    admin.execute_command("XGROUP", "CREATE", stream, "workers", "$", "MKSTREAM", "ACKWAIT", ACK_WAIT_MS)
    message_id = admin.xadd(stream, {"job": "1"})
    before_delivery = time.monotonic()
    assert read_new(admin, stream, "alice") == [(message_id, {"job": "1"})]
    block_ms = 20_000
    result = {}

    def blocked_read():
        reader = leader_client(cluster, stream, timeout=30)
        result["blocked_after_s"] = time.monotonic() - before_delivery
        result["reply"] = reader.xreadgroup("workers", "bob", {stream: ">"}, block=block_ms)
        result["served_after_s"] = time.monotonic() - before_delivery

    thread = threading.Thread(target=blocked_read)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert result["reply"] == [[stream, [(message_id, {"job": "1"})]]]
    # No write came: when bob blocked before the ack-wait passed, the
    # leader's timer served him, long before his BLOCK timeout.
    assert result["served_after_s"] >= ACK_WAIT_MS / 1000, result
    if result["blocked_after_s"] < ACK_WAIT_MS / 1000:
        assert result["served_after_s"] < block_ms / 1000 / 2, result


def test_a_reader_blocked_on_the_dead_letter_stream_sees_the_move(cluster, key):
    stream, dead = queue_names(key)
    admin = leader_client(cluster, stream)
    admin.execute_command("XGROUP", "CREATE", stream, "workers", "$", "MKSTREAM",
                          "ACKWAIT", 300, "MAXDELIVERIES", 1, "DEADLETTER", dead)
    message_id = admin.xadd(stream, {"job": "poison"})
    assert read_new(admin, stream, "alice") == [(message_id, {"job": "poison"})]
    result = {}

    def watch_dead_letters():
        watcher = leader_client(cluster, stream, timeout=30)
        result["dead"] = watcher.xread({dead: "$"}, block=20_000)

    def blocked_read():
        # Its retry at the due time moves the message and serves bob
        # nothing: he waits on, and times out.
        reader = leader_client(cluster, stream, timeout=30)
        result["bob"] = reader.xreadgroup("workers", "bob", {stream: ">"}, block=3_000)

    threads = [threading.Thread(target=watch_dead_letters), threading.Thread(target=blocked_read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert result["bob"] in (None, [])
    ((name, ((_, fields),)),) = result["dead"]
    assert name == dead
    assert (fields["source-id"], fields["reason"], fields["job"]) == (message_id, "max-deliveries", "poison")


def test_xnack_redelivers_at_once_or_after_its_delay(client, key):
    stream, _ = queue_names(key)
    client.execute_command("XGROUP", "CREATE", stream, "workers", "$", "MKSTREAM")
    first = client.xadd(stream, {"n": "1"})
    second = client.xadd(stream, {"n": "2"})
    assert [entry_id for entry_id, _ in read_new(client, stream, "alice")] == [first, second]
    # A delay far in the future: not due yet.
    assert client.execute_command("XNACK", stream, "workers", "DELAY", 60_000, second) == 1
    assert read_new(client, stream, "bob") == []
    # At once: the next reader takes it.
    assert client.execute_command("XNACK", stream, "workers", first, "9-9") == 1
    assert read_new(client, stream, "bob") == [(first, {"n": "1"})]
    assert group_info(client, stream)["nacked"] == 1
    # Acknowledged, the delayed one is forgotten.
    assert client.xack(stream, "workers", second) == 1
    assert "nacked" not in group_info(client, stream)


def test_options_are_refused_with_redis_style_errors(client, key):
    stream, _ = queue_names(key)
    client.execute_command("XGROUP", "CREATE", stream, "workers", "$", "MKSTREAM")
    elsewhere = next(name for name in (key("elsewhere") for _ in range(10))
                     if key_slot(name.encode()) != key_slot(stream.encode()))
    with pytest.raises(redis.ResponseError, match="same slot"):
        client.execute_command("XGROUP", "SETOPTIONS", stream, "workers", "DEADLETTER", elsewhere)
    with pytest.raises(redis.ResponseError, match="ACKWAIT must be positive or 0"):
        client.execute_command("XGROUP", "SETOPTIONS", stream, "workers", "ACKWAIT", -5)
    with pytest.raises(redis.ResponseError, match="NOGROUP"):
        client.execute_command("XNACK", stream, "nobody", "1-1")
    # A plain group keeps Redis's XINFO GROUPS shape.
    assert sorted(group_info(client, stream)) == sorted(
        ["name", "consumers", "pending", "last-delivered-id", "entries-read", "lag"])
