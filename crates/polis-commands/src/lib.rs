//! polis-commands (being written).
