//! How reports render an operation on one line, e.g. `cas(x, 1 -> 2)`.

use crate::history::{Entry, MicroOp, Op};

/// Renders an op the way reports show it, e.g. `cas(x, 1 -> 2)`.
pub fn describe_op(op: &Op) -> String {
    match op {
        Op::Read { key, value: None } => format!("read({key}) -> nil"),
        Op::Read {
            key,
            value: Some(value),
        } => format!("read({key}) -> {value}"),
        Op::Write { key, value } => format!("write({key}, {value})"),
        Op::Cas { key, from, to } => format!("cas({key}, {from} -> {to})"),
        Op::Add { element } => format!("add({element})"),
        Op::ReadAll { elements: None } => "read-all".to_string(),
        Op::ReadAll {
            elements: Some(elements),
        } => format!("read-all -> {} elements", elements.len()),
        Op::Xadd { payload, id } => match id {
            Some(id) => format!("xadd({payload}) -> {id}"),
            None => format!("xadd({payload})"),
        },
        Op::Xreadgroup {
            consumer,
            from,
            entries,
        } => format!(
            "xreadgroup({consumer}, {from}){}",
            describe_entries(entries.as_deref())
        ),
        Op::Xautoclaim { consumer, entries } => format!(
            "xautoclaim({consumer}){}",
            describe_entries(entries.as_deref())
        ),
        Op::Xack { ids } => format!("xack({})", ids.join(" ")),
        Op::Xnack { ids } => format!("xnack({})", ids.join(" ")),
        Op::Xpending { count: None } => "xpending".to_string(),
        Op::Xpending { count: Some(count) } => format!("xpending -> {count}"),
        Op::Xrange { entries } => format!("xrange{}", describe_entries(entries.as_deref())),
        Op::XrangeDead { entries } => {
            format!("xrange-dead{}", describe_entries(entries.as_deref()))
        }
        Op::Rpush { list, element } => format!("rpush({list}, {element})"),
        Op::Pop {
            list,
            element: None,
        } => format!("pop({list})"),
        Op::Pop {
            list,
            element: Some(element),
        } => format!("pop({list}) -> {element}"),
        Op::Lrem { element } => format!("lrem({element})"),
        Op::Lrange {
            list,
            elements: None,
        } => format!("lrange({list})"),
        Op::Lrange {
            list,
            elements: Some(elements),
        } => format!("lrange({list}) -> {} elements", elements.len()),
        Op::Txn { mops } => {
            let mops: Vec<String> = mops.iter().map(describe_micro_op).collect();
            format!("txn[{}]", mops.join(" "))
        }
        Op::LockAcquire { lock, owner, token } => match token {
            Some(token) => format!("acquire({lock}, {owner}) -> {token}"),
            None => format!("acquire({lock}, {owner})"),
        },
        Op::FencedPush {
            lock,
            token,
            element,
        } => format!("fenced-push({lock}, {token}, {element})"),
        Op::LockRefresh { lock, token } => format!("refresh({lock}, {token})"),
        Op::LockRelease { lock, token } => format!("release({lock}, {token})"),
        Op::FeedAppend {
            key,
            token,
            length: None,
        } => format!("append({key}, {token})"),
        Op::FeedAppend {
            key,
            token,
            length: Some(length),
        } => format!("append({key}, {token}) -> {length}"),
        Op::FeedGet { key, value: None } => format!("get({key})"),
        Op::FeedGet {
            key,
            value: Some(value),
        } => format!("get({key}) -> {} bytes", value.len()),
        Op::FeedRead {
            stream,
            entries: None,
        } => format!("read-feed({stream})"),
        Op::FeedRead {
            stream,
            entries: Some(entries),
        } => format!("read-feed({stream}) -> {} entries", entries.len()),
        Op::Nemesis { fault, phase } => format!("nemesis {phase:?} {fault}"),
        eventual => describe_eventual(eventual),
    }
}

/// Renders an operation of the eventual workload, e.g. `srem(ev:s:1, 7)
/// @127.0.0.1:7001 -> 1` (the node that answered, when known) or
/// `get(ev:r:0) @127.0.0.1:7001 -> "12"`.
fn describe_eventual(op: &Op) -> String {
    let answered = |reply: Option<String>| reply.map_or_else(String::new, |r| format!(" -> {r}"));
    let by = |node: &Option<String>| node.as_ref().map_or_else(String::new, |n| format!(" @{n}"));
    let at = |node: &str, converged: bool| {
        let when = if converged {
            ""
        } else {
            " (before converging)"
        };
        format!(" @{node}{when}")
    };
    match op {
        Op::EventualSet { key, value, node } => {
            format!("set({key}, {value}){}", by(node))
        }
        Op::EventualIncrby {
            key,
            delta,
            value,
            node,
        } => format!(
            "incrby({key}, {delta}){}{}",
            by(node),
            answered(value.map(|v| v.to_string()))
        ),
        Op::EventualSadd { key, element, node } => {
            format!("sadd({key}, {element}){}", by(node))
        }
        Op::EventualSrem {
            key,
            element,
            removed,
            node,
        } => format!(
            "srem({key}, {element}){}{}",
            by(node),
            answered(removed.map(|r| r.to_string()))
        ),
        Op::EventualDel { key, removed, node } => format!(
            "del({key}){}{}",
            by(node),
            answered(removed.map(|r| r.to_string()))
        ),
        Op::EventualConverge { keys, digest } => match (keys, digest) {
            (Some(keys), Some(digest)) => format!("converge -> {keys} keys, digest {digest}"),
            _ => "converge".to_owned(),
        },
        Op::EventualGet {
            key,
            node,
            converged,
            value,
        } => format!(
            "get({key}){}{}",
            at(node, *converged),
            answered(value.as_ref().map(|v| format!("{v:?}")))
        ),
        Op::EventualMembers {
            key,
            node,
            converged,
            members,
        } => format!(
            "smembers({key}){}{}",
            at(node, *converged),
            answered(members.as_ref().map(|m| format!("{} members", m.len())))
        ),
        other => format!("{other:?}"),
    }
}

/// Renders delivered entries as ` -> id=payload, ...` (nothing when the
/// operation saw none yet).
fn describe_entries(entries: Option<&[Entry]>) -> String {
    match entries {
        None => String::new(),
        Some(entries) => {
            let shown: Vec<String> = entries
                .iter()
                .map(|entry| format!("{}={}", entry.id, entry.payload))
                .collect();
            format!(" -> [{}]", shown.join(", "))
        }
    }
}

/// Renders a micro-op, e.g. `append(k1, 7)` or `r(k1) -> [3, 7]`.
pub fn describe_micro_op(mop: &MicroOp) -> String {
    match mop {
        MicroOp::Append { key, value } => format!("append({key}, {value})"),
        MicroOp::Read { key, value: None } => format!("r({key})"),
        MicroOp::Read {
            key,
            value: Some(list),
        } => format!("r({key}) -> {list:?}"),
    }
}
