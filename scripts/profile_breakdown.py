#!/usr/bin/env python3
"""Where a polis process spends its CPU, from a `perf record --call-graph`
file: the share of samples whose stack passes through each part of the
server. Shares are inclusive (a sample in fjall under an openraft call
counts for both), so they do not add up to 100 %.

    scripts/profile_breakdown.py perf-leader.data [perf-follower.data ...]
"""

import subprocess
import sys

# (label, substrings of frame names; any one marks the sample)
PARTS = [
    ("client connections (parse, dispatch, reply)", ["polis_server::connection"]),
    ("peer RPCs (tonic, h2, hyper)", ["tonic::", "h2::", "hyper::"]),
    ("openraft core", ["openraft::core::raft_core"]),
    ("openraft replication streams", ["openraft::replication"]),
    ("log appends (fjall)", ["fjall::", "lsm_tree::"]),
    ("group commit thread (fsync)", ["polis_raft::group_commit"]),
    ("apply (state machine)", ["polis_raft::state_machine", "polis_server::machine"]),
    ("postcard encode/decode", ["postcard::"]),
    ("malloc/free", ["malloc", "_int_free", "cfree", "realloc"]),
    ("in the kernel (syscalls)", ["entry_SYSCALL_64"]),
    ("  TCP send", ["tcp_sendmsg"]),
    ("  TCP receive", ["tcp_recvmsg"]),
    ("  waiting and waking (epoll, futex, eventfd)", ["ep_poll", "futex_", "eventfd_"]),
    ("  fdatasync", ["vfs_fsync", "fdatasync"]),
]


def breakdown(path):
    script = subprocess.run(
        ["perf", "script", "-i", path, "-F", "comm,ip,sym"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    samples = [sample for sample in script.split("\n\n") if sample.strip()]
    print(f"{path}: {len(samples)} samples")
    if not samples:
        return
    for label, markers in PARTS:
        hits = sum(1 for sample in samples if any(m in sample for m in markers))
        print(f"  {100 * hits / len(samples):5.1f} %  {label}")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for path in sys.argv[1:]:
        breakdown(path)


if __name__ == "__main__":
    main()
