//! The commands a gateway session answers or orchestrates itself:
//! connection commands, and MULTI/EXEC/WATCH pinned to one node.
//!
//! A transaction is queued here (each command checked by the classifier,
//! as a node checks it when queued) and sent whole at EXEC, as MULTI,
//! the commands and EXEC, to the node serving its slot: one slot, as on
//! the nodes. WATCH goes at once to the node of its keys, and pins the
//! transaction that follows to that node.

use bytes::Bytes;
use polis_resp::{ProtocolVersion, Reply, ReplyError};

use crate::route::{lower, Plan, SessionCommand, Target};
use crate::session::{OwedState, ReplyMode, Session};
use crate::upstream::Expect;

/// A transaction being queued.
#[derive(Debug, Default)]
pub struct Multi {
    commands: Vec<Vec<Bytes>>,
    slot: Option<u16>,
    /// A command was refused when queued: EXEC aborts.
    failed: bool,
}

/// Keys being watched: their slot and the node the WATCH went to.
#[derive(Debug, Clone)]
pub struct Watch {
    pub slot: u16,
    pub addr: crate::topology::Addr,
}

impl Session {
    /// Queues a command of a transaction; returns +QUEUED or why not.
    pub(crate) fn queue(&mut self, args: Vec<Bytes>, plan: &Plan) -> Reply {
        let watched = self.watch.as_ref().map(|watch| watch.slot);
        let Some(multi) = self.multi.as_mut() else {
            return Reply::Error(ReplyError::err("MULTI is not active"));
        };
        let slot = match plan {
            Plan::Answer(error) => {
                multi.failed = true;
                return error.clone();
            }
            Plan::Send {
                target: Target::Slot(slot),
                ..
            } => Some(*slot),
            Plan::Split { .. } => {
                multi.failed = true;
                return Reply::Error(ReplyError::CrossSlot);
            }
            _ => None,
        };
        if let Some(slot) = slot {
            if multi.slot.or(watched).is_some_and(|pinned| pinned != slot) {
                multi.failed = true;
                return Reply::Error(ReplyError::CrossSlot);
            }
            multi.slot = Some(slot);
        }
        multi.commands.push(args);
        Reply::Simple("QUEUED".to_owned())
    }

    /// Runs a command the session answers or orchestrates itself.
    pub(crate) async fn session_command(
        &mut self,
        command: SessionCommand,
        args: Vec<Bytes>,
        silent: bool,
    ) {
        match command {
            SessionCommand::Ping => {
                let message = args.get(1).cloned();
                let reply = if self.protocol == ProtocolVersion::Resp2 && self.subscribed_any() {
                    Reply::Array(vec![
                        Reply::bulk("pong"),
                        Reply::Bulk(message.unwrap_or_default()),
                    ])
                } else {
                    match message {
                        Some(message) => Reply::Bulk(message),
                        None => Reply::Simple("PONG".to_owned()),
                    }
                };
                self.answer(reply, silent);
            }
            SessionCommand::Echo => {
                let message = args.get(1).cloned().unwrap_or_default();
                self.answer(Reply::Bulk(message), silent);
            }
            SessionCommand::Quit => {
                self.answer(Reply::ok(), silent);
                self.closing = true;
            }
            SessionCommand::Reset => {
                self.release_all().await;
                self.protocol = ProtocolVersion::Resp2;
                self.multi = None;
                self.watch = None;
                self.reply_mode = ReplyMode::On;
                self.readonly = false;
                self.answer(Reply::Simple("RESET".to_owned()), false);
            }
            SessionCommand::Hello => self.hello(args, silent).await,
            SessionCommand::Multi => {
                if self.multi.is_some() {
                    self.answer(
                        Reply::Error(ReplyError::err("MULTI calls can not be nested")),
                        silent,
                    );
                } else {
                    self.multi = Some(Multi::default());
                    self.answer(Reply::ok(), silent);
                }
            }
            SessionCommand::Exec => self.exec(silent).await,
            SessionCommand::Discard => {
                if self.multi.take().is_none() {
                    self.answer(
                        Reply::Error(ReplyError::err("DISCARD without MULTI")),
                        silent,
                    );
                    return;
                }
                self.unwatch_silently().await;
                self.answer(Reply::ok(), silent);
            }
            SessionCommand::Watch => self.watch(args, silent).await,
            SessionCommand::Unwatch => match self.watch.take() {
                Some(watch) => {
                    let seq = self.owe(OwedState::Waiting, silent);
                    self.send_to(watch.addr, expect(seq, args, false), false)
                        .await;
                }
                None => self.answer(Reply::ok(), silent),
            },
            SessionCommand::ClientReply => {
                let mode = args.get(2).map(|mode| lower(mode));
                match mode.as_deref() {
                    Some("on") if args.len() == 3 => {
                        self.reply_mode = ReplyMode::On;
                        self.answer(Reply::ok(), false);
                    }
                    Some("off") if args.len() == 3 => self.reply_mode = ReplyMode::Off,
                    Some("skip") if args.len() == 3 => {
                        if self.reply_mode == ReplyMode::On {
                            self.reply_mode = ReplyMode::SkipNext;
                        }
                    }
                    _ => self.answer(Reply::Error(ReplyError::Syntax), silent),
                }
            }
            SessionCommand::ReadOnly => {
                self.readonly = true;
                self.answer(Reply::ok(), silent);
            }
            SessionCommand::ReadWrite => {
                self.readonly = false;
                self.answer(Reply::ok(), silent);
            }
        }
    }

