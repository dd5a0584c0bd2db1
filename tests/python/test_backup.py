"""`polis backup` and `polis restore`: a cluster of 3 shards holding every
kind of value (with deadlines, and collections large enough to travel in
parts) is backed up while a client keeps writing, then restored into a new
cluster of another shape (2 shards). The digest of every backed-up
shard's slots in the new cluster equals the old cluster's, taken by the
old cluster itself; every write acknowledged before the backup began is
there; values and deadlines read back the same. A damaged backup and a
cluster that is not empty are refused."""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import redis
from redis.cluster import RedisCluster

from polis_cluster import HOST, Cluster, polis_binary, wait_until

LIVE_SLOT_TAG = "{live}"


def run_polis(cluster: Cluster, *args: str, timeout_s: float = 300.0) -> subprocess.CompletedProcess:
    return subprocess.run([str(cluster.binary), *args], capture_output=True, text=True,
                          timeout=timeout_s, env=cluster.admin_env())


def fill(client: RedisCluster) -> dict[str, object]:
    """Writes values of every type; returns what each key should read."""
    expected: dict[str, object] = {}
    pipe = client.pipeline(transaction=False)
    for index in range(2000):
        key = "s:%d" % index
        pipe.set(key, "value-%d" % index)
        expected[key] = "value-%d" % index
    for index in range(200):
        key = "ttl:%d" % index
        pipe.set(key, "t%d" % index, ex=3600)
        expected[key] = "t%d" % index
    pipe.execute()
    for index in range(50):
        client.hset("h:%d" % index, mapping={"f%d" % field: "v%d" % field for field in range(20)})
        expected["h:%d" % index] = {"f%d" % field: "v%d" % field for field in range(20)}
        client.sadd("set:%d" % index, *["m%d" % member for member in range(15)])
        expected["set:%d" % index] = {"m%d" % member for member in range(15)}
        client.zadd("z:%d" % index, {"m%d" % member: member * 1.5 for member in range(10)})
        expected["z:%d" % index] = [("m%d" % member, member * 1.5) for member in range(10)]
        client.rpush("l:%d" % index, *["e%d" % item for item in range(12)])
        expected["l:%d" % index] = ["e%d" % item for item in range(12)]
        client.xadd("x:%d" % index, {"n": str(index)}, id="%d-1" % (index + 1))
        expected["x:%d" % index] = [("%d-1" % (index + 1), {"n": str(index)})]
    # Collections over 1 MiB: hashes, sets and sorted sets travel in parts,
    # lists whole.
    filler = "x" * 100
    big_hash = {"field-%05d" % field: filler for field in range(15000)}
    for start in range(0, len(big_hash), 1000):
        client.hset("big:hash", mapping=dict(list(big_hash.items())[start:start + 1000]))
    expected["big:hash"] = big_hash
    big_set = {"member-%05d-%s" % (member, filler) for member in range(12000)}
    members = sorted(big_set)
    for start in range(0, len(members), 1000):
        client.sadd("big:set", *members[start:start + 1000])
    expected["big:set"] = big_set
    big_zset = {"z-%05d-%s" % (member, filler): float(member) for member in range(12000)}
    items = list(big_zset.items())
    for start in range(0, len(items), 1000):
        client.zadd("big:zset", dict(items[start:start + 1000]))
    expected["big:zset"] = sorted(big_zset.items(), key=lambda item: item[1])
    big_list = ["item-%05d-%s" % (item, filler) for item in range(12000)]
    for start in range(0, len(big_list), 1000):
        client.rpush("big:list", *big_list[start:start + 1000])
    expected["big:list"] = big_list
    return expected


def read_back(client: RedisCluster, key: str) -> object:
    kind = client.type(key)
    if kind == "string":
        return client.get(key)
    if kind == "hash":
        return client.hgetall(key)
    if kind == "set":
        return client.smembers(key)
    if kind == "zset":
        return client.zrange(key, 0, -1, withscores=True)
    if kind == "list":
        return client.lrange(key, 0, -1)
    if kind == "stream":
        return [(entry_id, fields) for entry_id, fields in client.xrange(key)]
    return None


