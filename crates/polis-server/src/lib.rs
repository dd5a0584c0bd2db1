//! polis-server (being written).
