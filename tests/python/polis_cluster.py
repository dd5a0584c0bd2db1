"""A local polis cluster for tests: starts `polis dev`, waits, stops it.

`polis dev --nodes N --port P --data DIR` runs N nodes on 127.0.0.1: node i
(i = 0..N-1, node id i+1) has RESP port P+i, admin HTTP port P+100+i and peer
port P+200+i. It prints `polis dev: ready` once there is a leader and stops
all nodes on SIGINT.

Everything here waits for a condition with a deadline; nothing sleeps to
synchronize. Ports come from probing for free ones, never from constants.
"""

from __future__ import annotations

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


def free_base_port(nodes: int, attempts_max: int = 200) -> int:
    """Returns a base port whose RESP, admin and peer ports are all free.

    Candidates lie below the kernel's ephemeral range (32768+) so that
    outgoing connections do not take them between probing and binding.
    """
    rng = random.SystemRandom()
    offsets = [block + i for block in (0, ADMIN_PORT_OFFSET, PEER_PORT_OFFSET) for i in range(nodes)]
    for _ in range(attempts_max):
        base = rng.randrange(20000, 31000 - PEER_PORT_OFFSET - nodes)
        if all(_port_is_free(base + offset) for offset in offsets):
            return base
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


class Cluster:
    """A `polis dev` process this test session started, and its nodes."""

    def __init__(self, binary: Path, nodes: int = 3, ready_timeout_s: float = 90.0):
        if not binary.is_file() or not os.access(binary, os.X_OK):
            raise FileNotFoundError("no polis binary at %s (run: cargo build -j2 --workspace)" % binary)
        self.binary = binary
        self.base_port = free_base_port(nodes)
        self.nodes = [
            Node(node_id=i + 1, resp_port=self.base_port + i, admin_port=self.base_port + ADMIN_PORT_OFFSET + i)
            for i in range(nodes)
        ]
        self._dir = tempfile.TemporaryDirectory(prefix="polis-pytest-")
        self.log_path = Path(self._dir.name) / "polis-dev.log"
        self._log = open(self.log_path, "wb")
        # A session of its own: if polis dev must be killed, its process
        # group (it and the nodes it spawned) goes with it.
        self.process = subprocess.Popen(
            [str(binary), "dev", "--nodes", str(nodes), "--port", str(self.base_port),
             "--data", str(Path(self._dir.name) / "data")],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until(self._ready, ready_timeout_s, "'polis dev: ready'")
            self.leader(timeout_s=ready_timeout_s)
        except BaseException:
            self.stop()
            raise

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise Fatal("polis dev exited with %s before ready:\n%s" % (self.process.returncode, self.log_text()))
        return any(line.startswith("polis dev: ready") for line in self.log_text().splitlines())

    def status(self, node: Node) -> dict:
        """Returns `polis status --node <admin> --json` of one node."""
        done = subprocess.run(
            [str(self.binary), "status", "--node", node.admin_addr, "--json"],
            capture_output=True, text=True, timeout=10, check=True,
        )
        return json.loads(done.stdout)

    def http_get(self, node: Node, path: str) -> tuple[int, bytes]:
        """Returns (status code, body) of GET http://<admin addr><path>."""
        try:
            with urllib.request.urlopen("http://%s%s" % (node.admin_addr, path), timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def node_by_id(self, node_id: int) -> Node:
        return next(node for node in self.nodes if node.node_id == node_id)

    def node_by_resp_addr(self, resp_addr: str) -> Node:
        return next(node for node in self.nodes if node.resp_addr == resp_addr)

    def leader(self, timeout_s: float = 30.0) -> Node:
        """Returns the leader once a node names one and the leader agrees."""

        def agreed_leader():
            for node in self.nodes:
                report = self.status(node)
                if not report.get("leader_id"):
                    continue
                leader = self.node_by_id(report["leader_id"])
                if self.status(leader).get("leader_id") == leader.node_id:
                    return leader
            return None

        return wait_until(agreed_leader, timeout_s, "a leader all agree on")

    def followers(self) -> list[Node]:
        leader = self.leader()
        return [node for node in self.nodes if node != leader]

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
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self.reply() for _ in range(count)]
        raise ValueError("not a RESP2 reply: %r" % line)


def resp_call(port: int, *args: str | bytes):
    """Sends one command as a RESP2 array on a new connection and returns the
    reply undecoded: str (status), RespError (error, returned, not raised),
    int, bytes or None (bulk), list (array)."""
    payload = b"*%d\r\n" % len(args)
    for arg in args:
        encoded = arg.encode() if isinstance(arg, str) else arg
        payload += b"$%d\r\n%s\r\n" % (len(encoded), encoded)
    with socket.create_connection((HOST, port), timeout=10) as connection:
        connection.sendall(payload)
        return _Reader(connection).reply()
