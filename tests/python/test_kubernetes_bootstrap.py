"""The Kubernetes bootstrap path, run as local processes: the StatefulSet's
entrypoint script (deploy/kubernetes/polis-entrypoint.sh, the file the
polis-scripts ConfigMap carries) starts pods polis-0..2, scales to 5 and
back to 3 the way docs/operations.md says, and a key written first is
read at the end.

How a process is made a pod, with no change to the machine:
- `unshare --mount --uts` gives each process a private mount namespace, in
  which a hosts file is bind-mounted over /etc/hosts, and its own
  hostname (`polis-N`, which the script reads as `uname -n`). The hosts
  file maps each pod's DNS name, polis-N.polis-peers.<namespace>.svc.
  cluster.local, to a loopback address of its own (127.0.0.11 + N), as
  cluster DNS maps it to the pod's IP; the gateway's short seed names
  (polis-N.polis-peers, which the namespace's DNS search path completes)
  are aliases there. Needs root (CAP_SYS_ADMIN), as CI has.
- Every pod listens on the same ports, as pods do, on its own address:
  the ports are leased as polis_cluster.reserve_base_port leases them
  (and checked free on each address), not the manifest's 7000/7100/7200.
- The environment is the container's, read from the rendered StatefulSet
  ($(POD_NAMESPACE) expanded as the kubelet does), with the settings file
  of the polis-config ConfigMap: mutual TLS between the nodes and
  encryption at rest, with a CA and a key made here in place of the
  example Secrets.
- Clients that must resolve the pods' names (redis-py RedisCluster, the
  polis CLI, the gateway) run in such a namespace too; the test itself
  reaches pods by address, as the kubelet's probes do.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

from kubernetes_manifests import ENTRYPOINT, CONFIG, container, env_values, find
from polis_cluster import Fatal, polis_binary, reserve_base_port, wait_until

NAMESPACE = "polis-test"
FIRST_POD_ADDRESS = 11  # polis-N is 127.0.0.(11 + N)
GATEWAY_ADDRESS = "127.0.0.30"
PODS_MAX = 5
READY_TIMEOUT_S = 90.0
MOVE_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
COMMAND_TIMEOUT_S = 30.0

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="unshare --mount needs root (CAP_SYS_ADMIN)")

# Runs its arguments as pod $1 would: hosts file $0 over /etc/hosts,
# hostname $1.
IN_POD = 'mount --bind "$0" /etc/hosts && hostname "$1" && shift && exec "$@"'

CLIENT = textwrap.dedent("""
    import sys
    from redis.cluster import RedisCluster
    host, port, operation, key = sys.argv[1:5]
    client = RedisCluster(host=host, port=int(port), decode_responses=True, socket_timeout=10)
    print(client.set(key, sys.argv[5]) if operation == "set" else client.get(key))
