"""The alert rules in deploy/prometheus: valid for promtool, each firing and
not firing in its unit tests, each with a runbook, each reading metrics a
live scrape of the nodes has (or node_exporter's, named)."""

from __future__ import annotations

import re
import subprocess

import yaml

from polis_cluster import REPO_ROOT, resp_call, wait_until

RULES = REPO_ROOT / "deploy" / "prometheus"
# Metrics the rules may read from elsewhere than polis's nodes.
EXTERNAL = {"up", "node_filesystem_avail_bytes", "node_filesystem_size_bytes"}
# Metrics a node serves only while it drives a migration: the test below
# that moves a slot sees them.
WHILE_MIGRATING = {"polis_migration_seconds", "polis_migration_sent_bytes",
                   "polis_migration_copied_ratio"}


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
    missing = {name for name in read - EXTERNAL - WHILE_MIGRATING if name not in scraped}
    assert not missing, "the rules read metrics no node serves: %s" % sorted(missing)


def scrape(cluster, node) -> dict[str, float]:
    """Returns the node's samples, by series (name and labels)."""
    status, body = cluster.http_get(node, "/metrics")
    assert status == 200, body
    samples = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            series, _, number = line.rpartition(" ")
            samples[series] = float(number)
    return samples


def test_a_migration_shows_in_the_metrics_its_alert_reads(cluster, client, key):
    """polis_migration_* exist only while a migration runs: move a slot
    with a few MiB in it and scrape the driving node (the source's leader)
    until they show."""
    cluster.wait_serving()
    tag = "{%s}" % key("mig")
    value = "v" * 4096
    pipe = client.pipeline(transaction=False)
    for i in range(2000):
        pipe.set("%s:%d" % (tag, i), value)
    pipe.execute()
    source = cluster.shard_for(tag)
    target = next(shard for shard in cluster.status(cluster.nodes[0])["shards"]
                  if shard["id"] != source["id"])
    driver = cluster.leader_for(tag)
    slot = client.keyslot(tag)
    reply = resp_call(driver.resp_port, "CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", str(slot), str(slot),
                      "NODE", "%040x" % target["leader_node"])
    assert reply == "OK", reply
    seen: dict[str, float] = {}

    def shown_or_ended() -> bool:
        samples = scrape(cluster, driver)
        for series, number in samples.items():
            if series.startswith("polis_migration"):
                seen[series.split("{")[0] if "phase" not in series else series] = number
        return "polis_migration_sent_bytes" in seen or not resp_call(driver.resp_port, "CLUSTER",
                                                                     "GETSLOTMIGRATIONS")

    wait_until(shown_or_ended, 60.0, "the migration's metrics, or its end")
    for name in WHILE_MIGRATING:
        assert name in seen, "no %s while the migration ran: %s" % (name, sorted(seen))
    assert seen['polis_migrations{phase="copying"}'] + seen['polis_migrations{phase="switched"}'] == 1
    wait_until(lambda: not resp_call(driver.resp_port, "CLUSTER", "GETSLOTMIGRATIONS"), 120.0,
               "the migration to end")
    assert client.get("%s:1999" % tag) == value
    pipe = client.pipeline(transaction=False)
    for i in range(2000):
        pipe.delete("%s:%d" % (tag, i))
    pipe.execute()
    # The slot goes back: the session's other tests find the shards as
    # they were.
    home = cluster.node_by_id(target["leader_node"])
    reply = resp_call(home.resp_port, "CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", str(slot), str(slot),
                      "NODE", "%040x" % source["leader_node"])
    assert reply == "OK", reply
    wait_until(lambda: not resp_call(home.resp_port, "CLUSTER", "GETSLOTMIGRATIONS")
               and cluster.shard_for(tag)["id"] == source["id"], 120.0, "the slot to move back")
