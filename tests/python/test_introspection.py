"""SLOWLOG, LATENCY and MONITOR on a polis node, through redis-py and raw
RESP, with Redis 7's reply shapes. Each node keeps its own slow log,
latency events and monitors, so every test talks to one node (the leader
of its key's shard, where the key's commands run). Every CONFIG a test
changes is put back: the cluster is the session's."""

from __future__ import annotations

import re
import time

import pytest
import redis

from polis_cluster import HOST, Raw, RespError, encode_request

MONITOR_LINE = re.compile(r'^(\d+)\.(\d{6}) \[0 ([0-9.]+):(\d+)\] (.*)$')
# Lines a monitor may see before the one a test waits for (other clients
# of the node, redis-py's CLIENT SETINFO at connect).
LINES_MAX = 200


def connect(node, **options) -> redis.Redis:
    return redis.Redis(host=HOST, port=node.resp_port, decode_responses=True, socket_timeout=10, **options)


@pytest.fixture
def restored():
    """Returns a function that remembers a node's CONFIG values and puts
    them back after the test."""
    saved = []

    def remember(node, *names: str) -> redis.Redis:
        admin = connect(node)
        for name in names:
            saved.append((node, name, admin.config_get(name)[name]))
        return admin

    yield remember
    for node, name, value in reversed(saved):
        connect(node).config_set(name, value)


def slowlog(admin: redis.Redis, count: int | None = -1) -> list[dict]:
    """Returns SLOWLOG GET's entries as redis-py parses them, text
    decoded (redis-py keeps the logged arguments bytes)."""
    entries = admin.slowlog_get(count)
    for entry in entries:
        for field in ("command", "client_address", "client_name"):
            if isinstance(entry.get(field), bytes):
                entry[field] = entry[field].decode()
    return entries


def slowlog_commands(admin: redis.Redis) -> list[str]:
    return [entry["command"] for entry in slowlog(admin)]


def test_slowlog_logs_every_command_with_its_fields(cluster, key, restored):
    name = key()
    node = cluster.leader_for(name)
    admin = restored(node, "slowlog-log-slower-than", "slowlog-max-len")
    admin.config_set("slowlog-max-len", 128)
    admin.config_set("slowlog-log-slower-than", 0)
    admin.slowlog_reset()
    # SLOWLOG RESET empties the log, then is logged itself, as in Redis.
    assert slowlog_commands(admin) == ["SLOWLOG RESET"]

    client = connect(node, client_name="introspection")
    address = client.client_info()["addr"]
    started = time.time()
    client.set(name, "v")
    assert client.get(name) == "v"
    set_key = "{%s}:set" % name
    client.sadd(set_key, *[str(n) for n in range(40)])
    client.set(name, "x" * 200)

    entries = slowlog(admin)
    by_command = {entry["command"]: entry for entry in entries}
    ids = [entry["id"] for entry in entries]
    assert ids == sorted(ids, reverse=True), "newest first, ids growing"
    entry = by_command["SET %s v" % name]
    assert entry["client_address"] == address
    assert entry["client_name"] == "introspection"
    assert started - 5 <= entry["start_time"] <= time.time() + 5
    assert entry["duration"] >= 0
    assert "GET %s" % name in by_command
    # At most 32 arguments, the last saying how many more (42 sent).
    trimmed = "SADD %s %s ... (11 more arguments)" % (set_key, " ".join(str(n) for n in range(29)))
    assert trimmed in by_command, list(by_command)
    # Arguments cut at 128 bytes.
    assert "SET %s %s... (72 more bytes)" % (name, "x" * 128) in by_command, list(by_command)

    # Each command is logged once it answered: GET does not see itself.
    logged = len(admin.slowlog_get(-1))
    assert admin.slowlog_len() == logged + 1
    assert len(admin.slowlog_get(2)) == 2
    assert len(admin.slowlog_get(0)) == 0
    assert len(admin.slowlog_get()) == min(10, admin.slowlog_len())
    with pytest.raises(redis.ResponseError, match="count should be greater than or equal to -1"):
        admin.slowlog_get(-2)
    help_lines = admin.execute_command("SLOWLOG", "HELP")
    assert help_lines[0].startswith("SLOWLOG <subcommand>")


def test_slowlog_is_bounded_redacts_secrets_and_can_be_disabled(cluster, key, restored):
    name = key()
    node = cluster.leader_for(name)
    admin = restored(node, "slowlog-log-slower-than", "slowlog-max-len")
    admin.config_set("slowlog-log-slower-than", 0)
    admin.config_set("slowlog-max-len", 3)
    admin.slowlog_reset()
    for _ in range(10):
        admin.ping()
    assert admin.slowlog_len() == 3
    assert len(admin.slowlog_get(-1)) == 3

    admin.config_set("slowlog-max-len", 128)
    admin.slowlog_reset()
    raw = Raw(node.resp_port)
    try:
        assert isinstance(raw.call("AUTH", "nobody", "not-a-password"), RespError)
    finally:
        raw.close()
    assert "AUTH (redacted) (redacted)" in slowlog_commands(admin)

    admin.config_set("slowlog-log-slower-than", -1)
    admin.slowlog_reset()
    admin.set(name, "v")
    assert admin.slowlog_len() == 0


