"""The Grafana dashboard in deploy/grafana: a title, a uid, unique panel
ids, every panel described and on the `${datasource}` variable, every
query valid PromQL for promtool, and every metric it reads in a live
scrape of the nodes (or `up`, Prometheus's own)."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
import redis
import yaml

from polis_cluster import REPO_ROOT
from test_alerts import WHILE_MIGRATING

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "polis-dashboard.json"
DATASOURCE = "${datasource}"
# Metrics the dashboard may read from elsewhere than polis's nodes.
EXTERNAL = {"up"}
# PromQL's own words: functions, aggregations, operators and modifiers.
# Anything else a query names outside strings, label matchers, ranges and
# grouping clauses is a metric name.
PROMQL_WORDS = {
    "abs", "absent", "absent_over_time", "and", "avg", "avg_over_time", "bool", "bottomk", "ceil",
    "changes", "clamp", "clamp_max", "clamp_min", "count", "count_over_time", "count_values", "delta",
    "deriv", "floor", "group", "histogram_quantile", "idelta", "increase", "irate", "label_join",
    "label_replace", "last_over_time", "max", "max_over_time", "min", "min_over_time", "offset", "or",
    "predict_linear", "quantile", "quantile_over_time", "rate", "resets", "round", "scalar", "sort",
    "sort_desc", "stddev", "stdvar", "sum", "sum_over_time", "time", "timestamp", "topk", "unless",
    "vector",
}
# Pieces of a query that name no metric: string literals (label values,
# Grafana's $variables), label matchers, range and subquery brackets, and
# grouping clauses with their label lists (`by (le, command)`).
NOT_METRICS = re.compile(
    r'"(?:[^"\\]|\\.)*"'
    r"|'(?:[^'\\]|\\.)*'"
    r"|`[^`]*`"
    r"|\{[^}]*\}"
    r"|\[[^]]*\]"
    r"|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"
    r"|\b(?:group_left|group_right)\b"
)
# An identifier that is not part of a number (1e3, 5m) or a $variable.
NAME = re.compile(r"(?<![\w.$])[A-Za-z_:][\w:]*")
# A query variable's query: label_values(<series selector>, <label>).
LABEL_VALUES = re.compile(r"label_values\((.*),\s*\w+\s*\)")


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict]:
    """Returns every panel, rows and the panels of collapsed rows too."""
    found = []
    for panel in dashboard()["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def graphs() -> list[dict]:
    return [panel for panel in panels() if panel["type"] != "row"]


def queries() -> list[str]:
    """Returns the PromQL of every panel's targets and every query
    variable's series selector."""
    read = [target["expr"] for panel in graphs() for target in panel["targets"]]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            match = LABEL_VALUES.fullmatch(variable["definition"])
            assert match, "variable %s: not label_values(...): %s" % (variable["name"],
                                                                      variable["definition"])
            read.append(match.group(1))
    return read


def metric_names(expr: str) -> set[str]:
    """Returns the metric names a PromQL expression reads."""
    return {name for name in NAME.findall(NOT_METRICS.sub(" ", expr)) if name not in PROMQL_WORDS}


def served(body: str) -> set[str]:
    """Returns the series names of a /metrics body: a histogram's appear
    as its _bucket, _sum and _count series, as Prometheus stores them."""
    return {re.split(r"[{ ]", line, maxsplit=1)[0] for line in body.splitlines()
            if line and not line.startswith("#")}


def unserved(read: set[str], scraped: set[str]) -> set[str]:
    """Returns the names in `read` no scrape served and no other job does."""
    return {name for name in read - EXTERNAL - WHILE_MIGRATING if name not in scraped}


def test_the_dashboard_is_what_its_generator_writes():
    generated = subprocess.run(["python3", str(DASHBOARD.parent / "generate.py")], capture_output=True,
                               text=True, timeout=60, check=True).stdout
    assert json.loads(generated) == dashboard(), "run deploy/grafana/generate.py > %s" % DASHBOARD


