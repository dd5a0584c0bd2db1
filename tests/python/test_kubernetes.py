"""deploy/kubernetes without a cluster: kustomize renders it, every object
passes kubernetes-validate --strict (Kubernetes's schemas, unknown fields
refused) for an explicit Kubernetes version, and the properties the
bootstrap and the operations guide rely on hold: stable pod names behind a
headless Service that publishes not-ready pods, a disruption budget that
keeps every shard's majority, probes on the admin port, volumes retained,
replicas spread over machines, the preStop hook, Service ports that are
container ports, and settings that `polis server` knows.

The bootstrap itself (the entrypoint script run as pods) is
test_kubernetes_bootstrap.py."""

from __future__ import annotations

import re
import subprocess
import tomllib

import yaml

from kubernetes_manifests import (CONFIG, ENTRYPOINT, KUBERNETES_VERSION, container, container_ports,
                                  documents, env_values, find, rendered_text)
from polis_cluster import polis_binary

NODE_LABELS = {"app.kubernetes.io/name": "polis", "app.kubernetes.io/component": "node"}


def validate(path) -> subprocess.CompletedProcess:
    return subprocess.run(["kubernetes-validate", "--strict", "--kubernetes-version", KUBERNETES_VERSION,
                           str(path)], capture_output=True, text=True, timeout=120)


def test_every_rendered_object_passes_strict_schema_validation(tmp_path):
    path = tmp_path / "rendered.yaml"
    path.write_text(rendered_text())
    kinds = sorted((each["kind"], re.sub(r"-[a-z0-9]{10}$", "", each["metadata"]["name"]))
                   for each in documents())
    assert kinds == [
        ("ConfigMap", "polis-config"), ("ConfigMap", "polis-scripts"),
        ("Deployment", "polis-gateway"), ("PodDisruptionBudget", "polis"),
        ("Secret", "polis-encryption-key"), ("Secret", "polis-tls"),
        ("Service", "polis"), ("Service", "polis-gateway"), ("Service", "polis-peers"),
        ("StatefulSet", "polis"),
    ]
    done = validate(path)
    assert done.returncode == 0, done.stdout + done.stderr
    passed = [line for line in done.stdout.splitlines() if " passed for resource " in line]
    assert len(passed) == len(kinds), done.stdout


def test_strict_validation_refuses_an_unknown_field(tmp_path):
    """The control: the validator would catch a misspelt field."""
    statefulset = find("StatefulSet", "polis")
    container(statefulset)["readinessProbe"]["httpGet"]["paht"] = "/health/ready"
    path = tmp_path / "misspelt.yaml"
    path.write_text(yaml.safe_dump(statefulset))
    done = validate(path)
    assert done.returncode != 0, done.stdout
    assert "'paht' was unexpected" in done.stdout + done.stderr


def test_the_statefulset_has_stable_names_behind_a_headless_service():
    statefulset = find("StatefulSet", "polis")
    peers = find("Service", "polis-peers")
    spec = statefulset["spec"]
    assert spec["replicas"] == 3
    assert spec["serviceName"] == "polis-peers"
    assert peers["spec"]["clusterIP"] == "None"
    assert peers["spec"]["publishNotReadyAddresses"] is True
    assert {port["name"] for port in peers["spec"]["ports"]} == {"peer", "resp", "admin"}
    # Pod 0 is not ready before the others run: they must start together.
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["selector"]["matchLabels"] == NODE_LABELS
    assert NODE_LABELS.items() <= spec["template"]["metadata"]["labels"].items()
    env = env_values(statefulset)
    assert int(env["POLIS_INITIAL_NODES"]) == spec["replicas"]
    assert env["POLIS_PEER_DOMAIN"].startswith("polis-peers.$(POD_NAMESPACE).svc.")
    names = [each["name"] for each in container(statefulset)["env"]]
    assert names.index("POD_NAMESPACE") < names.index("POLIS_PEER_DOMAIN"), \
        "Kubernetes expands $(POD_NAMESPACE) only from a variable defined before"


