//! ACL users, checked against the behaviour Redis's `tests/unit/acl.tcl`
//! asserts (that unit cannot run against polis: it is tagged
//! external:skip).

use bytes::Bytes;

use super::*;
use crate::spec::{lookup, resolve, CommandSpec};

fn rules(words: &[&str]) -> Vec<Bytes> {
    words
        .iter()
        .map(|word| Bytes::copy_from_slice(word.as_bytes()))
        .collect()
}

fn user(words: &[&str]) -> User {
    let mut user = User::new("alice");
    user.apply_all(&rules(words)).unwrap();
    user
}

fn spec(words: &[&str]) -> &'static CommandSpec {
    let args = rules(words);
    resolve(lookup(&args[0]).unwrap(), &args)
}

fn keys(words: &[&str]) -> Vec<Bytes> {
    rules(words)
}

#[test]
fn a_new_user_is_off_and_may_do_nothing() {
    let user = User::new("bob");
    assert!(!user.accepts(b""));
    assert_eq!(
        user.check(spec(&["get", "k"]), &[], &[], &[]),
        Err(Denied::Command("get".to_owned()))
    );
    assert_eq!(user.describe(), "off resetchannels -@all");
}

#[test]
fn the_default_user_may_do_everything_without_a_password() {
    let user = User::default_user();
    assert!(user.accepts(b"anything"));
    assert_eq!(user.describe(), "on nopass ~* &* +@all");
    assert_eq!(user.check(spec(&["flushall"]), &[], &[], &[]), Ok(()));
    assert_eq!(
        user.check(spec(&["config", "set", "x", "y"]), &[], &[], &[]),
        Ok(())
    );
}

#[test]
fn passwords_are_kept_as_sha256_and_checked() {
    let mut user = user(&["on", ">secret", ">other"]);
    assert!(user.accepts(b"secret"));
    assert!(user.accepts(b"other"));
    assert!(!user.accepts(b"wrong"));
    // SHA-256("secret")
    let secret = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";
    assert!(user.password_hashes().contains(&secret.to_owned()));
    user.apply_all(&rules(&["<secret"])).unwrap();
    assert!(!user.accepts(b"secret"));
    let refused = user.apply_all(&rules(&["<secret"])).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "ERR Error in ACL SETUSER modifier '<secret': The password you are trying to remove from the user does not exist"
    );
    user.apply_all(&rules(&[&format!("#{secret}")])).unwrap();
    assert!(user.accepts(b"secret"));
    assert!(user.apply_all(&rules(&["#abc"])).is_err());
    user.apply_all(&rules(&["off"])).unwrap();
    assert!(
        !user.accepts(b"secret"),
        "a user that is off authenticates with nothing"
    );
    user.apply_all(&rules(&["on", "nopass"])).unwrap();
    assert!(user.accepts(b"whatever"));
    user.apply_all(&rules(&["resetpass"])).unwrap();
    assert!(!user.accepts(b"whatever"));
}

#[test]
fn commands_and_categories_are_allowed_and_taken_away_in_order() {
    let user = user(&["on", "nopass", "~*", "+@all", "-@dangerous", "+flushall"]);
    assert_eq!(user.check(spec(&["flushall"]), &[], &[], &[]), Ok(()));
    assert_eq!(
        user.check(spec(&["flushdb"]), &[], &[], &[]),
        Err(Denied::Command("flushdb".to_owned()))
    );
    assert_eq!(
        user.describe(),
        "on nopass ~* resetchannels +@all -@dangerous +flushall"
    );

    let reader = user_with(&["on", "nopass", "~*", "+@read", "-keys"]);
    assert_eq!(
        reader.check(spec(&["get", "k"]), &keys(&["k"]), &[], &[]),
        Ok(())
    );
    assert!(reader
        .check(spec(&["set", "k", "v"]), &keys(&["k"]), &[], &[])
        .is_err());
    assert!(reader.check(spec(&["keys", "*"]), &[], &[], &[]).is_err());
    assert_eq!(reader.command_rules(), "-@all +@read -keys");
}

fn user_with(words: &[&str]) -> User {
    user(words)
}

