//! polis-store (being written).
