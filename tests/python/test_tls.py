"""TLS with clients no one here wrote: redis-cli --tls and redis-py
(`ssl=True`) against `polis dev --secure` (a CA generated under its data
directory, a TLS port per node at +400, a password, mutual TLS between
the nodes). Also what must be refused: a plaintext client on a TLS port,
a client certificate of another CA, and on the peer port anything but a
node of the cluster; and certificates that change on disk are taken
without a restart."""

from __future__ import annotations

import re
import shutil
import ssl
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
import redis
import redis.cluster

from polis_cluster import (HOST, established_peer_ports, PEER_PORT_OFFSET, TLS_PORT_OFFSET, Cluster, gateway_process, polis_binary,
                           wait_until)


def tls_dir(cluster: Cluster) -> Path:
    return cluster.data_dir / "tls"


def password(cluster: Cluster) -> str:
    return (cluster.data_dir / "password").read_text().strip()


def tls_port(cluster: Cluster, node) -> int:
    return node.resp_port + TLS_PORT_OFFSET


def tls_client(cluster: Cluster, node, ca: Path | None = None, cert_dir: Path | None = None,
               **kwargs) -> redis.Redis:
    options = dict(host=HOST, port=tls_port(cluster, node), ssl=True,
                   ssl_ca_certs=str(ca or tls_dir(cluster) / "ca.crt"), password=password(cluster),
                   decode_responses=True, socket_timeout=10)
    if cert_dir is not None:
        options.update(ssl_certfile=str(cert_dir / "client.crt"), ssl_keyfile=str(cert_dir / "client.key"))
    options.update(kwargs)
    return redis.Redis(**options)


def certs(directory: Path, *flags: str) -> Path:
    subprocess.run([str(polis_binary()), "tls", "certs", "--dir", str(directory), *flags], check=True,
                   stdout=subprocess.DEVNULL)
    return directory


def process_tcp_peers(pid: int) -> set[int]:
    """Returns the remote ports of the established TCP connections of
    process `pid`."""
    return set(established_peer_ports(pid))


def handshake_failures(cluster: Cluster, node) -> int:
    return tls_client(cluster, node).info("stats")["tls_handshake_failures"]


def test_redis_cli_over_tls_with_and_without_a_client_certificate(secure):
    node = secure.leader_for("tls:cli")
    base = ["redis-cli", "--tls", "--cacert", str(tls_dir(secure) / "ca.crt"), "-h", HOST,
            "-p", str(tls_port(secure, node)), "--user", "default", "--pass", password(secure),
            "--no-auth-warning"]
    assert subprocess.run(base + ["set", "tls:cli", "over tls"], capture_output=True, text=True,
                          check=True).stdout.strip() == "OK"
    with_cert = base + ["--cert", str(tls_dir(secure) / "client.crt"),
                        "--key", str(tls_dir(secure) / "client.key")]
    assert subprocess.run(with_cert + ["get", "tls:cli"], capture_output=True, text=True,
                          check=True).stdout.strip() == "over tls"


def test_a_secure_cluster_is_encrypted_at_rest(secure):
    """`polis dev --secure` gives every node a master key: what a client
    writes is found in no file of any node's data directory."""
    assert (secure.data_dir / "master.key").is_file()
    secret = "tls-at-rest-secret-value-7f3a"
    node = secure.leader_for("tls:at-rest")
    client = tls_client(secure, node)
    assert client.set("tls:at-rest", secret)
    assert client.get("tls:at-rest") == secret
    scanned = 0
    for index in range(1, 4):
        node_dir = secure.data_dir / f"node-{index}"
        assert (node_dir / "keyring").is_file(), node_dir
        for path in node_dir.rglob("*"):
            try:
                data = path.read_bytes() if path.is_file() else b""
            except FileNotFoundError:  # compacted or renamed meanwhile
                continue
            scanned += len(data)
            assert secret.encode() not in data, path
    assert scanned > 10_000


def test_tls_clients_are_sent_to_tls_ports(secure):
    """Each node publishes its TLS port in the cluster map: CLUSTER SHARDS
    shows it beside the plaintext port, a TLS client's MOVED names it,
    and redis-py's cluster client over TLS reaches every shard."""
    first = secure.nodes[0]
    client = tls_client(secure, first)

    def published():
        shards = client.execute_command("CLUSTER", "SHARDS")
        nodes = [dict(zip(n[::2], n[1::2])) if isinstance(n, list) else n
                 for shard in shards
                 for n in (dict(zip(shard[::2], shard[1::2])) if isinstance(shard, list) else shard)["nodes"]]
        ports = {(n["port"], n.get("tls-port")) for n in nodes}
        return ports if all(tls == port + TLS_PORT_OFFSET for port, tls in ports) else None

    ports = wait_until(published, 30, "every node's TLS port in CLUSTER SHARDS")
    assert len(ports) == 3, ports
    key = next(k for k in (f"tls:moved:{i}" for i in range(1000))
               if secure.leader_for(k).node_id != first.node_id)
    target = secure.leader_for(key)
    with pytest.raises(redis.exceptions.ResponseError) as moved:
        client.get(key)
    assert moved.value.args[0].endswith(f":{tls_port(secure, target)}"), moved.value.args
    cluster = redis.cluster.RedisCluster(
        host=HOST, port=tls_port(secure, first), ssl=True, ssl_ca_certs=str(tls_dir(secure) / "ca.crt"),
        password=password(secure), decode_responses=True, socket_timeout=10)
    try:
        for i in range(60):
            assert cluster.set(f"tls:cluster:{i}", i)
        assert [cluster.get(f"tls:cluster:{i}") for i in range(60)] == [str(i) for i in range(60)]
    finally:
        cluster.close()


