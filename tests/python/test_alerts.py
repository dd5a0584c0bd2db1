"""The alert rules in deploy/prometheus: valid for promtool, each firing and
not firing in its unit tests, each with a runbook, each reading metrics a
live scrape of the nodes has (or node_exporter's, named)."""

from __future__ import annotations

import re
import subprocess

import yaml

from polis_cluster import REPO_ROOT

RULES = REPO_ROOT / "deploy" / "prometheus"
# Metrics the rules may read from elsewhere than polis's nodes.
EXTERNAL = {"up", "node_filesystem_avail_bytes", "node_filesystem_size_bytes"}


def promtool(*args: str) -> str:
    done = subprocess.run(["promtool", *args], cwd=RULES, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def alerts() -> list[dict]:
    document = yaml.safe_load((RULES / "polis-alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def test_the_rules_pass_promtool_and_their_unit_tests():
    assert "SUCCESS: %d rules found" % len(alerts()) in promtool("check", "rules",
                                                                   "polis-alerts.yml")
    assert "SUCCESS" in promtool("test", "rules", "polis-alerts.test.yml")


def test_every_alert_has_a_test_and_a_runbook():
    tests = yaml.safe_load((RULES / "polis-alerts.test.yml").read_text())
    tested = {case["alertname"] for test in tests["tests"] for case in test["alert_rule_test"]}
    guide = (REPO_ROOT / "docs" / "operations.md").read_text()
    for rule in alerts():
        name = rule["alert"]
        assert name in tested, name
        assert "### %s\n" % name in guide, "docs/operations.md has no runbook for %s" % name
        assert rule["annotations"]["runbook"] == "docs/operations.md#%s" % name.lower()


def test_every_polis_metric_the_rules_read_is_scraped(cluster, key):
    cluster.wait_serving()
    scraped = set()
    for node in cluster.nodes:
        status, body = cluster.http_get(node, "/metrics")
        assert status == 200, body
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                scraped.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    read = set()
    for rule in alerts():
        read |= set(re.findall(r"\b([a-z_]+)(?=\s*[{\[)]|\s*[<>=!])", rule["expr"]))
    read = {name for name in read if name.startswith("polis_") or name in EXTERNAL}
    assert read, "no metric found in the rules"
    missing = {name for name in read - EXTERNAL if name not in scraped}
    assert not missing, "the rules read metrics no node serves: %s" % sorted(missing)
