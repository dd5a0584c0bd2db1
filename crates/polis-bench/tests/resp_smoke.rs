//! The load generator against a real redis-server: loading, every
//! workload closed and open loop, ops_max, WAIT, READONLY, and MOVED
//! through a node that redirects everything.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{expected_ops, short_spec, start_redis, ALL_WORKLOADS, DATA_TYPE_WORKLOADS};
use polis_bench::driver::{load, run};
use polis_bench::spec::{BenchResult, Mode, Target, Workload};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn resp(addr: &str) -> Target {
    Target::Resp {
        addrs: vec![addr.to_string()],
        readonly: false,
        wait_replicas: None,
    }
}

fn assert_clean(result: &BenchResult, what: &str) {
    assert!(result.ops > 0, "{what}: no operations: {result:?}");
    assert_eq!(
        result.errors, 0,
        "{what}: errors: {:?}",
        result.error_samples
    );
    assert_eq!(result.latency.count, result.ops, "{what}");
    assert!(result.latency.p50_us > 0 && result.latency.p50_us <= result.latency.p99_us);
    assert!(result.latency.p99_us <= result.latency.max_us);
    assert!(result.throughput_per_s > 0.0, "{what}");
}

async fn dbsize(addr: &str) -> u64 {
    let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("DBSIZE")
        .query_async(&mut connection)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_closed_and_open_loop() {
    let server = start_redis().await;
    let target = resp(&server.addr);
    let loaded = load(&target, &short_spec(Workload::Mixed, Mode::Closed, 1))
        .await
        .unwrap();
    assert_eq!(loaded, 1000);
    // Strings, counters and hashes.
    assert_eq!(dbsize(&server.addr).await, 3000);

    for workload in DATA_TYPE_WORKLOADS {
        let closed = run(&target, &short_spec(workload, Mode::Closed, 300))
            .await
            .unwrap();
        let what = format!("{workload:?} closed");
        assert_clean(&closed, &what);
        assert_eq!(
            closed.by_op.keys().map(String::as_str).collect::<Vec<_>>(),
            expected_ops(workload),
            "{what}"
        );
    }

    for workload in ALL_WORKLOADS {
        let closed = run(&target, &short_spec(workload, Mode::Closed, 1000))
            .await
            .unwrap();
        let what = format!("{workload:?} closed");
        assert_clean(&closed, &what);
        assert_eq!(
            closed.by_op.keys().map(String::as_str).collect::<Vec<_>>(),
            expected_ops(workload),
            "{what}"
        );
        assert!(
            closed.elapsed_s >= 0.99 && closed.elapsed_s < 3.0,
            "{what}: {closed:?}"
        );

        // 2000 requests/s for 1 s: the schedule, not the replies, sets
        // the number of requests.
        let open = run(
            &target,
            &short_spec(workload, Mode::Open { rate_per_s: 2000 }, 1000),
        )
        .await
        .unwrap();
        let what = format!("{workload:?} open");
        assert_clean(&open, &what);
        assert!(
            (1900..=2100).contains(&open.ops),
            "{what}: {} operations",
            open.ops
        );
        assert_eq!(
            open.by_op.keys().map(String::as_str).collect::<Vec<_>>(),
            expected_ops(workload),
            "{what}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_max_bounds_the_recorded_operations() {
    let server = start_redis().await;
    let target = resp(&server.addr);
    let mut spec = short_spec(Workload::A, Mode::Closed, 10_000);
    load(&target, &spec).await.unwrap();
    // Not a multiple of the 4 requests a connection pipelines.
    spec.ops_max = Some(501);
    let result = run(&target, &spec).await.unwrap();
    assert_clean(&result, "ops_max");
    assert_eq!(result.ops, 501);
    // It stopped at the budget, long before the 10 s duration.
    assert!(result.elapsed_s < 5.0, "{result:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_counts_writes_without_enough_replicas_as_errors() {
    let server = start_redis().await;
    let mut spec = short_spec(Workload::WriteOnly, Mode::Closed, 300);
    spec.warmup = Duration::ZERO;
    // No replicas: WAIT 0 is satisfied at once...
    let waiting_for_none = Target::Resp {
        addrs: vec![server.addr.clone()],
        readonly: false,
        wait_replicas: Some((0, 100)),
    };
    load(&waiting_for_none, &spec).await.unwrap();
    assert_clean(&run(&waiting_for_none, &spec).await.unwrap(), "WAIT 0");
    // ...and WAIT 1 never is: every write is an error, none a success.
    let waiting_for_one = Target::Resp {
        addrs: vec![server.addr.clone()],
        readonly: false,
        wait_replicas: Some((1, 10)),
    };
    let result = run(&waiting_for_one, &spec).await.unwrap();
    assert_eq!(result.ops, 0, "{result:?}");
    assert!(result.errors > 0);
    assert!(
        result.error_samples[0].contains("only 0 replicas"),
        "{:?}",
        result.error_samples
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readonly_reads_from_the_given_addresses() {
    // A Redis outside cluster mode refuses READONLY but serves reads: the
    // driver goes on.
    let server = start_redis().await;
    let target = Target::Resp {
        addrs: vec![server.addr.clone()],
        readonly: true,
        wait_replicas: None,
    };
    let spec = short_spec(Workload::B, Mode::Closed, 500);
    load(&target, &spec).await.unwrap();
    let result = run(&target, &spec).await.unwrap();
    assert_clean(&result, "readonly");
    server.stop().await;
}

/// A node that answers PING and CLIENT, and `MOVED 0 <to>` to every
/// other command.
async fn redirecting_node(to: String, redirected: Arc<AtomicU64>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let to = to.clone();
            let redirected = redirected.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(read) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if read == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..read]);
                    while let Some((name, used)) = parse_command(&buffer) {
                        buffer.drain(..used);
                        let reply = if name.eq_ignore_ascii_case("PING") {
                            "+PONG\r\n".to_string()
                        } else if name.eq_ignore_ascii_case("CLIENT") {
                            // The client library's SETINFO on connecting.
                            "+OK\r\n".to_string()
                        } else if name.eq_ignore_ascii_case("CLUSTER") {
                            // The driver asks for a slot table; this node
                            // has none, as a Redis outside a cluster.
                            "-ERR This instance has cluster support disabled\r\n".to_string()
                        } else {
                            redirected.fetch_add(1, Ordering::Relaxed);
                            format!("-MOVED 0 {to}\r\n")
                        };
                        if socket.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Parses one RESP array of bulk strings; returns the command name and
/// the bytes used, or None if the buffer holds no whole command yet.
fn parse_command(buffer: &[u8]) -> Option<(String, usize)> {
    fn line(buffer: &[u8], at: usize) -> Option<(&[u8], usize)> {
        let end = buffer[at..].windows(2).position(|w| w == b"\r\n")? + at;
        Some((&buffer[at..end], end + 2))
    }
    let (header, mut at) = line(buffer, 0)?;
    assert_eq!(header[0], b'*', "the client sends arrays");
    let count: usize = std::str::from_utf8(&header[1..]).ok()?.parse().ok()?;
    let mut name = None;
    for _ in 0..count {
        let (length, next) = line(buffer, at)?;
        let length: usize = std::str::from_utf8(&length[1..]).ok()?.parse().ok()?;
        if buffer.len() < next + length + 2 {
            return None;
        }
        name.get_or_insert_with(|| String::from_utf8_lossy(&buffer[next..next + length]).into());
        at = next + length + 2;
    }
    Some((name?, at))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moved_is_followed_and_the_new_address_is_kept() {
    let server = start_redis().await;
    let redirected = Arc::new(AtomicU64::new(0));
    let node = redirecting_node(server.addr.clone(), redirected.clone()).await;
    let target = resp(&node);
    let spec = short_spec(Workload::A, Mode::Closed, 500);
    load(&target, &spec).await.unwrap();
    assert_eq!(dbsize(&server.addr).await, 1000);
    let loading_redirects = redirected.load(Ordering::Relaxed);
    assert!(loading_redirects > 0);

    let result = run(&target, &spec).await.unwrap();
    assert_clean(&result, "through MOVED");
    // Each connection is redirected once per request in flight at most;
    // after that it goes to the address it learned.
    let run_redirects = redirected.load(Ordering::Relaxed) - loading_redirects;
    let in_flight = (spec.connections * spec.pipeline) as u64;
    assert!(
        (1..=in_flight).contains(&run_redirects),
        "{run_redirects} redirects for {} operations",
        result.ops
    );
    server.stop().await;
}