#[test]
fn subcommands_are_allowed_one_by_one() {
    let user = user(&["on", "nopass", "+config|get"]);
    assert_eq!(
        user.check(spec(&["config", "get", "maxmemory"]), &[], &[], &[]),
        Ok(())
    );
    assert_eq!(
        user.check(spec(&["config", "set", "maxmemory", "1"]), &[], &[], &[]),
        Err(Denied::Command("config|set".to_owned()))
    );
    let all_but = user_with(&["on", "nopass", "+config", "-config|set"]);
    assert_eq!(
        all_but.check(spec(&["config", "get", "x"]), &[], &[], &[]),
        Ok(())
    );
    assert!(all_but
        .check(spec(&["config", "set", "x", "y"]), &[], &[], &[])
        .is_err());
}

#[test]
fn key_patterns_allow_reads_and_writes_apart() {
    let user = user(&["on", "nopass", "+@all", "~app:*", "%R~shared:*", "%W~log:*"]);
    assert_eq!(
        user.check(spec(&["set", "app:1", "v"]), &keys(&["app:1"]), &[], &[]),
        Ok(())
    );
    assert_eq!(
        user.check(spec(&["get", "shared:1"]), &keys(&["shared:1"]), &[], &[]),
        Ok(())
    );
    assert_eq!(
        user.check(
            spec(&["set", "shared:1", "v"]),
            &keys(&["shared:1"]),
            &[],
            &[]
        ),
        Err(Denied::Key)
    );
    assert_eq!(
        user.check(spec(&["rpush", "log:1", "v"]), &keys(&["log:1"]), &[], &[]),
        Ok(())
    );
    assert_eq!(
        user.check(
            spec(&["lrange", "log:1", "0", "-1"]),
            &keys(&["log:1"]),
            &[],
            &[]
        ),
        Err(Denied::Key)
    );
    assert_eq!(
        user.check(
            spec(&["mget", "app:1", "other"]),
            &keys(&["app:1", "other"]),
            &[],
            &[]
        ),
        Err(Denied::Key)
    );
    assert_eq!(
        user.key_patterns(),
        vec!["~app:*", "%R~shared:*", "%W~log:*"]
    );
}

#[test]
fn allkeys_and_allchannels_take_no_pattern_after_them() {
    let mut user = user(&["allkeys", "allchannels"]);
    let refused = user.apply_all(&rules(&["~more"])).unwrap_err();
    assert!(refused.to_string().contains("'resetkeys'"), "{refused}");
    let refused = user.apply_all(&rules(&["&more"])).unwrap_err();
    assert!(refused.to_string().contains("'resetchannels'"), "{refused}");
    user.apply_all(&rules(&["resetkeys", "~more", "resetchannels", "&news"]))
        .unwrap();
    assert_eq!(user.key_patterns(), vec!["~more"]);
    assert_eq!(user.channel_patterns(), vec!["&news"]);
}

#[test]
fn channels_are_matched_and_patterns_must_be_named() {
    let user = user(&["on", "nopass", "+@all", "&news.*"]);
    let publish = spec(&["publish", "news.sport", "m"]);
    assert_eq!(
        user.check(publish, &[], &keys(&["news.sport"]), &[]),
        Ok(())
    );
    assert_eq!(
        user.check(publish, &[], &keys(&["weather"]), &[]),
        Err(Denied::Channel)
    );
    let psubscribe = spec(&["psubscribe", "news.*"]);
    assert_eq!(user.check(psubscribe, &[], &[], &keys(&["news.*"])), Ok(()));
    assert_eq!(
        user.check(psubscribe, &[], &[], &keys(&["news.s*"])),
        Err(Denied::Channel)
    );
}

#[test]
fn a_bad_rule_changes_nothing_and_says_which() {
    let mut user = user(&["on", ">pw", "+get"]);
    let before = user.clone();
    let refused = user
        .apply_all(&rules(&["+set", "+nosuchcommand"]))
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "ERR Error in ACL SETUSER modifier '+nosuchcommand': Unknown command or category name in ACL"
    );
    assert_eq!(user, before);
    let refused = user.apply_all(&rules(&["bogus"])).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "ERR Error in ACL SETUSER modifier 'bogus': Syntax error"
    );
    assert!(user.apply_all(&rules(&["+@nosuchcategory"])).is_err());
    assert!(user.apply_all(&rules(&["%X~k"])).is_err());
}

