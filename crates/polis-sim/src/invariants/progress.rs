//! Liveness once the faults stop: with the network healed and every node
//! running again, clients complete operations. A cluster that stays
//! stuck, or whose nodes never settle on a leader, fails this.

use polis_verify::history::{Event, Kind, NEMESIS_PROCESS};

pub const NAME: &str = "progress-after-heal";

/// Checks that some client operation succeeded after `healed_ns`.
///
/// # Errors
/// Describes how the clients fared after the heal when none succeeded.
pub fn check(history: &[Event], healed_ns: u64) -> Result<(), String> {
    let after: Vec<&Event> = history
        .iter()
        .filter(|event| event.process != NEMESIS_PROCESS && event.time_ns > healed_ns)
        .collect();
    if after.iter().any(|event| event.kind == Kind::Ok) {
        return Ok(());
    }
    let completions = after
        .iter()
        .filter(|event| event.kind != Kind::Invoke)
        .count();
    let last_error = after
        .iter()
        .rev()
        .find_map(|event| event.error.clone())
        .unwrap_or_default();
    Err(format!(
        "no operation succeeded in the {} s after the heal ({completions} completed otherwise; \
         last error: {last_error})",
        healed_ns / 1_000_000_000
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.
mod tests {
    use polis_verify::history::Op;

    use super::*;

    fn event(time_s: u64, kind: Kind) -> Event {
        Event {
            index: time_s,
            time_ns: time_s * 1_000_000_000,
            process: 1,
            kind,
            op: Op::Read {
                key: "k".into(),
                value: None,
            },
            error: (kind == Kind::Fail).then(|| "no leader".to_owned()),
        }
    }

    #[test]
    fn a_success_after_the_heal_passes_and_only_failures_fail() {
        let history = [
            event(1, Kind::Invoke),
            event(2, Kind::Ok),
            event(11, Kind::Invoke),
            event(12, Kind::Fail),
        ];
        let error = check(&history, 10_000_000_000).unwrap_err();
        assert!(error.contains("no leader"), "{error}");
        assert!(check(&history, 1_000_000_000).is_ok());
    }
}
