//! SETBIT, GETBIT, BITCOUNT and BITPOS. Bit 0 is the most significant bit
//! of the first byte.

use bytes::{Bytes, BytesMut};
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, Db, Value};
use polis_types::limits::STRING_LEN_MAX;

use crate::access::string_at;
use crate::args::{arg, int_arg, is, parse_i64};
use crate::command::{ReadCommand, ReadContext, WriteCommand};

/// Parses a bit offset: a non-negative integer addressing a byte below the
/// string size limit.
fn bit_offset(text: &[u8]) -> Result<u64, ReplyError> {
    let error = || ReplyError::err("bit offset is not an integer or out of range");
    let offset = parse_i64(text).ok_or_else(error)?;
    let offset = u64::try_from(offset).map_err(|_| error())?;
    if offset >> 3 >= STRING_LEN_MAX {
        return Err(error());
    }
    Ok(offset)
}

/// `SETBIT key offset 0|1`: returns the previous bit, growing the string
/// with zero bytes as needed.
#[derive(Debug, Clone, PartialEq)]
pub struct SetBit {
    pub key: Bytes,
    pub offset: u64,
    pub on: bool,
}

impl WriteCommand for SetBit {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        let offset = bit_offset(arg(args, 2)?)?;
        let bit = parse_i64(arg(args, 3)?)
            .filter(|bit| *bit == 0 || *bit == 1)
            .ok_or_else(|| ReplyError::err("bit is not an integer or out of range"))?;
        Ok(Self {
            key,
            offset,
            on: bit == 1,
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let current = match string_at(db, &self.key, now_ms) {
            Ok(current) => current,
            Err(error) => return Reply::Error(error),
        };
        // offset >> 3 < STRING_LEN_MAX, so it fits in usize.
        let byte = (self.offset >> 3) as usize;
        let mask = 0x80u8 >> (self.offset & 7);
        let mut bytes = BytesMut::new();
        if let Some(current) = current {
            bytes.extend_from_slice(current);
        }
        // Created or grown counts as a change, as in Redis.
        let grown = current.is_none() || bytes.len() <= byte;
        if bytes.len() <= byte {
            bytes.resize(byte + 1, 0);
        }
        let previous = bytes[byte] & mask != 0;
        if self.on {
            bytes[byte] |= mask;
        } else {
            bytes[byte] &= !mask;
        }
        db.insert_keep_ttl(self.key.clone(), Value::String(bytes.freeze()), now_ms);
        if grown || previous != self.on {
            db.notify(event_class::STRING, "setbit", &self.key);
        }
        Reply::Integer(i64::from(previous))
    }
}

/// `GETBIT key offset`: bits past the end read as 0.
#[derive(Debug, Clone, PartialEq)]
pub struct GetBit {
    pub key: Bytes,
    pub offset: u64,
}

impl ReadCommand for GetBit {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            offset: bit_offset(arg(args, 2)?)?,
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        match string_at(db, &self.key, ctx.now_ms) {
            Ok(value) => {
                let byte = value.and_then(|bytes| bytes.get((self.offset >> 3) as usize));
                let bit = byte.is_some_and(|byte| byte & (0x80u8 >> (self.offset & 7)) != 0);
                Reply::Integer(i64::from(bit))
            }
            Err(error) => Reply::Error(error),
        }
    }
}

/// A `start end [BYTE|BIT]` range as BITCOUNT and BITPOS take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitRange {
    pub start: i64,
    pub end: Option<i64>,
    pub in_bits: bool,
}

/// Parses `start [end [BYTE|BIT]]` from `args[from..]`.
fn parse_range(args: &[Bytes], from: usize) -> Result<Option<BitRange>, ReplyError> {
    let Some(start) = args.get(from) else {
        return Ok(None);
    };
    let start = int_arg(start)?;
    let end = args.get(from + 1).map(|end| int_arg(end)).transpose()?;
    let in_bits = match args.get(from + 2) {
        None => false,
        Some(unit) if is(unit, "bit") => true,
        Some(unit) if is(unit, "byte") => false,
        Some(_) => return Err(ReplyError::Syntax),
    };
    if args.len() > from + 3 {
        return Err(ReplyError::Syntax);
    }
    Ok(Some(BitRange {
        start,
        end,
        in_bits,
    }))
}

