//! Generic keyspace commands (Redis's `db.c`, `expire.c`, `object.c`).

mod del;
mod expire;
pub(crate) mod iterate;
mod object;
mod rename;

pub use del::{Del, Exists, Type};
pub use expire::{Expire, Persist, Ttl};
pub use iterate::{DbSize, Flush, Keys, RandomKey, Scan};
pub use object::{MemoryUsage, Object};
pub use rename::{Copy, Rename};

#[cfg(test)]
mod keyspace_test;