def test_volumes_are_per_pod_and_retained():
    statefulset = find("StatefulSet", "polis")
    spec = statefulset["spec"]
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenScaled": "Retain", "whenDeleted": "Retain"}
    [claim] = spec["volumeClaimTemplates"]
    mounts = {mount["name"]: mount["mountPath"] for mount in container(statefulset)["volumeMounts"]}
    data_dir = env_values(statefulset)["POLIS_DATA_DIR"]
    assert data_dir.startswith(mounts[claim["metadata"]["name"]] + "/"), \
        "the data directory lies below the volume's root (a new volume may hold lost+found)"


def test_the_disruption_budget_keeps_every_shard_a_majority():
    statefulset = find("StatefulSet", "polis")
    budget = find("PodDisruptionBudget", "polis")
    pods = statefulset["spec"]["replicas"]
    shard_replicas = tomllib.loads(CONFIG.read_text())["replicas"]
    min_available = budget["spec"]["minAvailable"]
    assert isinstance(min_available, int)
    assert min_available * 2 > pods, "a majority of the nodes stays"
    # Any two pods may hold replicas of one shard: no more than a
    # minority of a shard's replicas may be down at once.
    assert pods - min_available <= (shard_replicas - 1) // 2
    assert budget["spec"]["selector"]["matchLabels"] == statefulset["spec"]["selector"]["matchLabels"]


