//! Library side of the polis binary: pieces the subcommands and the
//! integration tests share.

pub mod admin_client;