def test_the_gateway_reaches_the_nodes_over_mutual_tls(secure):
    """`polis gateway --tls-upstream` given only the nodes' TLS ports, with
    the client certificate: its plaintext clients reach every shard (any
    plaintext connection to a TLS port would fail its handshake). With
    another CA it does not start, and says why."""
    seeds = ",".join("%s:%d" % (HOST, tls_port(secure, node)) for node in secure.nodes)
    files = ["--tls-ca-cert-file", str(tls_dir(secure) / "ca.crt"),
             "--tls-client-cert-file", str(tls_dir(secure) / "client.crt"),
             "--tls-client-key-file", str(tls_dir(secure) / "client.key")]
    auth = ["--user", "default", "--password-file", str(secure.data_dir / "password")]
    with gateway_process(seeds, "--tls-upstream", *files, *auth) as (port, _):
        client = redis.Redis(host=HOST, port=port, password=password(secure), decode_responses=True,
                             socket_timeout=10)
        for i in range(60):
            assert client.set(f"tls:upstream:{i}", i)
        assert client.mget([f"tls:upstream:{i}" for i in range(60)]) == [str(i) for i in range(60)]
    with tempfile.TemporaryDirectory() as other:
        stranger = certs(Path(other))
        done = subprocess.run(
            [str(polis_binary()), "gateway", "--listen", "%s:0" % HOST, "--cluster", seeds, "--tls-upstream",
             "--tls-ca-cert-file", str(stranger / "ca.crt"), *auth],
            capture_output=True, text=True, timeout=60)
        assert done.returncode != 0
        assert "TLS handshake" in done.stderr + done.stdout, done.stderr


def test_redis_py_over_tls_with_the_password(secure):
    node = secure.leader_for("tls:py")
    client = tls_client(secure, node, cert_dir=tls_dir(secure))
    assert client.set("tls:py", "v")
    assert client.get("tls:py") == "v"
    assert client.execute_command("ACL", "WHOAMI") == "default"
    without_password = tls_client(secure, node, password=None)
    with pytest.raises(redis.AuthenticationError):
        without_password.get("tls:py")


def test_a_plaintext_client_on_the_tls_port_is_refused_and_counted(secure):
    node = secure.nodes[1]
    before = handshake_failures(secure, node)
    plain = redis.Redis(host=HOST, port=tls_port(secure, node), socket_timeout=5)
    with pytest.raises(redis.ConnectionError):
        plain.ping()
    wait_until(lambda: handshake_failures(secure, node) > before, 10, "the refusal to be counted")
    # The node serves on: the TLS port and the plaintext one.
    assert tls_client(secure, node).ping()


def test_a_client_certificate_of_another_ca_is_refused(secure):
    node = secure.nodes[2]
    with tempfile.TemporaryDirectory() as other:
        stranger = certs(Path(other))
        before = handshake_failures(secure, node)
        client = tls_client(secure, node, cert_dir=stranger)
        with pytest.raises(redis.ConnectionError):
            client.ping()
        wait_until(lambda: handshake_failures(secure, node) > before, 10, "the refusal to be counted")
        # A client that trusts another CA refuses the node's certificate.
        with pytest.raises(redis.ConnectionError):
            tls_client(secure, node, ca=stranger / "ca.crt").ping()


def test_new_certificate_files_are_taken_without_a_restart(secure):
    node = secure.nodes[0]
    live = tls_dir(secure)
    with tempfile.TemporaryDirectory() as scratch:
        saved = Path(scratch) / "saved"
        shutil.copytree(live, saved)
        fresh = certs(Path(scratch) / "fresh")
        try:
            # The nodes' TLS ports present node.crt (server.crt is the gateway's).
            for name in ("node.crt", "node.key", "ca.crt"):
                shutil.copy(fresh / name, live / name)
            wait_until(lambda: tls_client(secure, node, ca=fresh / "ca.crt").ping(), 15,
                       "the node to present the new certificate")
            with pytest.raises(redis.ConnectionError):
                tls_client(secure, node, ca=saved / "ca.crt").ping()
        finally:
            for name in ("node.crt", "node.key", "ca.crt"):
                shutil.copy(saved / name, live / name)
            wait_until(lambda: tls_client(secure, node).ping(), 15, "the old certificate back")


