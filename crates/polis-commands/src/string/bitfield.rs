//! BITFIELD and BITFIELD_RO: signed and unsigned integers of 1 to 64 bits
//! at any bit offset of a string, as Redis's `bitops.c` reads and writes
//! them (big-endian, bit 0 the most significant bit of the first byte).

use bytes::{Bytes, BytesMut};
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, Db, Value};
use polis_types::limits::STRING_LEN_MAX;

use crate::access::string_at;
use crate::args::{arg, int_arg, is, parse_i64};
use crate::command::{ReadCommand, ReadContext, WriteCommand};

/// What INCRBY and SET do when the result does not fit the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Keep the low bits (two's complement for signed fields).
    Wrap,
    /// Clamp to the field's minimum or maximum.
    Sat,
    /// Change nothing and reply null.
    Fail,
}

/// A field's type: `i1`..`i64` or `u1`..`u63`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldType {
    pub signed: bool,
    pub bits: u32,
}

impl FieldType {
    /// Parses `i<bits>` or `u<bits>` as Redis's
    /// `getBitfieldTypeFromArgument` does (lowercase prefix only).
    fn parse(text: &[u8]) -> Result<Self, ReplyError> {
        let error = || {
            ReplyError::err(
                "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
            )
        };
        let (signed, digits) = match text.split_first() {
            Some((b'i', digits)) => (true, digits),
            Some((b'u', digits)) => (false, digits),
            _ => return Err(error()),
        };
        let bits_max = if signed { 64 } else { 63 };
        let bits = parse_i64(digits)
            .filter(|bits| (1..=bits_max).contains(bits))
            .ok_or_else(error)?;
        Ok(Self {
            signed,
            bits: bits as u32,
        })
    }

    /// Returns the smallest and largest values the field holds.
    fn range(self) -> (i128, i128) {
        if self.signed {
            let half = 1i128 << (self.bits - 1);
            (-half, half - 1)
        } else {
            (0, (1i128 << self.bits) - 1)
        }
    }

    /// Returns the field's value for the low `bits` bits of `raw`
    /// (sign-extended for a signed field).
    fn value_of(self, raw: u64) -> i64 {
        if self.signed && self.bits < 64 && raw & (1u64 << (self.bits - 1)) != 0 {
            (raw | (u64::MAX << self.bits)) as i64
        } else {
            raw as i64
        }
    }

    /// Returns `value` kept to the field's low bits, read back as the
    /// field's type (Redis's WRAP).
    fn wrap(self, value: i128) -> i64 {
        let mask = if self.bits == 64 {
            u64::MAX
        } else {
            (1u64 << self.bits) - 1
        };
        self.value_of((value as u64) & mask)
    }
}

/// Parses a field offset: a bit offset, or with `#` a multiple of the
/// field's width, within the string size limit.
fn field_offset(text: &[u8], field: FieldType) -> Result<u64, ReplyError> {
    let error = || ReplyError::err("bit offset is not an integer or out of range");
    let (digits, scale) = match text.strip_prefix(b"#") {
        Some(digits) => (digits, i64::from(field.bits)),
        None => (text, 1),
    };
    let offset = parse_i64(digits)
        .and_then(|offset| offset.checked_mul(scale))
        .and_then(|offset| u64::try_from(offset).ok())
        .ok_or_else(error)?;
    if offset >> 3 >= STRING_LEN_MAX {
        return Err(error());
    }
    Ok(offset)
}

/// One operation of a BITFIELD call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldAction {
    Get,
    Set(i64),
    IncrBy(i64),
}

/// An operation with the field it addresses and the overflow rule in
/// force when it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldOp {
    pub action: FieldAction,
    pub field: FieldType,
    pub offset: u64,
    pub overflow: Overflow,
}

/// Parses the subcommands of `args[2..]`.
fn parse_ops(args: &[Bytes]) -> Result<Vec<FieldOp>, ReplyError> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut rest = args.get(2..).unwrap_or_default();
    // Bounded: each round consumes at least two arguments.
    while let Some((name, tail)) = rest.split_first() {
        if is(name, "overflow") {
            let Some((kind, tail)) = tail.split_first() else {
                return Err(ReplyError::Syntax);
            };
            overflow = [
                ("wrap", Overflow::Wrap),
                ("sat", Overflow::Sat),
                ("fail", Overflow::Fail),
            ]
            .into_iter()
            .find(|(word, _)| is(kind, word))
            .map(|(_, overflow)| overflow)
            .ok_or_else(|| ReplyError::err("Invalid OVERFLOW type specified"))?;
            rest = tail;
            continue;
        }
        let get = is(name, "get");
        let with_value = is(name, "set") || is(name, "incrby");
        let needed = if get { 2 } else { 3 };
        if !(get || with_value) || tail.len() < needed {
            return Err(ReplyError::Syntax);
        }
        let field = FieldType::parse(&tail[0])?;
        let offset = field_offset(&tail[1], field)?;
        let action = if get {
            FieldAction::Get
        } else {
            let value = int_arg(&tail[2])?;
            if is(name, "set") {
                FieldAction::Set(value)
            } else {
                FieldAction::IncrBy(value)
            }
        };
        ops.push(FieldOp {
            action,
            field,
            offset,
            overflow,
        });
        rest = &tail[needed..];
    }
    Ok(ops)
}

/// Returns the `bits`-bit unsigned field at bit `offset` of `bytes`;
/// bits past the end read as 0.
fn read_raw(bytes: &[u8], offset: u64, bits: u32) -> u64 {
    let mut value = 0u64;
    for position in offset..offset + u64::from(bits) {
        let byte = usize::try_from(position >> 3)
            .ok()
            .and_then(|index| bytes.get(index))
            .copied()
            .unwrap_or(0);
        let bit = (byte >> (7 - (position & 7))) & 1;
        value = (value << 1) | u64::from(bit);
    }
    value
}

