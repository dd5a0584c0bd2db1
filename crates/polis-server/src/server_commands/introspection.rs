//! COMMAND and TIME.

use bytes::Bytes;
use polis_commands::CommandSpec;
use polis_resp::{Reply, ReplyError};

use super::lower;

fn flag_names(spec: &CommandSpec) -> Vec<Reply> {
    polis_commands::spec::flag_names(spec)
        .iter()
        .map(|name| Reply::Simple((*name).into()))
        .collect()
}

fn command_info(spec: &CommandSpec) -> Reply {
    let categories = polis_commands::spec::acl_categories(spec)
        .into_iter()
        .map(|category| Reply::Simple(format!("@{category}")))
        .collect();
    Reply::Array(vec![
        Reply::bulk(spec.name),
        Reply::Integer(i64::from(spec.arity)),
        Reply::Set(flag_names(spec)),
        Reply::Integer(i64::from(spec.first_key)),
        Reply::Integer(i64::from(spec.last_key)),
        Reply::Integer(i64::from(spec.step)),
        Reply::Set(categories),
        Reply::Set(spec.tips.iter().map(Reply::bulk).collect()),
        Reply::Array(Vec::new()),
        Reply::Array(spec.subcommands.iter().map(command_info).collect()),
    ])
}

fn command_docs(spec: &CommandSpec) -> Reply {
    Reply::Map(vec![
        (
            Reply::bulk("summary"),
            Reply::bulk(format!("The {} command.", spec.name)),
        ),
        (Reply::bulk("since"), Reply::bulk(spec.since)),
        (Reply::bulk("group"), Reply::bulk(spec.group)),
    ])
}

/// COMMAND [COUNT | LIST | INFO name... | DOCS name... | GETKEYS cmd...].
pub fn command(args: &[Bytes]) -> Result<Reply, ReplyError> {
    let all = polis_commands::all_commands();
    let Some(sub) = args.get(1) else {
        return Ok(Reply::Array(all.iter().map(command_info).collect()));
    };
    match lower(sub).as_str() {
        "count" => Ok(Reply::Integer(all.len() as i64)),
        "list" => Ok(Reply::Array(
            all.iter().map(|spec| Reply::bulk(spec.name)).collect(),
        )),
        "info" => {
            if args.len() == 2 {
                return Ok(Reply::Array(all.iter().map(command_info).collect()));
            }
            Ok(Reply::Array(
                args[2..]
                    .iter()
                    .map(|name| polis_commands::lookup(name).map_or(Reply::NullArray, command_info))
                    .collect(),
            ))
        }
        "docs" => {
            let specs: Vec<&CommandSpec> = if args.len() == 2 {
                all.iter().collect()
            } else {
                args[2..]
                    .iter()
                    .filter_map(|name| polis_commands::lookup(name))
                    .collect()
            };
            Ok(Reply::Map(
                specs
                    .into_iter()
                    .map(|spec| (Reply::bulk(spec.name), command_docs(spec)))
                    .collect(),
            ))
        }
        "getkeys" | "getkeysandflags" => {
            let target = &args[2..];
            let name = target
                .first()
                .ok_or_else(|| ReplyError::WrongArity("command|getkeys".into()))?;
            let spec = polis_commands::lookup(name)
                .ok_or_else(|| ReplyError::err("Invalid command specified"))?;
            polis_commands::check_arity(spec, target).map_err(|_| {
                ReplyError::err("Invalid number of arguments specified for command")
            })?;
            let keys = polis_commands::command_keys(spec, target);
            if keys.is_empty() {
                return Err(ReplyError::err("The command has no key arguments"));
            }
            Ok(Reply::Array(keys.into_iter().map(Reply::Bulk).collect()))
        }
        "help" => Ok(Reply::Array(
            [
                "COMMAND <subcommand>",
                "COUNT",
                "LIST",
                "INFO [<command-name> ...]",
                "DOCS [<command-name> ...]",
                "GETKEYS <full-command>",
            ]
            .iter()
            .map(|line| Reply::Simple((*line).into()))
            .collect(),
        )),
        _ => Err(ReplyError::err(format!(
            "unknown subcommand '{}'. Try COMMAND HELP.",
            String::from_utf8_lossy(sub)
        ))),
    }
}

/// TIME: seconds and microseconds of the node's clock.
pub fn time() -> Reply {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Reply::Array(vec![
        Reply::bulk(now.as_secs().to_string()),
        Reply::bulk(now.subsec_micros().to_string()),
    ])
}
