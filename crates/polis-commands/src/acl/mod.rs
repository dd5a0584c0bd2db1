//! Redis ACL users: the rule language of `ACL SETUSER` and the check of a
//! command, its keys and its channels against a user, as Redis 7.0 words
//! its errors, and a connection's [`Identity`] with the check of its
//! requests. Pure: where the users are kept (the cluster map, or the
//! gateway's copy) and what a refusal is logged as belong to the callers.
//!
//! ```text
//!  "on >secret ~app:* &news +@read -keys"  --User::apply-->  User
//!  User + (spec, keys, channels)           --User::check-->  Ok | Denied (-NOPERM ...)
//!  User + password                         --User::accepts-> bool (-WRONGPASS ...)
//! ```
//!
//! Key permissions follow the command's flags: a write command needs `W`
//! on every key, any other command `R`. Redis reads finer access flags
//! from each command's key specs (INCR needs both, DEL only `W`); polis
//! asks for `W` alone on every key of a write, a documented difference.

use bytes::Bytes;

mod identity;
mod rules;
mod user;

pub use identity::{Admission, Identity};
pub use rules::AclError;
pub use user::{hex, Denied, User};

/// The name of the user every connection starts as.
pub const DEFAULT_USER: &str = "default";

/// Redis's reply to a command sent before AUTH, when the default user
/// needs a password.
pub const NOAUTH: &str = "NOAUTH Authentication required.";

/// What a client whose HTTP `Authorization` header is not Basic
/// credentials is told.
pub const BAD_BASIC: &str = "the Authorization header is not Basic user:password";

/// Reads the user and password of an HTTP `Authorization` header's value,
/// `Basic base64(user:password)` (the admin API and the gateway's HTTP API
/// take users that way); None when it is not that.
pub fn basic_credentials(value: &[u8]) -> Option<(String, String)> {
    use base64::Engine;
    let encoded = value.strip_prefix(b"Basic ")?.trim_ascii();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Returns the channels and the channel patterns command `name` (a
/// governing spec's name) names in `args`, as the ACL check takes them:
/// PUBLISH and SPUBLISH name one channel, SUBSCRIBE and SSUBSCRIBE
/// channels, PSUBSCRIBE patterns; unsubscribing needs no permission.
pub fn channels_of<'a>(name: &str, args: &'a [Bytes]) -> (&'a [Bytes], &'a [Bytes]) {
    let rest = args.get(1..).unwrap_or_default();
    match name {
        "publish" | "spublish" => (args.get(1..2).unwrap_or_default(), &[]),
        "subscribe" | "ssubscribe" => (rest, &[]),
        "psubscribe" => (&[], rest),
        _ => (&[], &[]),
    }
}

/// A request refused, with what it names for ACL LOG: the command, or the
/// first of its keys or channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub denied: Denied,
    pub object: String,
}

impl User {
    /// Checks request `args` of command `spec` (known, its arity
    /// checked) against this user: its governing spec (a subcommand's for
    /// a container), its keys and its channels.
    ///
    /// # Errors
    /// The refusal, as [`User::check`] words it.
    pub fn check_request(
        &self,
        spec: &'static crate::spec::CommandSpec,
        args: &[Bytes],
    ) -> Result<(), Refusal> {
        let governing = crate::spec::resolve(spec, args);
        let keys = crate::spec::command_keys(spec, args);
        let (channels, patterns) = channels_of(governing.name, args);
        self.check(governing, &keys, channels, patterns)
            .map_err(|denied| {
                let first = |items: &mut dyn Iterator<Item = &Bytes>| {
                    items
                        .next()
                        .map(|item| String::from_utf8_lossy(item).into_owned())
                        .unwrap_or_default()
                };
                let object = match &denied {
                    Denied::Command(command) => command.clone(),
                    Denied::Key => first(&mut keys.iter()),
                    Denied::Channel => first(&mut channels.iter().chain(patterns)),
                };
                Refusal { denied, object }
            })
    }
}

/// Redis's reply to AUTH with a wrong password or a disabled user.
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

#[cfg(test)]
#[path = "acl_test.rs"]
mod acl_test;
