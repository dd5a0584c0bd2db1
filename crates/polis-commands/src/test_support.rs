//! A harness for command tests: runs request lines against one keyspace
//! in virtual time, on the path the spec selects.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::Db;

use crate::command::{execute_read_with, execute_write, Protocol, ReadContext};
use crate::spec::{is_write, lookup, resolve};

/// Splits a request line on spaces; `\s` stands for a space inside an
/// argument and `""` for an empty argument.
pub fn args(line: &str) -> Vec<Bytes> {
    line.split(' ')
        .filter(|word| !word.is_empty())
        .map(|word| {
            let word = if word == "\"\"" { "" } else { word };
            Bytes::from(word.replace("\\s", " "))
        })
        .collect()
}

/// One keyspace, a virtual clock, and a fixed seed.
pub struct Harness {
    pub db: Db,
    pub now_ms: u64,
    pub protocol: Protocol,
    pub seed: u64,
    /// The log index of the last entry [`Harness::run_entry`] ran.
    pub log_index: u64,
}

impl Harness {
    /// Returns an empty keyspace at a realistic time (2023-11-14).
    pub fn new() -> Self {
        Self {
            db: Db::new(),
            now_ms: 1_700_000_000_000,
            protocol: Protocol::Resp2,
            seed: 7,
            log_index: 0,
        }
    }

    /// Runs `line` as Raft apply runs a log entry's only command: the
    /// keyspace begins a write at the next log index first (lock grants
    /// take their tokens from it).
    pub fn run_entry(&mut self, line: &str) -> Reply {
        self.log_index += 1;
        self.db.begin_write(self.log_index, self.log_index);
        self.run(line)
    }

    /// Runs `line` on the write path if its spec says so, else the read
    /// path.
    pub fn run(&mut self, line: &str) -> Reply {
        self.run_args(&args(line))
    }

    /// Runs a pre-split request.
    pub fn run_args(&mut self, args: &[Bytes]) -> Reply {
        let write = args
            .first()
            .and_then(|name| lookup(name))
            .map(|spec| resolve(spec, args))
            .is_some_and(is_write);
        if write {
            execute_write(&mut self.db, args, self.now_ms)
        } else {
            self.seed = self.seed.wrapping_add(1);
            let ctx = ReadContext::new(self.now_ms)
                .with_protocol(self.protocol)
                .with_seed(self.seed);
            execute_read_with(&self.db, args, &ctx)
        }
    }

    /// Advances the virtual clock.
    pub fn advance(&mut self, millis: u64) {
        self.now_ms += millis;
    }

    /// Records every class of key event from here on, `new` included.
    pub fn record_all_events(&mut self) {
        self.db
            .set_events_mask(polis_store::event_class::ALL | polis_store::event_class::NEW);
    }

    /// Returns the `(event, key)` pairs recorded since the last call.
    pub fn events(&mut self) -> Vec<(&'static str, String)> {
        self.db
            .take_events()
            .into_iter()
            .map(|event| {
                (
                    event.event,
                    String::from_utf8_lossy(&event.key).into_owned(),
                )
            })
            .collect()
    }
}

/// Runs a table of `(request, expected events)` in order on one harness,
/// each request's `(event, key)` pairs compared in order.
#[track_caller]
pub fn assert_events(harness: &mut Harness, table: &[(&str, &[(&str, &str)])]) {
    harness.events();
    for (line, expected) in table {
        let reply = harness.run(line);
        let got = harness.events();
        let want: Vec<(&str, &str)> = expected.to_vec();
        let got: Vec<(&str, &str)> = got
            .iter()
            .map(|(event, key)| (*event, key.as_str()))
            .collect();
        assert_eq!(got, want, "events of {line:?} (reply {reply:?})");
    }
}

pub fn bulk(text: &str) -> Reply {
    Reply::bulk(text)
}

pub fn int(value: i64) -> Reply {
    Reply::Integer(value)
}

pub fn ok() -> Reply {
    Reply::ok()
}

pub fn err(line: &str) -> Reply {
    Reply::Error(ReplyError::Other(line.to_owned()))
}

pub fn array(items: Vec<Reply>) -> Reply {
    Reply::Array(items)
}

pub fn bulks(items: &[&str]) -> Reply {
    Reply::Array(items.iter().map(|item| bulk(item)).collect())
}

/// Asserts that `reply` is an error whose rendered line is `line`.
#[track_caller]
pub fn assert_error(reply: &Reply, line: &str) {
    match reply {
        Reply::Error(error) => assert_eq!(error.render(), line),
        other => panic!("expected error {line:?}, got {other:?}"),
    }
}

/// Runs a table of `(request, expected reply)` in order on one harness;
/// expected errors compare by rendered line.
#[track_caller]
pub fn run_table(harness: &mut Harness, table: &[(&str, Reply)]) {
    for (line, expected) in table {
        let got = harness.run(line);
        match (expected, &got) {
            (Reply::Error(want), Reply::Error(have)) => {
                assert_eq!(have.render(), want.render(), "request {line:?}")
            }
            _ => assert_eq!(&got, expected, "request {line:?}"),
        }
    }
}
