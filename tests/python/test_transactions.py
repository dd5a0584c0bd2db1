"""MULTI/EXEC/WATCH through redis-py against polis: a transaction is one
Raft log entry on its slot's shard; WATCH compares key versions at apply."""

from __future__ import annotations

import threading

import pytest
import redis

from polis_cluster import HOST


def leader_client(cluster, key):
    leader = cluster.leader_for(key)
    return redis.Redis(host=HOST, port=leader.resp_port, decode_responses=True, socket_timeout=10,
                       single_connection_client=True)


def raw(client, *args):
    """Sends one command on the client's one connection and returns the
    reply unparsed (redis-py would turn QUEUED into False); an error reply
    raises."""
    client.connection.send_command(*args)
    return client.connection.read_response()


def test_a_transaction_applies_all_its_commands_in_order(cluster, key):
    tag = "{%s}" % key("tag")
    a, h = tag + "a", tag + "h"
    client = leader_client(cluster, a)
    pipe = client.pipeline(transaction=True)
    pipe.set(a, 1)
    pipe.incr(a)
    pipe.hset(h, "f", "v")
    pipe.incr(h)
    pipe.get(a)
    replies = pipe.execute(raise_on_error=False)
    assert replies[:3] == [True, 2, 1]
    # A runtime error answers in its place; the rest still applied.
    assert isinstance(replies[3], redis.ResponseError)
    assert str(replies[3]).startswith("WRONGTYPE")
    assert replies[4] == "2"


def test_queueing_errors_abort_the_whole_transaction(cluster, key):
    a = key("a")
    client = leader_client(cluster, a)
    client.set(a, "before")
    assert raw(client, "MULTI") == "OK"
    assert raw(client, "SET", a, "after") == "QUEUED"
    with pytest.raises(redis.ResponseError, match="unknown command"):
        raw(client, "NOSUCHCOMMAND", a)
    with pytest.raises(redis.exceptions.ExecAbortError, match="Transaction discarded"):
        raw(client, "EXEC")
    assert client.get(a) == "before"


def test_keys_of_one_transaction_share_a_slot(cluster, key):
    a, b = key("a"), key("b")
    client = leader_client(cluster, a)
    raw(client, "MULTI")
    raw(client, "SET", a, 1)
    # The first key that hashes elsewhere is refused; EXEC then aborts.
    with pytest.raises(redis.ResponseError, match="same slot"):
        raw(client, "SET", "{%s}other" % b, 1)
    with pytest.raises(redis.exceptions.ExecAbortError, match="Transaction discarded"):
        raw(client, "EXEC")


def test_watch_aborts_when_another_client_changed_the_key(cluster, key):
    a = key("a")
    client = leader_client(cluster, a)
    other = leader_client(cluster, a)
    client.set(a, 1)
    raw(client, "WATCH", a)
    other.set(a, 5)
    raw(client, "MULTI")
    raw(client, "INCR", a)
    assert raw(client, "EXEC") is None
    assert client.get(a) == "5"
    # After EXEC nothing is watched any more.
    raw(client, "MULTI")
    raw(client, "INCR", a)
    assert raw(client, "EXEC") == [6]


def test_watch_of_an_absent_key_that_stays_absent_does_not_abort(cluster, key):
    a = key("a")
    client = leader_client(cluster, a)
    raw(client, "WATCH", a)
    raw(client, "MULTI")
    raw(client, "SET", a, "x")
    assert raw(client, "EXEC") == ["OK"]


def test_optimistic_increments_from_many_clients_lose_nothing(cluster, key):
    """The classic WATCH loop: 4 clients each add 25 to one counter with
    GET + MULTI/SET/EXEC, retrying when EXEC aborts; the total is exact."""
    counter = key("counter")
    leader_client(cluster, counter).set(counter, 0)
    errors = []

    def worker():
        client = leader_client(cluster, counter)
        try:
            for _ in range(25):
                for _attempt in range(1000):
                    with client.pipeline(transaction=True) as pipe:
                        try:
                            pipe.watch(counter)
                            value = int(pipe.get(counter))
                            pipe.multi()
                            pipe.set(counter, value + 1)
                            pipe.execute()
                            break
                        except redis.WatchError:
                            continue
                else:
                    errors.append("no EXEC succeeded in 1000 attempts")
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(repr(error))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert leader_client(cluster, counter).get(counter) == "100"