def test_the_tls_port_presents_the_generated_certificate(secure):
    context = ssl.create_default_context(cafile=str(tls_dir(secure) / "ca.crt"))
    with socket.create_connection((HOST, tls_port(secure, secure.nodes[0])), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as wrapped:
            names = [value for kind, value in wrapped.getpeercert()["subjectAltName"]]
            assert "localhost" in names and "127.0.0.1" in names
            assert wrapped.version() in ("TLSv1.2", "TLSv1.3")


def test_the_gateway_serves_tls_clients_with_the_password(secure):
    line = next(line for line in secure.log_text().splitlines() if line.startswith("gateway: tls "))
    port = int(line.split()[2].rsplit(":", 1)[1])
    client = redis.Redis(host=HOST, port=port, ssl=True, ssl_ca_certs=str(tls_dir(secure) / "ca.crt"),
                         password=password(secure), decode_responses=True, socket_timeout=10)
    names = ["tls:gw:%d" % index for index in range(30)]
    for index, name in enumerate(names):
        assert client.set(name, index)
    assert client.mget(names) == [str(index) for index in range(30)]
    # polis dev --secure's gateway (in the polis dev process) reaches the
    # nodes at their TLS ports (--tls-upstream), never their plaintext ones.
    remote_ports = process_tcp_peers(secure.process.pid)
    tls_ports = {tls_port(secure, node) for node in secure.nodes}
    plain_ports = {node.resp_port for node in secure.nodes}
    assert remote_ports & tls_ports, remote_ports
    assert not remote_ports & plain_ports, remote_ports
    assert client.delete(*names) == 30
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=HOST, port=port, ssl=True, ssl_ca_certs=str(tls_dir(secure) / "ca.crt"),
                    socket_timeout=10).get("tls:gw:0")


# What an HTTP/2 client sends first: the preface and an empty SETTINGS frame.
HTTP2_START = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def node_log(cluster: Cluster, node) -> str:
    for line in cluster.log_text().splitlines():
        found = re.match(r"node %d: .* log (\S+)$" % node.node_id, line)
        if found:
            return Path(found.group(1)).read_text(errors="replace")
    raise AssertionError("no log path for node %d in:\n%s" % (node.node_id, cluster.log_text()))


def peer_exchange(cluster: Cluster, node, cert: Path, key: Path) -> bytes:
    """Opens TLS to `node`'s peer port as a client presenting `cert`
    (checking the node for the cluster's CA and name), starts HTTP/2 and
    returns what the node answers (b"" when it closed the connection)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(tls_dir(cluster) / "ca.crt"))
    context.load_cert_chain(str(cert), str(key))
    with socket.create_connection((HOST, node.resp_port + PEER_PORT_OFFSET), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="polis-node") as wrapped:
            try:
                wrapped.sendall(HTTP2_START)
                return wrapped.recv(9)
            except (ssl.SSLError, ConnectionError):
                return b""


def test_nodes_speak_mutual_tls_and_the_peer_port_refuses_strangers(secure):
    node = secure.nodes[1]
    live = tls_dir(secure)
    # The cluster runs on mutual TLS: it was serving before this test, and
    # its own certificate gets an HTTP/2 SETTINGS frame (type 4) back.
    answer = peer_exchange(secure, node, live / "node.crt", live / "node.key")
    assert len(answer) == 9 and answer[3] == 4, answer
    # Signed by the cluster's CA, but a client's: no cluster name.
    assert peer_exchange(secure, node, live / "client.crt", live / "client.key") == b""
    with tempfile.TemporaryDirectory() as other:
        # A node's name, signed by another CA.
        stranger = certs(Path(other))
        assert peer_exchange(secure, node, stranger / "node.crt", stranger / "node.key") == b""
    # Plaintext on the peer port.
    with socket.create_connection((HOST, node.resp_port + PEER_PORT_OFFSET), timeout=10) as plain:
        plain.sendall(HTTP2_START)
        try:
            answer = plain.recv(9)
        except ConnectionError:
            answer = b""
        # At most a TLS alert (content type 21), never HTTP/2.
        assert answer[:1] in (b"", b"\x15"), answer
    # Each refusal is logged by the node.
    wait_until(lambda: node_log(secure, node).count("a peer was refused") >= 3, 10,
               "three refusals in node %d's log" % node.node_id)
    # And the cluster still commits writes, which need its peers.
    try:
        assert tls_client(secure, node).set("peer-tls-check", "1")
    except redis.exceptions.MovedError as moved:
        # A TLS client is sent to the leader's TLS port.
        host, port = str(moved).split()[-1].rsplit(":", 1)
        leader = secure.node_by_resp_addr(f"{host}:{int(port) - TLS_PORT_OFFSET}")
        assert tls_client(secure, leader).set("peer-tls-check", "1")