def test_slow_commands_only_past_the_threshold(cluster, key, restored):
    node = cluster.leader_for(key())
    admin = restored(node, "slowlog-log-slower-than", "slowlog-max-len")
    admin.config_set("slowlog-max-len", 128)
    admin.config_set("slowlog-log-slower-than", 100000)
    admin.slowlog_reset()
    admin.ping()
    assert admin.slowlog_len() == 0
    admin.execute_command("DEBUG", "SLEEP", "0.2")
    entries = slowlog(admin, None)
    assert [entry["command"] for entry in entries] == ["DEBUG SLEEP 0.2"]
    assert entries[0]["duration"] >= 200000


def test_latency_monitor_records_spikes_and_resets(cluster, restored):
    node = cluster.nodes[0]
    admin = restored(node, "latency-monitor-threshold")
    admin.config_set("latency-monitor-threshold", 0)
    admin.execute_command("LATENCY", "RESET")
    doctor = admin.execute_command("LATENCY", "DOCTOR")
    assert "CONFIG SET latency-monitor-threshold" in doctor, doctor

    admin.config_set("latency-monitor-threshold", 40)
    doctor = admin.execute_command("LATENCY", "DOCTOR")
    assert "no latency spike was observed" in doctor, doctor
    admin.execute_command("DEBUG", "SLEEP", "0.05")
    latest = {event[0]: event[1:] for event in admin.execute_command("LATENCY", "LATEST")}
    when, latency_ms, latency_ms_max = latest["command"]
    assert abs(when - time.time()) < 60
    assert 50 <= latency_ms <= latency_ms_max
    history = admin.execute_command("LATENCY", "HISTORY", "command")
    assert [when, latency_ms] in history, history
    assert admin.execute_command("LATENCY", "HISTORY", "blabla") == []
    doctor = admin.execute_command("LATENCY", "DOCTOR")
    assert re.search(r"1\. command: \d+ latency spikes \(average \d+ms", doctor), doctor
    with pytest.raises(redis.ResponseError, match="No samples available for event 'blabla'"):
        admin.execute_command("LATENCY", "GRAPH", "blabla")

    assert admin.execute_command("LATENCY", "RESET", "blabla") == 0
    assert admin.execute_command("LATENCY", "RESET") >= 1
    assert admin.execute_command("LATENCY", "LATEST") == []
    with pytest.raises(redis.ResponseError, match=re.escape("wrong number of arguments for 'latency|help' command")):
        admin.execute_command("LATENCY", "HELP", "xxx")


def histogram(reply) -> dict:
    """Returns LATENCY HISTOGRAM's reply as dicts, from RESP2's flat
    arrays or RESP3's maps."""
    if isinstance(reply, dict):
        return reply
    pairs = dict(zip(reply[::2], reply[1::2]))
    parsed = {}
    for command, fields in pairs.items():
        fields = dict(zip(fields[::2], fields[1::2]))
        buckets = fields["histogram_usec"]
        fields["histogram_usec"] = dict(zip(buckets[::2], buckets[1::2]))
        parsed[command] = fields
    return parsed


def test_latency_histogram_counts_calls_in_cumulative_buckets(cluster, key):
    name = key()
    node = cluster.leader_for(name)
    client = connect(node)
    before = histogram(client.execute_command("LATENCY", "HISTOGRAM", "set"))
    calls_before = before.get("set", {}).get("calls", 0)
    client.set(name, "a")
    client.set(name, "b")
    after = histogram(client.execute_command("LATENCY", "HISTOGRAM", "set", "blabla"))
    assert list(after) == ["set"]
    assert after["set"]["calls"] == calls_before + 2
    buckets = after["set"]["histogram_usec"]
    counts = list(buckets.values())
    assert counts == sorted(counts) and counts[-1] == after["set"]["calls"], buckets
    assert list(buckets) == sorted(buckets)
    assert histogram(client.execute_command("LATENCY", "HISTOGRAM", "blabla")) == {}

    resp3 = connect(node, protocol=3)
    client.execute_command("CLIENT", "ID")
    maps = resp3.execute_command("LATENCY", "HISTOGRAM", "client")
    assert isinstance(maps, dict)
    assert maps["client|id"]["calls"] >= 1
    assert all(name.startswith("client|") for name in maps)


