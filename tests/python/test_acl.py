"""ACL users with redis-py, after the behaviour of Redis's tests/unit/acl.tcl
(which the TCL suite cannot run here: it is tagged external:skip). Users
live in the cluster map, so a user made on one node is enforced on every
node and through the gateway. Each test makes users of its own and
deletes them; the requirepass test puts the default user back."""

from __future__ import annotations

import itertools
import json
import os
import subprocess

import pytest
import redis
from redis.cluster import RedisCluster

from polis_cluster import HOST, Raw, RespError, resp_call, wait_until

_user_counter = itertools.count()

NOPERM_KEY = "No permissions to access a key"
NOPERM_KEY_TEXT = "this user has no permissions to access one of the keys used as arguments"
NOPERM_CHANNEL_TEXT = "this user has no permissions to access one of the channels used as arguments"
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."


def node_client(cluster, index: int, **kwargs) -> redis.Redis:
    return redis.Redis(host=HOST, port=cluster.nodes[index].resp_port, decode_responses=True,
                       socket_timeout=10, **kwargs)


@pytest.fixture
def admin(cluster):
    connected = node_client(cluster, 0)
    yield connected
    connected.close()


@pytest.fixture
def user(admin, request):
    """Returns a function making a user unique to this test; deletes them after."""
    made = []

    def make(*rules: str) -> str:
        name = "u%d_%s" % (next(_user_counter), request.node.name[:20])
        assert admin.execute_command("ACL", "SETUSER", name, *rules) == "OK"
        made.append(name)
        return name

    yield make
    if made:
        admin.execute_command("ACL", "DELUSER", *made)


def error_text(call) -> str:
    """Returns the error `call` raised. redis-py takes the code off the
    errors it maps to a class (NOPERM, WRONGPASS, NOAUTH): it is put back,
    so the text is the server's whole error line."""
    with pytest.raises(redis.RedisError) as raised:
        call()
    text = str(raised.value)
    code = {"NoPermissionError": "NOPERM", "AuthenticationError": None}.get(type(raised.value).__name__)
    if code:
        return "%s %s" % (code, text)
    if type(raised.value).__name__ == "AuthenticationError":
        return ("WRONGPASS " if text.startswith("invalid") else "NOAUTH ") + text
    return text


def test_errors_are_worded_as_redis_words_them(cluster, user):
    name = user("on", "nopass", "+get", "~k*")
    port = cluster.nodes[0].resp_port
    assert resp_call(port, "AUTH", name, "x") == "OK"
    wrong = resp_call(port, "AUTH", "nobody", "x")
    assert isinstance(wrong, RespError) and str(wrong) == WRONGPASS


def test_a_new_user_is_off_and_cannot_authenticate(cluster, user):
    name = user()
    fresh = node_client(cluster, 1)
    assert error_text(lambda: fresh.execute_command("AUTH", name, "anything")) == WRONGPASS
    assert fresh.execute_command("ACL", "WHOAMI") == "default"


def test_a_user_made_on_one_node_is_the_same_on_every_node(cluster, user):
    name = user("on", ">pw1", "~obj:*", "&chan", "+get", "+set", "+acl|whoami")
    listed = [node_client(cluster, index).execute_command("ACL", "LIST") for index in range(3)]
    assert listed[0] == listed[1] == listed[2]
    line = [entry for entry in listed[0] if entry.startswith("user %s " % name)]
    assert len(line) == 1 and "~obj:*" in line[0] and "&chan" in line[0] and "+get" in line[0]
    for index in range(3):
        connected = node_client(cluster, index)
        assert connected.execute_command("AUTH", name, "pw1")
        assert connected.execute_command("ACL", "WHOAMI") == name
        assert error_text(lambda: connected.execute_command("AUTH", name, "bad")) == WRONGPASS
    described = node_client(cluster, 2).execute_command("ACL", "GETUSER", name)
    as_dict = dict(zip(described[::2], described[1::2])) if isinstance(described, list) else described
    assert "on" in as_dict["flags"]
    assert as_dict["keys"] == "~obj:*"
    assert as_dict["channels"] == "&chan"
    assert as_dict["commands"] == "-@all +get +set +acl|whoami"
    assert len(as_dict["passwords"]) == 1 and len(as_dict["passwords"][0]) == 64


def test_commands_keys_and_channels_are_checked(cluster, user):
    name = user("on", ">pw", "+@all", "-del", "~obj:*", "%R~read:*", "%W~write:*", "&chan:*")
    client = RedisCluster(host=HOST, port=cluster.nodes[0].resp_port, username=name, password="pw",
                          decode_responses=True, socket_timeout=10)
    try:
        assert client.set("obj:1", "v")
        assert client.get("obj:1") == "v"
        assert NOPERM_KEY_TEXT in error_text(lambda: client.set("other", "v"))
        assert client.get("read:1") is None
        assert NOPERM_KEY_TEXT in error_text(lambda: client.set("read:1", "v"))
        assert client.set("write:1", "v")
        assert NOPERM_KEY_TEXT in error_text(lambda: client.get("write:1"))
        assert "this user has no permissions to run the 'del' command" in error_text(
            lambda: client.delete("obj:1"))
        assert client.publish("chan:x", "hi") == 0
        assert NOPERM_CHANNEL_TEXT in error_text(lambda: client.publish("other", "hi"))
    finally:
        client.close()
        cleaner = RedisCluster(host=HOST, port=cluster.nodes[0].resp_port, socket_timeout=10)
        cleaner.delete("obj:1")
        cleaner.delete("write:1")
        cleaner.close()


