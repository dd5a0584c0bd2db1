//! Pairs each invocation with its completion, per process, into
//! operations, and each nemesis start with its stop into fault windows.
//!
//! The checkers reason about operations (an interval of time and an
//! outcome), not about events; this is the one place that turns the
//! second into the first and rejects histories that do not make sense.

use std::collections::HashMap;

use serde::Serialize;

pub use super::describe::{describe_micro_op, describe_op};
use crate::history::{Event, Kind, MicroOp, Op, Phase, NEMESIS_PROCESS};

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It happened, and the completion says what it saw.
    Ok,
    /// It certainly did not happen.
    Fail,
    /// Unknown: it may have happened at any time after its invocation, or
    /// never. An invocation the history never completes ends this way.
    Info,
}

/// One client operation: an invocation and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub process: u64,
    /// What the client asked for (the invocation's op).
    pub op: Op,
    pub outcome: Outcome,
    /// What the completion saw; the invocation's op when the history
    /// has no completion.
    pub seen: Op,
    /// The invocation's [`Event::index`].
    pub invoke_index: u64,
    /// The completion's [`Event::index`]; `None` when there is none.
    pub complete_index: Option<u64>,
    pub invoke_ns: u64,
    /// When the operation certainly had finished: `None` for
    /// [`Outcome::Info`], whose effect may land at any later time.
    pub complete_ns: Option<u64>,
}

/// A fault the nemesis held, from its start to its stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultWindow {
    /// The fault as the start event names it.
    pub fault: String,
    pub start_ns: u64,
    /// `None` when the history ends with the fault still in place.
    pub stop_ns: Option<u64>,
    pub start_index: u64,
    pub stop_index: Option<u64>,
}

/// A history as operations and fault windows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paired {
    /// In the order of their invocations.
    pub operations: Vec<Operation>,
    /// In the order of their starts.
    pub faults: Vec<FaultWindow>,
}

/// Why a history cannot be read as operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairError {
    #[error("event {index}: process {process} completes an operation it never invoked")]
    CompletionWithoutInvoke { index: u64, process: u64 },
    #[error(
        "event {index}: process {process} invokes while its operation from event \
         {open_index} is still open"
    )]
    AlreadyOpen {
        index: u64,
        process: u64,
        open_index: u64,
    },
    #[error(
        "event {complete_index} completes {completed} but event {invoke_index} invoked {invoked}"
    )]
    Mismatch {
        invoke_index: u64,
        complete_index: u64,
        invoked: String,
        completed: String,
    },
    #[error("event {complete_index} completes the operation of event {invoke_index} before it was invoked")]
    CompletedBeforeInvoked {
        invoke_index: u64,
        complete_index: u64,
    },
    #[error("event {index}: a client operation under the nemesis's process")]
    ClientOpOnNemesis { index: u64 },
    #[error("event {index}: a nemesis event under client process {process}")]
    NemesisOnClient { index: u64, process: u64 },
    #[error("event {index}: the nemesis stops `{fault}`, which no open fault matches")]
    StopWithoutStart { index: u64, fault: String },
}

/// Pairs every invocation with its completion and every fault start with
/// its stop.
///
/// # Errors
/// Returns the first event that breaks the history's rules: a completion
/// without an invocation, a second invocation while one is open on the
/// same process, a completion of a different operation than the one
/// invoked, a completion timed before its invocation, or a nemesis stop
/// that matches no start.
pub fn pair(events: &[Event]) -> Result<Paired, PairError> {
    let mut operations = Vec::new();
    // Process -> position in `operations` of its open operation.
    let mut open: HashMap<u64, usize> = HashMap::new();
    for event in events {
        if event.process == NEMESIS_PROCESS || matches!(event.op, Op::Nemesis { .. }) {
            continue;
        }
        if event.kind == Kind::Invoke {
            if let Some(&position) = open.get(&event.process) {
                let invoked: &Operation = &operations[position];
                return Err(PairError::AlreadyOpen {
                    index: event.index,
                    process: event.process,
                    open_index: invoked.invoke_index,
                });
            }
            open.insert(event.process, operations.len());
            operations.push(Operation {
                process: event.process,
                op: event.op.clone(),
                outcome: Outcome::Info,
                seen: event.op.clone(),
                invoke_index: event.index,
                complete_index: None,
                invoke_ns: event.time_ns,
                complete_ns: None,
            });
            continue;
        }
        let Some(position) = open.remove(&event.process) else {
            return Err(PairError::CompletionWithoutInvoke {
                index: event.index,
                process: event.process,
            });
        };
        complete(&mut operations[position], event)?;
    }
    Ok(Paired {
        operations,
        faults: fault_windows(events)?,
    })
}