/// Writes the low `bits` bits of `value` at bit `offset` of `bytes`,
/// which the caller has grown to hold them.
fn write_raw(bytes: &mut [u8], offset: u64, bits: u32, value: u64) {
    for (index, position) in (offset..offset + u64::from(bits)).enumerate() {
        let bit = (value >> (u64::from(bits) - 1 - index as u64)) & 1;
        let Some(byte) = usize::try_from(position >> 3)
            .ok()
            .and_then(|index| bytes.get_mut(index))
        else {
            return;
        };
        let mask = 0x80u8 >> (position & 7);
        if bit == 1 {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

/// Runs one SET or INCRBY on `bytes`: returns the reply (the new value for
/// INCRBY, the old one for SET, null when OVERFLOW FAIL refused it) and
/// whether the field changed.
fn apply(bytes: &mut [u8], op: &FieldOp) -> (Reply, bool) {
    let FieldOp {
        action,
        field,
        offset,
        overflow,
    } = *op;
    let old = field.value_of(read_raw(bytes, offset, field.bits));
    // An unsigned SET takes the value's bits as Redis's uint64_t cast does.
    let (target, reply_old) = match action {
        FieldAction::Get => return (Reply::Integer(old), false),
        FieldAction::Set(value) if field.signed => (i128::from(value), true),
        FieldAction::Set(value) => (i128::from(value as u64), true),
        FieldAction::IncrBy(increment) => (i128::from(old) + i128::from(increment), false),
    };
    let (min, max) = field.range();
    let new = if target > max || target < min {
        match overflow {
            Overflow::Fail => return (Reply::Null, false),
            Overflow::Wrap => field.wrap(target),
            Overflow::Sat if target > max => max as i64,
            Overflow::Sat => min as i64,
        }
    } else {
        target as i64
    };
    write_raw(bytes, offset, field.bits, new as u64);
    let reply = if reply_old { old } else { new };
    (Reply::Integer(reply), new != old)
}

/// `BITFIELD key [GET type offset | SET type offset value | INCRBY type
/// offset increment | OVERFLOW WRAP|SAT|FAIL ...]`: one reply per GET,
/// SET or INCRBY, in order. A call with a SET or INCRBY grows the string
/// with zero bytes to the farthest field it writes (even when OVERFLOW
/// FAIL then refuses every write, as Redis does).
#[derive(Debug, Clone, PartialEq)]
pub struct BitField {
    pub key: Bytes,
    pub ops: Vec<FieldOp>,
}

impl WriteCommand for BitField {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            ops: parse_ops(args)?,
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let current = match string_at(db, &self.key, now_ms) {
            Ok(current) => current,
            Err(error) => return Reply::Error(error),
        };
        let highest_bit = self
            .ops
            .iter()
            .filter(|op| op.action != FieldAction::Get)
            .map(|op| op.offset + u64::from(op.field.bits) - 1)
            .max();
        let Some(highest_bit) = highest_bit else {
            let bytes = current.map_or(&[][..], |bytes| &bytes[..]);
            return Reply::Array(self.ops.iter().map(|op| get(bytes, op)).collect());
        };
        let mut bytes = BytesMut::new();
        if let Some(current) = current {
            bytes.extend_from_slice(current);
        }
        // Offsets were checked against the string size limit, so the
        // length fits in usize.
        let len_needed = usize::try_from((highest_bit >> 3) + 1).unwrap_or(usize::MAX);
        let grown = current.is_none_or(|current| current.len() < len_needed);
        if bytes.len() < len_needed {
            bytes.resize(len_needed, 0);
        }
        let mut replies = Vec::with_capacity(self.ops.len());
        let mut written = false;
        let mut fields_changed = false;
        for op in &self.ops {
            let (reply, field_changed) = apply(&mut bytes, op);
            // A write OVERFLOW FAIL refused replies null.
            written |= op.action != FieldAction::Get && reply != Reply::Null;
            fields_changed |= field_changed;
            replies.push(reply);
        }
        if grown || fields_changed {
            db.insert_keep_ttl(self.key.clone(), Value::String(bytes.freeze()), now_ms);
        }
        // Redis counts a write as a change when it changed its field or
        // the string was created or grown for it; a refused write is none.
        if fields_changed || (grown && written) {
            db.notify(event_class::STRING, "setbit", &self.key);
        }
        Reply::Array(replies)
    }
}

/// Returns the reply of a GET on `bytes`.
fn get(bytes: &[u8], op: &FieldOp) -> Reply {
    Reply::Integer(op.field.value_of(read_raw(bytes, op.offset, op.field.bits)))
}

/// `BITFIELD_RO key [GET type offset ...]`: BITFIELD's reads only.
#[derive(Debug, Clone, PartialEq)]
pub struct BitFieldRo {
    pub key: Bytes,
    pub ops: Vec<FieldOp>,
}

impl ReadCommand for BitFieldRo {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let ops = parse_ops(args)?;
        if ops.iter().any(|op| op.action != FieldAction::Get) {
            return Err(ReplyError::err(
                "BITFIELD_RO only supports the GET subcommand",
            ));
        }
        Ok(Self {
            key: arg(args, 1)?.clone(),
            ops,
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        match string_at(db, &self.key, ctx.now_ms) {
            Ok(current) => {
                let bytes = current.map_or(&[][..], |bytes| &bytes[..]);
                Reply::Array(self.ops.iter().map(|op| get(bytes, op)).collect())
            }
            Err(error) => Reply::Error(error),
        }
    }
}
