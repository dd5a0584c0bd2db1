//! ACL: users kept in the cluster map (SETUSER, DELUSER change the map
//! through the meta group and answer once every node has the change),
//! read from this node's map (GETUSER, USERS, LIST, DRYRUN), and this
//! node's own log of refusals (LOG).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use polis_cluster::MapChange;
use polis_commands::acl::{User, DEFAULT_USER};
use polis_commands::spec::{acl_categories, acl_category_names, all_commands, check_arity, lookup};
use polis_resp::{Reply, ReplyError};

use super::lower;
use crate::connection::Session;
use crate::node::Node;
use crate::rpc::{NodeAnswer, NodeRequest};

/// How long a user change waits for every node to hold it.
const SPREAD_WAIT: Duration = Duration::from_secs(5);

fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// CONFIG SET requirepass: the default user's one password, or none
/// (`""`), for the whole cluster.
pub async fn set_requirepass(node: &Arc<Node>, password: &str) -> Result<(), ReplyError> {
    let rules = if password.is_empty() {
        vec!["nopass".to_owned()]
    } else {
        vec!["resetpass".to_owned(), format!(">{password}")]
    };
    change_users(
        node,
        MapChange::SetUser {
            name: DEFAULT_USER.to_owned(),
            rules,
        },
    )
    .await
}

