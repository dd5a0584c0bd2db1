#!/usr/bin/env bash
# Fetches Redis 7.0.15's own TCL test suite into .cache/redis-7.0.15/ from
# Debian's source package, at test time. The suite is never committed.
#
# How: the archives this machine already installs binaries from (its own apt
# sources, one-line .list or deb822 .sources files) are asked for their
# sources too, through a deb-src file of our own; then `apt-get source
# --download-only redis=<7.0.15 version>` and `dpkg-source -x`, which also
# applies Debian's patches, so the tests match Debian's redis-server 7.0.15,
# the control server of tests/redis-suite/run.sh.
#
# Idempotent: does nothing when the suite is already unpacked.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

readonly redis_version="7.0.15"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo_root
readonly cache_dir="$repo_root/.cache"
readonly suite_dir="$cache_dir/redis-$redis_version"
readonly marker="tests/unit/type/string.tcl"
readonly deb_src_file="/etc/apt/sources.list.d/polis-deb-src.sources"

log() { printf 'fetch-redis-tests: %s\n' "$*"; }
die() { printf 'fetch-redis-tests: error: %s\n' "$*" >&2; exit 1; }

if [[ -f "$suite_dir/$marker" ]]; then
  log "present: $suite_dir"
  exit 0
fi

# apt sources and apt-get update need root (as in CI).
[[ "$(id -u)" == 0 ]] || die "run as root: it adds an apt deb-src entry and runs apt-get update"

command -v dpkg-source >/dev/null 2>&1 || die "dpkg-source missing: run scripts/install-deps.sh"

# Writes deb-src twins of this machine's enabled deb entries for the
# distribution's own suites (codename, codename-updates, codename-security).
# Third-party archives are left out: most publish no sources.
write_deb_src_entries() {
  python3 - "$deb_src_file" <<'PY'
import glob
import os
import re
import sys

target = sys.argv[1]

codename = ""
with open("/etc/os-release", encoding="utf-8") as os_release:
    for line in os_release:
        if line.startswith("VERSION_CODENAME="):
            codename = line.split("=", 1)[1].strip().strip('"')
if not codename:
    sys.exit("no VERSION_CODENAME in /etc/os-release")

def own_suite(suite):
    return suite == codename or suite.startswith(codename + "-") or suite.startswith(codename + "/")

entries = []  # (uri, [suites], [components], signed_by or None)

def add(uri, suites, components, signed_by):
    suites = [suite for suite in suites if own_suite(suite)]
    if suites and components:
        entries.append((uri, suites, components, signed_by))

def read_one_line(path):
    with open(path, encoding="utf-8") as source:
        for raw in source:
            line = raw.split("#", 1)[0].strip()
            if not line.startswith("deb "):
                continue
            options = {}
            match = re.match(r"deb\s+\[([^\]]*)\]\s+(.*)", line)
            if match:
                for option in match.group(1).split():
                    key, _, value = option.partition("=")
                    options[key.lower()] = value
                rest = match.group(2).split()
            else:
                rest = line.split()[1:]
            if len(rest) < 3:
                continue
            add(rest[0], [rest[1]], rest[2:], options.get("signed-by"))

def read_deb822(path):
    with open(path, encoding="utf-8") as source:
        text = source.read()
    for stanza in re.split(r"\n\s*\n", text):
        fields = {}
        key = None
        for raw in stanza.splitlines():
            if raw.startswith("#") or not raw.strip():
                continue
            if raw[0].isspace() and key:
                fields[key] += "\n" + raw.strip()
                continue
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() in ("no", "false", "0"):
            continue
        signed_by = fields.get("signed-by")
        if signed_by and "\n" in signed_by:
            signed_by = None  # an inline key: apt's own keyring check applies
        for uri in fields.get("uris", "").split():
            add(uri, fields.get("suites", "").split(), fields.get("components", "").split(), signed_by)

if os.path.exists("/etc/apt/sources.list"):
    read_one_line("/etc/apt/sources.list")
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    read_one_line(path)
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    if os.path.abspath(path) != os.path.abspath(target):
        read_deb822(path)

if not entries:
    sys.exit("no enabled deb entry for suite %s in this machine's apt sources" % codename)

stanzas = ["# Written by polis scripts/fetch-redis-tests.sh: deb-src twins of this\n"
           "# machine's own deb entries, to fetch Redis's source package (its tests).\n"]
for uri, suites, components, signed_by in entries:
    stanza = "Types: deb-src\nURIs: %s\nSuites: %s\nComponents: %s\n" % (uri, " ".join(suites), " ".join(components))
    if signed_by:
        stanza += "Signed-By: %s\n" % signed_by
    stanzas.append(stanza)
content = "\n".join(stanzas)

try:
    with open(target, encoding="utf-8") as existing:
        if existing.read() == content:
            sys.exit(0)
except FileNotFoundError:
    pass
tmp = target + ".tmp"
with open(tmp, "w", encoding="utf-8") as out:
    out.write(content)
os.replace(tmp, target)
print("fetch-redis-tests: wrote %s (%d entries)" % (target, len(entries)))
PY
}

# Prints the source version of redis whose upstream part is $redis_version
# (e.g. 5:7.0.15-1~deb12u10), or nothing.
source_version() {
  apt-cache showsrc redis 2>/dev/null |
    awk '/^Version:/ {print $2}' |
    grep -E "^([0-9]+:)?${redis_version//./\\.}-" |
    sort -V | tail -n 1 || true
}

write_deb_src_entries

version="$(source_version)"
if [[ -z "$version" ]]; then
  log "apt-get update (to read source indexes)"
  apt-get update -q </dev/null
  version="$(source_version)"
fi
[[ -n "$version" ]] || die "no redis source package of version $redis_version in this machine's apt sources (see: apt-cache showsrc redis)"
log "redis source package $version"

mkdir -p "$cache_dir"
work_dir="$(mktemp -d "$cache_dir/redis-src.XXXXXX")"
trap 'rm -rf "$work_dir"' EXIT

# _apt (apt's download user) must be able to write into the work dir.
chmod 0777 "$work_dir"
(cd "$work_dir" && apt-get source -q --download-only "redis=$version" </dev/null)

dsc="$(find "$work_dir" -maxdepth 1 -name 'redis_*.dsc' | head -n 1)"
[[ -n "$dsc" ]] || die "apt-get source produced no .dsc"
# The .dsc's hash was checked by apt against the signed Release file; the
# uploader's own signature cannot be checked without Debian's keyring, so
# dpkg-source's warning about it is kept out of the log unless it fails.
if ! (cd "$work_dir" && dpkg-source -x "$(basename "$dsc")" unpacked >"$work_dir/dpkg-source.log" 2>&1); then
  cat "$work_dir/dpkg-source.log" >&2
  die "dpkg-source -x failed"
fi

[[ -f "$work_dir/unpacked/$marker" ]] || die "unpacked source has no $marker"
grep -q "\"$redis_version\"" "$work_dir/unpacked/src/version.h" ||
  die "unpacked source is not Redis $redis_version: $(cat "$work_dir/unpacked/src/version.h")"

rm -rf "$suite_dir"
mv "$work_dir/unpacked" "$suite_dir"
log "unpacked Redis $redis_version tests into $suite_dir"
