//! INFO through the gateway: the home node's text, with what adds up over
//! the cluster added up over every node (each counts its own clients and
//! commands, and the keys of the shards it leads).

use std::collections::BTreeMap;

use bytes::Bytes;
use polis_resp::Reply;

/// Plain fields that add up.
const SUMS: &[&str] = &[
    "connected_clients",
    "blocked_clients",
    "total_error_replies",
];
/// Per-kind lines that add up, field by field, under their section.
const STAT_SECTIONS: &[(&str, &str)] = &[
    ("# Errorstats", "errorstat_"),
    ("# Commandstats", "cmdstat_"),
];

/// Merges the INFO replies of every node, the home node's first.
pub fn merge(parts: Vec<Reply>) -> Reply {
    let Some(first) = parts.first() else {
        return Reply::Null;
    };
    let texts: Vec<String> = parts
        .iter()
        .filter_map(|part| match part {
            Reply::Bulk(text) | Reply::Verbatim { text, .. } => {
                Some(String::from_utf8_lossy(text).into_owned())
            }
            _ => None,
        })
        .collect();
    let Some(home) = texts.first() else {
        return first.clone();
    };
    let merged: Vec<String> = home
        .split("\r\n")
        .filter(|line| {
            !STAT_SECTIONS
                .iter()
                .any(|(_, prefix)| line.starts_with(prefix))
        })
        .map(|line| {
            if let Some((_, prefix)) = STAT_SECTIONS.iter().find(|(header, _)| line == *header) {
                return std::iter::once(line.to_owned())
                    .chain(stat_lines(&texts, prefix))
                    .collect::<Vec<_>>()
                    .join("\r\n");
            }
            match line.split_once(':') {
                Some((field, _)) if SUMS.contains(&field) => {
                    format!("{field}:{}", field_sum(&texts, field))
                }
                Some(("db0", _)) => format!(
                    "db0:keys={},expires={},avg_ttl=0",
                    db_sum(&texts, "keys"),
                    db_sum(&texts, "expires")
                ),
                _ => line.to_owned(),
            }
        })
        .collect();
    let merged = Bytes::from(merged.join("\r\n"));
    match first {
        Reply::Verbatim { format, .. } => Reply::Verbatim {
            format: format.clone(),
            text: merged,
        },
        _ => Reply::Bulk(merged),
    }
}

fn field_sum(texts: &[String], field: &str) -> i64 {
    texts
        .iter()
        .filter_map(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|value| value.trim().parse::<i64>().ok())
        })
        .sum()
}

fn db_sum(texts: &[String], name: &str) -> i64 {
    texts
        .iter()
        .filter_map(|text| {
            let line = text.lines().find_map(|line| line.strip_prefix("db0:"))?;
            line.split(',')
                .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
                .and_then(|value| value.parse::<i64>().ok())
        })
        .sum()
}

/// Returns the `prefix` lines of every text (`cmdstat_get:calls=3,usec=9,...`)
/// added up field by field, `usec_per_call` worked out again.
fn stat_lines(texts: &[String], prefix: &str) -> Vec<String> {
    let mut stats: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    for text in texts {
        for line in text.lines().filter(|line| line.starts_with(prefix)) {
            let Some((name, fields)) = line.split_once(':') else {
                continue;
            };
            let summed = stats.entry(name.to_owned()).or_default();
            for pair in fields.split(',') {
                let Some((field, value)) = pair.split_once('=') else {
                    continue;
                };
                let value: f64 = value.trim().parse().unwrap_or(0.0);
                match summed.iter_mut().find(|(known, _)| known == field) {
                    Some((_, total)) => *total += value,
                    None => summed.push((field.to_owned(), value)),
                }
            }
        }
    }
    stats
        .into_iter()
        .map(|(name, fields)| {
            let get = |wanted: &str| {
                fields
                    .iter()
                    .find(|(field, _)| field == wanted)
                    .map(|(_, value)| *value)
            };
            let rendered: Vec<String> = fields
                .iter()
                .map(|(field, value)| match field.as_str() {
                    "usec_per_call" => {
                        let calls = get("calls").unwrap_or(0.0);
                        let per_call = if calls > 0.0 {
                            get("usec").unwrap_or(0.0) / calls
                        } else {
                            0.0
                        };
                        format!("{field}={per_call:.2}")
                    }
                    _ => format!("{field}={}", *value as i64),
                })
                .collect();
            format!("{name}:{}", rendered.join(","))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::{Combine, Merging};
    use crate::route::MergeKind;

    #[test]
    fn info_adds_up_clients_errors_and_keys_over_the_nodes() {
        let node = |blocked: i64, keys: i64| {
            Reply::Bulk(Bytes::from(format!(
                "# Clients\r\nconnected_clients:2\r\nblocked_clients:{blocked}\r\n\r\n# Errorstats\r\nerrorstat_NOGROUP:count={blocked}\r\n\r\n# Keyspace\r\ndb0:keys={keys},expires=1,avg_ttl=0\r\n"
            )))
        };
        let mut merging = Merging::new(Combine::Kind(MergeKind::Info), 3, Vec::new());
        merging.take(0, node(0, 10));
        merging.take(1, node(1, 20));
        assert_eq!(
            merging.take(2, node(0, 30)),
            Some(Reply::Bulk(Bytes::from_static(
                b"# Clients\r\nconnected_clients:6\r\nblocked_clients:1\r\n\r\n# Errorstats\r\nerrorstat_NOGROUP:count=1\r\n\r\n# Keyspace\r\ndb0:keys=60,expires=3,avg_ttl=0\r\n"
            )))
        );
    }

    #[test]
    fn command_stats_add_up_field_by_field() {
        let texts = vec![
            "# Commandstats\r\ncmdstat_get:calls=2,usec=10,usec_per_call=5.00,rejected_calls=0,failed_calls=1\r\n".to_owned(),
            "# Commandstats\r\ncmdstat_get:calls=2,usec=2,usec_per_call=1.00,rejected_calls=1,failed_calls=0\r\ncmdstat_set:calls=1,usec=4,usec_per_call=4.00,rejected_calls=0,failed_calls=0\r\n".to_owned(),
        ];
        assert_eq!(
            stat_lines(&texts, "cmdstat_"),
            vec![
                "cmdstat_get:calls=4,usec=12,usec_per_call=3.00,rejected_calls=1,failed_calls=1"
                    .to_owned(),
                "cmdstat_set:calls=1,usec=4,usec_per_call=4.00,rejected_calls=0,failed_calls=0"
                    .to_owned(),
            ]
        );
    }
}
