//! Eventual namespaces beside strong ones, through a partition: the shop
//! of the README, with `order:` strong and `stock:` eventual. Orders on
//! the minority side are refused; stock updates are accepted on both
//! sides and converge after the heal, every acknowledged update counted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::time::Duration;

use common::client::FollowingClient;
use common::eventual::{
    bulk, config_set, converge, eventual_figure, eventual_namespace, members, namespace, query,
};
use common::{wait_for, Cluster};
use redis::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shop_keeps_stock_writable_on_both_sides_and_orders_on_the_majority() {
    let cluster = Cluster::start(3, &["--enable-fault-injection"]);
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    namespace(&cluster, &["set", "order:", "--consistency", "strong"]);
    namespace(
        &cluster,
        &[
            "set",
            "stock:",
            "--consistency",
            "eventual",
            "--replicas",
            "3",
            "--write-quorum",
            "1",
            "--read-quorum",
            "1",
        ],
    );
    let listed = namespace(&cluster, &["list"]);
    assert!(
        listed.contains("stock:") && listed.contains("N=3 W=1 R=1"),
        "{listed}"
    );

    // Any node takes eventual writes itself; every replica gets them.
    let set = query(&cluster, 2, redis::cmd("SET").arg("stock:apple").arg(100)).await;
    assert_eq!(set.unwrap(), Value::Okay);
    converge(
        &cluster,
        redis::cmd("GET").arg("stock:apple"),
        &bulk("100"),
        "stock on every node",
    )
    .await;

    // A command may not mix strong and eventual keys.
    let mixed = query(
        &cluster,
        1,
        redis::cmd("MGET").arg("stock:{a}").arg("order:{a}"),
    )
    .await;
    let error = mixed.unwrap_err().to_string();
    assert!(error.contains("both strong and eventual"), "{error}");
    // Lists are not offered on eventual keys.
    let list = query(&cluster, 1, redis::cmd("LPUSH").arg("stock:list").arg("x")).await;
    assert!(list
        .unwrap_err()
        .to_string()
        .contains("not offered on eventual keys"));

    cluster.chaos(&["isolate", "3"]);

    // The minority refuses orders: no acknowledgement within 3 s.
    let mut minority = cluster.connect(3).await;
    let mut order = redis::cmd("SET");
    order.arg("order:minority").arg("1");
    let order = order.query_async::<Value>(&mut minority);
    if let Ok(Ok(value)) = tokio::time::timeout(Duration::from_secs(3), order).await {
        panic!("the minority acknowledged an order: {value:?}");
    }
    // Both sides sell apples, and add colours.
    for _ in 0..5 {
        let sold = query(&cluster, 3, redis::cmd("DECRBY").arg("stock:apple").arg(1)).await;
        assert!(matches!(sold, Ok(Value::Int(_))), "{sold:?}");
        let sold = query(&cluster, 1, redis::cmd("DECRBY").arg("stock:apple").arg(2)).await;
        assert!(matches!(sold, Ok(Value::Int(_))), "{sold:?}");
    }
    let red = query(
        &cluster,
        3,
        redis::cmd("SADD").arg("stock:colours").arg("red"),
    )
    .await;
    assert_eq!(red.unwrap(), Value::Int(1));
    let blue = query(
        &cluster,
        2,
        redis::cmd("SADD").arg("stock:colours").arg("blue"),
    )
    .await;
    assert_eq!(blue.unwrap(), Value::Int(1));
    // The majority takes orders.
    let majority: Vec<String> = [1, 2]
        .iter()
        .map(|id| cluster.node(*id).resp.clone())
        .collect();
    let mut client = FollowingClient::new(majority, 0);
    client
        .query(redis::cmd("SET").arg("order:majority").arg("1"), 200)
        .await
        .unwrap();

    cluster.chaos(&["heal"]);

    // Every acknowledged sale counts on every node: 100 - 5 - 10.
    converge(
        &cluster,
        redis::cmd("GET").arg("stock:apple"),
        &bulk("85"),
        "stock after the heal",
    )
    .await;
    wait_for(
        "both colours on every node",
        Duration::from_secs(30),
        || async {
            for id in 1..=3 {
                let value = query(&cluster, id, redis::cmd("SMEMBERS").arg("stock:colours"))
                    .await
                    .ok()?;
                if members(value) != ["blue", "red"] {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    let mut client = FollowingClient::new(cluster.resp_addrs(), 0);
    let minority_order = client
        .query(redis::cmd("GET").arg("order:minority"), 200)
        .await
        .unwrap();
    assert_eq!(
        minority_order,
        Value::Nil,
        "an order the minority refused appeared"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_short_of_its_quorum_is_reported_unknown_and_still_spreads() {
    let cluster = Cluster::start(3, &["--enable-fault-injection"]);
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    namespace(
        &cluster,
        &[
            "set",
            "cart:",
            "--consistency",
            "eventual",
            "--replicas",
            "3",
            "--write-quorum",
            "2",
            "--read-quorum",
            "2",
        ],
    );
    let set = query(&cluster, 1, redis::cmd("SET").arg("cart:1").arg("a")).await;
    assert_eq!(set.unwrap(), Value::Okay);

    cluster.chaos(&["isolate", "3"]);
    let short = query(&cluster, 3, redis::cmd("SET").arg("cart:1").arg("b")).await;
    let error = short.unwrap_err().to_string();
    assert!(error.contains("OUTCOMEUNKNOWN"), "{error}");
    let read = query(&cluster, 3, redis::cmd("GET").arg("cart:1")).await;
    let error = read.unwrap_err().to_string();
    assert!(error.to_ascii_uppercase().contains("TRYAGAIN"), "{error}");
    // The majority side reads and writes with its two replicas.
    let read = query(&cluster, 1, redis::cmd("GET").arg("cart:1")).await;
    assert_eq!(read.unwrap(), bulk("a"));

    cluster.chaos(&["heal"]);
    // The unacknowledged write was kept and is the newest: it spreads.
    converge(
        &cluster,
        redis::cmd("GET").arg("cart:1"),
        &bulk("b"),
        "the unknown write after the heal",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_within_the_bound_loses_nothing_and_past_it_is_refused_and_counted() {
    let cluster = Cluster::start(3, &["--enable-fault-injection"]);
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    eventual_namespace(&cluster, "profile:", "3", "1");

    // Node 3 runs 300 ms ahead, within the 500 ms bound: a write made on
    // node 1 after node 3's (node 1 saw it) still wins.
    cluster.chaos(&["clock-skew", "3", "300"]);
    let ahead = query(
        &cluster,
        3,
        redis::cmd("SET").arg("profile:a").arg("from-3"),
    )
    .await;
    assert_eq!(ahead.unwrap(), Value::Okay);
    let later = query(
        &cluster,
        1,
        redis::cmd("SET").arg("profile:a").arg("from-1"),
    )
    .await;
    assert_eq!(later.unwrap(), Value::Okay);
    converge(
        &cluster,
        redis::cmd("GET").arg("profile:a"),
        &bulk("from-1"),
        "the later write everywhere",
    )
    .await;
    assert_eq!(eventual_figure(&cluster, 1, "clock_refused_total").await, 0);

    // Past the bound, the other replicas refuse node 3's writes: not
    // acknowledged (W=3), counted, never silently taken.
    cluster.chaos(&["clock-skew", "3", "5000"]);
    let refused = query(
        &cluster,
        3,
        redis::cmd("SET").arg("profile:b").arg("skewed"),
    )
    .await;
    let error = refused.unwrap_err().to_string();
    assert!(error.contains("OUTCOMEUNKNOWN"), "{error}");
    let counted = eventual_figure(&cluster, 1, "clock_refused_total").await
        + eventual_figure(&cluster, 2, "clock_refused_total").await;
    assert!(counted >= 2, "{counted} refusals counted");
    let elsewhere = query(&cluster, 1, redis::cmd("GET").arg("profile:b")).await;
    assert_eq!(elsewhere.unwrap(), Value::Nil);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hints_bring_a_replica_the_writes_it_missed_without_anti_entropy() {
    let cluster = Cluster::start(3, &["--enable-fault-injection"]);
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    eventual_namespace(&cluster, "cache:", "1", "1");
    config_set(&cluster, "eventual-anti-entropy-ms", "0").await;
    config_set(&cluster, "eventual-read-repair", "no").await;

    cluster.chaos(&["isolate", "3"]);
    for index in 0..20 {
        let set = query(
            &cluster,
            1,
            redis::cmd("SET").arg(format!("cache:{index}")).arg(index),
        )
        .await;
        assert_eq!(set.unwrap(), Value::Okay);
    }
    wait_for("20 hints for node 3", Duration::from_secs(30), || async {
        (eventual_figure(&cluster, 1, "hints_pending").await >= 20).then_some(())
    })
    .await;
    let mut rounds_before = 0;
    for id in 1..=3 {
        rounds_before += eventual_figure(&cluster, id, "anti_entropy_rounds_total").await;
    }
    cluster.chaos(&["heal"]);
    for index in 0..20 {
        let cmd = redis::cmd("GET").arg(format!("cache:{index}")).clone();
        converge(
            &cluster,
            &cmd,
            &bulk(&index.to_string()),
            "hinted writes on node 3",
        )
        .await;
    }
    wait_for(
        "the hints counted as delivered",
        Duration::from_secs(10),
        || async {
            (eventual_figure(&cluster, 1, "hints_delivered_total").await >= 20).then_some(())
        },
    )
    .await;
    let mut rounds_after = 0;
    for id in 1..=3 {
        rounds_after += eventual_figure(&cluster, id, "anti_entropy_rounds_total").await;
    }
    assert_eq!(
        rounds_after, rounds_before,
        "no anti-entropy round ran: hints did it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_off_past_the_hint_window_is_brought_back_by_anti_entropy() {
    let cluster = Cluster::start(3, &["--enable-fault-injection"]);
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    eventual_namespace(&cluster, "cache:", "1", "1");
    config_set(&cluster, "eventual-anti-entropy-ms", "0").await;
    config_set(&cluster, "eventual-read-repair", "no").await;
    config_set(&cluster, "eventual-hint-window-ms", "1").await;

    cluster.chaos(&["isolate", "3"]);
    for index in 0..20 {
        let set = query(
            &cluster,
            2,
            redis::cmd("SET").arg(format!("cache:{index}")).arg(index),
        )
        .await;
        assert_eq!(set.unwrap(), Value::Okay);
    }
    wait_for("the hints to expire", Duration::from_secs(30), || async {
        (eventual_figure(&cluster, 2, "hints_expired_total").await >= 20).then_some(())
    })
    .await;
    cluster.chaos(&["heal"]);
    let missed = query(&cluster, 3, redis::cmd("GET").arg("cache:0")).await;
    assert_eq!(
        missed.unwrap(),
        Value::Nil,
        "no hint, no anti-entropy: node 3 lacks it"
    );

    config_set(&cluster, "eventual-anti-entropy-ms", "200").await;
    for index in 0..20 {
        let cmd = redis::cmd("GET").arg(format!("cache:{index}")).clone();
        converge(
            &cluster,
            &cmd,
            &bulk(&index.to_string()),
            "anti-entropy on node 3",
        )
        .await;
    }
    let mut exchanged = 0;
    for id in 1..=3 {
        exchanged += eventual_figure(&cluster, id, "anti_entropy_bytes_total").await;
    }
    assert!(exchanged > 0, "anti-entropy moved the keys");
}
