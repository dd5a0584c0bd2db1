//! String commands (Redis's `t_string.c` and the bit commands of
//! `bitops.c`).

mod bitfield;
mod bitop;
mod bits;
mod expiry;
mod get;
mod getex;
mod incr;
mod lcs;
mod range;
mod set;

pub use bitfield::{BitField, BitFieldRo, FieldAction, FieldOp, FieldType, Overflow};
pub use bitop::{BitOp, BitOperation};
pub use bits::{BitCount, BitPos, GetBit, SetBit};
pub use get::{Get, GetRange, MGet, Strlen};
pub use getex::{GetDel, GetEx};
pub use incr::{IncrBy, IncrByFloat};
pub use lcs::Lcs;
pub use range::{Append, SetRange};
pub use set::{GetSet, MSet, Set};

pub(crate) use expiry::invalid_expire_time as expiry_error;

#[cfg(test)]
mod bitop_bitfield_test;
#[cfg(test)]
mod bits_lcs_test;
#[cfg(test)]
mod string_test;
