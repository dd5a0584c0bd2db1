"""The gateway's HTTP/JSON API: its operations by hand, and every
operation checked against its OpenAPI description by schemathesis (PyPI).
A cluster of its own (3 nodes, 3 shards): schemathesis writes keys of
every shape, which the other tests' counts should not see."""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import redis

from polis_cluster import HOST, Cluster, polis_binary, wait_until


@pytest.fixture(scope="module")
def http_cluster():
    started = Cluster(polis_binary(), nodes=3, shards=3)
    try:
        yield started
    finally:
        started.stop()


class Api:
    def __init__(self, port: int, credentials: tuple[str, str] | None = None):
        self.base = "http://%s:%d" % (HOST, port)
        self.credentials = credentials

    def call(self, method: str, path: str, body: object | None = None, raw: bytes | None = None):
        """Returns (status, decoded JSON body)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.credentials:
            token = base64.b64encode(("%s:%s" % self.credentials).encode()).decode()
            request.add_header("Authorization", "Basic " + token)
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            assert error.headers.get("Content-Type", "").startswith("application/json"), error.headers
            return error.code, json.loads(error.read())


def quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def test_keys_counters_and_expiry(http_cluster, key):
    key = key()
    api = Api(http_cluster.gateway_http_port())
    name = key + "/with slash and ü"
    assert api.call("PUT", "/v1/keys/" + quote(name), {"value": "hello"}) == (200, {"key": name, "stored": True})
    assert api.call("GET", "/v1/keys/" + quote(name)) == (200, {"key": name, "value": "hello"})
    # The same key through RESP.
    plain = redis.Redis(host=HOST, port=http_cluster.gateway_port(), decode_responses=True, socket_timeout=10)
    assert plain.get(name) == "hello"
    assert api.call("DELETE", "/v1/keys/" + quote(name)) == (200, {"key": name, "deleted": 1})
    status, body = api.call("GET", "/v1/keys/" + quote(name))
    assert status == 404 and "no key" in body["error"]

    assert api.call("PUT", "/v1/keys/" + quote(key + "t"), {"value": "v", "ttl_ms": 60_000})[0] == 200
    assert 0 < plain.pttl(key + "t") <= 60_000

    counter = "/v1/counters/" + quote(key + "c")
    assert api.call("GET", counter) == (200, {"key": key + "c", "value": 0})
    assert api.call("POST", counter + "/increment", {}) == (200, {"key": key + "c", "value": 1})
    assert api.call("POST", counter + "/increment", {"by": -11}) == (200, {"key": key + "c", "value": -10})
    assert api.call("GET", counter) == (200, {"key": key + "c", "value": -10})

    plain.rpush(key + "l", "x")
    status, body = api.call("GET", "/v1/keys/" + quote(key + "l"))
    assert status == 409 and body["error"].startswith("WRONGTYPE")
    plain.set(key + "n", "not a number")
    status, body = api.call("POST", "/v1/counters/%s/increment" % quote(key + "n"), {"by": 1})
    assert status == 409 and "not an integer" in body["error"]


def test_bad_bodies_and_routes_get_json_errors(http_cluster, key):
    key = key()
    api = Api(http_cluster.gateway_http_port())
    path = "/v1/keys/" + quote(key)
    for raw in [b"", b"not json", b"[]", b'{"value": 5}', b'{"value": "v", "extra": 1}', b'{"value": "v", "ttl_ms": 0}']:
        status, body = api.call("PUT", path, raw=raw)
        assert status == 422 and body["error"], (raw, status, body)
    status, body = api.call("GET", "/v1/nothing/here")
    assert status == 404 and "openapi.json" in body["error"]
    status, body = api.call("GET", "/v1/streams/%s/entries?count=0" % quote(key))
    assert status == 400
    status, body = api.call("PUT", path, raw=b'{"value": "' + b"x" * (2 * 1024 * 1024) + b'"}')
    assert status == 413


def test_publish_and_streams(http_cluster, key):
    key = key()
    api = Api(http_cluster.gateway_http_port())
    subscriber = redis.Redis(host=HOST, port=http_cluster.gateway_port(), decode_responses=True,
                             socket_timeout=10).pubsub()
    subscriber.subscribe(key)
    wait_until(lambda: subscriber.get_message(timeout=0.1), 10, "the subscription's confirmation")
    status, body = api.call("POST", "/v1/channels/%s/messages" % quote(key), {"message": "hi"})
    assert status == 200 and body["receivers"] >= 1
    message = wait_until(lambda: subscriber.get_message(timeout=0.1), 10, "the message")
    assert message["data"] == "hi"
    subscriber.close()

    entries = "/v1/streams/%s/entries" % quote(key + "s")
    ids = []
    for index in range(5):
        status, body = api.call("POST", entries, {"fields": {"n": str(index), "kind": "test"}})
        assert status == 201
        ids.append(body["id"])
    assert ids == sorted(ids, key=lambda id: tuple(int(part) for part in id.split("-")))
    status, body = api.call("GET", entries + "?count=2")
    assert status == 200 and [entry["id"] for entry in body["entries"]] == ids[:2]
    assert body["entries"][0]["fields"] == {"n": "0", "kind": "test"}
    status, body = api.call("GET", entries + "?after=" + ids[1])
    assert [entry["id"] for entry in body["entries"]] == ids[2:]
    status, body = api.call("GET", entries + "?after=" + ids[-1])
    assert (status, body["entries"]) == (200, [])
    status, body = api.call("POST", entries, {"fields": {}})
    assert status == 422


def test_users_and_passwords_apply_over_http(http_cluster, key):
    key = key()
    plain = redis.Redis(host=HOST, port=http_cluster.gateway_port(), decode_responses=True, socket_timeout=10)
    user = "http-" + key.replace(":", "-")
    plain.execute_command("ACL", "SETUSER", user, "on", ">pw", "~%s:*" % key, "+get", "+set")
    try:
        reader = Api(http_cluster.gateway_http_port(), (user, "pw"))
        # The gateway learns users within a second or so.
        wait_until(lambda: reader.call("PUT", "/v1/keys/" + quote(key + ":a"), {"value": "1"})[0] == 200, 15,
                   "the gateway to know %s" % user)
        assert reader.call("GET", "/v1/keys/" + quote(key + ":a")) == (200, {"key": key + ":a", "value": "1"})
        status, body = reader.call("GET", "/v1/keys/" + quote("elsewhere"))
        assert status == 403 and body["error"].startswith("NOPERM")
        status, body = reader.call("DELETE", "/v1/keys/" + quote(key + ":a"))
        assert status == 403 and body["error"].startswith("NOPERM")
        status, body = Api(http_cluster.gateway_http_port(), (user, "wrong")).call("GET", "/v1/keys/x")
        assert status == 401 and body["error"].startswith("WRONGPASS")
    finally:
        plain.execute_command("ACL", "DELUSER", user)


def test_every_operation_conforms_to_the_openapi_description(http_cluster, tmp_path: Path):
    seed = int(os.environ.get("POLIS_SCHEMATHESIS_SEED") or random.SystemRandom().randrange(1, 2**31))
    print("schemathesis seed: %d (POLIS_SCHEMATHESIS_SEED=%d to repeat)" % (seed, seed))
    url = "http://%s:%d/openapi.json" % (HOST, http_cluster.gateway_http_port())
    schemathesis = Path(sys.executable).with_name("schemathesis")
    command = [str(schemathesis) if schemathesis.exists() else "schemathesis", "run", url,
               "--checks", "all", "--max-examples", "60", "--seed", str(seed), "--no-color",
               "--request-timeout", "15", "--report-dir", str(tmp_path)]
    # In the test's directory: schemathesis keeps a cache where it runs.
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    print(done.stdout[-4000:])
    assert done.returncode == 0, "schemathesis found failures (seed %d):\n%s\n%s" % (
        seed, done.stdout[-8000:], done.stderr[-2000:])
    assert " passed" in done.stdout and "generated" in done.stdout, done.stdout
