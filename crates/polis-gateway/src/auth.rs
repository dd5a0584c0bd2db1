//! Who a gateway client is, and what it may do: the same ACL users as the
//! nodes (read from them with ACL LIST, every topology refresh), checked
//! here before a request is routed, since the gateway's connections to the
//! nodes are its own.
//!
//! ```text
//!  client ── AUTH alice pw ──> gateway: the users' table ── OK / WRONGPASS (answered here)
//!  client ── GET k ──────────> gateway: alice may? ── NOPERM (answered here)
//!                                                  └─ yes ─> node, on a pooled connection
//!                                                           authenticated as the gateway's user
//! ```
//!
//! The gateway authenticates to the nodes with [`Credentials`]
//! (`polis gateway --user --password-file`): that user needs every
//! command its clients may run, and ACL LIST.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
pub use polis_commands::acl::Identity;
use polis_commands::acl::{Admission, User, DEFAULT_USER, NOAUTH, WRONGPASS};
use polis_resp::{Reply, ReplyError};

/// What the gateway authenticates as on its connections to the nodes.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

static CREDENTIALS: OnceLock<Credentials> = OnceLock::new();

/// Sets the gateway's credentials, once per process (a second call is
/// ignored: one gateway per process).
pub fn set_credentials(credentials: Credentials) {
    let _ = CREDENTIALS.set(credentials);
}

/// Returns the AUTH request to send first on a new connection to a node,
/// when the gateway has credentials.
pub(crate) fn handshake() -> Option<BytesMut> {
    let credentials = CREDENTIALS.get()?;
    Some(crate::topology::encode_command(&[
        "AUTH",
        credentials.user.as_str(),
        credentials.password.as_str(),
    ]))
}

/// The users, as the gateway last read them.
#[derive(Debug, Default)]
pub struct Users {
    /// Grows when the table changes: sessions re-check then.
    pub generation: u64,
    pub table: BTreeMap<String, Arc<User>>,
}

impl Users {
    /// Reads ACL LIST's reply (`user <name> <rules...>` per user).
    pub fn read(reply: &Reply) -> Result<BTreeMap<String, Arc<User>>, String> {
        let Reply::Array(lines) = reply else {
            return Err(format!("ACL LIST answered {reply:?}"));
        };
        let mut table = BTreeMap::new();
        for line in lines {
            let (Reply::Bulk(line) | Reply::Verbatim { text: line, .. }) = line else {
                return Err(format!("ACL LIST gave {line:?}"));
            };
            let line = String::from_utf8_lossy(line);
            let mut words = line.split(' ');
            let (Some("user"), Some(name)) = (words.next(), words.next()) else {
                return Err(format!("ACL LIST gave '{line}'"));
            };
            let rules: Vec<String> = words.map(str::to_owned).collect();
            let user = User::from_rules(name, &rules).map_err(|error| error.to_string())?;
            table.insert(name.to_owned(), Arc::new(user));
        }
        table
            .entry(DEFAULT_USER.to_owned())
            .or_insert_with(|| Arc::new(User::default_user()));
        Ok(table)
    }

    fn user(&self, name: &str) -> Option<&Arc<User>> {
        self.table.get(name)
    }
}

fn is(arg: Option<&Bytes>, name: &str) -> bool {
    arg.is_some_and(|arg| arg.eq_ignore_ascii_case(name.as_bytes()))
}

fn error(text: &str) -> Reply {
    Reply::Error(ReplyError::Other(text.to_owned()))
}

fn authenticate(users: &Users, identity: &mut Identity, user: &[u8], password: &[u8]) -> bool {
    let name = String::from_utf8_lossy(user).into_owned();
    let accepted = users
        .user(&name)
        .is_some_and(|found| found.accepts(password));
    if accepted {
        *identity = Identity::authenticated(name);
    } else {
        tracing::info!(user = name, "gateway: AUTH refused");
    }
    accepted
}

