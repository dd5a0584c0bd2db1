//! SSCAN: visiting the members of a set.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::Db;

use crate::access::{bulk, set_at};
use crate::args::arg;
use crate::command::{ReadCommand, ReadContext};
use crate::keyspace::iterate::{parse_scan_options, pattern_matches, scan_reply, ScanOptions};

/// `SSCAN key cursor [MATCH pattern] [COUNT count]`: like SCAN over the
/// members (the cursor is a member's fixed hash, see
/// `polis_store::HashOrderedMap::scan`); a set small enough for Redis's
/// intset encoding is returned whole in one call, as Redis does.
#[derive(Debug, Clone, PartialEq)]
pub struct SScan {
    pub key: Bytes,
    pub options: ScanOptions,
}

impl ReadCommand for SScan {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            options: parse_scan_options(args, 2, false)?,
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        let set = match set_at(db, &self.key, ctx.now_ms) {
            Ok(Some(set)) => set,
            Ok(None) => return scan_reply(0, Vec::new()),
            Err(error) => return Reply::Error(error),
        };
        let options = &self.options;
        let whole = set.encoding(&db.encoding_limits()) == "intset";
        let (members, next_cursor): (Vec<&Bytes>, u64) = if whole {
            (set.iter().collect(), 0)
        } else {
            let page = set.scan(options.cursor, options.count);
            (
                page.entries
                    .into_iter()
                    .map(|(member, ())| member)
                    .collect(),
                page.next_cursor,
            )
        };
        let items = members
            .into_iter()
            .filter(|member| pattern_matches(options.pattern.as_ref(), member))
            .map(bulk)
            .collect();
        scan_reply(next_cursor, items)
    }
}
