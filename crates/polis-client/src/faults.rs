//! Network faults on a cluster whose nodes run with
//! `--enable-fault-injection`, set through each node's admin API
//! (`GET`/`PUT /faults`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::admin;

const TIMEOUT: Duration = Duration::from_secs(5);

/// The members of a cluster and their admin addresses.
#[derive(Debug, Clone)]
pub struct Faults {
    members: BTreeMap<u64, String>,
}

impl Faults {
    /// Faults on the given members (node id -> admin address).
    pub fn new(members: BTreeMap<u64, String>) -> Self {
        Self { members }
    }

    /// Learns the members from one node's /status.
    ///
    /// # Errors
    /// Returns an error if the node cannot be asked.
    pub async fn discover(any_admin: &str) -> anyhow::Result<Self> {
        let status = admin::status(any_admin)
            .await
            .context("asking the node for its members")?;
        let mut members = BTreeMap::new();
        for member in status["nodes"].as_array().context("no nodes in /status")? {
            let id = member["id"].as_u64().context("node without id")?;
            let admin = member["admin_addr"]
                .as_str()
                .context("member without admin address")?;
            members.insert(id, admin.to_owned());
        }
        Ok(Self { members })
    }

    /// Takes node `id`, added to the cluster, as a member.
    pub fn add_member(&mut self, id: u64, admin: String) {
        self.members.insert(id, admin);
    }

    /// Stops injecting faults on node `id`, which leaves the cluster.
    pub fn remove_member(&mut self, id: u64) {
        self.members.remove(&id);
    }

    /// Returns the members (node id -> admin address).
    pub fn members(&self) -> &BTreeMap<u64, String> {
        &self.members
    }

    fn admin_of(&self, id: u64) -> anyhow::Result<&str> {
        self.members
            .get(&id)
            .map(String::as_str)
            .with_context(|| format!("node {id} is not a member"))
    }

    /// Returns the faults in force on node `id`.
    ///
    /// # Errors
    /// Returns an error if the node is unreachable or has no fault injection.
    pub async fn get(&self, id: u64) -> anyhow::Result<Value> {
        let admin = self.admin_of(id)?;
        let (code, body) = admin::get(admin, "/faults", TIMEOUT).await?;
        if code == 404 {
            bail!("{admin} does not serve /faults: start its node with --enable-fault-injection");
        }
        anyhow::ensure!(
            code == 200,
            "GET {admin}/faults answered {code}: {}",
            String::from_utf8_lossy(&body)
        );
        Ok(serde_json::from_slice(&body)?)
    }