    /// HELLO: the client's connections to the nodes are opened anew in
    /// the protocol asked for, and the home node answers.
    async fn hello(&mut self, args: Vec<Bytes>, silent: bool) {
        let asked = match args.get(1).map(|version| lower(version)) {
            Some(version) if version == "2" => Some(ProtocolVersion::Resp2),
            Some(version) if version == "3" => Some(ProtocolVersion::Resp3),
            _ => None,
        };
        if let Some(protocol) = asked.filter(|protocol| *protocol != self.protocol) {
            self.release_all().await;
            self.protocol = protocol;
        }
        let seq = self.owe(OwedState::Waiting, silent);
        self.send(&Target::Home, expect(seq, args, false), false)
            .await;
    }

    async fn exec(&mut self, silent: bool) {
        let Some(multi) = self.multi.take() else {
            self.answer(Reply::Error(ReplyError::err("EXEC without MULTI")), silent);
            return;
        };
        if multi.failed {
            self.unwatch_silently().await;
            self.answer(
                Reply::Error(ReplyError::Other(
                    "EXECABORT Transaction discarded because of previous errors.".to_owned(),
                )),
                silent,
            );
            return;
        }
        let watch = self.watch.take();
        let addr = match (&watch, multi.slot) {
            (Some(watch), _) => Some(watch.addr.clone()),
            (None, Some(slot)) => self.resolve(&Target::Slot(slot), false),
            (None, None) => self.resolve(&Target::Home, false),
        };
        let Some(addr) = addr else {
            self.answer(
                Reply::Error(ReplyError::ClusterDown("no node reachable".to_owned())),
                silent,
            );
            return;
        };
        let seq = self.owe(OwedState::Waiting, silent);
        // MULTI's +OK and each +QUEUED go nowhere: the client had them
        // from the gateway. A command the node refuses makes EXEC abort.
        let mut quiet = expect(seq, vec![Bytes::from_static(b"MULTI")], true);
        self.send_to(addr.clone(), quiet.clone(), false).await;
        for command in multi.commands {
            quiet.args = command;
            self.send_to(addr.clone(), quiet.clone(), false).await;
        }
        self.send_to(
            addr,
            expect(seq, vec![Bytes::from_static(b"EXEC")], false),
            false,
        )
        .await;
    }

    async fn watch(&mut self, args: Vec<Bytes>, silent: bool) {
        if self.multi.is_some() {
            self.answer(
                Reply::Error(ReplyError::err("WATCH inside MULTI is not allowed")),
                silent,
            );
            return;
        }
        let slot = match polis_commands::single_slot(&args[1..]) {
            Ok(Some(slot)) => slot.get(),
            Ok(None) => {
                self.answer(
                    Reply::Error(ReplyError::WrongArity("watch".to_owned())),
                    silent,
                );
                return;
            }
            Err(error) => {
                self.answer(Reply::Error(error), silent);
                return;
            }
        };
        let addr = match &self.watch {
            Some(watch) if watch.slot != slot => {
                self.answer(Reply::Error(ReplyError::CrossSlot), silent);
                return;
            }
            Some(watch) => Some(watch.addr.clone()),
            None => self.resolve(&Target::Slot(slot), false),
        };
        let Some(addr) = addr else {
            self.answer(
                Reply::Error(ReplyError::ClusterDown("no node reachable".to_owned())),
                silent,
            );
            return;
        };
        self.watch = Some(Watch {
            slot,
            addr: addr.clone(),
        });
        let seq = self.owe(OwedState::Waiting, silent);
        self.send_to(addr, expect(seq, args, false), false).await;
    }

    /// Ends a WATCH on its node without a reply to the client.
    async fn unwatch_silently(&mut self) {
        if let Some(watch) = self.watch.take() {
            let seq = self.owe(OwedState::Ready(Bytes::new()), true);
            self.send_to(
                watch.addr,
                expect(seq, vec![Bytes::from_static(b"UNWATCH")], true),
                false,
            )
            .await;
        }
    }
}

/// An expectation for a request that is never sent again elsewhere.
fn expect(seq: u64, args: Vec<Bytes>, silent: bool) -> Expect {
    Expect {
        seq,
        args,
        slot: None,
        attempts: 0,
        silent,
        retry: false,
        part: None,
    }
}
