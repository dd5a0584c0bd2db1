"""The admin HTTP endpoints and `polis status --json` agree on the cluster."""

from __future__ import annotations

import json


def test_status_names_members_and_leader(cluster):
    leader = cluster.leader()
    for node in cluster.nodes:
        report = cluster.status(node)
        assert report["node_id"] == node.node_id
        assert report["leader_id"] == leader.node_id
        assert report["leader_resp_addr"] == leader.resp_addr
        assert 0 <= report["applied"] <= report["committed"]
        assert report["term"] >= 1
        members = {member["node_id"]: member for member in report["members"]}
        assert set(members) == {member.node_id for member in cluster.nodes}
        for member in cluster.nodes:
            assert members[member.node_id]["resp_addr"] == member.resp_addr
            assert members[member.node_id]["admin_addr"] == member.admin_addr


def test_http_status_matches_cli(cluster):
    for node in cluster.nodes:
        code, body = cluster.http_get(node, "/status")
        assert code == 200
        over_http = json.loads(body)
        assert over_http["node_id"] == node.node_id
        assert over_http["leader_id"] == cluster.status(node)["leader_id"]


def test_health_endpoints(cluster):
    for node in cluster.nodes:
        assert cluster.http_get(node, "/health/live")[0] == 200
        assert cluster.http_get(node, "/health/ready")[0] == 200
