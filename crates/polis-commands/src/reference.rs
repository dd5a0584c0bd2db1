//! The command reference in `docs/commands.md`, rendered from the command
//! table so that it cannot drift from what the node runs. A test compares
//! the file with [`markdown`]; `POLIS_BLESS=1 cargo test -p polis-commands
//! reference` writes it anew.

use std::fmt::Write as _;

use crate::spec::{acl_categories, flag_names, CommandSpec, BLOCKING, NODE, WRITE};
use crate::table::COMMANDS;

/// How polis runs a command, as the reference says it.
fn path(spec: &CommandSpec) -> &'static str {
    if spec.has(NODE) {
        "node"
    } else if spec.has(BLOCKING) {
        "log, waits on the leader"
    } else if spec.has(WRITE) {
        "log"
    } else {
        "read"
    }
}

fn keys(spec: &CommandSpec) -> String {
    if spec.name == "fenced" {
        return "lock + command's".to_owned();
    }
    if spec.first_key <= 0 {
        return if crate::spec::has_movable_keys(spec.name) {
            "counted".to_owned()
        } else {
            "-".to_owned()
        };
    }
    format!("{} {} {}", spec.first_key, spec.last_key, spec.step)
}

fn row(out: &mut String, spec: &CommandSpec) {
    let _ = writeln!(
        out,
        "| `{}` | {} | {} | {} | {} | {} | {} |",
        spec.name.to_uppercase().replace('|', " "),
        spec.arity,
        flag_names(spec).join(", "),
        keys(spec),
        acl_categories(spec).join(" "),
        path(spec),
        spec.since,
    );
}

/// Returns the whole reference, grouped as Redis groups its commands.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Command reference\n\n\
         Generated from the command table (`crates/polis-commands/src/table.rs`) by\n\
         `POLIS_BLESS=1 cargo test -p polis-commands reference`; a test fails when\n\
         this file and the table differ. Semantics are Redis 7.0's unless\n\
         [the notes](transactions-and-blocking.md) (and, for pub/sub,\n\
         [pubsub.md](pubsub.md); for `maxmemory`, -OOM on `denyoom` commands\n\
         and OBJECT FREQ/IDLETIME, [eviction.md](eviction.md)) say otherwise.\n\
         `LOCK` and `FENCED` are\n\
         polis's own ([locks.md](locks.md)), and so are `XNACK` and `XGROUP\n\
         SETOPTIONS`: the queue options of consumer groups\n\
         ([queues.md](queues.md)); their `since` says so.\n\n\
         Columns: arity (Redis's convention: `n` exactly n arguments with the\n\
         name, `-n` at least n); flags; key positions (first, last, step;\n\
         `counted`: a key count or `STREAMS` says where the keys are); ACL\n\
         categories; how polis runs it (`log`: a write, one Raft log entry\n\
         applied on every replica; `read`: on the leader after a quorum check,\n\
         or on any replica after READONLY; `node`: answered by the node\n\
         itself; `log, waits on the leader`: a blocking command); the Redis\n\
         version that introduced it.\n",
    );
    let mut groups: Vec<&str> = COMMANDS.iter().map(|spec| spec.group).collect();
    groups.sort_unstable();
    groups.dedup();
    for group in groups {
        let _ = write!(
            out,
            "\n## {group}\n\n| command | arity | flags | keys | ACL | runs | since |\n|---|---|---|---|---|---|---|\n"
        );
        let mut specs: Vec<&CommandSpec> = COMMANDS
            .iter()
            .filter(|spec| spec.group == group)
            .flat_map(|spec| std::iter::once(spec).chain(spec.subcommands.iter()))
            .collect();
        specs.sort_by_key(|spec| spec.name);
        for spec in specs {
            row(&mut out, spec);
        }
        if group == "lock" {
            out.push_str(LOCK_NOTES);
        }
    }
    out
}

/// What the table cannot say about LOCK and FENCED.
const LOCK_NOTES: &str = "
Replies: `LOCK ACQUIRE name owner lease-ms` answers the lock's fencing
token (an integer), or nil while another owner's lease runs; the same
owner gets its token again, its lease now `lease-ms` from the entry's
time (so retrying an ACQUIRE whose reply was lost is safe). `LOCK
REFRESH name token lease-ms` and `LOCK RELEASE name token` answer `OK`.
`LOCK INFO name` answers a map (`owner`, `token`, `lease_remaining_ms`;
a flat array for RESP2) or nil when nobody holds a live lease. `FENCED
name token command ...` answers what the command answers, applied only
if `token` is the lock's current token and its lease runs.

Errors: a token that does not hold the lock gets `-FENCED token 12 is
not the current token of lock 'x' (held by 'b' with token 15)`, `(its
lease ended)` or `(nobody holds it)`, and nothing is applied. A bad
lease or token is an `ERR` value error; the lock and the command's keys
in another slot, `CROSSSLOT`; a command FENCED cannot guard (node or
connection commands, transactions, blocking commands, LOCK, FENCED, a
command naming no key), `ERR FENCED cannot run ...`. A log entry grants
at most one lock: a second grant in one transaction gets an `ERR`.

Tokens strictly increase per lock, across leader changes, slot moves and
the lock's deletion; they are opaque. Why, and what a client sees on
failover: [locks.md](locks.md).
";

#[cfg(test)]
mod tests {
    #[test]
    fn the_reference_in_docs_matches_the_command_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/commands.md");
        let rendered = super::markdown();
        if std::env::var_os("POLIS_BLESS").is_some() {
            std::fs::write(path, &rendered).unwrap_or_else(|error| panic!("{path}: {error}"));
        }
        let stored = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            stored == rendered,
            "docs/commands.md differs from the command table: run \
             `POLIS_BLESS=1 cargo test -p polis-commands reference` and commit the file"
        );
    }
}