    /// Replaces the faults in force on node `id`.
    ///
    /// # Errors
    /// Returns an error if the node is unreachable or refuses them.
    pub async fn put(&self, id: u64, faults: &Value) -> anyhow::Result<()> {
        let admin = self.admin_of(id)?;
        let (code, body) = admin::put_json(admin, "/faults", faults, TIMEOUT).await?;
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

    /// Changes some fields of node `id`'s faults, keeping the others.
    async fn update(&self, id: u64, change: impl FnOnce(&mut Value)) -> anyhow::Result<()> {
        let mut faults = self.get(id).await?;
        change(&mut faults);
        self.put(id, &faults).await
    }

    /// Removes every fault on every reachable node; returns the nodes
    /// that could not be reached (a node that is down has no faults).
    pub async fn heal(&self) -> Vec<(u64, anyhow::Error)> {
        let mut unreachable = Vec::new();
        for id in self.members.keys() {
            if let Err(error) = self.put(*id, &json!({})).await {
                unreachable.push((*id, error));
            }
        }
        unreachable
    }

    /// Splits the cluster into `sides` that cannot talk to each other;
    /// members named on no side form one more side.
    ///
    /// # Errors
    /// Returns an error for a bad side or an unreachable node.
    pub async fn partition(&self, sides: &[BTreeSet<u64>]) -> anyhow::Result<()> {
        let all: BTreeSet<u64> = self.members.keys().copied().collect();
        let drops = partition_drops(&all, sides)?;
        for id in self.members.keys() {
            let cut = drops.get(id).cloned().unwrap_or_default();
            self.update(*id, |faults| {
                faults["drop_to"] = json!(cut);
                faults["drop_from"] = json!(cut);
            })
            .await?;
        }
        Ok(())
    }

    /// Drops the messages from node `from` to node `to`, one way only.
    ///
    /// # Errors
    /// Returns an error if either node is unknown or unreachable.
    pub async fn drop_one_way(&self, from: u64, to: u64) -> anyhow::Result<()> {
        for (id, field, peer) in [(from, "drop_to", to), (to, "drop_from", from)] {
            self.update(id, |faults| {
                let mut set: BTreeSet<u64> =
                    serde_json::from_value(faults[field].clone()).unwrap_or_default();
                set.insert(peer);
                faults[field] = json!(set);
            })
            .await?;
        }
        Ok(())
    }

    /// Delays every message node `on` (or every node) sends.
    ///
    /// # Errors
    /// Returns an error if a node is unreachable.
    pub async fn delay(
        &self,
        on: Option<u64>,
        delay_ms: u64,
        jitter_ms: u64,
    ) -> anyhow::Result<()> {
        for id in self.selected(on)? {
            self.update(id, |faults| {
                faults["delay_ms"] = json!(delay_ms);
                faults["jitter_ms"] = json!(jitter_ms);
            })
            .await?;
        }
        Ok(())
    }

    /// Loses `percent` of the messages node `on` (or every node) sends.
    ///
    /// # Errors
    /// Returns an error if a node is unreachable.
    pub async fn loss(&self, on: Option<u64>, percent: u8) -> anyhow::Result<()> {
        for id in self.selected(on)? {
            self.update(id, |faults| faults["loss_percent"] = json!(percent))
                .await?;
        }
        Ok(())
    }

    /// Moves node `on`'s clock `offset_ms` away from the machine's (the
    /// clock of eventual keys' versions; 0 puts it back).
    ///
    /// # Errors
    /// Returns an error if the node is unknown or unreachable.
    pub async fn clock_skew(&self, on: u64, offset_ms: i64) -> anyhow::Result<()> {
        self.admin_of(on)?;
        self.update(on, |faults| faults["clock_offset_ms"] = json!(offset_ms))
            .await
    }

    fn selected(&self, on: Option<u64>) -> anyhow::Result<Vec<u64>> {
        match on {
            Some(id) => {
                self.admin_of(id)?;
                Ok(vec![id])
            }
            None => Ok(self.members.keys().copied().collect()),
        }
    }
}

/// Returns each node's set of peers to cut for the given sides of a
/// partition; members named on no side form one more side.
///
/// # Errors
/// Returns an error if a side names a non-member or a node is on two sides.
pub fn partition_drops(
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn partitions_cut_every_pair_across_sides() {
        let all = BTreeSet::from([1, 2, 3, 4, 5]);
        let drops = partition_drops(&all, &[BTreeSet::from([1, 2])]).unwrap();
        assert_eq!(drops[&1], BTreeSet::from([3, 4, 5]));
        assert_eq!(drops[&4], BTreeSet::from([1, 2]));
        let drops = partition_drops(&all, &[BTreeSet::from([1]), BTreeSet::from([2, 3])]).unwrap();
        assert_eq!(drops[&1], BTreeSet::from([2, 3, 4, 5]));
        assert_eq!(drops[&2], BTreeSet::from([1, 4, 5]));
        assert_eq!(drops[&5], BTreeSet::from([1, 2, 3]));
        assert!(partition_drops(&all, &[BTreeSet::from([1]), BTreeSet::from([1, 2])]).is_err());
        assert!(partition_drops(&all, &[BTreeSet::from([9])]).is_err());
    }
}
