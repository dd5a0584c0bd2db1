//! Writes to a slot frozen for its migration's switch: they wait the
//! freeze out, then go to the slot's new owner or are told to try again.

use std::time::Duration;

use polis_resp::{Reply, ReplyError};
use polis_types::Slot;

use super::{not_owned, wait_until};
use crate::node::{Node, ShardGroup};

/// How much longer than the longest freeze a command waits for its slot.
const FROZEN_GRACE: Duration = Duration::from_secs(1);

/// Waits while `slot` is frozen on `group` for its migration's switch: a
/// freeze lasts at most `--migration-pause-max-ms`, then the slot is the
/// target's or thawed. Returns false when the freeze outlasted the wait.
pub(super) async fn wait_out_freeze(node: &Node, group: &ShardGroup, slot: Slot) -> bool {
    wait_until(node.config.migration_pause_max + FROZEN_GRACE, || {
        !group.state().read().app.migrations.frozen(Some(slot))
    })
    .await
}

/// The reply to a write refused because `slot` was frozen: held until the
/// freeze ends, then `MOVED` to the slot's new owner once the switch gave
/// it away, else TRYAGAIN. The write is never proposed again here: its
/// client may have given up meanwhile, and a write applied after its
/// client moved on would land after the client's later writes.
pub(super) async fn frozen_write(node: &Node, group: &ShardGroup, slot: Slot) -> Reply {
    if !wait_out_freeze(node, group, slot).await {
        return frozen(Some(slot));
    }
    let (owns, version) = {
        let state = group.state().read();
        (state.app.owns(Some(slot)), state.app.ownership.version)
    };
    if owns {
        return Reply::Error(ReplyError::TryAgain(format!(
            "slot {slot} was frozen for a switch that was put off: it stays here; try again"
        )));
    }
    not_owned(node, group, slot, version)
        .await
        .unwrap_or_else(|| frozen(Some(slot)))
}

/// The reply to a command on a slot frozen for its migration's switch.
pub(super) fn frozen(slot: Option<Slot>) -> Reply {
    let what = slot.map_or_else(
        || "a slot of this shard".to_owned(),
        |slot| format!("slot {slot}"),
    );
    Reply::Error(ReplyError::TryAgain(format!(
        "{what} is moving to another shard (a migration is switching it); try again"
    )))
}
