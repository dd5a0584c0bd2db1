//! The commands a gateway session answers or orchestrates itself:
//! connection commands, and MULTI/EXEC/WATCH pinned to one node.
//!
//! MULTI is answered here; the transaction is pinned to a node by its
//! first command on a key (the node of the keys WATCH named, else the
//! node serving that key's slot): MULTI and the commands queued before
//! go there then, and every command after, so the node queues and checks
//! them as it would for a direct client (-OOM, -CROSSSLOT, EXECABORT).
//! A transaction with no key at all is sent whole at EXEC. One slot per
//! transaction, as on the nodes.

use bytes::Bytes;
use polis_resp::{ProtocolVersion, Reply, ReplyError};

use crate::route::{lower, Plan, SessionCommand, Target};
use crate::session::{OwedState, ReplyMode, Session};
use crate::upstream::Expect;

/// A transaction being queued.
#[derive(Debug, Default)]
pub struct Multi {
    /// Commands queued before the transaction was pinned to a node.
    commands: Vec<Vec<Bytes>>,
    /// The node the transaction went to, once a command named a key.
    pinned: Option<crate::topology::Addr>,
    /// A command was refused here when queued: EXEC aborts.
    pub(crate) failed: bool,
}

/// Keys being watched: their slot and the node the WATCH went to.
#[derive(Debug, Clone)]
pub struct Watch {
    pub slot: u16,
    pub addr: crate::topology::Addr,
}

