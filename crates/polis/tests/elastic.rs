//! An elastic cluster: a node joins a running cluster with `--join`
//! through any member, follows the cluster map, routes clients, takes its
//! share of the shard replicas while a writer writes (nothing acknowledged
//! is lost), and comes back as the same node when restarted; a node id
//! already taken is refused with a message saying what to do.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::client::FollowingClient;
use common::probe::{assert_nothing_lost, Probe};
use common::{node_record, polis_cluster, shard_groups_of_three, shard_keys, wait_for, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_joins_through_any_member_and_follows_the_map() {
    let mut cluster = Cluster::start(3, &["--shards", "3"]);
    let before = cluster.wait_ready(Duration::from_secs(60)).await;
    let new = cluster.add_node(2);
    assert_eq!(new, 4);

    // Every node lists node 4, registered once; node 4's meta replica
    // follows the meta group as a learner and holds the newest map.
    let status = wait_for(
        "node 4 in every map, its meta replica following",
        Duration::from_secs(60),
        || async {
            let newest = cluster.cluster_status(1).await?["map_version"].as_u64()?;
            for id in 1..=3 {
                let listed = node_record(&cluster.cluster_status(id).await?, new)?;
                (listed["incarnation"] == 1).then_some(())?;
            }
            let mine = cluster.cluster_status(new).await?;
            let meta = mine["replicas"]
                .as_array()?
                .iter()
                .find(|replica| replica["group_id"] == 0)?
                .clone();
            (meta["state"] == "Learner" && mine["map_version"].as_u64()? >= newest).then_some(mine)
        },
    )
    .await;
    let me = node_record(&status, new).unwrap();
    assert_eq!(me["meta_voter"], false, "four nodes keep three meta voters");
    assert_eq!(
        status["shards"].as_array().unwrap().len(),
        3,
        "joining moves no shard: {status}"
    );

    // It routes: a client that starts at node 4 is sent to each shard's
    // leader and reads back what it wrote.
    let mut addrs = vec![cluster.node(new).resp.clone()];
    addrs.extend((1..=3).map(|id| cluster.node(id).resp.clone()));
    let mut client = FollowingClient::new(addrs, 0);
    for key in shard_keys(&before, "via-4").values() {
        let set = redis::cmd("SET").arg(key).arg("v").clone();
        client.query_idempotent(&set, Duration::from_secs(10)).await;
        let got = client
            .query_idempotent(&redis::cmd("GET").arg(key).clone(), Duration::from_secs(10))
            .await;
        assert_eq!(got, redis::Value::BulkString(b"v".to_vec()), "{key}");
    }

    // Replicas move to it until no node holds two more than another,
    // while a writer keeps writing to every shard; the nodes that gave
    // replicas delete theirs once the groups no longer count them.
    let probe = Probe::start(cluster.resp_addrs(), shard_keys(&before, "moving"), 3);
    let balanced = wait_for(
        "the replicas to spread over the four nodes",
        Duration::from_secs(120),
        || async {
            let status = cluster.cluster_status(1).await?;
            let mut held = vec![0usize; 4];
            for shard in status["shards"].as_array()? {
                for replica in shard["replicas"].as_array()? {
                    held[replica["node_id"].as_u64()? as usize - 1] += 1;
                }
            }
            let even = held.iter().max()? - held.iter().min()? <= 1;
            // Each node runs exactly the shard replicas the map gives it,
            // each a voter of a group of three.
            for id in 1..=4 {
                let runs = shard_groups_of_three(&cluster, id).await?;
                (runs == held[id as usize - 1]).then_some(())?;
            }
            even.then_some(held)
        },
    )
    .await;
    assert_eq!(balanced.iter().sum::<usize>(), 9, "{balanced:?}");
    assert!(balanced[3] >= 2, "node 4 took its share: {balanced:?}");
    // And the leaders spread over the four nodes: none leads two shards.
    wait_for(
        "one leader per node at most",
        Duration::from_secs(60),
        || async {
            let status = cluster.cluster_status(1).await?;
            let mut led = [0usize; 4];
            for shard in status["shards"].as_array()? {
                led[shard["leader_node"].as_u64()? as usize - 1] += 1;
            }
            led.iter().all(|count| *count <= 1).then_some(())
        },
    )
    .await;
    let logs = probe.stop().await;
    assert_nothing_lost(cluster.resp_addrs(), &logs).await;

    // Restarted, it is the same node: its data directory says who it is.
    cluster.stop(new).await;
    cluster.start_node(new);
    wait_for(
        "node 4 back with its identity",
        Duration::from_secs(60),
        || async {
            let mine = cluster.cluster_status(new).await?;
            let me = node_record(&mine, new)?;
            (me["incarnation"] == 1 && mine["state"] == "ok").then_some(())
        },
    )
    .await;
    let log = std::fs::read_to_string(cluster.node(new).data.with_extension("log")).unwrap();
    assert_eq!(
        log.matches("registered with the cluster").count(),
        1,
        "one registration"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joining_with_a_taken_id_is_refused_and_says_why() {
    let cluster = Cluster::start(3, &[]);
    cluster.wait_ready(Duration::from_secs(60)).await;
    let dir = tempfile::tempdir().unwrap();
    let (addrs, _lease) = polis_client::local::free_addrs(1).unwrap();
    let addr = &addrs[0];
    let member = format!("2={}/{}/{}", addr.peer, addr.resp, addr.admin);
    let log_path = dir.path().join("node.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_polis"))
        .arg("server")
        .args(["--node-id", "2", "--member", &member])
        .args(["--resp-addr", &addr.resp, "--admin-addr", &addr.admin])
        .args(["--peer-addr", &addr.peer])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--join", &cluster.node(1).peer])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let exited = common::wait_for_opt(Duration::from_secs(30), || {
        let status = child.try_wait().unwrap();
        async move { status }
    })
    .await;
    if exited.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let log = std::fs::read_to_string(&log_path).unwrap();
    let status = exited.unwrap_or_else(|| panic!("the node did not stop within 30 s: {log}"));
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("node id 2 is in the cluster already")
            && log.contains("give this node another --node-id"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_down_past_down_after_has_its_replicas_rebuilt_elsewhere() {
    // Four nodes, three shards of three: shard 2 and shard 3 each have a
    // replica on node 4.
    let mut cluster = Cluster::start(4, &["--shards", "3", "--down-after-secs", "3"]);
    let before = cluster.wait_ready(Duration::from_secs(60)).await;
    let probe = Probe::start(cluster.resp_addrs(), shard_keys(&before, "rebuilt"), 3);
    probe.wait_acked(9).await;
    cluster.kill9(4);
    wait_for(
        "node 4's replicas to be rebuilt on nodes 1 to 3",
        Duration::from_secs(120),
        || async {
            let status = cluster.cluster_status(1).await?;
            for shard in status["shards"].as_array()? {
                let nodes: Vec<u64> = shard["replicas"]
                    .as_array()?
                    .iter()
                    .filter_map(|replica| replica["node_id"].as_u64())
                    .collect();
                (nodes.len() == 3 && !nodes.contains(&4) && shard["serving"] == true)
                    .then_some(())?;
            }
            // Every live node runs its replicas as voters of groups of
            // three: the dead replicas are out of every membership.
            for id in 1..=3 {
                (shard_groups_of_three(&cluster, id).await? == 3).then_some(())?;
            }
            Some(())
        },
    )
    .await;
    let logs = probe.stop().await;
    assert_nothing_lost(cluster.resp_addrs()[..3].to_vec(), &logs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_node_is_drained_then_stops_and_is_refused_when_it_returns() {
    // Four nodes, four shards of three: node 4 holds three replicas and
    // is meant to lead one shard.
    let mut cluster = Cluster::start(4, &["--shards", "4"]);
    let before = cluster.wait_ready(Duration::from_secs(60)).await;
    let probe = Probe::start(cluster.resp_addrs(), shard_keys(&before, "drained"), 4);
    probe.wait_acked(12).await;

    let admin = cluster.node(1).admin.clone();
    let (removed, said) = polis_cluster(&["--node", &admin, "remove-node", "4"]);
    assert!(removed, "{said}");
    assert!(said.contains("node 4 removed"), "{said}");

    // Every shard keeps three replicas, none on node 4, and serves; each
    // node left runs exactly its replicas as voters of groups of three.
    let status = wait_for(
        "the shards to be served from nodes 1 to 3",
        Duration::from_secs(60),
        || async {
            let status = cluster.cluster_status(1).await?;
            for shard in status["shards"].as_array()? {
                let nodes: Vec<u64> = shard["replicas"]
                    .as_array()?
                    .iter()
                    .filter_map(|replica| replica["node_id"].as_u64())
                    .collect();
                (nodes.len() == 3 && !nodes.contains(&4) && shard["serving"] == true)
                    .then_some(())?;
            }
            for id in 1..=3 {
                (shard_groups_of_three(&cluster, id).await? == 4).then_some(())?;
            }
            Some(status)
        },
    )
    .await;
    let record = node_record(&status, 4).unwrap();
    assert_eq!(record["state"], "removed", "{record}");
    assert_eq!(record["meta_voter"], false, "{record}");

    // Node 4 stopped by itself, saying why.
    let log_path = cluster.node(4).data.with_extension("log");
    let exited = common::wait_for_opt(Duration::from_secs(30), || {
        let status = cluster.exit_status(4);
        async move { status }
    })
    .await;
    let log = std::fs::read_to_string(&log_path).unwrap();
    let exited = exited.unwrap_or_else(|| panic!("node 4 still runs: {log}"));
    assert!(!exited.success(), "{log}");
    assert!(log.contains("node 4 was removed from the cluster"), "{log}");

    let logs = probe.stop().await;
    assert_nothing_lost(cluster.resp_addrs()[..3].to_vec(), &logs).await;

    // Three nodes cannot hold shards of three replicas without one more.
    let (removed, said) = polis_cluster(&["--node", &admin, "remove-node", "3"]);
    assert!(!removed, "{said}");
    assert!(said.contains("add a node first"), "{said}");
    let (removed, said) = polis_cluster(&["--node", &admin, "remove-node", "9"]);
    assert!(!removed && said.contains("no node 9"), "{said}");

    // Started again, node 4 is refused: it stops and says so.
    let logged_before = log.len();
    cluster.start_node(4);
    let exited = common::wait_for_opt(Duration::from_secs(30), || {
        let status = cluster.exit_status(4);
        async move { status }
    })
    .await;
    let log = std::fs::read_to_string(&log_path).unwrap();
    let again = &log[logged_before..];
    let exited = exited.unwrap_or_else(|| panic!("node 4 runs again: {again}"));
    assert!(!exited.success(), "{again}");
    assert!(
        again.contains("node 4 was removed from the cluster"),
        "{again}"
    );
}

/// Returns how many shard replicas each node holds, as `status` says.
fn replicas_held(status: &serde_json::Value) -> Option<std::collections::BTreeMap<u64, usize>> {
    let mut held = std::collections::BTreeMap::new();
    for shard in status["shards"].as_array()? {
        for replica in shard["replicas"].as_array()? {
            *held.entry(replica["node_id"].as_u64()?).or_default() += 1;
        }
    }
    Some(held)
}

/// Waits until the active nodes `nodes` hold the replicas evenly (no two
/// differ by more than one), each runs exactly its replicas as voters of
/// groups of three, and every shard serves.
async fn wait_even(
    cluster: &Cluster,
    nodes: &[u64],
    what: &str,
) -> std::collections::BTreeMap<u64, usize> {
    wait_for(what, Duration::from_secs(180), || async {
        let status = cluster.cluster_status(1).await?;
        let held = replicas_held(&status)?;
        let counts: Vec<usize> = nodes
            .iter()
            .map(|id| held.get(id).copied().unwrap_or(0))
            .collect();
        let even = counts.iter().max()? - counts.iter().min()? <= 1;
        let only_these = held.keys().all(|id| nodes.contains(id));
        let serving = status["shards"]
            .as_array()?
            .iter()
            .all(|shard| shard["serving"] == true);
        for id in nodes {
            let runs = shard_groups_of_three(cluster, *id).await?;
            (runs == held.get(id).copied().unwrap_or(0)).then_some(())?;
        }
        (even && only_these && serving).then_some(held)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_grow_to_five_and_shrink_back_to_three_under_a_steady_writer() {
    let mut cluster = Cluster::start(3, &["--shards", "3"]);
    let before = cluster.wait_ready(Duration::from_secs(60)).await;
    let probe = Probe::start(cluster.resp_addrs(), shard_keys(&before, "scale"), 3);
    probe.wait_acked(9).await;

    assert_eq!(cluster.add_node(1), 4);
    assert_eq!(cluster.add_node(2), 5);
    let held = wait_even(&cluster, &[1, 2, 3, 4, 5], "nine replicas over five nodes").await;
    assert_eq!(held.values().sum::<usize>(), 9, "{held:?}");
    assert!(
        held[&4] >= 1 && held[&5] >= 1,
        "the new nodes took their share: {held:?}"
    );
    // The writer keeps going through the scale-down: every shard takes
    // new writes after it.
    let acked = probe
        .snapshot()
        .values()
        .filter_map(|log| log.acked_max)
        .max()
        .unwrap_or(0);

    let admin = cluster.node(1).admin.clone();
    for leaving in [5u64, 4] {
        let (removed, said) =
            polis_cluster(&["--node", &admin, "remove-node", &leaving.to_string()]);
        assert!(removed, "{said}");
    }
    let held = wait_even(&cluster, &[1, 2, 3], "nine replicas back on three nodes").await;
    assert_eq!(held.values().copied().collect::<Vec<_>>(), [3, 3, 3]);
    probe.wait_acked(acked + 9).await;
    let logs = probe.stop().await;
    assert_nothing_lost(cluster.resp_addrs()[..3].to_vec(), &logs).await;
}
