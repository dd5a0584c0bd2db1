//! SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD and SMOVE.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, Db};

use crate::access::{bulk, set_at, update_set};
use crate::args::{arg, wrong_arity};
use crate::command::{ReadCommand, ReadContext, WriteCommand};

/// Returns `args[from..]`, or a wrong-arity error when it is empty.
fn members_from(args: &[Bytes], from: usize) -> Result<Vec<Bytes>, ReplyError> {
    match args.get(from..) {
        Some(members) if !members.is_empty() => Ok(members.to_vec()),
        _ => Err(wrong_arity(args)),
    }
}

/// `SADD key member [member ...]`: replies the number of new members.
#[derive(Debug, Clone, PartialEq)]
pub struct SAdd {
    pub key: Bytes,
    pub members: Vec<Bytes>,
}

impl WriteCommand for SAdd {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            members: members_from(args, 2)?,
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        // A set that already holds every member is left untouched, so its
        // version (WATCH) does not change, as Redis signals no change.
        match set_at(db, &self.key, now_ms) {
            Err(error) => return Reply::Error(error),
            Ok(Some(set)) if self.members.iter().all(|member| set.contains(member)) => {
                return Reply::Integer(0)
            }
            Ok(_) => {}
        }
        let added = update_set(db, &self.key, now_ms, |set| {
            self.members
                .iter()
                .filter(|member| set.insert(member))
                .count()
        });
        match added {
            Ok(added) => {
                if added > 0 {
                    db.notify(event_class::SET, "sadd", &self.key);
                }
                Reply::Integer(added as i64)
            }
            Err(error) => Reply::Error(error),
        }
    }
}

/// `SREM key member [member ...]`: replies the number of members removed;
/// the key goes with its last member.
#[derive(Debug, Clone, PartialEq)]
pub struct SRem {
    pub key: Bytes,
    pub members: Vec<Bytes>,
}

impl WriteCommand for SRem {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            members: members_from(args, 2)?,
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        match set_at(db, &self.key, now_ms) {
            Err(error) => return Reply::Error(error),
            Ok(None) => return Reply::Integer(0),
            Ok(Some(set)) if !self.members.iter().any(|member| set.contains(member)) => {
                return Reply::Integer(0)
            }
            Ok(Some(_)) => {}
        }
        let removed = update_set(db, &self.key, now_ms, |set| {
            self.members
                .iter()
                .filter(|member| set.remove(member))
                .count()
        });
        match removed {
            Ok(removed) => {
                if removed > 0 {
                    db.notify(event_class::SET, "srem", &self.key);
                }
                Reply::Integer(removed as i64)
            }
            Err(error) => Reply::Error(error),
        }
    }
}

/// `SMEMBERS key`: every member (a set reply in RESP3).
#[derive(Debug, Clone, PartialEq)]
pub struct SMembers {
    pub key: Bytes,
}

impl ReadCommand for SMembers {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        match set_at(db, &self.key, ctx.now_ms) {
            Ok(set) => Reply::Set(
                set.into_iter()
                    .flat_map(|set| set.iter())
                    .map(bulk)
                    .collect(),
            ),
            Err(error) => Reply::Error(error),
        }
    }
}

/// `SISMEMBER key member`: 1 or 0.
#[derive(Debug, Clone, PartialEq)]
pub struct SIsMember {
    pub key: Bytes,
    pub member: Bytes,
}

impl ReadCommand for SIsMember {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            member: arg(args, 2)?.clone(),
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        match set_at(db, &self.key, ctx.now_ms) {
            Ok(set) => Reply::Integer(i64::from(set.is_some_and(|set| set.contains(&self.member)))),
            Err(error) => Reply::Error(error),
        }
    }
}

/// `SMISMEMBER key member [member ...]`: 1 or 0 per member; an absent key
/// is an empty set.
#[derive(Debug, Clone, PartialEq)]
pub struct SMIsMember {
    pub key: Bytes,
    pub members: Vec<Bytes>,
}

impl ReadCommand for SMIsMember {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            members: members_from(args, 2)?,
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        match set_at(db, &self.key, ctx.now_ms) {
            Ok(set) => Reply::Array(
                self.members
                    .iter()
                    .map(|member| {
                        Reply::Integer(i64::from(set.is_some_and(|set| set.contains(member))))
                    })
                    .collect(),
            ),
            Err(error) => Reply::Error(error),
        }
    }
}

/// `SCARD key`: the number of members (0 for an absent key).
#[derive(Debug, Clone, PartialEq)]
pub struct SCard {
    pub key: Bytes,
}

impl ReadCommand for SCard {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        match set_at(db, &self.key, ctx.now_ms) {
            Ok(set) => Reply::Integer(set.map_or(0, |set| set.len()) as i64),
            Err(error) => Reply::Error(error),
        }
    }
}

/// `SMOVE source destination member`: 1 when the member left the source
/// (it joins the destination unless already there), 0 otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct SMove {
    pub source: Bytes,
    pub destination: Bytes,
    pub member: Bytes,
}

impl WriteCommand for SMove {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            source: arg(args, 1)?.clone(),
            destination: arg(args, 2)?.clone(),
            member: arg(args, 3)?.clone(),
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        // Redis's order of checks: an absent source replies 0 whatever the
        // destination holds; then the source's type, then the
        // destination's.
        let (source_has, source_len) = match set_at(db, &self.source, now_ms) {
            Ok(None) => return Reply::Integer(0),
            Ok(Some(set)) => (set.contains(&self.member), set.len()),
            Err(error) => return Reply::Error(error),
        };
        let destination_has = match set_at(db, &self.destination, now_ms) {
            Ok(set) => set.is_some_and(|set| set.contains(&self.member)),
            Err(error) => return Reply::Error(error),
        };
        if self.source == self.destination || !source_has {
            return Reply::Integer(i64::from(source_has));
        }
        // The source's del comes between its srem and the destination's
        // sadd (as in Redis), so a source losing its last member is
        // deleted here rather than left for the keyspace to delete.
        if source_len == 1 {
            db.remove(&self.source, now_ms);
            db.notify(event_class::SET, "srem", &self.source);
            db.notify(event_class::GENERIC, "del", &self.source);
        } else {
            if let Err(error) = update_set(db, &self.source, now_ms, |set| set.remove(&self.member))
            {
                return Reply::Error(error);
            }
            db.notify(event_class::SET, "srem", &self.source);
        }
        if !destination_has {
            let added = update_set(db, &self.destination, now_ms, |set| {
                set.insert(&self.member);
            });
            if let Err(error) = added {
                return Reply::Error(error);
            }
            db.notify(event_class::SET, "sadd", &self.destination);
        }
        Reply::Integer(1)
    }
}
