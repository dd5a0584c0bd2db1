//! The clients' history is linearizable: there is one order of all the
//! GETs and SETs, consistent with real time, in which every GET returns
//! the value of the latest SET (Herlihy and Wing). Checked by polis-verify's
//! register checker, each key on its own.

use std::time::Duration;

use polis_verify::check::registers::{self, Budget};
use polis_verify::history::Event;

pub const NAME: &str = "linearizable-history";

/// Enough search for the histories a run produces; a key the search
/// gives up on counts as a failure, never as a pass.
const BUDGET: Budget = Budget {
    states_max: 5_000_000,
    time_max: Duration::from_secs(60),
};

/// Checks `history` for linearizability.
///
/// # Errors
/// Describes the first key that is not linearizable, or that the checker
/// could not decide.
pub fn check(history: &[Event]) -> Result<(), String> {
    let report = registers::check(history, BUDGET);
    if report.is_valid() {
        return Ok(());
    }
    if let Some(anomaly) = report.anomalies.first() {
        return Err(format!(
            "key {:?} is not linearizable: {}",
            anomaly.key, anomaly.explanation
        ));
    }
    Err(format!(
        "the checker gave up on keys {:?} ({} operations)",
        report.unknown_keys, report.operations
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.
mod tests {
    use polis_verify::history::{Kind, Op};

    use super::*;

    fn event(index: u64, process: u64, kind: Kind, op: Op) -> Event {
        Event {
            index,
            time_ns: index * 1_000,
            process,
            kind,
            op,
            error: None,
        }
    }

    fn write(value: u64) -> Op {
        Op::Write {
            key: "k".into(),
            value,
        }
    }

    fn read(value: Option<u64>) -> Op {
        Op::Read {
            key: "k".into(),
            value,
        }
    }

    #[test]
    fn a_read_of_the_latest_write_passes_and_a_stale_read_fails() {
        let good = [
            event(0, 1, Kind::Invoke, write(1)),
            event(1, 1, Kind::Ok, write(1)),
            event(2, 2, Kind::Invoke, read(None)),
            event(3, 2, Kind::Ok, read(Some(1))),
        ];
        assert!(check(&good).is_ok());
        let stale = [
            event(0, 1, Kind::Invoke, write(1)),
            event(1, 1, Kind::Ok, write(1)),
            event(2, 2, Kind::Invoke, read(None)),
            event(3, 2, Kind::Ok, read(None)),
        ];
        let error = check(&stale).unwrap_err();
        assert!(error.contains("not linearizable"), "{error}");
    }

    #[test]
    fn an_unknown_write_may_or_may_not_have_happened() {
        let history = [
            event(0, 1, Kind::Invoke, write(1)),
            event(1, 1, Kind::Info, write(1)),
            event(2, 2, Kind::Invoke, read(None)),
            event(3, 2, Kind::Ok, read(Some(1))),
            event(4, 2, Kind::Invoke, read(None)),
            event(5, 2, Kind::Ok, read(Some(1))),
        ];
        assert!(check(&history).is_ok());
        let failed_but_seen = [
            event(0, 1, Kind::Invoke, write(1)),
            event(1, 1, Kind::Fail, write(1)),
            event(2, 2, Kind::Invoke, read(None)),
            event(3, 2, Kind::Ok, read(Some(1))),
        ];
        assert!(check(&failed_but_seen).is_err());
    }
}