/// Records `event` as the completion of `operation`.
fn complete(operation: &mut Operation, event: &Event) -> Result<(), PairError> {
    if !same_operation(&operation.op, &event.op) {
        return Err(PairError::Mismatch {
            invoke_index: operation.invoke_index,
            complete_index: event.index,
            invoked: describe_op(&operation.op),
            completed: describe_op(&event.op),
        });
    }
    if event.time_ns < operation.invoke_ns {
        return Err(PairError::CompletedBeforeInvoked {
            invoke_index: operation.invoke_index,
            complete_index: event.index,
        });
    }
    operation.outcome = match event.kind {
        Kind::Ok => Outcome::Ok,
        Kind::Fail => Outcome::Fail,
        // An invocation is handled by the caller; treat it as unknown
        // rather than trust it.
        Kind::Info | Kind::Invoke => Outcome::Info,
    };
    operation.seen = event.op.clone();
    operation.complete_index = Some(event.index);
    operation.complete_ns = (operation.outcome != Outcome::Info).then_some(event.time_ns);
    Ok(())
}

/// Whether a completion's op is the invoked op: the same function on the
/// same key with the same arguments. What a read saw may differ.
fn same_operation(invoked: &Op, completed: &Op) -> bool {
    match (invoked, completed) {
        (Op::Read { key: a, .. }, Op::Read { key: b, .. }) => a == b,
        (Op::ReadAll { .. }, Op::ReadAll { .. }) => true,
        (Op::Txn { mops: a }, Op::Txn { mops: b }) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_micro_op(a, b))
        }
        (a @ (Op::Write { .. } | Op::Cas { .. } | Op::Add { .. }), b) => a == b,
        (Op::Xadd { payload: a, .. }, Op::Xadd { payload: b, .. }) => a == b,
        (
            Op::Xreadgroup {
                consumer: a,
                from: a_from,
                ..
            },
            Op::Xreadgroup {
                consumer: b,
                from: b_from,
                ..
            },
        ) => a == b && a_from == b_from,
        (Op::Xautoclaim { consumer: a, .. }, Op::Xautoclaim { consumer: b, .. }) => a == b,
        (Op::Xpending { .. }, Op::Xpending { .. })
        | (Op::Xrange { .. }, Op::Xrange { .. })
        | (Op::XrangeDead { .. }, Op::XrangeDead { .. }) => true,
        (Op::Pop { list: a, .. }, Op::Pop { list: b, .. })
        | (Op::Lrange { list: a, .. }, Op::Lrange { list: b, .. }) => a == b,
        (a @ (Op::Xack { .. } | Op::Xnack { .. } | Op::Rpush { .. } | Op::Lrem { .. }), b) => {
            a == b
        }
        (
            Op::LockAcquire {
                lock: a,
                owner: a_owner,
                ..
            },
            Op::LockAcquire {
                lock: b,
                owner: b_owner,
                ..
            },
        ) => a == b && a_owner == b_owner,
        (a @ (Op::FencedPush { .. } | Op::LockRefresh { .. } | Op::LockRelease { .. }), b) => {
            a == b
        }
        (
            Op::FeedAppend {
                key: a, token: ta, ..
            },
            Op::FeedAppend {
                key: b, token: tb, ..
            },
        ) => a == b && ta == tb,
        (Op::FeedGet { key: a, .. }, Op::FeedGet { key: b, .. })
        | (Op::FeedRead { stream: a, .. }, Op::FeedRead { stream: b, .. }) => a == b,
        (a, b) => super::eventual::same_operation(a, b),
    }
}

/// Whether a completed micro-op is the invoked one: what a read saw may
/// differ.
fn same_micro_op(invoked: &MicroOp, completed: &MicroOp) -> bool {
    match (invoked, completed) {
        (MicroOp::Read { key: a, .. }, MicroOp::Read { key: b, .. }) => a == b,
        (a @ MicroOp::Append { .. }, b) => a == b,
        _ => false,
    }
}

