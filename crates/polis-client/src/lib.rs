//! Talking to polis from outside, as any client or operator would: the
//! admin HTTP API, network faults through it, a RESP client that follows
//! redirects and says whether a command happened, and local clusters of
//! `polis server` processes.
//!
//! Used by the `polis` subcommands (dev, chaos), `polis verify`, and
//! benchmarks. It must not link the node's code: everything goes over
//! the wire.

pub mod admin;
pub mod admin_namespaces;
pub mod dashboard;
pub mod faults;
pub mod local;
pub mod poll;
pub mod ports;
pub mod resp;