def shard_digests(cluster: Cluster, at_ms: int) -> dict[int, tuple[int, int]]:
    """Returns slot -> (keys, digest) over the whole cluster, from each
    shard's leader."""
    status = cluster.status(cluster.nodes[0])
    slots: dict[int, tuple[int, int]] = {}
    for shard in status["shards"]:
        leader = cluster.node_by_id(shard["leader_node"])
        code, body = cluster.http_get(leader, "/backup/shards/%d/digest?at_ms=%d" % (shard["id"], at_ms))
        assert code == 200, body
        for slot, keys, digest in json.loads(body)["slots"]:
            slots[slot] = (keys, digest)
    return slots


def in_ranges(slot: int, ranges: str) -> bool:
    for text in ranges.split(","):
        start, _, end = text.partition("-")
        if int(start) <= slot <= int(end or start):
            return True
    return False


def total(slots: dict[int, tuple[int, int]], ranges: str, leave_out: int) -> tuple[int, int]:
    keys, digest = 0, 0
    for slot, (count, value) in slots.items():
        if slot != leave_out and in_ranges(slot, ranges):
            keys += count
            digest = (digest + value) % (1 << 64)
    return keys, digest


class Writer(threading.Thread):
    """Writes {live}:i = i until stopped; records when each was acknowledged."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.client = RedisCluster(host=HOST, port=port, decode_responses=True, socket_timeout=10)
        self.acked: list[tuple[float, str]] = []
        self.stop = threading.Event()

    def run(self):
        for index in range(1_000_000):
            if self.stop.is_set():
                break
            key = "%s:%d" % (LIVE_SLOT_TAG, index)
            self.client.set(key, str(index))
            self.acked.append((time.monotonic(), key))


def test_backup_restores_into_a_cluster_of_another_shape():
    source = Cluster(polis_binary(), nodes=3, shards=3)
    target = None
    work = tempfile.TemporaryDirectory(prefix="polis-backup-")
    try:
        client = RedisCluster(host=HOST, port=source.nodes[0].resp_port, decode_responses=True,
                              socket_timeout=30)
        expected = fill(client)
        plain = redis.Redis(host=HOST, port=source.nodes[0].resp_port, decode_responses=True)
        assert plain.execute_command("ACL", "SETUSER", "app", "on", ">app-pass", "~app:*", "+@all") == "OK"
        plain.close()
        said = run_polis(source, "namespace", "--node", source.nodes[0].admin_addr, "set", "cache:",
                         "--consistency", "strong", "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
        assert said.returncode == 0, said.stderr
        code, namespaces = source.http_get(source.nodes[0], "/namespaces")
        assert code == 200 and b"cache:" in namespaces, namespaces
        writer = Writer(source.nodes[0].resp_port)
        writer.start()
        wait_until(lambda: len(writer.acked) > 50, 30, "the writer's first writes")
        backup_dir = Path(work.name) / "backup"
        before = source.status(source.nodes[1])
        shard_applied = {replica["group_id"]: replica["applied"] for replica in before["replicas"]
                         if replica["state"] == "Leader"}
        meta_applied = next(replica["applied"] for replica in before["replicas"] if replica["group_id"] == 0)
        began = time.monotonic()
        done = run_polis(source, "backup", "--node", source.nodes[1].admin_addr, "--to", str(backup_dir))
        writer.stop.set()
        writer.join(30)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "backed up 3 shards" in done.stdout, done.stdout
        acked_before = [key for at, key in writer.acked if at < began]
        assert len(acked_before) > 50

        manifest = json.loads((backup_dir / "manifest.json").read_text())
        assert len(manifest["shards"]) == 3
        for shard in manifest["shards"]:
            assert shard["index"] > 0 and shard["term"] > 0, shard
            assert (backup_dir / shard["file"]).stat().st_size == shard["bytes"]
        # Each group's snapshot holds at least what its leader had applied
        # before the backup began.
        assert manifest["meta"]["index"] >= meta_applied > 0, (manifest["meta"], meta_applied)
        for shard in manifest["shards"]:
            assert shard["index"] >= shard_applied.get(shard["id"], 0), (shard, shard_applied)
        backed_up_keys = sum(shard["keys"] for shard in manifest["shards"])
        assert backed_up_keys >= len(expected) + len(acked_before), manifest

        # The old cluster's own digest of every shard, without the slot the
        # writer kept changing: nothing else changed since the backup.
        at_ms = int(time.time() * 1000)
        live_slot = client.keyslot(LIVE_SLOT_TAG)
        source_digests = shard_digests(source, at_ms)

        target = Cluster(polis_binary(), nodes=3, shards=2)
        restored = run_polis(target, "restore", "--node", target.nodes[0].admin_addr, "--from", str(backup_dir))
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert "verified: every shard's digest matches the backup" in restored.stdout, restored.stdout
        assert restored.stdout.count(": same") == 3, restored.stdout

        assert "restored 1 ACL users" in restored.stdout, restored.stdout
        code, restored_namespaces = target.http_get(target.nodes[0], "/namespaces")
        assert code == 200
        assert json.loads(restored_namespaces) == json.loads(namespaces)

        target_digests = shard_digests(target, at_ms)
        for shard in manifest["shards"]:
            want = total(source_digests, shard["slots"], live_slot)
            got = total(target_digests, shard["slots"], live_slot)
            assert want[0] > 0
            assert got == want, "shard %d (slots %s): old cluster %s, new %s" % (
                shard["id"], shard["slots"], want, got)

        other = RedisCluster(host=HOST, port=target.nodes[0].resp_port, decode_responses=True,
                             socket_timeout=30)
        for key, value in expected.items():
            assert read_back(other, key) == value, key
        ttl = other.ttl("ttl:7")
        assert 3000 < ttl <= 3600, ttl
        assert other.ttl("s:7") == -1
        for key in acked_before:
            assert other.get(key) is not None, "acknowledged before the backup began, not restored: " + key
        assert other.dbsize(target_nodes=RedisCluster.PRIMARIES) == backed_up_keys

        # Into a cluster that holds keys: refused.
        again = run_polis(target, "restore", "--node", target.nodes[0].admin_addr, "--from", str(backup_dir))
        assert again.returncode != 0
        assert "restore fills a new cluster" in again.stderr, again.stderr

        # A damaged file: refused before anything is written.
        damaged = Path(work.name) / "damaged"
        damaged.mkdir()
        for path in backup_dir.iterdir():
            (damaged / path.name).write_bytes(path.read_bytes())
        victim = damaged / manifest["shards"][1]["file"]
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
        refused = run_polis(target, "restore", "--node", target.nodes[0].admin_addr, "--from", str(damaged))
        assert refused.returncode != 0
        assert "is damaged" in refused.stderr, refused.stderr

        # A backup never writes into a directory that holds something.
        again = run_polis(source, "backup", "--node", source.nodes[0].admin_addr, "--to", str(backup_dir))
        assert again.returncode != 0 and "is not empty" in again.stderr, again.stderr
        # The ACL user came along, password and key patterns included.
        app = RedisCluster(host=HOST, port=target.nodes[0].resp_port, username="app", password="app-pass",
                           decode_responses=True, socket_timeout=30)
        assert app.set("app:1", "x") is True
        try:
            app.set("other:1", "x")
            raise AssertionError("app wrote outside its key pattern")
        except redis.exceptions.NoPermissionError:
            pass
        app.close()
        other.close()
        client.close()
    finally:
        source.stop()
        if target is not None:
            target.stop()
        work.cleanup()