def test_probes_ask_the_admin_port():
    statefulset = find("StatefulSet", "polis")
    node = container(statefulset)
    ports = container_ports(statefulset)
    assert node["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "admin"}
    assert node["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "admin"}
    assert node["startupProbe"]["httpGet"] == {"path": "/health/live", "port": "admin"}
    env = env_values(statefulset)
    # The entrypoint binds the node where the container ports say.
    assert int(env["POLIS_ADMIN_PORT"]) == ports["admin"]
    assert int(env["POLIS_RESP_PORT"]) == ports["resp"]
    assert int(env["POLIS_PEER_PORT"]) == ports["peer"]
    assert tomllib.loads(CONFIG.read_text())["tls_port"] == ports["tls"]


def test_replicas_prefer_separate_machines():
    for kind, name, component in [("StatefulSet", "polis", "node"), ("Deployment", "polis-gateway", "gateway")]:
        workload = find(kind, name)
        anti = workload["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        assert "requiredDuringSchedulingIgnoredDuringExecution" not in anti
        [term] = anti["preferredDuringSchedulingIgnoredDuringExecution"]
        assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
        selector = term["podAffinityTerm"]["labelSelector"]["matchLabels"]
        assert selector == workload["spec"]["selector"]["matchLabels"], kind
        assert selector["app.kubernetes.io/component"] == component


def test_the_entrypoint_and_the_pre_stop_hook_run_the_script_in_the_config_map():
    statefulset = find("StatefulSet", "polis")
    node = container(statefulset)
    scripts = find("ConfigMap", "polis-scripts")
    assert scripts["data"]["polis-entrypoint.sh"] == ENTRYPOINT.read_text()
    volumes = {volume["name"]: volume for volume in statefulset["spec"]["template"]["spec"]["volumes"]}
    mounts = {mount["name"]: mount["mountPath"] for mount in node["volumeMounts"]}
    [scripts_volume] = [name for name, volume in volumes.items()
                        if volume.get("configMap", {}).get("name") == scripts["metadata"]["name"]]
    script = mounts[scripts_volume] + "/polis-entrypoint.sh"
    assert node["command"] == ["/bin/sh", script, "server"]
    assert node["lifecycle"]["preStop"]["exec"]["command"] == ["/bin/sh", script, "pre-stop"]
    assert "remove-node first" in ENTRYPOINT.read_text()
    config = find("ConfigMap", "polis-config")
    assert config["data"]["polis.toml"] == CONFIG.read_text()
    [config_volume] = [name for name, volume in volumes.items()
                       if volume.get("configMap", {}).get("name") == config["metadata"]["name"]]
    assert env_values(statefulset)["POLIS_CONFIG"] == mounts[config_volume] + "/polis.toml"


def _selected(service: dict) -> list[dict]:
    selector = service["spec"]["selector"]
    return [workload for workload in documents() if workload["kind"] in ("StatefulSet", "Deployment")
            and selector.items() <= workload["spec"]["template"]["metadata"]["labels"].items()]


def test_every_service_port_is_a_container_port():
    services = [each for each in documents() if each["kind"] == "Service"]
    assert len(services) == 3
    for service in services:
        workloads = _selected(service)
        assert len(workloads) == 1, service["metadata"]["name"]
        ports = container_ports(workloads[0])
        for port in service["spec"]["ports"]:
            where = "%s port %s" % (service["metadata"]["name"], port["name"])
            assert port["targetPort"] in ports, where
            assert ports[port["targetPort"]] == port["port"], where


def test_the_settings_file_holds_only_polis_server_settings_and_reads_the_secrets():
    settings = tomllib.loads(CONFIG.read_text())
    help_text = subprocess.run([str(polis_binary()), "server", "--help"], capture_output=True, text=True,
                               timeout=30, check=True).stdout
    for key in settings:
        # `polis server` refuses a file with a key it does not know.
        assert "--%s " % key.replace("_", "-") in help_text, key
    for key in ("node_id", "resp_addr", "admin_addr", "peer_addr", "members", "init", "join", "data_dir"):
        assert key not in settings, "%s is the entrypoint's, per pod" % key
    statefulset = find("StatefulSet", "polis")
    spec = statefulset["spec"]["template"]["spec"]
    mounts = {mount["name"]: mount["mountPath"] for mount in container(statefulset)["volumeMounts"]}
    secrets = {volume["name"]: find("Secret", volume["secret"]["secretName"])
               for volume in spec["volumes"] if "secret" in volume}
    assert set(secrets) == {"tls", "encryption"}
    files = {mounts[volume] + "/" + key: secret for volume, secret in secrets.items()
             for key in secret["stringData"]}
    for setting in ("tls_cert_file", "tls_key_file", "tls_ca_cert_file", "encryption_key_file"):
        assert settings[setting] in files, setting
    for secret in secrets.values():
        assert secret["metadata"]["annotations"]["polis/example"].startswith("replace")
        assert all(value.startswith("EXAMPLE: replace") for value in secret["stringData"].values())


def test_the_gateway_seeds_are_the_first_pods_on_the_resp_port():
    gateway = find("Deployment", "polis-gateway")
    statefulset = find("StatefulSet", "polis")
    command = container(gateway)["command"]
    assert command[:2] == ["polis", "gateway"]
    flags = dict(zip(command[2::2], command[3::2]))
    resp = container_ports(statefulset)["resp"]
    seeds = flags["--cluster"].split(",")
    assert seeds == ["polis-%d.polis-peers:%d" % (ordinal, resp)
                     for ordinal in range(int(env_values(statefulset)["POLIS_INITIAL_NODES"]))]
    assert flags["--listen"] == "0.0.0.0:%d" % container_ports(gateway)["resp"]
    assert flags["--admin-listen"] == "0.0.0.0:%d" % container_ports(gateway)["metrics"]
    # The dashboard on the gateway reads the same pods' admin API.
    admin = container_ports(statefulset)["admin"]
    assert flags["--admin-nodes"].split(",") == [seed.rsplit(":", 1)[0] + ":%d" % admin for seed in seeds]
    gateway_probes = container(gateway)
    assert gateway_probes["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "metrics"}
    assert gateway_probes["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "metrics"}
    help_text = subprocess.run([str(polis_binary()), "gateway", "--help"], capture_output=True, text=True,
                               timeout=30, check=True).stdout
    for flag in flags:
        assert "%s <" % flag in help_text, flag
