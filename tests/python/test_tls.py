"""TLS with clients no one here wrote: redis-cli --tls and redis-py
(`ssl=True`) against `polis dev --secure` (a CA generated under its data
directory, a TLS port per node at +400, a password). Also what must be
refused: a plaintext client on a TLS port, a client certificate of
another CA; and certificates that change on disk are taken without a
restart."""

from __future__ import annotations

import shutil
import ssl
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
import redis

from polis_cluster import HOST, TLS_PORT_OFFSET, Cluster, polis_binary, wait_until


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
            for name in ("server.crt", "server.key", "ca.crt"):
                shutil.copy(fresh / name, live / name)
            wait_until(lambda: tls_client(secure, node, ca=fresh / "ca.crt").ping(), 15,
                       "the node to present the new certificate")
            with pytest.raises(redis.ConnectionError):
                tls_client(secure, node, ca=saved / "ca.crt").ping()
        finally:
            for name in ("server.crt", "server.key", "ca.crt"):
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
    assert client.delete(*names) == 30
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=HOST, port=port, ssl=True, ssl_ca_certs=str(tls_dir(secure) / "ca.crt"),
                    socket_timeout=10).get("tls:gw:0")
