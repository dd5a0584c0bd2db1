//! polis-raft (being written).
