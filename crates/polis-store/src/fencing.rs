//! Fencing tokens: where a lock's tokens come from, and why they only
//! grow.
//!
//! ```text
//!   token = epoch << 40  +  log index of the granting entry
//!           (the shard's ownership map version at apply)
//! ```
//!
//! On one shard the log index grows with every entry and the epoch (the
//! map version the shard's slots came from) never goes back, so a later
//! entry always makes a larger token, on every replica and across leader
//! changes. A slot that moves to another shard arrives there with a
//! higher map version than its old shard ever held, so the new shard's
//! tokens are above every token the old one granted for the slot's locks.
//! A token is also at least the lock's last token plus one.
//!
//! Hence a lock's tokens increase even when its key is deleted (DEL,
//! FLUSHALL, expiry) and created again: what keeps them increasing is the
//! entry, not the key. For that, a log entry grants at most one lock —
//! two grants in one entry (a transaction) would share an index, and the
//! second one's "last plus one" would be lost with a DEL or handed to
//! another key by a COPY. Tokens are ordered while the log index stays
//! under 2^40 and the epoch under 2^23 (they fit a RESP integer); clients
//! should treat them as opaque but increasing.

use crate::db::Db;

/// Bits of a token below the epoch: room for the log index.
pub const TOKEN_INDEX_BITS: u32 = 40;

/// Why a lock cannot be granted in this entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// This entry already granted a lock.
    #[error(
        "a log entry grants at most one lock: acquire it in a command (or transaction) of its own"
    )]
    SecondInEntry,
    /// The token would not fit a RESP integer.
    #[error("fencing tokens of this shard are exhausted")]
    Exhausted,
}

impl Db {
    /// Sets the epoch of the entries applied from here on: the shard's
    /// ownership map version, which never goes back.
    pub fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    /// Returns the epoch set by [`Db::set_epoch`].
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Returns the token of a grant, in the entry being applied, of a
    /// lock whose last token was `last_granted` (0: never granted), and
    /// notes that this entry granted a lock.
    ///
    /// # Errors
    /// [`GrantError::SecondInEntry`] when this entry already granted a
    /// lock; [`GrantError::Exhausted`] past `i64::MAX`.
    pub fn grant_token(&mut self, last_granted: u64) -> Result<u64, GrantError> {
        if self.lock_granted_at == Some(self.write_version) {
            return Err(GrantError::SecondInEntry);
        }
        let base = (u128::from(self.epoch) << TOKEN_INDEX_BITS) + u128::from(self.write_version);
        let token = base.max(u128::from(last_granted) + 1);
        let token = u64::try_from(token)
            .ok()
            .filter(|token| i64::try_from(*token).is_ok())
            .ok_or(GrantError::Exhausted)?;
        self.lock_granted_at = Some(self.write_version);
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_follow_the_entry_and_the_epoch() {
        let mut db = Db::new();
        db.set_epoch(3);
        db.begin_write(100, 0);
        let first = db.grant_token(0).unwrap();
        assert_eq!(first, (3 << 40) + 100);
        // One grant per entry, whatever the lock.
        assert_eq!(db.grant_token(0), Err(GrantError::SecondInEntry));
        db.begin_write(101, 0);
        let second = db.grant_token(0).unwrap();
        assert!(second > first);
        // A higher epoch (the slot moved here) beats any index of before.
        db.set_epoch(4);
        db.begin_write(2, 0);
        assert!(db.grant_token(0).unwrap() > second);
        // Never at or below the lock's last token.
        db.begin_write(3, 0);
        assert_eq!(db.grant_token(5 << 40), Ok((5 << 40) + 1));
        db.begin_write(4, 0);
        assert_eq!(db.grant_token(i64::MAX as u64), Err(GrantError::Exhausted));
    }
}
