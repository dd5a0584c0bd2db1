"""Slots move between shards, through Valkey 9's CLUSTER MIGRATESLOTS, while
redis-py's RedisCluster writes and reads: the application sees no error
beyond what redis-py retries by itself, every acknowledged write is
readable afterwards, DBSIZE summed over the nodes equals the number of
distinct keys, and redis-cli --cluster check reports OK."""

from __future__ import annotations

import subprocess
import threading
import time

from redis.cluster import RedisCluster

from polis_cluster import HOST, Cluster, RespError, polis_binary, resp_call, wait_until

WRITE_SECONDS_MAX = 120.0


def leader_name(cluster: Cluster, shard_id: int) -> str:
    status = cluster.status(cluster.nodes[0])
    shard = next(shard for shard in status["shards"] if shard["id"] == shard_id)
    return "%040x" % shard["leader_node"]


def owner_of(cluster: Cluster, slot: int) -> int:
    status = cluster.status(cluster.nodes[0])
    for shard in status["shards"]:
        for text in shard["slots"]:
            start, _, end = text.partition("-")
            if int(start) <= slot <= int(end or start):
                return shard["id"]
    raise AssertionError("no owner for slot %d" % slot)


class Writer(threading.Thread):
    """Writes key i := i with redis-py, reading an earlier key back now and
    then; records what was acknowledged and every error the application
    saw."""

    def __init__(self, port: int, label: str):
        super().__init__(daemon=True)
        self.client = RedisCluster(host=HOST, port=port, decode_responses=True, socket_timeout=10)
        self.label = label
        self.acked: dict[str, str] = {}
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + WRITE_SECONDS_MAX
        i = 0
        while not self.stop.is_set() and time.monotonic() < deadline:
            name = "%s:%d" % (self.label, i)
            try:
                self.client.set(name, str(i))
                self.acked[name] = str(i)
                if i % 10 == 0:
                    earlier = "%s:%d" % (self.label, i // 2)
                    got = self.client.get(earlier)
                    if earlier in self.acked and got != self.acked[earlier]:
                        self.errors.append("read %s: %r, acknowledged %r" % (earlier, got, self.acked[earlier]))
            except Exception as error:  # noqa: BLE001 - every error the application sees counts
                self.errors.append("%s: %r" % (name, error))
            i += 1
        self.client.close()


def test_slots_move_under_redis_py_with_no_error_and_nothing_lost():
    cluster = Cluster(polis_binary(), nodes=3, shards=3)
    writers: list[Writer] = []
    try:
        assert resp_call(cluster.nodes[0].resp_port, "ASKING") == "OK"
        writers = [Writer(cluster.nodes[i].resp_port, "reshard-%d" % i) for i in range(2)]
        for writer in writers:
            writer.start()
        wait_until(lambda: all(len(w.acked) >= 200 for w in writers), 60.0, "writes before the moves")

        # Shard 1 -> 2, then shard 2 -> 3, each through a different node.
        moves = [((0, 1999), 2, cluster.nodes[1]), ((6000, 7999), 3, cluster.nodes[2])]
        for (start, end), target, via in moves:
            reply = resp_call(via.resp_port, "CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", str(start), str(end),
                              "NODE", leader_name(cluster, target))
            assert reply == "OK", reply

            def moved():
                migrations = resp_call(via.resp_port, "CLUSTER", "GETSLOTMIGRATIONS")
                return not migrations and owner_of(cluster, start) == target and owner_of(cluster, end) == target

            wait_until(moved, 120.0, "slots %d-%d to move to shard %d" % (start, end, target))
        again = resp_call(cluster.nodes[0].resp_port, "CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", "0", "10",
                          "NODE", leader_name(cluster, 2))
        assert isinstance(again, RespError) and "already" in str(again), again
        before = [len(w.acked) for w in writers]
        wait_until(lambda: all(len(w.acked) >= n + 100 for w, n in zip(writers, before)), 60.0,
                   "writes after the moves")
    finally:
        for writer in writers:
            writer.stop.set()
        for writer in writers:
            writer.join(timeout=30)
    try:
        for writer in writers:
            assert not writer.errors, writer.errors[:10]
        client = RedisCluster(host=HOST, port=cluster.nodes[0].resp_port, decode_responses=True,
                              socket_timeout=10)
        acked: dict[str, str] = {}
        for writer in writers:
            acked.update(writer.acked)
        names = list(acked)
        values = []
        for start in range(0, len(names), 500):
            values.extend(client.mget_nonatomic(names[start:start + 500]))
        lost = [(name, acked[name], got) for name, got in zip(names, values) if got != acked[name]]
        assert not lost, lost[:10]
        client.close()
        # Written but not acknowledged (the writer stopped mid-command) may
        # exist too: count what is there.
        total = sum(resp_call(node.resp_port, "DBSIZE") for node in cluster.nodes)
        written = set(names)
        for writer in writers:
            written.add("%s:%d" % (writer.label, len(writer.acked)))
        assert len(names) <= total <= len(written), (total, len(names))

        def checked():
            done = subprocess.run(["redis-cli", "--cluster", "check", "%s:%d" % (HOST, cluster.nodes[0].resp_port)],
                                  capture_output=True, text=True, timeout=30)
            return done if done.returncode == 0 and "[OK] All 16384 slots covered" in done.stdout else None

        report = wait_until(checked, 60.0, "redis-cli --cluster check to pass")
        assert "[OK] All nodes agree about slots configuration." in report.stdout, report.stdout
    finally:
        assert cluster.stop() == 0
