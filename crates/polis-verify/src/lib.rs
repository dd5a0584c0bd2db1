//! Tries hard to break polis's guarantees and shows the result: runs
//! concurrent clients and a nemesis against a cluster, records every
//! operation as a history, and checks the history (linearizability of
//! registers, no lost or invented set elements, stream entries delivered
//! and acknowledgements kept, list elements popped once and never lost,
//! eventual keys converging on every node with nothing lost or invented).
//!
//! What it owns: the history format, the checkers, the workloads, the
//! nemeses and the report. It talks to clusters only over RESP and the
//! admin HTTP API, like any client; it must not link the node's code.

pub mod check;
pub mod final_read;
pub mod history;
pub mod link;
pub mod nemesis;
pub mod recorder;
pub mod redis_control;
pub mod report;
pub mod results;
pub mod run;
pub mod target;
pub mod workload;
