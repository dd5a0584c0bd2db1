"""Blocking commands against polis: waiters live on the shard's leader;
a push serves the first waiter with an entry that waiter proposed."""

from __future__ import annotations

import threading
import time

import redis

from polis_cluster import HOST


def leader_client(cluster, key, timeout=10):
    leader = cluster.leader_for(key)
    return redis.Redis(host=HOST, port=leader.resp_port, decode_responses=True,
                       socket_timeout=timeout, single_connection_client=True)


def wait_until(condition, timeout_s=10.0, what="condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("timed out waiting for %s" % what)


def blocked_clients(client):
    return client.info("clients")["blocked_clients"]


def test_a_push_serves_blocked_clients_in_arrival_order(cluster, key):
    queue = key("queue")
    admin = leader_client(cluster, queue)
    results = {}

    def pop(name):
        results[name] = leader_client(cluster, queue, timeout=30).blpop([queue], timeout=20)

    first = threading.Thread(target=pop, args=("first",))
    first.start()
    wait_until(lambda: blocked_clients(admin) >= 1, what="the first waiter")
    second = threading.Thread(target=pop, args=("second",))
    second.start()
    wait_until(lambda: blocked_clients(admin) >= 2, what="the second waiter")
    # One push of two elements serves both waiters, first come first.
    admin.rpush(queue, "a", "b")
    first.join(timeout=30)
    second.join(timeout=30)
    assert results == {"first": (queue, "a"), "second": (queue, "b")}
    assert admin.llen(queue) == 0
    wait_until(lambda: blocked_clients(admin) == 0, what="no waiter left")


def test_a_blocked_pop_times_out_with_null(cluster, key):
    queue = key("queue")
    client = leader_client(cluster, queue)
    started = time.monotonic()
    assert client.brpop([queue], timeout=0.3) is None
    assert time.monotonic() - started >= 0.25


def test_client_unblock_ends_a_wait(cluster, key):
    queue = key("queue")
    admin = leader_client(cluster, queue)
    waiter = leader_client(cluster, queue, timeout=30)
    waiter_id = waiter.client_id()
    results = []

    def pop():
        try:
            results.append(waiter.blpop([queue], timeout=0))
        except redis.ResponseError as error:
            results.append(str(error))

    thread = threading.Thread(target=pop)
    thread.start()
    wait_until(lambda: blocked_clients(admin) >= 1, what="the waiter")
    assert admin.client_unblock(waiter_id, error=True) == 1
    thread.join(timeout=30)
    assert results == ["UNBLOCKED client unblocked via CLIENT UNBLOCK"]
    assert admin.client_unblock(waiter_id) == 0


def test_blmove_into_a_processing_list_loses_nothing(cluster, key):
    """Producers push 200 items; 3 consumers BLMOVE them into one
    processing list: every item arrives exactly once."""
    tag = "{%s}" % key("tag")
    source, processing = tag + "jobs", tag + "processing"
    count = 200
    done = threading.Event()

    def consume():
        client = leader_client(cluster, source, timeout=30)
        while not done.is_set():
            client.blmove(source, processing, timeout=0.2, src="LEFT", dest="RIGHT")

    consumers = [threading.Thread(target=consume) for _ in range(3)]
    for consumer in consumers:
        consumer.start()
    producer = leader_client(cluster, source)
    for start in range(0, count, 10):
        producer.rpush(source, *["job-%d" % n for n in range(start, start + 10)])
    wait_until(lambda: producer.llen(processing) == count, timeout_s=60, what="every job moved")
    done.set()
    for consumer in consumers:
        consumer.join(timeout=30)
    moved = producer.lrange(processing, 0, -1)
    assert sorted(moved) == sorted("job-%d" % n for n in range(count))
    assert producer.llen(source) == 0


def writes_proposed(client):
    return client.info("stats")["total_writes_proposed"]


def test_waiters_propose_nothing_while_nothing_arrives(cluster, key):
    """Two clients blocked moving between each other's lists (one pops
    `a` into `b`, the other `b` into `a`) try once each, then wait: an
    empty try changed nothing and wakes nobody."""
    tag = "{%s}" % key("tag")
    first, second = tag + "a", tag + "b"
    admin = leader_client(cluster, first)
    before = writes_proposed(admin)
    results = []

    def move(source, destination):
        client = leader_client(cluster, source, timeout=30)
        results.append(client.brpoplpush(source, destination, timeout=1))

    threads = [threading.Thread(target=move, args=pair)
               for pair in ((first, second), (second, first))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [None, None]
    # One try each (a stray wake-up may add one more each), not a loop of
    # retries for the whole second they waited.
    proposed = writes_proposed(admin) - before
    assert proposed <= 4, "blocked clients proposed %d writes while waiting" % proposed


def test_a_blocked_group_read_ends_when_its_stream_goes(cluster, key):
    """XREADGROUP blocked on a stream answers Redis's UNBLOCKED error when
    the stream is deleted, overwritten by another type, flushed or
    expired."""
    stream = key("stream")
    admin = leader_client(cluster, stream)
    endings = {
        "deleted": lambda: admin.delete(stream),
        "overwritten": lambda: admin.set(stream, "a string"),
        "flushed": lambda: admin.flushall(),
        "expired": lambda: admin.pexpire(stream, 20),
    }
    for how, end in endings.items():
        admin.delete(stream)
        admin.xadd(stream, {"f": "v"}, id="1-0")
        admin.xgroup_create(stream, "group", id="$")
        results = []

        def read():
            reader = leader_client(cluster, stream, timeout=30)
            try:
                results.append(reader.xreadgroup("group", "alice", {stream: ">"}, block=0))
            except redis.ResponseError as error:
                results.append(str(error))

        thread = threading.Thread(target=read)
        thread.start()
        wait_until(lambda: blocked_clients(admin) >= 1, what="the blocked read (%s)" % how)
        end()
        thread.join(timeout=30)
        assert results == ["UNBLOCKED the stream key no longer exists"], how
        wait_until(lambda: blocked_clients(admin) == 0, what="no waiter left (%s)" % how)


def test_info_commandstats_counts_calls_failures_and_rejections(cluster, key):
    """INFO commandstats as Redis gives it: a call that ran counts in
    calls (and failed_calls when it answered an error); one refused
    before it ran (wrong arity) only in rejected_calls."""
    tag = "{%s}" % key("tag")
    name, string = tag + "list", tag + "string"
    client = leader_client(cluster, name)
    client.config_resetstat()
    client.rpush(name, "a")
    client.set(string, "v")
    try:
        client.rpush(string, "a")
    except redis.ResponseError:
        pass
    try:
        client.execute_command("RPUSH", name)
    except redis.ResponseError:
        pass
    stats = client.info("commandstats")["cmdstat_rpush"]
    assert stats["calls"] == 2
    assert stats["failed_calls"] == 1
    assert stats["rejected_calls"] == 1


def test_info_latencystats_gives_each_commands_percentiles(cluster, key):
    """INFO latencystats as Redis 7 gives it: p50, p99 and p99.9 in
    microseconds per command called (upper bounds of polis's buckets)."""
    name = key("latency")
    client = leader_client(cluster, name)
    client.config_resetstat()
    for index in range(10):
        client.set(name, index)
    stats = client.info("latencystats")
    percentiles = stats["latency_percentiles_usec_set"]
    assert list(percentiles) == ["p50", "p99", "p99.9"], stats
    values = [float(percentiles[name]) for name in ("p50", "p99", "p99.9")]
    assert 0 < values[0] <= values[1] <= values[2], percentiles
    assert "latency_percentiles_usec_set" not in client.info()
