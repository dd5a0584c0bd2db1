//! XGROUP and XACK: consumer groups and their acknowledgements, and the
//! queue options polis adds to XGROUP (see [`super::queue`]). Seen times
//! are `now_ms`, the leader's time in the log entry.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, ConsumerGroup, Db, StreamId};

use super::id::{help_reply, no_such_group, parse_id, parse_strict_id, subcommand_syntax};
use super::queue::{check_dead_letter_type, OptionChanges};
use crate::access::{stream_at, update_stream};
use crate::args::{arg, int_arg, is};
use crate::command::WriteCommand;

/// Returns true when the stream at `key` has `consumer` in `group`.
/// XREADGROUP, XCLAIM and XAUTOCLAIM ask before and after they run, to
/// record `xgroup-createconsumer` when they created it, as Redis does.
pub(super) fn has_consumer(
    db: &Db,
    key: &[u8],
    group: &[u8],
    consumer: &[u8],
    now_ms: u64,
) -> bool {
    stream_at(db, key, now_ms)
        .ok()
        .flatten()
        .and_then(|stream| stream.groups.get(group))
        .is_some_and(|group| group.consumers.contains_key(consumer))
}

const XGROUP_HELP: &[&str] = &[
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "CREATE and SETOPTIONS also take polis's queue options:",
    "    * ACKWAIT ms",
    "      Redeliver an entry not acknowledged within ms (0: never).",
    "    * MAXDELIVERIES n",
    "      Deliver an entry at most n times (0: no limit).",
    "    * DEADLETTER key | NODEADLETTER",
    "      Move entries past MAXDELIVERIES to the stream key (same slot).",
    "SETOPTIONS <key> <groupname> option [option ...]",
    "    Change the queue options of a group.",
];

/// What XGROUP does.
#[derive(Debug, Clone, PartialEq)]
pub enum XGroupAction {
    Help,
    /// CREATE with the id argument (`$` or an id), MKSTREAM,
    /// ENTRIESREAD and queue options.
    Create {
        id: Bytes,
        mkstream: bool,
        entries_read: Option<u64>,
        options: OptionChanges,
    },
    /// SETOPTIONS: queue options changed.
    SetOptions(OptionChanges),
    SetId {
        id: Bytes,
        entries_read: Option<u64>,
    },
    Destroy,
    CreateConsumer(Bytes),
    DelConsumer(Bytes),
}

/// `XGROUP CREATE|SETID|DESTROY|CREATECONSUMER|DELCONSUMER|HELP ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct XGroup {
    pub key: Bytes,
    pub group: Bytes,
    pub action: XGroupAction,
}

impl WriteCommand for XGroup {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let sub = arg(args, 1)?;
        if is(sub, "help") {
            return Ok(Self {
                key: Bytes::new(),
                group: Bytes::new(),
                action: XGroupAction::Help,
            });
        }
        let key = arg(args, 2)?.clone();
        let group = arg(args, 3)?.clone();
        let create = is(sub, "create");
        let setid = is(sub, "setid");
        let setoptions = is(sub, "setoptions");
        let mut mkstream = false;
        let mut entries_read = None;
        let mut options = OptionChanges::default();
        let mut index = if setoptions { 4 } else { 5 };
        // Bounded by the arguments: every round consumes one or two.
        while index < args.len() {
            let taken = if create || setoptions {
                options.parse_at(args, index, &key)?
            } else {
                0
            };
            if taken > 0 {
                index += taken;
            } else if create && is(&args[index], "mkstream") {
                mkstream = true;
                index += 1;
            } else if (create || setid) && is(&args[index], "entriesread") && index + 1 < args.len()
            {
                let value = int_arg(&args[index + 1])?;
                if value < -1 {
                    return Err(ReplyError::err(
                        "value for ENTRIESREAD must be positive or -1",
                    ));
                }
                entries_read = u64::try_from(value).ok();
                index += 2;
            } else {
                return Err(subcommand_syntax(args));
            }
        }
        let argc = args.len();
        let action = if create && ((5..=8).contains(&argc) || !options.is_empty()) {
            XGroupAction::Create {
                id: arg(args, 4)?.clone(),
                mkstream,
                entries_read,
                options,
            }
        } else if setoptions && !options.is_empty() {
            XGroupAction::SetOptions(options)
        } else if setid && (argc == 5 || argc == 7) {
            XGroupAction::SetId {
                id: arg(args, 4)?.clone(),
                entries_read,
            }
        } else if is(sub, "destroy") && argc == 4 {
            XGroupAction::Destroy
        } else if is(sub, "createconsumer") && argc == 5 {
            XGroupAction::CreateConsumer(arg(args, 4)?.clone())
        } else if is(sub, "delconsumer") && argc == 5 {
            XGroupAction::DelConsumer(arg(args, 4)?.clone())
        } else {
            return Err(subcommand_syntax(args));
        };
        Ok(Self { key, group, action })
    }

    fn execute_keyless(&self) -> Option<Reply> {
        (self.action == XGroupAction::Help).then(|| help_reply("XGROUP", XGROUP_HELP))
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        crate::access::reply(self.run(db, now_ms))
    }
}

impl XGroup {
    /// Returns true when this form uses polis's queue options.
    pub fn uses_queue_options(&self) -> bool {
        match &self.action {
            XGroupAction::Create { options, .. } => !options.is_empty(),
            XGroupAction::SetOptions(_) => true,
            _ => false,
        }
    }

