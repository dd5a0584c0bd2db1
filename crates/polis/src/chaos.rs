//! `polis chaos`: network faults on a running cluster whose nodes were
//! started with `--enable-fault-injection`. It learns the members from one
//! node's /status, then sets each node's faults through its admin API.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use polis::admin_client;

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
    /// Loses a share of the messages a node sends, at random.
    Loss {
        percent: u8,
        /// Only on this node (default: every node).
        #[arg(long)]
        on: Option<u64>,
    },
}

const TIMEOUT: Duration = Duration::from_secs(5);

async fn members(node: &str) -> anyhow::Result<BTreeMap<u64, String>> {
    let status = admin_client::status(node)
        .await
        .context("asking the node for its members")?;
    let mut members = BTreeMap::new();
    for member in status["members"]
        .as_array()
        .context("no members in /status")?
    {
        let id = member["node_id"].as_u64().context("member without id")?;
        let admin = member["admin_addr"]
            .as_str()
            .context("member without admin address")?;
        members.insert(id, admin.to_owned());
    }
    Ok(members)
}

async fn get_faults(admin: &str) -> anyhow::Result<Value> {
    let (code, body) = admin_client::get(admin, "/faults", TIMEOUT).await?;
    if code == 404 {
        bail!("{admin} does not serve /faults: start its node with --enable-fault-injection");
    }
    anyhow::ensure!(code == 200, "GET {admin}/faults answered {code}");
    Ok(serde_json::from_slice(&body)?)
}

async fn put_faults(admin: &str, faults: &Value) -> anyhow::Result<()> {
    let (code, body) = admin_client::put_json(admin, "/faults", faults, TIMEOUT).await?;
    if code == 404 {
        bail!("{admin} does not serve /faults: start its node with --enable-fault-injection");
    }
    anyhow::ensure!(
        code == 200,
        "PUT {admin}/faults answered {code}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(())
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

/// Returns each node's drop set for the given sides of a partition.
fn partition_faults(
    all: &BTreeSet<u64>,
    sides: &[BTreeSet<u64>],
) -> anyhow::Result<BTreeMap<u64, BTreeSet<u64>>> {
    let mut sides = sides.to_vec();
    let named: BTreeSet<u64> = sides.iter().flatten().copied().collect();
    if let Some(unknown) = named.difference(all).next() {
        bail!("node {unknown} is not a member");
    }
    if named.len() != sides.iter().map(BTreeSet::len).sum::<usize>() {
        bail!("a node is named on two sides");
    }
    let rest: BTreeSet<u64> = all.difference(&named).copied().collect();
    if !rest.is_empty() {
        sides.push(rest);
    }
    let mut drops = BTreeMap::new();
    for side in &sides {
        let others: BTreeSet<u64> = all.difference(side).copied().collect();
        for id in side {
            drops.insert(*id, others.clone());
        }
    }
    Ok(drops)
}

/// Runs `polis chaos`.
pub async fn run(args: ChaosArgs) -> anyhow::Result<()> {
    let members = members(&args.node).await?;
    let all: BTreeSet<u64> = members.keys().copied().collect();
    match args.action {
        Action::Status => {
            for (id, admin) in &members {
                match get_faults(admin).await {
                    Ok(faults) => println!("node {id}: {faults}"),
                    Err(error) => println!("node {id}: unreachable ({error:#})"),
                }
            }
        }
        Action::Heal => {
            for admin in members.values() {
                put_faults(admin, &json!({})).await?;
            }
            println!("healed {} nodes", members.len());
        }
        Action::Isolate { node_id } => {
            let side = BTreeSet::from([node_id]);
            apply_partition(&members, &partition_faults(&all, &[side])?).await?;
            println!("node {node_id} isolated");
        }
        Action::Partition { sides } => {
            let sides = sides
                .iter()
                .map(|side| parse_side(side))
                .collect::<anyhow::Result<Vec<_>>>()?;
            apply_partition(&members, &partition_faults(&all, &sides)?).await?;
            println!("partitioned");
        }
        Action::Drop { from, to } => {
            for (id, field, peer) in [(from, "drop_to", to), (to, "drop_from", from)] {
                let admin = members
                    .get(&id)
                    .with_context(|| format!("node {id} is not a member"))?;
                let mut faults = get_faults(admin).await?;
                let mut set: BTreeSet<u64> =
                    serde_json::from_value(faults[field].clone()).unwrap_or_default();
                set.insert(peer);
                faults[field] = json!(set);
                put_faults(admin, &faults).await?;
            }
            println!("messages from node {from} to node {to} are dropped");
        }
        Action::Delay {
            delay_ms,
            jitter_ms,
            on,
        } => {
            for (id, admin) in members
                .iter()
                .filter(|(id, _)| on.is_none_or(|on| on == **id))
            {
                let mut faults = get_faults(admin).await?;
                faults["delay_ms"] = json!(delay_ms);
                faults["jitter_ms"] = json!(jitter_ms);
                put_faults(admin, &faults).await?;
                println!("node {id}: delay {delay_ms} ms + up to {jitter_ms} ms");
            }
        }
        Action::Loss { percent, on } => {
            for (id, admin) in members
                .iter()
                .filter(|(id, _)| on.is_none_or(|on| on == **id))
            {
                let mut faults = get_faults(admin).await?;
                faults["loss_percent"] = json!(percent);
                put_faults(admin, &faults).await?;
                println!("node {id}: {percent}% of sent messages lost");
            }
        }
    }
    Ok(())
}

async fn apply_partition(
    members: &BTreeMap<u64, String>,
    drops: &BTreeMap<u64, BTreeSet<u64>>,
) -> anyhow::Result<()> {
    for (id, admin) in members {
        let cut = drops.get(id).cloned().unwrap_or_default();
        let mut faults = get_faults(admin).await?;
        faults["drop_to"] = json!(cut);
        faults["drop_from"] = json!(cut);
        put_faults(admin, &faults).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_cut_every_pair_across_sides() {
        let all = BTreeSet::from([1, 2, 3, 4, 5]);
        let drops = partition_faults(&all, &[BTreeSet::from([1, 2])]).unwrap();
        assert_eq!(drops[&1], BTreeSet::from([3, 4, 5]));
        assert_eq!(drops[&4], BTreeSet::from([1, 2]));
        let drops = partition_faults(&all, &[BTreeSet::from([1]), BTreeSet::from([2, 3])]).unwrap();
        assert_eq!(drops[&1], BTreeSet::from([2, 3, 4, 5]));
        assert_eq!(drops[&2], BTreeSet::from([1, 4, 5]));
        assert_eq!(drops[&5], BTreeSet::from([1, 2, 3]));
        assert!(partition_faults(&all, &[BTreeSet::from([1]), BTreeSet::from([1, 2])]).is_err());
        assert!(partition_faults(&all, &[BTreeSet::from([9])]).is_err());
    }
}
