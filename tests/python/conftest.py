"""Fixtures: one local polis cluster for the whole pytest session."""

from __future__ import annotations

import itertools
import signal
import sys
from pathlib import Path

import pytest
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

from polis_cluster import HOST, Cluster, polis_binary  # noqa: E402


def _interrupt(signal_number, frame):
    raise KeyboardInterrupt("signal %d" % signal_number)


def pytest_configure(config):
    # SIGTERM (from `timeout`, say) would end Python without running fixture
    # teardown, leaving polis dev running; as an interrupt, pytest tears down.
    signal.signal(signal.SIGTERM, _interrupt)


@pytest.fixture(scope="session")
def cluster():
    """A 3-node `polis dev` cluster, stopped (by its PID) after the session."""
    started = Cluster(polis_binary(), nodes=3)
    try:
        yield started
    finally:
        log = started.log_text()
        code = started.stop()
        if code != 0:
            pytest.fail("polis dev exited with %s after SIGINT (expected 0); its output:\n%s" % (code, log))


@pytest.fixture
def leader_client(cluster):
    """A redis.Redis connected to the current leader's RESP port."""
    leader = cluster.leader()
    client = redis.Redis(host=HOST, port=leader.resp_port, decode_responses=True, socket_timeout=10)
    yield client
    client.close()


_key_counter = itertools.count()


@pytest.fixture
def key(request):
    """Returns a function making key names unique to this test."""
    test_name = request.node.name

    def make(label: str = "k") -> str:
        return "pytest:%s:%s:%d" % (test_name, label, next(_key_counter))

    return make
