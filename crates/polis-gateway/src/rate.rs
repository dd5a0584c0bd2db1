//! Rate limits: a token bucket per user and one per client address.
//!
//! A bucket holds up to `burst` tokens and gains `per_second` of them each
//! second; a request takes one. A request that finds its user's or its
//! address's bucket empty is refused with `-RATELIMITED` and takes
//! nothing from the other bucket, so a refused client does not drain a
//! budget it shares with others.
//!
//! The buckets of all sessions live in one table, bounded: a bucket that
//! has filled up again is the same as a new one and is dropped when the
//! table needs room. A table full of busy buckets refuses new keys rather
//! than letting them through unmetered.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Instant;

use polis_resp::ReplyError;
use polis_types::limits::GATEWAY_RATE_BUCKETS_MAX;

/// One limit: a steady rate and the burst allowed above it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

impl FromStr for Rate {
    type Err = String;

    /// Reads `RATE` or `RATE:BURST` (requests per second; the burst is one
    /// second's worth unless given).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (rate, burst) = match text.split_once(':') {
            Some((rate, burst)) => (rate, Some(burst)),
            None => (text, None),
        };
        let number = |text: &str| -> Result<f64, String> {
            let value: f64 = text
                .trim()
                .parse()
                .map_err(|_| format!("{text:?} is not a number (RATE or RATE:BURST)"))?;
            if value.is_finite() && value >= 1.0 {
                Ok(value)
            } else {
                Err(format!("{text:?}: a rate and a burst are at least 1"))
            }
        };
        let per_second = number(rate)?;
        let burst = burst.map(number).transpose()?.unwrap_or(per_second);
        Ok(Self { per_second, burst })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{} requests per second, burst {}",
            self.per_second, self.burst
        )
    }
}

/// The limits a gateway enforces; none by default.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RateLimits {
    /// Each ACL user's requests, over all its connections.
    pub per_user: Option<Rate>,
    /// Each client IP address's requests, over all its connections.
    pub per_address: Option<Rate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// The bucket's tokens at `now`.
    fn level(&self, rate: Rate, now: Instant) -> f64 {
        let gained = now.saturating_duration_since(self.at).as_secs_f64() * rate.per_second;
        (self.tokens + gained).min(rate.burst)
    }
}

