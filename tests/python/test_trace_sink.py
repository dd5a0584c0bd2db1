"""`--otlp-endpoint in-process`: the nodes build their trace spans, batch
them and drop them in the process (what tracing costs without sending
anything), and `/metrics` counts the spans handed over
(`polis_trace_spans_exported_total`), which a node without tracing leaves
at 0."""

from __future__ import annotations

from redis.cluster import RedisCluster

from polis_cluster import HOST, Cluster, polis_binary, wait_until


def spans_exported(cluster: Cluster) -> int:
    total = 0
    for node in cluster.nodes:
        code, body = cluster.http_get(node, "/metrics")
        assert code == 200
        for line in body.decode().splitlines():
            if line.startswith("polis_trace_spans_exported_total "):
                total += int(float(line.split()[1]))
    return total


def test_spans_built_in_process_are_counted(cluster):
    # The session's cluster traces nothing.
    client = RedisCluster(host=HOST, port=cluster.nodes[0].resp_port, decode_responses=True)
    client.set("trace-sink:untraced", "v")
    client.close()
    assert spans_exported(cluster) == 0

    traced = Cluster(polis_binary(), nodes=3, shards=1,
                     node_args=("--otlp-endpoint", "in-process", "--trace-ratio", "1"))
    try:
        client = RedisCluster(host=HOST, port=traced.nodes[0].resp_port, decode_responses=True)
        for index in range(20):
            assert client.set("trace-sink:%d" % index, "v") is True
        client.close()
        # Each SET is a node.request and a raft.propose span at least; the
        # batches go out every few seconds.
        wait_until(lambda: spans_exported(traced) >= 40, 30, "40 spans exported")
    finally:
        traced.stop()
