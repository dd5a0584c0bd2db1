//! Taking a group's state for a backup: the leader's latest snapshot,
//! built anew if it is older than what the leader applied when asked,
//! so that it holds every write acknowledged before the backup began.

use std::time::Duration;

use super::{unavailable, Group, ProposeError};
use crate::state_machine::{self, StateMachine};

/// A group's state as of one applied log index.
#[derive(Debug, Clone)]
pub struct GroupBackup {
    /// The last log index (and its term) the state holds.
    pub index: u64,
    pub term: u64,
    /// The group's clock at that index.
    pub time_ms: u64,
    /// The application's snapshot ([`StateMachine::snapshot`]).
    pub app: Vec<u8>,
}

/// How often the snapshot's progress is looked at while it builds.
const POLL_EVERY: Duration = Duration::from_millis(20);
/// How long a snapshot asked for may take before it is asked for again.
const ASK_AGAIN_AFTER: Duration = Duration::from_secs(5);

impl<S: StateMachine> Group<S> {
    /// Returns the group's state as of an index at least as high as every
    /// write this leader acknowledged before the call: it confirms its
    /// leadership (ReadIndex), then takes its persisted snapshot, asking
    /// for a new one first if that is older. The snapshot is built in
    /// steps, so writes go on meanwhile.
    ///
    /// # Errors
    /// [`ProposeError::NotLeader`] on a follower; [`ProposeError::Unavailable`]
    /// when no quorum confirms the leadership, or no snapshot is ready
    /// within `timeout`.
    pub async fn backup(&self, timeout: Duration) -> Result<GroupBackup, ProposeError> {
        self.linearizable_read().await?;
        let wanted = self
            .state
            .read()
            .last_applied
            .map_or(0, |log_id| log_id.index);
        let deadline = tokio::time::Instant::now() + timeout;
        // Asked for at the start, and again whenever a build ends short
        // of `wanted` (it began before) or a while passes with none.
        let mut asked: Option<(u64, tokio::time::Instant)> = None;
        loop {
            let built = self.metrics().snapshot.map_or(0, |log_id| log_id.index);
            if built >= wanted {
                if let Some(backup) = self.current_snapshot(wanted).await? {
                    return Ok(backup);
                }
            }
            let now = tokio::time::Instant::now();
            let ask = asked.is_none_or(|(seen, at)| seen != built || now - at >= ASK_AGAIN_AFTER);
            if ask {
                self.trigger_snapshot().await?;
                asked = Some((built, now));
            }
            if now >= deadline {
                return Err(ProposeError::Unavailable(format!(
                    "no snapshot reached log index {wanted} within {timeout:?}"
                )));
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// The persisted snapshot, when it holds index `wanted`.
    async fn current_snapshot(&self, wanted: u64) -> Result<Option<GroupBackup>, ProposeError> {
        let Some(snapshot) = self.raft.get_snapshot().await.map_err(unavailable)? else {
            return Ok(None);
        };
        let Some(last) = snapshot.meta.last_log_id else {
            return Ok(None);
        };
        if last.index < wanted {
            return Ok(None);
        }
        let (time_ms, app) =
            state_machine::decode_snapshot_body(&snapshot.snapshot).map_err(unavailable)?;
        Ok(Some(GroupBackup {
            index: last.index,
            term: last.leader_id.term,
            time_ms,
            app,
        }))
    }
}
