"""The web dashboard every node serves at /dashboard on its admin port, and
the gateway at its own, in a real browser (headless Chromium, Debian's,
driven by Playwright) against a 5-node cluster with fault injection
enabled: it loads without a console error, shows the cluster's 5 nodes and
5 shards and the whole cluster's throughput (commands another node served
count), shows a killed node down within seconds, and its fault buttons
change the node's fault state. Screenshots go to
target/test-output/dashboard/."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from polis_cluster import REPO_ROOT, Cluster, Raw, polis_binary, resp_call

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = REPO_ROOT / "target" / "test-output" / "dashboard"
SHOWN_WITHIN_MS = 15_000


@pytest.fixture(scope="module")
def five_nodes():
    cluster = Cluster(polis_binary(), nodes=5, shards=5, node_args=("--enable-fault-injection",))
    yield cluster
    cluster.stop()


def launch(playwright):
    return playwright.chromium.launch(
        executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"])


def test_the_gateway_serves_the_dashboard_with_the_whole_clusters_throughput(five_nodes):
    from playwright.sync_api import expect, sync_playwright

    cluster = five_nodes
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    gateway = cluster.gateway_admin_port()
    # A key another node leads: the gateway asks node 1 (the first of its
    # --admin-nodes), whose own /metrics never counts these SETs.
    key = next("throughput:%d" % index for index in range(1000)
               if cluster.leader_for("throughput:%d" % index).node_id != 1)
    leader = cluster.leader_for(key)
    stop = threading.Event()

    def write():
        connection = Raw(leader.resp_port)
        try:
            for _ in range(2000):
                if stop.is_set():
                    break
                for _ in range(50):
                    assert connection.call("SET", key, "v") == "OK"
        finally:
            connection.close()

    problems: list[str] = []
    writer = threading.Thread(target=write, daemon=True)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda message: message.type == "error" and problems.append(message.text))
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("request", lambda request: None if request.url.startswith(
                "http://127.0.0.1:%d/" % gateway) else problems.append("a request elsewhere: " + request.url))
            page.goto("http://127.0.0.1:%d/" % gateway)
            expect(page.locator("#nodes tbody tr")).to_have_count(5, timeout=SHOWN_WITHIN_MS)
            expect(page.locator("#shards tbody tr")).to_have_count(5, timeout=SHOWN_WITHIN_MS)
            expect(page.locator("#ops-nodes")).to_have_text("5 of 5", timeout=SHOWN_WITHIN_MS)
            writer.start()
            # Hundreds of SETs a second on another node: the cluster's figure
            # shows them (the dashboard's own polling is a few a second).
            page.wait_for_function("Number(document.getElementById('ops').textContent) >= 100",
                                   timeout=SHOWN_WITHIN_MS)
            page.screenshot(path=str(SCREENSHOTS / "0-gateway.png"), full_page=True)
        finally:
            stop.set()
            browser.close()
            if writer.ident is not None:
                writer.join(30)
    assert not problems, problems
    assert (SCREENSHOTS / "0-gateway.png").stat().st_size > 10_000


def test_the_dashboard_shows_the_cluster_a_killed_node_and_faults(five_nodes):
    from playwright.sync_api import expect, sync_playwright

    cluster = five_nodes
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda message: message.type == "error" and problems.append(message.text))
            page.on("pageerror", lambda error: problems.append(str(error)))
            # Nothing but this node's admin port is asked for.
            page.on("request", lambda request: None if request.url.startswith(
                "http://127.0.0.1:%d/" % cluster.nodes[0].admin_port) else problems.append(
                "a request elsewhere: " + request.url))
            page.goto("http://127.0.0.1:%d/dashboard" % cluster.nodes[0].admin_port)

            expect(page.locator("#nodes tbody tr")).to_have_count(5, timeout=SHOWN_WITHIN_MS)
            expect(page.locator("#shards tbody tr")).to_have_count(5, timeout=SHOWN_WITHIN_MS)
            expect(page.locator("#nodes tbody tr[data-up=true]")).to_have_count(5, timeout=SHOWN_WITHIN_MS)
            expect(page.locator("#cluster-state")).to_have_text("ok", timeout=SHOWN_WITHIN_MS)
            page.screenshot(path=str(SCREENSHOTS / "1-healthy.png"), full_page=True)

            # Kill node 5 (SIGKILL to the process INFO names): the page
            # shows it down within seconds.
            victim = cluster.nodes[4]
            info = resp_call(victim.resp_port, "INFO", "server").decode()
            pid = int(next(line.split(":")[1] for line in info.splitlines()
                           if line.startswith("process_id:")))
            os.kill(pid, signal.SIGKILL)
            expect(page.locator("#nodes tbody tr[data-node='5']")).to_have_attribute(
                "data-up", "false", timeout=SHOWN_WITHIN_MS)
            expect(page.locator("#nodes-summary")).to_have_text("4 of 5 up", timeout=SHOWN_WITHIN_MS)
            page.screenshot(path=str(SCREENSHOTS / "2-node-5-killed.png"), full_page=True)

            # The fault buttons change this node's fault state (as its
            # admin API reports it), and heal undoes it.
            expect(page.locator("#faults-section")).to_be_visible(timeout=SHOWN_WITHIN_MS)
            expect(page.locator("#faults-state")).to_have_text("healthy", timeout=SHOWN_WITHIN_MS)
            page.click("#fault-delay")
            expect(page.locator("#faults-state")).to_have_text("delay 100 ms", timeout=SHOWN_WITHIN_MS)
            status, body = cluster.http_get(cluster.nodes[0], "/faults")
            assert status == 200 and b'"delay_ms":100' in body, body
            page.screenshot(path=str(SCREENSHOTS / "3-delay-fault.png"), full_page=True)
            page.click("#fault-heal")
            expect(page.locator("#faults-state")).to_have_text("healthy", timeout=SHOWN_WITHIN_MS)
            status, body = cluster.http_get(cluster.nodes[0], "/faults")
            assert status == 200 and b'"delay_ms":0' in body, body
        finally:
            browser.close()
    assert not problems, problems
    for shot in ("1-healthy.png", "2-node-5-killed.png", "3-delay-fault.png"):
        assert (SCREENSHOTS / shot).stat().st_size > 10_000, shot