/// Answers what the gateway answers itself (AUTH, ACL WHOAMI) or refuses
/// (NOAUTH, NOPERM); None when the request goes on. HELLO's AUTH option is
/// taken here and removed from `args`.
pub(crate) fn check(
    users: &Users,
    identity: &mut Identity,
    args: &mut Vec<Bytes>,
) -> Option<Reply> {
    let lookup_user = |name: &str| users.user(name).cloned();
    identity.decide_start(lookup_user);
    let first = args.first();
    if is(first, "auth") {
        return Some(auth(users, identity, args));
    }
    if is(first, "hello") {
        if let Some(at) = args
            .iter()
            .position(|arg| arg.eq_ignore_ascii_case(b"auth"))
        {
            if at + 2 >= args.len() {
                return None; // The node answers the syntax error.
            }
            let (user, password) = (args[at + 1].clone(), args[at + 2].clone());
            args.drain(at..at + 3);
            if !authenticate(users, identity, &user, &password) {
                return Some(error(WRONGPASS));
            }
        } else if identity.needs_auth() {
            return Some(error(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
                 HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and \
                 select the RESP protocol version at the same time",
            ));
        }
        return None;
    }
    if is(first, "reset") {
        *identity = Identity::default();
        return None;
    }
    match identity.admit(users.generation, lookup_user, args) {
        Admission::Admitted => {}
        Admission::NoAuth => return Some(error(NOAUTH)),
        Admission::Refused { user, refusal } => {
            let denied = refusal.denied;
            tracing::info!(user = user.name, %denied, "gateway: ACL refused a request");
            return Some(error(&denied.to_string()));
        }
    }
    let whoami = is(args.first(), "acl") && is(args.get(1), "whoami");
    whoami.then(|| Reply::bulk(identity.name()))
}

fn auth(users: &Users, identity: &mut Identity, args: &[Bytes]) -> Reply {
    let (user, password): (&[u8], &Bytes) = match args {
        [_, password] => {
            if users
                .user(DEFAULT_USER)
                .is_some_and(|user| user.enabled && user.nopass)
            {
                return Reply::Error(ReplyError::err(
                    "AUTH <password> called without any password configured for the default user. \
                     Are you sure your configuration is correct?",
                ));
            }
            (DEFAULT_USER.as_bytes(), password)
        }
        [_, user, password] => (user, password),
        _ => return Reply::Error(ReplyError::Syntax),
    };
    if authenticate(users, identity, user, password) {
        Reply::ok()
    } else {
        error(WRONGPASS)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail loudly.

    use super::*;

    fn args(text: &str) -> Vec<Bytes> {
        text.split(' ')
            .map(|word| Bytes::copy_from_slice(word.as_bytes()))
            .collect()
    }

    fn users(lines: &[&str]) -> Users {
        let reply = Reply::Array(lines.iter().map(|line| Reply::bulk(*line)).collect());
        Users {
            generation: 1,
            table: Users::read(&reply).unwrap(),
        }
    }

    fn refusal(reply: Option<Reply>) -> String {
        match reply {
            Some(Reply::Error(error)) => error.to_string(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn acl_list_reads_into_users_and_requests_are_checked_as_on_a_node() {
        let users = users(&[
            "user alice on #2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b ~app:* &news -@all +get +set",
            "user default on #2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b ~* &* +@all",
        ]);
        let mut identity = Identity::default();
        assert_eq!(
            refusal(check(&users, &mut identity, &mut args("GET k"))),
            NOAUTH
        );
        assert_eq!(
            refusal(check(&users, &mut identity, &mut args("AUTH alice wrong"))),
            WRONGPASS
        );
        assert_eq!(
            check(&users, &mut identity, &mut args("AUTH alice secret")),
            Some(Reply::ok())
        );
        assert_eq!(check(&users, &mut identity, &mut args("GET app:1")), None);
        assert!(
            refusal(check(&users, &mut identity, &mut args("GET other"))).starts_with("NOPERM")
        );
        assert!(refusal(check(&users, &mut identity, &mut args("DEL app:1"))).contains("'del'"));
        // HELLO's AUTH is taken here: the node never sees it.
        let mut hello = args("HELLO 3 AUTH default secret SETNAME x");
        assert_eq!(check(&users, &mut identity, &mut hello), None);
        assert_eq!(hello, args("HELLO 3 SETNAME x"));
        assert_eq!(identity.name(), "default");
        assert_eq!(
            check(&users, &mut identity, &mut args("ACL WHOAMI")),
            Some(Reply::bulk("default"))
        );
        assert!(Users::read(&Reply::bulk("x")).is_err());
    }
}
