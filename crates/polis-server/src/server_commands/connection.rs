//! PING, HELLO, SELECT and CLIENT: the connection's own state.

use std::sync::Arc;

use bytes::Bytes;
use polis_resp::{ProtocolVersion, Reply, ReplyError};

use super::lower;
use crate::clients::ClientInfo;
use crate::connection::Session;
use crate::node::Node;

/// PING; a subscribed RESP2 client gets `["pong", <argument or "">]`, as
/// Redis answers in that context.
pub fn ping(session: &Session, args: &[Bytes]) -> Result<Reply, ReplyError> {
    if args.len() > 2 {
        return Err(ReplyError::WrongArity("ping".into()));
    }
    if session.subscribed && session.protocol == ProtocolVersion::Resp2 {
        let argument = args.get(1).cloned().unwrap_or_default();
        return Ok(Reply::Array(vec![
            Reply::bulk("pong"),
            Reply::Bulk(argument),
        ]));
    }
    Ok(match args.get(1) {
        Some(argument) => Reply::Bulk(argument.clone()),
        None => Reply::Simple("PONG".into()),
    })
}

/// RESET: the connection as new, as Redis resets it: the transaction and
/// watched keys dropped (by the transaction layer, before this), every
/// subscription gone, READWRITE, RESP2, no name, replies on.
pub fn reset(node: &Node, session: &mut Session) -> Reply {
    node.pubsub.forget(session.client_id);
    session.subscribed = false;
    node.monitors.remove(session.client_id);
    session.monitor = false;
    session.readonly = false;
    session.protocol = ProtocolVersion::Resp2;
    session.reply_off = false;
    session.reply_skip_next = false;
    // Back to the default user: authenticated again if it needs no
    // password, as at a new connection.
    session.identity = crate::acl::Identity::default();
    node.clients.update(session.client_id, |info| {
        info.readonly = false;
        info.protocol = 2;
        info.name = None;
        polis_commands::acl::DEFAULT_USER.clone_into(&mut info.user);
    });
    Reply::Simple("RESET".into())
}

pub fn select(args: &[Bytes]) -> Result<Reply, ReplyError> {
    match polis_commands::args::parse_i64(&args[1]) {
        Some(0) => Ok(Reply::ok()),
        Some(_) => Err(ReplyError::err("SELECT is not allowed in cluster mode")),
        None => Err(ReplyError::NotInteger),
    }
}

pub fn hello(node: &Arc<Node>, session: &mut Session, args: &[Bytes]) -> Result<Reply, ReplyError> {
    let mut index = 1;
    let mut protocol = session.protocol;
    if let Some(version) = args.get(1) {
        index = 2;
        protocol = match polis_commands::args::parse_i64(version) {
            Some(2) => ProtocolVersion::Resp2,
            Some(3) => ProtocolVersion::Resp3,
            Some(_) => return Err(ReplyError::NoProto),
            None => {
                return Err(ReplyError::err(
                    "Protocol version is not an integer or out of range",
                ))
            }
        };
    }
    let mut name = None;
    let mut credentials = None;
    while index < args.len() {
        match lower(&args[index]).as_str() {
            "auth" if index + 2 < args.len() => {
                credentials = Some((&args[index + 1], &args[index + 2]));
                index += 3;
            }
            "setname" if index + 1 < args.len() => {
                name = Some(client_name(&args[index + 1])?);
                index += 2;
            }
            _ => {
                return Err(ReplyError::err(format!(
                    "Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(&args[index])
                )))
            }
        }
    }
    match credentials {
        Some((user, password)) => crate::acl::authenticate(node, session, user, password)?,
        None if session.identity.needs_auth() => {
            return Err(ReplyError::Other(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
                 HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and \
                 select the RESP protocol version at the same time"
                    .into(),
            ))
        }
        None => {}
    }
    session.protocol = protocol;
    let protocol = if session.protocol == ProtocolVersion::Resp3 {
        3
    } else {
        2
    };
    node.clients.update(session.client_id, |info| {
        info.protocol = protocol;
        if let Some(name) = name {
            info.name = Some(name);
        }
    });
    // A node that leads a shard is a master, as CLUSTER NODES shows it.
    let role = if node.led_shards().is_empty() {
        "replica"
    } else {
        "master"
    };
    Ok(Reply::Map(vec![
        (Reply::bulk("server"), Reply::bulk("redis")),
        (
            Reply::bulk("version"),
            Reply::bulk(super::info::REDIS_VERSION),
        ),
        (Reply::bulk("proto"), Reply::Integer(i64::from(protocol))),
        (Reply::bulk("id"), Reply::Integer(session.client_id as i64)),
        (Reply::bulk("mode"), Reply::bulk("cluster")),
        (Reply::bulk("role"), Reply::bulk(role)),
        (Reply::bulk("modules"), Reply::Array(Vec::new())),
    ]))
}

