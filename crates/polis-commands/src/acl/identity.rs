//! Who a connection is, and whether a request of it may run: the part of
//! the check that a node and the gateway share. Where the users come from
//! (the node's map view, the gateway's ACL LIST) and what a refusal leaves
//! behind (ACL LOG, a log line) are theirs.
//!
//! ```text
//!  request ─> user allows everything (cached per users' generation)? ──> admitted
//!               │ no
//!               ├─ first request: start as the default user if it needs no password
//!               ├─ unknown command, wrong arity, or NO_AUTH ──> admitted (fails or runs as usual)
//!               ├─ not authenticated, or the user was deleted ──> -NOAUTH
//!               └─ User::check_request ── denied ──> refused (-NOPERM ...)
//! ```

use std::sync::Arc;

use bytes::Bytes;

use super::{Refusal, User, DEFAULT_USER};
use crate::spec::{check_arity, lookup, NO_AUTH};

/// What a connection is authenticated as.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// The user, once authenticated (or started as the default user).
    pub user: Option<String>,
    /// Whether the start (the default user, when it needs no password)
    /// was decided: at the first request checked.
    decided: bool,
    /// The users' generation at which `user` was last found to allow
    /// everything: requests skip the check until the users change.
    open_at: Option<u64>,
}

/// Whether a request may run.
#[derive(Debug)]
pub enum Admission {
    Admitted,
    /// Not authenticated (`-NOAUTH`).
    NoAuth,
    /// Outside the user's rules (`-NOPERM ...`).
    Refused {
        user: Arc<User>,
        refusal: Refusal,
    },
}

impl Identity {
    /// An identity authenticated as `user`.
    pub fn authenticated(user: String) -> Self {
        Self {
            user: Some(user),
            decided: true,
            open_at: None,
        }
    }

    /// Returns the user's name for ACL WHOAMI and CLIENT LIST.
    pub fn name(&self) -> &str {
        self.user.as_deref().unwrap_or(DEFAULT_USER)
    }

    /// Returns true once the connection is known to need AUTH: it did
    /// not start as the default user and has not authenticated.
    pub fn needs_auth(&self) -> bool {
        self.decided && self.user.is_none()
    }

    /// Starts as the default user if it needs no password, once: at the
    /// first request, when the users are known.
    pub fn decide_start(&mut self, users: impl Fn(&str) -> Option<Arc<User>>) {
        if self.decided {
            return;
        }
        self.decided = true;
        if users(DEFAULT_USER).is_some_and(|user| user.accepts(b"")) {
            self.user = Some(DEFAULT_USER.to_owned());
        }
    }

    /// Checks request `args` against the users of `generation` (`users`
    /// finds one by name).
    pub fn admit(
        &mut self,
        generation: u64,
        users: impl Fn(&str) -> Option<Arc<User>>,
        args: &[Bytes],
    ) -> Admission {
        if self.open_at == Some(generation) {
            return Admission::Admitted;
        }
        self.decide_start(&users);
        let Some(spec) = args.first().and_then(|name| lookup(name)) else {
            return Admission::Admitted;
        };
        if check_arity(spec, args).is_err() || spec.has(NO_AUTH) {
            return Admission::Admitted;
        }
        let Some(name) = self.user.as_deref() else {
            return Admission::NoAuth;
        };
        let Some(user) = users(name) else {
            // Deleted since it authenticated: authenticate again.
            self.user = None;
            return Admission::NoAuth;
        };
        if user.is_unrestricted() {
            self.open_at = Some(generation);
            return Admission::Admitted;
        }
        match user.check_request(spec, args) {
            Ok(()) => Admission::Admitted,
            Err(refusal) => Admission::Refused { user, refusal },
        }
    }
}