/// The buckets of every session of one gateway.
#[derive(Debug, Default)]
pub struct RateLimiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<Key, Bucket>>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            buckets: Mutex::default(),
        }
    }

    /// Returns whether any limit is set (else [`Self::admit`] always admits).
    pub fn enabled(&self) -> bool {
        self.limits.per_user.is_some() || self.limits.per_address.is_some()
    }

    /// Takes a token for one request of `user` from `address`, or says
    /// which limit it exceeds.
    ///
    /// # Errors
    /// `-RATELIMITED`, naming the limit.
    pub fn admit(&self, user: &str, address: IpAddr, now: Instant) -> Result<(), ReplyError> {
        let checks = [
            self.limits
                .per_user
                .map(|rate| (Key::User(user.to_owned()), rate)),
            self.limits
                .per_address
                .map(|rate| (Key::Address(address), rate)),
        ];
        // A std Mutex: held for a few map operations, never across an await.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (key, rate) in checks.iter().flatten() {
            let level = buckets
                .get(key)
                .map_or(rate.burst, |bucket| bucket.level(*rate, now));
            if level < 1.0 {
                return Err(refusal(key, *rate));
            }
            if !buckets.contains_key(key) && buckets.len() >= GATEWAY_RATE_BUCKETS_MAX {
                self.drop_full(&mut buckets, now);
                if buckets.len() >= GATEWAY_RATE_BUCKETS_MAX {
                    return Err(ReplyError::Other(format!(
                        "RATELIMITED the gateway meters {GATEWAY_RATE_BUCKETS_MAX} users and addresses at most and all are busy; retry later"
                    )));
                }
            }
        }
        for (key, rate) in checks.into_iter().flatten() {
            let level = buckets
                .get(&key)
                .map_or(rate.burst, |bucket| bucket.level(rate, now));
            buckets.insert(
                key,
                Bucket {
                    tokens: level - 1.0,
                    at: now,
                },
            );
        }
        Ok(())
    }

    /// Drops the buckets that have filled up again (as good as new).
    fn drop_full(&self, buckets: &mut HashMap<Key, Bucket>, now: Instant) {
        buckets.retain(|key, bucket| {
            let rate = match key {
                Key::User(_) => self.limits.per_user,
                Key::Address(_) => self.limits.per_address,
            };
            rate.is_some_and(|rate| bucket.level(rate, now) < rate.burst)
        });
    }

    /// Returns the number of buckets held (for tests and INFO).
    pub fn buckets(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

fn refusal(key: &Key, rate: Rate) -> ReplyError {
    let whose = match key {
        Key::User(user) => format!("user '{user}'"),
        Key::Address(address) => format!("client address {address}"),
    };
    ReplyError::Other(format!(
        "RATELIMITED request rate of {whose} over its limit ({rate}); slow down and retry"
    ))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;

    const HOME: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const AWAY: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

    fn admitted(
        limiter: &RateLimiter,
        user: &str,
        address: IpAddr,
        now: Instant,
        n: usize,
    ) -> usize {
        (0..n)
            .filter(|_| limiter.admit(user, address, now).is_ok())
            .count()
    }

    #[test]
    fn rates_read_with_and_without_a_burst() {
        assert_eq!(
            "100".parse::<Rate>(),
            Ok(Rate {
                per_second: 100.0,
                burst: 100.0
            })
        );
        assert_eq!(
            "2.5:10".parse::<Rate>(),
            Ok(Rate {
                per_second: 2.5,
                burst: 10.0
            })
        );
        for bad in ["", "x", "0", "-3", "5:0", "inf", "NaN", "1:2:3"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?} was read");
        }
    }

    #[test]
    fn a_bucket_admits_its_burst_then_its_rate() {
        let limiter = RateLimiter::new(RateLimits {
            per_user: Some("10:20".parse().expect("rate")),
            per_address: None,
        });
        let start = Instant::now();
        assert_eq!(admitted(&limiter, "alice", HOME, start, 50), 20);
        let refused = limiter.admit("alice", HOME, start).expect_err("empty");
        assert!(refused.to_string().starts_with("RATELIMITED "));
        assert!(refused.to_string().contains("user 'alice'"));
        // Another user has a bucket of its own.
        assert_eq!(admitted(&limiter, "bob", HOME, start, 50), 20);
        // Half a second later: five more.
        let later = start + Duration::from_millis(500);
        assert_eq!(admitted(&limiter, "alice", HOME, later, 50), 5);
        // Never more than the burst, however long the wait.
        let much_later = start + Duration::from_secs(3600);
        assert_eq!(admitted(&limiter, "alice", HOME, much_later, 50), 20);
    }

    #[test]
    fn an_address_limit_covers_every_user_of_that_address() {
        let limiter = RateLimiter::new(RateLimits {
            per_user: Some("100".parse().expect("rate")),
            per_address: Some("3".parse().expect("rate")),
        });
        let now = Instant::now();
        assert_eq!(admitted(&limiter, "alice", HOME, now, 2), 2);
        assert_eq!(admitted(&limiter, "bob", HOME, now, 5), 1);
        let refused = limiter.admit("carol", HOME, now).expect_err("empty");
        assert!(refused.to_string().contains("client address 127.0.0.1"));
        assert_eq!(admitted(&limiter, "carol", AWAY, now, 5), 3);
        // A refusal by the address took nothing from the user's bucket.
        assert_eq!(
            admitted(&limiter, "bob", AWAY, now + Duration::from_secs(1), 1),
            1
        );
    }

    #[test]
    fn no_limits_admit_everything_and_keep_no_buckets() {
        let limiter = RateLimiter::new(RateLimits::default());
        assert!(!limiter.enabled());
        let now = Instant::now();
        assert_eq!(admitted(&limiter, "alice", HOME, now, 10_000), 10_000);
        assert_eq!(limiter.buckets(), 0);
    }

    #[test]
    fn the_table_drops_full_buckets_for_room_and_refuses_when_all_are_busy() {
        let limiter = RateLimiter::new(RateLimits {
            per_user: Some("1:2".parse().expect("rate")),
            per_address: None,
        });
        let start = Instant::now();
        for user in 0..GATEWAY_RATE_BUCKETS_MAX {
            assert!(limiter.admit(&user.to_string(), HOME, start).is_ok());
        }
        let refused = limiter.admit("late", HOME, start).expect_err("full");
        assert!(refused.to_string().contains("all are busy"));
        // One second on, every bucket is full again: room is made.
        let later = start + Duration::from_secs(1);
        assert!(limiter.admit("late", HOME, later).is_ok());
        assert_eq!(limiter.buckets(), 1);
    }
}
