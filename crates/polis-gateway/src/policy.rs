//! What the gateway enforces and records around routing, before a request
//! goes anywhere: its rate limits, and which requests the log samples.

use std::net::IpAddr;
use std::time::Instant;

use bytes::Bytes;
use polis_resp::ReplyError;

use crate::rate::{RateLimiter, RateLimits};
use crate::requests::{Sampled, Sampling};
use crate::route::lower;

/// What a gateway enforces and logs beyond routing; nothing by default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub rate_limits: RateLimits,
    pub request_sampling: Sampling,
}

/// The options at work, shared by every session.
#[derive(Debug)]
pub(crate) struct Policy {
    limiter: RateLimiter,
    sampling: Sampling,
}

impl Policy {
    pub fn new(options: Options) -> Self {
        Self {
            limiter: RateLimiter::new(options.rate_limits),
            sampling: options.request_sampling,
        }
    }

    /// Picks the request for the log, or not.
    pub fn sample(&self, args: &[Bytes], user: &str) -> Option<Box<Sampled>> {
        if !self.sampling.pick() {
            return None;
        }
        let name = args.first().map(|name| lower(name)).unwrap_or_default();
        Some(Box::new(Sampled::new(&name, args.len(), user)))
    }

    /// Takes the request's tokens from its user's and its address's
    /// buckets.
    ///
    /// # Errors
    /// `-RATELIMITED` when a bucket is empty.
    pub fn admit(&self, args: &[Bytes], user: &str, address: IpAddr) -> Result<(), ReplyError> {
        if !self.limiter.enabled() || is_rate_exempt(args.first()) {
            return Ok(());
        }
        self.limiter.admit(user, address, Instant::now())
    }
}

/// EXEC, DISCARD, QUIT and RESET are never rate-limited: the commands a
/// transaction runs paid when they were queued, and a refused EXEC would
/// leave the client inside MULTI.
fn is_rate_exempt(name: Option<&Bytes>) -> bool {
    name.is_some_and(|name| {
        [&b"exec"[..], b"discard", b"quit", b"reset"]
            .iter()
            .any(|exempt| name.eq_ignore_ascii_case(exempt))
    })
}