def lines_until(raw: Raw, needle: str) -> list[str]:
    """Returns the monitor lines on `raw` up to the first that holds
    `needle` (in any case), that one last."""
    lines = []
    for _ in range(LINES_MAX):
        reply = raw.reader.reply()
        assert isinstance(reply, str) and MONITOR_LINE.match(reply), reply
        lines.append(reply)
        if needle.lower() in reply.lower():
            return lines
    raise AssertionError("no line with %r in %r" % (needle, lines))


def next_line(raw: Raw, needle: str) -> str:
    """Returns the first monitor line on `raw` that holds `needle`."""
    return lines_until(raw, needle)[-1]


def next_reply(raw: Raw):
    """Returns the next reply on `raw` that is not a monitor line."""
    for _ in range(LINES_MAX):
        reply = raw.reader.reply()
        if not (isinstance(reply, str) and MONITOR_LINE.match(reply)):
            return reply
    raise AssertionError("only monitor lines")


def test_monitor_shows_commands_of_other_clients_as_redis(cluster, key):
    name = key()
    node = cluster.leader_for(name)
    monitor = Raw(node.resp_port)
    writer = Raw(node.resp_port)
    try:
        assert monitor.call("MONITOR") == "OK"
        writer_port = writer.connection.getsockname()[1]
        assert writer.call("SET", name, 'a "b"\n\xff') == "OK"
        line = next_line(monitor, '"set"')
        match = MONITOR_LINE.match(line)
        assert match and abs(int(match.group(1)) - time.time()) < 60, line
        assert match.group(3) == HOST and int(match.group(4)) == writer_port, line
        assert match.group(5) == '"SET" "%s" "a \\"b\\"\\n\\xc3\\xbf"' % name, line
        # Secrets are redacted; admin commands are not shown.
        assert isinstance(writer.call("AUTH", "nobody", "not-a-password"), RespError)
        assert next_line(monitor, '"auth"').endswith('"AUTH" "(redacted)" "(redacted)"')
        writer.call("CONFIG", "GET", "maxmemory")
        writer.call("ECHO", "after-config")
        lines = lines_until(monitor, '"echo"')
        assert lines[-1].endswith('"ECHO" "after-config"')
        assert not any('"config"' in line.lower() for line in lines), lines
        clients = writer.call("CLIENT", "LIST").decode()
        assert "flags=O" in clients, clients

        # A monitor may not touch the keyspace; other commands run, and
        # it sees them too. RESET ends monitor mode.
        # (Monitor lines may come before each reply: sent, then read.)
        monitor.connection.sendall(encode_request("GET", name))
        refused = next_reply(monitor)
        assert isinstance(refused, RespError) and "Replica can't interact with the keyspace" in str(refused)
        monitor.connection.sendall(encode_request("PING"))
        assert next_reply(monitor) == "PONG"
        assert next_line(monitor, "[0 %s:%d]" % monitor.connection.getsockname()).endswith('"PING"')
        monitor.connection.sendall(encode_request("RESET"))
        assert next_reply(monitor) == "RESET"
        monitor.connection.sendall(encode_request("GET", name))
        assert next_reply(monitor) == 'a "b"\n\xff'.encode()
    finally:
        monitor.close()
        writer.close()


def test_monitor_through_redis_py(cluster, key):
    name = key()
    node = cluster.leader_for(name)
    watcher = connect(node)
    writer = connect(node)
    writer_port = writer.client_info()["addr"].rsplit(":", 1)[1]
    with watcher.monitor() as monitor:
        writer.set(name, "value")
        writer.get(name)
        seen = []
        for _ in range(LINES_MAX):
            command = monitor.next_command()
            if name in command["command"]:
                seen.append(command)
            if len(seen) == 2:
                break
    # redis-py sends command names in capitals.
    assert [command["command"] for command in seen] == ["SET %s value" % name, "GET %s" % name]
    assert all(command["client_port"] == writer_port for command in seen)
    assert all(command["db"] == 0 for command in seen)


def test_monitor_shows_a_transaction_in_the_order_it_ran(cluster, key):
    name = key()
    node = cluster.leader_for(name)
    monitor = Raw(node.resp_port)
    writer = connect(node)
    try:
        assert monitor.call("MONITOR") == "OK"
        transaction = writer.pipeline(transaction=True)
        transaction.set(name, "1")
        transaction.incr(name)
        assert transaction.execute() == [True, 2]
        lines = [next_line(monitor, '"multi"')]
        lines.append(next_line(monitor, name))
        lines.append(next_line(monitor, name))
        lines.append(next_line(monitor, '"exec"'))
        commands = [MONITOR_LINE.match(line).group(5) for line in lines]
        # redis-py sends INCR as INCRBY 1.
        assert commands == ['"MULTI"', '"SET" "%s" "1"' % name, '"INCRBY" "%s" "1"' % name, '"EXEC"']
    finally:
        monitor.close()