/// CONFIG GET requirepass: `""` when the default user needs no password;
/// otherwise `#` and the SHA-256 of its first password (polis keeps no
/// password in the clear).
pub fn requirepass(node: &Node) -> String {
    match user(node, DEFAULT_USER) {
        Some(user) if !user.nopass => user
            .password_hashes()
            .first()
            .map(|hash| format!("#{hash}"))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// ACL <subcommand> (arity checked by the table).
pub async fn acl(node: &Arc<Node>, session: &Session, args: &[Bytes]) -> Result<Reply, ReplyError> {
    match lower(&args[1]).as_str() {
        "setuser" => setuser(node, &text(&args[2]), &args[3..]).await,
        "deluser" => deluser(node, &args[2..]).await,
        "getuser" => Ok(getuser(node, &text(&args[2]))),
        "users" => Ok(Reply::Array(users(node).iter().map(|user| Reply::bulk(user.name.clone())).collect())),
        "list" => Ok(Reply::Array(
            users(node)
                .iter()
                .map(|user| Reply::bulk(format!("user {} {}", user.name, user.describe())))
                .collect(),
        )),
        "whoami" => Ok(Reply::bulk(session.identity.name())),
        "cat" => cat(args.get(2)),
        "log" => log(node, args.get(2)),
        "dryrun" => dryrun(node, &text(&args[2]), &args[3..]),
        "genpass" => genpass(args.get(2)),
        "load" | "save" => Err(ReplyError::err(
            "polis keeps ACL users in the cluster map, not in a file: every node already has them (nothing to load or save)",
        )),
        "help" => Ok(Reply::Array(
            [
                "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CAT [<category>]", "DELUSER <username> [<username> ...]", "DRYRUN <username> <command> [<arg> ...]",
                "GETUSER <username>", "LIST", "USERS", "SETUSER <username> <attribs> ...", "GENPASS [<bits>]",
                "LOG [<count> | RESET]", "WHOAMI", "HELP",
            ]
            .iter()
            .map(|line| Reply::Simple((*line).into()))
            .collect(),
        )),
        _ => Err(ReplyError::err(format!(
            "unknown subcommand '{}'. Try ACL HELP.",
            text(&args[1])
        ))),
    }
}

/// The map's users, by name.
fn users(node: &Node) -> Vec<Arc<User>> {
    node.view()
        .map(|view| view.users().values().cloned().collect())
        .unwrap_or_else(|| vec![Arc::new(User::default_user())])
}

fn user(node: &Node, name: &str) -> Option<Arc<User>> {
    match node.view() {
        Some(view) => view.user(name).cloned(),
        None => (name == DEFAULT_USER).then(|| Arc::new(User::default_user())),
    }
}

/// Proposes `change` to the map and waits until every node holds it.
async fn change_users(node: &Arc<Node>, change: MapChange) -> Result<(), ReplyError> {
    let answer = crate::meta_leader::ask_patiently(
        node,
        NodeRequest::ChangeMap {
            changes: vec![change],
        },
    )
    .await;
    match answer {
        NodeAnswer::Changed(version) => {
            let behind = crate::admin_namespaces::nodes_behind(node, version, SPREAD_WAIT).await;
            if !behind.is_empty() {
                let names: Vec<String> = behind.iter().map(ToString::to_string).collect();
                tracing::warn!(
                    version,
                    nodes = names.join(","),
                    "an ACL change has not reached every node yet"
                );
            }
            Ok(())
        }
        NodeAnswer::Refused(reason) => Err(refusal(&reason)),
        NodeAnswer::Retry(reason) => Err(ReplyError::Other(format!(
            "TRYAGAIN the cluster map cannot change now ({reason}); try again"
        ))),
        other => Err(ReplyError::Other(format!(
            "TRYAGAIN unexpected answer from the meta leader ({other:?}); try again"
        ))),
    }
}

/// The meta leader's refusal, as the error Redis gives when the rules
/// were the reason.
fn refusal(reason: &str) -> ReplyError {
    match reason.find("ERR ") {
        Some(start) => ReplyError::Other(reason[start..].to_owned()),
        None => ReplyError::err(reason),
    }
}

async fn setuser(node: &Arc<Node>, name: &str, rules: &[Bytes]) -> Result<Reply, ReplyError> {
    // Checked here first, so a bad rule answers at once and in Redis's
    // words; the meta leader checks again against its newest map.
    let mut trial = user(node, name).map_or_else(|| User::new(name), |user| (*user).clone());
    trial
        .apply_all(rules)
        .map_err(|error| ReplyError::Other(error.to_string()))?;
    let rules: Vec<String> = rules.iter().map(|rule| text(rule)).collect();
    change_users(
        node,
        MapChange::SetUser {
            name: name.to_owned(),
            rules,
        },
    )
    .await?;
    Ok(Reply::ok())
}

async fn deluser(node: &Arc<Node>, names: &[Bytes]) -> Result<Reply, ReplyError> {
    let names: Vec<String> = names.iter().map(|name| text(name)).collect();
    if names.iter().any(|name| name == DEFAULT_USER) {
        return Err(ReplyError::err("The 'default' user cannot be removed"));
    }
    let existing: Vec<String> = names
        .into_iter()
        .filter(|name| {
            node.view()
                .is_some_and(|view| view.map().users.contains_key(name))
        })
        .collect();
    if existing.is_empty() {
        return Ok(Reply::Integer(0));
    }
    let count = existing.len() as i64;
    change_users(node, MapChange::DeleteUsers { names: existing }).await?;
    Ok(Reply::Integer(count))
}

fn getuser(node: &Node, name: &str) -> Reply {
    let Some(user) = user(node, name) else {
        return Reply::Null;
    };
    let mut flags = vec![Reply::bulk(if user.enabled { "on" } else { "off" })];
    if user.nopass {
        flags.push(Reply::bulk("nopass"));
    }
    flags.push(Reply::bulk("sanitize-payload"));
    let field = |name: &str| Reply::bulk(name);
    Reply::Map(vec![
        (field("flags"), Reply::Array(flags)),
        (
            field("passwords"),
            Reply::Array(
                user.password_hashes()
                    .into_iter()
                    .map(Reply::bulk)
                    .collect(),
            ),
        ),
        (field("commands"), Reply::bulk(user.command_rules())),
        (field("keys"), Reply::bulk(user.key_patterns().join(" "))),
        (
            field("channels"),
            Reply::bulk(user.channel_patterns().join(" ")),
        ),
        (field("selectors"), Reply::Array(Vec::new())),
    ])
}

fn cat(category: Option<&Bytes>) -> Result<Reply, ReplyError> {
    let Some(category) = category else {
        return Ok(Reply::Array(
            acl_category_names()
                .iter()
                .map(|name| Reply::bulk(*name))
                .collect(),
        ));
    };
    let category = lower(category);
    if !acl_category_names().contains(&category.as_str()) {
        return Err(ReplyError::err(format!("Unknown category '{category}'")));
    }
    let tagged = format!("@{category}");
    Ok(Reply::Array(
        all_commands()
            .iter()
            .flat_map(|spec| std::iter::once(spec).chain(spec.subcommands.iter()))
            .filter(|spec| acl_categories(spec).contains(&tagged))
            .map(|spec| Reply::bulk(spec.name))
            .collect(),
    ))
}

fn log(node: &Node, argument: Option<&Bytes>) -> Result<Reply, ReplyError> {
    let count = match argument {
        None => 10,
        Some(argument) if argument.eq_ignore_ascii_case(b"reset") => {
            node.acl_log.reset();
            return Ok(Reply::ok());
        }
        Some(argument) => polis_commands::args::parse_i64(argument)
            .and_then(|count| usize::try_from(count).ok())
            .ok_or_else(|| ReplyError::err("value is out of range, must be positive"))?,
    };
    let field = |name: &str| Reply::bulk(name);
    Ok(Reply::Array(
        node.acl_log
            .newest(count)
            .into_iter()
            .map(|entry| {
                let age = entry.first.elapsed().as_secs_f64();
                Reply::Map(vec![
                    (field("count"), Reply::Integer(entry.count as i64)),
                    (field("reason"), Reply::bulk(entry.reason_name())),
                    (field("context"), Reply::bulk(entry.context)),
                    (field("object"), Reply::bulk(entry.object)),
                    (field("username"), Reply::bulk(entry.username)),
                    (field("age-seconds"), Reply::Double(age)),
                    (field("client-info"), Reply::bulk(entry.client)),
                ])
            })
            .collect(),
    ))
}

/// ACL DRYRUN: whether `user` could run `args`, without running it.
fn dryrun(node: &Node, name: &str, args: &[Bytes]) -> Result<Reply, ReplyError> {
    let user =
        user(node, name).ok_or_else(|| ReplyError::err(format!("User '{name}' not found")))?;
    let spec = lookup(&args[0])
        .ok_or_else(|| ReplyError::err(format!("Command '{}' not found", text(&args[0]))))?;
    check_arity(spec, args)?;
    Ok(match user.check_request(spec, args) {
        Ok(()) => Reply::ok(),
        Err(refusal) => Reply::bulk(
            refusal
                .denied
                .to_string()
                .trim_start_matches("NOPERM ")
                .replacen("this", "This", 1),
        ),
    })
}

/// ACL GENPASS [bits]: random hexadecimal, 256 bits unless asked.
fn genpass(bits: Option<&Bytes>) -> Result<Reply, ReplyError> {
    let bits = match bits {
        None => 256,
        Some(bits) => polis_commands::args::parse_i64(bits)
            .filter(|bits| (1..=4096).contains(bits))
            .ok_or_else(|| ReplyError::err("ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096"))?,
    } as usize;
    let chars = bits.div_ceil(4);
    let mut bytes = vec![0u8; chars.div_ceil(2)];
    rand::fill(&mut bytes[..]);
    let mut hex = polis_commands::acl::hex(&bytes);
    hex.truncate(chars);
    Ok(Reply::bulk(hex))
}
