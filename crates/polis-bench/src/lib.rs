//! Benchmarks of polis against its peers, measured side by side: the load
//! generator (`polis bench run`), the comparison runner (`polis bench
//! compare`) and its reports.
//!
//! What it owns: workloads, key choice, the closed- and open-loop drivers,
//! latency histograms, the peers' process management and the reports. It
//! talks to every system over its own protocol (RESP, etcd's gRPC), like
//! any client; it must not link the node's code.

pub mod at_rest;
pub mod compare;
pub mod driver;
pub mod element_memory;
pub mod eventual;
pub mod eviction;
pub mod footprint;
pub mod histogram;
pub mod idle;
pub mod keys;
pub mod limits;
pub mod memory;
pub mod migration;
pub mod peers;
pub mod pubsub;
pub mod queue;
pub mod report;
pub mod scale_out;
pub mod schedule;
pub mod spec;
pub mod workload;
