//! ACL users in the cluster map: every node and gateway enforces the same
//! ones. The map keeps each user as the rules that make it
//! ([`User::rules`], passwords as SHA-256); a node reads them once per
//! map version into its [`MapView`](crate::MapView).
//!
//! ```text
//!  ACL SETUSER alice on >pw ~app:*  ─> MapChange::SetUser { alice, [on, >pw, ~app:*] }
//!      meta apply: stored alice + rules ─> User ─> map.users[alice] = User::rules()
//!  MapView::new ─> users[alice] = Arc<User>   (the default user when absent:
//!                                              on nopass ~* &* +@all)
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use polis_commands::acl::{User, DEFAULT_USER};
use polis_types::limits::{ACL_USERS_MAX, ACL_USER_BYTES_MAX};

use crate::change::TxnError;
use crate::map::ClusterMap;

/// The users of a map, read: by name, the default user always among them.
pub type UserTable = BTreeMap<String, Arc<User>>;

/// Returns user `name` as `stored` rules make it. A stored user whose
/// rules no longer read (a binary that dropped a command) is kept off
/// and allowed nothing, and said in the log: denying is the safe side.
fn read_user(name: &str, stored: &[String]) -> User {
    User::from_rules(name, stored).unwrap_or_else(|error| {
        tracing::error!(user = name, %error, "a stored ACL user does not read: it is off");
        User::new(name)
    })
}

/// Returns the users of `map`, read.
pub fn read_users(map: &ClusterMap) -> UserTable {
    let mut users: UserTable = map
        .users
        .iter()
        .map(|(name, rules)| (name.clone(), Arc::new(read_user(name, rules))))
        .collect();
    users
        .entry(DEFAULT_USER.to_owned())
        .or_insert_with(|| Arc::new(User::default_user()));
    users
}

impl ClusterMap {
    /// Returns user `name` as stored, or the default user as Redis starts
    /// it, or None.
    fn stored_user(&self, name: &str) -> Option<User> {
        match self.users.get(name) {
            Some(rules) => Some(read_user(name, rules)),
            None if name == DEFAULT_USER => Some(User::default_user()),
            None => None,
        }
    }

    /// Applies `rules` to user `name`, creating it (off, allowed nothing)
    /// when it does not exist, all or none.
    pub(crate) fn set_user(&mut self, name: &str, rules: &[String]) -> Result<(), TxnError> {
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(TxnError::Rejected(
                "ERR Usernames can't contain spaces or null characters".into(),
            ));
        }
        let mut user = match self.stored_user(name) {
            Some(user) => user,
            None if self.users.len() >= ACL_USERS_MAX => {
                return Err(TxnError::Rejected(format!(
                    "ERR a cluster holds at most {ACL_USERS_MAX} ACL users: delete one first"
                )))
            }
            None => User::new(name),
        };
        for rule in rules {
            user.apply(rule)
                .map_err(|error| TxnError::Rejected(error.to_string()))?;
        }
        let stored = user.rules();
        let bytes: usize = name.len() + stored.iter().map(String::len).sum::<usize>();
        if bytes > ACL_USER_BYTES_MAX {
            return Err(TxnError::Rejected(format!(
                "ERR user '{name}' would need {bytes} bytes of rules, over the \
                 {ACL_USER_BYTES_MAX} allowed: use fewer patterns or broader ones"
            )));
        }
        self.users.insert(name.to_owned(), stored);
        Ok(())
    }

    /// Deletes `names` (those that exist); the default user stays.
    pub(crate) fn delete_users(&mut self, names: &[String]) -> Result<(), TxnError> {
        if names.iter().any(|name| name == DEFAULT_USER) {
            return Err(TxnError::Rejected(
                "ERR The 'default' user cannot be removed".into(),
            ));
        }
        for name in names {
            self.users.remove(name);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail loudly.

    use bytes::Bytes;
    use polis_commands::lookup;

    use super::*;
    use crate::change::MapChange;
    use crate::test_support::map;

    fn rules(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn users_set_through_the_map_read_back_the_same_on_every_view() {
        let map = map(3, 3);
        let version = map.version;
        let map = map
            .apply(
                version,
                &[MapChange::SetUser {
                    name: "alice".into(),
                    rules: rules("on >secret ~app:* &news +get +set"),
                }],
            )
            .unwrap();
        let users = read_users(&map);
        let alice = &users["alice"];
        assert!(alice.accepts(b"secret"));
        assert!(!alice.accepts(b"other"));
        let get = lookup(b"get").unwrap();
        let key = |k: &'static str| vec![Bytes::from_static(k.as_bytes())];
        assert!(alice.check(get, &key("app:1"), &[], &[]).is_ok());
        assert!(alice.check(get, &key("other"), &[], &[]).is_err());
        assert!(alice
            .check(lookup(b"del").unwrap(), &key("app:1"), &[], &[])
            .is_err());
        assert!(users["default"].is_unrestricted());
        // The stored form round-trips through the map's encoding.
        let bytes = postcard::to_stdvec(&map).unwrap();
        assert_eq!(ClusterMap::decode(&bytes).unwrap(), map);
        // Rules add to what a user has, as ACL SETUSER does.
        let map = map
            .apply(
                map.version,
                &[MapChange::SetUser {
                    name: "alice".into(),
                    rules: rules("+del"),
                }],
            )
            .unwrap();
        let alice = read_users(&map)["alice"].clone();
        assert!(alice
            .check(lookup(b"del").unwrap(), &key("app:1"), &[], &[])
            .is_ok());
        assert!(alice.accepts(b"secret"));
    }

    #[test]
    fn a_bad_rule_changes_nothing_and_the_default_user_stays() {
        let map = map(3, 3);
        let refused = map.apply(
            map.version,
            &[MapChange::SetUser {
                name: "bob".into(),
                rules: rules("on +nosuchcommand"),
            }],
        );
        assert!(
            matches!(&refused, Err(TxnError::Rejected(text)) if text.contains("nosuchcommand")),
            "{refused:?}"
        );
        let refused = map.apply(
            map.version,
            &[MapChange::DeleteUsers {
                names: vec!["default".into()],
            }],
        );
        assert!(matches!(refused, Err(TxnError::Rejected(_))));
        let refused = map.apply(
            map.version,
            &[MapChange::SetUser {
                name: "has space".into(),
                rules: rules("on"),
            }],
        );
        assert!(matches!(refused, Err(TxnError::Rejected(_))));
        // requirepass: the default user keeps its rights, needs a password.
        let map = map
            .apply(
                map.version,
                &[MapChange::SetUser {
                    name: "default".into(),
                    rules: rules("resetpass >pw"),
                }],
            )
            .unwrap();
        let default = read_users(&map)["default"].clone();
        assert!(default.is_unrestricted());
        assert!(default.accepts(b"pw"));
        assert!(!default.accepts(b""));
    }
}
