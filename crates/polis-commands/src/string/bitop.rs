//! BITOP: bitwise AND, OR, XOR and NOT of strings into a destination.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, Db, Value};

use crate::access::string_at;
use crate::args::{arg, is};
use crate::command::WriteCommand;

/// The operation of BITOP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitOperation {
    And,
    Or,
    Xor,
    Not,
}

/// `BITOP AND|OR|XOR|NOT destkey key [key ...]`: stores the result at
/// `destkey` (replacing any value and deadline) and replies its length,
/// the longest source's; a missing source or the end of a shorter one
/// reads as zero bytes. An empty result deletes `destkey`.
#[derive(Debug, Clone, PartialEq)]
pub struct BitOp {
    pub operation: BitOperation,
    pub destination: Bytes,
    pub keys: Vec<Bytes>,
}

impl WriteCommand for BitOp {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let name = arg(args, 1)?;
        let operation = [
            ("and", BitOperation::And),
            ("or", BitOperation::Or),
            ("xor", BitOperation::Xor),
            ("not", BitOperation::Not),
        ]
        .into_iter()
        .find(|(word, _)| is(name, word))
        .map(|(_, operation)| operation)
        .ok_or(ReplyError::Syntax)?;
        let destination = arg(args, 2)?.clone();
        let keys = args.get(3..).unwrap_or_default().to_vec();
        if operation == BitOperation::Not && keys.len() != 1 {
            return Err(ReplyError::err(
                "BITOP NOT must be called with a single source key.",
            ));
        }
        if keys.is_empty() {
            return Err(ReplyError::WrongArity("bitop".to_owned()));
        }
        Ok(Self {
            operation,
            destination,
            keys,
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let sources: Result<Vec<&[u8]>, ReplyError> = self
            .keys
            .iter()
            .map(|key| string_at(db, key, now_ms).map(|value| value.map_or(&[][..], |v| &v[..])))
            .collect();
        let sources = match sources {
            Ok(sources) => sources,
            Err(error) => return Reply::Error(error),
        };
        let len = sources.iter().map(|source| source.len()).max().unwrap_or(0);
        if len == 0 {
            if db.remove(&self.destination, now_ms).is_some() {
                db.notify(event_class::GENERIC, "del", &self.destination);
            }
            return Reply::Integer(0);
        }
        let result = combine(self.operation, &sources, len);
        db.insert(
            self.destination.clone(),
            Value::String(Bytes::from(result)),
            None,
            now_ms,
        );
        db.notify(event_class::STRING, "set", &self.destination);
        Reply::Integer(len as i64)
    }
}

/// Returns `operation` over `sources`, `len` bytes long (the longest
/// source's length), each source padded with zero bytes.
fn combine(operation: BitOperation, sources: &[&[u8]], len: usize) -> Vec<u8> {
    let Some((first, others)) = sources.split_first() else {
        return Vec::new();
    };
    let mut result = first.to_vec();
    result.resize(len, 0);
    match operation {
        BitOperation::Not => result.iter_mut().for_each(|byte| *byte = !*byte),
        BitOperation::And => {
            for source in others {
                // Past a source's end every byte is ANDed with zero.
                for (index, byte) in result.iter_mut().enumerate() {
                    *byte &= source.get(index).copied().unwrap_or(0);
                }
            }
        }
        BitOperation::Or | BitOperation::Xor => {
            for source in others {
                for (byte, other) in result.iter_mut().zip(source.iter()) {
                    if operation == BitOperation::Or {
                        *byte |= other;
                    } else {
                        *byte ^= other;
                    }
                }
            }
        }
    }
    result
}
