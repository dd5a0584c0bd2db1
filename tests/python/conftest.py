"""Fixtures: local polis clusters for the whole pytest session."""

from __future__ import annotations

import itertools
import re
import signal
import sys
from pathlib import Path

import pytest
from redis.cluster import RedisCluster

sys.path.insert(0, str(Path(__file__).resolve().parent))

from polis_cluster import HOST, Cluster, polis_binary  # noqa: E402


def _interrupt(signal_number, frame):
    raise KeyboardInterrupt("signal %d" % signal_number)


def pytest_configure(config):
    # SIGTERM (from `timeout`, say) would end Python without running fixture
    # teardown, leaving polis dev running; as an interrupt, pytest tears down.
    signal.signal(signal.SIGTERM, _interrupt)


def _session_cluster(nodes: int, shards: int, **options):
    started = Cluster(polis_binary(), nodes=nodes, shards=shards, **options)
    try:
        yield started
    finally:
        log = started.log_text()
        code = started.stop()
        if code != 0:
            pytest.fail("polis dev exited with %s after SIGINT (expected 0); its output:\n%s" % (code, log))


@pytest.fixture(scope="session")
def cluster():
    """The default `polis dev`: 3 nodes, 3 shards of 3 replicas, one led
    from each node. Stopped (by its PID) after the session."""
    yield from _session_cluster(nodes=3, shards=3)


@pytest.fixture(scope="session")
def secure():
    """`polis dev --secure`: TLS ports at +400, a CA under its data
    directory, a password for the default user."""
    yield from _session_cluster(nodes=3, shards=3, secure=True)


@pytest.fixture(scope="session")
def big_cluster():
    """`polis dev --nodes 5 --shards 10`."""
    yield from _session_cluster(nodes=5, shards=10)


@pytest.fixture
def client(cluster):
    """A redis-py RedisCluster client of the default cluster."""
    connected = RedisCluster(host=HOST, port=cluster.nodes[0].resp_port, decode_responses=True,
                             socket_timeout=10)
    yield connected
    connected.close()


_key_counter = itertools.count()


@pytest.fixture
def key(request):
    """Returns a function making key names unique to this test (free of
    glob characters, so a name can head a SCAN or KEYS pattern)."""
    test_name = re.sub(r"[][*?\\]", "_", request.node.name)

    def make(label: str = "k") -> str:
        return "pytest:%s:%s:%d" % (test_name, label, next(_key_counter))

    return make
