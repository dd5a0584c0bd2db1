//! Bugs the simulation found, each kept as a test.
//!
//! | seeds | options | what broke | fixed in |
//! |-------|---------|------------|----------|
//! | 8, 21, 36, 68, 94, 95 | default | stale read: after a crash the old leader resumed its term (openraft's leader restore) with the commit index it had last flushed (the commit index is not durable) and served a ReadIndex read from before a write it had acknowledged | polis-raft `group_config`: `enable_leader_restore: false` |
//! | 14 | default | replicas diverged: the leader crashed after a follower flushed its newest entry but before it flushed it itself, resumed the same term, and appended a different entry at that index and term; the follower kept the old one (log matching), so two nodes applied different entries at one index | the same |
//! | 238 | default | no first map in 25 s: a creator that heard a majority waited for the rest, but each round of asking waited 5 s for a lost answer and forgot the answers of earlier rounds, so partitions kept it from ever creating | polis-server bootstrap: empty answers counted across rounds, 1 s per answer |
//! | 1275 | `--nodes 5` | the meta group's first entries differed (log matching): the simulation let a crashed node's start-up run on, and it created a map after the crash that the restarted node created again, differently | polis-sim: a crash aborts the node's start-up |
//! | 3098 | default | a key read as missing after a slot migration: a range owned by two shards made two migrations into one shard, and the rule dropping late entries of ended migrations dropped one of them's staged keys | polis-server migrating: that rule applies to overlapping slots only |
//! | 5760 | `--shards 3` | a stale read (and lost writes) after a slot migration: a chunk of the copy staged on the target late (an earlier driver's, or a first try whose answer was lost) overwrote newer values of the same migration | polis-server migrating: each staged key keeps the source index it was read at; older chunks never overwrite, and a copy from scratch drops chunks read before it |
//! | 5556 | `--shards 3` | the applied-index checker took a replica placed again on a node (a new replica id) for a restart from an older snapshot | polis-sim: a destroyed replica's progress is forgotten |
//!
//! A seed replays its run exactly only while the code it runs is the
//! same: any change to polis-raft, openraft or the simulation may steer a
//! seed away from the scenario it found, so each row keeps every seed
//! that showed the bug.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_server::connection::Session;
use polis_sim::cluster::{node_of_address, SimCluster};
use polis_sim::network::Links;
use polis_sim::trace::Trace;
use polis_sim::{run, SimConfig, SimOptions};
use polis_types::NodeId;

#[test]
fn seeds_that_found_bugs_pass() {
    for seed in [8, 14, 21, 36, 68, 94, 95, 238, 3098] {
        let options = SimOptions::default();
        let report = run(seed, &options);
        assert!(report.passed(), "{}", report.summary());
    }
    let five = SimOptions {
        nodes: Some(5),
        ..SimOptions::default()
    };
    let report = run(1275, &five);
    assert!(report.passed(), "{}", report.summary());
    let three_shards = SimOptions {
        shards: Some(3),
        ..SimOptions::default()
    };
    for seed in [5556, 5760] {
        let report = run(seed, &three_shards);
        assert!(report.passed(), "{}", report.summary());
    }
}

/// Sends `args` through the nodes' own request path, following MOVED and
/// waiting out elections (in virtual time, a tick of `poll` per try),
/// until a node answers for good.
async fn request(cluster: &SimCluster, poll: &mut tokio::time::Interval, args: &[&str]) -> Reply {
    let mut target = NodeId(1);
    for _ in 0..2_000 {
        poll.tick().await;
        let Some((server, _)) = cluster.node(target) else {
            target = NodeId(target.get() % 3 + 1);
            continue;
        };
        let request = args
            .iter()
            .map(|arg| Bytes::from(arg.to_string()))
            .collect();
        let mut session = Session::new(1);
        let reply = polis_server::pipeline::execute(&server, &mut session, vec![request])
            .await
            .pop()
            .unwrap();
        match reply {
            Reply::Error(ReplyError::Moved { addr, .. }) => {
                target = node_of_address(&addr).unwrap();
            }
            Reply::Error(ReplyError::ClusterDown(_) | ReplyError::TryAgain(_)) => {
                target = NodeId(target.get() % 3 + 1);
            }
            other => return other,
        }
    }
    panic!("no node answered {args:?} within 20 s of virtual time");
}

/// Reference: Raft paper, section 5.4 (safety) and figure 2 ("updated on
/// stable storage before responding to RPCs"): a write acknowledged once a
/// majority flushed it survives every node losing power at once, and the
/// first linearizable read after the restart sees it.
#[test]
fn an_acknowledged_write_survives_a_power_loss() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    polis_raft::runtime::set_simulation_seed(Some(1));
    runtime.block_on(async {
        let options = SimOptions {
            nodes: Some(3),
            ..SimOptions::default()
        };
        let mut config = SimConfig::from_seed(1, &options);
        config.loss_percent = 0;
        config.slow_permille = 0;
        let trace = Trace::new();
        let mut poll = tokio::time::interval(Duration::from_millis(10));
        let cluster = SimCluster::new(&config, &trace, Arc::new(Links::new(&config)));
        for node in config.node_ids() {
            cluster.start(node).await.unwrap();
        }
        let written = request(&cluster, &mut poll, &["SET", "k", "1"]).await;
        assert_eq!(written, Reply::Simple("OK".into()));
        for node in config.node_ids() {
            cluster.crash(node);
        }
        for node in config.node_ids() {
            cluster.start(node).await.unwrap();
        }
        let seen = request(&cluster, &mut poll, &["GET", "k"]).await;
        assert_eq!(seen, Reply::Bulk(Bytes::from_static(b"1")));
        assert!(trace.violations().is_empty(), "{:?}", trace.violations());
    });
    polis_raft::runtime::set_simulation_seed(None);
}