impl Session {
    /// Queues a command of a transaction: on its node once pinned, here
    /// before.
    pub(crate) async fn queue(&mut self, args: Vec<Bytes>, plan: &Plan, silent: bool) {
        let watch = self.watch.clone();
        let Some(multi) = self.multi.as_mut() else {
            return;
        };
        if let Some(addr) = multi.pinned.clone() {
            // The node checks it as it queues it.
            let seq = self.owe(OwedState::Waiting, silent);
            self.send_to(addr, expect(seq, args, false), false).await;
            return;
        }
        let slot = match plan {
            Plan::Answer(error) => {
                multi.failed = true;
                let error = error.clone();
                self.answer(error, silent);
                return;
            }
            Plan::Split { .. } => {
                multi.failed = true;
                self.answer(Reply::Error(ReplyError::CrossSlot), silent);
                return;
            }
            Plan::Send {
                target: Target::Slot(slot),
                ..
            } => *slot,
            _ => {
                multi.commands.push(args);
                self.answer(Reply::Simple("QUEUED".to_owned()), silent);
                return;
            }
        };
        if watch.as_ref().is_some_and(|watch| watch.slot != slot) {
            multi.failed = true;
            self.answer(Reply::Error(ReplyError::CrossSlot), silent);
            return;
        }
        let addr = match watch {
            Some(watch) => Some(watch.addr),
            None => self.resolve(&Target::Slot(slot), false),
        };
        let Some(addr) = addr else {
            if let Some(multi) = self.multi.as_mut() {
                multi.failed = true;
            }
            let reply = Reply::Error(ReplyError::ClusterDown("no node reachable".to_owned()));
            self.answer(reply, silent);
            return;
        };
        let queued = match self.multi.as_mut() {
            Some(multi) => {
                multi.pinned = Some(addr.clone());
                std::mem::take(&mut multi.commands)
            }
            None => Vec::new(),
        };
        // MULTI's +OK and the +QUEUED of what was queued here went to the
        // client already; what the node says of this command goes to it.
        let seq = self.owe(OwedState::Waiting, silent);
        let mut quiet = expect(seq, vec![Bytes::from_static(b"MULTI")], true);
        self.send_to(addr.clone(), quiet.clone(), false).await;
        for command in queued {
            quiet.args = command;
            self.send_to(addr.clone(), quiet.clone(), false).await;
        }
        self.send_to(addr, expect(seq, args, false), false).await;
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
                self.release_all();
                self.exclusive = false;
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
            SessionCommand::Discard => match self.multi.take() {
                None => {
                    let reply = Reply::Error(ReplyError::err("DISCARD without MULTI"));
                    self.answer(reply, silent);
                }
                Some(Multi {
                    pinned: Some(addr), ..
                }) => {
                    // The node's DISCARD ends its WATCH too.
                    self.watch = None;
                    let seq = self.owe(OwedState::Waiting, silent);
                    self.send_to(addr, expect(seq, args, false), false).await;
                }
                Some(_) => {
                    self.unwatch_silently().await;
                    self.answer(Reply::ok(), silent);
                }
            },
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
            SessionCommand::ClientId => self.answer(Reply::Integer(self.id as i64), silent),
            SessionCommand::ClientUnblock => self.client_unblock(args, silent).await,
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

    /// CLIENT UNBLOCK of a gateway client: sent to each node it has a
    /// connection to, naming the node's id for it; 1 when one unblocked.
    async fn client_unblock(&mut self, args: Vec<Bytes>, silent: bool) {
        let id = args
            .get(2)
            .and_then(|id| polis_commands::args::parse_i64(id))
            .filter(|id| *id >= 0);
        let Some(id) = id else {
            self.answer(Reply::Error(ReplyError::NotInteger), silent);
            return;
        };
        let mode = args.get(3).map(|mode| lower(mode));
        if args.len() > 4
            || mode
                .as_deref()
                .is_some_and(|mode| mode != "timeout" && mode != "error")
        {
            let reply = Reply::Error(ReplyError::err(
                "CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ));
            self.answer(reply, silent);
            return;
        }
        let connections = self.cluster.connections_of(id as u64);
        if connections.is_empty() {
            self.answer(Reply::Integer(0), silent);
            return;
        }
        let merging = crate::merge::Merging::new(
            crate::merge::Combine::Kind(crate::route::MergeKind::Sum),
            connections.len(),
            Vec::new(),
        );
        let seq = self.owe(OwedState::Merging(merging), silent);
        for (part, (addr, node_id)) in connections.into_iter().enumerate() {
            let mut request = vec![
                Bytes::from_static(b"CLIENT"),
                Bytes::from_static(b"UNBLOCK"),
                Bytes::from(node_id.to_string()),
            ];
            request.extend(args.get(3).cloned());
            let mut unblock = expect(seq, request, false);
            unblock.part = Some(part);
            self.send_to(addr, unblock, false).await;
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
            self.release_all();
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
            if let Some(addr) = multi.pinned {
                // The node's DISCARD ends its WATCH too.
                self.watch = None;
                let seq = self.owe(OwedState::Ready(Bytes::new()), true);
                let discard = expect(seq, vec![Bytes::from_static(b"DISCARD")], true);
                self.send_to(addr, discard, false).await;
            }
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
        let seq = self.owe(OwedState::Waiting, silent);
        if let Some(addr) = multi.pinned {
            let exec = expect(seq, vec![Bytes::from_static(b"EXEC")], false);
            self.send_to(addr, exec, false).await;
            return;
        }
        let addr = match &watch {
            Some(watch) => Some(watch.addr.clone()),
            None => self.resolve(&Target::Home, false),
        };
        let Some(addr) = addr else {
            let reply = Reply::Error(ReplyError::ClusterDown("no node reachable".to_owned()));
            let frame = crate::frame::Frame::of(&reply, self.protocol);
            self.fill(seq, None, frame, self.protocol);
            return;
        };
        // No key in it: sent whole. MULTI's +OK and each +QUEUED go
        // nowhere: the client had them from the gateway.
        let mut quiet = expect(seq, vec![Bytes::from_static(b"MULTI")], true);
        self.send_to(addr.clone(), quiet.clone(), false).await;
        for command in multi.commands {
            quiet.args = command;
            self.send_to(addr.clone(), quiet.clone(), false).await;
        }
        let exec = expect(seq, vec![Bytes::from_static(b"EXEC")], false);
        self.send_to(addr, exec, false).await;
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