def test_the_dashboard_is_well_formed():
    document = dashboard()
    assert document["title"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", document["uid"]), document["uid"]
    variables = {variable["name"]: variable for variable in document["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids)), "panel ids repeat: %s" % sorted(ids)
    assert graphs(), "no panel"
    for panel in panels():
        assert panel["title"], panel["id"]
    for panel in graphs():
        name = "panel %d (%s)" % (panel["id"], panel["title"])
        assert panel["description"], name
        assert panel["datasource"]["uid"] == DATASOURCE, name
        assert panel["targets"], name
        for target in panel["targets"]:
            assert target["expr"].strip(), name
            assert target["datasource"]["uid"] == DATASOURCE, name
            assert metric_names(target["expr"]), "%s reads no metric: %s" % (name, target["expr"])


def test_every_query_is_valid_promql():
    # promtool has no PromQL parser of its own in this version; recording
    # rules make it parse each expression.
    rules = [{"record": "dashboard:query_%d" % index, "expr": expr}
             for index, expr in enumerate(queries())]
    with tempfile.TemporaryDirectory(prefix="polis-dashboard-") as directory:
        path = Path(directory) / "queries.yml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
        done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True,
                              timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: %d rules found" % len(rules) in done.stdout


@pytest.mark.parametrize("expr, names", [
    ('sum by (instance) (rate(polis_commands_total{job=~"$job", instance=~"$instance"}[1m]))',
     {"polis_commands_total"}),
    ("histogram_quantile(0.99, sum by (le, command) (rate(polis_command_duration_seconds_bucket[1m])))",
     {"polis_command_duration_seconds_bucket"}),
    ("rate(polis_fsync_appends_total[1m]) / rate(polis_fsyncs_total[1m])",
     {"polis_fsync_appends_total", "polis_fsyncs_total"}),
    ("a_total / on (instance) group_left (code) b_total", {"a_total", "b_total"}),
    ("max by (shard) (polis_raft_term offset 15m) > 3e0", {"polis_raft_term"}),
    ('label_replace(up, "node", "$1", "instance", "(.*):.*")', {"up"}),
    ("topk(10, made_up_metric) or min without (le) (polis_keys)", {"made_up_metric", "polis_keys"}),
])
def test_metric_names_finds_every_name_a_query_reads(expr, names):
    assert metric_names(expr) == names


def test_a_metric_no_node_serves_is_caught():
    scraped = served("# TYPE polis_keys gauge\npolis_keys 3\n"
                     "# TYPE polis_fsync_duration_seconds histogram\n"
                     'polis_fsync_duration_seconds_bucket{le="0.001"} 1\n'
                     "polis_fsync_duration_seconds_count 1\n")
    read = {"up", "polis_keys", "polis_fsync_duration_seconds_bucket",
            "polis_fsync_duration_seconds_count"}
    assert unserved(read, scraped) == set()
    # A made-up name, a histogram's series of a gauge, a histogram by its
    # bare name (Prometheus stores no such series).
    wrong = {"polis_made_up_total", "polis_keys_bucket", "polis_fsync_duration_seconds"}
    assert unserved(read | wrong, scraped) == wrong


def test_every_metric_the_dashboard_reads_is_scraped(cluster, client, key):
    cluster.wait_serving()
    # Per-command series and polis_errors_total appear once a command ran
    # and an error was replied: a write, a read and a WRONGTYPE.
    name = key()
    assert client.set(name, "v")
    assert client.get(name) == "v"
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        client.lpush(name, "x")
    scraped = set()
    for node in cluster.nodes:
        status, body = cluster.http_get(node, "/metrics")
        assert status == 200, body
        scraped |= served(body.decode())
    read = set()
    for expr in queries():
        read |= metric_names(expr)
    assert read - EXTERNAL, "no polis metric found in the dashboard"
    missing = unserved(read, scraped)
    assert not missing, "the dashboard reads metrics no node serves: %s" % sorted(missing)