/// Pairs each nemesis start with its stop.
///
/// A stop closes the open fault with the same name; when no name matches
/// and exactly one fault is open, it closes that one (a nemesis may name
/// the end of a fault differently, e.g. `heal` for a partition).
///
/// # Errors
/// Returns an error for a nemesis event under a client process, a client
/// operation under the nemesis's process, or a stop that matches nothing.
pub fn fault_windows(events: &[Event]) -> Result<Vec<FaultWindow>, PairError> {
    let mut windows: Vec<FaultWindow> = Vec::new();
    // Positions in `windows` of the faults not yet stopped.
    let mut open: Vec<usize> = Vec::new();
    for event in events {
        let is_nemesis_op = matches!(event.op, Op::Nemesis { .. });
        if event.process != NEMESIS_PROCESS {
            if is_nemesis_op {
                return Err(PairError::NemesisOnClient {
                    index: event.index,
                    process: event.process,
                });
            }
            continue;
        }
        let Op::Nemesis { fault, phase } = &event.op else {
            return Err(PairError::ClientOpOnNemesis { index: event.index });
        };
        match phase {
            Phase::Start => {
                open.push(windows.len());
                windows.push(FaultWindow {
                    fault: fault.clone(),
                    start_ns: event.time_ns,
                    stop_ns: None,
                    start_index: event.index,
                    stop_index: None,
                });
            }
            Phase::Stop => {
                let matching = open
                    .iter()
                    .position(|&position| windows[position].fault == *fault)
                    .or((open.len() == 1).then_some(0));
                let Some(slot) = matching else {
                    return Err(PairError::StopWithoutStart {
                        index: event.index,
                        fault: fault.clone(),
                    });
                };
                let window = &mut windows[open.remove(slot)];
                window.stop_ns = Some(event.time_ns);
                window.stop_index = Some(event.index);
            }
        }
    }
    Ok(windows)
}

impl Operation {
    /// Renders the operation on one line: process, what it did, how it
    /// ended, when, and its events, e.g.
    /// `p3 read(x) -> 4 ok 1.204s..1.207s (events 10, 12)`.
    pub fn describe(&self) -> String {
        let what = if self.outcome == Outcome::Ok {
            &self.seen
        } else {
            &self.op
        };
        let outcome = match (self.outcome, self.complete_index) {
            (Outcome::Ok, _) => "ok",
            (Outcome::Fail, _) => "fail",
            (Outcome::Info, Some(_)) => "info",
            (Outcome::Info, None) => "never completed",
        };
        // Microseconds: operations often take less than a millisecond.
        let end = self.complete_ns.map_or_else(
            || "?".to_string(),
            |time_ns| format!("{:.6}s", time_ns as f64 / 1e9),
        );
        let events = match self.complete_index {
            Some(complete) => format!("events {}, {complete}", self.invoke_index),
            None => format!("event {}", self.invoke_index),
        };
        format!(
            "p{} {} {outcome} {:.6}s..{end} ({events})",
            self.process,
            describe_op(what),
            self.invoke_ns as f64 / 1e9,
        )
    }
}

/// A pointer from a report to one operation of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperationRef {
    pub invoke_index: u64,
    pub complete_index: Option<u64>,
    /// The operation on one line, as [`Operation::describe`] renders it.
    pub description: String,
}

impl From<&Operation> for OperationRef {
    fn from(operation: &Operation) -> Self {
        OperationRef {
            invoke_index: operation.invoke_index,
            complete_index: operation.complete_index,
            description: operation.describe(),
        }
    }
}