/// Resolves a range over `len_bytes` into inclusive bit positions; None
/// when empty.
fn resolve_bits(range: BitRange, len_bytes: usize) -> Option<(u64, u64)> {
    let total = len_bytes as i64 * if range.in_bits { 8 } else { 1 };
    let end = range.end.unwrap_or(total - 1);
    if range.start < 0 && end < 0 && range.start > end {
        return None;
    }
    let mut start = if range.start < 0 {
        total + range.start
    } else {
        range.start
    };
    let mut end = if end < 0 { total + end } else { end };
    start = start.max(0);
    end = end.max(0).min(total - 1);
    if total == 0 || start > end {
        return None;
    }
    let (start, end) = (start as u64, end as u64);
    if range.in_bits {
        Some((start, end))
    } else {
        Some((start * 8, end * 8 + 7))
    }
}

fn bit_at(bytes: &[u8], bit: u64) -> bool {
    bytes
        .get((bit >> 3) as usize)
        .is_some_and(|byte| byte & (0x80u8 >> (bit & 7)) != 0)
}

/// `BITCOUNT key [start end [BYTE|BIT]]`
#[derive(Debug, Clone, PartialEq)]
pub struct BitCount {
    pub key: Bytes,
    pub range: Option<BitRange>,
}

impl ReadCommand for BitCount {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        if args.len() == 3 {
            return Err(ReplyError::Syntax);
        }
        Ok(Self {
            key,
            range: parse_range(args, 2)?,
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        let bytes = match string_at(db, &self.key, ctx.now_ms) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Reply::Integer(0),
            Err(error) => return Reply::Error(error),
        };
        let range = self.range.unwrap_or(BitRange {
            start: 0,
            end: Some(-1),
            in_bits: false,
        });
        let Some((first, last)) = resolve_bits(range, bytes.len()) else {
            return Reply::Integer(0);
        };
        let first_byte = (first >> 3) as usize;
        let last_byte = (last >> 3) as usize;
        let mut count: u64 = bytes[first_byte..=last_byte]
            .iter()
            .map(|byte| u64::from(byte.count_ones()))
            .sum();
        // Take off the bits of the edge bytes outside the range.
        for bit in (first_byte as u64 * 8)..first {
            count -= u64::from(bit_at(bytes, bit));
        }
        for bit in (last + 1)..(last_byte as u64 * 8 + 8) {
            count -= u64::from(bit_at(bytes, bit));
        }
        Reply::Integer(count as i64)
    }
}

/// `BITPOS key bit [start [end [BYTE|BIT]]]`
#[derive(Debug, Clone, PartialEq)]
pub struct BitPos {
    pub key: Bytes,
    pub bit: bool,
    pub range: Option<BitRange>,
}

impl ReadCommand for BitPos {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        let bit = int_arg(arg(args, 2)?)?;
        if bit != 0 && bit != 1 {
            return Err(ReplyError::err("The bit argument must be 1 or 0."));
        }
        Ok(Self {
            key,
            bit: bit == 1,
            range: parse_range(args, 3)?,
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        let bytes = match string_at(db, &self.key, ctx.now_ms) {
            Ok(Some(bytes)) => bytes,
            // A missing key is an endless run of zero bits.
            Ok(None) => return Reply::Integer(if self.bit { -1 } else { 0 }),
            Err(error) => return Reply::Error(error),
        };
        let range = self.range.unwrap_or(BitRange {
            start: 0,
            end: None,
            in_bits: false,
        });
        let end_given = range.end.is_some();
        let Some((first, last)) = resolve_bits(range, bytes.len()) else {
            return Reply::Integer(-1);
        };
        let wanted = self.bit;
        let skip = if wanted { 0x00 } else { 0xFF };
        let mut bit = first;
        // Bounded by the range: bit only grows.
        while bit <= last {
            let byte_index = (bit >> 3) as usize;
            if bit & 7 == 0 && bit + 7 <= last && bytes[byte_index] == skip {
                bit += 8;
                continue;
            }
            if bit_at(bytes, bit) == wanted {
                return Reply::Integer(bit as i64);
            }
            bit += 1;
        }
        // Looking for a clear bit with no explicit end: the string is
        // padded with zeros on the right.
        if !wanted && !end_given {
            return Reply::Integer((last + 1) as i64);
        }
        Reply::Integer(-1)
    }
}
