//! Who a connection is, and what it may do: authentication (AUTH, HELLO
//! AUTH) against the cluster map's users, the ACL check of every request
//! before it runs, and the node's ACL LOG of what was refused.
//!
//! ```text
//!  request ─> known, right arity? ── no ──> (runs, and fails as usual)
//!               │ yes
//!               ├─ not authenticated, command not NO_AUTH ──> -NOAUTH
//!               ├─ user allows everything (cached per map version) ──> runs
//!               └─ User::check(spec, keys, channels) ── denied ──> -NOPERM, ACL LOG, counted
//! ```
//!
//! A connection starts as the default user when the default user needs no
//! password (decided at its first request, once the node has a map), and
//! unauthenticated otherwise. Changing a user applies to its connections at
//! their next request; a deleted user's connections must authenticate
//! again.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;
pub use polis_commands::acl::Identity;
use polis_commands::acl::{Admission, Denied, Refusal, DEFAULT_USER, NOAUTH, WRONGPASS};
use polis_resp::{Reply, ReplyError};
use polis_types::limits::ACL_LOG_ENTRIES_MAX;

use crate::connection::Session;
use crate::node::Node;
use crate::stats::Stats;

/// Why an ACL LOG entry was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Auth,
    Command,
    Key,
    Channel,
}

impl LogEntry {
    /// Returns the reason as ACL LOG names it.
    pub fn reason_name(&self) -> &'static str {
        self.reason.name()
    }
}

impl Reason {
    fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Command => "command",
            Self::Key => "key",
            Self::Channel => "channel",
        }
    }
}

/// One ACL LOG entry: equal refusals in a row count up one entry.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub count: u64,
    pub reason: Reason,
    pub context: &'static str,
    pub object: String,
    pub username: String,
    pub first: Instant,
    pub client: String,
}

/// The node's refusals: ACL LOG and INFO's `acl_access_denied_*`.
#[derive(Default)]
pub struct AclLog {
    entries: Mutex<VecDeque<LogEntry>>,
    pub denied_auth: AtomicU64,
    pub denied_cmd: AtomicU64,
    pub denied_key: AtomicU64,
    pub denied_channel: AtomicU64,
}

impl AclLog {
    /// Records a refusal, newest first, counted and said in the log.
    pub fn record(
        &self,
        reason: Reason,
        context: &'static str,
        object: String,
        username: &str,
        client: String,
    ) {
        let counter = match reason {
            Reason::Auth => &self.denied_auth,
            Reason::Command => &self.denied_cmd,
            Reason::Key => &self.denied_key,
            Reason::Channel => &self.denied_channel,
        };
        Stats::bump(counter);
        tracing::info!(
            reason = reason.name(),
            object,
            username,
            client,
            "ACL refused a request"
        );
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(newest) = entries.front_mut() {
            if newest.reason == reason && newest.object == object && newest.username == username {
                newest.count += 1;
                newest.client = client;
                return;
            }
        }
        entries.push_front(LogEntry {
            count: 1,
            reason,
            context,
            object,
            username: username.to_owned(),
            first: Instant::now(),
            client,
        });
        entries.truncate(ACL_LOG_ENTRIES_MAX);
    }

    /// Returns up to `count` entries, newest first.
    pub fn newest(&self, count: usize) -> Vec<LogEntry> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.iter().take(count).cloned().collect()
    }

    /// Forgets every entry (ACL LOG RESET).
    pub fn reset(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }
}

fn client_text(node: &Node, session: &Session) -> String {
    let mut text = format!("id={}", session.client_id);
    node.clients.update(session.client_id, |info| {
        text = format!(
            "id={} addr={} laddr={}",
            info.id, info.addr, info.local_addr
        );
    });
    text
}

/// Returns the refusal of `args` on this connection, or None when it may
/// run (unknown commands and wrong arities run, to fail as usual).
pub fn gate(node: &Node, session: &mut Session, args: &[Bytes]) -> Option<Reply> {
    let view = node.view()?;
    let users = |name: &str| view.user(name).cloned();
    let (user, Refusal { denied, object }) =
        match session.identity.admit(view.version(), users, args) {
            Admission::Admitted => return None,
            Admission::NoAuth => return Some(Reply::Error(ReplyError::Other(NOAUTH.into()))),
            Admission::Refused { user, refusal } => (user, refusal),
        };
    let reason = match &denied {
        Denied::Command(_) => Reason::Command,
        Denied::Key => Reason::Key,
        Denied::Channel => Reason::Channel,
    };
    let context = if session.multi.is_some() {
        "multi"
    } else {
        "toplevel"
    };
    node.acl_log.record(
        reason,
        context,
        object,
        &user.name,
        client_text(node, session),
    );
    Some(Reply::Error(ReplyError::Other(denied.to_string())))
}

/// Authenticates the connection as `user` with `password` (AUTH, HELLO
/// AUTH).
///
/// # Errors
/// `WRONGPASS` (logged and counted) for an unknown user, a disabled one
/// or a password it does not take; the connection stays as it was.
pub fn authenticate(
    node: &Node,
    session: &mut Session,
    user: &[u8],
    password: &[u8],
) -> Result<(), ReplyError> {
    let name = String::from_utf8_lossy(user).into_owned();
    let accepted = node
        .view()
        .and_then(|view| view.user(&name).cloned())
        .is_some_and(|found| found.accepts(password));
    if !accepted {
        node.acl_log.record(
            Reason::Auth,
            "toplevel",
            "AUTH".into(),
            &name,
            client_text(node, session),
        );
        return Err(ReplyError::Other(WRONGPASS.into()));
    }
    session.identity = Identity::authenticated(name.clone());
    node.clients
        .update(session.client_id, |info| info.user.clone_from(&name));
    Ok(())
}

/// AUTH [user] password.
pub fn auth(node: &Node, session: &mut Session, args: &[Bytes]) -> Result<Reply, ReplyError> {
    match args {
        [_, password] => {
            let default_is_open = node
                .view()
                .and_then(|view| view.user(DEFAULT_USER).cloned())
                .is_some_and(|user| user.enabled && user.nopass);
            if default_is_open {
                return Err(ReplyError::err(
                    "AUTH <password> called without any password configured for the default user. \
                     Are you sure your configuration is correct?",
                ));
            }
            authenticate(node, session, DEFAULT_USER.as_bytes(), password)?;
        }
        [_, user, password] => authenticate(node, session, user, password)?,
        _ => return Err(ReplyError::Syntax),
    }
    Ok(Reply::ok())
}
