#!/usr/bin/env bash
# Fuzzes the polis-resp request decoder, or the command layer
# (FUZZ_TARGET=apply_commands), with cargo-fuzz (libFuzzer).
#
#   scripts/fuzz.sh                    # 60 s on fuzz_targets/decode_request.rs
#   FUZZ_TARGET=apply_commands scripts/fuzz.sh   # the command layer, as replicas apply it
#   FUZZ_SECONDS=600 scripts/fuzz.sh   # longer
#   FUZZ_SANITIZER=address scripts/fuzz.sh   # with AddressSanitizer
#   scripts/fuzz.sh -- -only_ascii=1   # extra libFuzzer flags
#
# Idempotent: installs cargo-fuzz when missing, then runs one target for
# FUZZ_SECONDS. cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP=1 unlocks
# them on the stable toolchain this project uses.
#
# New inputs libFuzzer finds go to fuzz/corpus-work/<target> (gitignored);
# the committed seed corpus fuzz/corpus/<target> is only read. To refresh
# the committed corpus, minimize the work corpus into it:
#   cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz cmin --dev <target> corpus-work/<target>
# and copy back at most ~50 small files. Crashes land in fuzz/artifacts/;
# add each as a regression test in crates/polis-resp/src/decode_test.rs.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${FUZZ_TARGET:-decode_request}"
seconds="${FUZZ_SECONDS:-60}"
# polis forbids unsafe code, so AddressSanitizer mostly watches
# dependencies; without it the target runs several times faster. Set
# FUZZ_SANITIZER=address to fuzz with it.
sanitizer="${FUZZ_SANITIZER:-none}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

extra_args=()
if [[ "${1:-}" == "--" ]]; then
    shift
    extra_args=("$@")
fi

cd "$repo_root/fuzz"
mkdir -p "corpus-work/$target" "corpus/$target"
# --dev with the optimized dev profile from fuzz/Cargo.toml: the project
# never builds --release, and fuzz/ has its own target directory.
RUSTC_BOOTSTRAP=1 cargo fuzz run --dev --sanitizer "$sanitizer" "$target" "corpus-work/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 "${extra_args[@]}"
