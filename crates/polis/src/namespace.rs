//! `polis namespace`: key prefixes with settings. The longest prefix of a
//! key decides whether it is strong (Raft, linearizable) or eventual
//! (leaderless quorums, writable through a partition).

use anyhow::Context;
use clap::{Args, Subcommand};
use polis_client::admin_namespaces::{self, NamespaceSettings};

/// Flags of `polis namespace`.
#[derive(Debug, Args)]
pub struct NamespaceArgs {
    /// Admin HTTP address of any node of the cluster.
    #[arg(long, global = true, default_value = "127.0.0.1:7100")]
    node: String,
    #[command(subcommand)]
    command: NamespaceCommand,
}

#[derive(Debug, Subcommand)]
enum NamespaceCommand {
    /// Adds a namespace, or changes one's settings. Its consistency
    /// changes only while no node holds a key under it.
    Set {
        /// The key prefix, e.g. `stock:`.
        prefix: String,
        /// strong or eventual.
        #[arg(long)]
        consistency: String,
        /// Replicas each eventual key is written to (N).
        #[arg(long)]
        replicas: Option<u8>,
        /// Acknowledgements an eventual write waits for (W).
        #[arg(long)]
        write_quorum: Option<u8>,
        /// Replicas an eventual read asks (R).
        #[arg(long)]
        read_quorum: Option<u8>,
        /// A strong namespace's cache limit on each node (`64mb`, `1gb`):
        /// its keys there are kept within it.
        #[arg(long)]
        maxmemory: Option<String>,
        /// What goes over that limit: one of Redis's eight policies
        /// (`allkeys-lru`, `volatile-ttl`, ...; default noeviction).
        #[arg(long)]
        maxmemory_policy: Option<String>,
    },
    /// Lists the namespaces; keys outside all of them are strong.
    List,
    /// Removes a namespace: its keys fall under the next shorter one, or
    /// are strong (refused while that would change existing keys).
    Remove {
        /// The key prefix.
        prefix: String,
    },
}

/// Runs `polis namespace`.
///
/// # Errors
/// Returns the cluster's refusal, or why the node could not be asked.
pub async fn run(args: NamespaceArgs) -> anyhow::Result<()> {
    let node = args.node.as_str();
    match args.command {
        NamespaceCommand::Set {
            prefix,
            consistency,
            replicas,
            write_quorum,
            read_quorum,
            maxmemory,
            maxmemory_policy,
        } => {
            let quorums = match (replicas, write_quorum, read_quorum) {
                (None, None, None) => None,
                (Some(replicas), Some(write), Some(read)) => Some((replicas, write, read)),
                _ => anyhow::bail!("give --replicas, --write-quorum and --read-quorum together"),
            };
            let settings = NamespaceSettings {
                prefix: &prefix,
                consistency: &consistency,
                quorums,
                maxmemory_bytes: maxmemory
                    .as_deref()
                    .map(crate::bench_memory::parse_bytes)
                    .transpose()?,
                maxmemory_policy: maxmemory_policy.as_deref(),
            };
            let said = admin_namespaces::set_namespace(node, settings)
                .await
                .with_context(|| format!("namespace '{prefix}' was not set"))?;
            println!("{said}");
        }
        NamespaceCommand::List => {
            let namespaces = admin_namespaces::namespaces(node)
                .await
                .with_context(|| format!("could not list the namespaces of {node}"))?;
            if namespaces.is_empty() {
                println!("no namespaces: every key is strong");
            }
            for namespace in namespaces {
                let text = |field: &str| {
                    namespace
                        .get(field)
                        .map(|value| value.as_str().map_or(value.to_string(), str::to_owned))
                        .unwrap_or_default()
                };
                let mut line = format!("{:<24} {}", text("prefix"), text("consistency"));
                if namespace.get("replicas").is_some() {
                    line.push_str(&format!(
                        "  N={} W={} R={}",
                        text("replicas"),
                        text("write_quorum"),
                        text("read_quorum")
                    ));
                }
                if namespace.get("maxmemory_bytes").is_some() {
                    line.push_str(&format!(
                        "  maxmemory={} {} (used here: {})",
                        text("maxmemory_bytes"),
                        text("maxmemory_policy"),
                        text("used_bytes")
                    ));
                }
                println!("{line}");
            }
        }
        NamespaceCommand::Remove { prefix } => {
            let said = admin_namespaces::remove_namespace(node, &prefix)
                .await
                .with_context(|| format!("namespace '{prefix}' was not removed"))?;
            println!("{said}");
        }
    }
    Ok(())
}