    fn run(&self, db: &mut Db, now_ms: u64) -> Result<Reply, ReplyError> {
        if self.action == XGroupAction::Help {
            return Ok(help_reply("XGROUP", XGROUP_HELP));
        }
        let stream = stream_at(db, &self.key, now_ms)?;
        let mkstream = matches!(self.action, XGroupAction::Create { mkstream: true, .. });
        let (last_id, has_group) = match stream {
            Some(stream) => (stream.last_id, stream.groups.contains_key(&self.group)),
            None if mkstream => (StreamId::MIN, false),
            None => {
                return Err(ReplyError::err(
                    "The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
                ))
            }
        };
        let needs_group = matches!(
            self.action,
            XGroupAction::SetId { .. }
                | XGroupAction::SetOptions(_)
                | XGroupAction::CreateConsumer(_)
                | XGroupAction::DelConsumer(_)
        );
        if needs_group && !has_group {
            return Err(no_such_group(&self.key, &self.group));
        }
        let group = self.group.clone();
        match &self.action {
            XGroupAction::Help => Ok(help_reply("XGROUP", XGROUP_HELP)),
            XGroupAction::Create {
                id,
                entries_read,
                options,
                ..
            } => {
                let id = match id.as_ref() {
                    b"$" => last_id,
                    id => parse_strict_id(id)?,
                };
                if !has_group {
                    check_dead_letter_type(db, options, now_ms)?;
                }
                let created = update_stream(db, &self.key, now_ms, |stream| {
                    if stream.groups.contains_key(&group) {
                        return false;
                    }
                    let mut created = ConsumerGroup::new(id, *entries_read);
                    if !options.is_empty() {
                        created.set_options(options.applied_to(Default::default()));
                    }
                    stream.groups.insert(group, created);
                    true
                })?;
                if created {
                    db.notify(event_class::STREAM, "xgroup-create", &self.key);
                    Ok(Reply::ok())
                } else {
                    Err(ReplyError::Other(
                        "BUSYGROUP Consumer Group name already exists".to_owned(),
                    ))
                }
            }
            XGroupAction::SetId { id, entries_read } => {
                let id = match id.as_ref() {
                    b"$" => last_id,
                    id => parse_id(id, 0)?,
                };
                update_stream(db, &self.key, now_ms, |stream| {
                    if let Some(group) = stream.groups.get_mut(&group) {
                        group.last_delivered = id;
                        group.entries_read = *entries_read;
                    }
                })?;
                db.notify(event_class::STREAM, "xgroup-setid", &self.key);
                Ok(Reply::ok())
            }
            XGroupAction::SetOptions(changes) => {
                check_dead_letter_type(db, changes, now_ms)?;
                update_stream(db, &self.key, now_ms, |stream| {
                    if let Some(group) = stream.groups.get_mut(&group) {
                        group.set_options(changes.applied_to(group.options()));
                    }
                })?;
                db.notify(event_class::STREAM, "xgroup-setoptions", &self.key);
                Ok(Reply::ok())
            }
            XGroupAction::Destroy => {
                let destroyed = update_stream(db, &self.key, now_ms, |stream| {
                    stream.groups.remove(&group).is_some()
                })?;
                if destroyed {
                    db.notify(event_class::STREAM, "xgroup-destroy", &self.key);
                }
                Ok(Reply::Integer(i64::from(destroyed)))
            }
            XGroupAction::CreateConsumer(consumer) => {
                let created = update_stream(db, &self.key, now_ms, |stream| {
                    stream
                        .groups
                        .get_mut(&group)
                        .is_some_and(|group| group.create_consumer(consumer, now_ms))
                })?;
                if created {
                    db.notify(event_class::STREAM, "xgroup-createconsumer", &self.key);
                }
                Ok(Reply::Integer(i64::from(created)))
            }
            XGroupAction::DelConsumer(consumer) => {
                let pending = update_stream(db, &self.key, now_ms, |stream| {
                    stream
                        .groups
                        .get_mut(&group)
                        .and_then(|group| group.delete_consumer(consumer))
                })?;
                // Only a consumer that existed is deleted (and recorded).
                if pending.is_some() {
                    db.notify(event_class::STREAM, "xgroup-delconsumer", &self.key);
                }
                Ok(Reply::Integer(pending.unwrap_or(0) as i64))
            }
        }
    }
}

/// `XACK key group id [id ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct XAck {
    pub key: Bytes,
    pub group: Bytes,
    /// The ids, or the first malformed one's error (reported only when
    /// the key and group exist, as in Redis).
    pub ids: Result<Vec<StreamId>, ReplyError>,
}

impl WriteCommand for XAck {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        let group = arg(args, 2)?.clone();
        arg(args, 3)?;
        let ids = args[3..].iter().map(|id| parse_strict_id(id)).collect();
        Ok(Self { key, group, ids })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        match stream_at(db, &self.key, now_ms) {
            Err(error) => return Reply::Error(error),
            Ok(Some(stream)) if stream.groups.contains_key(&self.group) => {}
            Ok(_) => return Reply::Integer(0),
        }
        let ids = match &self.ids {
            Ok(ids) => ids,
            Err(error) => return Reply::Error(error.clone()),
        };
        let acked = update_stream(db, &self.key, now_ms, |stream| {
            let Some(group) = stream.groups.get_mut(&self.group) else {
                return 0;
            };
            ids.iter().filter(|id| group.ack(**id)).count()
        });
        match acked {
            Ok(acked) => Reply::Integer(acked as i64),
            Err(error) => Reply::Error(error),
        }
    }
}