def test_a_subcommand_rule_allows_that_subcommand_only(cluster, user):
    name = user("on", ">pw", "+config|get", "+acl|whoami")
    connected = node_client(cluster, 1, username=name, password="pw")
    assert connected.execute_command("ACL", "WHOAMI") == name
    assert connected.config_get("maxclients")
    text = error_text(lambda: connected.config_set("maxclients", "10000"))
    assert text == "NOPERM this user has no permissions to run the 'config|set' command"


def test_a_refused_command_inside_multi_aborts_the_transaction(cluster, user):
    name = user("on", ">pw", "+multi", "+exec", "+set", "~*")
    connected = node_client(cluster, 0, username=name, password="pw")
    assert connected.execute_command("MULTI") == "OK"
    assert "NOPERM" in error_text(lambda: connected.execute_command("GET", "{t}x"))
    with pytest.raises(redis.exceptions.ExecAbortError):
        connected.execute_command("EXEC")


def test_a_deleted_user_must_authenticate_again(cluster, admin):
    name = "gone_%d" % next(_user_counter)
    assert admin.execute_command("ACL", "SETUSER", name, "on", ">pw", "+@all", "~*") == "OK"
    connected = Raw(cluster.nodes[2].resp_port)
    assert connected.call("AUTH", name, "pw") == "OK"
    assert connected.call("PING") == "PONG"
    assert admin.execute_command("ACL", "DELUSER", name, "nosuchuser") == 1
    assert str(connected.call("PING")) == "NOAUTH Authentication required."
    assert admin.execute_command("ACL", "DELUSER", name) == 0
    assert "cannot be removed" in error_text(lambda: admin.execute_command("ACL", "DELUSER", "default"))


def test_the_acl_log_names_what_was_refused(cluster, user):
    name = user("on", ">pw", "+get", "~allowed:*")
    connected = node_client(cluster, 0, username=name, password="pw")
    log = node_client(cluster, 0)
    assert log.execute_command("ACL", "LOG", "RESET") == "OK"
    error_text(lambda: connected.execute_command("SET", "allowed:1", "v"))
    error_text(lambda: connected.execute_command("GET", "secret"))
    error_text(lambda: connected.execute_command("GET", "secret"))
    assert isinstance(resp_call(cluster.nodes[0].resp_port, "AUTH", name, "wrong"), RespError)
    entries = log.execute_command("ACL", "LOG")
    entries = [dict(zip(entry[::2], entry[1::2])) if isinstance(entry, list) else entry for entry in entries]
    assert [(entry["reason"], entry["object"], entry["count"]) for entry in entries] == [
        ("auth", "AUTH", 1), ("key", "secret", 2), ("command", "set", 1)]
    assert all(entry["username"] == name for entry in entries)
    assert log.execute_command("ACL", "LOG", "1")[0]
    info = log.info("stats")
    assert info["acl_access_denied_auth"] >= 1 and info["acl_access_denied_key"] >= 1


def test_hello_authenticates_and_switches_protocol(cluster, user):
    name = user("on", ">pw", "+@all", "~*")
    connected = node_client(cluster, 1)
    answer = connected.execute_command("HELLO", "3", "AUTH", name, "pw")
    assert connected.execute_command("ACL", "WHOAMI") == name
    assert b"proto" in answer or "proto" in answer
    other = node_client(cluster, 1)
    assert error_text(lambda: other.execute_command("HELLO", "3", "AUTH", name, "bad")) == WRONGPASS
    assert other.execute_command("ACL", "WHOAMI") == "default"


def test_dryrun_genpass_cat_and_load(cluster, user, admin):
    name = user("on", "nopass", "+get", "~k*")
    assert admin.execute_command("ACL", "DRYRUN", name, "GET", "k1") == "OK"
    assert admin.execute_command("ACL", "DRYRUN", name, "SET", "k1", "v") == \
        "This user has no permissions to run the 'set' command"
    assert "not found" in error_text(lambda: admin.execute_command("ACL", "DRYRUN", "nobody", "GET", "x"))
    assert len(admin.execute_command("ACL", "GENPASS")) == 64
    assert len(admin.execute_command("ACL", "GENPASS", "32")) == 8
    assert "keyspace" in admin.execute_command("ACL", "CAT")
    assert "get" in admin.execute_command("ACL", "CAT", "read")
    assert "Unknown category" in error_text(lambda: admin.execute_command("ACL", "CAT", "nosuch"))
    assert "cluster map" in error_text(lambda: admin.execute_command("ACL", "LOAD"))
    assert "Syntax error" in error_text(lambda: admin.execute_command("ACL", "SETUSER", name, "bogus"))
    assert "Unknown command" in error_text(lambda: admin.execute_command("ACL", "SETUSER", name, "+nosuch"))


