//! The real state machine of a data group (polis-server's
//! [`DataMachine`]), with every applied entry reported to the trace.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use polis_raft::StateMachine;
use polis_server::machine::DataMachine;
use polis_types::{GroupId, NodeId};

use crate::trace::{digest_extend, Trace, TraceEvent};

/// A node's [`DataMachine`] for one run of that node.
pub struct Observed {
    pub data: DataMachine,
    node: NodeId,
    group: GroupId,
    incarnation: u64,
    /// Cleared when this run of the node crashes: whatever its leftover
    /// tasks still apply is thrown away with it, unreported.
    alive: Arc<AtomicBool>,
    trace: Trace,
}

impl Observed {
    /// Returns an empty keyspace of `group` for run `incarnation` of `node`.
    pub fn new(
        node: NodeId,
        group: GroupId,
        incarnation: u64,
        alive: Arc<AtomicBool>,
        trace: Trace,
    ) -> Self {
        Self {
            data: DataMachine::default(),
            node,
            group,
            incarnation,
            alive,
            trace,
        }
    }
}

impl StateMachine for Observed {
    fn apply(&mut self, index: u64, time_ms: u64, payload: &[u8]) -> Bytes {
        if self.alive.load(Ordering::Relaxed) {
            let digest = digest_extend(digest_extend(0, &time_ms.to_le_bytes()), payload);
            self.trace.record(TraceEvent::Applied {
                node: self.node,
                group: self.group,
                incarnation: self.incarnation,
                index,
                digest,
            });
        }
        self.data.apply(index, time_ms, payload)
    }

    fn snapshot(&self) -> Vec<u8> {
        self.data.snapshot()
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        self.data.restore(data)
    }
}
