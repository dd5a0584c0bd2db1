//! The value of a lock key: who holds the lock, with which fencing token,
//! until when, and the highest token ever granted.
//!
//! A lock is granted with a token that strictly increases per lock (see
//! [`crate::fencing`] for where tokens come from). The holder passes its
//! token with every write the lock guards; a write whose token is no
//! longer current is refused when it applies. Time is the log entry's
//! time, as for expiry: the lease of a holder ends at the first entry
//! whose time reaches its deadline, on every replica alike.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Bytes a lock takes besides its owner's name (the tokens, the
/// deadline, the box).
const LOCK_OVERHEAD_BYTES: usize = 48;

/// The last grant of a lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The name the holder gave when it acquired the lock.
    pub owner: Bytes,
    /// The fencing token of this grant.
    pub token: u64,
    /// When the lease ends, in Unix milliseconds: the holder holds the
    /// lock at `now_ms` while `now_ms < lease_until_ms`.
    pub lease_until_ms: u64,
}

impl Holder {
    /// Returns true while the lease runs at `now_ms`.
    pub fn is_live(&self, now_ms: u64) -> bool {
        now_ms < self.lease_until_ms
    }
}

/// A lock: its last grant (none once released) and the highest token it
/// ever granted, kept after a release so that its tokens never go back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockValue {
    /// The last grant, whether its lease still runs or not; `None` once
    /// released.
    pub holder: Option<Holder>,
    /// The highest token this lock ever granted.
    pub last_granted: u64,
}

/// Why a token does not hold a lock now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fence<'a> {
    /// No live lease: never granted, released, or another holder's lease
    /// ended.
    NobodyHolds,
    /// The token was the lock's, and its lease ended.
    LeaseEnded,
    /// Another grant holds a live lease.
    HeldBy(&'a Holder),
}

impl LockValue {
    /// Returns a lock granted to `owner` with `token` until
    /// `lease_until_ms`.
    pub fn granted(owner: Bytes, token: u64, lease_until_ms: u64) -> Self {
        Self {
            holder: Some(Holder {
                owner,
                token,
                lease_until_ms,
            }),
            last_granted: token,
        }
    }

    /// Returns the holder whose lease runs at `now_ms`, if any.
    pub fn holder_at(&self, now_ms: u64) -> Option<&Holder> {
        self.holder.as_ref().filter(|holder| holder.is_live(now_ms))
    }

    /// Returns the holder when `token` holds the lock at `now_ms`, or why
    /// it does not.
    ///
    /// # Errors
    /// [`Fence`]: who holds the lock instead, or that nobody does.
    pub fn check(&self, token: u64, now_ms: u64) -> Result<&Holder, Fence<'_>> {
        match &self.holder {
            Some(holder) if holder.token == token && holder.is_live(now_ms) => Ok(holder),
            Some(holder) if holder.token == token => Err(Fence::LeaseEnded),
            Some(holder) if holder.is_live(now_ms) => Err(Fence::HeldBy(holder)),
            _ => Err(Fence::NobodyHolds),
        }
    }

    /// Grants the lock to `owner` with `token` until `lease_until_ms`.
    ///
    /// # Panics
    /// When `token` is not above every token granted before: tokens that
    /// went back would let a fenced-off holder write again.
    pub fn grant(&mut self, owner: Bytes, token: u64, lease_until_ms: u64) {
        assert!(
            token > self.last_granted,
            "lock token {token} granted after {}",
            self.last_granted
        );
        *self = Self::granted(owner, token, lease_until_ms);
    }

    /// Ends the current grant; the last token granted stays.
    pub fn release(&mut self) {
        self.holder = None;
    }

    /// Returns an estimate of the bytes the lock occupies.
    pub fn mem_bytes(&self) -> usize {
        LOCK_OVERHEAD_BYTES + self.holder.as_ref().map_or(0, |holder| holder.owner.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_holds_the_lock_only_while_it_is_current_and_its_lease_runs() {
        let mut lock = LockValue::granted(Bytes::from_static(b"a"), 10, 1_000);
        assert_eq!(lock.check(10, 999).map(|holder| holder.token), Ok(10));
        assert_eq!(lock.check(10, 1_000), Err(Fence::LeaseEnded));
        assert_eq!(lock.check(9, 1_000), Err(Fence::NobodyHolds));
        assert_eq!(lock.holder_at(1_000), None);

        lock.grant(Bytes::from_static(b"b"), 15, 2_000);
        let holder = lock.holder.clone().unwrap();
        assert_eq!(lock.check(10, 1_500), Err(Fence::HeldBy(&holder)));
        assert_eq!(lock.check(15, 1_500), Ok(&holder));

        lock.release();
        assert_eq!(lock.check(15, 1_500), Err(Fence::NobodyHolds));
        assert_eq!(lock.last_granted, 15, "kept after the release");
        assert_eq!(lock.mem_bytes(), LOCK_OVERHEAD_BYTES);
    }

    #[test]
    #[should_panic(expected = "lock token 15 granted after 15")]
    fn a_token_never_goes_back() {
        let mut lock = LockValue::granted(Bytes::from_static(b"a"), 15, 1_000);
        lock.release();
        lock.grant(Bytes::from_static(b"b"), 15, 2_000);
    }
}