""")


def pod_address(ordinal: int) -> str:
    return "127.0.0.%d" % (FIRST_POD_ADDRESS + ordinal)


def lease_ports():
    """Returns (ports, locks): RESP, admin, peer and TLS ports, leased and
    free on every pod's address and the gateway's."""
    addresses = [pod_address(ordinal) for ordinal in range(PODS_MAX)] + [GATEWAY_ADDRESS]
    for _ in range(50):
        base, locks = reserve_base_port(1, tls=True)
        ports = {"resp": base, "admin": base + 100, "peer": base + 200, "tls": base + 400}
        if all(_free(address, port) for address in addresses for port in ports.values()):
            return ports, locks
        for handle in locks:
            handle.close()
    raise RuntimeError("no ports free on every pod address")


def _free(address: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


class Pods:
    """Pods of the StatefulSet, each a process started by the entrypoint."""

    def __init__(self, root: Path):
        self.root = root
        self.ports, self._locks = lease_ports()
        self.statefulset = find("StatefulSet", "polis")
        manifest_env = env_values(self.statefulset)
        self.domain = manifest_env["POLIS_PEER_DOMAIN"].replace("$(POD_NAMESPACE)", NAMESPACE)
        self.initial = int(manifest_env["POLIS_INITIAL_NODES"])
        bin_dir = root / "bin"
        bin_dir.mkdir()
        (bin_dir / "polis").symlink_to(polis_binary().resolve())
        self.path = "%s:/usr/sbin:/usr/bin:/sbin:/bin" % bin_dir
        self.hosts = root / "hosts"
        lines = ["127.0.0.1 localhost"] + [
            "%s %s %s" % (pod_address(ordinal), self.host(ordinal), "polis-%d.polis-peers" % ordinal)
            for ordinal in range(PODS_MAX)]
        self.hosts.write_text("\n".join(lines) + "\n")
        tls = root / "tls"
        subprocess.run([str(polis_binary()), "tls", "certs", "--dir", str(tls)], check=True,
                       capture_output=True, timeout=COMMAND_TIMEOUT_S)
        subprocess.run([str(polis_binary()), "encryption", "new-key", str(root / "master.key")], check=True,
                       capture_output=True, timeout=COMMAND_TIMEOUT_S)
        # In place of the Secrets' files (a flag or POLIS_* variable wins
        # over the settings file).
        self.secret_files = {
            "POLIS_TLS_CERT_FILE": str(tls / "node.crt"),
            "POLIS_TLS_KEY_FILE": str(tls / "node.key"),
            "POLIS_TLS_CA_CERT_FILE": str(tls / "ca.crt"),
            "POLIS_ENCRYPTION_KEY_FILE": str(root / "master.key"),
        }
        self.processes: dict[int, subprocess.Popen] = {}

    def host(self, ordinal: int) -> str:
        return "polis-%d.%s" % (ordinal, self.domain)

    def admin(self, ordinal: int) -> str:
        return "%s:%d" % (self.host(ordinal), self.ports["admin"])

    def env(self, ordinal: int) -> dict[str, str]:
        """The container's environment, as the kubelet gives it to pod
        `ordinal`, on this test's ports and directories."""
        env = {"PATH": self.path, "HOME": str(self.root)}
        for each in container(self.statefulset)["env"]:
            if each["name"] == "POD_NAMESPACE":
                env["POD_NAMESPACE"] = NAMESPACE
            elif "value" in each:
                env[each["name"]] = each["value"].replace("$(POD_NAMESPACE)", NAMESPACE)
        env.update({
            "POLIS_RESP_PORT": str(self.ports["resp"]),
            "POLIS_ADMIN_PORT": str(self.ports["admin"]),
            "POLIS_PEER_PORT": str(self.ports["peer"]),
            "POLIS_TLS_PORT": str(self.ports["tls"]),
            "POLIS_DATA_DIR": str(self.root / ("polis-%d" % ordinal) / "data"),
            "POLIS_CONFIG": str(CONFIG),
        })
        env.update(self.secret_files)
        return env

    def in_pod(self, name: str, argv: list[str]) -> list[str]:
        return ["unshare", "--mount", "--uts", "--", "sh", "-c", IN_POD, str(self.hosts), name, *argv]

    def log(self, ordinal: int) -> str:
        path = self.root / ("polis-%d.log" % ordinal)
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, ordinal: int) -> None:
        """Starts pod `ordinal` (again): its container's command."""
        with open(self.root / ("polis-%d.log" % ordinal), "ab") as log:
            self.processes[ordinal] = subprocess.Popen(
                self.in_pod("polis-%d" % ordinal, ["sh", str(ENTRYPOINT), "server"]),
                env=self.env(ordinal), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def stop(self, ordinal: int) -> int:
        """Stops pod `ordinal` as the kubelet does (SIGTERM, SIGKILL after
        the grace period), by its PID; returns its exit code."""
        process = self.processes.pop(ordinal)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        return process.returncode

    def pre_stop(self, ordinal: int) -> subprocess.CompletedProcess:
        """Runs the container's preStop hook in pod `ordinal`."""
        command = container(self.statefulset)["lifecycle"]["preStop"]["exec"]["command"]
        assert command[-1] == "pre-stop", command
        return subprocess.run(self.in_pod("polis-%d" % ordinal, ["sh", str(ENTRYPOINT), "pre-stop"]),
                              env=self.env(ordinal), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)

    def polis(self, *args: str) -> subprocess.CompletedProcess:
        """Runs a polis command in pod polis-0, as `kubectl exec` would."""
        return subprocess.run(self.in_pod("polis-0", ["polis", *args]), env=self.env(0), capture_output=True,
                              text=True, timeout=MOVE_TIMEOUT_S + COMMAND_TIMEOUT_S)

    def status(self) -> str:
        done = self.polis("status", "--node", self.admin(0))
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def nodes(self) -> dict[int, tuple[str, str, int]]:
        """Returns {node id: (up, state, replicas)} from `polis status`."""
        nodes = {}
        lines = iter(self.status().splitlines())
        for line in lines:
            if line.split()[:2] == ["NODE", "UP"]:
                break
        for line in lines:
            fields = line.split()
            if not fields:
                break
            nodes[int(fields[0])] = (fields[1], fields[2], int(fields[5]))
        return nodes

    def ready(self, ordinal: int) -> bool:
        """The readiness probe: GET /health/ready on the pod's address."""
        process = self.processes[ordinal]
        if process.poll() is not None:
            raise Fatal("polis-%d exited with %s:\n%s" % (ordinal, process.returncode, self.log(ordinal)[-4000:]))
        url = "http://%s:%d/health/ready" % (pod_address(ordinal), self.ports["admin"])
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, ordinals) -> None:
        for ordinal in ordinals:
            wait_until(lambda: self.ready(ordinal), READY_TIMEOUT_S, "polis-%d to be ready" % ordinal)

    def client(self, *args: str) -> str:
        """Runs redis-py's RedisCluster in a pod's network view."""
        done = subprocess.run(
            self.in_pod("client", [sys.executable, "-c", CLIENT, self.host(0), str(self.ports["resp"]), *args]),
            capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def close(self) -> None:
        for ordinal in list(self.processes):
            self.stop(ordinal)
        for handle in self._locks:
            handle.close()


def peer_certificate(pods: Pods, ordinal: int) -> dict:
    """Returns the certificate pod `ordinal` shows on its peer port, to a
    peer with the cluster's certificate (mutual TLS)."""
    name = tomllib.loads(CONFIG.read_text())["tls_cluster_name"]
    context = ssl.create_default_context(cafile=pods.secret_files["POLIS_TLS_CA_CERT_FILE"])
    context.load_cert_chain(pods.secret_files["POLIS_TLS_CERT_FILE"], pods.secret_files["POLIS_TLS_KEY_FILE"])
    with socket.create_connection((pod_address(ordinal), pods.ports["peer"]), timeout=10) as plain:
        with context.wrap_socket(plain, server_hostname=name) as secured:
            return secured.getpeercert()


def gateway_command(pods: Pods) -> list[str]:
    """The gateway Deployment's command, on this test's addresses."""
    command = list(container(find("Deployment", "polis-gateway"))["command"])
    flags = {flag: index + 1 for index, flag in enumerate(command) if flag.startswith("--")}
    command[flags["--listen"]] = "%s:0" % GATEWAY_ADDRESS
    command[flags["--admin-listen"]] = "%s:0" % GATEWAY_ADDRESS
    seeds = command[flags["--cluster"]].split(",")
    command[flags["--cluster"]] = ",".join(seed.rsplit(":", 1)[0] + ":%d" % pods.ports["resp"] for seed in seeds)
    return command


def test_pods_bootstrap_scale_to_five_and_back_to_three_keeping_their_data(tmp_path):
    pods = Pods(tmp_path)
    gateway = None
    try:
        started = time.monotonic()
        # podManagementPolicy: Parallel, as the StatefulSet says.
        for ordinal in range(pods.initial):
            pods.start(ordinal)
        pods.wait_ready(range(pods.initial))
        assert "is empty: --init with members 1=%s:" % pods.host(0) in pods.log(0), pods.log(0)
        for ordinal in range(1, pods.initial):
            assert "is empty: --join %s:%d" % (pods.host(0), pods.ports["peer"]) in pods.log(ordinal)
        nodes = pods.nodes()
        assert sorted(nodes) == [1, 2, 3], pods.status()
        assert all(up == "up" and replicas > 0 for up, _, replicas in nodes.values()), pods.status()
        assert pods.client("set", "kubernetes:first", "written-at-the-start") == "True"
        # The settings file's TLS and encryption are in force.
        for ordinal in range(pods.initial):
            assert ("DNS", "polis-node") in peer_certificate(pods, ordinal)["subjectAltName"]
            assert (tmp_path / ("polis-%d" % ordinal) / "data" / "keyring").is_file()
        print("3 pods ready after %.1f s" % (time.monotonic() - started))

        # A restarted pod has data: it just starts.
        assert pods.stop(1) == 0, pods.log(1)
        pods.start(1)
        pods.wait_ready([1])
        assert "holds its identity: starting it" in pods.log(1), pods.log(1)

        # The gateway Deployment's command, with its short seed names.
        log_path = tmp_path / "gateway.log"
        with open(log_path, "wb") as log:
            gateway = subprocess.Popen(pods.in_pod("polis-gateway-0", gateway_command(pods)),
                                       env={"PATH": pods.path}, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT)

        def gateway_port():
            if gateway.poll() is not None:
                raise Fatal("the gateway exited:\n" + log_path.read_text())
            for line in log_path.read_text().splitlines():
                if line.startswith("polis gateway: listening on "):
                    return int(line.split()[4].rsplit(":", 1)[1])
            return None

        port = wait_until(gateway_port, READY_TIMEOUT_S, "the gateway to listen")
        through_gateway = redis.Redis(host=GATEWAY_ADDRESS, port=port, decode_responses=True, socket_timeout=10)
        assert through_gateway.get("kubernetes:first") == "written-at-the-start"
        through_gateway.close()

        # Scale to 5: pods 3 and 4 join and take replicas.
        for ordinal in (3, 4):
            pods.start(ordinal)
        pods.wait_ready([3, 4])
        for ordinal in (3, 4):
            assert "is empty: --join %s:%d" % (pods.host(0), pods.ports["peer"]) in pods.log(ordinal)

        def five_up_each_holding_replicas():
            nodes = pods.nodes()
            return len(nodes) == 5 and all(up == "up" and replicas > 0 for up, _, replicas in nodes.values())

        wait_until(five_up_each_holding_replicas, MOVE_TIMEOUT_S, "5 nodes up, each holding replicas")

        # Scale to 3: the preStop hook refuses while a node holds replicas.
        for ordinal in (4, 3):
            refused = pods.pre_stop(ordinal)
            assert refused.returncode != 0, refused.stderr
            assert "remove-node first" in refused.stderr, refused.stderr
        for ordinal in (4, 3):
            node_id = ordinal + 1
            removal = pods.polis("cluster", "remove-node", str(node_id), "--node", pods.admin(0),
                                 "--timeout-secs", str(int(MOVE_TIMEOUT_S)))
            assert removal.returncode == 0, removal.stdout + removal.stderr
            assert "node %d removed" % node_id in removal.stdout, removal.stdout
            # A removed node stops by itself; its admin API is gone, and
            # the hook asks the first pods.
            allowed = pods.pre_stop(ordinal)
            assert allowed.returncode == 0, allowed.stderr
            assert "holds no shard replica" in allowed.stderr, allowed.stderr
            pods.stop(ordinal)
            assert "node %d was removed from the cluster" % node_id in pods.log(ordinal), pods.log(ordinal)

        nodes = pods.nodes()
        assert {node: state for node, (_, state, _) in nodes.items()} == {
            1: "active", 2: "active", 3: "active", 4: "removed", 5: "removed"}, pods.status()
        assert sum(replicas for _, _, replicas in nodes.values()) == 9, pods.status()
        pods.wait_ready(range(pods.initial))
        assert pods.client("get", "kubernetes:first") == "written-at-the-start"
        print("scaled 3 -> 5 -> 3 in %.1f s" % (time.monotonic() - started))
    finally:
        if gateway is not None and gateway.poll() is None:
            gateway.terminate()
            gateway.wait(timeout=STOP_TIMEOUT_S)
        pods.close()
