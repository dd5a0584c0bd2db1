"""Rate limits and the sampled request log of `polis gateway`, started
here as a process of its own (with the flags under test) in front of the
session's 3-node cluster."""

from __future__ import annotations

import json
import subprocess

import pytest
import redis

from polis_cluster import HOST, Raw, gateway_process, polis_binary, wait_until


def gateway(cluster, *flags: str):
    """Runs `polis gateway` in front of the session's cluster."""
    seeds = ",".join(node.resp_addr for node in cluster.nodes)
    return gateway_process(seeds, *flags)


def connect(port: int) -> redis.Redis:
    return redis.Redis(host=HOST, port=port, decode_responses=True, socket_timeout=10)


def test_an_address_over_its_rate_gets_ratelimited_and_others_do_not(cluster, key):
    key = key()
    # 5 per second, burst 20: a quick loop of 60 gets about 20 through.
    with gateway(cluster, "--rate-limit-address", "5:20") as (port, _):
        # A raw connection: no client library's own commands at connect,
        # which would take tokens too.
        raw = Raw(port)
        admitted, refused = 0, []
        for index in range(60):
            reply = raw.call("SET", "%s:%d" % (key, index), "1")
            if reply == "OK":
                admitted += 1
            else:
                refused.append(str(reply))
        raw.close()
        client = connect(port)
        assert 20 <= admitted <= 30, (admitted, refused[:3])
        assert len(refused) == 60 - admitted
        assert all(text.startswith("RATELIMITED ") for text in refused), refused[:3]
        assert "client address 127.0.0.1" in refused[0]
        # The connection stays usable: the bucket refills (5 per second).
        assert wait_until(lambda: client.get("%s:0" % key) == "1", 10, "the bucket to refill")
        # Drain this address's bucket again; another address (a client
        # bound to 127.0.0.2, loopback too) still has a budget of its own.
        drained = False
        for _ in range(1000):
            try:
                client.ping()
            except redis.ResponseError:
                drained = True
                break
        assert drained
        other = Raw(port, source="127.0.0.2")
        assert other.call("PING") == "PONG"
        other.close()


def test_a_user_over_its_rate_is_limited_across_connections(cluster, key):
    key = key()
    with gateway(cluster, "--rate-limit-user", "2:10") as (port, _):
        first, second = Raw(port), Raw(port)
        results = [(first if index % 2 == 0 else second).call("INCR", key) for index in range(20)]
        first.close()
        second.close()
        results = [result if isinstance(result, int) else str(result) for result in results]
        granted = [result for result in results if isinstance(result, int)]
        refused = [result for result in results if isinstance(result, str)]
        # Both connections are the default user: one bucket of 10.
        assert 10 <= len(granted) <= 12, results
        assert refused and all("RATELIMITED" in text and "user 'default'" in text for text in refused)
        # What was refused was not applied.
        assert int(wait_until(lambda: cluster_value(cluster, key), 10, "a read")) == len(granted)


def cluster_value(cluster, key: str):
    """Reads `key` straight from the cluster (not rate-limited)."""
    direct = redis.Redis(host=HOST, port=cluster.gateway_port(), decode_responses=True, socket_timeout=10)
    try:
        return direct.get(key)
    finally:
        direct.close()


def test_the_request_log_names_command_user_and_outcome_never_values(cluster, key):
    key = key()
    secret = "value-that-must-not-be-logged-%s" % key
    with gateway(cluster, "--log-requests", "1", "--log-format", "json") as (port, log_path):
        client = connect(port)
        client.set(key, secret)
        assert client.get(key) == secret
        with pytest.raises(redis.ResponseError):
            client.incr(key)

        def lines():
            found = []
            for line in log_path.read_text().splitlines():
                if line.startswith("{"):
                    entry = json.loads(line)
                    if entry.get("fields", {}).get("message") == "request":
                        found.append(entry["fields"])
            return found if any(entry["command"] == "incrby" for entry in found) else None
        entries = wait_until(lines, 10, "the line of the INCRBY (redis-py's incr)")
        commands = [(entry["command"], entry["outcome"]) for entry in entries]
        assert ("set", "ok") in commands
        assert ("get", "ok") in commands
        assert ("incrby", "ERR") in commands
        assert all(entry["user"] == "default" and entry["addr"].startswith("127.0.0.1:") for entry in entries)
        assert all(isinstance(entry["micros"], int) for entry in entries)
        assert secret not in log_path.read_text()
        assert key not in log_path.read_text()


def test_bad_limit_flags_are_refused_with_a_clear_error(cluster):
    seeds = cluster.nodes[0].resp_addr
    for flags, words in [(["--rate-limit-user", "0"], "at least 1"),
                         (["--rate-limit-address", "x"], "not a number"),
                         (["--log-requests", "2"], "between 0")]:
        done = subprocess.run([str(polis_binary()), "gateway", "--listen", "%s:0" % HOST, "--cluster", seeds,
                               *flags], capture_output=True, text=True, timeout=30)
        assert done.returncode != 0
        assert words in done.stderr, done.stderr


def test_the_gateway_metrics_count_clients_requests_refusals_and_node_health(cluster, key):
    import re
    import urllib.request

    key = key()
    with gateway(cluster, "--rate-limit-address", "5:20", "--admin-listen", "%s:0" % HOST) as (port, log):
        admin = wait_until(lambda: re.search(r"metrics on (http://\S+/metrics)", log.read_text()), 30,
                           "the gateway's admin address")
        raw = Raw(port)
        replies = [raw.call("SET", "%s:%d" % (key, index), "1") for index in range(40)]
        refused = sum(1 for reply in replies if reply != "OK")
        assert refused >= 10, replies
        with urllib.request.urlopen(admin.group(1), timeout=10) as response:
            text = response.read().decode()
        raw.close()
        base = admin.group(1)[:-len("/metrics")]
        for probe, body in (("/health/live", b"ok"), ("/health/ready", b"ready")):
            with urllib.request.urlopen(base + probe, timeout=10) as response:
                assert (response.status, response.read()) == (200, body), probe
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                             text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    figures = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, number = line.rpartition(" ")
            figures[series] = float(number)
    assert figures["polis_gateway_rate_limited_total"] == refused, figures
    assert figures["polis_gateway_requests_total"] >= 40, figures
    assert figures["polis_gateway_connected_clients"] == 1, figures
    assert figures["polis_gateway_connections_received_total"] == 1, figures
    healthy = {series: number for series, number in figures.items()
               if series.startswith("polis_gateway_upstream_healthy{")}
    assert len(healthy) == len(cluster.nodes) and all(number == 1 for number in healthy.values()), healthy
    assert sum(number for series, number in figures.items()
               if series.startswith("polis_gateway_lanes{")) >= 1, figures