#[test]
fn reset_makes_a_new_user() {
    let mut user = user(&["on", ">pw", "~*", "&*", "+@all"]);
    user.apply_all(&rules(&["reset"])).unwrap();
    assert_eq!(user, User::new("alice"));
    assert_eq!(user.describe(), "off resetchannels -@all");
}

#[test]
fn the_errors_are_worded_as_redis_words_them() {
    assert_eq!(
        Denied::Command("get".to_owned()).to_string(),
        "NOPERM this user has no permissions to run the 'get' command"
    );
    assert_eq!(
        Denied::Key.to_string(),
        "NOPERM this user has no permissions to access one of the keys used as arguments"
    );
    assert_eq!(
        WRONGPASS,
        "WRONGPASS invalid username-password pair or user is disabled."
    );
}

#[test]
fn a_connection_starts_as_the_default_user_only_while_it_needs_no_password() {
    let open = std::sync::Arc::new(User::default_user());
    let mut identity = Identity::default();
    let users = |name: &str| (name == DEFAULT_USER).then(|| open.clone());
    assert!(matches!(
        identity.admit(1, users, &rules(&["flushall"])),
        Admission::Admitted
    ));
    assert_eq!(identity.user.as_deref(), Some(DEFAULT_USER));
    assert!(!identity.needs_auth());

    let mut locked = User::default_user();
    locked.apply_all(&rules(&["resetpass", ">secret"])).unwrap();
    let locked = std::sync::Arc::new(locked);
    let mut identity = Identity::default();
    let users = |name: &str| (name == DEFAULT_USER).then(|| locked.clone());
    assert!(matches!(
        identity.admit(1, users, &rules(&["get", "k"])),
        Admission::NoAuth
    ));
    assert!(identity.needs_auth());
    // AUTH and HELLO may run before authenticating (NO_AUTH).
    assert!(matches!(
        identity.admit(1, users, &rules(&["auth", "secret"])),
        Admission::Admitted
    ));
}

#[test]
fn a_restricted_user_is_checked_and_a_deleted_one_must_authenticate_again() {
    let reader = std::sync::Arc::new(user_with(&["on", ">pw", "~app:*", "+get"]));
    let mut identity = Identity::authenticated(reader.name.clone());
    let present = |name: &str| (name == reader.name).then(|| reader.clone());
    assert!(matches!(
        identity.admit(1, present, &rules(&["get", "app:1"])),
        Admission::Admitted
    ));
    let Admission::Refused { user, refusal } =
        identity.admit(1, present, &rules(&["get", "other"]))
    else {
        panic!("a key outside ~app:* was admitted");
    };
    assert_eq!(
        (user.name.as_str(), refusal.denied),
        (reader.name.as_str(), Denied::Key)
    );
    let absent = |_: &str| None;
    assert!(matches!(
        identity.admit(2, absent, &rules(&["get", "app:1"])),
        Admission::NoAuth
    ));
    assert!(identity.user.is_none());
}

#[test]
fn a_category_is_allowed_only_whole_and_only_to_a_user_that_is_on() {
    assert!(user(&["on", "+@all"]).allows_category("admin"));
    assert!(user(&["on", "+@admin"]).allows_category("admin"));
    assert!(!user(&["off", "+@admin"]).allows_category("admin"));
    assert!(!user(&["on", "+@read"]).allows_category("admin"));
    assert!(!user(&["on", "+@admin", "-config"]).allows_category("admin"));
    assert!(!user(&["on", "+config"]).allows_category("admin"));
    assert!(User::default_user().allows_category("admin"));
}

#[test]
fn basic_credentials_are_read_from_an_authorization_header() {
    // base64("ops:pa:ss") and base64("nocolon").
    assert_eq!(
        basic_credentials(b"Basic b3BzOnBhOnNz"),
        Some(("ops".to_owned(), "pa:ss".to_owned()))
    );
    assert_eq!(basic_credentials(b"Basic bm9jb2xvbg=="), None);
    assert_eq!(basic_credentials(b"Bearer b3BzOnBhOnNz"), None);
    assert_eq!(basic_credentials(b"Basic !!!"), None);
}
