//! The log entry format a client command needs (see
//! `polis_cluster::version`).

use bytes::Bytes;
use polis_cluster::version::EntryFormat;

/// Returns the entry format a client command needs: the commands of
/// lists, sets, sorted sets, streams and the newer bitmap commands came
/// with format 4 (a replica of an older binary would answer them with an
/// unknown-command error while the others apply them); LOCK and FENCED,
/// and the queue options of consumer groups (XNACK, XGROUP SETOPTIONS,
/// XGROUP CREATE with ACKWAIT, MAXDELIVERIES, DEADLETTER) with format 5,
/// while Redis's forms of the same commands stay at 4.
pub(super) fn command_format(args: &[Bytes]) -> EntryFormat {
    let Some(spec) = args.first().and_then(|name| polis_commands::lookup(name)) else {
        return EntryFormat::V1;
    };
    match spec.group {
        "lock" => EntryFormat::V5,
        "stream" if polis_commands::stream::uses_queue_extensions(args) => EntryFormat::V5,
        "list" | "set" | "sorted_set" | "stream" => EntryFormat::V4,
        "bitmap" if !matches!(spec.name, "setbit" | "getbit" | "bitcount" | "bitpos") => {
            EntryFormat::V4
        }
        _ => EntryFormat::V1,
    }
}
