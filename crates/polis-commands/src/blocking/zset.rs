//! BZPOPMIN, BZPOPMAX and BZMPOP, run once: ZMPOP with a timeout the node
//! waits out, its reply reshaped for the two older commands.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::Db;

use super::check_timeout;
use crate::command::WriteCommand;
use crate::zset::BlockingPop;

/// `BZPOPMIN key [key ...] timeout`, `BZPOPMAX ...` (`[key, member,
/// score]`) and `BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT
/// count]` (ZMPOP's reply); the null array when every key is absent.
#[derive(Debug, Clone, PartialEq)]
pub struct BZPop(pub BlockingPop);

impl WriteCommand for BZPop {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let pop = BlockingPop::parse(args)?;
        check_timeout(&pop.timeout)?;
        Ok(Self(pop))
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        self.0.reply(self.0.pop.execute(db, now_ms))
    }
}