def test_requirepass_asks_every_new_connection_for_the_password(cluster, admin):
    try:
        assert admin.config_set("requirepass", "s3cret")
        for index in range(3):
            fresh = Raw(cluster.nodes[index].resp_port)
            assert str(fresh.call("PING")) == "NOAUTH Authentication required."
            assert str(fresh.call("GET", "x")) == "NOAUTH Authentication required."
            assert str(fresh.call("AUTH", "wrong")) == WRONGPASS
            assert fresh.call("AUTH", "s3cret") == "OK"
            assert fresh.call("PING") == "PONG"
            assert node_client(cluster, index, username="default", password="s3cret").ping()
        # A connection made before keeps its authentication, as in Redis.
        assert admin.ping()
        assert admin.config_get("requirepass")["requirepass"].startswith("#")
    finally:
        admin.config_set("requirepass", "")
        # The gateway (which has no password) marks nodes unhealthy while
        # they ask it for one; it takes them back at its next PING.
        gateway = Raw(cluster.gateway_port())
        wait_until(lambda: gateway.call("SET", "requirepass:probe", "1") == "OK", 15,
                   "the gateway to serve again")
    assert node_client(cluster, 2).ping()
    assert "without any password configured" in error_text(
        lambda: node_client(cluster, 2).execute_command("AUTH", "x"))


def test_the_gateway_enforces_the_same_users(cluster, user):
    name = user("on", ">pw", "+get", "+set", "+acl|whoami", "~gw:*")
    port = cluster.gateway_port()
    # The gateway reads the users once a second.
    connected = wait_until(lambda: authenticated(port, name, "pw"), 10, "the gateway to know %s" % name)
    assert connected.call("ACL", "WHOAMI") == name.encode()
    assert connected.call("SET", "gw:1", "v") == "OK"
    assert connected.call("GET", "gw:1") == b"v"
    assert str(connected.call("SET", "other", "v")) == "NOPERM " + NOPERM_KEY_TEXT
    assert str(connected.call("DEL", "gw:1")) == "NOPERM this user has no permissions to run the 'del' command"
    assert str(Raw(port).call("AUTH", name, "bad")) == WRONGPASS
    assert Raw(port).call("ACL", "WHOAMI") == b"default"
    hello = Raw(port)
    answer = hello.call("HELLO", "2", "AUTH", name, "pw")
    assert isinstance(answer, list) and b"proto" in answer
    assert hello.call("ACL", "WHOAMI") == name.encode()
    RedisCluster(host=HOST, port=cluster.nodes[0].resp_port, socket_timeout=10).delete("gw:1")


def authenticated(port: int, name: str, password: str):
    connection = Raw(port)
    return connection if connection.call("AUTH", name, password) == "OK" else None


def test_the_admin_api_takes_the_users_of_the_cluster(cluster, user, admin):
    node = cluster.nodes[1]
    # A cluster nobody secured: the default user is on and nopass, and the
    # admin API is as open as the RESP ports.
    assert cluster.http_get(node, "/status")[0] == 200
    operator = user("on", ">op-pw", "+@admin")
    reader = user("on", ">rd-pw", "+@read", "~*")
    try:
        assert admin.config_set("requirepass", "s3cret")
        # The health probes stay open; everything else asks who is calling.
        assert cluster.http_get(node, "/health/live") == (200, b"ok")
        code, body = cluster.http_get(node, "/status")
        assert code == 401 and body.startswith(b"NOAUTH") and b"POLIS_PASSWORD" in body
        assert cluster.http_get(node, "/status", auth=(operator, "wrong")) == (401, WRONGPASS.encode())
        code, body = cluster.http_get(node, "/namespaces", auth=(reader, "rd-pw"))
        assert code == 403 and body.startswith(b"NOPERM User %s" % reader.encode()), body
        assert cluster.http_get(node, "/status", auth=(operator, "op-pw"))[0] == 200
        assert cluster.http_get(node, "/status", auth=("default", "s3cret"))[0] == 200
        entries = node_client(cluster, 1, password="s3cret").execute_command("ACL", "LOG", "10")
        entries = [dict(zip(entry[::2], entry[1::2])) if isinstance(entry, list) else entry for entry in entries]
        assert any(entry["username"] == reader and entry["object"] == "admin-api" for entry in entries), entries
        # polis commands send POLIS_USER and POLIS_PASSWORD.
        command = [str(cluster.binary), "status", "--node", node.admin_addr, "--json"]
        refused = subprocess.run(command, capture_output=True, text=True, timeout=10)
        assert refused.returncode != 0 and "POLIS_PASSWORD" in refused.stdout + refused.stderr
        environment = dict(os.environ, POLIS_USER=operator, POLIS_PASSWORD="op-pw")
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, env=environment)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["node_id"] == node.node_id
    finally:
        admin.config_set("requirepass", "")
        gateway = Raw(cluster.gateway_port())
        wait_until(lambda: gateway.call("SET", "requirepass:probe", "1") == "OK", 15,
                   "the gateway to serve again")
    assert cluster.http_get(node, "/status")[0] == 200
