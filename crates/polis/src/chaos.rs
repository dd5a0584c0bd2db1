//! `polis chaos`: network faults on a running cluster whose nodes were
//! started with `--enable-fault-injection`. It learns the members from one
//! node's /status, then sets each node's faults through its admin API.

use std::collections::BTreeSet;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use polis_client::faults::Faults;

/// Flags of `polis chaos`.
#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// Admin HTTP address of any node of the cluster.
    #[arg(long, default_value = "127.0.0.1:7100", global = true)]
    node: String,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Shows the faults in force on every node.
    Status,
    /// Removes every fault on every node.
    Heal,
    /// Cuts one node off from all the others, both ways.
    Isolate { node_id: u64 },
    /// Splits the cluster into sides that cannot talk to each other, e.g.
    /// `partition 1 2,3`. Nodes named on no side form one more side.
    Partition {
        #[arg(required = true, num_args = 1..)]
        sides: Vec<String>,
    },
    /// Drops messages one way only: from node FROM to node TO.
    Drop {
        #[arg(long)]
        from: u64,
        #[arg(long)]
        to: u64,
    },
    /// Delays every message a node sends.
    Delay {
        delay_ms: u64,
        #[arg(long, default_value_t = 0)]
        jitter_ms: u64,
        /// Only on this node (default: every node).
        #[arg(long)]
        on: Option<u64>,
    },
    /// Moves one node's clock away from the machine's (the clock that
    /// versions eventual writes): positive is ahead, 0 puts it back.
    ClockSkew {
        node_id: u64,
        #[arg(allow_negative_numbers = true)]
        offset_ms: i64,
    },
    /// Loses a share of the messages a node sends, at random.
    Loss {
        percent: u8,
        /// Only on this node (default: every node).
        #[arg(long)]
        on: Option<u64>,
    },
}

fn parse_side(text: &str) -> anyhow::Result<BTreeSet<u64>> {
    text.split(',')
        .map(|id| {
            id.trim()
                .parse::<u64>()
                .with_context(|| format!("bad node id {id:?}"))
        })
        .collect()
}

/// Runs `polis chaos`.
pub async fn run(args: ChaosArgs) -> anyhow::Result<()> {
    let faults = Faults::discover(&args.node).await?;
    match args.action {
        Action::Status => {
            for id in faults.members().keys() {
                match faults.get(*id).await {
                    Ok(set) => println!("node {id}: {set}"),
                    Err(error) => println!("node {id}: unreachable ({error:#})"),
                }
            }
        }
        Action::Heal => {
            let unreachable = faults.heal().await;
            for (id, error) in &unreachable {
                println!("node {id}: unreachable ({error:#})");
            }
            if !unreachable.is_empty() {
                bail!("{} nodes could not be healed", unreachable.len());
            }
            println!("healed {} nodes", faults.members().len());
        }
        Action::Isolate { node_id } => {
            faults.partition(&[BTreeSet::from([node_id])]).await?;
            println!("node {node_id} isolated");
        }
        Action::Partition { sides } => {
            let sides = sides
                .iter()
                .map(|side| parse_side(side))
                .collect::<anyhow::Result<Vec<_>>>()?;
            faults.partition(&sides).await?;
            println!("partitioned");
        }
        Action::Drop { from, to } => {
            faults.drop_one_way(from, to).await?;
            println!("messages from node {from} to node {to} are dropped");
        }
        Action::Delay {
            delay_ms,
            jitter_ms,
            on,
        } => {
            faults.delay(on, delay_ms, jitter_ms).await?;
            println!(
                "delay {delay_ms} ms + up to {jitter_ms} ms on {}",
                on_text(on)
            );
        }
        Action::ClockSkew { node_id, offset_ms } => {
            faults.clock_skew(node_id, offset_ms).await?;
            println!("node {node_id}'s clock is {offset_ms} ms off");
        }
        Action::Loss { percent, on } => {
            faults.loss(on, percent).await?;
            println!("{percent}% of sent messages lost on {}", on_text(on));
        }
    }
    Ok(())
}

fn on_text(on: Option<u64>) -> String {
    on.map_or_else(|| "every node".to_owned(), |id| format!("node {id}"))
}