fn client_name(name: &[u8]) -> Result<String, ReplyError> {
    if name.iter().any(|&byte| byte <= b' ' || byte > b'~') {
        return Err(ReplyError::err(
            "Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(String::from_utf8_lossy(name).into_owned())
}

/// Formats one CLIENT LIST line, fields as Redis 7.0 prints them.
fn client_line(node: &Node, info: &ClientInfo) -> String {
    let age = info.connected_at.elapsed().as_secs();
    let idle = info.last_command_at.elapsed().as_secs();
    let (sub, psub, ssub) = node.pubsub.counts(info.id);
    let flags = match (info.readonly, sub + psub + ssub > 0) {
        _ if node.monitors.contains(info.id) => "O",
        (true, _) => "r",
        (false, true) => "P",
        (false, false) => "N",
    };
    format!(
        "id={} addr={} laddr={} fd=8 name={} age={age} idle={idle} flags={flags} db=0 sub={sub} psub={psub} ssub={ssub} multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user={} redir=-1 resp={}",
        info.id,
        info.addr,
        info.local_addr,
        info.name.clone().unwrap_or_default(),
        info.last_command,
        info.user,
        info.protocol,
    )
}

pub fn client(
    node: &Arc<Node>,
    session: &mut Session,
    args: &[Bytes],
) -> Result<Reply, ReplyError> {
    let sub = lower(&args[1]);
    match sub.as_str() {
        "id" => Ok(Reply::Integer(session.client_id as i64)),
        "unblock" => {
            let id = std::str::from_utf8(&args[2])
                .ok()
                .and_then(|id| id.parse::<u64>().ok())
                .ok_or(ReplyError::NotInteger)?;
            let how = match args.get(3).map(|how| lower(how)).as_deref() {
                None | Some("timeout") => crate::blocking::Unblock::Timeout,
                Some("error") => crate::blocking::Unblock::Error,
                Some(_) => {
                    return Err(ReplyError::err(
                        "CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
                    ))
                }
            };
            if args.len() > 4 {
                return Err(ReplyError::Syntax);
            }
            Ok(Reply::Integer(i64::from(node.blocking.unblock(id, how))))
        }
        "setname" if args.len() == 3 => {
            let name = client_name(&args[2])?;
            node.clients.update(session.client_id, |info| {
                info.name = if name.is_empty() { None } else { Some(name) };
            });
            Ok(Reply::ok())
        }
        "getname" => {
            let name = node
                .clients
                .info(session.client_id)
                .and_then(|info| info.name);
            Ok(name.map_or(Reply::Null, Reply::bulk))
        }
        "list" => {
            let mut text = String::new();
            for info in node.clients.list() {
                text.push_str(&client_line(node, &info));
                text.push('\n');
            }
            Ok(Reply::Verbatim {
                format: "txt".into(),
                text: Bytes::from(text),
            })
        }
        "info" => {
            let info = node
                .clients
                .info(session.client_id)
                .ok_or_else(|| ReplyError::err("client not registered"))?;
            let line = format!("{}\n", client_line(node, &info));
            Ok(Reply::Verbatim {
                format: "txt".into(),
                text: Bytes::from(line),
            })
        }
        "kill" => client_kill(node, args),
        "reply" if args.len() == 3 => match lower(&args[2]).as_str() {
            "on" => {
                session.reply_off = false;
                session.reply_skip_next = false;
                Ok(Reply::ok())
            }
            "off" => {
                session.reply_off = true;
                Ok(Reply::Frames(Vec::new()))
            }
            "skip" => {
                session.reply_skip_next = !session.reply_off;
                Ok(Reply::Frames(Vec::new()))
            }
            _ => Err(ReplyError::Syntax),
        },
        "setinfo" | "no-evict" | "no-touch" => Ok(Reply::ok()),
        "help" => Ok(Reply::Array(
            [
                "CLIENT <subcommand>",
                "ID",
                "SETNAME <name>",
                "GETNAME",
                "LIST",
                "INFO",
                "KILL <ip:port> | ID <id> | ADDR <ip:port> | LADDR <ip:port>",
            ]
            .iter()
            .map(|line| Reply::Simple((*line).into()))
            .collect(),
        )),
        _ => Err(ReplyError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&args[1])
        ))),
    }
}

/// One condition of CLIENT KILL's filter form.
type ClientFilter = Box<dyn Fn(&ClientInfo) -> bool>;

fn client_kill(node: &Arc<Node>, args: &[Bytes]) -> Result<Reply, ReplyError> {
    if args.len() == 3 {
        // Old form: CLIENT KILL ip:port.
        let addr = String::from_utf8_lossy(&args[2]).into_owned();
        let killed = node.clients.kill(|info| info.addr.to_string() == addr);
        return if killed == 0 {
            Err(ReplyError::err("No such client"))
        } else {
            Ok(Reply::ok())
        };
    }
    if !args.len().is_multiple_of(2) {
        return Err(ReplyError::Syntax);
    }
    let mut filters: Vec<ClientFilter> = Vec::new();
    for pair in args[2..].chunks(2) {
        let value = String::from_utf8_lossy(&pair[1]).into_owned();
        match lower(&pair[0]).as_str() {
            "id" => {
                let id = polis_commands::args::parse_i64(&pair[1])
                    .filter(|id| *id > 0)
                    .ok_or_else(|| ReplyError::err("client-id should be greater than 0"))?;
                filters.push(Box::new(move |info| info.id as i64 == id));
            }
            "addr" => filters.push(Box::new(move |info| info.addr.to_string() == value)),
            "laddr" => filters.push(Box::new(move |info| info.local_addr.to_string() == value)),
            "skipme" | "type" | "user" | "maxage" => {}
            _ => return Err(ReplyError::Syntax),
        }
    }
    let killed = node
        .clients
        .kill(|info| filters.iter().all(|filter| filter(info)));
    Ok(Reply::Integer(killed as i64))
}