/// Formats nanoseconds since the start of the run as seconds.
pub fn format_seconds(time_ns: u64) -> String {
    format!("{:.3}s", time_ns as f64 / 1e9)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn event(index: u64, process: u64, kind: Kind, op: Op) -> Event {
        Event {
            index,
            time_ns: index * 10,
            process,
            kind,
            op,
            error: None,
        }
    }

    fn write(value: u64) -> Op {
        Op::Write {
            key: "x".into(),
            value,
        }
    }

    fn read(value: Option<u64>) -> Op {
        Op::Read {
            key: "x".into(),
            value,
        }
    }

    fn nemesis(fault: &str, phase: Phase) -> Op {
        Op::Nemesis {
            fault: fault.into(),
            phase,
        }
    }

    #[test]
    fn pairs_per_process_and_leaves_open_invocations_as_info() {
        let events = [
            event(0, 1, Kind::Invoke, write(1)),
            event(1, 2, Kind::Invoke, read(None)),
            event(2, 2, Kind::Ok, read(Some(1))),
            event(3, 1, Kind::Fail, write(1)),
            event(4, 3, Kind::Invoke, write(2)),
            event(5, 3, Kind::Info, write(2)),
            event(6, 4, Kind::Invoke, write(3)),
        ];
        let paired = pair(&events).unwrap();
        let outcomes: Vec<_> = paired
            .operations
            .iter()
            .map(|operation| {
                (
                    operation.process,
                    operation.outcome,
                    operation.complete_index,
                    operation.complete_ns,
                )
            })
            .collect();
        assert_eq!(
            outcomes,
            [
                (1, Outcome::Fail, Some(3), Some(30)),
                (2, Outcome::Ok, Some(2), Some(20)),
                (3, Outcome::Info, Some(5), None),
                (4, Outcome::Info, None, None),
            ]
        );
        assert_eq!(paired.operations[1].seen, read(Some(1)));
        assert_eq!(paired.operations[1].op, read(None));
    }

    #[test]
    fn rejects_a_completion_without_invocation() {
        let events = [event(0, 1, Kind::Ok, write(1))];
        assert_eq!(
            pair(&events),
            Err(PairError::CompletionWithoutInvoke {
                index: 0,
                process: 1
            })
        );
    }

    #[test]
    fn rejects_two_open_invocations_on_one_process() {
        let events = [
            event(0, 1, Kind::Invoke, write(1)),
            event(1, 1, Kind::Invoke, write(2)),
        ];
        assert_eq!(
            pair(&events),
            Err(PairError::AlreadyOpen {
                index: 1,
                process: 1,
                open_index: 0
            })
        );
    }

    #[test]
    fn rejects_a_completion_of_another_operation() {
        let events = [
            event(0, 1, Kind::Invoke, write(1)),
            event(1, 1, Kind::Ok, read(Some(1))),
        ];
        let error = pair(&events).unwrap_err();
        assert!(matches!(error, PairError::Mismatch { .. }), "{error}");
        assert!(error.to_string().contains("write(x, 1)"), "{error}");
    }

    #[test]
    fn rejects_a_completion_timed_before_its_invocation() {
        let mut events = [
            event(0, 1, Kind::Invoke, write(1)),
            event(1, 1, Kind::Ok, write(1)),
        ];
        events[0].time_ns = 100;
        assert!(matches!(
            pair(&events),
            Err(PairError::CompletedBeforeInvoked { .. })
        ));
    }

    #[test]
    fn pairs_fault_windows_by_name_or_the_single_open_one() {
        let events = [
            event(
                0,
                NEMESIS_PROCESS,
                Kind::Info,
                nemesis("kill n1", Phase::Start),
            ),
            event(
                1,
                NEMESIS_PROCESS,
                Kind::Info,
                nemesis("partition", Phase::Start),
            ),
            event(
                2,
                NEMESIS_PROCESS,
                Kind::Info,
                nemesis("kill n1", Phase::Stop),
            ),
            event(3, NEMESIS_PROCESS, Kind::Info, nemesis("heal", Phase::Stop)),
            event(
                4,
                NEMESIS_PROCESS,
                Kind::Info,
                nemesis("pause n2", Phase::Start),
            ),
        ];
        let windows = fault_windows(&events).unwrap();
        let spans: Vec<_> = windows
            .iter()
            .map(|window| (window.fault.as_str(), window.start_ns, window.stop_ns))
            .collect();
        assert_eq!(
            spans,
            [
                ("kill n1", 0, Some(20)),
                ("partition", 10, Some(30)),
                ("pause n2", 40, None)
            ]
        );
    }

    #[test]
    fn rejects_a_stop_that_matches_nothing() {
        let events = [
            event(0, NEMESIS_PROCESS, Kind::Info, nemesis("a", Phase::Start)),
            event(1, NEMESIS_PROCESS, Kind::Info, nemesis("b", Phase::Start)),
            event(2, NEMESIS_PROCESS, Kind::Info, nemesis("c", Phase::Stop)),
        ];
        assert!(matches!(
            fault_windows(&events),
            Err(PairError::StopWithoutStart { index: 2, .. })
        ));
        let stray = [event(0, 1, Kind::Info, nemesis("a", Phase::Start))];
        assert!(matches!(
            pair(&stray),
            Err(PairError::NemesisOnClient { .. })
        ));
    }

    #[test]
    fn describes_an_operation_on_one_line() {
        let events = [
            event(0, 3, Kind::Invoke, read(None)),
            event(1, 3, Kind::Ok, read(Some(4))),
        ];
        let paired = pair(&events).unwrap();
        assert_eq!(
            paired.operations[0].describe(),
            "p3 read(x) -> 4 ok 0.000000s..0.000000s (events 0, 1)"
        );
    }
}
