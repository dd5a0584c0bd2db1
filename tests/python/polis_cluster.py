"""A local polis cluster for tests: starts `polis dev`, waits, stops it.

`polis dev --nodes N --shards S --port P --data DIR` runs N nodes on
127.0.0.1: node i (i = 0..N-1, node id i+1) has RESP port P+i, admin HTTP
port P+100+i and peer port P+200+i. It prints `polis dev: ready` once every
shard has a leader serving its slots and stops
all nodes on SIGINT.

Everything here waits for a condition with a deadline; nothing sleeps to
synchronize. Ports are leased with the lock files polis-client's ports
module uses, never taken from constants.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import random
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
# Port blocks of `polis dev`, as offsets from the base port.
ADMIN_PORT_OFFSET = 100
PEER_PORT_OFFSET = 200
TLS_PORT_OFFSET = 400
POLL_INTERVAL_S = 0.05


def polis_binary() -> Path:
    """Returns the polis binary under test: $POLIS_BIN, else the debug build."""
    if os.environ.get("POLIS_BIN"):
        return Path(os.environ["POLIS_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
    return target / "debug" / "polis"


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


# The same lock files polis-client's ports module takes (see its docs): a
# port is ours while we hold an exclusive lock on <tmp>/polis-ports/<port>.
PORT_LOCK_DIR = Path(tempfile.gettempdir()) / "polis-ports"


def _lock_port(port: int):
    """Returns an open, exclusively locked file for `port`, or None."""
    PORT_LOCK_DIR.mkdir(parents=True, exist_ok=True)
    handle = open(PORT_LOCK_DIR / str(port), "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    if not _port_is_free(port):
        handle.close()
        return None
    return handle


def reserve_base_port(nodes: int, attempts_max: int = 500, tls: bool = False):
    """Returns (base, locks): a base port whose RESP, admin and peer ports
    (`polis dev`'s blocks) are free and locked for this process while the
    lock files stay open.

    Candidates lie below the kernel's ephemeral range (32768+) so that
    outgoing connections do not take them between probing and binding, and
    the locks keep other test processes off them.
    """
    rng = random.SystemRandom()
    blocks = (0, ADMIN_PORT_OFFSET, PEER_PORT_OFFSET) + ((TLS_PORT_OFFSET,) if tls else ())
    offsets = [block + i for block in blocks for i in range(nodes)]
    for _ in range(attempts_max):
        base = rng.randrange(20000, 32000 - max(blocks) - nodes)
        locks = []
        for offset in offsets:
            handle = _lock_port(base + offset)
            if handle is None:
                break
            locks.append(handle)
        if len(locks) == len(offsets):
            return base, locks
        for handle in locks:
            handle.close()
    raise RuntimeError("no free base port for %d nodes" % nodes)


class Fatal(Exception):
    """Raised by a condition that can never become true; ends wait_until."""


def wait_until(condition, timeout_s: float, what: str):
    """Polls `condition` until it returns a truthy value; returns that value.

    Exceptions from `condition` count as "not yet", except Fatal, which
    propagates. Raises TimeoutError naming `what` and the last exception.
    """
    deadline = time.monotonic() + timeout_s
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Fatal:
            raise
        except Exception as error:  # noqa: BLE001 - reported on timeout
            last_error = error
        if time.monotonic() >= deadline:
            detail = " (last error: %r)" % (last_error,) if last_error else ""
            raise TimeoutError("timed out after %.1fs waiting for %s%s" % (timeout_s, what, detail))
        time.sleep(POLL_INTERVAL_S)


@dataclass(frozen=True)
class Node:
    node_id: int
    resp_port: int
    admin_port: int

    @property
    def resp_addr(self) -> str:
        return "%s:%d" % (HOST, self.resp_port)

    @property
    def admin_addr(self) -> str:
        return "%s:%d" % (HOST, self.admin_port)


def slot_ranges(shard: dict) -> list[tuple[int, int]]:
    """Returns a shard's slot ranges from /status ("0-5461" or "7")."""
    ranges = []
    for text in shard["slots"]:
        start, _, end = text.partition("-")
        ranges.append((int(start), int(end or start)))
    return ranges


class Cluster:
    """A `polis dev` process this test session started, and its nodes."""

    def __init__(self, binary: Path, nodes: int = 3, shards: int = 3, ready_timeout_s: float = 90.0,
                 spare_nodes: int = 0, secure: bool = False, node_args: tuple[str, ...] = ()):
        """Starts `polis dev`; `spare_nodes` more nodes' ports are reserved
        too, for `polis dev --add-node`; `secure` starts it with `--secure`
        (TLS ports at +400, a CA under the data directory, a password);
        `node_args` go to every node's `polis server`."""
        if not binary.is_file() or not os.access(binary, os.X_OK):
            raise FileNotFoundError("no polis binary at %s (run: cargo build -j2 --workspace)" % binary)
        self.binary = binary
        self.base_port, self._port_locks = reserve_base_port(nodes + spare_nodes, tls=secure)
        self.nodes = [
            Node(node_id=i + 1, resp_port=self.base_port + i, admin_port=self.base_port + ADMIN_PORT_OFFSET + i)
            for i in range(nodes)
        ]
        self._dir = tempfile.TemporaryDirectory(prefix="polis-pytest-")
        self.data_dir = Path(self._dir.name) / "data"
        self.log_path = Path(self._dir.name) / "polis-dev.log"
        self._log = open(self.log_path, "wb")
        # A session of its own: if polis dev must be killed, its process
        # group (it and the nodes it spawned) goes with it.
        self.process = subprocess.Popen(
            [str(binary), "dev", "--nodes", str(nodes), "--shards", str(shards),
             "--port", str(self.base_port), "--gateway-port", "0", "--data", str(self.data_dir)]
            + (["--secure"] if secure else [])
            + (["--", *node_args] if node_args else []),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until(self._ready, ready_timeout_s, "'polis dev: ready'")
            self.wait_serving(timeout_s=ready_timeout_s)
        except BaseException:
            self.stop()
            raise

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise Fatal("polis dev exited with %s before ready:\n%s" % (self.process.returncode, self.log_text()))
        return any(line.startswith("polis dev: ready") for line in self.log_text().splitlines())

    def gateway_port(self) -> int:
        """Returns the port of the gateway `polis dev` started (the OS
        picked it: `--gateway-port 0`)."""
        for line in self.log_text().splitlines():
            if line.startswith("gateway: resp "):
                return int(line.split()[2].rsplit(":", 1)[1])
        raise AssertionError("polis dev started no gateway:\n%s" % self.log_text())

    def gateway_admin_port(self) -> int:
        """Returns the port of the gateway's admin address (metrics, the
        dashboard)."""
        for line in self.log_text().splitlines():
            if line.startswith("gateway: admin "):
                return int(line.split()[2].rsplit(":", 1)[1])
        raise AssertionError("polis dev's gateway has no admin address:\n%s" % self.log_text())

    def gateway_http_port(self) -> int:
        """Returns the port of the gateway's HTTP/JSON API."""
        for line in self.log_text().splitlines():
            if line.startswith("gateway: http "):
                return int(line.split()[2].rsplit(":", 1)[1])
        raise AssertionError("polis dev's gateway serves no HTTP API:\n%s" % self.log_text())

    def status(self, node: Node) -> dict:
        """Returns `polis status --node <admin> --json` of one node."""
        done = subprocess.run(
            [str(self.binary), "status", "--node", node.admin_addr, "--json"],
            capture_output=True, text=True, timeout=10, check=True, env=self.admin_env(),
        )
        return json.loads(done.stdout)

    def password(self) -> str | None:
        """Returns the default user's password of `polis dev --secure`."""
        path = self.data_dir / "password"
        return path.read_text().strip() if path.is_file() else None

    def admin_env(self) -> dict:
        """The environment of a polis command that calls the admin API:
        with POLIS_PASSWORD when the cluster has a password."""
        env = dict(os.environ)
        if self.password() is not None:
            env["POLIS_PASSWORD"] = self.password()
        return env

    def http_get(self, node: Node, path: str, auth: tuple[str, str] | None = None) -> tuple[int, bytes]:
        """Returns (status code, body) of GET http://<admin addr><path>,
        with HTTP Basic credentials (user, password) when given (the
        default user's password of a secure cluster otherwise)."""
        request = urllib.request.Request("http://%s%s" % (node.admin_addr, path))
        if auth is None and self.password() is not None:
            auth = ("default", self.password())
        if auth is not None:
            token = base64.b64encode(("%s:%s" % auth).encode()).decode()
            request.add_header("Authorization", "Basic " + token)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def node_by_id(self, node_id: int) -> Node:
        return next(node for node in self.nodes if node.node_id == node_id)

    def node_by_resp_addr(self, resp_addr: str) -> Node:
        return next(node for node in self.nodes if node.resp_addr == resp_addr)

    def wait_serving(self, timeout_s: float = 30.0) -> dict:
        """Waits until every node says every shard has a leader serving its
        slots, all naming the same leaders; returns one node's status."""

        def agreed():
            reports = [self.status(node) for node in self.nodes]
            if any(report["state"] != "ok" for report in reports):
                return None
            leaders = [[shard["leader_node"] for shard in report["shards"]] for report in reports]
            return reports[0] if all(layout == leaders[0] for layout in leaders) else None

        return wait_until(agreed, timeout_s, "every shard serving, every node agreeing")

    def shard_for(self, key: str) -> dict:
        """Returns the /status entry of the shard that owns `key`."""
        from redis.crc import key_slot

        slot = key_slot(key.encode())
        for shard in self.wait_serving()["shards"]:
            if any(start <= slot <= end for start, end in slot_ranges(shard)):
                return shard
        raise AssertionError("no shard owns slot %d" % slot)

    def leader_for(self, key: str) -> Node:
        """Returns the node leading the shard of `key`."""
        return self.node_by_id(self.shard_for(key)["leader_node"])

    def followers_for(self, key: str) -> list[Node]:
        """Returns the nodes holding a follower replica of `key`'s shard."""
        shard = self.shard_for(key)
        return [self.node_by_id(replica["node_id"]) for replica in shard["replicas"]
                if replica["node_id"] != shard["leader_node"]]

    def strangers_to(self, key: str) -> list[Node]:
        """Returns the nodes holding no replica of `key`'s shard."""
        holders = {replica["node_id"] for replica in self.shard_for(key)["replicas"]}
        return [node for node in self.nodes if node.node_id not in holders]

    def stop(self, timeout_s: float = 30.0) -> int:
        """Stops polis dev with SIGINT (SIGKILL to its group after the
        deadline); returns its exit code."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
                try:
                    self.process.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=timeout_s)
            # Nodes left behind by a polis dev that died go with its group.
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return self.process.returncode
        finally:
            self._log.close()
            self._dir.cleanup()
            for handle in self._port_locks:
                handle.close()


class RespError(Exception):
    """An error reply (`-...`), with the line as its message."""


class _Reader:
    def __init__(self, connection: socket.socket):
        self._connection = connection
        self._buffer = b""

    def _fill(self) -> None:
        chunk = self._connection.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed mid-reply")
        self._buffer += chunk

    def line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            self._fill()
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line

    def exactly(self, length: int) -> bytes:
        while len(self._buffer) < length + 2:
            self._fill()
        data, self._buffer = self._buffer[:length], self._buffer[length + 2:]
        return data

    def reply(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            length = int(rest)
            return None if length < 0 else self.exactly(length)
        if kind in (b"*", b">", b"~"):
            count = int(rest)
            return None if count < 0 else [self.reply() for _ in range(count)]
        # RESP3's other types (HELLO 3, pushes).
        if kind == b"%":
            return {self._key(self.reply()): self.reply() for _ in range(int(rest))}
        if kind == b"_":
            return None
        if kind == b"#":
            return rest == b"t"
        if kind == b",":
            return float(rest)
        raise ValueError("not a RESP reply: %r" % line)

    @staticmethod
    def _key(key):
        return key.decode() if isinstance(key, bytes) else key


def encode_request(*args: str | bytes) -> bytes:
    """Returns one command as a RESP2 array of bulk strings."""
    payload = b"*%d\r\n" % len(args)
    for arg in args:
        encoded = arg.encode() if isinstance(arg, str) else arg
        payload += b"$%d\r\n%s\r\n" % (len(encoded), encoded)
    return payload


def resp_call(port: int, *args: str | bytes):
    """Sends one command as a RESP2 array on a new connection and returns the
    reply undecoded: str (status), RespError (error, returned, not raised),
    int, bytes or None (bulk), list (array)."""
    with socket.create_connection((HOST, port), timeout=10) as connection:
        connection.sendall(encode_request(*args))
        return _Reader(connection).reply()


class Raw:
    """One RESP2 connection, its replies undecoded (errors returned as
    RespError): no client library retrying, authenticating or sending
    commands of its own at connect. `source` binds the client's end to
    another loopback address (127.0.0.2, ...)."""

    def __init__(self, port: int, source: str | None = None):
        self.connection = socket.create_connection(
            (HOST, port), timeout=10, source_address=(source, 0) if source else None)
        self.reader = _Reader(self.connection)

    def call(self, *args: str | bytes):
        self.connection.sendall(encode_request(*args))
        return self.reader.reply()

    def close(self):
        self.connection.close()


@contextlib.contextmanager
def gateway_process(seeds: str, *flags: str):
    """Runs `polis gateway --listen 127.0.0.1:0 --cluster SEEDS ...` (the OS
    picks the port) until the block ends; yields (port, path of its output)."""
    with tempfile.TemporaryDirectory(prefix="polis-gateway-") as directory:
        log_path = Path(directory) / "gateway.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [str(polis_binary()), "gateway", "--listen", "%s:0" % HOST, "--cluster", seeds, *flags],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )
            try:
                def port():
                    if process.poll() is not None:
                        raise Fatal("polis gateway exited with %s:\n%s"
                                    % (process.returncode, log_path.read_text()))
                    for line in log_path.read_text().splitlines():
                        if line.startswith("polis gateway: listening on "):
                            return int(line.split()[4].rsplit(":", 1)[1])
                    return None
                yield wait_until(port, 30, "polis gateway to listen"), log_path
            finally:
                process.terminate()
                process.wait(timeout=30)


def established_peer_ports(pid: int) -> list[int]:
    """Returns the remote port of each established TCP connection of
    process `pid` (its socket inodes looked up in /proc/net/tcp)."""
    inodes = set()
    for fd in Path("/proc/%d/fd" % pid).iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and fields[9] in inodes:  # 01: ESTABLISHED
            ports.append(int(fields[2].rsplit(":", 1)[1], 16))
    return ports
