//! BLPOP, BRPOP, BLMOVE, BRPOPLPUSH and BLMPOP, run once: the list
//! family's pops and moves with a timeout the node waits out.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::Db;

use super::check_timeout;
use crate::access::bulk;
use crate::args::{arg, command_name, wrong_arity};
use crate::command::WriteCommand;
use crate::list::{pop_first, End, LMPop, LMove};

/// `BLPOP key [key ...] timeout` and `BRPOP`: `[key, element]`, or the
/// null array when every list is empty.
#[derive(Debug, Clone, PartialEq)]
pub struct BPop {
    pub keys: Vec<Bytes>,
    pub end: End,
}

impl WriteCommand for BPop {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        if args.len() < 3 {
            return Err(wrong_arity(args));
        }
        check_timeout(&args[args.len() - 1])?;
        Ok(Self {
            keys: args[1..args.len() - 1].to_vec(),
            end: if command_name(args) == "blpop" {
                End::Left
            } else {
                End::Right
            },
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        match pop_first(db, &self.keys, self.end, 1, now_ms) {
            Ok(Some((key, mut popped))) if !popped.is_empty() => {
                Reply::Array(vec![bulk(&key), Reply::Bulk(popped.remove(0))])
            }
            Ok(_) => Reply::NullArray,
            Err(error) => Reply::Error(error),
        }
    }
}

/// `BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout` and
/// `BRPOPLPUSH source destination timeout`: LMOVE's element, or null.
#[derive(Debug, Clone, PartialEq)]
pub struct BLMove(pub LMove);

impl WriteCommand for BLMove {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let source = arg(args, 1)?.clone();
        let destination = arg(args, 2)?.clone();
        let (from, to, timeout) = if command_name(args) == "brpoplpush" {
            if args.len() != 4 {
                return Err(wrong_arity(args));
            }
            (End::Right, End::Left, &args[3])
        } else {
            if args.len() != 6 {
                return Err(wrong_arity(args));
            }
            (End::parse(&args[3])?, End::parse(&args[4])?, &args[5])
        };
        check_timeout(timeout)?;
        Ok(Self(LMove {
            source,
            destination,
            from,
            to,
        }))
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        self.0.execute(db, now_ms)
    }
}

/// `BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]`:
/// LMPOP's `[key, [element ...]]`, or the null array.
#[derive(Debug, Clone, PartialEq)]
pub struct BLMPop(pub LMPop);

impl WriteCommand for BLMPop {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        check_timeout(arg(args, 1)?)?;
        LMPop::parse_from(args, 2).map(Self)
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        self.0.execute(db, now_ms)
    }
}
